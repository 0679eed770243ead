package osv

import (
	"sort"
)

// samePackage reports whether an affected[].package names (ecosystem, name). PyPI names are
// compared after PEP 503 normalisation; others exactly.
func samePackage(p AffectedPackage, ecosystem, name string) bool {
	if p.Ecosystem != ecosystem {
		return false
	}
	if ecosystem == EcosystemPyPI {
		return NormalizePyPIName(p.Name) == NormalizePyPIName(name)
	}
	return p.Name == name
}

// Affected reports whether version of package (ecosystem, name) is affected by rec, as the
// OSV schema's evaluation algorithm specifies: an affected[] entry for the package matches
// when the version is listed in its versions[] or falls in one of its SEMVER or ECOSYSTEM
// ranges. GIT ranges name commits, not versions, and are ignored here. Within a range the
// events are sorted by version ("0" first); "introduced" opens the range, "fixed" closes it
// (fixed itself is not affected), "last_affected" closes it after that version (inclusive),
// and a "limit" excludes every version at or above it. Events whose version does not parse
// in the ecosystem's ordering are ignored; a version that does not parse is matched only
// against versions[].
func Affected(rec *Record, ecosystem, name, version string) bool {
	if rec == nil {
		return false
	}
	for i := range rec.Affected {
		a := &rec.Affected[i]
		if !samePackage(a.Package, ecosystem, name) {
			continue
		}
		if affectedEntry(a, ecosystem, version) {
			return true
		}
	}
	return false
}

func affectedEntry(a *AffectedEntry, ecosystem, v string) bool {
	for _, listed := range a.Versions {
		if listed == v || (ecosystem == EcosystemGo && "v"+listed == v) {
			return true
		}
	}
	for _, r := range a.Ranges {
		if r.Type != RangeSemver && r.Type != RangeEcosystem {
			continue
		}
		if inRange(r, ecosystem, v) {
			return true
		}
	}
	return false
}

type parsedEvent struct {
	kind string // "introduced", "fixed", "last_affected", "limit"
	zero bool   // introduced "0": before every version
	v    version
}

func inRange(r Range, ecosystem, s string) bool {
	parse, err := orderingFor(r.Type, ecosystem)
	if err != nil {
		return false
	}
	v, err := parse(s)
	if err != nil {
		return false
	}
	events := make([]parsedEvent, 0, len(r.Events))
	for _, e := range r.Events {
		var pe parsedEvent
		var raw string
		switch {
		case e.Introduced != "":
			pe.kind, raw = "introduced", e.Introduced
		case e.Fixed != "":
			pe.kind, raw = "fixed", e.Fixed
		case e.LastAffected != "":
			pe.kind, raw = "last_affected", e.LastAffected
		case e.Limit != "":
			pe.kind, raw = "limit", e.Limit
		default:
			continue
		}
		if raw == "0" && pe.kind == "introduced" {
			pe.zero = true
		} else if pv, err := parse(raw); err == nil {
			pe.v = pv
		} else if raw == "*" && pe.kind == "limit" {
			continue // limit "*": no limit
		} else {
			continue
		}
		events = append(events, pe)
	}
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i], events[j]
		if a.zero || b.zero {
			return a.zero && !b.zero
		}
		return a.v.compare(b.v) < 0
	})
	for _, e := range events {
		if e.kind == "limit" && v.compare(e.v) >= 0 {
			return false
		}
	}
	affected := false
	for _, e := range events {
		switch e.kind {
		case "introduced":
			if e.zero || v.compare(e.v) >= 0 {
				affected = true
			}
		case "fixed":
			if v.compare(e.v) >= 0 {
				affected = false
			}
		case "last_affected":
			if v.compare(e.v) > 0 {
				affected = false
			}
		}
	}
	return affected
}
