package forge_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/agentic-jwt/patchcrew/forge"
)

const testToken = "forge-test-token"

// newForge starts a seeded forge on loopback and returns its URL and data dir.
func newForge(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if err := forge.Seed(ctx, dir); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	clock := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	s, err := forge.New(ctx, forge.Config{DataDir: dir, Token: testToken, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL, dir
}

// do sends a raw request (no client-side path cleaning) and decodes the body.
func do(t *testing.T, method, rawURL, auth, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func branchHash(t *testing.T, dir, repo, branch string) plumbing.Hash {
	t.Helper()
	r, err := git.PlainOpen(filepath.Join(dir, "acme", repo+".git"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := r.Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		t.Fatalf("ref %s: %v", branch, err)
	}
	return ref.Hash()
}

func TestErrors(t *testing.T) {
	base, dir := newForge(t)
	good := "token " + testToken
	mainSHA := branchHash(t, dir, "webapp", "main").String()
	goModSHA := func() string {
		_, m := do(t, "GET", base+"/repos/acme/webapp/contents/go.mod", good, "")
		return m["sha"].(string)
	}()
	put := func(extra string) string {
		return `{"message":"m","content":"` + base64.StdEncoding.EncodeToString([]byte("x")) + `"` + extra + `}`
	}
	tests := []struct {
		name, method, path, auth, body string
		status                         int
		message                        string
	}{
		{"no token", "GET", "/repos/acme/webapp", "", "", 401, "Bad credentials"},
		{"bad token", "GET", "/repos/acme/webapp", "token nope", "", 401, "Bad credentials"},
		{"token prefix", "GET", "/repos/acme/webapp", "token " + testToken[:5], "", 401, "Bad credentials"},
		{"basic scheme", "GET", "/repos/acme/webapp", "Basic " + testToken, "", 401, "Bad credentials"},
		{"unknown route needs auth", "GET", "/nope", "", "", 401, "Bad credentials"},
		{"bearer ok", "GET", "/repos/acme/webapp", "Bearer " + testToken, "", 200, ""},
		{"unknown repo", "GET", "/repos/acme/nope", good, "", 404, "Not Found"},
		{"repo dotdot", "GET", "/repos/acme/..", good, "", 404, "Not Found"},
		{"unknown id", "GET", "/repositories/999999", good, "", 404, "Not Found"},
		{"unknown route", "GET", "/nope", good, "", 404, "Not Found"},
		{"missing ref", "GET", "/repos/acme/webapp/git/ref/heads/nope", good, "", 404, "Not Found"},
		{"missing file", "GET", "/repos/acme/webapp/contents/nope.txt", good, "", 404, "Not Found"},
		{"get dotdot", "GET", "/repos/acme/webapp/contents/../infra/contents/README.md", good, "", 422, "Invalid request.\n\npath is invalid."},
		{"get .git/config", "GET", "/repos/acme/webapp/contents/.git/config", good, "", 422, "Invalid request.\n\npath is invalid."},
		{"put dotdot", "PUT", "/repos/acme/webapp/contents/../x", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put %2e%2e", "PUT", "/repos/acme/webapp/contents/%2e%2e/x", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put %2E%2E upper", "PUT", "/repos/acme/webapp/contents/a/%2E%2E/%2E%2E/x", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put .git/config", "PUT", "/repos/acme/webapp/contents/.git/config", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put .GIT/hooks", "PUT", "/repos/acme/webapp/contents/.GIT/hooks/pre-commit", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put %2egit", "PUT", "/repos/acme/webapp/contents/%2egit/config", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put empty component", "PUT", "/repos/acme/webapp/contents/a//b", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put dot", "PUT", "/repos/acme/webapp/contents/./go.mod", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put trailing slash", "PUT", "/repos/acme/webapp/contents/dir/", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put backslash", "PUT", "/repos/acme/webapp/contents/a%5C..%5Cx", good, put(""), 422, "Invalid request.\n\npath is invalid."},
		{"put sha mismatch", "PUT", "/repos/acme/webapp/contents/go.mod", good, put(`,"sha":"` + mainSHA + `"`), 409, "go.mod does not match " + mainSHA},
		{"put sha missing", "PUT", "/repos/acme/webapp/contents/go.mod", good, put(""), 422, "Invalid request.\n\n\"sha\" wasn't supplied."},
		{"put sha on new file", "PUT", "/repos/acme/webapp/contents/new.txt", good, put(`,"sha":"` + goModSHA + `"`), 409, "new.txt does not match " + goModSHA},
		{"put unknown branch", "PUT", "/repos/acme/webapp/contents/new.txt", good, put(`,"branch":"nope"`), 404, "Not Found"},
		{"put Branch (case)", "PUT", "/repos/acme/webapp/contents/go.mod", good, put(`,"Branch":"x","sha":"` + goModSHA + `"`), 422, "Invalid request.\n\n\"Branch\" is not a permitted key."},
		{"put duplicate key", "PUT", "/repos/acme/webapp/contents/new.txt", good, put(`,"branch":"main","branch":"x"`), 422, "Invalid request.\n\n\"branch\" is given more than once."},
		{"put unknown key", "PUT", "/repos/acme/webapp/contents/new.txt", good, put(`,"force":true`), 422, "Invalid request.\n\n\"force\" is not a permitted key."},
		{"put trailing data", "PUT", "/repos/acme/webapp/contents/new.txt", good, put("") + "{}", 422, "Problems parsing JSON"},
		{"put not object", "PUT", "/repos/acme/webapp/contents/new.txt", good, `["x"]`, 422, "Invalid request.\n\nBody must be a JSON object."},
		{"put no content", "PUT", "/repos/acme/webapp/contents/new.txt", good, `{"message":"m"}`, 422, "Invalid request.\n\n\"content\" wasn't supplied."},
		{"put null content", "PUT", "/repos/acme/webapp/contents/new.txt", good, `{"message":"m","content":null}`, 422, "Invalid request.\n\nFor \"content\": null is not allowed."},
		{"put bad base64", "PUT", "/repos/acme/webapp/contents/new.txt", good, `{"message":"m","content":"!!"}`, 422, "content is not valid Base64"},
		{"put under a file", "PUT", "/repos/acme/webapp/contents/go.mod/x", good, put(""), 422, "Invalid request.\n\npath conflicts with an existing file or directory."},
		{"put too large", "PUT", "/repos/acme/webapp/contents/big.txt", good, `{"message":"m","content":"` + strings.Repeat("A", 1<<20) + `"}`, 413, "Request body too large"},
		{"ref invalid", "POST", "/repos/acme/webapp/git/refs", good, `{"ref":"refs/heads/a..b","sha":"` + mainSHA + `"}`, 422, "Reference name is invalid"},
		{"ref not refs/", "POST", "/repos/acme/webapp/git/refs", good, `{"ref":"heads/x","sha":"` + mainSHA + `"}`, 422, "Reference name is invalid"},
		{"ref unknown sha", "POST", "/repos/acme/webapp/git/refs", good, `{"ref":"refs/heads/x","sha":"` + strings.Repeat("1", 40) + `"}`, 422, "Object does not exist"},
		{"ref exists", "POST", "/repos/acme/webapp/git/refs", good, `{"ref":"refs/heads/main","sha":"` + mainSHA + `"}`, 422, "Reference already exists"},
		{"ref Ref (case)", "POST", "/repos/acme/webapp/git/refs", good, `{"Ref":"refs/heads/y","sha":"` + mainSHA + `"}`, 422, "Invalid request.\n\n\"Ref\" is not a permitted key."},
		{"delete missing ref", "DELETE", "/repos/acme/webapp/git/refs/heads/nope", good, "", 422, "Reference does not exist"},
		{"pr no commits", "POST", "/repos/acme/webapp/pulls", good, `{"title":"t","head":"main","base":"main"}`, 422, "Validation Failed: head and base must be different branches"},
		{"pr missing head", "POST", "/repos/acme/webapp/pulls", good, `{"title":"t","head":"nope","base":"main"}`, 422, "Validation Failed: head does not exist"},
		{"pr fork head", "POST", "/repos/acme/webapp/pulls", good, `{"title":"t","head":"evil:x","base":"main"}`, 422, "Validation Failed: head must be a branch of this repository"},
		{"pr missing", "GET", "/repos/acme/webapp/pulls/7", good, "", 404, "Not Found"},
		{"merge missing", "PUT", "/repos/acme/webapp/pulls/7/merge", good, "", 404, "Not Found"},
		{"tree missing", "GET", "/repos/acme/webapp/git/trees/nope", good, "", 404, "Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, tc.method, base+tc.path, tc.auth, tc.body)
			if status != tc.status {
				t.Fatalf("status = %d, want %d (%v)", status, tc.status, body)
			}
			if tc.message != "" {
				if body["message"] != tc.message {
					t.Fatalf("message = %q, want %q", body["message"], tc.message)
				}
				if body["documentation_url"] == nil {
					t.Fatalf("no documentation_url in %v", body)
				}
			}
		})
	}
	// Nothing above wrote anything: main is where it was and no stray files.
	if got := branchHash(t, dir, "webapp", "main").String(); got != mainSHA {
		t.Fatalf("main moved to %s", got)
	}
	for _, p := range []string{filepath.Join(dir, "acme", "x"), filepath.Join(dir, "x"), filepath.Join(dir, "acme", "webapp.git", "x")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s exists: %v", p, err)
		}
	}
	// The traversal attempts did not reach acme/infra either.
	infra := branchHash(t, dir, "infra", "main")
	r, _ := git.PlainOpen(filepath.Join(dir, "acme", "infra.git"))
	c, _ := r.CommitObject(infra)
	if len(c.ParentHashes) != 0 {
		t.Fatalf("infra has new commits")
	}
}
