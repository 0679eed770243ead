package forge_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-github/v66/github"

	"github.com/agentic-jwt/patchcrew/forge"
)

func newClient(t *testing.T, base, token string) *github.Client {
	t.Helper()
	gh := github.NewClient(nil).WithAuthToken(token)
	u, err := url.Parse(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	gh.BaseURL = u
	return gh
}

// TestGoGitHubFlow is the "must show": the real go-github v66 client
// creates a branch, commits a file change, opens and lists a pull request and
// merges it; the commits are in the bare repository with the right parents.
func TestGoGitHubFlow(t *testing.T) {
	base, dir := newForge(t)
	ctx := context.Background()
	gh := newClient(t, base, testToken)

	repo, _, err := gh.Repositories.Get(ctx, "acme", "webapp")
	if err != nil {
		t.Fatalf("get repo: %v", err)
	}
	if repo.GetDefaultBranch() != "main" || repo.GetFullName() != "acme/webapp" || repo.GetID() == 0 {
		t.Fatalf("repo = %+v", repo)
	}
	byID, _, err := gh.Repositories.GetByID(ctx, repo.GetID())
	if err != nil || byID.GetFullName() != "acme/webapp" {
		t.Fatalf("get by id: %v %v", byID.GetFullName(), err)
	}

	mainRef, _, err := gh.Git.GetRef(ctx, "acme", "webapp", "heads/main")
	if err != nil {
		t.Fatalf("get ref: %v", err)
	}
	mainSHA := mainRef.GetObject().GetSHA()
	if mainSHA != branchHash(t, dir, "webapp", "main").String() {
		t.Fatalf("ref sha %s", mainSHA)
	}

	tree, _, err := gh.Git.GetTree(ctx, "acme", "webapp", "main", true)
	if err != nil {
		t.Fatalf("get tree: %v", err)
	}
	var paths []string
	for _, e := range tree.Entries {
		paths = append(paths, e.GetPath())
	}
	if strings.Join(paths, ",") != "README.md,go.mod,main.go" {
		t.Fatalf("tree paths = %v", paths)
	}

	branch := "ajwt/x"
	if _, _, err := gh.Git.CreateRef(ctx, "acme", "webapp", &github.Reference{
		Ref: github.String("refs/heads/" + branch), Object: &github.GitObject{SHA: github.String(mainSHA)},
	}); err != nil {
		t.Fatalf("create ref: %v", err)
	}
	// Creating it again is GitHub's 422.
	_, resp, err := gh.Git.CreateRef(ctx, "acme", "webapp", &github.Reference{
		Ref: github.String("refs/heads/" + branch), Object: &github.GitObject{SHA: github.String(mainSHA)},
	})
	if err == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("duplicate ref: %v", err)
	}

	fc, _, _, err := gh.Repositories.GetContents(ctx, "acme", "webapp", "go.mod", &github.RepositoryContentGetOptions{Ref: branch})
	if err != nil {
		t.Fatalf("get contents: %v", err)
	}
	old, err := fc.GetContent()
	if err != nil || !strings.Contains(old, "golang.org/x/net v0.17.0") {
		t.Fatalf("go.mod content %q: %v", old, err)
	}
	updated := strings.Replace(old, "golang.org/x/net v0.17.0", "golang.org/x/net v0.23.0", 1)
	res, _, err := gh.Repositories.UpdateFile(ctx, "acme", "webapp", "go.mod", &github.RepositoryContentFileOptions{
		Message: github.String("bump golang.org/x/net to v0.23.0"),
		Content: []byte(updated),
		SHA:     fc.SHA,
		Branch:  github.String(branch),
	})
	if err != nil {
		t.Fatalf("update file: %v", err)
	}
	commitSHA := res.Commit.GetSHA()
	if len(res.Commit.Parents) != 1 || res.Commit.Parents[0].GetSHA() != mainSHA {
		t.Fatalf("commit parents = %v", res.Commit.Parents)
	}

	// The commit is real: the branch points at it, its parent is main, the
	// tree holds the new go.mod, and main is untouched.
	r, err := git.PlainOpen(filepath.Join(dir, "acme", "webapp.git"))
	if err != nil {
		t.Fatal(err)
	}
	if got := branchHash(t, dir, "webapp", branch).String(); got != commitSHA {
		t.Fatalf("branch at %s, want %s", got, commitSHA)
	}
	if got := branchHash(t, dir, "webapp", "main").String(); got != mainSHA {
		t.Fatalf("main moved to %s", got)
	}
	c, err := r.CommitObject(plumbing.NewHash(commitSHA))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != mainSHA {
		t.Fatalf("git parents = %v", c.ParentHashes)
	}
	if c.Message != "bump golang.org/x/net to v0.23.0" || c.Author.Email != "forge@localhost" {
		t.Fatalf("commit = %q by %s", c.Message, c.Author.Email)
	}
	f, err := c.File("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Contents(); got != updated {
		t.Fatalf("go.mod in commit = %q", got)
	}
	if _, err := c.File("main.go"); err != nil {
		t.Fatalf("main.go lost: %v", err)
	}

	// A second write without the sha is 422, with a stale sha 409.
	_, resp, err = gh.Repositories.UpdateFile(ctx, "acme", "webapp", "go.mod", &github.RepositoryContentFileOptions{
		Message: github.String("x"), Content: []byte("x"), Branch: github.String(branch),
	})
	if err == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("missing sha: %v", err)
	}

	pr, _, err := gh.PullRequests.Create(ctx, "acme", "webapp", &github.NewPullRequest{
		Title: github.String("Patch vulnerable dependencies"), Head: github.String(branch),
		Base: github.String("main"), Body: github.String("fixes GO-2024-2687"),
	})
	if err != nil {
		t.Fatalf("create PR: %v", err)
	}
	if pr.GetNumber() != 1 || pr.GetHead().GetSHA() != commitSHA || pr.GetBase().GetRef() != "main" || pr.GetState() != "open" {
		t.Fatalf("PR = #%d head %s base %s %s", pr.GetNumber(), pr.GetHead().GetSHA(), pr.GetBase().GetRef(), pr.GetState())
	}
	list, _, err := gh.PullRequests.List(ctx, "acme", "webapp", nil)
	if err != nil || len(list) != 1 || list[0].GetNumber() != 1 || list[0].GetTitle() != "Patch vulnerable dependencies" {
		t.Fatalf("list PRs: %v %v", list, err)
	}
	got, _, err := gh.PullRequests.Get(ctx, "acme", "webapp", 1)
	if err != nil || got.GetBody() != "fixes GO-2024-2687" {
		t.Fatalf("get PR: %v", err)
	}

	merge, _, err := gh.PullRequests.Merge(ctx, "acme", "webapp", 1, "", nil)
	if err != nil || !merge.GetMerged() {
		t.Fatalf("merge: %v %v", merge, err)
	}
	mc, err := r.CommitObject(branchHash(t, dir, "webapp", "main"))
	if err != nil {
		t.Fatal(err)
	}
	if mc.Hash.String() != merge.GetSHA() || len(mc.ParentHashes) != 2 ||
		mc.ParentHashes[0].String() != mainSHA || mc.ParentHashes[1].String() != commitSHA {
		t.Fatalf("merge commit %s parents %v", mc.Hash, mc.ParentHashes)
	}
	if f, err := mc.File("go.mod"); err != nil {
		t.Fatal(err)
	} else if s, _ := f.Contents(); s != updated {
		t.Fatalf("go.mod on main after merge = %q", s)
	}
	_, resp, err = gh.PullRequests.Merge(ctx, "acme", "webapp", 1, "", nil)
	if err == nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("second merge: %v", err)
	}
	closed, _, err := gh.PullRequests.List(ctx, "acme", "webapp", &github.PullRequestListOptions{State: "closed"})
	if err != nil || len(closed) != 1 || !closed[0].GetMerged() || closed[0].GetMergeCommitSHA() != merge.GetSHA() {
		t.Fatalf("closed PRs: %v", err)
	}

	// Deleting the branch works; the default branch cannot be deleted.
	if _, err := gh.Git.DeleteRef(ctx, "acme", "webapp", "heads/"+branch); err != nil {
		t.Fatalf("delete ref: %v", err)
	}
	if _, _, err := gh.Git.GetRef(ctx, "acme", "webapp", "heads/"+branch); err == nil {
		t.Fatal("branch still there")
	}
	if resp, err := gh.Git.DeleteRef(ctx, "acme", "webapp", "heads/main"); err == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("delete main: %v", err)
	}
}

