package ajwt

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// The demo workflow of DESIGN §6, as far as the tests here use it.
var demoManifests = []string{"go.mod", "package.json", "package-lock.json", "requirements.txt"}

const (
	demoRepo   = "acme/webapp"
	demoBranch = "ajwt/exe_7Qm2rT9kLx4Z"
)

func demoValues() map[string]string { return map[string]string{"repo": demoRepo, "branch": demoBranch} }

// commitChangesTemplates are the operations of step commit_changes: GET and PUT on every
// manifest at the root and below, PUT with json {"branch": "{branch}"}.
func commitChangesTemplates() []Operation {
	var ops []Operation
	for _, m := range demoManifests {
		for _, p := range []string{"/repos/{repo}/contents/" + m, "/repos/{repo}/contents/**/" + m} {
			ops = append(ops,
				Operation{Method: "GET", Path: p},
				Operation{Method: "PUT", Path: p, JSON: map[string]string{"branch": "{branch}"}})
		}
	}
	return ops
}

func createBranchTemplates() []Operation {
	return []Operation{
		{Method: "GET", Path: "/repos/{repo}/git/ref/heads/*"},
		{Method: "POST", Path: "/repos/{repo}/git/refs", JSON: map[string]string{"ref": "refs/heads/{branch}"}},
	}
}

func fillOps(tb testing.TB, tmpls []Operation, values map[string]string) []Operation {
	tb.Helper()
	out := make([]Operation, len(tmpls))
	for i, o := range tmpls {
		f, err := o.Fill(values)
		if err != nil {
			tb.Fatalf("Fill(%+v): %v", o, err)
		}
		out[i] = f
	}
	return out
}

