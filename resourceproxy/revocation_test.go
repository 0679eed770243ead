package resourceproxy_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/resourceproxy"
)

// eventually retries req (fresh proof each time) until the answer has reason want, for
// up to 3 s (a revocation reaches the proxy within 2 s, DESIGN §5.3).
func eventually(t *testing.T, want ajwt.Reason, req func() *http.Request) result {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := send(t, req())
		if r.body.reason() == string(want) || time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRevocation: a token revoked by RFC 7009, a revoked agent's own token, and a live
// token of another agent whose delegation chain names the revoked agent are refused
// with 401 revoked once the feed has them.
func TestRevocation(t *testing.T) {
	e := newEnv(t)
	tk := e.tokens()
	base := e.proxyURL
	listReq := func() *http.Request {
		return agentReq(t, base, "GET", "/github/repos/acme/webapp", tk.list, tk.sup.key, "", "")
	}
	commitReq := func() *http.Request {
		return agentReq(t, base, "GET", "/github/repos/acme/webapp/contents/go.mod", tk.commit, tk.sup.key, "", "")
	}
	plReq := func() *http.Request {
		return agentReq(t, base, "GET", "/osv/v1/vulns/GHSA-1", tk.q, tk.pl.key, "", "")
	}
	for name, req := range map[string]func() *http.Request{"list": listReq, "commit": commitReq, "planner": plReq} {
		if r := send(t, req()); r.status != 200 {
			t.Fatalf("%s before revocation: %d %s", name, r.status, r.raw)
		}
	}
	// RFC 7009 revocation of one token.
	if st, r := e.form("patchbot", "/oauth2/revoke", url.Values{"token": {tk.commit}}, nil); st != 200 {
		t.Fatalf("revoke: %d %v", st, r)
	}
	r := eventually(t, ajwt.ReasonRevoked, commitReq)
	if r.status != 401 || r.body.reason() != string(ajwt.ReasonRevoked) || r.header.Get("WWW-Authenticate") != chToken {
		t.Fatalf("revoked token: %d %v %q", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	if r := send(t, listReq()); r.status != 200 {
		t.Fatalf("another token of the same agent: %d %s", r.status, r.raw)
	}
	// Revoke the supervisor: its own token and the planner's (delegated by it) die.
	e.idpJSON(200, "POST", "/v1/agents/supervisor/revoke", map[string]any{})
	for name, req := range map[string]func() *http.Request{"supervisor's token": listReq, "planner's delegated token": plReq} {
		r := eventually(t, ajwt.ReasonRevoked, req)
		if r.status != 401 || r.body.reason() != string(ajwt.ReasonRevoked) || r.header.Get("WWW-Authenticate") != chToken {
			t.Fatalf("%s after revoking the supervisor: %d %v", name, r.status, r.body)
		}
	}
}

// TestRevocationStale: with the IDP unreachable the view goes stale after 2 s and every
// A-JWT request is 503 revocation_stale with Retry-After: 1; it recovers when the IDP
// is back. A proxy that never synced refuses too.
func TestRevocationStale(t *testing.T) {
	e := newEnv(t)
	tk := e.tokens()
	req := func() *http.Request {
		return agentReq(t, e.proxyURL, "GET", "/github/repos/acme/webapp", tk.list, tk.sup.key, "", "")
	}
	if r := send(t, req()); r.status != 200 {
		t.Fatalf("before: %d %s", r.status, r.raw)
	}
	e.idpSwap.down.Store(true)
	time.Sleep(resourceproxy.MaxFeedAge + 300*time.Millisecond)
	r := send(t, req())
	if r.status != 503 || r.body.reason() != string(ajwt.ReasonRevocationStale) || r.header.Get("Retry-After") != "1" || r.body["error"] != "temporarily_unavailable" {
		t.Fatalf("stale: %d %v %v", r.status, r.body, r.header)
	}
	if e.proxy.Ready() {
		t.Fatal("Ready with a stale view")
	}
	e.idpSwap.down.Store(false)
	if r := eventually(t, "", req); r.status != 200 {
		t.Fatalf("after recovery: %d %s", r.status, r.raw)
	}

	// A proxy started while the IDP is down answers 503 before its first sync.
	e.idpSwap.down.Store(true)
	p, err := resourceproxy.New(t.Context(), resourceproxy.Config{
		PublicURL: "http://proxy.test", IDPURL: e.idpURL, ClientID: "proxy", ClientSecret: e.secrets["proxy"],
		Upstreams: map[string]resourceproxy.Upstream{ajwt.ResourceGitHub: {URL: e.up.ts.URL}}, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Run(t.Context()) }()
	rec := serve(p.Handler(), agentReq(t, "http://proxy.test", "GET", "/github/repos/acme/webapp", tk.list, tk.sup.key, "", ""))
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("before first sync: %d %s", rec.Code, rec.Body)
	}
}

// TestReplayCacheBound: far more proofs than the cache holds: once it is full the proxy
// answers 503 replay_cache_full (Retry-After) without evicting anything, memory stays
// at the capacity, and a replay of an accepted proof is still refused.
func TestReplayCacheBound(t *testing.T) {
	e := newEnv(t)
	tk := e.tokens()
	p, base := e.newProxy(func(c *resourceproxy.Config) { c.MaxRPS = 1 })
	const capacity = 65
	var first *http.Request
	accepted, full := 0, 0
	for i := 0; i < 4*capacity; i++ {
		req := agentReq(t, base, "GET", "/github/repos/acme/webapp", tk.list, tk.sup.key, "", "")
		r := send(t, req)
		switch {
		case r.status == 200:
			accepted++
			if first == nil {
				first = req
			}
		case r.status == 503 && r.body.reason() == string(ajwt.ReasonReplayCacheFull) && r.header.Get("Retry-After") != "":
			full++
		default:
			t.Fatalf("proof %d: %d %s", i, r.status, r.raw)
		}
	}
	if accepted != capacity || full != 3*capacity {
		t.Fatalf("accepted %d, full %d; want %d and %d", accepted, full, capacity, 3*capacity)
	}
	if n := p.ReplayCacheLen(); n > capacity {
		t.Fatalf("replay cache holds %d > %d", n, capacity)
	}
	again := newReq(t, "GET", base, "/github/repos/acme/webapp", "", "")
	again.Header = first.Header.Clone()
	if r := send(t, again); r.status != 401 || r.body.reason() != string(ajwt.ReasonDPoPReplay) {
		t.Fatalf("replay while full: %d %s", r.status, r.raw)
	}
}
