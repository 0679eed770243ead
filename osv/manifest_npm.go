package osv

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

type packageJSON struct {
	Dependencies         map[string]string `json:"dependencies"`
	DevDependencies      map[string]string `json:"devDependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
	PeerDependencies     map[string]string `json:"peerDependencies"`
}

func (p *packageJSON) names(into map[string]bool) {
	for _, m := range []map[string]string{p.Dependencies, p.DevDependencies, p.OptionalDependencies, p.PeerDependencies} {
		for n := range m {
			into[n] = true
		}
	}
}

type lockEntry struct {
	Name         string               `json:"name"`
	Version      string               `json:"version"`
	Link         bool                 `json:"link"`
	Dependencies map[string]lockEntry `json:"dependencies"` // v1 nested tree
}

type lockPackage struct {
	packageJSON
	Name    string `json:"name"`
	Version string `json:"version"`
	Link    bool   `json:"link"`
}

type packageLock struct {
	LockfileVersion int                    `json:"lockfileVersion"`
	Packages        map[string]lockPackage `json:"packages"`     // v2, v3
	Dependencies    map[string]lockEntry   `json:"dependencies"` // v1 (v2 carries both)
}

// maxLockDepth bounds recursion into a v1 dependencies tree.
const maxLockDepth = 256

// ParsePackageLock parses a package-lock.json (lockfileVersion 1, 2 or 3) and, when
// pkgJSON is not nil, the package.json beside it. v2/v3 read the "packages" map (the key
// "node_modules/a/node_modules/b" names package b, or the entry's "name" for aliases); v1
// reads the nested "dependencies" tree. A package is Direct when it is installed at the top
// level and named in package.json's dependencies, devDependencies, optionalDependencies or
// peerDependencies, or in those of the lock's root "" entry.
func ParsePackageLock(manifest string, lock, pkgJSON []byte) ([]Package, []Skipped, error) {
	if err := checkSize(manifest, lock); err != nil {
		return nil, nil, err
	}
	direct := map[string]bool{}
	if pkgJSON != nil {
		if err := checkSize("package.json", pkgJSON); err != nil {
			return nil, nil, err
		}
		var pj packageJSON
		if err := json.Unmarshal(pkgJSON, &pj); err != nil {
			return nil, nil, &ParseError{Manifest: "package.json", Err: err}
		}
		pj.names(direct)
	}
	var pl packageLock
	if err := json.Unmarshal(lock, &pl); err != nil {
		return nil, nil, &ParseError{Manifest: manifest, Err: err}
	}
	c := &npmCollector{manifest: manifest, direct: direct, seen: map[string]int{}}
	switch {
	case pl.LockfileVersion >= 2 && pl.Packages != nil:
		if root, ok := pl.Packages[""]; ok {
			root.names(direct)
		}
		keys := make([]string, 0, len(pl.Packages))
		for k := range pl.Packages {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "" {
				continue
			}
			e := pl.Packages[k]
			i := strings.LastIndex(k, "node_modules/")
			if i < 0 {
				c.skip(k, "workspace or local package (not under node_modules)")
				continue
			}
			name := k[i+len("node_modules/"):]
			if e.Name != "" {
				name = e.Name
			}
			if e.Link {
				c.skip(k, "link to a local package")
				continue
			}
			topLevel := i == 0 && !strings.Contains(k[len("node_modules/"):], "/node_modules/")
			c.add(k, name, e.Version, topLevel)
		}
	case pl.LockfileVersion <= 1 || pl.Dependencies != nil:
		if pl.LockfileVersion > 3 {
			return nil, nil, &ParseError{Manifest: manifest, Err: fmt.Errorf("unsupported lockfileVersion %d", pl.LockfileVersion)}
		}
		c.walkV1(pl.Dependencies, "", 0)
	default:
		return nil, nil, &ParseError{Manifest: manifest, Err: fmt.Errorf("lockfileVersion %d without a \"packages\" map", pl.LockfileVersion)}
	}
	return c.pkgs, c.skipped, nil
}

type npmCollector struct {
	manifest string
	direct   map[string]bool
	seen     map[string]int // name@version -> index in pkgs
	pkgs     []Package
	skipped  []Skipped
}

func (c *npmCollector) skip(text, reason string) {
	c.skipped = append(c.skipped, Skipped{Manifest: c.manifest, Text: text, Reason: reason})
}

func (c *npmCollector) add(where, name, version string, topLevel bool) {
	if name == "" {
		c.skip(where, "no package name")
		return
	}
	if version == "" {
		c.skip(where, "no version")
		return
	}
	if _, err := semver.StrictNewVersion(version); err != nil {
		// v1 aliases are "npm:real@1.2.3" (or "npm:@scope/real@1.2.3"); git URLs, file: and
		// tarball references have no registry version to check.
		real, v, ok := npmAlias(version)
		if !ok {
			c.skip(where, fmt.Sprintf("version %q is not a registry semver version", version))
			return
		}
		name, version = real, v
	}
	isDirect := topLevel && c.direct[name]
	key := name + "@" + version
	if i, ok := c.seen[key]; ok {
		c.pkgs[i].Direct = c.pkgs[i].Direct || isDirect
		return
	}
	c.seen[key] = len(c.pkgs)
	c.pkgs = append(c.pkgs, Package{Ecosystem: EcosystemNPM, Name: name, Version: version, Manifest: c.manifest, Direct: isDirect})
}

func (c *npmCollector) walkV1(deps map[string]lockEntry, prefix string, depth int) {
	if depth > maxLockDepth {
		c.skip(prefix, "dependency tree too deep")
		return
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := deps[n]
		where := prefix + "node_modules/" + n
		c.add(where, n, e.Version, depth == 0)
		if len(e.Dependencies) > 0 {
			c.walkV1(e.Dependencies, where+"/", depth+1)
		}
	}
}

func npmAlias(version string) (name, v string, ok bool) {
	spec, found := strings.CutPrefix(version, "npm:")
	if !found {
		return "", "", false
	}
	at := strings.LastIndex(spec, "@")
	if at <= 0 {
		return "", "", false
	}
	if _, err := semver.StrictNewVersion(spec[at+1:]); err != nil {
		return "", "", false
	}
	return spec[:at], spec[at+1:], true
}
