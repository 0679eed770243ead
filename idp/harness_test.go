package idp_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/idp"
)

// env is a live IDP on loopback with known client secrets, for HTTP-level tests.
type env struct {
	t       testing.TB
	srv     *idp.Server
	ts      *httptest.Server
	url     string
	store   idp.Store
	secrets map[string]string
	admin   string
	shim    string
	swap    func(http.Handler)
}

var testClients = []idp.ClientConfig{
	{ClientID: "admin", Role: idp.RoleAdmin},
	{ClientID: "patchbot", Role: idp.RoleApp, AllowedParams: map[string][]string{"repo": {"acme/*"}}},
	{ClientID: "otherapp", Role: idp.RoleApp},
	{ClientID: "proxy", Role: idp.RoleResource},
	{ClientID: "reviewer", Role: idp.RoleApprover},
}

func newEnv(t testing.TB, store idp.Store, mods ...func(*idp.Config)) *env {
	t.Helper()
	e := &env{t: t, secrets: map[string]string{}, store: store}
	cf := &idp.ClientsFile{}
	for _, c := range testClients {
		c.ClientSecret = idp.RandomSecret()
		e.secrets[c.ClientID] = c.ClientSecret
		cf.Clients = append(cf.Clients, c)
	}
	var h http.Handler = http.NotFoundHandler()
	e.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.ts.Close)
	e.url = e.ts.URL
	e.swap = func(n http.Handler) { h = n }
	if e.store == nil {
		e.store = idp.NewMemoryStore()
	}
	cfg := idp.Config{Issuer: e.url, Store: e.store, Clients: cf, Baseline: true}
	for _, m := range mods {
		m(&cfg)
	}
	srv, err := idp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, h = srv, srv.Handler()
	st, body := e.form("admin", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"ajwt:admin"}}, nil)
	if st != 200 {
		t.Fatalf("admin token: %d %v", st, body)
	}
	e.admin = body["access_token"].(string)
	e.shim = ajwt.SHA256Digest([]byte("test shim build"))
	e.mustJSON(201, "POST", "/v1/shims", "admin", map[string]any{"checksum": e.shim, "note": "test"})
	return e
}

// restart replaces the running IDP with a new one over store (same issuer, the stored
// clients), as a process restart would.
func (e *env) restart(store idp.Store) {
	e.t.Helper()
	srv, err := idp.New(context.Background(), idp.Config{Issuer: e.url, Store: store, Baseline: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv, e.store = srv, store
	e.swap(srv.Handler())
}

// resp is a decoded JSON response.
type resp map[string]any

func (r resp) reason() string { s, _ := r["reason"].(string); return s }
func (r resp) code() string   { s, _ := r["error"].(string); return s }

// do sends a request; who is a client id (Basic auth), "bearer:<token>" or "".
func (e *env) do(method, path, who string, ctype string, body []byte, hdr http.Header) (int, resp, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(string(body)))
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	switch {
	case who == "":
	case strings.HasPrefix(who, "bearer:"):
		req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(who, "bearer:"))
	case who == "admin":
		req.Header.Set("Authorization", "Bearer "+e.admin)
	default:
		req.SetBasicAuth(url.QueryEscape(who), url.QueryEscape(e.secrets[who]))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out resp
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: bad JSON %q", method, path, raw)
		}
	}
	return res.StatusCode, out, res.Header
}

// form posts a form; the admin client authenticates with Basic here (token endpoint).
func (e *env) form(who, path string, v url.Values, hdr http.Header) (int, resp) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range hdr {
		for _, x := range vs {
			req.Header.Add(k, x)
		}
	}
	if who != "" {
		req.SetBasicAuth(url.QueryEscape(who), url.QueryEscape(e.secrets[who]))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out resp
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func (e *env) json(method, path, who string, v any, hdr http.Header) (int, resp) {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	st, r, _ := e.do(method, path, who, "application/json", b, hdr)
	return st, r
}

func (e *env) mustJSON(want int, method, path, who string, v any) resp {
	e.t.Helper()
	st, r := e.json(method, path, who, v, nil)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d: %v", method, path, st, want, r)
	}
	return r
}

// agentDef is a test agent definition.
func agentDef(id string, maxScopes ...string) map[string]any {
	return map[string]any{
		"agent_id": id, "description": id + " agent",
		"prompt": "You are the " + id + " agent.\nWork on {repo}.",
		"tools":  []map[string]any{{"name": id + "_tool", "description": "does " + id + " work", "parameters": map[string]any{"type": "object"}}},
		"config": map[string]any{"provider": "offline", "model": "ajwt-scripted-1", "temperature": 0},
		"app":    "patchbot", "max_scopes": maxScopes,
	}
}

// handle is a test agent instance: an in-memory key and its enrollment.
type handle struct {
	agentID, checksum, instanceID, jkt string
	key                                ed25519.PrivateKey
}

func newKey() ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return k
}

