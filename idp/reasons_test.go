package idp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/idp"
)

// TestReasonCodes has one case per IDP reason code of DESIGN §5.7 that the IDP can
// produce, each asserting the HTTP status, the OAuth error and the reason.
func TestReasonCodes(t *testing.T) {
	w := newWorld(t, nil)
	sup := w.enroll("supervisor", w.sums["supervisor"])
	pl := w.enroll("planner", w.sums["planner"])
	cls := w.enroll("classifier", w.sums["classifier"])

	// started returns an execution whose first step is active under sup.
	started := func() (string, string) {
		execID, root := w.execution()
		if st, r := w.mint(sup, execID, "list_files", resGitHub, root, nil); st != 200 {
			t.Fatalf("setup mint: %d %v", st, r)
		}
		return execID, root
	}
	type tc struct {
		name   string
		run    func() (int, resp)
		status int
		code   string
		reason string
	}
	cases := []tc{
		{"unknown_client", func() (int, resp) {
			w.secrets["ghost"] = "nope-nope-nope-nope"
			return w.form("ghost", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"ajwt:admin"}}, nil)
		}, 401, "invalid_client", "unknown_client"},
		{"unknown_agent", func() (int, resp) {
			execID, root := w.execution()
			h := *sup
			h.agentID = "nobody"
			return w.mint(&h, execID, "list_files", resGitHub, root, nil)
		}, 400, "invalid_grant", "unknown_agent"},
		{"checksum_mismatch", func() (int, resp) {
			execID, root := w.execution()
			h := *sup
			h.checksum = ajwt.SHA256Digest([]byte("tampered prompt"))
			return w.mint(&h, execID, "list_files", resGitHub, root, nil)
		}, 400, "invalid_grant", "checksum_mismatch"},
		{"checksum_mismatch at enrollment", func() (int, resp) {
			k := newKey()
			p := "/v1/agents/planner/instances"
			return w.json("POST", p, "patchbot", map[string]any{"agent_checksum": ajwt.SHA256Digest([]byte("x")), "shim_checksum": w.shim}, w.proof(k, "POST", p))
		}, 400, "invalid_request", "checksum_mismatch"},
		{"duplicate_checksum", func() (int, resp) {
			d := agentDef("planner", "repo:read")
			d["agent_id"] = "planner-clone"
			d["prompt"] = "You are the planner agent.\nWork on {repo}."
			d["tools"] = []map[string]any{{"name": "planner_tool", "description": "does planner work", "parameters": map[string]any{"type": "object"}}}
			return w.json("POST", "/v1/agents", "admin", d, nil)
		}, 409, "invalid_request", "duplicate_checksum"},
		{"shim_unrecognized", func() (int, resp) {
			k := newKey()
			p := "/v1/agents/planner/instances"
			return w.json("POST", p, "patchbot", map[string]any{"agent_checksum": w.sums["planner"], "shim_checksum": ajwt.SHA256Digest([]byte("unapproved build"))}, w.proof(k, "POST", p))
		}, 400, "invalid_request", "shim_unrecognized"},
		{"instance_unknown", func() (int, resp) {
			execID, root := w.execution()
			h := *sup
			h.key = newKey()
			return w.mint(&h, execID, "list_files", resGitHub, root, nil)
		}, 400, "invalid_grant", "instance_unknown"},
		{"instance_key_mismatch", func() (int, resp) {
			execID, root := w.execution()
			h := *sup
			h.key = cls.key // the classifier's key acting as the supervisor
			return w.mint(&h, execID, "list_files", resGitHub, root, nil)
		}, 400, "invalid_grant", "instance_key_mismatch"},
		{"instance_exists", func() (int, resp) {
			p := "/v1/agents/planner/instances"
			return w.json("POST", p, "patchbot", map[string]any{"agent_checksum": w.sums["planner"], "shim_checksum": w.shim}, w.proof(pl.key, "POST", p))
		}, 409, "invalid_request", "instance_exists"},
		{"dpop_missing", func() (int, resp) {
			execID, root := w.execution()
			v := url.Values{"grant_type": {"agent_checksum"}, "agent_id": {"supervisor"}, "agent_checksum": {sup.checksum}, "execution_id": {execID}, "step_id": {"list_files"}, "resource": {resGitHub}, "delegation_chain": {root}}
			return w.form("patchbot", "/oauth2/token", v, nil)
		}, 400, "invalid_dpop_proof", "dpop_missing"},
		{"dpop_invalid (htu of another endpoint)", func() (int, resp) {
			execID, root := w.execution()
			v := url.Values{"grant_type": {"agent_checksum"}, "agent_id": {"supervisor"}, "agent_checksum": {sup.checksum}, "execution_id": {execID}, "step_id": {"list_files"}, "resource": {resGitHub}, "delegation_chain": {root}}
			return w.form("patchbot", "/oauth2/token", v, w.proof(sup.key, "POST", "/oauth2/introspect"))
		}, 400, "invalid_dpop_proof", "dpop_invalid"},
		{"dpop_replay", func() (int, resp) {
			execID, root := w.execution()
			v := url.Values{"grant_type": {"agent_checksum"}, "agent_id": {"supervisor"}, "agent_checksum": {sup.checksum}, "execution_id": {execID}, "step_id": {"list_files"}, "resource": {resGitHub}, "delegation_chain": {root}}
			p := w.proof(sup.key, "POST", "/oauth2/token")
			if st, r := w.form("patchbot", "/oauth2/token", v, p); st != 200 {
				t.Fatalf("first use: %d %v", st, r)
			}
			return w.form("patchbot", "/oauth2/token", v, p)
		}, 400, "invalid_dpop_proof", "dpop_replay"},
		{"execution_unknown (another app's)", func() (int, resp) {
			_, root := w.execution()
			return w.mint(sup, "exe-does-not-exist", "list_files", resGitHub, root, nil)
		}, 400, "invalid_grant", "execution_unknown"},
		{"execution_closed", func() (int, resp) {
			execID, root := w.execution()
			w.mustJSON(200, "POST", "/v1/executions/"+execID+"/close", "patchbot", map[string]any{})
			return w.mint(sup, execID, "list_files", resGitHub, root, nil)
		}, 400, "invalid_grant", "execution_closed"},
		{"step_unknown", func() (int, resp) {
			execID, root := w.execution()
			return w.mint(sup, execID, "merge_pull_request", resGitHub, root, nil)
		}, 400, "invalid_grant", "step_unknown"},
		{"step_complete", func() (int, resp) {
			execID, root := started()
			w.complete(sup, execID, "list_files")
			return w.mint(sup, execID, "list_files", resGitHub, root, nil)
		}, 400, "invalid_grant", "step_complete"},
		{"step_not_owned (mint)", func() (int, resp) {
			execID, root := started()
			other := w.enroll("supervisor", w.sums["supervisor"])
			return w.mint(other, execID, "list_files", resGitHub, root, nil)
		}, 400, "invalid_grant", "step_not_owned"},
		{"step_not_owned (complete)", func() (int, resp) {
			execID, _ := started()
			other := w.enroll("supervisor", w.sums["supervisor"])
			return w.complete(other, execID, "list_files")
		}, 403, "access_denied", "step_not_owned"},
		{"step_not_active", func() (int, resp) {
			execID, _ := w.execution()
			return w.complete(sup, execID, "list_files")
		}, 409, "invalid_request", "step_not_active"},
		{"wrong_agent_for_step", func() (int, resp) {
			execID, root := w.execution()
			l := link(t, sup, root, "planner", []string{"list_files"}, pl.jkt, nil)
			return w.mint(pl, execID, "list_files", resGitHub, root+","+l, nil)
		}, 400, "invalid_grant", "wrong_agent_for_step"},
		{"resource_mismatch", func() (int, resp) {
			execID, root := w.execution()
			return w.mint(sup, execID, "list_files", resOSV, root, nil)
		}, 400, "invalid_target", "resource_mismatch"},
		{"dependency_incomplete", func() (int, resp) {
			execID, root := w.execution()
			l := link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
			return w.mint(pl, execID, "query_vulns", resOSV, root+","+l, nil)
		}, 400, "invalid_grant", "dependency_incomplete"},
		{"approval_required", func() (int, resp) {
			execID, root := started()
			w.complete(sup, execID, "list_files")
			l := link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
			if st, r := w.mint(pl, execID, "query_vulns", resOSV, root+","+l, nil); st != 200 {
				t.Fatalf("setup: %d %v", st, r)
			}
			w.complete(pl, execID, "query_vulns")
			l2 := link(t, sup, root, "classifier", []string{"read_manifests"}, cls.jkt, nil)
			return w.mint(cls, execID, "read_manifests", resGitHub, root+","+l2, nil)
		}, 400, "invalid_grant", "approval_required"},
		{"scope_exceeds_step", func() (int, resp) {
			execID, root := w.execution()
			return w.mint(sup, execID, "list_files", resGitHub, root, map[string]string{"scope": "repo:read repo:write"})
		}, 400, "invalid_scope", "scope_exceeds_step"},
		{"delegation_missing", func() (int, resp) {
			execID, _ := w.execution()
			return w.mint(sup, execID, "list_files", resGitHub, "", map[string]string{"delegation_chain": ""})
		}, 400, "invalid_grant", "delegation_missing"},
		{"delegation_invalid (root of another execution)", func() (int, resp) {
			execID, _ := w.execution()
			_, otherRoot := w.execution()
			return w.mint(sup, execID, "list_files", resGitHub, otherRoot, nil)
		}, 400, "invalid_grant", "delegation_invalid"},
		{"delegation_depth_exceeded", func() (int, resp) {
			execID, root := started()
			w.complete(sup, execID, "list_files")
			l1 := link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
			l2 := link(t, pl, l1, "planner", []string{"query_vulns"}, pl.jkt, nil)
			return w.mint(pl, execID, "query_vulns", resOSV, root+","+l1+","+l2, nil)
		}, 400, "invalid_grant", "delegation_depth_exceeded"},
		{"step_not_delegated", func() (int, resp) {
			execID, root := started()
			w.complete(sup, execID, "list_files")
			l := link(t, sup, root, "planner", []string{"read_manifests"}, pl.jkt, nil)
			return w.mint(pl, execID, "query_vulns", resOSV, root+","+l, nil)
		}, 400, "invalid_grant", "step_not_delegated"},
		{"workflow_invalid (DELETE under repo:read, T6b)", func() (int, resp) {
			wf := testWorkflow()
			wf["steps"].([]map[string]any)[0]["operations"] = []map[string]any{{"method": "DELETE", "path": "/repos/{repo}"}}
			return w.json("POST", "/v1/workflows", "admin", wf, nil)
		}, 400, "invalid_request", "workflow_invalid"},
		{"params_invalid", func() (int, resp) {
			return w.json("POST", "/v1/executions", "patchbot", map[string]any{"workflow_id": "wf", "user": "alice", "intent": "x", "params": map[string]string{"repo": "acme/../infra"}}, nil)
		}, 400, "invalid_request", "params_invalid"},
		{"forbidden (allowed_params, X8)", func() (int, resp) {
			return w.json("POST", "/v1/executions", "patchbot", map[string]any{"workflow_id": "wf", "user": "alice", "intent": "x", "params": map[string]string{"repo": "evil/infra"}}, nil)
		}, 403, "access_denied", "forbidden"},
		{"forbidden (approve by admin)", func() (int, resp) {
			execID, _ := w.execution()
			return w.json("POST", "/v1/executions/"+execID+"/steps/read_manifests/approve", "admin", map[string]any{}, nil)
		}, 403, "access_denied", "forbidden"},
		{"forbidden (definition to app, T12)", func() (int, resp) {
			st, r, _ := w.do("GET", "/v1/agents/planner?include=definition", "patchbot", "", nil, nil)
			return st, r
		}, 403, "access_denied", "forbidden"},
		{"not_found (another app's execution)", func() (int, resp) {
			execID, _ := w.execution()
			st, r, _ := w.do("GET", "/v1/executions/"+execID, "otherapp", "", nil, nil)
			return st, r
		}, 404, "not_found", "not_found"},
		{"invalid_request (repeated parameter)", func() (int, resp) {
			st, r, _ := w.do("POST", "/oauth2/token", "patchbot", "application/x-www-form-urlencoded", []byte("grant_type=client_credentials&grant_type=agent_checksum"), nil)
			return st, r
		}, 400, "invalid_request", "invalid_request"},
		{"invalid_request (unknown JSON member)", func() (int, resp) {
			d := agentDef("newagent", "repo:read")
			d["base_url"] = "http://evil"
			return w.json("POST", "/v1/agents", "admin", d, nil)
		}, 400, "invalid_request", "invalid_request"},
		{"invalid_request (malformed form)", func() (int, resp) {
			st, r, _ := w.do("POST", "/oauth2/token", "patchbot", "application/x-www-form-urlencoded", []byte("grant_type=%zz"), nil)
			return st, r
		}, 400, "invalid_request", "invalid_request"},
		{"body_too_large", func() (int, resp) {
			st, r, _ := w.do("POST", "/v1/agents", "admin", "application/json", []byte(`{"prompt":"`+strings.Repeat("a", 70<<10)+`"}`), nil)
			return st, r
		}, 413, "invalid_request", "body_too_large"},
		{"body_too_large (token endpoint)", func() (int, resp) {
			st, r, _ := w.do("POST", "/oauth2/token", "patchbot", "application/x-www-form-urlencoded", []byte("x="+strings.Repeat("a", 70<<10)), nil)
			return st, r
		}, 413, "invalid_request", "body_too_large"},
		{"execution_closed (approve)", func() (int, resp) {
			execID, _ := w.execution()
			w.mustJSON(200, "POST", "/v1/executions/"+execID+"/close", "patchbot", map[string]any{})
			return w.json("POST", "/v1/executions/"+execID+"/steps/read_manifests/approve", "reviewer", map[string]any{}, nil)
		}, 409, "invalid_request", "execution_closed"},
		{"invalid_request (approve a step without approval)", func() (int, resp) {
			execID, _ := w.execution()
			return w.json("POST", "/v1/executions/"+execID+"/steps/list_files/approve", "reviewer", map[string]any{}, nil)
		}, 409, "invalid_request", "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, r := c.run()
			if st != c.status || r.code() != c.code || r.reason() != c.reason {
				t.Fatalf("got %d error=%q reason=%q (%v); want %d %q %q", st, r.code(), r.reason(), r["error_description"], c.status, c.code, c.reason)
			}
		})
	}

	// agent_revoked last: it changes the world. Mint, enrollment and re-registration.
	t.Run("agent_revoked", func(t *testing.T) {
		execID, root := w.execution()
		w.mustJSON(200, "POST", "/v1/agents/supervisor/revoke", "admin", map[string]any{})
		if st, r := w.mint(sup, execID, "list_files", resGitHub, root, nil); st != 400 || r.reason() != "agent_revoked" || r.code() != "invalid_grant" {
			t.Fatalf("mint: %d %v", st, r)
		}
		if st, r := w.json("POST", "/v1/agents", "admin", agentDef("supervisor", "repo:read"), nil); st != 409 || r.reason() != "agent_revoked" {
			t.Fatalf("re-register: %d %v", st, r)
		}
	})
}

