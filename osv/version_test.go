package osv

import "testing"

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		eco, a, b string
		want      int
	}{
		// Go: OSV versions carry no "v"; pseudo-versions; +incompatible.
		{EcosystemGo, "1.2.3", "1.10.0", -1},
		{EcosystemGo, "v1.0.0", "1.0.0", 0},
		{EcosystemGo, "1.0.0-rc.1", "1.0.0", -1},
		{EcosystemGo, "0.0.0-20220314234659-1baeb1ce4c0b", "0.0.1", -1},
		{EcosystemGo, "0.0.0-20210101000000-aaaaaaaaaaaa", "0.0.0-20220314234659-1baeb1ce4c0b", -1},
		{EcosystemGo, "1.2.4-0.20220101000000-abcdefabcdef", "1.2.3", 1},
		{EcosystemGo, "1.2.4-0.20220101000000-abcdefabcdef", "1.2.4", -1},
		{EcosystemGo, "2.0.0+incompatible", "2.0.0", 0},
		{EcosystemGo, "20.10.0+incompatible", "3.0.0+incompatible", 1},
		// npm: SemVer 2.0 prerelease ordering, build metadata ignored.
		{EcosystemNPM, "1.0.0-alpha", "1.0.0-alpha.1", -1},
		{EcosystemNPM, "1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
		{EcosystemNPM, "1.0.0-alpha.2", "1.0.0-alpha.10", -1},
		{EcosystemNPM, "1.0.0-beta.11", "1.0.0-rc.1", -1},
		{EcosystemNPM, "1.0.0-rc.1", "1.0.0", -1},
		{EcosystemNPM, "1.0.0+build.5", "1.0.0", 0},
		{EcosystemNPM, "2.0.0", "1.99.99", 1},
		// PyPI: PEP 440 epochs, pre, post, dev, local.
		{EcosystemPyPI, "1!0.1", "2.0", 1},
		{EcosystemPyPI, "1.0.dev1", "1.0a1", -1},
		{EcosystemPyPI, "1.0a1", "1.0b1", -1},
		{EcosystemPyPI, "1.0b2", "1.0rc1", -1},
		{EcosystemPyPI, "1.0rc1", "1.0", -1},
		{EcosystemPyPI, "1.0", "1.0.post1", -1},
		{EcosystemPyPI, "1.0a1.dev1", "1.0a1", -1},
		{EcosystemPyPI, "1.0.post1.dev1", "1.0.post1", -1},
		{EcosystemPyPI, "1.0", "1.0.0", 0},
		{EcosystemPyPI, "1.0+local.1", "1.0", 1},
		{EcosystemPyPI, "1.10", "1.9", 1},
		{EcosystemPyPI, "1.0-1", "1.0.post1", 0},
	} {
		got, err := CompareVersions(tc.eco, tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("%s %s vs %s = %d, %v; want %d", tc.eco, tc.a, tc.b, got, err, tc.want)
		}
		if back, _ := CompareVersions(tc.eco, tc.b, tc.a); back != -tc.want {
			t.Errorf("%s %s vs %s not antisymmetric", tc.eco, tc.b, tc.a)
		}
	}
}

func TestCompareVersionsErrors(t *testing.T) {
	for _, tc := range []struct{ eco, a string }{
		{EcosystemGo, "abc"}, {EcosystemNPM, "1.0"}, {EcosystemNPM, "latest"}, {EcosystemPyPI, "not a version"}, {"Maven", "1.0"},
	} {
		if _, err := CompareVersions(tc.eco, tc.a, tc.a); err == nil {
			t.Errorf("%s %q: no error", tc.eco, tc.a)
		}
	}
}

func TestMajorLine(t *testing.T) {
	for _, tc := range []struct{ eco, v, want string }{
		{EcosystemGo, "1.4.2", "1"}, {EcosystemGo, "0.0.0-20220314234659-1baeb1ce4c0b", "0"},
		{EcosystemGo, "20.10.0+incompatible", "20"}, {EcosystemNPM, "4.17.21", "4"},
		{EcosystemPyPI, "3.2.4", "3"}, {EcosystemPyPI, "2!3.1", "2!3"}, {EcosystemPyPI, "5", "5"},
	} {
		if got, err := MajorLine(tc.eco, tc.v); err != nil || got != tc.want {
			t.Errorf("%s %s: %q, %v; want %q", tc.eco, tc.v, got, err, tc.want)
		}
	}
}
