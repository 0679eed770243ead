package idp_test

import (
	"encoding/json"
	"testing"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// TestDelegationAcceptance has one case per acceptance condition of DESIGN §5.5.
func TestDelegationAcceptance(t *testing.T) {
	w := newWorld(t, nil)
	sup := w.enroll("supervisor", w.sums["supervisor"])
	pl := w.enroll("planner", w.sums["planner"])
	cls := w.enroll("classifier", w.sums["classifier"])

	// ready returns an execution where query_vulns can be minted by the planner.
	ready := func() (string, string) {
		execID, root := w.execution()
		if st, r := w.mint(sup, execID, "list_files", resGitHub, root, nil); st != 200 {
			t.Fatalf("setup: %d %v", st, r)
		}
		if st, r := w.complete(sup, execID, "list_files"); st != 200 {
			t.Fatalf("setup: %d %v", st, r)
		}
		return execID, root
	}
	cases := []struct {
		name   string
		chain  func(execID, root string) string
		reason string
	}{
		{"valid link", func(_, root string) string {
			return root + "," + link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
		}, ""},
		{"link from another execution", func(_, _ string) string {
			_, otherRoot := ready()
			return otherRoot + "," + link(t, sup, otherRoot, "planner", []string{"query_vulns"}, pl.jkt, nil)
		}, "delegation_invalid"},
		{"link captured in another execution, spliced under this root", func(_, root string) string {
			_, otherRoot := ready()
			l := link(t, sup, otherRoot, "planner", []string{"query_vulns"}, pl.jkt, nil)
			return root + "," + l
		}, "delegation_invalid"},
		{"spliced under another parent (prev mismatch)", func(_, root string) string {
			return root + "," + link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, func(c *ajwt.DelegationClaims) { c.Prev = ajwt.NewJTI() })
		}, "delegation_invalid"},
		{"issuer is not the parent's subject", func(_, root string) string {
			// The classifier signs a link as if it were the supervisor's delegatee.
			return root + "," + link(t, cls, root, "planner", []string{"query_vulns"}, pl.jkt, func(c *ajwt.DelegationClaims) { c.Issuer = "agent:supervisor" })
		}, "delegation_invalid"},
		{"signed with a key carried in the JWT", func(execID, root string) string {
			k := newKey()
			pub, _ := ajwt.JWKFromPublicKey(k.Public())
			raw, _ := json.Marshal(pub)
			rc := decodeClaims[ajwt.DelegationClaims](t, root)
			jkt, _ := pub.Thumbprint()
			c := ajwt.DelegationClaims{Issuer: "agent:supervisor", Subject: "agent:planner", ExecutionID: execID, Steps: []string{"query_vulns"},
				Prev: rc.JTI, IssuedAt: rc.IssuedAt, Expiry: rc.Expiry, JTI: ajwt.NewJTI(), Cnf: &ajwt.Confirmation{JKT: pl.jkt}}
			tok, _ := ajwt.Sign(ajwt.Header{Typ: ajwt.TypDelegation, Kid: jkt, JWK: raw}, c, k)
			return root + "," + tok
		}, "delegation_invalid"},
		{"signed by a key that is not enrolled", func(execID, root string) string {
			fake := &handle{agentID: "supervisor", key: newKey()}
			fake.jkt, _ = ajwt.Thumbprint(fake.key.Public())
			return root + "," + link(t, fake, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
		}, "delegation_invalid"},
		{"kid of the delegator but signed by another key", func(_, root string) string {
			forger := &handle{agentID: "supervisor", jkt: sup.jkt, key: newKey()}
			return root + "," + link(t, forger, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
		}, "delegation_invalid"},
		{"widened steps", func(_, root string) string {
			return root + "," + link(t, sup, root, "planner", []string{"query_vulns", "merge_pull_request"}, pl.jkt, nil)
		}, "delegation_invalid"},
		{"outlives its parent", func(_, root string) string {
			return root + "," + link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, func(c *ajwt.DelegationClaims) { c.Expiry += 60 })
		}, "delegation_invalid"},
		{"repeated jti", func(_, root string) string {
			rc := decodeClaims[ajwt.DelegationClaims](t, root)
			return root + "," + link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, func(c *ajwt.DelegationClaims) { c.JTI = rc.JTI })
		}, "delegation_invalid"},
		{"leaf cnf.jkt is not the caller's key", func(_, root string) string {
			return root + "," + link(t, sup, root, "planner", []string{"query_vulns"}, cls.jkt, nil)
		}, "delegation_invalid"},
		{"leaf names another agent", func(_, root string) string {
			return root + "," + link(t, sup, root, "classifier", []string{"query_vulns"}, "", nil)
		}, "step_not_delegated"},
		{"depth", func(_, root string) string {
			l1 := link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
			return root + "," + l1 + "," + link(t, pl, l1, "planner", []string{"query_vulns"}, pl.jkt, nil)
		}, "delegation_depth_exceeded"},
		{"root alone for a step of another agent", func(_, root string) string { return root }, "step_not_delegated"},
		{"root forged with an agent key", func(execID, root string) string {
			rc := decodeClaims[ajwt.DelegationClaims](t, root)
			forged, _ := ajwt.Sign(ajwt.Header{Typ: ajwt.TypDelegation, Kid: sup.jkt}, rc, sup.key)
			return forged + "," + link(t, sup, forged, "planner", []string{"query_vulns"}, pl.jkt, nil)
		}, "delegation_invalid"},
		{"garbage link", func(_, root string) string { return root + ",not-a-jwt" }, "delegation_invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			execID, root := ready()
			st, r := w.mint(pl, execID, "query_vulns", resOSV, c.chain(execID, root), nil)
			if c.reason == "" {
				if st != 200 {
					t.Fatalf("valid chain refused: %d %v", st, r)
				}
				return
			}
			if st != 400 || r.code() != "invalid_grant" || r.reason() != c.reason {
				t.Fatalf("got %d %q %q (%v); want 400 invalid_grant %q", st, r.code(), r.reason(), r["error_description"], c.reason)
			}
		})
	}
	t.Run("revoked delegator's links die with it", func(t *testing.T) {
		execID, root := ready()
		l := link(t, sup, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
		w.mustJSON(200, "POST", "/v1/agents/supervisor/instances/"+sup.instanceID+"/revoke", "patchbot", map[string]any{})
		if st, r := w.mint(pl, execID, "query_vulns", resOSV, root+","+l, nil); st != 400 || r.reason() != "delegation_invalid" {
			t.Fatalf("got %d %v", st, r)
		}
	})
}
