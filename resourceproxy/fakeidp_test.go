package resourceproxy_test

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// fakeIDP serves what a proxy reads from an IDP (metadata, JWKS, revocation feed) and
// signs tokens with any claims. The real IDP is used wherever it can issue the token a
// test needs; this one forges what the IDP never issues (a DPoP-bound at+jwt, arbitrary
// claims) and serves the network-free benchmark and fuzz test.
type fakeIDP struct {
	ts  *httptest.Server
	key ed25519.PrivateKey
	kid string

	mu        sync.Mutex
	revs      []map[string]any
	jwksFetch int
}

func newFakeIDP(t testing.TB) *fakeIDP {
	f := &fakeIDP{key: newKey()}
	kid, err := ajwt.Thumbprint(f.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	f.kid = kid
	f.ts = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fakeIDP) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": f.ts.URL})
	case "/.well-known/jwks.json":
		f.mu.Lock()
		f.jwksFetch++
		f.mu.Unlock()
		j, _ := ajwt.JWKFromPublicKey(f.key.Public())
		j.Kid, j.Alg, j.Use = f.kid, ajwt.AlgEdDSA, "sig"
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{j}})
	case "/v1/revocations":
		if u, _, ok := r.BasicAuth(); !ok || u != "proxy" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"seq": len(f.revs), "revocations": f.revs})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// intent returns intent-token claims for agent "patcher" bound to key, permitting ops.
func (f *fakeIDP) intent(key ed25519.PrivateKey, resource, scope string, ops ...ajwt.Operation) *ajwt.IntentClaims {
	jkt, _ := ajwt.Thumbprint(key.Public())
	now := time.Now().Unix()
	return &ajwt.IntentClaims{
		RegisteredClaims: ajwt.RegisteredClaims{Issuer: f.ts.URL, Subject: "agent:patcher", Audience: ajwt.Audience{resource},
			IssuedAt: now, NotBefore: now, Expiry: now + 60, JTI: ajwt.NewJTI()},
		ClientID: "patchbot", Scope: scope, Cnf: &ajwt.Confirmation{JKT: jkt},
		AgentProof: &ajwt.AgentProof{AgentChecksum: "sha256:x", RegistrationID: "r", Version: 1, InstanceID: "inst-1", ShimChecksum: "sha256:y"},
		Intent: &ajwt.Intent{ExecutionID: "exec-1", WorkflowID: "wf", WorkflowVersion: 1, StepID: "commit_changes", Action: "commit_changes",
			User: "alice", DelegationChain: []string{"user:alice", "agent:supervisor", "agent:patcher"}, ChainHash: "sha256:z", Operations: ops},
	}
}

func (f *fakeIDP) sign(t testing.TB, c *ajwt.IntentClaims) string {
	t.Helper()
	tok, err := ajwt.Sign(ajwt.Header{Typ: ajwt.TypIntent, Kid: f.kid}, c, f.key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fakeIDP) jwksFetches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jwksFetch
}
