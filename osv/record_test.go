package osv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeRecordTestdata(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "records", "GHSA-jf85-cpcp-j695.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := DecodeRecord(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "GHSA-jf85-cpcp-j695" || r.Aliases[0] != "CVE-2019-10744" || r.Affected[0].Package.Purl != "pkg:npm/lodash" ||
		r.Affected[0].Ranges[0].Events[1].Fixed != "4.17.12" || r.DatabaseSpecific.SeverityText() != "CRITICAL" || r.Modified.Year() != 2024 {
		t.Errorf("decoded %+v", r)
	}
	if !Affected(r, EcosystemNPM, "lodash", "4.17.11") || Affected(r, EcosystemNPM, "lodash", "4.17.12") {
		t.Error("range evaluation on the fixture")
	}
	if s := RecordSeverity(r); s.Rating != SeverityCritical || s.Score != 9.1 {
		t.Errorf("severity %+v", s)
	}
}

func TestDecodeRecordStrict(t *testing.T) {
	const ok = `"id":"X-1","modified":"2024-01-01T00:00:00Z"`
	for name, tc := range map[string]struct{ in, want string }{
		"unknown top-level member": {`{` + ok + `,"sumary":"typo"}`, "unknown field"},
		"unknown nested member":    {`{` + ok + `,"affected":[{"package":{"ecosystem":"npm","name":"a","version":"1"}}]}`, "unknown field"},
		"missing id":               {`{"modified":"2024-01-01T00:00:00Z"}`, "missing id"},
		"blank id":                 {`{"id":"  ","modified":"2024-01-01T00:00:00Z"}`, "missing id"},
		"missing modified":         {`{"id":"X-1"}`, "missing modified"},
		"bad modified":             {`{"id":"X-1","modified":"yesterday"}`, "cannot parse"},
		"trailing data":            {`{` + ok + `}{}`, "data after the record"},
		"not an object":            {`[]`, "cannot unmarshal"},
		"empty":                    {``, "EOF"},
		"unknown range type":       {`{` + ok + `,"affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"DATE","events":[{"introduced":"0"}]}]}]}`, "unknown type"},
		"range without events":     {`{` + ok + `,"affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[]}]}]}`, "no events"},
		"event with two members":   {`{` + ok + `,"affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1.0.0"}]}]}]}`, "exactly one"},
		"empty event":              {`{` + ok + `,"affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{}]}]}]}`, "exactly one"},
		"wrong type":               {`{` + ok + `,"aliases":"CVE-1"}`, "cannot unmarshal"},
	} {
		_, err := DecodeRecordBytes([]byte(tc.in))
		if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrInvalidRecord containing %q", name, err, tc.want)
		}
	}
	big := append([]byte(`{`+ok+`,"details":"`), bytes.Repeat([]byte("a"), MaxRecordSize)...)
	big = append(big, `"}`...)
	if _, err := DecodeRecord(bytes.NewReader(big)); !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized: %v", err)
	}
	if _, err := DecodeRecordBytes(big); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("oversized bytes: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "records", "GHSA-jf85-cpcp-j695.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"a"},"versions":["1.0"],"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1!0"},{"limit":"2.0"},{"last_affected":"1.5"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecordBytes(data)
		if err != nil {
			return
		}
		// A record that decodes must be safe to evaluate, rate and fix against.
		for _, a := range r.Affected {
			for _, v := range append([]string{"0", "1.0.0", "1.0"}, a.Versions...) {
				Affected(r, a.Package.Ecosystem, a.Package.Name, v)
				SelectFix(Package{Ecosystem: a.Package.Ecosystem, Name: a.Package.Name, Version: v}, []*Record{r})
			}
		}
		RecordSeverity(r)
	})
}
