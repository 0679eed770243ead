package ajwt

import (
	"encoding/json"
	"testing"
)

// TestAuditHashIsJCSWithoutHash: the hash is computed over the JCS form of the event
// without its hash member, exactly as DESIGN §5.7 says, checked against an independent
// computation through a generic map.
func TestAuditHashIsJCSWithoutHash(t *testing.T) {
	e := AuditEvent{Seq: 2, Time: "2026-12-03T20:00:00Z", Source: SourceIDP, Decision: DecisionDeny, Reason: ReasonStepUnknown,
		AgentID: "planner", Method: "POST", Path: "/oauth2/token", LatencyUS: 42, PrevHash: "sha256:00", Hash: "ignored"}
	raw, _ := json.Marshal(e)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	delete(m, "hash")
	body, _ := json.Marshal(m)
	canon, err := jcsTransform(body)
	if err != nil {
		t.Fatal(err)
	}
	want := SHA256Digest(append([]byte(e.PrevHash+"\n"), canon...))
	got, err := e.ComputeHash()
	if err != nil || got != want {
		t.Fatalf("ComputeHash = %s, %v; want %s", got, err, want)
	}
	// A chain of two verifies; an edit is found at its index.
	a := AuditEvent{Seq: 1, Source: SourceIDP, Decision: DecisionAllow}
	a.Hash, _ = a.ComputeHash()
	b := AuditEvent{Seq: 2, Source: SourceIDP, Decision: DecisionDeny, PrevHash: a.Hash}
	b.Hash, _ = b.ComputeHash()
	if i, err := VerifyChain([]AuditEvent{a, b}, 0, ""); i != -1 || err != nil {
		t.Fatalf("valid chain: %d %v", i, err)
	}
	b.Decision = DecisionAllow
	if i, err := VerifyChain([]AuditEvent{a, b}, 0, ""); i != 1 || err == nil {
		t.Fatalf("edited event not found: %d %v", i, err)
	}
}
