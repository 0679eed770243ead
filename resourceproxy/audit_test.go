package resourceproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// TestAuditMetricsHealth: each decision is one audit event (source proxy, reason,
// latency, the token's identifiers) in a hash chain readable by listing and by SSE;
// /metrics counts decisions by reason; /healthz answers.
func TestAuditMetricsHealth(t *testing.T) {
	e := newEnv(t)
	tk := e.tokens()
	base := e.proxyURL

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The audit is not public: a request without an admin token is refused.
	if res, err := http.Get(base + "/v1/audit"); err != nil || res.StatusCode != 401 {
		t.Fatalf("anonymous audit read: %v %v", err, res)
	}
	sreq, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/audit/stream", nil)
	sreq.Header.Set("Authorization", "Bearer "+e.admin)
	sres, err := http.DefaultClient.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	defer sres.Body.Close()
	if ct := sres.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}

	if r := send(t, agentReq(t, base, "GET", "/github/repos/acme/webapp", tk.list, tk.sup.key, "", "")); r.status != 200 {
		t.Fatalf("allow: %d", r.status)
	}
	if r := send(t, newReq(t, "GET", base, "/github/repos/acme/webapp", "", "")); r.status != 401 {
		t.Fatalf("deny: %d", r.status)
	}
	evs := auditEvents(t, base, e.admin)
	if len(evs) != 2 {
		t.Fatalf("%d events: %+v", len(evs), evs)
	}
	if i, err := ajwt.VerifyChain(evs, 0, ""); err != nil {
		t.Fatalf("chain broken at %d: %v", i, err)
	}
	a, d := evs[0], evs[1]
	c := decodeClaims[ajwt.IntentClaims](t, tk.list)
	if a.Seq != 1 || a.PrevHash != "" || a.Source != "proxy" || a.Decision != "allow" || a.Reason != "" || a.AgentID != "supervisor" ||
		a.InstanceID != tk.sup.instanceID || a.ExecutionID != tk.execID || a.StepID != "list_files" || a.JTI != c.JTI ||
		a.Method != "GET" || a.Path != "/github/repos/acme/webapp" || a.LatencyUS <= 0 || a.ClientID != "patchbot" || a.ChainHash != c.Intent.ChainHash || a.ChainHash == "" {
		t.Fatalf("allow event %+v", a)
	}
	if d.Decision != "deny" || d.Reason != ajwt.ReasonTokenMissing || d.PrevHash != a.Hash {
		t.Fatalf("deny event %+v", d)
	}
	// The listing pages by seq.
	preq, _ := http.NewRequest("GET", base+"/v1/audit?since=1", nil)
	preq.Header.Set("Authorization", "Bearer "+e.admin)
	res, err := http.DefaultClient.Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Events []ajwt.AuditEvent `json:"events"`
		Next   int64             `json:"next"`
	}
	_ = json.NewDecoder(res.Body).Decode(&page)
	res.Body.Close()
	if len(page.Events) != 1 || page.Next != 2 {
		t.Fatalf("since=1: %+v", page)
	}

	// SSE: the two events arrive in order.
	sc := bufio.NewScanner(sres.Body)
	var got []ajwt.AuditEvent
	for len(got) < 2 && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var ev ajwt.AuditEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
		}
	}
	if len(got) != 2 || got[0].Hash != a.Hash || got[1].Hash != d.Hash {
		t.Fatalf("stream: %+v", got)
	}

	res, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`ajwt_proxy_decisions_total{decision="allow",reason=""} 1`,
		`ajwt_proxy_decisions_total{decision="deny",reason="token_missing"} 1`,
		`ajwt_proxy_added_latency_seconds_count 2`,
		`ajwt_proxy_replay_cache_entries 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %q:\n%s", want, body)
		}
	}
	res, err = http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz %d", res.StatusCode)
	}
}
