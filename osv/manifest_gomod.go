package osv

import (
	"fmt"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// ParseGoMod parses a go.mod file. Every require becomes a Package (Direct unless marked
// "// indirect"); a replace directive that matches it (any version, or the exact version)
// substitutes the replacement module path and version. A replacement by a local directory
// has no version to check and is reported as Skipped.
func ParseGoMod(manifest string, data []byte) ([]Package, []Skipped, error) {
	if err := checkSize(manifest, data); err != nil {
		return nil, nil, err
	}
	f, err := modfile.Parse(manifest, data, nil)
	if err != nil {
		return nil, nil, &ParseError{Manifest: manifest, Err: err}
	}
	var pkgs []Package
	var skipped []Skipped
	for _, r := range f.Require {
		if r == nil {
			continue
		}
		mod := r.Mod
		line := 0
		if r.Syntax != nil {
			line = r.Syntax.Start.Line
		}
		if rep := findReplace(f.Replace, mod); rep != nil {
			if rep.New.Version == "" {
				skipped = append(skipped, Skipped{Manifest: manifest, Line: line, Text: mod.Path + " " + mod.Version,
					Reason: fmt.Sprintf("replaced by local directory %q", rep.New.Path)})
				continue
			}
			mod = rep.New
		}
		if err := module.Check(mod.Path, mod.Version); err != nil {
			skipped = append(skipped, Skipped{Manifest: manifest, Line: line, Text: mod.Path + " " + mod.Version,
				Reason: fmt.Sprintf("invalid module version: %v", err)})
			continue
		}
		pkgs = append(pkgs, Package{
			Ecosystem: EcosystemGo,
			Name:      mod.Path,
			Version:   strings.TrimPrefix(mod.Version, "v"),
			Manifest:  manifest,
			Direct:    !r.Indirect,
		})
	}
	return pkgs, skipped, nil
}

// findReplace returns the replace that applies to m: an exact path+version match wins over a
// path-only (all versions) match, as the go command does.
func findReplace(reps []*modfile.Replace, m module.Version) *modfile.Replace {
	var any *modfile.Replace
	for _, r := range reps {
		if r == nil || r.Old.Path != m.Path {
			continue
		}
		if r.Old.Version == m.Version {
			return r
		}
		if r.Old.Version == "" {
			any = r
		}
	}
	return any
}
