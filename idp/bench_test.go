package idp_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/idp"
)

// BenchmarkMint measures one agent_checksum mint in-process (client auth, DPoP verify,
// store reads, the write transaction, signing), against the same run's
// client_credentials mint as the baseline.
func BenchmarkMint(b *testing.B) {
	for _, name := range []string{"memory", "sqlite"} {
		var store idp.Store = idp.NewMemoryStore()
		if name == "sqlite" {
			sq, err := idp.OpenSQLite(b.Context(), b.TempDir()+"/bench.db")
			if err != nil {
				b.Fatal(err)
			}
			defer sq.Close()
			store = sq
		}
		w := newWorld(b, store)
		sup := w.enroll("supervisor", w.sums["supervisor"])
		execID, root := w.execution()
		h := w.srv.Handler()
		form := url.Values{"grant_type": {"agent_checksum"}, "agent_id": {"supervisor"}, "agent_checksum": {sup.checksum},
			"execution_id": {execID}, "step_id": {"list_files"}, "resource": {resGitHub}, "delegation_chain": {root}}.Encode()
		serve := func(b *testing.B, body string, proof string, who string) {
			req := httptest.NewRequest("POST", w.url+"/oauth2/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(who, w.secrets[who])
			if proof != "" {
				req.Header.Set("DPoP", proof)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
		b.Run(name+"/agent_checksum", func(b *testing.B) {
			proofs := make([]string, b.N)
			for i := range proofs {
				proofs[i], _ = ajwt.NewDPoPProof(sup.key, "POST", w.url+"/oauth2/token", "", "", time.Now())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				serve(b, form, proofs[i], "patchbot")
			}
		})
		b.Run(name+"/client_credentials", func(b *testing.B) {
			cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"repo:read"}, "resource": {resGitHub}}.Encode()
			b.ReportAllocs()
			for b.Loop() {
				serve(b, cc, "", "patchbot")
			}
		})
	}
}
