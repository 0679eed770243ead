package osv

import (
	"sort"
	"strings"
)

// Fix is the outcome of fix selection for one package.
type Fix struct {
	Package    Package  `json:"package"`
	Advisories []string `json:"advisories"` // ids of the records affecting Package.Version
	// FixedVersion is the smallest version that no given record affects; "" with NoFix.
	FixedVersion string `json:"fixed_version,omitempty"`
	// SameMajor is true when FixedVersion stays in the current major line.
	SameMajor bool   `json:"same_major,omitempty"`
	NoFix     bool   `json:"no_fix,omitempty"`
	Reason    string `json:"reason,omitempty"` // why NoFix
}

// SelectFix picks the upgrade for pkg given the OSV records about it. The candidates are the
// "fixed" versions the records publish for the package; the chosen one is the
// smallest candidate above the current version that none of the given records affects
// (records that do not affect the current version are checked too, so an upgrade never walks
// into another known advisory), preferring the current major line and leaving it only when
// no candidate in it qualifies. When no candidate qualifies, NoFix is set with the reason:
// a fix is reported, never guessed. With no affecting record, Advisories is empty and
// nothing is to be fixed.
func SelectFix(pkg Package, records []*Record) Fix {
	fix := Fix{Package: pkg}
	var affecting []*Record
	for _, r := range records {
		if Affected(r, pkg.Ecosystem, pkg.Name, pkg.Version) {
			affecting = append(affecting, r)
			fix.Advisories = append(fix.Advisories, r.ID)
		}
	}
	if len(affecting) == 0 {
		return fix
	}
	sort.Strings(fix.Advisories)
	parse, err := orderingFor(RangeEcosystem, pkg.Ecosystem)
	if err != nil {
		fix.NoFix, fix.Reason = true, err.Error()
		return fix
	}
	cur, err := parse(pkg.Version)
	if err != nil {
		fix.NoFix, fix.Reason = true, "current version: "+err.Error()
		return fix
	}
	type cand struct {
		raw string
		v   version
	}
	seen := map[string]bool{}
	var cands []cand
	for _, r := range records {
		if r == nil {
			continue
		}
		for _, a := range r.Affected {
			if !samePackage(a.Package, pkg.Ecosystem, pkg.Name) {
				continue
			}
			for _, rg := range a.Ranges {
				if rg.Type != RangeSemver && rg.Type != RangeEcosystem {
					continue
				}
				for _, e := range rg.Events {
					if e.Fixed == "" || seen[e.Fixed] {
						continue
					}
					seen[e.Fixed] = true
					if v, err := parse(e.Fixed); err == nil && v.compare(cur) > 0 {
						cands = append(cands, cand{e.Fixed, v})
					}
				}
			}
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].v.compare(cands[j].v) < 0 })
	major := cur.major()
	var outside *cand
	for i := range cands {
		c := &cands[i]
		if affectedByAny(records, pkg, c.raw) {
			continue
		}
		if c.v.major() == major {
			fix.FixedVersion, fix.SameMajor = c.raw, true
			return fix
		}
		if outside == nil {
			outside = c
		}
	}
	if outside != nil {
		fix.FixedVersion = outside.raw
		return fix
	}
	fix.NoFix = true
	if len(cands) == 0 {
		fix.Reason = "no fix available: no fixed version is published for " + strings.Join(fix.Advisories, ", ")
	} else {
		fix.Reason = "no fix available: every published fixed version is still affected by an advisory"
	}
	return fix
}

func affectedByAny(records []*Record, pkg Package, v string) bool {
	for _, r := range records {
		if Affected(r, pkg.Ecosystem, pkg.Name, v) {
			return true
		}
	}
	return false
}
