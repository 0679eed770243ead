package ajwt

import (
	"reflect"
	"testing"
)

func TestRequiredScope(t *testing.T) {
	cases := []struct {
		resource, method string
		want             string
		ok               bool
	}{
		{ResourceGitHub, "GET", ScopeRepoRead, true},
		{ResourceGitHub, "HEAD", ScopeRepoRead, true},
		{ResourceGitHub, "PUT", ScopeRepoWrite, true},
		{ResourceGitHub, "POST", ScopeRepoWrite, true},
		{ResourceGitHub, "PATCH", ScopeRepoWrite, true},
		{ResourceGitHub, "DELETE", ScopeRepoWrite, true},
		{ResourceGitHub, "OPTIONS", ScopeRepoWrite, true},
		{ResourceGitHub, "get", ScopeRepoWrite, true}, // methods are case-sensitive
		{ResourceGitHub, "", ScopeRepoWrite, true},
		{ResourceOSV, "GET", ScopeVulnsRead, true},
		{ResourceOSV, "POST", ScopeVulnsRead, true},
		{ResourceOSV, "DELETE", ScopeVulnsRead, true},
		{"urn:ajwt:resource:gitlab", "GET", "", false},
		{"github", "GET", "", false}, // shorthand is not a resource
		{"", "GET", "", false},
	}
	for _, c := range cases {
		got, ok := RequiredScope(c.resource, c.method)
		if got != c.want || ok != c.ok {
			t.Errorf("RequiredScope(%q, %q) = %q, %v; want %q, %v", c.resource, c.method, got, ok, c.want, c.ok)
		}
	}
}

func TestParseScope(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"repo:read", []string{"repo:read"}},
		{"repo:read repo:write", []string{"repo:read", "repo:write"}},
		{"  repo:read   repo:write  ", []string{"repo:read", "repo:write"}},
		{"repo:read\trepo:write", []string{"repo:read\trepo:write"}}, // only U+0020 separates
		{"a b c", []string{"a", "b", "c"}},
	}
	for _, c := range cases {
		if got := ParseScope(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseScope(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestScopeCovers(t *testing.T) {
	cases := []struct {
		resource, scope, method string
		want                    bool
	}{
		{ResourceGitHub, "repo:read", "GET", true},
		{ResourceGitHub, "repo:read", "HEAD", true},
		{ResourceGitHub, "repo:read", "PUT", false},
		{ResourceGitHub, "repo:read repo:write", "PUT", true},
		{ResourceGitHub, "repo:write", "GET", false}, // write does not imply read
		{ResourceGitHub, "repo:write", "DELETE", true},
		{ResourceGitHub, "vulns:read", "GET", false},
		{ResourceGitHub, "", "GET", false},
		{ResourceGitHub, "repo:readx", "GET", false},
		{ResourceGitHub, "repo:read\trepo:write", "PUT", false},
		{ResourceGitHub, "  repo:write ", "POST", true},
		{ResourceOSV, "vulns:read", "POST", true},
		{ResourceOSV, "vulns:read", "GET", true},
		{ResourceOSV, "repo:read repo:write", "GET", false},
		{"urn:ajwt:resource:other", "repo:read repo:write vulns:read", "GET", false},
	}
	for _, c := range cases {
		if got := ScopeCovers(c.resource, ParseScope(c.scope), c.method); got != c.want {
			t.Errorf("ScopeCovers(%q, %q, %q) = %v, want %v", c.resource, c.scope, c.method, got, c.want)
		}
		if got := ScopeStringCovers(c.resource, c.scope, c.method); got != c.want {
			t.Errorf("ScopeStringCovers(%q, %q, %q) = %v, want %v", c.resource, c.scope, c.method, got, c.want)
		}
	}
}

func TestValidResourceScope(t *testing.T) {
	cases := []struct {
		resource, scope string
		want            bool
	}{
		{ResourceGitHub, ScopeRepoRead, true},
		{ResourceGitHub, ScopeRepoWrite, true},
		{ResourceGitHub, ScopeVulnsRead, false},
		{ResourceGitHub, ScopeAdmin, false},
		{ResourceGitHub, "repo:admin", false},
		{ResourceGitHub, "", false},
		{ResourceOSV, ScopeVulnsRead, true},
		{ResourceOSV, ScopeRepoRead, false},
		{ResourceOSV, ScopeRepoWrite, false},
		{ResourceOSV, ScopeAdmin, false},
		{"urn:ajwt:resource:other", ScopeRepoRead, false},
		{"", ScopeVulnsRead, false},
	}
	for _, c := range cases {
		if got := ValidResourceScope(c.resource, c.scope); got != c.want {
			t.Errorf("ValidResourceScope(%q, %q) = %v, want %v", c.resource, c.scope, got, c.want)
		}
	}
}

func TestScopeStringCoversNoAlloc(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		_ = ScopeStringCovers(ResourceGitHub, "repo:read repo:write", "PUT")
	})
	if n != 0 {
		t.Fatalf("ScopeStringCovers allocates %v times", n)
	}
}