func TestValidParamValue(t *testing.T) {
	cases := []struct {
		v    string
		want bool
	}{
		{"acme", true},
		{"acme/webapp", true},
		{"ajwt/exe_7Qm2rT9kLx4Z", true},
		{"a.b-c_d/E.F", true},
		{"...", true}, // three dots is a name, not a dot segment
		{"a/.../b", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/./b", false},
		{"a/../b", false},
		{"../etc", false},
		{"a/..", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"a b", false},
		{"a%2Fb", false},
		{"a~b", false},
		{"a\\b", false},
		{"a?b", false},
		{"a\x00b", false},
		{"é", false},
		{strings.Repeat("a", 256), true},
		{strings.Repeat("a", 257), false},
		{strings.Repeat("ab/", 85) + "a", true}, // 256 bytes
	}
	for _, c := range cases {
		if got := ValidParamValue(c.v); got != c.want {
			t.Errorf("ValidParamValue(%q) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestTemplateParams(t *testing.T) {
	cases := []struct {
		tmpl    string
		want    []string
		wantErr bool
	}{
		{"/v1/querybatch", nil, false},
		{"/v1/vulns/*", nil, false},
		{"/repos/{repo}", []string{"repo"}, false},
		{"/repos/{repo}/git/trees/*", []string{"repo"}, false},
		{"/repos/{repo}/contents/**/go.mod", []string{"repo"}, false},
		{"/repos/{repo}/git/ref/heads/{branch}", []string{"repo", "branch"}, false},
		{"/x/{a}/{b_2}/{a}/{_c}", []string{"a", "b_2", "_c"}, false},
		{"/~user/a.b-c_d", nil, false},
		{"/**", nil, false},
		{"/" + strings.Repeat("a", MaxTemplateBytes-1), nil, false},

		{"/" + strings.Repeat("a", MaxTemplateBytes), nil, true},
		{"", nil, true},
		{"repos/{repo}", nil, true},
		{"/", nil, true},
		{"/repos/", nil, true},
		{"//repos", nil, true},
		{"/repos//x", nil, true},
		{"/./repos", nil, true},
		{"/repos/..", nil, true},
		{"/repos/../x", nil, true},
		{"/{Repo}", nil, true},
		{"/{1repo}", nil, true},
		{"/{}", nil, true},
		{"/{repo", nil, true},
		{"/repo}", nil, true},
		{"/a{repo}", nil, true},
		{"/{repo}a", nil, true},
		{"/{re-po}", nil, true},
		{"/{{repo}}", nil, true},
		{"/**/a/**", nil, true},
		{"/a*", nil, true},
		{"/***", nil, true},
		{"/a%2Fb", nil, true},
		{"/a b", nil, true},
		{"/a?b", nil, true},
		{"/a\\b", nil, true},
		{"/é", nil, true},
	}
	for _, c := range cases {
		got, err := TemplateParams(c.tmpl)
		if (err != nil) != c.wantErr {
			t.Errorf("TemplateParams(%q) error = %v, want error %v", c.tmpl, err, c.wantErr)
			continue
		}
		if !c.wantErr && !reflect.DeepEqual(got, c.want) {
			t.Errorf("TemplateParams(%q) = %q, want %q", c.tmpl, got, c.want)
		}
	}
}

func TestFillTemplate(t *testing.T) {
	vals := demoValues()
	cases := []struct {
		tmpl    string
		values  map[string]string
		want    string
		wantErr bool
	}{
		{"/repos/{repo}", vals, "/repos/acme/webapp", false},
		{"/repos/{repo}/git/trees/*", vals, "/repos/acme/webapp/git/trees/*", false},
		{"/repos/{repo}/contents/**/go.mod", vals, "/repos/acme/webapp/contents/**/go.mod", false},
		{"/repos/{repo}/git/ref/heads/{branch}", vals, "/repos/acme/webapp/git/ref/heads/ajwt/exe_7Qm2rT9kLx4Z", false},
		{"/v1/querybatch", nil, "/v1/querybatch", false},
		{"/{a}/{a}", map[string]string{"a": "x"}, "/x/x", false},

		{"/repos/{repo}", map[string]string{}, "", true},
		{"/repos/{repo}", nil, "", true},
		{"/repos/{repo}", map[string]string{"repo": ""}, "", true},
		{"/repos/{repo}", map[string]string{"repo": "../etc"}, "", true},
		{"/repos/{repo}", map[string]string{"repo": "acme/"}, "", true},
		{"/repos/{repo}", map[string]string{"repo": "acme//webapp"}, "", true},
		{"/repos/{repo}", map[string]string{"repo": "acme%2Fwebapp"}, "", true},
		{"/repos/{repo}", map[string]string{"repo": "acme/*"}, "", true},
		{"/repos/{repo}", map[string]string{"repo": "**"}, "", true},
		{"/repos/{repo}/", vals, "", true},
		{"/repos/{Repo}", map[string]string{"Repo": "x"}, "", true},
	}
	for _, c := range cases {
		got, err := FillTemplate(c.tmpl, c.values)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("FillTemplate(%q, %v) = %q, %v; want %q, error %v", c.tmpl, c.values, got, err, c.want, c.wantErr)
		}
	}
}

func TestOperationFill(t *testing.T) {
	vals := demoValues()
	cases := []struct {
		name    string
		op      Operation
		want    Operation
		wantErr bool
	}{
		{"path only",
			Operation{Method: "GET", Path: "/repos/{repo}/git/trees/*"},
			Operation{Method: "GET", Path: "/repos/acme/webapp/git/trees/*"}, false},
		{"json branch",
			Operation{Method: "PUT", Path: "/repos/{repo}/contents/**/go.mod", JSON: map[string]string{"branch": "{branch}"}},
			Operation{Method: "PUT", Path: "/repos/acme/webapp/contents/**/go.mod", JSON: map[string]string{"branch": demoBranch}}, false},
		{"json ref inside a string",
			Operation{Method: "POST", Path: "/repos/{repo}/git/refs", JSON: map[string]string{"ref": "refs/heads/{branch}"}},
			Operation{Method: "POST", Path: "/repos/acme/webapp/git/refs", JSON: map[string]string{"ref": "refs/heads/" + demoBranch}}, false},
		{"json two params and literal",
			Operation{Method: "POST", Path: "/x", JSON: map[string]string{"a": "{repo}:{branch}!", "b": "plain"}},
			Operation{Method: "POST", Path: "/x", JSON: map[string]string{"a": demoRepo + ":" + demoBranch + "!", "b": "plain"}}, false},
		{"json missing value", Operation{Method: "POST", Path: "/x", JSON: map[string]string{"a": "{nope}"}}, Operation{}, true},
		{"json unclosed", Operation{Method: "POST", Path: "/x", JSON: map[string]string{"a": "refs/{branch"}}, Operation{}, true},
		{"json stray close", Operation{Method: "POST", Path: "/x", JSON: map[string]string{"a": "refs}"}}, Operation{}, true},
		{"json bad name", Operation{Method: "POST", Path: "/x", JSON: map[string]string{"a": "{Branch}"}}, Operation{}, true},
		{"json empty name", Operation{Method: "POST", Path: "/x", JSON: map[string]string{"a": "{}"}}, Operation{}, true},
		{"bad path", Operation{Method: "GET", Path: "/repos/{repo}/../x"}, Operation{}, true},
		{"missing path param", Operation{Method: "GET", Path: "/repos/{owner}"}, Operation{}, true},
	}
	for _, c := range cases {
		orig := c.op
		var origJSON map[string]string
		if c.op.JSON != nil {
			origJSON = map[string]string{}
			for k, v := range c.op.JSON {
				origJSON[k] = v
			}
		}
		got, err := c.op.Fill(vals)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: error = %v, want error %v", c.name, err, c.wantErr)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Fill = %+v, want %+v", c.name, got, c.want)
		}
		if c.op.Path != orig.Path || !reflect.DeepEqual(c.op.JSON, origJSON) {
			t.Errorf("%s: Fill modified its receiver", c.name)
		}
	}
}

func TestMatchPath(t *testing.T) {
	const trees = "/repos/acme/webapp/git/trees/*"
	const deep = "/repos/acme/webapp/contents/**/go.mod"
	const root = "/repos/acme/webapp/contents/go.mod"
	cases := []struct {
		pattern, path string
		want          bool
	}{
		// literals
		{root, "/repos/acme/webapp/contents/go.mod", true},
		{root, "/repos/acme/webapp/contents/go.mod/", false},
		{root, "/repos/acme/webapp/contents//go.mod", false},
		{root, "//repos/acme/webapp/contents/go.mod", false},
		{root, "/repos/acme/webapp/contents/./go.mod", false},
		{root, "/repos/acme/webapp/contents/x/../go.mod", false},
		{root, "/repos/acme/webapp/contents/go%2Emod", false},
		{root, "/repos/acme%2Fwebapp/contents/go.mod", false},
		{root, "/repos/acme/webapp/contents/Go.mod", false},
		{root, "/repos/acme/webapp/contents/go.mod?ref=main", false},
		{root, "/repos/acme/webapp/contents", false},
		{root, "repos/acme/webapp/contents/go.mod", false},
		{root, "", false},
		{"/a/~b", "/a/~b", true},
		{"/a/~b", "/a/%7Eb", false}, // no decoding: a literal matches only itself
		{"/a//b", "/a//b", true},    // identical, literal only
		{"/a/", "/a/", true},
		{"/a", "/a/", false},
		{"/a/b", "/a//b", false},
		{"/repos/{repo}", "/repos/{repo}", false}, // unfilled parameter
		{"repos", "repos", false},

		// *
		{trees, "/repos/acme/webapp/git/trees/3f2a9c", true},
		{trees, "/repos/acme/webapp/git/trees/main", true},
		{trees, "/repos/acme/webapp/git/trees/%41", true},
		{trees, "/repos/acme/webapp/git/trees", false},
		{trees, "/repos/acme/webapp/git/trees/", false},
		{trees, "/repos/acme/webapp/git/trees/.", false},
		{trees, "/repos/acme/webapp/git/trees/..", false},
		{trees, "/repos/acme/webapp/git/trees/a/b", false},
		{trees, "/repos/acme/webapp/git/trees/a/", false},
		{trees, "/repos/acme/webapp/git/trees/a%2Fb", false},
		{trees, "/repos/acme/webapp/git/trees/a%2fb", false},
		{trees, "/repos/acme/webapp/git/trees/a%5Cb", false},
		{trees, "/repos/acme/webapp/git/trees/a\\b", false},
		{trees, "/repos/acme/webapp/git/trees/%2E%2E", false},
		{trees, "/repos/acme/webapp/git/trees/%2e", false},
		{trees, "/repos/acme/webapp/git/trees/a%00", false},
		{trees, "/repos/acme/webapp/git/trees/a%", false},
		{trees, "/repos/acme/webapp/git/trees/a%2", false},
		{trees, "/repos/acme/infra/git/trees/main", false},

		// ** before a literal
		{deep, "/repos/acme/webapp/contents/go.mod", false}, // ** needs one segment
		{deep, "/repos/acme/webapp/contents/svc/go.mod", true},
		{deep, "/repos/acme/webapp/contents/a/b/c/go.mod", true},
		{deep, "/repos/acme/webapp/contents//go.mod", false},
		{deep, "/repos/acme/webapp/contents/./go.mod", false},
		{deep, "/repos/acme/webapp/contents/../go.mod", false},
		{deep, "/repos/acme/webapp/contents/a/../go.mod", false},
		{deep, "/repos/acme/webapp/contents/a/./go.mod", false},
		{deep, "/repos/acme/webapp/contents/a//go.mod", false},
		{deep, "/repos/acme/webapp/contents/a/go.mod/", false},
		{deep, "/repos/acme/webapp/contents/a/go.modx", false},
		{deep, "/repos/acme/webapp/contents/a/go.mod/x", false},
		{deep, "/repos/acme/webapp/contents/a%2F..%2F..%2Finfra/go.mod", false},
		{deep, "/repos/acme/webapp/contents/.github/workflows/go.mod", true}, // ".github" is a name
		{deep, "/repos/acme/webapp/go.mod", false},
		{deep, "/repos/acme/webapp/contents", false},
		{deep, "/repos/acme/webapp/contents/", false},

		// ** last and first
		{"/a/**", "/a", false},
		{"/a/**", "/a/", false},
		{"/a/**", "/a/b", true},
		{"/a/**", "/a/b/c", true},
		{"/a/**", "/a/b/", false},
		{"/a/**", "/a/b//c", false},
		{"/a/**", "/a/b/..", false},
		{"/**", "/", false},
		{"/**", "/x", true},
		{"/**/go.mod", "/go.mod", false},
		{"/**/go.mod", "/a/go.mod", true},

		// * after **
		{"/a/**/b/*", "/a/x/b/y", true},
		{"/a/**/b/*", "/a/x/y/b/z", true},
		{"/a/**/b/*", "/a/b/y", false},
		{"/a/**/b/*", "/a/x/b/", false},
		{"/a/**/b/*", "/a/x/b/..", false},
		{"/a/**/b/*", "/a/x/c/y", false},
		// a second ** is never produced by a valid template and never matches
		{"/a/**/b/**", "/a/x/b/y", false},
	}
	for _, c := range cases {
		if got := MatchPath(c.pattern, c.path); got != c.want {
			t.Errorf("MatchPath(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

func TestValidEscapedPath(t *testing.T) {
	cases := []struct {
		path string
		want bool
	}{
		{"/github/repos/acme/webapp", true},
		{"/github/repos/acme/webapp/contents/.github/x", true},
		{"/osv/v1/vulns/GHSA-abcd-1234", true},
		{"/a/%41", true},
		{"", false},
		{"/", false},
		{"github/repos", false},
		{"/github/", false},
		{"/github//repos", false},
		{"/github/./repos", false},
		{"/github/../repos", false},
		{"/github/repos/..", false},
		{"/github/repos/a%2Fb", false},
		{"/github/repos/a%2fb", false},
		{"/github/repos/a%5Cb", false},
		{"/github/repos/a%2Eb", false},
		{"/github/repos/a%00", false},
		{"/github/repos/a\\b", false},
		{"/github/repos/a%", false},
	}
	for _, c := range cases {
		if got := ValidEscapedPath(c.path); got != c.want {
			t.Errorf("ValidEscapedPath(%q) = %v, want %v", c.path, got, c.want)
		}
	}
}

func TestDecodeJSONObject(t *testing.T) {
	cases := []struct {
		body    string
		members []string
		wantErr bool
	}{
		{`{"a":1,"b":"x"}`, []string{"a", "b"}, false},
		{" \n{\"a\":{\"a\":1}}\t ", []string{"a"}, false},
		{`{}`, []string{}, false},
		{`{"a":1,"A":2}`, []string{"a", "A"}, false}, // distinct names
		{``, nil, true},
		{`   `, nil, true},
		{`null`, nil, true},
		{`[]`, nil, true},
		{`[{"a":1}]`, nil, true},
		{`"x"`, nil, true},
		{`1`, nil, true},
		{`{"a":1,"a":2}`, nil, true},
		{`{"a":1,"\u0061":2}`, nil, true}, // the same name after unescaping
		{`{"a":{"b":1,"b":2}}`, nil, true},
		{`{"a":[{"b":1,"b":1}]}`, nil, true},
		{`{"a":1} x`, nil, true},
		{`{"a":1}{}`, nil, true},
		{`{"a":1,}`, nil, true},
		{`{"a":1`, nil, true},
		{"{\"a\":\"\xff\"}", nil, true},
		{strings.Repeat(`{"a":`, MaxJSONDepth+2) + "1" + strings.Repeat("}", MaxJSONDepth+2), nil, true},
	}
	for _, c := range cases {
		m, err := DecodeJSONObject([]byte(c.body))
		if (err != nil) != c.wantErr {
			t.Errorf("DecodeJSONObject(%q) error = %v, want error %v", c.body, err, c.wantErr)
			continue
		}
		if c.wantErr {
			continue
		}
		if m == nil || len(m) != len(c.members) {
			t.Errorf("DecodeJSONObject(%q) = %v, want members %q", c.body, m, c.members)
			continue
		}
		for _, k := range c.members {
			if _, ok := m[k]; !ok {
				t.Errorf("DecodeJSONObject(%q) lacks member %q", c.body, k)
			}
		}
	}
}

func TestOperationMatches(t *testing.T) {
	withJSON := Operation{Method: "PUT", Path: "/repos/acme/webapp/contents/go.mod", JSON: map[string]string{"branch": demoBranch}}
	noJSON := Operation{Method: "GET", Path: "/repos/acme/webapp/contents/go.mod"}
	obj := func(s string) map[string]json.RawMessage {
		m, err := DecodeJSONObject([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	cases := []struct {
		name         string
		op           Operation
		method, path string
		body         map[string]json.RawMessage
		want         bool
	}{
		{"no json, nil body", noJSON, "GET", "/repos/acme/webapp/contents/go.mod", nil, true},
		{"no json, any body", noJSON, "GET", "/repos/acme/webapp/contents/go.mod", obj(`{"x":1}`), true},
		{"method lower case", noJSON, "get", "/repos/acme/webapp/contents/go.mod", nil, false},
		{"method differs", noJSON, "HEAD", "/repos/acme/webapp/contents/go.mod", nil, false},
		{"path differs", noJSON, "GET", "/repos/acme/webapp/contents/go.sum", nil, false},
		{"json nil body", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", nil, false},
		{"json empty body", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", map[string]json.RawMessage{}, false},
		{"json equal", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":"` + demoBranch + `","message":"m"}`), true},
		{"json escaped equal", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":"\u0061jwt\/exe_7Qm2rT9kLx4Z"}`), true},
		{"json other value", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":"main"}`), false},
		{"json prefix value", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":"` + demoBranch + `x"}`), false},
		{"json number", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":1}`), false},
		{"json null", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":null}`), false},
		{"json array", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":["` + demoBranch + `"]}`), false},
		{"json object", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":{"name":"` + demoBranch + `"}}`), false},
		{"json member missing", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"message":"m"}`), false},
		{"json nested only", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"x":{"branch":"` + demoBranch + `"}}`), false},
		{"json case look-alike", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":"` + demoBranch + `","Branch":"main"}`), false},
		{"json upper-case look-alike", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"branch":"` + demoBranch + `","BRANCH":"main"}`), false},
		// U+212A KELVIN SIGN folds to "k" (as encoding/json's field matching does)
		{"json Unicode-fold look-alike", Operation{Method: "PUT", Path: "/k", JSON: map[string]string{"key": "v"}}, "PUT", "/k", obj(`{"key":"v","\u212Aey":"w"}`), false},
		{"json Unicode-fold alone", Operation{Method: "PUT", Path: "/k", JSON: map[string]string{"key": "v"}}, "PUT", "/k", obj(`{"\u212Aey":"v"}`), false},
		{"json only look-alike", withJSON, "PUT", "/repos/acme/webapp/contents/go.mod", obj(`{"Branch":"` + demoBranch + `"}`), false},
	}
	for _, c := range cases {
		if got := c.op.Matches(c.method, c.path, c.body); got != c.want {
			t.Errorf("%s: Matches = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMatchOperations(t *testing.T) {
	commit := fillOps(t, commitChangesTemplates(), demoValues())
	branch := fillOps(t, createBranchTemplates(), demoValues())
	const ct = "application/json"
	put := func(extra string) string {
		return `{"message":"bump x/net","content":"bW9kdWxlIGV4YW1wbGUK","sha":"3f2a9c",` + extra + `}`
	}
	good := put(`"branch":"` + demoBranch + `"`)
	cases := []struct {
		name         string
		ops          []Operation
		method, path string
		ct, body     string
		want         bool
		wantErr      bool
	}{
		{"GET root manifest", commit, "GET", "/repos/acme/webapp/contents/go.mod", "", "", true, false},
		{"GET nested manifest", commit, "GET", "/repos/acme/webapp/contents/svc/api/package.json", "", "", true, false},
		{"GET lock file", commit, "GET", "/repos/acme/webapp/contents/package-lock.json", "", "", true, false},
		{"GET ignores a malformed body", commit, "GET", "/repos/acme/webapp/contents/go.mod", ct, `{"a":1,"a":2}`, true, false},
		{"GET other file", commit, "GET", "/repos/acme/webapp/contents/README.md", "", "", false, false},
		{"GET other repo", commit, "GET", "/repos/acme/infra/contents/go.mod", "", "", false, false},
		{"GET escaped slash in repo", commit, "GET", "/repos/acme%2Fwebapp/contents/go.mod", "", "", false, false},
		{"GET dot-dot", commit, "GET", "/repos/acme/webapp/contents/svc/../go.mod", "", "", false, false},
		{"GET empty segment", commit, "GET", "/repos/acme/webapp/contents//go.mod", "", "", false, false},
		{"DELETE manifest", commit, "DELETE", "/repos/acme/webapp/contents/go.mod", ct, good, false, false},
		{"put lower case", commit, "put", "/repos/acme/webapp/contents/go.mod", ct, good, false, false},

		{"PUT root manifest", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, good, true, false},
		{"PUT nested manifest", commit, "PUT", "/repos/acme/webapp/contents/a/b/requirements.txt", ct, good, true, false},
		{"PUT charset param", commit, "PUT", "/repos/acme/webapp/contents/go.mod", "application/json; charset=utf-8", good, true, false},
		{"PUT charset quoted upper", commit, "PUT", "/repos/acme/webapp/contents/go.mod", `Application/JSON;charset="UTF-8"`, good, true, false},
		{"PUT content type case", commit, "PUT", "/repos/acme/webapp/contents/go.mod", "APPLICATION/JSON", good, true, false},
		{"PUT whitespace around body", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, "\n " + good + "\n", true, false},
		{"PUT no content type", commit, "PUT", "/repos/acme/webapp/contents/go.mod", "", good, false, false},
		{"PUT text/plain", commit, "PUT", "/repos/acme/webapp/contents/go.mod", "text/plain", good, false, false},
		{"PUT json suffix type", commit, "PUT", "/repos/acme/webapp/contents/go.mod", "application/jsonx", good, false, false},
		{"PUT vnd json", commit, "PUT", "/repos/acme/webapp/contents/go.mod", "application/vnd.github+json", good, false, false},
		{"PUT latin1 charset", commit, "PUT", "/repos/acme/webapp/contents/go.mod", "application/json; charset=latin1", good, false, false},
		{"PUT malformed parameters", commit, "PUT", "/repos/acme/webapp/contents/go.mod", "application/json; charset", good, false, false},
		{"PUT wrong content type is not decoded", commit, "PUT", "/repos/acme/webapp/contents/go.mod", "text/plain", `{"a":1,"a":2}`, false, false},
		{"PUT other file is not decoded", commit, "PUT", "/repos/acme/webapp/contents/README.md", ct, `{"a":1,"a":2}`, false, false},
		{"PUT branch main", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, put(`"branch":"main"`), false, false},
		{"PUT branch missing", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, put(`"committer":{"name":"x"}`), false, false},
		{"PUT branch wrong type", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, put(`"branch":7`), false, false},
		{"PUT branch look-alike", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, put(`"branch":"` + demoBranch + `","Branch":"main"`), false, false},
		{"PUT branch escaped", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, put(`"br\u0061nch":"` + demoBranch + `"`), true, false},

		{"PUT duplicate member", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, put(`"branch":"` + demoBranch + `","branch":"main"`), false, true},
		{"PUT duplicate via escape", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, put(`"branch":"` + demoBranch + `","br\u0061nch":"main"`), false, true},
		{"PUT nested duplicate", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, put(`"branch":"` + demoBranch + `","committer":{"name":"a","name":"b"}`), false, true},
		{"PUT trailing data", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, good + `{}`, false, true},
		{"PUT invalid UTF-8", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, put(`"branch":"` + demoBranch + `","message2":"` + "\xc3\x28" + `"`), false, true},
		{"PUT array body", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, `[` + good + `]`, false, true},
		{"PUT null body", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, `null`, false, true},
		{"PUT empty body", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, ``, false, true},
		{"PUT truncated body", commit, "PUT", "/repos/acme/webapp/contents/go.mod", ct, good[:len(good)-1], false, true},

		{"POST ref", branch, "POST", "/repos/acme/webapp/git/refs", ct, `{"ref":"refs/heads/` + demoBranch + `","sha":"3f2a9c"}`, true, false},
		{"POST ref main", branch, "POST", "/repos/acme/webapp/git/refs", ct, `{"ref":"refs/heads/main","sha":"3f2a9c"}`, false, false},
		{"POST ref tag", branch, "POST", "/repos/acme/webapp/git/refs", ct, `{"ref":"refs/tags/` + demoBranch + `","sha":"3f2a9c"}`, false, false},
		{"GET ref", branch, "GET", "/repos/acme/webapp/git/ref/heads/main", "", "", true, false},
		{"GET ref nested", branch, "GET", "/repos/acme/webapp/git/ref/heads/ajwt/x", "", "", false, false},
		{"no operations", nil, "GET", "/repos/acme/webapp", "", "", false, false},
	}
	for _, c := range cases {
		got, err := MatchOperations(c.ops, c.method, c.path, c.ct, []byte(c.body))
		if got != c.want {
			t.Errorf("%s: MatchOperations = %v, want %v (err %v)", c.name, got, c.want, err)
		}
		if !c.wantErr {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.name, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error = %v, want *Error", c.name, err)
			continue
		}
		if e.Status != http.StatusBadRequest || e.Code != CodeInvalidRequest || e.Reason != ReasonInvalidRequest {
			t.Errorf("%s: error = %d %s %s, want 400 invalid_request invalid_request", c.name, e.Status, e.Code, e.Reason)
		}
	}
}

func TestMatchPathNoAlloc(t *testing.T) {
	commit := fillOps(t, commitChangesTemplates(), demoValues())
	n := testing.AllocsPerRun(100, func() {
		_ = MatchPath("/repos/acme/webapp/contents/**/go.mod", "/repos/acme/webapp/contents/a/b/go.mod")
		_, _ = MatchOperations(commit, "GET", "/repos/acme/webapp/contents/a/b/go.mod", "", nil)
		_, _ = MatchOperations(commit, "GET", "/repos/acme/webapp/contents/a/b/README", "", nil)
	})
	if n != 0 {
		t.Fatalf("path matching allocates %v times per run", n)
	}
}

func FuzzMatchOperations(f *testing.F) {
	ops := fillOps(f, commitChangesTemplates(), demoValues())
	good := `{"message":"bump","content":"bW9kdWxl","sha":"3f2a9c","branch":"` + demoBranch + `"}`
	seeds := []struct{ method, path, ct, body string }{
		{"PUT", "/repos/acme/webapp/contents/go.mod", "application/json", good},
		{"PUT", "/repos/acme/webapp/contents/a/b/package.json", "application/json; charset=utf-8", good},
		{"GET", "/repos/acme/webapp/contents/requirements.txt", "", ""},
		{"GET", "/repos/acme/webapp/contents/x/package-lock.json", "", ""},
		{"PUT", "/repos/acme/webapp/contents/go.mod", "application/json", `{"branch":"main"}`},
		{"PUT", "/repos/acme/webapp/contents/go.mod", "application/json", `{"branch":"` + demoBranch + `","branch":"main"}`},
		{"PUT", "/repos/acme/webapp/contents/go.mod", "application/json", `{"branch":"` + demoBranch + `","Branch":"main"}`},
		{"PUT", "/repos/acme/webapp/contents/go.mod", "application/json", `{"br\u0061nch":"` + demoBranch + `"}`},
		{"PUT", "/repos/acme/webapp/contents/../go.mod", "application/json", good},
		{"PUT", "/repos/acme/webapp/contents//go.mod", "application/json", good},
		{"GET", "/repos/acme/webapp/contents/a%2F..%2F..%2Finfra/go.mod", "", ""},
		{"GET", "/repos/acme/webapp/contents/./go.mod", "", ""},
		{"DELETE", "/repos/acme/webapp/contents/go.mod", "", ""},
		{"PUT", "/repos/acme/webapp/contents/go.mod", "text/plain", good},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, ct string, body []byte) {
		ok, err := MatchOperations(ops, method, path, ct, body)
		if err != nil {
			var e *Error
			if ok || !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Reason != ReasonInvalidRequest || e.Code != CodeInvalidRequest {
				t.Fatalf("MatchOperations = %v, %#v", ok, err)
			}
			if method != "PUT" || !isJSONContentType(ct) {
				t.Fatalf("body of a %s %q (Content-Type %q) was decoded", method, path, ct)
			}
			if _, derr := DecodeJSONObject(body); derr == nil {
				t.Fatalf("error %v for a body that decodes", err)
			}
			return
		}
		if !ok {
			return
		}
		// Whatever matched passes path hygiene and names a manifest of acme/webapp.
		if !ValidEscapedPath(path) || !strings.HasPrefix(path, "/repos/acme/webapp/contents/") {
			t.Fatalf("matched unhygienic or foreign path %q", path)
		}
		manifest := false
		for _, m := range demoManifests {
			manifest = manifest || strings.HasSuffix(path, "/"+m)
		}
		if !manifest {
			t.Fatalf("matched %q, which is not a manifest", path)
		}
		switch method {
		case "GET":
		case "PUT":
			obj, err := DecodeJSONObject(body)
			if err != nil || !isJSONContentType(ct) {
				t.Fatalf("PUT matched with body %q (%v), Content-Type %q", body, err, ct)
			}
			var branch string
			if err := json.Unmarshal(obj["branch"], &branch); err != nil || branch != demoBranch {
				t.Fatalf("PUT matched with branch %s", obj["branch"])
			}
			// What a Go upstream decoding into a struct would see is the same branch.
			var up struct {
				Branch string `json:"branch"`
			}
			if err := json.Unmarshal(body, &up); err != nil || up.Branch != demoBranch {
				t.Fatalf("PUT matched but encoding/json sees branch %q", up.Branch)
			}
		default:
			t.Fatalf("matched method %q", method)
		}
	})
}

func BenchmarkMatchOperations(b *testing.B) {
	ops := fillOps(b, commitChangesTemplates(), demoValues())
	content := strings.Repeat("bW9kdWxlIGV4YW1wbGUuY29tL3dlYmFwcApnbyAxLjIyCnJlcXVpcmUgZ29sYW5nLm9yZy94L25ldCB2MC4yMy4wCg", 12)
	body := []byte(`{"message":"Bump golang.org/x/net to v0.33.0 (GHSA-w32m-9786-jp63)","content":"` + content +
		`","sha":"95b13de8a0f3c1e2d4b5a6978877665544332211","branch":"` + demoBranch +
		`","committer":{"name":"ajwt patcher","email":"patcher@ajwt.invalid"}}`)
	cases := []struct {
		name, method, path, ct string
		body                   []byte
	}{
		{"PUT-json", "PUT", "/repos/acme/webapp/contents/services/api/go.mod", "application/json; charset=utf-8", body},
		{"GET", "GET", "/repos/acme/webapp/contents/services/api/go.mod", "", nil},
		{"GET-denied", "GET", "/repos/acme/webapp/contents/services/api/Makefile", "", nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for i := 0; i < b.N; i++ {
				ok, err := MatchOperations(ops, c.method, c.path, c.ct, c.body)
				if err != nil || ok != (c.name != "GET-denied") {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