func (e *env) proof(key ed25519.PrivateKey, method, path string) http.Header {
	p, err := ajwt.NewDPoPProof(key, method, e.url+path, "", "", time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	h := http.Header{}
	h.Set("DPoP", p)
	return h
}

func (e *env) enroll(agentID, checksum string) *handle {
	e.t.Helper()
	h := &handle{agentID: agentID, checksum: checksum, key: newKey()}
	path := "/v1/agents/" + agentID + "/instances"
	st, r := e.json("POST", path, "patchbot", map[string]any{"agent_checksum": checksum, "shim_checksum": e.shim}, e.proof(h.key, "POST", path))
	if st != 201 {
		e.t.Fatalf("enroll %s: %d %v", agentID, st, r)
	}
	h.instanceID, h.jkt = r["instance_id"].(string), r["jkt"].(string)
	return h
}

// mint asks for a step token; extra overrides or removes ("" value) parameters.
func (e *env) mint(h *handle, execID, stepID, resource, chain string, extra map[string]string) (int, resp) {
	e.t.Helper()
	v := url.Values{"grant_type": {"agent_checksum"}, "agent_id": {h.agentID}, "agent_checksum": {h.checksum},
		"execution_id": {execID}, "step_id": {stepID}, "resource": {resource}, "delegation_chain": {chain}}
	for k, x := range extra {
		if x == "" {
			v.Del(k)
		} else {
			v.Set(k, x)
		}
	}
	return e.form("patchbot", "/oauth2/token", v, e.proof(h.key, "POST", "/oauth2/token"))
}

// link signs a delegation link from delegator (holding the parent's sub) to sub.
func link(t testing.TB, delegator *handle, parent string, sub string, steps []string, cnf string, mut func(*ajwt.DelegationClaims)) string {
	t.Helper()
	pc := decodeClaims[ajwt.DelegationClaims](t, parent)
	c := ajwt.DelegationClaims{Issuer: "agent:" + delegator.agentID, Subject: "agent:" + sub, ExecutionID: pc.ExecutionID,
		Steps: steps, Prev: pc.JTI, IssuedAt: time.Now().Unix(), Expiry: pc.Expiry, JTI: ajwt.NewJTI()}
	if cnf != "" {
		c.Cnf = &ajwt.Confirmation{JKT: cnf}
	}
	if mut != nil {
		mut(&c)
	}
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

// world is the standard registration used by most tests: three agents and a
// three-step workflow (supervisor → planner → classifier, the last gated).
type world struct {
	*env
	sums map[string]string
}

const (
	resGitHub = ajwt.ResourceGitHub
	resOSV    = ajwt.ResourceOSV
)

func newWorld(t testing.TB, store idp.Store, mods ...func(*idp.Config)) *world {
	e := newEnv(t, store, mods...)
	w := &world{env: e, sums: map[string]string{}}
	for id, scopes := range map[string][]string{"supervisor": {"repo:read"}, "planner": {"repo:read", "vulns:read"}, "classifier": {"repo:read"}} {
		r := e.mustJSON(201, "POST", "/v1/agents", "admin", agentDef(id, scopes...))
		w.sums[id] = r["checksum"].(string)
	}
	e.mustJSON(201, "POST", "/v1/workflows", "admin", testWorkflow())
	return w
}

func testWorkflow() map[string]any {
	return map[string]any{
		"workflow_id": "wf", "description": "test", "entry_agent": "supervisor", "max_delegation_depth": 1, "params": []string{"repo"},
		"steps": []map[string]any{
			{"id": "list_files", "agent": "supervisor", "resource": resGitHub, "scopes": []string{"repo:read"},
				"operations": []map[string]any{{"method": "GET", "path": "/repos/{repo}/git/trees/*"}}},
			{"id": "query_vulns", "agent": "planner", "resource": resOSV, "scopes": []string{"vulns:read"},
				"operations": []map[string]any{{"method": "POST", "path": "/v1/querybatch"}}, "depends_on": []string{"list_files"}},
			{"id": "read_manifests", "agent": "classifier", "resource": resGitHub, "scopes": []string{"repo:read"}, "approval": "required",
				"operations": []map[string]any{{"method": "GET", "path": "/repos/{repo}/contents/**/go.mod"}}, "depends_on": []string{"query_vulns"}},
		},
	}
}

// execution starts an execution and returns its id and root delegation.
func (w *world) execution() (string, string) {
	w.t.Helper()
	r := w.mustJSON(201, "POST", "/v1/executions", "patchbot", map[string]any{"workflow_id": "wf", "user": "alice", "intent": "patch acme/webapp", "params": map[string]string{"repo": "acme/webapp"}})
	return r["execution_id"].(string), r["root_delegation"].(string)
}

// complete completes a step with the owner's proof.
func (w *world) complete(h *handle, execID, step string) (int, resp) {
	path := "/v1/executions/" + execID + "/steps/" + step + "/complete"
	return w.json("POST", path, "patchbot", map[string]any{}, w.proof(h.key, "POST", path))
}
