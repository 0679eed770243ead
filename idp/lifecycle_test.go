package idp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// TestAgentVersions: a new definition is a new version that supersedes the old one and
// revokes its instances; an identical re-post changes nothing; PATCH changes attributes.
func TestAgentVersions(t *testing.T) {
	w := newWorld(t, nil)
	old := w.enroll("planner", w.sums["planner"])
	// Identical definition: 200, same version.
	r := w.mustJSON(200, "POST", "/v1/agents", "admin", agentDef("planner", "repo:read", "vulns:read"))
	if r["version"] != float64(1) || r["checksum"] != w.sums["planner"] {
		t.Fatalf("identical re-post: %v", r)
	}
	d := agentDef("planner", "repo:read", "vulns:read")
	d["prompt"] = "You are the planner agent, version two.\nWork on {repo}."
	r = w.mustJSON(201, "POST", "/v1/agents", "admin", d)
	if r["version"] != float64(2) || r["checksum"] == w.sums["planner"] {
		t.Fatalf("new version: %v", r)
	}
	// The old instance is revoked: enrolled under v1, it can no longer mint.
	execID, root := w.execution()
	sup := w.enroll("supervisor", w.sums["supervisor"])
	w.mint(sup, execID, "list_files", resGitHub, root, nil)
	w.complete(sup, execID, "list_files")
	l := link(t, sup, root, "planner", []string{"query_vulns"}, old.jkt, nil)
	if st, r := w.mint(old, execID, "query_vulns", resOSV, root+","+l, nil); st != 400 || r.reason() != "instance_unknown" {
		t.Fatalf("old instance: %d %v", st, r)
	}
	// Enrolling with the old checksum is refused; the new one works.
	k := newKey()
	p := "/v1/agents/planner/instances"
	if st, r := w.json("POST", p, "patchbot", map[string]any{"agent_checksum": w.sums["planner"], "shim_checksum": w.shim}, w.proof(k, "POST", p)); st != 400 || r.reason() != "checksum_mismatch" {
		t.Fatalf("old checksum enroll: %d %v", st, r)
	}
	_, ag, _ := w.do("GET", "/v1/agents/planner", "admin", "", nil, nil)
	vs := ag["versions"].([]any)
	if len(vs) != 2 || vs[0].(map[string]any)["status"] != "superseded" || vs[1].(map[string]any)["status"] != "active" {
		t.Fatalf("versions: %v", vs)
	}
	if _, ok := vs[0].(map[string]any)["definition"]; ok {
		t.Fatal("definition returned without include=definition")
	}
	_, ag, _ = w.do("GET", "/v1/agents/planner?include=definition", "admin", "", nil, nil)
	if def := ag["versions"].([]any)[1].(map[string]any)["definition"].(map[string]any); !strings.Contains(def["prompt"].(string), "version two") {
		t.Fatalf("admin definition: %v", def)
	}
	// An app sees only its own agents, never definitions.
	st, list, _ := w.do("GET", "/v1/agents", "otherapp", "", nil, nil)
	if st != 200 || len(list["agents"].([]any)) != 0 {
		t.Fatalf("other app's listing: %d %v", st, list)
	}
	// PATCH max_scopes narrows the next mint.
	w.mustJSON(200, "PATCH", "/v1/agents/supervisor", "admin", map[string]any{"max_scopes": []string{"vulns:read"}})
	execID, root = w.execution()
	if st, r := w.mint(sup, execID, "list_files", resGitHub, root, nil); st != 400 || r.reason() != "scope_exceeds_step" {
		t.Fatalf("after PATCH: %d %v", st, r)
	}
}

