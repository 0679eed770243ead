package osv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxRecordSize is the largest OSV record DecodeRecord accepts (4 MiB).
const MaxRecordSize = 4 << 20

// Range types of the OSV schema.
const (
	RangeSemver    = "SEMVER"
	RangeEcosystem = "ECOSYSTEM"
	RangeGit       = "GIT"
)

// Record is an OSV vulnerability record (https://ossf.github.io/osv-schema/).
type Record struct {
	SchemaVersion    string           `json:"schema_version,omitempty"`
	ID               string           `json:"id"`
	Modified         time.Time        `json:"modified"`
	Published        *time.Time       `json:"published,omitempty"`
	Withdrawn        *time.Time       `json:"withdrawn,omitempty"`
	Aliases          []string         `json:"aliases,omitempty"`
	Related          []string         `json:"related,omitempty"`
	Upstream         []string         `json:"upstream,omitempty"`
	Summary          string           `json:"summary,omitempty"`
	Details          string           `json:"details,omitempty"`
	Severity         []Severity       `json:"severity,omitempty"`
	Affected         []AffectedEntry  `json:"affected,omitempty"`
	References       []Reference      `json:"references,omitempty"`
	Credits          []Credit         `json:"credits,omitempty"`
	DatabaseSpecific DatabaseSpecific `json:"database_specific,omitempty"`
}

// AffectedEntry is one entry of a record's affected[] list.
type AffectedEntry struct {
	Package           AffectedPackage  `json:"package"`
	Severity          []Severity       `json:"severity,omitempty"`
	Ranges            []Range          `json:"ranges,omitempty"`
	Versions          []string         `json:"versions,omitempty"`
	EcosystemSpecific json.RawMessage  `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  DatabaseSpecific `json:"database_specific,omitempty"`
}

// AffectedPackage names the package an Affected entry is about.
type AffectedPackage struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Purl      string `json:"purl,omitempty"`
}

// Range is one affected range: a type and its events.
type Range struct {
	Type             string          `json:"type"`
	Repo             string          `json:"repo,omitempty"`
	Events           []Event         `json:"events"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Event is one range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Severity is one severity[] entry, e.g. {"type":"CVSS_V3","score":"CVSS:3.1/AV:N/…"}.
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Reference is one references[] entry.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Credit is one credits[] entry.
type Credit struct {
	Name    string   `json:"name"`
	Contact []string `json:"contact,omitempty"`
	Type    string   `json:"type,omitempty"`
}

// DatabaseSpecific is the free-form database_specific object; only "severity" is
// interpreted (GitHub's advisories and others put a qualitative rating there).
type DatabaseSpecific map[string]json.RawMessage

// SeverityText returns database_specific.severity when it is a string, else "".
func (d DatabaseSpecific) SeverityText() string {
	raw, ok := d["severity"]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// ErrInvalidRecord is wrapped by every DecodeRecord validation failure.
var ErrInvalidRecord = errors.New("invalid OSV record")

// DecodeRecord decodes one OSV record strictly: at most MaxRecordSize bytes, one JSON
// object and nothing after it, no members outside the OSV schema, a non-empty id, a
// modified time, and well-formed ranges (a known type, events each with exactly one member).
func DecodeRecord(r io.Reader) (*Record, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("read OSV record: %w", err)
	}
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidRecord, MaxRecordSize)
	}
	return DecodeRecordBytes(data)
}

// DecodeRecordBytes is DecodeRecord over a byte slice.
func DecodeRecordBytes(data []byte) (*Record, error) {
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidRecord, MaxRecordSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var rec Record
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the record", ErrInvalidRecord)
	}
	if err := rec.Validate(); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Validate checks the structural rules DecodeRecord enforces.
func (r *Record) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidRecord, r.ID, fmt.Sprintf(format, a...))
	}
	if strings.TrimSpace(r.ID) == "" {
		return fmt.Errorf("%w: missing id", ErrInvalidRecord)
	}
	if r.Modified.IsZero() {
		return bad("missing modified")
	}
	for i, a := range r.Affected {
		for j, rg := range a.Ranges {
			switch rg.Type {
			case RangeSemver, RangeEcosystem, RangeGit:
			default:
				return bad("affected[%d].ranges[%d]: unknown type %q", i, j, rg.Type)
			}
			if len(rg.Events) == 0 {
				return bad("affected[%d].ranges[%d]: no events", i, j)
			}
			for k, e := range rg.Events {
				n := 0
				for _, v := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
					if v != "" {
						n++
					}
				}
				if n != 1 {
					return bad("affected[%d].ranges[%d].events[%d]: want exactly one of introduced, fixed, last_affected, limit", i, j, k)
				}
			}
		}
	}
	return nil
}
