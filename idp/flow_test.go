package idp_test

import (
	"net/url"
	"testing"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// TestFullFlow drives the whole protocol over real HTTP: admin token → register agents
// and a workflow → start execution → enroll (DPoP) → mint step 1 → complete → mint step
// 2 through a link signed by the entry agent → introspect → revoke → inactive and in
// the revocation feed.
func TestFullFlow(t *testing.T) {
	w := newWorld(t, nil)
	execID, root := w.execution()
	sup := w.enroll("supervisor", w.sums["supervisor"])
	pl := w.enroll("planner", w.sums["planner"])

	st, r := w.mint(sup, execID, "list_files", resGitHub, root, nil)
	if st != 200 || r["token_type"] != "DPoP" || r["scope"] != "repo:read" {
		t.Fatalf("mint step 1: %d %v", st, r)
	}
	tok1 := r["access_token"].(string)
	c1 := decodeClaims[ajwt.IntentClaims](t, tok1)
	if c1.Cnf.JKT != sup.jkt || c1.Intent.StepID != "list_files" || c1.Subject != "agent:supervisor" ||
		len(c1.Intent.DelegationChain) != 2 || c1.Intent.DelegationChain[0] != "user:alice" ||
		c1.Intent.Operations[0].Path != "/repos/acme/webapp/git/trees/*" || c1.AgentProof.InstanceID != sup.instanceID {
		t.Fatalf("step 1 claims: %+v %+v", c1, c1.Intent)
	}
	// Step 2 before step 1 completes: dependency_incomplete.
	l := link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
	if st, r := w.mint(pl, execID, "query_vulns", resOSV, root+","+l, nil); st != 400 || r.reason() != "dependency_incomplete" {
		t.Fatalf("early step 2: %d %v", st, r)
	}
	if st, r := w.complete(sup, execID, "list_files"); st != 200 {
		t.Fatalf("complete: %d %v", st, r)
	}
	st, r = w.mint(pl, execID, "query_vulns", resOSV, root+","+l, nil)
	if st != 200 {
		t.Fatalf("mint step 2: %d %v", st, r)
	}
	tok2 := r["access_token"].(string)
	c2 := decodeClaims[ajwt.IntentClaims](t, tok2)
	if got := c2.Intent.DelegationChain; len(got) != 3 || got[1] != "agent:supervisor" || got[2] != "agent:planner" {
		t.Fatalf("chain %v", got)
	}
	// Introspection: step 1's token died with its step, step 2's is active.
	if st, r := w.form("proxy", "/oauth2/introspect", url.Values{"token": {tok1}}, nil); st != 200 || r["active"] != false || len(r) != 1 {
		t.Fatalf("introspect completed step token: %d %v", st, r)
	}
	st, r = w.form("proxy", "/oauth2/introspect", url.Values{"token": {tok2}}, nil)
	if st != 200 || r["active"] != true || r["token_type"] != "DPoP" || r["sub"] != "agent:planner" {
		t.Fatalf("introspect step 2: %d %v", st, r)
	}
	// Revoke (RFC 7009) by another client is refused; by the owner it works.
	if st, r := w.form("otherapp", "/oauth2/revoke", url.Values{"token": {tok2}}, nil); st != 403 || r.code() != "access_denied" {
		t.Fatalf("revoke by other app: %d %v", st, r)
	}
	if st, _ := w.form("patchbot", "/oauth2/revoke", url.Values{"token": {tok2}}, nil); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	if _, r := w.form("proxy", "/oauth2/introspect", url.Values{"token": {tok2}}, nil); r["active"] != false {
		t.Fatalf("revoked token still active: %v", r)
	}
	st, feed, _ := w.do("GET", "/v1/revocations?since=0", "proxy", "", nil, nil)
	if st != 200 {
		t.Fatalf("feed: %d", st)
	}
	found := map[string]bool{}
	for _, x := range feed["revocations"].([]any) {
		m := x.(map[string]any)
		found[m["kind"].(string)+":"+m["id"].(string)] = true
	}
	if !found["token:"+c2.JTI] || !found["step:"+execID+"/list_files"] {
		t.Fatalf("feed lacks the revocations: %v", feed)
	}
	// The audit chain verifies.
	if n, err := idpVerify(w); err != nil || n < 10 {
		t.Fatalf("audit chain: %d %v", n, err)
	}
}
