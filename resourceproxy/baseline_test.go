package resourceproxy_test

import (
	"net/http"
	"testing"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/resourceproxy"
)

// TestBaseline: --mode oauth accepts a plain Bearer at+jwt with the right audience and a
// covering scope (and nothing finer: any path under the scope), and refuses intent
// tokens (X6) and DPoP-bound tokens (RFC 9449 §7.2).
func TestBaseline(t *testing.T) {
	e := newEnv(t)
	tk := e.tokens()
	_, base := e.newProxy(func(c *resourceproxy.Config) { c.Mode = resourceproxy.ModeOAuth })
	read := e.baselineToken(ajwt.ResourceGitHub, "repo:read")
	write := e.baselineToken(ajwt.ResourceGitHub, "repo:read repo:write")
	osv := e.baselineToken(ajwt.ResourceOSV, "vulns:read")
	bearer := func(method, path, tok string) *http.Request {
		r := newReq(t, method, base, path, "application/json", "")
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	r := send(t, bearer("GET", "/github/repos/acme/webapp", read))
	if r.status != 200 {
		t.Fatalf("baseline GET: %d %s", r.status, r.raw)
	}
	if got := e.up.last(t); got.Header.Get("Authorization") != "token upstream-secret" {
		t.Fatalf("upstream Authorization %q", got.Header.Get("Authorization"))
	}
	// The baseline checks no operations: any repository, even a merge, with write scope.
	if r := send(t, bearer("PUT", "/github/repos/acme/infra/pulls/1/merge", write)); r.status != 200 {
		t.Fatalf("baseline merge: %d %s", r.status, r.raw)
	}
	f := newFakeIDP(t)
	_, fbase := startProxy(t, f.ts.URL, "s", e.up, func(c *resourceproxy.Config) { c.Mode = resourceproxy.ModeOAuth })
	cnfAT := signAccess(t, f, ajwt.AccessClaims{RegisteredClaims: ajwt.RegisteredClaims{Issuer: f.ts.URL, Subject: "patchbot",
		Audience: ajwt.Audience{ajwt.ResourceGitHub}, Expiry: 1 << 40, JTI: "j"}, Scope: "repo:read", Cnf: &ajwt.Confirmation{JKT: "x"}})
	for _, c := range []struct {
		name      string
		req       *http.Request
		status    int
		challenge string
		reason    ajwt.Reason
	}{
		{"no credentials", newReq(t, "GET", base, "/github/repos/acme/webapp", "", ""), 401, "Bearer", ajwt.ReasonTokenMissing},
		{"intent token as Bearer", bearer("GET", "/github/repos/acme/webapp", tk.list), 401, `Bearer error="invalid_token"`, ajwt.ReasonTokenInvalid},
		{"intent token with DPoP", agentReq(t, base, "GET", "/github/repos/acme/webapp", tk.list, tk.sup.key, "", ""), 401, "Bearer", ajwt.ReasonTokenMissing},
		{"wrong audience", bearer("GET", "/github/repos/acme/webapp", osv), 401, `Bearer error="invalid_token"`, ajwt.ReasonAudienceMismatch},
		{"read token writes", bearer("PUT", "/github/repos/acme/webapp/contents/go.mod", read), 403, `Bearer error="insufficient_scope"`, ajwt.ReasonOperationNotPermitted},
		{"path hygiene still applies", bearer("GET", "/github/repos/acme%2Finfra", read), 400, "", ajwt.ReasonPathInvalid},
		{"DPoP-bound at+jwt as Bearer", func() *http.Request {
			r := newReq(t, "GET", fbase, "/github/repos/acme/webapp", "", "")
			r.Header.Set("Authorization", "Bearer "+cnfAT)
			return r
		}(), 401, `Bearer error="invalid_token"`, ajwt.ReasonTokenInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := send(t, c.req)
			if r.status != c.status || r.body.reason() != string(c.reason) || r.header.Get("WWW-Authenticate") != c.challenge {
				t.Fatalf("got %d %q %q, want %d %q %q", r.status, r.body.reason(), r.header.Get("WWW-Authenticate"), c.status, c.reason, c.challenge)
			}
		})
	}
}

func signAccess(t testing.TB, f *fakeIDP, c ajwt.AccessClaims) string {
	t.Helper()
	tok, err := ajwt.Sign(ajwt.Header{Typ: ajwt.TypAccess, Kid: f.kid}, c, f.key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
