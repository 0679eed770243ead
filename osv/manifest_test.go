package osv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := ReadManifestFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkgSet renders packages as "name@version[ direct]" sorted, for compact comparison.
func pkgSet(ps []Package) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		s := p.Ecosystem + ":" + p.Name + "@" + p.Version
		if p.Direct {
			s += " direct"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestParseGoMod(t *testing.T) {
	pkgs, skipped, err := ParseGoMod("go.mod", readTestdata(t, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Go:github.com/docker/docker@20.10.0+incompatible direct",
		"Go:github.com/gin-gonic/gin@1.9.0 direct",
		"Go:github.com/new/dep@1.4.2 direct",      // replace without version: all versions
		"Go:github.com/pinned/exact@1.2.1 direct", // exact-version replace wins
		"Go:golang.org/x/crypto@0.0.0-20220314234659-1baeb1ce4c0b",
		"Go:golang.org/x/net@0.17.0",
		"Go:gopkg.in/yaml.v2@2.2.2",
	}
	if got := pkgSet(pkgs); !reflect.DeepEqual(got, want) {
		t.Errorf("packages\n got %q\nwant %q", got, want)
	}
	if len(skipped) != 1 || skipped[0].Line != 9 || !strings.Contains(skipped[0].Reason, "local directory") {
		t.Errorf("skipped = %+v, want the local replace at line 9", skipped)
	}
	for _, p := range pkgs {
		if p.Manifest != "go.mod" {
			t.Errorf("%s: manifest %q", p.Name, p.Manifest)
		}
	}
}

func TestParseGoModErrors(t *testing.T) {
	for name, in := range map[string]string{
		"syntax":    "module x\nrequire (\n",
		"bad quote": "module x\nrequire \"a v1.0.0\n",
	} {
		_, _, err := ParseGoMod("go.mod", []byte(in))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Manifest != "go.mod" {
			t.Errorf("%s: err = %v, want *ParseError for go.mod", name, err)
		}
	}
}

var wantNPM = []string{
	"npm:@babel/core@7.22.0",
	"npm:express@4.17.1 direct",
	"npm:jest@29.0.0 direct",
	"npm:lodash@4.17.20 direct",
	"npm:minimist@1.2.5",
	"npm:qs@6.11.0",
	"npm:qs@6.7.0",
	"npm:semver@6.3.0",
}

func TestParsePackageLockV2V3(t *testing.T) {
	for _, f := range []string{"package-lock.v2.json", "package-lock.v3.json"} {
		t.Run(f, func(t *testing.T) {
			// Direct comes from the lock's root "" entry even without package.json.
			for _, pj := range [][]byte{nil, readTestdata(t, "package.json")} {
				pkgs, skipped, err := ParsePackageLock(f, readTestdata(t, f), pj)
				if err != nil {
					t.Fatal(err)
				}
				if got := pkgSet(pkgs); !reflect.DeepEqual(got, wantNPM) {
					t.Errorf("packages\n got %q\nwant %q", got, wantNPM)
				}
				reasons := map[string]string{}
				for _, s := range skipped {
					reasons[s.Text] = s.Reason
				}
				if !strings.Contains(reasons["node_modules/local-lib"], "link") ||
					!strings.Contains(reasons["packages/local-lib"], "workspace") || len(skipped) != 2 {
					t.Errorf("skipped = %+v", skipped)
				}
			}
		})
	}
}

func TestParsePackageLockV1(t *testing.T) {
	pkgs, skipped, err := ParsePackageLock("package-lock.json", readTestdata(t, "package-lock.v1.json"), readTestdata(t, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := pkgSet(pkgs); !reflect.DeepEqual(got, []string{
		"npm:express@4.17.1 direct",
		"npm:jest@29.0.0 direct",
		"npm:lodash@4.17.20 direct",
		"npm:minimist@1.2.5",
		"npm:qs@6.11.0",
		"npm:qs@6.7.0",
	}) {
		t.Errorf("packages %q", got)
	}
	if len(skipped) != 1 || skipped[0].Text != "node_modules/from-git" || !strings.Contains(skipped[0].Reason, "not a registry semver") {
		t.Errorf("skipped = %+v", skipped)
	}
	// v1 without package.json: nothing can be called direct.
	pkgs, _, _ = ParsePackageLock("package-lock.json", readTestdata(t, "package-lock.v1.json"), nil)
	for _, p := range pkgs {
		if p.Direct {
			t.Errorf("%s direct without package.json", p.Name)
		}
	}
}

func TestParsePackageLockErrors(t *testing.T) {
	for name, tc := range map[string]struct{ lock, pj, manifest string }{
		"lock not json":         {"{", "", "package-lock.json"},
		"package.json not json": {`{"lockfileVersion":3,"packages":{}}`, "[", "package.json"},
		"v3 without packages":   {`{"lockfileVersion":3}`, "", "package-lock.json"},
		"future version":        {`{"lockfileVersion":9,"dependencies":{}}`, "", "package-lock.json"},
	} {
		var pj []byte
		if tc.pj != "" {
			pj = []byte(tc.pj)
		}
		_, _, err := ParsePackageLock("package-lock.json", []byte(tc.lock), pj)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Manifest != tc.manifest {
			t.Errorf("%s: err = %v, want *ParseError for %s", name, err, tc.manifest)
		}
	}
}

func TestParseRequirements(t *testing.T) {
	pkgs, skipped, err := ParseRequirements("requirements.txt", readTestdata(t, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PyPI:django@3.2.4 direct",
		"PyPI:jinja2@2.10.1 direct",
		"PyPI:pyyaml@5.3.1 direct",
		"PyPI:requests@2.25.0 direct",
		"PyPI:some-weird-name@1.0.0rc1 direct",
		"PyPI:urllib3@1.26.4 direct",
		"PyPI:zope-interface@5.4.0 direct",
	}
	if got := pkgSet(pkgs); !reflect.DeepEqual(got, want) {
		t.Errorf("packages\n got %q\nwant %q", got, want)
	}
	type sk struct {
		line   int
		reason string
	}
	wantSkipped := []sk{
		{2, "option -r"},
		{3, "option line --index-url"},
		{11, "unpinned: specifier \">=2.0\""},
		{12, "unpinned: no version specifier"},
		{13, "unpinned: specifier \"~=5.2.0\""},
		{14, "unpinned: wildcard pin"},
		{15, "unpinned: version range"},
		{16, "editable"},
		{17, "direct URL"},
		{18, "invalid PEP 440 version"},
	}
	if len(skipped) != len(wantSkipped) {
		t.Fatalf("skipped %d, want %d: %+v", len(skipped), len(wantSkipped), skipped)
	}
	for i, w := range wantSkipped {
		if skipped[i].Line != w.line || !strings.Contains(skipped[i].Reason, w.reason) {
			t.Errorf("skipped[%d] = %+v, want line %d reason containing %q", i, skipped[i], w.line, w.reason)
		}
	}
}

func TestManifestSizeLimit(t *testing.T) {
	big := bytes.Repeat([]byte("a"), MaxManifestSize+1)
	_, _, e1 := ParseGoMod("go.mod", big)
	_, _, e2 := ParsePackageLock("package-lock.json", big, nil)
	_, _, e3 := ParsePackageLock("package-lock.json", []byte("{}"), big)
	_, _, e4 := ParseRequirements("requirements.txt", big)
	_, e5 := ReadLimited("x", bytes.NewReader(big))
	for i, err := range []error{e1, e2, e3, e4, e5} {
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%d: err = %v, want ErrTooLarge", i, err)
		}
	}
	if _, err := ReadManifestFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestNormalizePyPIName(t *testing.T) {
	for in, want := range map[string]string{
		"Django": "django", "zope.interface": "zope-interface", "Some__Weird-.Name": "some-weird-name", "a": "a",
	} {
		if got := NormalizePyPIName(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}

func TestParsePackageLockEdgeCases(t *testing.T) {
	v3 := `{"lockfileVersion":3,"packages":{"":{"dependencies":{"a":"1"}},
		"node_modules/a":{"version":"1.0.0"},
		"node_modules/b/node_modules/a":{"version":"1.0.0"},
		"node_modules/nover":{},
		"node_modules/c":{"version":"latest"}}}`
	pkgs, skipped, err := ParsePackageLock("package-lock.json", []byte(v3), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The same name@version installed twice is one package, direct if either copy is.
	if got := pkgSet(pkgs); !reflect.DeepEqual(got, []string{"npm:a@1.0.0 direct"}) {
		t.Errorf("packages %q", got)
	}
	if len(skipped) != 2 || skipped[0].Reason != `version "latest" is not a registry semver version` || skipped[1].Reason != "no version" {
		t.Errorf("skipped %+v", skipped)
	}
	v1 := `{"lockfileVersion":1,"dependencies":{"x":{"version":"npm:@scope/real@2.0.0"},"y":{"version":"npm:@scope/real"}}}`
	pkgs, skipped, err = ParsePackageLock("package-lock.json", []byte(v1), []byte(`{"dependencies":{"x":"npm:@scope/real@2"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := pkgSet(pkgs); !reflect.DeepEqual(got, []string{"npm:@scope/real@2.0.0"}) || len(skipped) != 1 {
		t.Errorf("packages %q skipped %+v", got, skipped)
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, _, err := ParseGoMod("sub/go.mod", []byte("module x\nrequire (\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "parse sub/go.mod: ") {
		t.Errorf("err = %v", err)
	}
	pe := &ParseError{Manifest: "requirements.txt", Line: 3, Err: errors.New("boom")}
	if pe.Error() != "parse requirements.txt:3: boom" {
		t.Errorf("%q", pe.Error())
	}
}
