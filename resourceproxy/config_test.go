package resourceproxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/resourceproxy"
)

// TestUnknownKidRateLimited: tokens with random kids trigger at most one JWKS fetch per
// 10 s, so they cannot make the proxy hammer the IDP.
func TestUnknownKidRateLimited(t *testing.T) {
	f := newFakeIDP(t)
	up := newUpstream(t)
	_, base := startProxy(t, f.ts.URL, "s", up, nil)
	before := f.jwksFetches()
	key := newKey()
	for i := 0; i < 20; i++ {
		tok, err := ajwt.Sign(ajwt.Header{Typ: ajwt.TypIntent, Kid: ajwt.NewJTI()}, f.intent(key, ajwt.ResourceGitHub, "repo:read"), key)
		if err != nil {
			t.Fatal(err)
		}
		r := send(t, agentReq(t, base, "GET", "/github/repos/acme/webapp", tok, key, "", ""))
		if r.status != 401 || r.body.reason() != string(ajwt.ReasonTokenInvalid) {
			t.Fatalf("random kid: %d %s", r.status, r.raw)
		}
	}
	if n := f.jwksFetches() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for 20 unknown kids", n)
	}
}

// TestRequireNonce: with server nonces on, a proof without one is 401 use_dpop_nonce
// with a DPoP-Nonce header; a proof carrying it is accepted.
func TestRequireNonce(t *testing.T) {
	f := newFakeIDP(t)
	up := newUpstream(t)
	_, base := startProxy(t, f.ts.URL, "s", up, func(c *resourceproxy.Config) { c.RequireNonce = true })
	key := newKey()
	tok := f.sign(t, f.intent(key, ajwt.ResourceGitHub, "repo:read", ajwt.Operation{Method: "GET", Path: "/repos/acme/webapp"}))
	r := send(t, agentReq(t, base, "GET", "/github/repos/acme/webapp", tok, key, "", ""))
	nonce := r.header.Get("DPoP-Nonce")
	if r.status != 401 || r.body.reason() != string(ajwt.ReasonDPoPNonce) || nonce == "" || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		t.Fatalf("no nonce: %d %v %v", r.status, r.body, r.header)
	}
	req := newReq(t, "GET", base, "/github/repos/acme/webapp", "", "")
	req.Header.Set("Authorization", "DPoP "+tok)
	p, err := ajwt.NewDPoPProof(key, "GET", base+"/github/repos/acme/webapp", tok, nonce, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("DPoP", p)
	if r := send(t, req); r.status != 200 {
		t.Fatalf("with nonce: %d %s", r.status, r.raw)
	}
}

// TestIssuerMismatch: a configured issuer that differs from the IDP metadata's stops Run.
func TestIssuerMismatch(t *testing.T) {
	f := newFakeIDP(t)
	p, err := resourceproxy.New(context.Background(), resourceproxy.Config{
		PublicURL: "http://proxy.test", IDPURL: f.ts.URL, Issuer: "http://other-idp", ClientID: "proxy", ClientSecret: "s",
		Upstreams: map[string]resourceproxy.Upstream{ajwt.ResourceGitHub: {URL: "http://up.test"}}, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Run(ctx); err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "issuer") {
		t.Fatalf("Run: %v", err)
	}
}

// TestNewRejectsBadConfig covers configuration validation.
func TestNewRejectsBadConfig(t *testing.T) {
	good := func() resourceproxy.Config {
		return resourceproxy.Config{PublicURL: "http://proxy.test", IDPURL: "http://idp.test", ClientID: "proxy", ClientSecret: "s",
			Upstreams: map[string]resourceproxy.Upstream{ajwt.ResourceGitHub: {URL: "http://up.test"}}}
	}
	if _, err := resourceproxy.New(context.Background(), good()); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mut := range map[string]func(*resourceproxy.Config){
		"mode":         func(c *resourceproxy.Config) { c.Mode = "bearer" },
		"public url":   func(c *resourceproxy.Config) { c.PublicURL = "proxy.test" },
		"idp url":      func(c *resourceproxy.Config) { c.IDPURL = "" },
		"no secret":    func(c *resourceproxy.Config) { c.ClientSecret = "" },
		"no upstreams": func(c *resourceproxy.Config) { c.Upstreams = nil },
		"bad resource": func(c *resourceproxy.Config) {
			c.Upstreams = map[string]resourceproxy.Upstream{"github": {URL: "http://up.test"}}
		},
		"bad upstream": func(c *resourceproxy.Config) {
			c.Upstreams[ajwt.ResourceGitHub] = resourceproxy.Upstream{URL: "ftp://x"}
		},
	} {
		c := good()
		mut(&c)
		if _, err := resourceproxy.New(context.Background(), c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestUpgradeNotForwarded: a protocol upgrade request is forwarded as a plain request.
func TestUpgradeNotForwarded(t *testing.T) {
	f := newFakeIDP(t)
	up := newUpstream(t)
	_, base := startProxy(t, f.ts.URL, "s", up, nil)
	key := newKey()
	tok := f.sign(t, f.intent(key, ajwt.ResourceGitHub, "repo:read", ajwt.Operation{Method: "GET", Path: "/repos/acme/webapp"}))
	req := agentReq(t, base, "GET", "/github/repos/acme/webapp", tok, key, "", "")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	if r := send(t, req); r.status != 200 || r.header.Get("Upgrade") != "" {
		t.Fatalf("upgrade: %d %v", r.status, r.header)
	}
	if got := up.last(t); got.Header.Get("Upgrade") != "" || got.Header.Get("Connection") != "" {
		t.Fatalf("upstream got %v", got.Header)
	}
}