// TestKeyRotation: the next key is published before use; after rotation it signs, and
// the retired key stays published so tokens and roots it signed keep verifying.
func TestKeyRotation(t *testing.T) {
	w := newWorld(t, nil)
	sup := w.enroll("supervisor", w.sums["supervisor"])
	execID, root := w.execution()
	_, jwks, _ := w.do("GET", "/.well-known/jwks.json", "", "", nil, nil)
	kids := func(j resp) []string {
		var out []string
		for _, k := range j["keys"].([]any) {
			out = append(out, k.(map[string]any)["kid"].(string))
		}
		return out
	}
	before := kids(jwks)
	if len(before) != 2 {
		t.Fatalf("want active+next published, got %v", before)
	}
	rootKid := decodeHeader(t, root)["kid"]
	var next string
	for _, k := range before {
		if k != rootKid {
			next = k
		}
	}
	r := w.mustJSON(200, "POST", "/v1/keys/rotate", "admin", map[string]any{})
	if r["active_kid"] != next {
		t.Fatalf("rotation activated %v, want the published next key %s", r["active_kid"], next)
	}
	_, jwks, _ = w.do("GET", "/.well-known/jwks.json", "", "", nil, nil)
	after := kids(jwks)
	if len(after) != 3 || !contains(after, rootKid.(string)) || !contains(after, next) {
		t.Fatalf("after rotation: %v", after)
	}
	// The root signed by the retired key still works, and new tokens use the new key.
	st, tr := w.mint(sup, execID, "list_files", resGitHub, root, nil)
	if st != 200 {
		t.Fatalf("mint with a root of the retired key: %d %v", st, tr)
	}
	if kid := decodeHeader(t, tr["access_token"].(string))["kid"]; kid != next {
		t.Fatalf("new token signed by %v, want %s", kid, next)
	}
	// The admin token signed before rotation still authenticates.
	w.mustJSON(201, "POST", "/v1/shims", "admin", map[string]any{"checksum": ajwt.SHA256Digest([]byte("b2")), "note": ""})
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func decodeHeader(t *testing.T, compact string) map[string]any {
	j, err := ajwt.ParseJWS(compact)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range j.Members {
		var x any
		_ = json.Unmarshal(v, &x)
		out[k] = x
	}
	return out
}

// TestFeedsAndAudit: the revocation feed's since/until, the audit listing, head and
// SSE stream.
func TestFeedsAndAudit(t *testing.T) {
	w := newWorld(t, nil)
	// Subscribe to the stream first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", w.url+"/v1/audit/stream", nil)
	req.SetBasicAuth("proxy", w.secrets["proxy"])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v", res.StatusCode, res.Header)
	}
	events := make(chan ajwt.AuditEvent, 100)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev ajwt.AuditEvent
				if json.Unmarshal([]byte(data), &ev) == nil {
					events <- ev
				}
			}
		}
		close(events)
	}()
	sup := w.enroll("supervisor", w.sums["supervisor"])
	execID, root := w.execution()
	st, tr := w.mint(sup, execID, "list_files", resGitHub, root, nil)
	if st != 200 {
		t.Fatal(st, tr)
	}
	jti := decodeClaims[ajwt.IntentClaims](t, tr["access_token"].(string)).JTI
	// The stream carries the mint's allow event with its jti.
	deadline := time.After(5 * time.Second)
	for seen := false; !seen; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream closed")
			}
			seen = ev.JTI == jti && ev.Decision == "allow" && ev.ExecutionID == execID && ev.InstanceID == sup.instanceID
		case <-deadline:
			t.Fatal("mint event not streamed")
		}
	}
	// A refusal is audited as deny with its reason.
	w.mint(sup, execID, "no_such_step", resGitHub, root, nil)
	st, au, _ := w.do("GET", "/v1/audit?since=0", "proxy", "", nil, nil)
	evs := au["events"].([]any)
	last := evs[len(evs)-1].(map[string]any)
	if st != 200 || last["decision"] != "deny" || last["reason"] != "step_unknown" || au["next"] != last["seq"] {
		t.Fatalf("audit listing: %d last=%v next=%v", st, last, au["next"])
	}
	// since skips what was read.
	_, au2, _ := w.do("GET", "/v1/audit?since="+jsonNum(au["next"]), "proxy", "", nil, nil)
	if len(au2["events"].([]any)) != 0 {
		t.Fatalf("since=next returned %v", au2)
	}
	// The head is a JWS over {seq, hash} by the IDP key.
	_, head, _ := w.do("GET", "/v1/audit/head", "proxy", "", nil, nil)
	hc := decodeClaims[map[string]any](t, head["jws"].(string))
	if hc["seq"] != last["seq"] || hc["hash"] != last["hash"] {
		t.Fatalf("head %v vs last %v", hc, last)
	}
	// Revocation feed: a completed step is listed with until; since=N skips older entries.
	w.complete(sup, execID, "list_files")
	_, feed, _ := w.do("GET", "/v1/revocations?since=0", "proxy", "", nil, nil)
	revs := feed["revocations"].([]any)
	r0 := revs[len(revs)-1].(map[string]any)
	if r0["kind"] != "step" || r0["id"] != execID+"/list_files" || r0["until"] == "" || feed["seq"] != r0["seq"] {
		t.Fatalf("feed: %v", feed)
	}
	_, feed2, _ := w.do("GET", "/v1/revocations?since="+jsonNum(feed["seq"]), "proxy", "", nil, nil)
	if len(feed2["revocations"].([]any)) != 0 {
		t.Fatalf("since=latest returned %v", feed2)
	}
	// The audit records the approver of an approval.
	w.mustJSON(200, "POST", "/v1/executions/"+execID+"/steps/read_manifests/approve", "reviewer", map[string]any{})
	_, au3, _ := w.do("GET", "/v1/audit?since="+jsonNum(au["next"]), "proxy", "", nil, nil)
	evs3 := au3["events"].([]any)
	ap := evs3[len(evs3)-1].(map[string]any)
	if ap["client_id"] != "reviewer" || ap["decision"] != "allow" || ap["step_id"] != "read_manifests" {
		t.Fatalf("approval event: %v", ap)
	}
	// Only resource and admin clients read the feeds.
	if st, r, _ := w.do("GET", "/v1/revocations", "patchbot", "", nil, nil); st != 403 || r.reason() != "forbidden" {
		t.Fatalf("app reading feed: %d %v", st, r)
	}
	if st, r := w.form("patchbot", "/oauth2/introspect", url.Values{"token": {"x"}}, nil); st != 403 || r.reason() != "forbidden" {
		t.Fatalf("app introspecting: %d %v", st, r)
	}
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
