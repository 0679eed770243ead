// Package osv scans dependency manifests against OSV.dev-compatible vulnerability data:
// manifest parsers, the OSV record schema, per-ecosystem version ordering, affected-range
// evaluation, fix selection, severity, and an OSV API client.
package osv

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Ecosystem names as OSV spells them.
const (
	EcosystemGo   = "Go"
	EcosystemNPM  = "npm"
	EcosystemPyPI = "PyPI"
)

// MaxManifestSize is the largest manifest any parser accepts (4 MiB).
const MaxManifestSize = 4 << 20

// ErrTooLarge is returned (wrapped) when a manifest exceeds MaxManifestSize.
var ErrTooLarge = errors.New("manifest exceeds size limit")

// Package is one dependency found in a manifest.
//
// Version is in OSV form: for Go the leading "v" is removed ("1.2.3", "0.0.0-2024…-abcdef",
// "2.0.0+incompatible"), as OSV's Go records and API expect.
type Package struct {
	Ecosystem string `json:"ecosystem"` // "Go", "npm" or "PyPI"
	Name      string `json:"name"`
	Version   string `json:"version"`
	Manifest  string `json:"manifest"` // path of the manifest it came from
	Direct    bool   `json:"direct"`
}

// Skipped is a manifest entry that was not turned into a Package, with the reason.
// Line is 1-based for line-oriented manifests and 0 where lines do not apply (JSON).
type Skipped struct {
	Manifest string `json:"manifest"`
	Line     int    `json:"line,omitempty"`
	Text     string `json:"text,omitempty"`
	Reason   string `json:"reason"`
}

// ParseError reports a manifest that could not be parsed at all.
type ParseError struct {
	Manifest string
	Line     int // 0 when unknown
	Err      error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("parse %s:%d: %v", e.Manifest, e.Line, e.Err)
	}
	return fmt.Sprintf("parse %s: %v", e.Manifest, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func checkSize(manifest string, data []byte) error {
	if len(data) > MaxManifestSize {
		return &ParseError{Manifest: manifest, Err: fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(data), MaxManifestSize)}
	}
	return nil
}

// ReadLimited reads at most MaxManifestSize bytes from r and fails with ErrTooLarge when
// there is more.
func ReadLimited(manifest string, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", manifest, err)
	}
	if err := checkSize(manifest, data); err != nil {
		return nil, err
	}
	return data, nil
}

// ReadManifestFile reads a manifest file from disk with the size limit applied.
func ReadManifestFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open manifest: %w", err)
	}
	defer f.Close()
	return ReadLimited(path, f)
}
