// Package mirror is a local OSV-API-compatible server over OSV JSON records: a
// directory tree of *.json records, a zip in the official bulk-export layout (a
// per-ecosystem all.zip of OSV JSON files), or a directory holding such zips. It
// serves POST /v1/query, POST /v1/querybatch, GET /v1/vulns/{id} and GET /healthz.
package mirror

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agentic-jwt/patchcrew/osv"
)

// Default load limits. They are generous enough for the whole public OSV export
// (a few hundred thousand records) and still bound memory and work.
const (
	DefaultMaxRecords    = 1 << 20 // records (and zip entries) in one load
	DefaultMaxTotalBytes = 4 << 30 // uncompressed bytes read in one load
	DefaultMaxEntryBytes = osv.MaxRecordSize
)

// ErrLimit is wrapped by every load error caused by a size or count limit.
var ErrLimit = errors.New("osv mirror: load limit exceeded")

// Limits bound a load. Zero fields mean the defaults.
type Limits struct {
	MaxRecords    int   // *.json files plus zip entries (all entries, not only *.json)
	MaxTotalBytes int64 // uncompressed bytes over all records
	MaxEntryBytes int64 // one record or zip entry, at most osv.MaxRecordSize
}

func (l Limits) withDefaults() Limits {
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if l.MaxEntryBytes <= 0 || l.MaxEntryBytes > osv.MaxRecordSize {
		l.MaxEntryBytes = DefaultMaxEntryBytes
	}
	return l
}

// DB is an immutable, in-memory set of OSV records indexed by id and by
// (ecosystem, normalised package name). Withdrawn records are kept for GET by id but
// are not returned by queries, as api.osv.dev does. It is safe for concurrent use.
type DB struct {
	byID  map[string]*osv.Record
	byPkg map[pkgKey][]*osv.Record // sorted by id
}

type pkgKey struct{ ecosystem, name string }

// normName normalises a package name for the index: PEP 503 for PyPI, as is otherwise
// (osv.Affected does the same comparison).
func normName(ecosystem, name string) string {
	if ecosystem == osv.EcosystemPyPI {
		return osv.NormalizePyPIName(name)
	}
	return name
}

// Load reads OSV records from path with the default Limits: a *.json file, a *.zip
// (bulk-export layout), or a directory tree whose *.json and *.zip files are all read.
// Every record is decoded with osv.DecodeRecord; a bad record fails the load with an
// error naming the file (for a zip entry, "archive.zip!entry.json"). When one id occurs
// more than once (the export repeats multi-ecosystem advisories in each ecosystem's zip)
// the record with the latest modified time is kept.
func Load(ctx context.Context, path string) (*DB, error) {
	return LoadWithLimits(ctx, path, Limits{})
}

// LoadWithLimits is Load with explicit limits.
func LoadWithLimits(ctx context.Context, path string, lim Limits) (*DB, error) {
	l := &loader{ctx: ctx, lim: lim.withDefaults(), byID: map[string]*osv.Record{}}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("osv mirror: %w", err)
	}
	switch {
	case st.IsDir():
		err = l.loadDir(path)
	case strings.EqualFold(filepath.Ext(path), ".zip"):
		err = l.loadZip(path)
	default:
		err = l.loadFile(path)
	}
	if err != nil {
		return nil, err
	}
	return newDB(l.byID), nil
}

// NewDB builds a DB from records already in memory (each is validated; later
// duplicates with a newer modified time win).
func NewDB(records []*osv.Record) (*DB, error) {
	byID := make(map[string]*osv.Record, len(records))
	for _, r := range records {
		if r == nil {
			continue
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("osv mirror: %w", err)
		}
		if old, ok := byID[r.ID]; !ok || r.Modified.After(old.Modified) {
			byID[r.ID] = r
		}
	}
	return newDB(byID), nil
}

func newDB(byID map[string]*osv.Record) *DB {
	db := &DB{byID: byID, byPkg: map[pkgKey][]*osv.Record{}}
	for _, r := range byID {
		if r.Withdrawn != nil {
			continue // served by id, never matched by a query (as api.osv.dev does)
		}
		seen := map[pkgKey]bool{}
		for _, a := range r.Affected {
			k := pkgKey{a.Package.Ecosystem, normName(a.Package.Ecosystem, a.Package.Name)}
			if k.ecosystem == "" || k.name == "" || seen[k] {
				continue
			}
			seen[k] = true
			db.byPkg[k] = append(db.byPkg[k], r)
		}
	}
	for _, rs := range db.byPkg {
		sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	}
	return db
}

