package forge_test

import (
	"strings"
	"testing"

	"github.com/agentic-jwt/patchcrew/forge"
)

func TestCheckContentsPath(t *testing.T) {
	ok := []string{"go.mod", "a/b/go.mod", ".github/workflows/ci.yml", "..a", "a..", ".gitignore", "x.git"}
	bad := []string{"", "/", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", ".git", ".git/config", "a/.GIT/x", "a\\b", "a\x00b", "a\nb"}
	for _, p := range ok {
		if _, err := forge.CheckContentsPath(p); err != nil {
			t.Errorf("%q refused", p)
		}
	}
	for _, p := range bad {
		if _, err := forge.CheckContentsPath(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func FuzzContentsPath(f *testing.F) {
	for _, s := range []string{"go.mod", "a/b", "../x", ".git/config", "a//b", "./a", "a/.", "%2e%2e", ".GIT", "a\\..\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := forge.CheckContentsPath(p)
		if err != nil {
			return
		}
		if got != p {
			t.Fatalf("returned %q for %q", got, p)
		}
		for _, comp := range strings.Split(p, "/") {
			if comp == "" || comp == "." || comp == ".." || strings.EqualFold(comp, ".git") || strings.Contains(comp, "\\") {
				t.Fatalf("accepted %q (component %q)", p, comp)
			}
		}
	})
}
