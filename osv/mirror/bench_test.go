package mirror_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/agentic-jwt/patchcrew/osv"
	"github.com/agentic-jwt/patchcrew/osv/mirror"
)

// genDB generates records for n packages per ecosystem (Go, npm, PyPI), two advisories
// per package, and returns the DB and one query per package at an affected version for
// half of them.
func genDB(b *testing.B, n int) (*mirror.DB, []osv.Query) {
	b.Helper()
	var recs []*osv.Record
	var qs []osv.Query
	ecos := []string{osv.EcosystemGo, osv.EcosystemNPM, osv.EcosystemPyPI}
	for i := range n {
		eco := ecos[i%len(ecos)]
		name := fmt.Sprintf("pkg-%d", i)
		if eco == osv.EcosystemGo {
			name = "example.com/" + name
		}
		for j := range 2 {
			js := fmt.Sprintf(`{"id":"GEN-%d-%d","modified":"2024-01-01T00:00:00Z","summary":"generated","affected":[{"package":{"ecosystem":%q,"name":%q},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.%d.0"}]},{"type":"ECOSYSTEM","events":[{"introduced":"2.0.0"},{"last_affected":"2.%d.1"}]}],"versions":["0.9.0"]}]}`,
				i, j, eco, name, j+1, j+3)
			r, err := osv.DecodeRecordBytes([]byte(js))
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, r)
		}
		v := "1.0.5" // affected by both
		if i%2 == 1 {
			v = "3.0.0" // affected by none
		}
		qs = append(qs, osv.Query{Package: &osv.QueryPackage{Ecosystem: eco, Name: name}, Version: v})
	}
	db, err := mirror.NewDB(recs)
	if err != nil {
		b.Fatal(err)
	}
	return db, qs
}

// BenchmarkQueryBatch1000 scans 1,000 packages with the real client over loopback (one
// querybatch request). The target for a 1,000-package scan is ≤ 1 s.
func BenchmarkQueryBatch1000(b *testing.B) {
	db, qs := genDB(b, 1000)
	c := serve(b, db)
	ctx := context.Background()
	for b.Loop() {
		res, err := c.QueryBatch(ctx, qs)
		if err != nil {
			b.Fatal(err)
		}
		if len(res[0]) != 2 || len(res[1]) != 0 {
			b.Fatalf("unexpected results: %v %v", res[0], res[1])
		}
	}
}

// BenchmarkQueryBatch1000Records is the same scan followed by GET /v1/vulns/{id} for each
// distinct vulnerability found (1,000 here), as a scanner fetching details does.
func BenchmarkQueryBatch1000Records(b *testing.B) {
	db, qs := genDB(b, 1000)
	c := serve(b, db)
	ctx := context.Background()
	for b.Loop() {
		res, err := c.QueryBatch(ctx, qs)
		if err != nil {
			b.Fatal(err)
		}
		for _, refs := range res {
			for _, v := range refs {
				if _, err := c.GetVuln(ctx, v.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// BenchmarkLoadZip10k loads an all.zip of 10,000 generated records (load throughput for
// estimating a real ecosystem export).
func BenchmarkLoadZip10k(b *testing.B) {
	entries := map[string]string{}
	for i := range 10000 {
		id := fmt.Sprintf("GEN-%d", i)
		entries[id+".json"] = fmt.Sprintf(`{"id":%q,"modified":"2024-01-01T00:00:00Z","summary":"generated","details":"some details of moderate length for a generated advisory record","affected":[{"package":{"ecosystem":"npm","name":"pkg-%d"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]}],"references":[{"type":"WEB","url":"https://example.com/%d"}]}`, id, i%3000, i)
	}
	p := b.TempDir() + "/all.zip"
	writeZip(b, p, entries)
	ctx := context.Background()
	for b.Loop() {
		db, err := mirror.Load(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		if db.Len() != 10000 {
			b.Fatal(db.Len())
		}
	}
}
