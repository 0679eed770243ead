package osv

import (
	"strings"

	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// Severity ratings.
const (
	SeverityCritical = "CRITICAL"
	SeverityHigh     = "HIGH"
	SeverityMedium   = "MEDIUM"
	SeverityLow      = "LOW"
	SeverityUnknown  = "UNKNOWN"
)

// SeverityResult is the rating of a record and where it came from.
type SeverityResult struct {
	Rating string  `json:"rating"`           // CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN
	Score  float64 `json:"score,omitempty"`  // CVSS base score when from a vector
	Vector string  `json:"vector,omitempty"` // the CVSS vector used, if any
}

// RecordSeverity rates a record: the highest CVSS base score among its severity[] entries
// (record level and affected[] level) of type CVSS_V3 (3.0 or 3.1) or CVSS_V4, each parsed
// and scored with go-cvss; when none parses, database_specific.severity (record level, then
// affected[] level; GitHub's "MODERATE" counts as MEDIUM); else UNKNOWN. A CVSS score of 0
// ("NONE") is rated LOW.
func RecordSeverity(rec *Record) SeverityResult {
	best := SeverityResult{Rating: SeverityUnknown}
	found := false
	consider := func(list []Severity) {
		for _, s := range list {
			score, ok := cvssScore(s)
			if ok && (!found || score > best.Score) {
				found = true
				best = SeverityResult{Rating: ratingFromScore(score), Score: score, Vector: s.Score}
			}
		}
	}
	if rec == nil {
		return best
	}
	consider(rec.Severity)
	for _, a := range rec.Affected {
		consider(a.Severity)
	}
	if found {
		return best
	}
	if r := normalizeRating(rec.DatabaseSpecific.SeverityText()); r != SeverityUnknown {
		return SeverityResult{Rating: r}
	}
	for _, a := range rec.Affected {
		if r := normalizeRating(a.DatabaseSpecific.SeverityText()); r != SeverityUnknown {
			return SeverityResult{Rating: r}
		}
	}
	return best
}

func cvssScore(s Severity) (float64, bool) {
	v := strings.TrimSpace(s.Score)
	switch {
	case s.Type == "CVSS_V3" && strings.HasPrefix(v, "CVSS:3.1/"):
		c, err := gocvss31.ParseVector(v)
		if err != nil {
			return 0, false
		}
		return c.BaseScore(), true
	case s.Type == "CVSS_V3" && strings.HasPrefix(v, "CVSS:3.0/"):
		c, err := gocvss30.ParseVector(v)
		if err != nil {
			return 0, false
		}
		return c.BaseScore(), true
	case s.Type == "CVSS_V4" && strings.HasPrefix(v, "CVSS:4.0/"):
		c, err := gocvss40.ParseVector(v)
		if err != nil {
			return 0, false
		}
		return c.Score(), true
	}
	return 0, false
}

// ratingFromScore maps a CVSS score to the qualitative scale (CVSS v3.1 §5 and v4.0, same
// bands).
func ratingFromScore(score float64) string {
	switch {
	case score >= 9.0:
		return SeverityCritical
	case score >= 7.0:
		return SeverityHigh
	case score >= 4.0:
		return SeverityMedium
	default:
		return SeverityLow
	}
}

func normalizeRating(s string) string {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CRITICAL":
		return SeverityCritical
	case "HIGH", "IMPORTANT":
		return SeverityHigh
	case "MEDIUM", "MODERATE":
		return SeverityMedium
	case "LOW":
		return SeverityLow
	}
	return SeverityUnknown
}
