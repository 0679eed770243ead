package osv

import (
	"os"
	"path/filepath"
	"testing"
)

func addSeedFiles(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzGoMod(f *testing.F) {
	addSeedFiles(f, "go.mod")
	f.Add([]byte("module x\nrequire a.b/c v1.0.0 // indirect\nreplace a.b/c => ./c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _, err := ParseGoMod("go.mod", data)
		if err != nil && pkgs != nil {
			t.Fatal("packages returned with an error")
		}
	})
}

func FuzzPackageLock(f *testing.F) {
	pj, err := os.ReadFile(filepath.Join("testdata", "package.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{"package-lock.v1.json", "package-lock.v2.json", "package-lock.v3.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, pj)
	}
	f.Add([]byte(`{"lockfileVersion":1,"dependencies":{"a":{"version":"npm:@s/b@1.0.0"}}}`), []byte(nil))
	f.Fuzz(func(t *testing.T, lock, pkgJSON []byte) {
		pkgs, _, err := ParsePackageLock("package-lock.json", lock, pkgJSON)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.Ecosystem != EcosystemNPM {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}

func FuzzRequirements(f *testing.F) {
	addSeedFiles(f, "requirements.txt")
	f.Add([]byte("a[b]==1 ; x\\\n --hash=y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _, err := ParseRequirements("requirements.txt", data)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.Name != NormalizePyPIName(p.Name) {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}
