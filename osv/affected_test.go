package osv

import (
	"fmt"
	"strings"
	"testing"
)

// rec builds a record for (eco, name) from range JSON fragments.
func rec(t testing.TB, id, eco, name, affectedExtra string) *Record {
	t.Helper()
	js := fmt.Sprintf(`{"id":%q,"modified":"2024-01-02T03:04:05Z","affected":[{"package":{"ecosystem":%q,"name":%q}%s}]}`, id, eco, name, affectedExtra)
	r, err := DecodeRecordBytes([]byte(js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return r
}

func TestAffectedRanges(t *testing.T) {
	type probe struct {
		v    string
		want bool
	}
	for _, tc := range []struct {
		name   string
		eco    string
		extra  string
		probes []probe
	}{
		{"introduced=0 fixed", EcosystemGo,
			`,"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]`,
			[]probe{{"0.0.0-20200101000000-abcdefabcdef", true}, {"0.1.0", true}, {"1.2.2", true}, {"1.2.3-rc.1", true}, {"1.2.3", false}, {"1.3.0", false}, {"v1.2.0", true}}},
		{"introduced only (no fix)", EcosystemNPM,
			`,"ranges":[{"type":"SEMVER","events":[{"introduced":"2.0.0"}]}]`,
			[]probe{{"1.9.9", false}, {"2.0.0-rc.1", false}, {"2.0.0", true}, {"99.0.0", true}}},
		{"last_affected inclusive", EcosystemPyPI,
			`,"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"last_affected":"1.4.2"}]}]`,
			[]probe{{"0.9", false}, {"1.0", true}, {"1.4.2", true}, {"1.4.2.post1", false}, {"1.4.3", false}}},
		{"limit", EcosystemNPM,
			`,"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"limit":"3.0.0"}]}]`,
			[]probe{{"1.0.0", true}, {"2.9.9", true}, {"3.0.0", false}, {"4.0.0", false}}},
		{"multiple ranges and events unsorted", EcosystemNPM,
			`,"ranges":[{"type":"SEMVER","events":[{"fixed":"1.2.6"},{"introduced":"0"},{"fixed":"2.0.3"},{"introduced":"2.0.0"}]},{"type":"SEMVER","events":[{"introduced":"3.0.0"},{"fixed":"3.1.0"}]}]`,
			[]probe{{"1.2.5", true}, {"1.2.6", false}, {"1.9.0", false}, {"2.0.0", true}, {"2.0.3", false}, {"3.0.5", true}, {"3.1.0", false}}},
		{"pypi epochs and pre-releases", EcosystemPyPI,
			`,"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.0rc1"}]}]`,
			[]probe{{"1.9", true}, {"2.0a1", true}, {"2.0rc1", false}, {"2.0", false}, {"1!0.1", false}}},
		{"go +incompatible", EcosystemGo,
			`,"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"20.10.11+incompatible"}]}]`,
			[]probe{{"20.10.0+incompatible", true}, {"20.10.11+incompatible", false}}},
		{"versions list only", EcosystemPyPI,
			`,"versions":["1.0","1.1"]`,
			[]probe{{"1.0", true}, {"1.1", true}, {"1.2", false}}},
		{"GIT ranges ignored", EcosystemNPM,
			`,"ranges":[{"type":"GIT","repo":"https://x","events":[{"introduced":"0"}]}]`,
			[]probe{{"1.0.0", false}}},
		{"unparsable version only matches list", EcosystemNPM,
			`,"versions":["weird"],"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]`,
			[]probe{{"weird", true}, {"also-weird", false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rec(t, "TEST-1", tc.eco, "pkg", tc.extra)
			for _, p := range tc.probes {
				if got := Affected(r, tc.eco, "pkg", p.v); got != p.want {
					t.Errorf("%s: Affected = %v, want %v", p.v, got, p.want)
				}
			}
		})
	}
}

func TestAffectedPackageMatching(t *testing.T) {
	r := rec(t, "PYSEC-1", EcosystemPyPI, "Zope.Interface", `,"versions":["5.4.0"]`)
	if !Affected(r, EcosystemPyPI, "zope-interface", "5.4.0") {
		t.Error("PyPI names must match after PEP 503 normalisation")
	}
	if Affected(r, EcosystemNPM, "Zope.Interface", "5.4.0") {
		t.Error("other ecosystem matched")
	}
	g := rec(t, "GO-1", EcosystemGo, "golang.org/x/net", `,"versions":["0.1.0"]`)
	if Affected(g, EcosystemGo, "golang.org/x/NET", "0.1.0") || Affected(nil, EcosystemGo, "x", "1") {
		t.Error("Go names are exact; nil record affects nothing")
	}
}

func TestSelectFix(t *testing.T) {
	a := rec(t, "GHSA-a", EcosystemNPM, "lodash", `,"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.19"}]}]`)
	b := rec(t, "GHSA-b", EcosystemNPM, "lodash", `,"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]`)
	// c affects 4.x from 4.17.21 on, fixed in 4.17.22 and in 5.0.1 (5.0.0 affected)
	c := rec(t, "GHSA-c", EcosystemNPM, "lodash", `,"ranges":[{"type":"SEMVER","events":[{"introduced":"4.17.21"},{"fixed":"4.17.22"}]}]`)
	noFix := rec(t, "GHSA-open", EcosystemNPM, "lodash", `,"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"4.17.30"}]}]`)
	major := rec(t, "GHSA-major", EcosystemNPM, "lodash", `,"ranges":[{"type":"SEMVER","events":[{"introduced":"4.0.0"},{"fixed":"5.0.0"}]}]`)
	major2 := rec(t, "GHSA-major2", EcosystemNPM, "lodash", `,"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.18.0"}, {"introduced":"5.0.0"},{"fixed":"5.0.1"}]}]`)
	pkg := Package{Ecosystem: EcosystemNPM, Name: "lodash", Version: "4.17.15"}
	for _, tc := range []struct {
		name      string
		recs      []*Record
		want      string
		sameMajor bool
		noFix     bool
		ids       string
	}{
		{"smallest fixing all", []*Record{a, b}, "4.17.21", true, false, "GHSA-a,GHSA-b"},
		{"skip a fix that walks into another advisory", []*Record{a, b, c}, "4.17.22", true, false, "GHSA-a,GHSA-b"},
		{"no fixed version", []*Record{noFix}, "", false, true, "GHSA-open"},
		{"leaves the major line only when it must", []*Record{major}, "5.0.0", false, false, "GHSA-major"},
		{"prefers the current major line", []*Record{major2, a}, "4.18.0", true, false, "GHSA-a,GHSA-major2"},
		{"not affected", []*Record{rec(t, "X", EcosystemNPM, "lodash", `,"versions":["1.0.0"]`)}, "", false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := SelectFix(pkg, tc.recs)
			if f.FixedVersion != tc.want || f.SameMajor != tc.sameMajor || f.NoFix != tc.noFix || strings.Join(f.Advisories, ",") != tc.ids {
				t.Errorf("SelectFix = %+v; want %q sameMajor=%v noFix=%v ids=%s", f, tc.want, tc.sameMajor, tc.noFix, tc.ids)
			}
			if f.NoFix && !strings.Contains(f.Reason, "no fix available") {
				t.Errorf("reason %q", f.Reason)
			}
		})
	}
}

func TestRecordSeverity(t *testing.T) {
	mk := func(js string) *Record {
		r, err := DecodeRecordBytes([]byte(`{"id":"X","modified":"2024-01-01T00:00:00Z"` + js + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name, js, want string
		score          float64
	}{
		{"cvss 3.1 critical", `,"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]`, SeverityCritical, 9.8},
		{"cvss 3.0 medium", `,"severity":[{"type":"CVSS_V3","score":"CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"}]`, SeverityMedium, 5.9},
		{"cvss 3.1 high", `,"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]`, SeverityHigh, 7.5},
		{"cvss 4.0 critical", `,"severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]`, SeverityCritical, 9.3},
		{"highest of several", `,"severity":[{"type":"CVSS_V3","score":"CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"},{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]`, SeverityHigh, 7.5},
		{"affected-level severity", `,"affected":[{"package":{"ecosystem":"npm","name":"x"},"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]}]`, SeverityHigh, 7.5},
		{"bad vector falls back to database_specific", `,"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:X"}],"database_specific":{"severity":"MODERATE","cwe_ids":["CWE-79"]}`, SeverityMedium, 0},
		{"vector wins over database_specific", `,"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],"database_specific":{"severity":"CRITICAL"}`, SeverityHigh, 7.5},
		{"database_specific low", `,"database_specific":{"severity":"low"}`, SeverityLow, 0},
		{"affected database_specific", `,"affected":[{"package":{"ecosystem":"npm","name":"x"},"database_specific":{"severity":"CRITICAL"}}]`, SeverityCritical, 0},
		{"unknown", `,"database_specific":{"severity":7}`, SeverityUnknown, 0},
		{"nothing", ``, SeverityUnknown, 0},
	} {
		got := RecordSeverity(mk(tc.js))
		if got.Rating != tc.want || got.Score != tc.score {
			t.Errorf("%s: %+v, want %s %.1f", tc.name, got, tc.want, tc.score)
		}
	}
}
