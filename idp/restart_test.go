package idp_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/agentic-jwt/patchcrew/idp"
)

// TestRestartKeepsState: restarting the IDP on the same SQLite database keeps clients,
// registrations, executions, signing keys and an intact audit chain.
func TestRestartKeepsState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idp.db")
	st1, err := idp.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, st1)
	sup := w.enroll("supervisor", w.sums["supervisor"])
	execID, root := w.execution()
	st, r := w.mint(sup, execID, "list_files", resGitHub, root, nil)
	if st != 200 {
		t.Fatalf("mint: %d %v", st, r)
	}
	tok := r["access_token"].(string)
	_, jwks1, _ := w.do("GET", "/.well-known/jwks.json", "", "", nil, nil)
	n1, err := idp.VerifyAuditChain(context.Background(), st1)
	if err != nil {
		t.Fatal(err)
	}
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := idp.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if ok, err := idp.HasClients(context.Background(), st2); err != nil || !ok {
		t.Fatalf("clients not kept: %v %v", ok, err)
	}
	w.restart(st2)
	// Same keys: the JWKS is unchanged and the old token still introspects active.
	_, jwks2, _ := w.do("GET", "/.well-known/jwks.json", "", "", nil, nil)
	if len(jwks1["keys"].([]any)) != len(jwks2["keys"].([]any)) || jwks1["keys"].([]any)[0].(map[string]any)["kid"] != jwks2["keys"].([]any)[0].(map[string]any)["kid"] {
		t.Fatalf("keys changed: %v vs %v", jwks1, jwks2)
	}
	if _, r := w.form("proxy", "/oauth2/introspect", url.Values{"token": {tok}}, nil); r["active"] != true {
		t.Fatalf("token inactive after restart: %v", r)
	}
	// Clients (the same secrets), registrations and the execution are still there; the
	// owning instance can go on with its step.
	if st, r, _ := w.do("GET", "/v1/agents/supervisor", "patchbot", "", nil, nil); st != 200 || r["status"] != "active" {
		t.Fatalf("agent after restart: %d %v", st, r)
	}
	if st, r := w.mint(sup, execID, "list_files", resGitHub, root, nil); st != 200 {
		t.Fatalf("mint after restart: %d %v", st, r)
	}
	if st, r := w.complete(sup, execID, "list_files"); st != 200 {
		t.Fatalf("complete after restart: %d %v", st, r)
	}
	n2, err := idp.VerifyAuditChain(context.Background(), st2)
	if err != nil || n2 <= n1 {
		t.Fatalf("audit chain after restart: %d (before %d) %v", n2, n1, err)
	}
}
