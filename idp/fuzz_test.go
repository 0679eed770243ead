package idp_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenEndpoint sends arbitrary form bodies (and DPoP header values) to the token
// endpoint: every answer must be a JSON error or a token, never a panic or a 5xx.
func FuzzTokenEndpoint(f *testing.F) {
	w := newWorld(f, nil)
	sup := w.enroll("supervisor", w.sums["supervisor"])
	execID, root := w.execution()
	h := w.srv.Handler()
	f.Add("grant_type=agent_checksum&agent_id=supervisor&agent_checksum="+sup.checksum+"&execution_id="+execID+"&step_id=list_files&resource=urn%3Aajwt%3Aresource%3Agithub&delegation_chain="+root, w.proof(sup.key, "POST", "/oauth2/token").Get("DPoP"))
	f.Add("grant_type=client_credentials&scope=repo%3Aread&resource=urn%3Aajwt%3Aresource%3Agithub", "")
	f.Add("grant_type=agent_checksum&grant_type=x", "e30.e30.")
	f.Add("%zz=1&;", "a.b.c")
	f.Fuzz(func(t *testing.T, body, dpop string) {
		req := httptest.NewRequest("POST", w.url+"/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("patchbot", w.secrets["patchbot"])
		if dpop != "" {
			req.Header.Set("DPoP", dpop)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !strings.HasPrefix(rec.Body.String(), "{") {
			t.Fatalf("non-JSON answer %q", rec.Body)
		}
	})
}

// FuzzDelegationChain mints with an arbitrary delegation_chain: only the valid chain may
// succeed, nothing may panic or answer 5xx.
func FuzzDelegationChain(f *testing.F) {
	w := newWorld(f, nil)
	sup := w.enroll("supervisor", w.sums["supervisor"])
	pl := w.enroll("planner", w.sums["planner"])
	execID, root := w.execution()
	if st, r := w.mint(sup, execID, "list_files", resGitHub, root, nil); st != 200 {
		f.Fatalf("setup: %d %v", st, r)
	}
	w.complete(sup, execID, "list_files")
	valid := root + "," + link(f, sup, root, "planner", []string{"query_vulns"}, pl.jkt, nil)
	if st, r := w.mint(pl, execID, "query_vulns", resOSV, valid, nil); st != 200 {
		f.Fatalf("the valid chain is refused: %d %v", st, r)
	}
	f.Add(valid)
	f.Add(root)
	f.Add(root + "," + root)
	f.Add(",,,")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	h := w.srv.Handler()
	f.Fuzz(func(t *testing.T, chain string) {
		body := "grant_type=agent_checksum&agent_id=planner&agent_checksum=" + pl.checksum + "&execution_id=" + execID +
			"&step_id=query_vulns&resource=urn%3Aajwt%3Aresource%3Aosv&delegation_chain=" + urlEscape(chain)
		req := httptest.NewRequest("POST", w.url+"/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("patchbot", w.secrets["patchbot"])
		req.Header.Set("DPoP", w.proof(pl.key, "POST", "/oauth2/token").Get("DPoP"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Code == 200 && chain != valid {
			t.Fatalf("a chain other than the valid one was accepted: %q", chain)
		}
	})
}
