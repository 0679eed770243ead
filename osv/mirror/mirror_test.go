package mirror_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentic-jwt/patchcrew/osv"
	"github.com/agentic-jwt/patchcrew/osv/mirror"
)

// record returns the JSON of a record affecting (eco, name) with introduced 0 / fixed.
func record(id, eco, name, fixed string) string {
	return fmt.Sprintf(`{"schema_version":"1.6.0","id":%q,"modified":"2024-05-06T07:08:09Z","aliases":["CVE-2024-0001"],"summary":"test record","affected":[{"package":{"ecosystem":%q,"name":%q},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":%q}]}]}]}`,
		id, eco, name, fixed)
}

var testRecords = map[string]string{
	"GO-2024-0001":        record("GO-2024-0001", "Go", "golang.org/x/net", "0.23.0"),
	"GHSA-aaaa-bbbb-cccc": record("GHSA-aaaa-bbbb-cccc", "npm", "lodash", "4.17.21"),
	"GHSA-dddd-eeee-ffff": record("GHSA-dddd-eeee-ffff", "npm", "lodash", "4.17.12"),
	"PYSEC-2024-1":        record("PYSEC-2024-1", "PyPI", "Jinja2", "3.1.4"),
	// Withdrawn: served by id, never matched by a query.
	"GHSA-wwww-wwww-wwww": strings.Replace(record("GHSA-wwww-wwww-wwww", "npm", "lodash", "9.0.0"),
		`"modified":`, `"withdrawn":"2024-06-01T00:00:00Z","modified":`, 1),
}

func writeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for id, js := range testRecords {
		eco := map[byte]string{'G': "a", 'P': "b"}[id[0]]
		sub := filepath.Join(dir, "eco"+eco)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, id+".json"), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Files that are not records are ignored.
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a record"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeZip(t testing.TB, path string, entries map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range entries {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func zipEntries() map[string]string {
	m := map[string]string{}
	for id, js := range testRecords {
		m[id+".json"] = js
	}
	return m
}

