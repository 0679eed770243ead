package resourceproxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/resourceproxy"
)

// stubTransport answers every upstream request in process.
type stubTransport struct{}

func (stubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), ContentLength: 11, Request: r,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}, nil
}

// benchProxy is a proxy against a fakeIDP with the stub upstream transport.
func benchProxy(tb testing.TB, maxRPS int) (*resourceproxy.Proxy, *fakeIDP) {
	tb.Helper()
	f := newFakeIDP(tb)
	up := newUpstream(tb)
	p, _ := startProxy(tb, f.ts.URL, "s", up, func(c *resourceproxy.Config) {
		c.PublicURL = "https://proxy.example"
		c.Transport = stubTransport{}
		c.MaxRPS = maxRPS
	})
	return p, f
}

// BenchmarkProxyValidate measures the full pipeline (path, token, DPoP with replay
// cache, revocation view, scope and operations, forwarding through ReverseProxy to an
// in-process upstream stub) with handler.ServeHTTP; one fresh proof per iteration,
// generated before the timer.
func BenchmarkProxyValidate(b *testing.B) {
	p, f := benchProxy(b, b.N/60+100)
	h := p.Handler()
	key := newKey()
	path := "/github/repos/acme/webapp/git/trees/main"
	tok := f.sign(b, f.intent(key, ajwt.ResourceGitHub, "repo:read",
		ajwt.Operation{Method: "GET", Path: "/repos/acme/webapp"},
		ajwt.Operation{Method: "GET", Path: "/repos/acme/webapp/git/trees/*"}))
	proofs := make([]string, b.N)
	now := time.Now()
	for i := range proofs {
		proofs[i] = proof(b, key, "GET", "https://proxy.example"+path, tok, now)
	}
	auth := "DPoP " + tok
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("GET", "https://proxy.example"+path, nil)
		req.Header["Authorization"] = []string{auth}
		req.Header["Dpop"] = []string{proofs[i]}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("iteration %d: %d %s", i, rec.Code, rec.Body)
		}
	}
}

// FuzzAuthorizationHeaders sends random Authorization and DPoP header values through
// the handler: never a panic, and never a 5xx other than 503.
func FuzzAuthorizationHeaders(f *testing.F) {
	p, fi := benchProxy(f, 1000)
	h := p.Handler()
	key := newKey()
	tok := fi.sign(f, fi.intent(key, ajwt.ResourceGitHub, "repo:read", ajwt.Operation{Method: "GET", Path: "/repos/acme/webapp"}))
	good := proof(f, key, "GET", "https://proxy.example/github/repos/acme/webapp", tok, time.Now())
	f.Add("DPoP "+tok, good)
	f.Add("Bearer "+tok, good)
	f.Add("dpop  "+tok, "")
	f.Add("DPoP", "x.y.z")
	f.Add("DPoP eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJub25lIn0.e30.")
	f.Add("Basic dXNlcjpwYXNz", good+","+good)
	f.Add("DPoP "+tok+" extra", strings.Repeat("A", 9000))
	f.Fuzz(func(t *testing.T, authz, dpop string) {
		req := httptest.NewRequest("GET", "https://proxy.example/github/repos/acme/webapp", nil)
		req.Header["Authorization"] = []string{authz}
		if dpop != "" {
			req.Header["Dpop"] = strings.Split(dpop, "\n")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != 503 {
			t.Fatalf("status %d for %q / %q: %s", rec.Code, authz, dpop, rec.Body)
		}
		if rec.Code == 0 {
			t.Fatal("no status written")
		}
	})
}
