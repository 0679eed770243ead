// Package e2e_test drives the protected call path end to end on loopback: a real IDP,
// a real resource proxy and an httptest upstream, with agents running through the shim.
package e2e_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/idp"
	"github.com/agentic-jwt/patchcrew/resourceproxy"
	"github.com/agentic-jwt/patchcrew/shim"
)

// stack is IDP + proxy + upstream on loopback.
type stack struct {
	idpURL, proxyURL string
	upstreamURL      string
	secrets          map[string]string
	upstream         *recorder
	admin            string
}

// recorder is the upstream: it answers 200 and remembers the last request's headers.
type recorder struct {
	mu   sync.Mutex
	last http.Header
	path string
	n    int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.last, r.path = req.Header.Clone(), req.URL.RequestURI()
	r.n++
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"sha":"abc","tree":[]}`))
}

func (r *recorder) seen() (http.Header, string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.path, r.n
}

func newStack(t testing.TB) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &stack{secrets: map[string]string{}, upstream: &recorder{}}
	cf := &idp.ClientsFile{}
	for id, role := range map[string]string{"admin": idp.RoleAdmin, "patchbot": idp.RoleApp, "proxy": idp.RoleResource} {
		s.secrets[id] = idp.RandomSecret()
		cf.Clients = append(cf.Clients, idp.ClientConfig{ClientID: id, ClientSecret: s.secrets[id], Role: role})
	}
	var idpH, proxyH http.Handler = http.NotFoundHandler(), http.NotFoundHandler()
	its := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idpH.ServeHTTP(w, r) }))
	t.Cleanup(its.Close)
	pts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxyH.ServeHTTP(w, r) }))
	t.Cleanup(pts.Close)
	ups := httptest.NewServer(s.upstream)
	t.Cleanup(ups.Close)
	s.idpURL, s.proxyURL, s.upstreamURL = its.URL, pts.URL, ups.URL
	srv, err := idp.New(ctx, idp.Config{Issuer: its.URL, Store: idp.NewMemoryStore(), Clients: cf})
	if err != nil {
		t.Fatal(err)
	}
	idpH = srv.Handler()
	px, err := resourceproxy.New(ctx, resourceproxy.Config{PublicURL: pts.URL, IDPURL: its.URL, ClientID: "proxy", ClientSecret: s.secrets["proxy"],
		Upstreams: map[string]resourceproxy.Upstream{ajwt.ResourceGitHub: {URL: ups.URL, Credential: "token upstream-secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	proxyH = px.Handler()
	go func() { _ = px.Run(ctx) }()
	for deadline := time.Now().Add(5 * time.Second); !px.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("proxy never became ready")
		}
	}
	s.admin = s.adminToken(t)
	return s
}

func (s *stack) adminToken(t testing.TB) string {
	req, _ := http.NewRequest("POST", s.idpURL+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=ajwt%3Aadmin"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("admin", url.QueryEscape(s.secrets["admin"]))
	var out struct {
		AccessToken string `json:"access_token"`
	}
	s.send(t, req, 200, &out)
	return out.AccessToken
}

func (s *stack) send(t testing.TB, req *http.Request, want int, out any) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL.Path, res.StatusCode, raw.String())
	}
	if out != nil {
		if err := json.Unmarshal(raw.Bytes(), out); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *stack) register(t testing.TB, path string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	req, _ := http.NewRequest("POST", s.idpURL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.admin)
	s.send(t, req, 201, nil)
}

func definition(id string) *ajwt.AgentDefinition {
	zero := 0.0
	return &ajwt.AgentDefinition{AgentID: id, Prompt: "You are the " + id + " agent. Work on {repo}.",
		Tools:  []ajwt.Tool{{Name: "list_files", Description: "List the files of " + id + "'s repository.", Parameters: json.RawMessage(`{"type":"object"}`)}},
		Config: ajwt.ModelConfig{Provider: "offline", Model: "ajwt-scripted-1", Temperature: &zero}}
}

// setup registers a supervisor and a planner, the test binary as a shim build, and a
// one-step workflow, then enrolls both through the shim and delegates the step.
func setup(t testing.TB, s *stack) (*shim.Client, *shim.Agent, *shim.Execution) {
	t.Helper()
	ctx := context.Background()
	for id, scopes := range map[string][]string{"supervisor": {"repo:read"}, "planner": {"repo:read"}} {
		d := definition(id)
		s.register(t, "/v1/agents", map[string]any{"agent_id": id, "prompt": d.Prompt, "tools": d.Tools, "config": d.Config, "app": "patchbot", "max_scopes": scopes})
	}
	sum, err := shim.ExecutableChecksum()
	if err != nil {
		t.Fatal(err)
	}
	s.register(t, "/v1/shims", map[string]any{"checksum": sum, "note": "e2e test binary"})
	s.register(t, "/v1/workflows", map[string]any{"workflow_id": "scan", "entry_agent": "supervisor", "max_delegation_depth": 1, "params": []string{"repo"},
		"steps": []map[string]any{{"id": "list_files", "agent": "planner", "resource": ajwt.ResourceGitHub, "scopes": []string{"repo:read"},
			"operations": []map[string]any{{"method": "GET", "path": "/repos/{repo}/git/trees/*"}}}}})
	cl, err := shim.NewClient(shim.Config{IDPURL: s.idpURL, ClientID: "patchbot", ClientSecret: s.secrets["patchbot"]})
	if err != nil {
		t.Fatal(err)
	}
	sup, err := cl.NewAgent(shim.StaticDefinition(*definition("supervisor")))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := cl.NewAgent(shim.StaticDefinition(*definition("planner")))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*shim.Agent{sup, pl} {
		if err := a.Enroll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ex, err := cl.StartExecution(ctx, "scan", "alice", "list acme/webapp", map[string]string{"repo": "acme/webapp"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Bind(sup); err != nil {
		t.Fatal(err)
	}
	if err := sup.Delegate(ctx, ex, pl, "list_files"); err != nil {
		t.Fatal(err)
	}
	return cl, pl, ex
}

func reason(t *testing.T, res *http.Response) string {
	t.Helper()
	var b ajwt.Body
	_ = json.NewDecoder(res.Body).Decode(&b)
	return string(b.Reason)
}

// capture is a RoundTripper that remembers the last request it sent.
type capture struct {
	mu   sync.Mutex
	last *http.Request
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.last = r.Clone(r.Context())
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestProtectedCall: an agent handle GETs an allowed path through the proxy → 200; the
// upstream received the proxy's credential and neither the agent's token nor its DPoP
// proof. A path outside the step's operations is refused at the proxy, and the agent's
// token replayed with another key's proof is refused with dpop_key_mismatch.
func TestProtectedCall(t *testing.T) {
	s := newStack(t)
	_, pl, ex := setup(t, s)
	cap := &capture{}
	hc := &http.Client{Transport: pl.Transport(ex, "list_files", cap)}

	res, err := hc.Get(s.proxyURL + "/github/repos/acme/webapp/git/trees/main?recursive=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	hdr, path, _ := s.upstream.seen()
	if res.StatusCode != 200 || path != "/repos/acme/webapp/git/trees/main?recursive=1" {
		t.Fatalf("allowed call: %d, upstream saw %q", res.StatusCode, path)
	}
	if got := hdr.Get("Authorization"); got != "token upstream-secret" || hdr.Get("DPoP") != "" {
		t.Fatalf("upstream headers: Authorization=%q DPoP=%q", got, hdr.Get("DPoP"))
	}
	sent := cap.last
	if !strings.HasPrefix(sent.Header.Get("Authorization"), "DPoP ") || sent.Header.Get("DPoP") == "" {
		t.Fatalf("the shim did not send a DPoP-bound token: %v", sent.Header)
	}

	// Another repository: not in the token's operations.
	res, err = hc.Get(s.proxyURL + "/github/repos/acme/infra/git/trees/main")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 403 || reason(t, res) != "operation_not_permitted" {
		t.Fatalf("other repository: %d", res.StatusCode)
	}
	res.Body.Close()

	// The planner's token with a proof from another key (an agent without the planner's
	// key: the shim exposes no key, so another handle can only sign with its own).
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	tok := strings.TrimPrefix(sent.Header.Get("Authorization"), "DPoP ")
	target := s.proxyURL + "/github/repos/acme/webapp/git/trees/main"
	proof, err := ajwt.NewDPoPProof(other, "GET", target, tok, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", target, nil)
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", proof)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 || reason(t, res) != "dpop_key_mismatch" ||
		!strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
		t.Fatalf("token with another key's proof: %d %v", res.StatusCode, res.Header)
	}
	res.Body.Close()
	// The same token without any proof: dpop_missing.
	req, _ = http.NewRequest("GET", target, nil)
	req.Header.Set("Authorization", "DPoP "+tok)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 || reason(t, res) != "dpop_missing" {
		t.Fatalf("token without proof: %d", res.StatusCode)
	}
	res.Body.Close()
}

// TestCompletionEndsTheStep: after the step completes (the last one, so the execution
// closes), the shim can no longer call: the mint is refused with execution_closed and
// nothing reaches the upstream.
func TestCompletionEndsTheStep(t *testing.T) {
	s := newStack(t)
	_, pl, ex := setup(t, s)
	hc := pl.HTTPClient(ex, "list_files")
	target := s.proxyURL + "/github/repos/acme/webapp/git/trees/main"
	res, err := hc.Get(target)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("first call: %v %v", err, res)
	}
	res.Body.Close()
	if err := pl.Complete(context.Background(), ex, "list_files"); err != nil {
		t.Fatal(err)
	}
	_, _, before := s.upstream.seen()
	_, err = hc.Get(target)
	if ajwt.ReasonOf(err) != ajwt.ReasonExecutionClosed {
		t.Fatalf("call after completion: %v (reason %q)", err, ajwt.ReasonOf(err))
	}
	if _, _, after := s.upstream.seen(); after != before {
		t.Fatal("a call reached the upstream after completion")
	}
}
