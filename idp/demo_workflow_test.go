package idp_test

import (
	"testing"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// patchDependencies is DESIGN §6's workflow, with json members on the write steps.
func patchDependencies() map[string]any {
	manifests := []string{"go.mod", "package.json", "package-lock.json", "requirements.txt"}
	var readOps, commitOps []map[string]any
	for _, m := range manifests {
		for _, p := range []string{"/repos/{repo}/contents/" + m, "/repos/{repo}/contents/**/" + m} {
			readOps = append(readOps, map[string]any{"method": "GET", "path": p})
			commitOps = append(commitOps, map[string]any{"method": "GET", "path": p},
				map[string]any{"method": "PUT", "path": p, "json": map[string]string{"branch": "{branch}"}})
		}
	}
	step := func(id, agent, res string, scopes []string, ops []map[string]any, deps []string, approval string) map[string]any {
		return map[string]any{"id": id, "agent": agent, "resource": res, "scopes": scopes, "operations": ops, "depends_on": deps, "approval": approval}
	}
	return map[string]any{
		"workflow_id": "patch-dependencies", "entry_agent": "supervisor", "max_delegation_depth": 1, "params": []string{"repo"},
		"steps": []map[string]any{
			step("list_files", "planner", resGitHub, []string{"repo:read"}, []map[string]any{{"method": "GET", "path": "/repos/{repo}"}, {"method": "GET", "path": "/repos/{repo}/git/trees/*"}}, nil, "none"),
			step("read_manifests", "classifier", resGitHub, []string{"repo:read"}, readOps, []string{"list_files"}, "none"),
			step("query_vulns", "planner", resOSV, []string{"vulns:read"}, []map[string]any{{"method": "POST", "path": "/v1/querybatch"}, {"method": "GET", "path": "/v1/vulns/*"}}, []string{"read_manifests"}, "none"),
			step("triage", "classifier", resOSV, []string{"vulns:read"}, []map[string]any{{"method": "GET", "path": "/v1/vulns/*"}}, []string{"query_vulns"}, "none"),
			step("create_branch", "patcher", resGitHub, []string{"repo:read", "repo:write"}, []map[string]any{{"method": "GET", "path": "/repos/{repo}/git/ref/heads/*"},
				{"method": "POST", "path": "/repos/{repo}/git/refs", "json": map[string]string{"ref": "refs/heads/{branch}"}}}, []string{"triage"}, "none"),
			step("commit_changes", "patcher", resGitHub, []string{"repo:read", "repo:write"}, commitOps, []string{"create_branch"}, "none"),
			step("open_pull_request", "patcher", resGitHub, []string{"repo:write"}, []map[string]any{{"method": "POST", "path": "/repos/{repo}/pulls", "json": map[string]string{"head": "{branch}"}}}, []string{"commit_changes"}, "required"),
		},
	}
}

// TestDemoWorkflowRegisters: the workflow of DESIGN §6 (json members included)
// registers, and a write step's token carries its json member with {branch} filled.
func TestDemoWorkflowRegisters(t *testing.T) {
	e := newEnv(t, nil)
	sums := map[string]string{}
	for id, scopes := range map[string][]string{"supervisor": {"repo:read"}, "planner": {"repo:read", "vulns:read"},
		"classifier": {"repo:read", "vulns:read"}, "patcher": {"repo:read", "repo:write"}} {
		sums[id] = e.mustJSON(201, "POST", "/v1/agents", "admin", agentDef(id, scopes...))["checksum"].(string)
	}
	e.mustJSON(201, "POST", "/v1/workflows", "admin", patchDependencies())
	// A json member naming an undeclared param is refused.
	bad := patchDependencies()
	bad["workflow_id"] = "bad"
	bad["steps"].([]map[string]any)[6]["operations"] = []map[string]any{{"method": "POST", "path": "/repos/{repo}/pulls", "json": map[string]string{"head": "{nope}"}}}
	if st, r := e.json("POST", "/v1/workflows", "admin", bad, nil); st != 400 || r.reason() != "workflow_invalid" {
		t.Fatalf("undeclared json param: %d %v", st, r)
	}
	// Run up to create_branch and check its token's operations.
	w := &world{env: e, sums: sums}
	r := w.mustJSON(201, "POST", "/v1/executions", "patchbot", map[string]any{"workflow_id": "patch-dependencies", "user": "alice", "intent": "patch", "params": map[string]string{"repo": "acme/webapp"}})
	execID, root := r["execution_id"].(string), r["root_delegation"].(string)
	sup := w.enroll("supervisor", sums["supervisor"])
	hs := map[string]*handle{}
	for _, id := range []string{"planner", "classifier", "patcher"} {
		hs[id] = w.enroll(id, sums[id])
	}
	for _, s := range []struct{ step, agent, res string }{{"list_files", "planner", resGitHub}, {"read_manifests", "classifier", resGitHub},
		{"query_vulns", "planner", resOSV}, {"triage", "classifier", resOSV}, {"create_branch", "patcher", resGitHub}} {
		h := hs[s.agent]
		l := link(t, sup, root, s.agent, []string{s.step}, h.jkt, nil)
		st, tr := w.mint(h, execID, s.step, s.res, root+","+l, nil)
		if st != 200 {
			t.Fatalf("%s: %d %v", s.step, st, tr)
		}
		if s.step == "create_branch" {
			c := decodeClaims[ajwt.IntentClaims](t, tr["access_token"].(string))
			op := c.Intent.Operations[1]
			if op.Path != "/repos/acme/webapp/git/refs" || op.JSON["ref"] != "refs/heads/ajwt/"+execID {
				t.Fatalf("create_branch operation %+v", op)
			}
			return
		}
		if st, r := w.complete(h, execID, s.step); st != 200 {
			t.Fatalf("complete %s: %d %v", s.step, st, r)
		}
	}
}
