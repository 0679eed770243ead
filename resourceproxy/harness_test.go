package resourceproxy_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/idp"
	"github.com/agentic-jwt/patchcrew/resourceproxy"
)

// swapHandler is an http.Handler that can be replaced, or taken "down" (503), while its
// httptest server keeps its URL.
type swapHandler struct {
	h    atomic.Pointer[http.Handler]
	down atomic.Bool
}

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := s.h.Load()
	if s.down.Load() || h == nil {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

// upstreamRecord is one request the upstream received.
type upstreamRecord struct {
	Method, Path, RawPath, Query string
	Header                       http.Header
	Body                         string
}

// upstream is an httptest server that records what it receives.
type upstream struct {
	ts   *httptest.Server
	mu   sync.Mutex
	reqs []upstreamRecord
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, upstreamRecord{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)})
		u.mu.Unlock()
		w.Header().Set("Set-Cookie", "session=upstream")
		w.Header().Set("Location", u.ts.URL+"/api/repos/acme/webapp/pulls/1")
		w.Header().Add("Link", `<`+u.ts.URL+`/api/repos/acme/webapp/pulls?page=2>; rel="next"`)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(u.ts.Close)
	return u
}

func (u *upstream) last(t testing.TB) upstreamRecord {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// handle is an enrolled agent instance.
type handle struct {
	agentID, checksum, instanceID, jkt string
	key                                ed25519.PrivateKey
}

// env is a live IDP, an upstream and a proxy on loopback.
type env struct {
	t        testing.TB
	idpURL   string
	idpSwap  *swapHandler
	idpSrv   *idp.Server
	secrets  map[string]string
	admin    string
	shim     string
	up       *upstream
	proxy    *resourceproxy.Proxy
	proxyURL string
	sums     map[string]string
}

func newKey() ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return k
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv starts the IDP (memory store, baseline on), registers the test agents and
// workflow, and starts an A-JWT proxy.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, secrets: map[string]string{}, sums: map[string]string{}, idpSwap: &swapHandler{}}
	ts := httptest.NewServer(e.idpSwap)
	t.Cleanup(ts.Close)
	e.idpURL = ts.URL
	cf := &idp.ClientsFile{}
	for _, c := range []idp.ClientConfig{
		{ClientID: "admin", Role: idp.RoleAdmin},
		{ClientID: "patchbot", Role: idp.RoleApp, AllowedParams: map[string][]string{"repo": {"acme/*"}}},
		{ClientID: "proxy", Role: idp.RoleResource},
	} {
		c.ClientSecret = idp.RandomSecret()
		e.secrets[c.ClientID] = c.ClientSecret
		cf.Clients = append(cf.Clients, c)
	}
	srv, err := idp.New(context.Background(), idp.Config{Issuer: e.idpURL, Store: idp.NewMemoryStore(), Clients: cf, Baseline: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.idpSrv = srv
	e.idpSwap.set(srv.Handler())
	st, body := e.form("admin", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"ajwt:admin"}}, nil)
	if st != 200 {
		t.Fatalf("admin token: %d %v", st, body)
	}
	e.admin = body["access_token"].(string)
	e.shim = ajwt.SHA256Digest([]byte("test shim build"))
	e.idpJSON(201, "POST", "/v1/shims", map[string]any{"checksum": e.shim, "note": "test"})
	for id, scopes := range map[string][]string{"supervisor": {"repo:read", "repo:write"}, "planner": {"vulns:read"}} {
		r := e.idpJSON(201, "POST", "/v1/agents", map[string]any{
			"agent_id": id, "description": id + " agent",
			"prompt": "You are the " + id + " agent.\nWork on {repo}.",
			"tools":  []map[string]any{{"name": id + "_tool", "description": "does " + id + " work", "parameters": map[string]any{"type": "object"}}},
			"config": map[string]any{"provider": "offline", "model": "ajwt-scripted-1", "temperature": 0},
			"app":    "patchbot", "max_scopes": scopes,
		})
		e.sums[id] = r["checksum"].(string)
	}
	e.idpJSON(201, "POST", "/v1/workflows", map[string]any{
		"workflow_id": "wf", "description": "test", "entry_agent": "supervisor", "max_delegation_depth": 1, "params": []string{"repo"},
		"steps": []map[string]any{
			{"id": "list_files", "agent": "supervisor", "resource": ajwt.ResourceGitHub, "scopes": []string{"repo:read"},
				"operations": []map[string]any{{"method": "GET", "path": "/repos/{repo}"}, {"method": "GET", "path": "/repos/{repo}/git/trees/*"}}},
			{"id": "commit_changes", "agent": "supervisor", "resource": ajwt.ResourceGitHub, "scopes": []string{"repo:read", "repo:write"},
				"operations": []map[string]any{
					{"method": "GET", "path": "/repos/{repo}/contents/go.mod"},
					{"method": "PUT", "path": "/repos/{repo}/contents/go.mod", "json": map[string]string{"branch": "{branch}"}}}},
			{"id": "query_vulns", "agent": "planner", "resource": ajwt.ResourceOSV, "scopes": []string{"vulns:read"},
				"operations": []map[string]any{{"method": "POST", "path": "/v1/querybatch"}, {"method": "GET", "path": "/v1/vulns/*"}}},
		},
	})
	e.up = newUpstream(t)
	e.proxy, e.proxyURL = e.newProxy(nil)
	return e
}

