package shim_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
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
	"github.com/agentic-jwt/patchcrew/shim"
)

// appSecret has characters that client_secret_basic must form-urlencode (RFC 6749
// §2.3.1): a colon, a plus, a percent and an ampersand.
const appSecret = "app:s3cret+with%odd&chars=="

// env is a live IDP on loopback with the standard registration: three agents and a
// three-step workflow `wf` (supervisor list_files → planner query_vulns → classifier
// read_manifests).
type env struct {
	t       *testing.T
	url     string
	srv     *idp.Server
	store   idp.Store
	secrets map[string]string
	admin   string
	shimSum string
	defs    map[string]*ajwt.AgentDefinition
	mints   atomic.Int64 // POST /oauth2/token seen from the shim client
	client  *shim.Client
	// intercept, when set, sees every IDP request first and answers it when it returns
	// true (to simulate IDP behaviour the real server has no switch for).
	intercept atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

func newEnv(t *testing.T, mods ...func(*idp.Config)) *env {
	t.Helper()
	e := &env{t: t, secrets: map[string]string{}, defs: map[string]*ajwt.AgentDefinition{}, store: idp.NewMemoryStore()}
	cf := &idp.ClientsFile{}
	for _, c := range []idp.ClientConfig{
		{ClientID: "admin", Role: idp.RoleAdmin},
		{ClientID: "patchbot", Role: idp.RoleApp, AllowedParams: map[string][]string{"repo": {"acme/*"}}},
	} {
		c.ClientSecret = idp.RandomSecret()
		if c.ClientID == "patchbot" {
			c.ClientSecret = appSecret
		}
		e.secrets[c.ClientID] = c.ClientSecret
		cf.Clients = append(cf.Clients, c)
	}
	var mu sync.RWMutex
	var h http.Handler = http.NotFoundHandler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := e.intercept.Load(); f != nil && (*f)(w, r) {
			return
		}
		mu.RLock()
		hh := h
		mu.RUnlock()
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	e.url = ts.URL
	cfg := idp.Config{Issuer: e.url, Store: e.store, Clients: cf}
	for _, m := range mods {
		m(&cfg)
	}
	srv, err := idp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	e.srv, h = srv, srv.Handler()
	mu.Unlock()

	var tok struct {
		AccessToken string `json:"access_token"`
	}
	e.req("POST", "/oauth2/token", "basic:admin", "application/x-www-form-urlencoded",
		url.Values{"grant_type": {"client_credentials"}, "scope": {"ajwt:admin"}}.Encode(), 200, &tok)
	e.admin = tok.AccessToken
	e.shimSum = ajwt.SHA256Digest([]byte("shim test build"))
	e.postJSON("/v1/shims", map[string]any{"checksum": e.shimSum, "note": "test"}, 201, nil)
	for id, scopes := range map[string][]string{"supervisor": {"repo:read"}, "planner": {"repo:read", "vulns:read"}, "classifier": {"repo:read"}} {
		d := agentDef(id)
		var out struct {
			Checksum string `json:"checksum"`
		}
		e.postJSON("/v1/agents", map[string]any{"agent_id": d.AgentID, "description": id, "prompt": d.Prompt, "tools": d.Tools,
			"config": d.Config, "app": "patchbot", "max_scopes": scopes}, 201, &out)
		if want, _ := ajwt.Checksum(d); out.Checksum != want {
			t.Fatalf("IDP checksum %s, shim computes %s", out.Checksum, want)
		}
		e.defs[id] = d
	}
	e.postJSON("/v1/workflows", testWorkflow(), 201, nil)

	counting := &countingTransport{base: http.DefaultTransport, n: &e.mints}
	e.client, err = shim.NewClient(shim.Config{IDPURL: e.url, ClientID: "patchbot", ClientSecret: appSecret, ShimChecksum: e.shimSum,
		HTTPClient: &http.Client{Transport: counting, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func agentDef(id string) *ajwt.AgentDefinition {
	zero := 0.0
	return &ajwt.AgentDefinition{
		AgentID: id,
		Prompt:  "You are the " + id + " agent.\nWork on {repo}.",
		Tools: []ajwt.Tool{{Name: toolOf(id), Description: "does " + id + " work",
			Parameters: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`)}},
		Config: ajwt.ModelConfig{Provider: "offline", Model: "ajwt-scripted-1", Temperature: &zero},
	}
}

// toolOf is the action (tool name) of each agent's step in testWorkflow.
func toolOf(agent string) string {
	return map[string]string{"supervisor": "list_files", "planner": "query_vulns", "classifier": "read_manifests"}[agent]
}

func testWorkflow() map[string]any {
	return map[string]any{
		"workflow_id": "wf", "description": "test", "entry_agent": "supervisor", "max_delegation_depth": 1, "params": []string{"repo"},
		"steps": []map[string]any{
			{"id": "list_files", "agent": "supervisor", "action": "list_files", "resource": ajwt.ResourceGitHub, "scopes": []string{"repo:read"},
				"operations": []map[string]any{{"method": "GET", "path": "/repos/{repo}/git/trees/*"}}},
			{"id": "query_vulns", "agent": "planner", "action": "query_vulns", "resource": ajwt.ResourceOSV, "scopes": []string{"vulns:read"},
				"operations": []map[string]any{{"method": "POST", "path": "/v1/querybatch"}}, "depends_on": []string{"list_files"}},
			{"id": "read_manifests", "agent": "classifier", "action": "read_manifests", "resource": ajwt.ResourceGitHub, "scopes": []string{"repo:read"},
				"operations": []map[string]any{{"method": "GET", "path": "/repos/{repo}/contents/**/go.mod"}}, "depends_on": []string{"query_vulns"}},
		},
	}
}

// req sends one request to the IDP; who is "basic:<client>", "admin" (bearer) or "".
func (e *env) req(method, path, who, ctype, body string, want int, out any) {
	e.t.Helper()
	r, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	switch {
	case who == "admin":
		r.Header.Set("Authorization", "Bearer "+e.admin)
	case strings.HasPrefix(who, "basic:"):
		id := strings.TrimPrefix(who, "basic:")
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(e.secrets[id]))
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

func (e *env) postJSON(path string, v any, want int, out any) {
	e.t.Helper()
	b, _ := json.Marshal(v)
	e.req("POST", path, "admin", "application/json", string(b), want, out)
}

// agent creates and enrolls a handle for id with the given definition source (nil: the
// registered definition).
func (e *env) agent(id string, src shim.DefinitionSource) *shim.Agent {
	e.t.Helper()
	if src == nil {
		src = shim.StaticDefinition(*e.defs[id])
	}
	a, err := e.client.NewAgent(src)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := a.Enroll(context.Background()); err != nil {
		e.t.Fatalf("enroll %s: %v", id, err)
	}
	return a
}

func (e *env) execution() *shim.Execution {
	e.t.Helper()
	ex, err := e.client.StartExecution(context.Background(), "wf", "alice", "patch acme/webapp", map[string]string{"repo": "acme/webapp"})
	if err != nil {
		e.t.Fatal(err)
	}
	return ex
}

// auditReasons returns the reasons of the IDP's deny events, oldest first.
func (e *env) auditReasons() []string {
	e.t.Helper()
	evs, err := idp.ReadAudit(context.Background(), e.store, 0, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.Decision == "deny" {
			out = append(out, string(ev.Reason))
		}
	}
	return out
}

// countingTransport counts the token-endpoint requests going through it.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.URL.Path == "/oauth2/token" {
		c.n.Add(1)
	}
	return c.base.RoundTrip(r)
}

// upstream is a resource server that checks every request like the proxy's steps 1–2:
// the intent token's signature (IDP key), then the DPoP proof with ath, htm, htu and
// cnf.jkt (ajwt.DPoPVerifier).
type upstream struct {
	*httptest.Server
	t        *testing.T
	verifier *ajwt.DPoPVerifier
	mu       sync.Mutex
	claims   []ajwt.IntentClaims
	requests atomic.Int64
	// handle, when set, answers after verification.
	handle func(w http.ResponseWriter, r *http.Request, c *ajwt.IntentClaims)
}

func newUpstream(t *testing.T, e *env, nonce ajwt.NonceChecker) *upstream {
	u := &upstream{t: t, verifier: &ajwt.DPoPVerifier{Replay: ajwt.NewMemoryReplayCache(10000), Nonce: nonce}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		deny := func(ae *ajwt.Error) {
			if ae.Code == ajwt.CodeUseDPoPNonce {
				w.Header().Set("DPoP-Nonce", nonce.Current())
			}
			w.Header().Set("WWW-Authenticate", `DPoP algs="EdDSA", error="`+ae.Code+`"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(ae.Status)
			_ = json.NewEncoder(w).Encode(ae)
		}
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || scheme != "DPoP" {
			deny(ajwt.NewError(401, ajwt.CodeInvalidToken, ajwt.ReasonTokenMissing, "no DPoP token"))
			return
		}
		j, err := ajwt.ParseJWS(tok)
		if err != nil || !j.TypIs(ajwt.TypIntent) {
			deny(ajwt.NewError(401, ajwt.CodeInvalidToken, ajwt.ReasonTokenInvalid, "bad token"))
			return
		}
		pub, ok := e.srv.PublicKey(j.Header.Kid)
		if !ok || j.Verify(pub) != nil {
			deny(ajwt.NewError(401, ajwt.CodeInvalidToken, ajwt.ReasonTokenInvalid, "bad signature"))
			return
		}
		var c ajwt.IntentClaims
		if err := j.Claims(&c); err != nil || c.Cnf == nil {
			deny(ajwt.NewError(401, ajwt.CodeInvalidToken, ajwt.ReasonTokenInvalid, "bad claims"))
			return
		}
		if _, err := u.verifier.Verify(r.Context(), ajwt.DPoPCheck{Values: r.Header.Values("DPoP"), Method: r.Method,
			HTU: u.URL + r.URL.EscapedPath(), AccessToken: tok, ExpectedJKT: c.Cnf.JKT}); err != nil {
			deny(ajwt.AsError(err))
			return
		}
		u.mu.Lock()
		u.claims = append(u.claims, c)
		u.mu.Unlock()
		if u.handle != nil {
			u.handle(w, r, &c)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": c.Subject, "step": c.Intent.StepID})
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) lastClaims() ajwt.IntentClaims {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.claims) == 0 {
		u.t.Fatal("upstream accepted no request")
	}
	return u.claims[len(u.claims)-1]
}

// get sends a GET through hc and returns the status and body.
func get(t *testing.T, hc *http.Client, u string) (int, string) {
	t.Helper()
	res, err := hc.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func decodeJWT[T any](t *testing.T, compact string) (ajwt.Header, T) {
	t.Helper()
	parts := strings.Split(compact, ".")
	var h ajwt.Header
	var v T
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &v) != nil {
		t.Fatalf("bad JWT")
	}
	return h, v
}