// TestBaselineOff: without --baseline, resource tokens by client_credentials are refused.
func TestBaselineOff(t *testing.T) {
	e := newEnv(t, nil, func(c *idp.Config) { c.Baseline = false })
	st, r := e.form("patchbot", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"repo:read"}, "resource": {resGitHub}}, nil)
	if st != 400 || r.code() != "unauthorized_client" || r.reason() != "forbidden" {
		t.Fatalf("got %d %v", st, r)
	}
	st, r = e.form("admin", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"ajwt:admin repo:read"}}, nil)
	if st != 400 || r.code() != "invalid_scope" {
		t.Fatalf("admin+resource scope: %d %v", st, r)
	}
	st, _, h := e.do("GET", "/v1/agents", "", "", nil, nil)
	if st != 401 || h.Get("WWW-Authenticate") != "" {
		t.Fatalf("no credentials: %d %v", st, h)
	}
	req, _ := http.NewRequest("GET", e.url+"/v1/agents", nil)
	req.SetBasicAuth("patchbot", "wrong-secret-wrong")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != `Basic realm="ajwt"` {
		t.Fatalf("bad Basic: %d %v", res.StatusCode, res.Header)
	}
}

// TestReplayCacheFull: when the DPoP replay cache has no room the token endpoint answers
// 503 temporarily_unavailable with Retry-After and reason replay_cache_full, and does
// not evict the proof it holds (a replay of it is still refused).
func TestReplayCacheFull(t *testing.T) {
	w := newWorld(t, nil, func(c *idp.Config) { c.ReplayCacheSize = 1 })
	sup := w.enroll("supervisor", w.sums["supervisor"]) // enrollment fills the one slot
	execID, root := w.execution()
	v := url.Values{"grant_type": {"agent_checksum"}, "agent_id": {"supervisor"}, "agent_checksum": {sup.checksum},
		"execution_id": {execID}, "step_id": {"list_files"}, "resource": {resGitHub}, "delegation_chain": {root}}
	req, _ := http.NewRequest("POST", w.url+"/oauth2/token", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("patchbot", w.secrets["patchbot"])
	req.Header.Set("DPoP", w.proof(sup.key, "POST", "/oauth2/token").Get("DPoP"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r resp
	_ = json.NewDecoder(res.Body).Decode(&r)
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" || r.code() != "temporarily_unavailable" || r.reason() != "replay_cache_full" {
		t.Fatalf("got %d %v %v", res.StatusCode, res.Header, r)
	}
}