// newProxy starts a proxy against the env's IDP and upstream; mod edits its Config.
func (e *env) newProxy(mod func(*resourceproxy.Config)) (*resourceproxy.Proxy, string) {
	e.t.Helper()
	return startProxy(e.t, e.idpURL, e.secrets["proxy"], e.up, mod)
}

// startProxy starts a proxy against an IDP at idpURL and the upstream up.
func startProxy(t testing.TB, idpURL, secret string, up *upstream, mod func(*resourceproxy.Config)) (*resourceproxy.Proxy, string) {
	t.Helper()
	sw := &swapHandler{}
	ts := httptest.NewServer(sw)
	t.Cleanup(ts.Close)
	cfg := resourceproxy.Config{
		PublicURL: ts.URL, IDPURL: idpURL, ClientID: "proxy", ClientSecret: secret,
		Upstreams: map[string]resourceproxy.Upstream{
			ajwt.ResourceGitHub: {URL: up.ts.URL + "/api", Credential: "token upstream-secret"},
			ajwt.ResourceOSV:    {URL: up.ts.URL + "/osv"},
		},
		FeedInterval: 100 * time.Millisecond, Logger: quietLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := resourceproxy.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sw.set(p.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for !p.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("proxy did not become ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p, ts.URL
}

type resp map[string]any

func (r resp) reason() string { s, _ := r["reason"].(string); return s }

func (e *env) form(who, path string, v url.Values, hdr http.Header) (int, resp) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.idpURL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.SetBasicAuth(url.QueryEscape(who), url.QueryEscape(e.secrets[who]))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out resp
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// idpJSON sends a JSON request to the IDP as admin (bearer) or, with a DPoP header in
// hdr, as patchbot (Basic), and expects status want.
func (e *env) idpJSON(want int, method, path string, v any, hdr ...http.Header) resp {
	e.t.Helper()
	b, _ := json.Marshal(v)
	req, _ := http.NewRequest(method, e.idpURL+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	if len(hdr) > 0 {
		for k, vs := range hdr[0] {
			req.Header[k] = vs
		}
		req.SetBasicAuth("patchbot", url.QueryEscape(e.secrets["patchbot"]))
	} else {
		req.Header.Set("Authorization", "Bearer "+e.admin)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out resp
	_ = json.NewDecoder(res.Body).Decode(&out)
	if res.StatusCode != want {
		e.t.Fatalf("%s %s: %d, want %d: %v", method, path, res.StatusCode, want, out)
	}
	return out
}

func (e *env) idpProof(key ed25519.PrivateKey, method, path string) http.Header {
	p, err := ajwt.NewDPoPProof(key, method, e.idpURL+path, "", "", time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return http.Header{"Dpop": {p}}
}

func (e *env) enroll(agentID string) *handle {
	e.t.Helper()
	h := &handle{agentID: agentID, checksum: e.sums[agentID], key: newKey()}
	path := "/v1/agents/" + agentID + "/instances"
	r := e.idpJSON(201, "POST", path, map[string]any{"agent_checksum": h.checksum, "shim_checksum": e.shim}, e.idpProof(h.key, "POST", path))
	h.instanceID, h.jkt = r["instance_id"].(string), r["jkt"].(string)
	return h
}

// execution starts an execution and returns its id and root delegation.
func (e *env) execution() (string, string) {
	e.t.Helper()
	r := e.idpJSON(201, "POST", "/v1/executions", map[string]any{"workflow_id": "wf", "user": "alice", "intent": "patch acme/webapp", "params": map[string]string{"repo": "acme/webapp"}}, http.Header{})
	return r["execution_id"].(string), r["root_delegation"].(string)
}

func (e *env) mint(h *handle, execID, stepID, resource, chain string) string {
	e.t.Helper()
	v := url.Values{"grant_type": {"agent_checksum"}, "agent_id": {h.agentID}, "agent_checksum": {h.checksum},
		"execution_id": {execID}, "step_id": {stepID}, "resource": {resource}, "delegation_chain": {chain}}
	st, r := e.form("patchbot", "/oauth2/token", v, e.idpProof(h.key, "POST", "/oauth2/token"))
	if st != 200 {
		e.t.Fatalf("mint %s: %d %v", stepID, st, r)
	}
	return r["access_token"].(string)
}

// baselineToken is a client_credentials resource token (the OAuth baseline).
func (e *env) baselineToken(resource, scope string) string {
	e.t.Helper()
	st, r := e.form("patchbot", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {scope}}, nil)
	if st != 200 {
		e.t.Fatalf("baseline token: %d %v", st, r)
	}
	return r["access_token"].(string)
}

// link signs a delegation link from delegator (holding parent's sub) to sub.
func link(t testing.TB, delegator *handle, parent, sub string, steps []string, cnf string) string {
	t.Helper()
	pc := decodeClaims[ajwt.DelegationClaims](t, parent)
	c := ajwt.DelegationClaims{Issuer: "agent:" + delegator.agentID, Subject: "agent:" + sub, ExecutionID: pc.ExecutionID,
		Steps: steps, Prev: pc.JTI, IssuedAt: time.Now().Unix(), Expiry: pc.Expiry, JTI: ajwt.NewJTI(), Cnf: &ajwt.Confirmation{JKT: cnf}}
	tok, err := ajwt.Sign(ajwt.Header{Typ: ajwt.TypDelegation, Kid: delegator.jkt}, c, delegator.key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func decodeClaims[T any](t testing.TB, compact string) T {
	t.Helper()
	parts := strings.Split(compact, ".")
	var v T
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", compact)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// tokens is the standard set: the supervisor's list_files and commit_changes tokens and
// the planner's query_vulns token (delegated by the supervisor).
type tokens struct {
	execID          string
	sup, pl         *handle
	list, commit, q string
}

func (e *env) tokens() *tokens {
	e.t.Helper()
	execID, root := e.execution()
	sup, pl := e.enroll("supervisor"), e.enroll("planner")
	tk := &tokens{execID: execID, sup: sup, pl: pl}
	tk.list = e.mint(sup, execID, "list_files", ajwt.ResourceGitHub, root)
	tk.commit = e.mint(sup, execID, "commit_changes", ajwt.ResourceGitHub, root)
	tk.q = e.mint(pl, execID, "query_vulns", ajwt.ResourceOSV, root+","+link(e.t, sup, root, "planner", []string{"query_vulns"}, pl.jkt))
	return tk
}

// proof is a DPoP proof for a proxy request.
func proof(t testing.TB, key ed25519.PrivateKey, method, htu, tok string, iat time.Time) string {
	t.Helper()
	p, err := ajwt.NewDPoPProof(key, method, htu, tok, "", iat)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// result is a proxy response.
type result struct {
	status int
	header http.Header
	body   resp
	raw    string
}

// send sends req and decodes the answer.
func send(t testing.TB, req *http.Request) result {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body resp
	if len(raw) > 0 && raw[0] == '{' {
		_ = json.Unmarshal(raw, &body)
	}
	return result{status: res.StatusCode, header: res.Header, body: body, raw: string(raw)}
}

// newReq builds a request to base+path (path escaped as given) with optional body.
func newReq(t testing.TB, method, base, path, ctype, body string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return req
}

// agentReq is a correctly authorised A-JWT request: token + a fresh proof by key.
func agentReq(t testing.TB, base, method, path, tok string, key ed25519.PrivateKey, ctype, body string) *http.Request {
	t.Helper()
	req := newReq(t, method, base, path, ctype, body)
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", proof(t, key, method, base+req.URL.EscapedPath(), tok, time.Now()))
	return req
}

// serve runs h on req in process and returns the recorded answer.
func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