func serve(t testing.TB, db *mirror.DB) *osv.Client {
	t.Helper()
	srv := httptest.NewServer(mirror.NewServer(db, nil).Handler())
	t.Cleanup(srv.Close)
	c := osv.NewClient(srv.URL, srv.Client())
	c.MaxRetries = -1
	return c
}

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func TestLoadAndQuery(t *testing.T) {
	ctx := context.Background()
	dir := writeDir(t)
	zipPath := filepath.Join(t.TempDir(), "all.zip")
	writeZip(t, zipPath, zipEntries())
	// A directory holding per-ecosystem zips, as in the bulk export.
	zipDir := t.TempDir()
	for _, eco := range []string{"Go", "npm", "PyPI"} {
		if err := os.MkdirAll(filepath.Join(zipDir, eco), 0o755); err != nil {
			t.Fatal(err)
		}
		writeZip(t, filepath.Join(zipDir, eco, "all.zip"), zipEntries()) // duplicates are merged
	}

	for name, path := range map[string]string{"dir": dir, "zip": zipPath, "dir of zips": zipDir} {
		t.Run(name, func(t *testing.T) {
			db, err := mirror.Load(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			if db.Len() != len(testRecords) {
				t.Fatalf("Len = %d, want %d", db.Len(), len(testRecords))
			}
			c := serve(t, db)

			// POST /v1/query
			recs, err := c.Query(ctx, osv.Query{Package: &osv.QueryPackage{Ecosystem: "npm", Name: "lodash"}, Version: "4.17.11"})
			if err != nil {
				t.Fatal(err)
			}
			got := ids(recs, func(r *osv.Record) string { return r.ID })
			if strings.Join(got, ",") != "GHSA-aaaa-bbbb-cccc,GHSA-dddd-eeee-ffff" {
				t.Fatalf("query lodash 4.17.11 = %v", got)
			}
			if recs[0].Summary != "test record" || len(recs[0].Aliases) != 1 {
				t.Fatalf("record not returned in full: %+v", recs[0])
			}

			// POST /v1/querybatch with several packages (PyPI name normalised, Go with "v").
			qs := []osv.Query{
				{Package: &osv.QueryPackage{Ecosystem: "npm", Name: "lodash"}, Version: "4.17.15"},
				{Package: &osv.QueryPackage{Ecosystem: "npm", Name: "lodash"}, Version: "4.17.21"},
				{Package: &osv.QueryPackage{Ecosystem: "PyPI", Name: "jinja2"}, Version: "3.1.3"},
				{Package: &osv.QueryPackage{Ecosystem: "Go", Name: "golang.org/x/net"}, Version: "v0.22.0"},
				{Package: &osv.QueryPackage{Ecosystem: "Go", Name: "golang.org/x/net"}, Version: "0.23.0"},
				{Package: &osv.QueryPackage{Ecosystem: "npm", Name: "unknown"}, Version: "1.0.0"},
			}
			res, err := c.QueryBatch(ctx, qs)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"GHSA-aaaa-bbbb-cccc", "", "PYSEC-2024-1", "GO-2024-0001", "", ""}
			for i, w := range want {
				g := strings.Join(ids(res[i], func(v osv.VulnRef) string { return v.ID }), ",")
				if g != w {
					t.Errorf("batch[%d] = %q, want %q", i, g, w)
				}
				if len(res[i]) > 0 && res[i][0].Modified.IsZero() {
					t.Errorf("batch[%d]: no modified time", i)
				}
			}

			// A query without a version returns every (non-withdrawn) record of the package.
			all, err := c.Query(ctx, osv.Query{Package: &osv.QueryPackage{Ecosystem: "npm", Name: "lodash"}})
			if err != nil || len(all) != 2 {
				t.Fatalf("query lodash without version = %d records, %v", len(all), err)
			}
			if w, err := c.GetVuln(ctx, "GHSA-wwww-wwww-wwww"); err != nil || w.Withdrawn == nil {
				t.Fatalf("GetVuln(withdrawn) = %+v, %v", w, err)
			}

			// GET /v1/vulns/{id}
			v, err := c.GetVuln(ctx, "PYSEC-2024-1")
			if err != nil {
				t.Fatal(err)
			}
			if v.ID != "PYSEC-2024-1" || len(v.Affected) != 1 {
				t.Fatalf("GetVuln = %+v", v)
			}
			if _, err := c.GetVuln(ctx, "GHSA-zzzz-zzzz-zzzz"); !errors.Is(err, osv.ErrNotFound) {
				t.Fatalf("unknown id: err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("malformed record in dir", func(t *testing.T) {
		dir := writeDir(t)
		bad := filepath.Join(dir, "ecoa", "BAD-1.json")
		if err := os.WriteFile(bad, []byte(`{"id":"BAD-1","modified":"2024-01-01T00:00:00Z","bogus":1}`), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := mirror.Load(ctx, dir)
		if err == nil || !strings.Contains(err.Error(), bad) || !errors.Is(err, osv.ErrInvalidRecord) {
			t.Fatalf("err = %v, want an invalid-record error naming %s", err, bad)
		}
	})
	t.Run("malformed record in zip", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "all.zip")
		e := zipEntries()
		e["BAD-2.json"] = `{"id":"BAD-2"}`
		writeZip(t, p, e)
		_, err := mirror.Load(ctx, p)
		if err == nil || !strings.Contains(err.Error(), p+"!BAD-2.json") || !errors.Is(err, osv.ErrInvalidRecord) {
			t.Fatalf("err = %v, want an invalid-record error naming the entry", err)
		}
	})
	t.Run("zip with too many entries", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "all.zip")
		writeZip(t, p, zipEntries())
		_, err := mirror.LoadWithLimits(ctx, p, mirror.Limits{MaxRecords: 3})
		if !errors.Is(err, mirror.ErrLimit) {
			t.Fatalf("err = %v, want ErrLimit", err)
		}
	})
	t.Run("zip with too large entry", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "all.zip")
		e := zipEntries()
		// Compresses to almost nothing: a small zip bomb beyond the per-entry limit.
		e["BIG.json"] = `{"id":"BIG","modified":"2024-01-01T00:00:00Z","details":"` + strings.Repeat("A", osv.MaxRecordSize+10) + `"}`
		writeZip(t, p, e)
		if st, _ := os.Stat(p); st.Size() > 100<<10 {
			t.Fatalf("zip unexpectedly large: %d", st.Size())
		}
		_, err := mirror.Load(ctx, p)
		if !errors.Is(err, mirror.ErrLimit) || !strings.Contains(err.Error(), "BIG.json") {
			t.Fatalf("err = %v, want ErrLimit naming BIG.json", err)
		}
	})
	t.Run("zip over the total size", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "all.zip")
		writeZip(t, p, zipEntries())
		_, err := mirror.LoadWithLimits(ctx, p, mirror.Limits{MaxTotalBytes: 500})
		if !errors.Is(err, mirror.ErrLimit) {
			t.Fatalf("err = %v, want ErrLimit", err)
		}
	})
	t.Run("not a zip", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "all.zip")
		if err := os.WriteFile(p, []byte("nope"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := mirror.Load(ctx, p); err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestServerRequests(t *testing.T) {
	db, err := mirror.Load(context.Background(), writeDir(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mirror.NewServer(db, nil).Handler())
	defer srv.Close()

	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	tooMany := `{"queries":[` + strings.TrimSuffix(strings.Repeat(`{"package":{"ecosystem":"npm","name":"x"},"version":"1.0.0"},`, osv.MaxBatchQueries+1), ",") + `]}`
	for _, tc := range []struct {
		method, path, body string
		status, code       int
	}{
		{"GET", "/healthz", "", 200, 0},
		{"GET", "/v1/vulns/NOPE-1", "", 404, 5},
		{"POST", "/v1/query", `{"package":{"ecosystem":"npm","name":"lodash"},"version":"1.0.0","extra":1}`, 400, 3},
		{"POST", "/v1/query", `{"package":{"ecosystem":"npm","name":"lodash"}} {}`, 400, 3},
		{"POST", "/v1/query", `{"version":"1.0.0"}`, 400, 3},
		{"POST", "/v1/query", `{"Package":{"ecosystem":"npm","name":"lodash"},"version":"1.0.0"}`, 400, 3},
		{"POST", "/v1/query", `{"package":{"ecosystem":"npm","name":"lodash"},"version":"1.0.0","version":"2.0.0"}`, 400, 3},
		{"POST", "/v1/query", `{"package":{"ecosystem":"npm","name":"lodash","Name":"x"}}`, 400, 3},
		{"POST", "/v1/query", `{"package":{"ecosystem":"npm","name":"lodash"},"version":1}`, 400, 3},
		{"POST", "/v1/query", `[]`, 400, 3},
		{"POST", "/v1/querybatch", `{"queries":[{"package":{"ecosystem":"npm","name":"x"},"versions":"1"}]}`, 400, 3},
		{"POST", "/v1/query", `{"commit":"abc"}`, 400, 3},
		{"POST", "/v1/query", `{"package":{"ecosystem":"npm","name":"nothing"},"version":"1.0.0"}`, 200, 0},
		{"POST", "/v1/querybatch", tooMany, 400, 3},
		{"POST", "/v1/querybatch", `{"queries":[{"package":{"ecosystem":"npm"}}]}`, 400, 3},
		{"POST", "/v1/querybatch", `{"queries":[{"package":{"ecosystem":"npm","name":"x"},"version":"1"}],"x":` + strings.Repeat(" ", mirror.MaxRequestBytes) + `1}`, 400, 3},
		{"GET", "/v1/nothing", "", 404, 5},
		{"GET", "/v1/query", "", 405, 12},
	} {
		status, m := do(tc.method, tc.path, tc.body)
		if status != tc.status {
			t.Errorf("%s %s %.60s: status %d, want %d (%v)", tc.method, tc.path, tc.body, status, tc.status, m)
			continue
		}
		if tc.code != 0 && (m["code"] != float64(tc.code) || m["message"] == "") {
			t.Errorf("%s %s: body %v, want code %d", tc.method, tc.path, m, tc.code)
		}
	}
	if _, m := do("GET", "/v1/vulns/NOPE-1", ""); m["message"] != "Bug not found." {
		t.Errorf("404 body = %v", m)
	}
	if _, m := do("POST", "/v1/query", `{"package":{"ecosystem":"npm","name":"nothing"},"version":"1.0.0"}`); len(m) != 0 {
		t.Errorf("empty query answer = %v, want {}", m)
	}
}
