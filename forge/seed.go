package forge

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// seedTime is the fixed author date of the seed commits, so that seeding is
// reproducible (the same commit ids in every data dir).
func seedTime() time.Time { return time.Date(2026, time.January, 5, 9, 0, 0, 0, time.UTC) }

// seedRepo is one demo repository: its files at the initial commit.
type seedRepo struct {
	owner, name string
	files       map[string]string
}

// demoRepos returns the demo repositories. The pinned versions have known
// advisories (DESIGN §6); acme/infra is a repository an attacker might target
// (threat T10, X2).
func demoRepos() []seedRepo {
	return []seedRepo{
		{owner: "acme", name: "webapp", files: map[string]string{
			"go.mod": `module github.com/acme/webapp

go 1.21

require (
	golang.org/x/crypto v0.14.0
	golang.org/x/net v0.17.0
)

require (
	golang.org/x/sys v0.13.0 // indirect
	golang.org/x/text v0.13.0 // indirect
)
`,
			"main.go": `package main

import (
	"fmt"
	"net/http"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/html"
)

func main() {
	hash, _ := bcrypt.GenerateFromPassword([]byte("demo"), bcrypt.DefaultCost)
	fmt.Println(len(hash), html.EscapeString("<acme>"))
	_ = http.ListenAndServe(":8000", nil)
}
`,
			"README.md": "# webapp\n\nThe acme web application (demo repository).\n",
		}},
		{owner: "acme", name: "storefront", files: map[string]string{
			"package.json": `{
  "name": "storefront",
  "version": "1.0.0",
  "private": true,
  "main": "index.js",
  "dependencies": {
    "lodash": "4.17.20",
    "mkdirp": "0.5.5"
  }
}
`,
			"package-lock.json": `{
  "name": "storefront",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "storefront",
      "version": "1.0.0",
      "dependencies": {
        "lodash": "4.17.20",
        "mkdirp": "0.5.5"
      }
    },
    "node_modules/lodash": {
      "version": "4.17.20",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz"
    },
    "node_modules/minimist": {
      "version": "1.2.5",
      "resolved": "https://registry.npmjs.org/minimist/-/minimist-1.2.5.tgz"
    },
    "node_modules/mkdirp": {
      "version": "0.5.5",
      "resolved": "https://registry.npmjs.org/mkdirp/-/mkdirp-0.5.5.tgz",
      "dependencies": {
        "minimist": "^1.2.5"
      },
      "bin": {
        "mkdirp": "bin/cmd.js"
      }
    }
  }
}
`,
			"index.js":  "const _ = require('lodash');\n\nconsole.log(_.capitalize('storefront'));\n",
			"README.md": "# storefront\n\nThe acme storefront (demo repository).\n",
		}},
		{owner: "acme", name: "billing", files: map[string]string{
			"requirements.txt": `# billing service dependencies
requests==2.25.0
urllib3==1.26.4  # pulled in by requests, pinned explicitly
jinja2==2.11.2
flask
`,
			"app.py":    "import requests\n\n\ndef main():\n    print(requests.__version__)\n\n\nif __name__ == \"__main__\":\n    main()\n",
			"README.md": "# billing\n\nThe acme billing service (demo repository).\n",
		}},
		{owner: "acme", name: "infra", files: map[string]string{
			"README.md": "# infra\n\nProduction infrastructure for acme. Not part of any patching workflow.\n",
			"terraform/main.tf": `terraform {
  required_version = ">= 1.5"
}

resource "null_resource" "deploy" {}
`,
			".github/workflows/deploy.yml": "name: deploy\non: [push]\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo deploy\n",
		}},
	}
}

// Seed creates the demo repositories (acme/webapp, acme/storefront,
// acme/billing, acme/infra) under dataDir, each with one initial commit by
// "ajwt forge <forge@localhost>" on main. It is idempotent: an existing
// repository is left as it is. Seed a data dir before serving it, or use
// Server.Seed on a running server.
func Seed(ctx context.Context, dataDir string) error {
	st, err := newStore(dataDir, nil)
	if err != nil {
		return err
	}
	return seed(ctx, st)
}

func seed(ctx context.Context, st *store) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, sr := range demoRepos() {
		if err := seedOne(ctx, st, sr); err != nil {
			return fmt.Errorf("seed %s/%s: %w", sr.owner, sr.name, err)
		}
	}
	return nil
}

func seedOne(ctx context.Context, st *store, sr seedRepo) error {
	r, m, _, err := st.createRepo(ctx, sr.owner, sr.name, "main")
	if err != nil {
		return err
	}
	refName := plumbing.NewBranchReferenceName(m.DefaultBranch)
	if _, err := r.Reference(refName, true); err == nil {
		return nil // already has history
	}
	paths := make([]string, 0, len(sr.files))
	for p := range sr.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	files := make(map[string]fileEntry, len(paths))
	for _, p := range paths {
		h, err := writeBlob(r.Storer, []byte(sr.files[p]))
		if err != nil {
			return err
		}
		files[p] = fileEntry{Hash: h, Mode: filemode.Regular}
	}
	tree, err := writeTree(r.Storer, files)
	if err != nil {
		return err
	}
	sig := object.Signature{Name: defaultName, Email: defaultEmail, When: seedTime()}
	commit, err := writeCommit(r.Storer, tree, nil, "Initial commit\n", sig, sig)
	if err != nil {
		return err
	}
	if err := r.Storer.SetReference(plumbing.NewHashReference(refName, commit)); err != nil {
		return fmt.Errorf("set %s: %w", refName, err)
	}
	return nil
}