// TestPullNumbersPersist restarts the server on the same data dir.
func TestPullNumbersPersist(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := forge.Seed(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if err := forge.Seed(ctx, dir); err != nil { // idempotent
		t.Fatalf("second Seed: %v", err)
	}
	open := func() (*github.Client, func()) {
		s, err := forge.New(ctx, forge.Config{DataDir: dir, Token: testToken})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(s.Handler())
		return newClient(t, ts.URL, testToken), ts.Close
	}
	gh, stop := open()
	repo1, _, err := gh.Repositories.Get(ctx, "acme", "billing")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range []string{"a", "b"} {
		if _, _, err := gh.Repositories.CreateFile(ctx, "acme", "billing", "notes/"+b+".txt", &github.RepositoryContentFileOptions{
			Message: github.String("add " + b), Content: []byte(b), Branch: github.String("main"),
		}); err != nil {
			t.Fatal(err)
		}
		main, _, err := gh.Git.GetRef(ctx, "acme", "billing", "heads/main")
		if err != nil {
			t.Fatal(err)
		}
		_ = i
		if _, _, err := gh.Git.CreateRef(ctx, "acme", "billing", &github.Reference{Ref: github.String("refs/heads/f-" + b), Object: main.Object}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := gh.Repositories.CreateFile(ctx, "acme", "billing", b+".txt", &github.RepositoryContentFileOptions{
			Message: github.String("f " + b), Content: []byte(b), Branch: github.String("f-" + b),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if pr, _, err := gh.PullRequests.Create(ctx, "acme", "billing", &github.NewPullRequest{Title: github.String("a"), Head: github.String("f-a"), Base: github.String("main")}); err != nil || pr.GetNumber() != 1 {
		t.Fatalf("PR 1: %v", err)
	}
	stop()
	gh, stop = open()
	defer stop()
	pr, _, err := gh.PullRequests.Create(ctx, "acme", "billing", &github.NewPullRequest{Title: github.String("b"), Head: github.String("acme:f-b"), Base: github.String("main")})
	if err != nil || pr.GetNumber() != 2 {
		t.Fatalf("PR 2 after restart: %v %d", err, pr.GetNumber())
	}
	repo2, _, err := gh.Repositories.Get(ctx, "acme", "billing")
	if err != nil || repo2.GetID() != repo1.GetID() {
		t.Fatalf("repo id changed: %d → %d", repo1.GetID(), repo2.GetID())
	}
	// Two PRs, both mergeable in turn (the second is a real three-way merge).
	for _, n := range []int{1, 2} {
		if _, _, err := gh.PullRequests.Merge(ctx, "acme", "billing", n, "", nil); err != nil {
			t.Fatalf("merge %d: %v", n, err)
		}
	}
	for _, p := range []string{"a.txt", "b.txt", "notes/a.txt", "requirements.txt"} {
		if _, _, _, err := gh.Repositories.GetContents(ctx, "acme", "billing", p, nil); err != nil {
			t.Fatalf("%s on main after merges: %v", p, err)
		}
	}
}

// TestPutWithoutBranchWritesDefault: GitHub's behaviour, kept on purpose.
func TestPutWithoutBranchWritesDefault(t *testing.T) {
	base, dir := newForge(t)
	ctx := context.Background()
	gh := newClient(t, base, testToken)
	before := branchHash(t, dir, "webapp", "main")
	res, _, err := gh.Repositories.CreateFile(ctx, "acme", "webapp", ".github/workflows/ci.yml", &github.RepositoryContentFileOptions{
		Message: github.String("add ci"), Content: []byte("on: push\n"),
	})
	if err != nil {
		t.Fatalf("create file: %v", err)
	}
	after := branchHash(t, dir, "webapp", "main")
	if after.String() != res.Commit.GetSHA() || res.Commit.Parents[0].GetSHA() != before.String() {
		t.Fatalf("main %s → %s, commit %s", before, after, res.Commit.GetSHA())
	}
}

func TestDeleteRepo(t *testing.T) {
	base, dir := newForge(t)
	ctx := context.Background()
	gh := newClient(t, base, testToken)
	repo, _, err := gh.Repositories.Get(ctx, "acme", "infra")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gh.Repositories.Delete(ctx, "acme", "infra"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, resp, err := gh.Repositories.Get(ctx, "acme", "infra"); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	if _, resp, err := gh.Repositories.GetByID(ctx, repo.GetID()); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("get by id after delete: %v", err)
	}
	if resp, err := gh.Repositories.Delete(ctx, "acme", "infra"); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "acme", "infra.git")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bare repo still on disk: %v", err)
	}
}

func TestSeedContents(t *testing.T) {
	base, _ := newForge(t)
	ctx := context.Background()
	gh := newClient(t, base, testToken)
	want := map[string]map[string]string{
		"webapp":     {"go.mod": "golang.org/x/crypto v0.14.0", "main.go": "package main"},
		"storefront": {"package.json": `"lodash": "4.17.20"`, "package-lock.json": `"node_modules/minimist": {` + "\n" + `      "version": "1.2.5"`},
		"billing":    {"requirements.txt": "jinja2==2.11.2"},
		"infra":      {"terraform/main.tf": "terraform"},
	}
	for repo, files := range want {
		for p, sub := range files {
			fc, _, _, err := gh.Repositories.GetContents(ctx, "acme", repo, p, nil)
			if err != nil {
				t.Fatalf("%s/%s: %v", repo, p, err)
			}
			s, err := fc.GetContent()
			if err != nil || !strings.Contains(s, sub) {
				t.Fatalf("%s/%s lacks %q", repo, p, sub)
			}
		}
	}
	_, dir, _, err := gh.Repositories.GetContents(ctx, "acme", "infra", "", nil)
	if err != nil || len(dir) != 3 {
		t.Fatalf("root listing: %d %v", len(dir), err)
	}
}