// Len is the number of records.
func (db *DB) Len() int { return len(db.byID) }

// Get returns the record with id, or nil.
func (db *DB) Get(id string) *osv.Record { return db.byID[id] }

// Query returns the records, sorted by id, affecting version of the package
// (ecosystem, name), evaluated with osv.Affected. An empty version returns every
// record with an affected[] entry for the package, as the OSV API does.
func (db *DB) Query(ecosystem, name, version string) []*osv.Record {
	cands := db.byPkg[pkgKey{ecosystem, normName(ecosystem, name)}]
	if version == "" {
		return cands
	}
	var out []*osv.Record
	for _, r := range cands {
		if osv.Affected(r, ecosystem, name, version) {
			out = append(out, r)
		}
	}
	return out
}

type loader struct {
	ctx   context.Context
	lim   Limits
	n     int
	total int64
	byID  map[string]*osv.Record
}

// count charges one record/entry against the limits.
func (l *loader) count(name string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	l.n++
	if l.n > l.lim.MaxRecords {
		return fmt.Errorf("osv mirror: %s: %w: more than %d records or zip entries", name, ErrLimit, l.lim.MaxRecords)
	}
	return nil
}

func (l *loader) add(name string, r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, l.lim.MaxEntryBytes+1))
	if err != nil {
		return fmt.Errorf("osv mirror: %s: %w", name, err)
	}
	if int64(len(data)) > l.lim.MaxEntryBytes {
		return fmt.Errorf("osv mirror: %s: %w: larger than %d bytes", name, ErrLimit, l.lim.MaxEntryBytes)
	}
	l.total += int64(len(data))
	if l.total > l.lim.MaxTotalBytes {
		return fmt.Errorf("osv mirror: %s: %w: more than %d bytes in total", name, ErrLimit, l.lim.MaxTotalBytes)
	}
	rec, err := osv.DecodeRecordBytes(data)
	if err != nil {
		return fmt.Errorf("osv mirror: %s: %w", name, err)
	}
	if old, ok := l.byID[rec.ID]; !ok || rec.Modified.After(old.Modified) {
		l.byID[rec.ID] = rec
	}
	return nil
}

func (l *loader) loadFile(path string) error {
	if err := l.count(path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("osv mirror: %w", err)
	}
	defer f.Close()
	return l.add(path, f)
}

// loadDir walks root (symlinks are not followed) and reads every regular *.json and
// *.zip file in lexical order.
func (l *loader) loadDir(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("osv mirror: %w", err)
		}
		if err := l.ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".json":
			return l.loadFile(path)
		case ".zip":
			return l.loadZip(path)
		}
		return nil
	})
}

// loadZip reads every *.json entry of a zip. The entry count is checked against the
// central directory before anything is decompressed; each entry's declared size is
// checked, and the bytes actually decompressed are bounded too (headers can lie).
func (l *loader) loadZip(path string) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("osv mirror: %s: %w", path, err)
	}
	defer zr.Close()
	if l.n+len(zr.File) > l.lim.MaxRecords {
		return fmt.Errorf("osv mirror: %s: %w: %d entries, more than %d records or zip entries", path, ErrLimit, len(zr.File), l.lim.MaxRecords)
	}
	for _, f := range zr.File {
		name := path + "!" + f.Name
		if err := l.count(name); err != nil {
			return err
		}
		if f.FileInfo().IsDir() || !strings.EqualFold(filepath.Ext(f.Name), ".json") {
			continue
		}
		if f.UncompressedSize64 > uint64(l.lim.MaxEntryBytes) {
			return fmt.Errorf("osv mirror: %s: %w: declares %d bytes, more than %d", name, ErrLimit, f.UncompressedSize64, l.lim.MaxEntryBytes)
		}
		if err := l.zipEntry(name, f); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) zipEntry(name string, f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("osv mirror: %s: %w", name, err)
	}
	defer rc.Close()
	return l.add(name, rc)
}
