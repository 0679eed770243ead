package resourceproxy_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/resourceproxy"
)

const (
	chTokenMissing = `DPoP algs="EdDSA Ed25519 ES256"`
	chToken        = `DPoP algs="EdDSA Ed25519 ES256", error="invalid_token"`
	chDPoP         = `DPoP algs="EdDSA Ed25519 ES256", error="invalid_dpop_proof"`
	chScope        = `DPoP error="insufficient_scope"`
)

var b64 = base64.RawURLEncoding

// TestAllowedGET: an allowed GET reaches the upstream with the proxy's credential and
// neither the agent's token nor its proof; the query and escaped path go on unchanged;
// Location/Link are rewritten to the proxy and Set-Cookie is dropped.
func TestAllowedGET(t *testing.T) {
	e := newEnv(t)
	tk := e.tokens()
	req := agentReq(t, e.proxyURL, "GET", "/github/repos/acme/webapp/git/trees/ma%7Ein?recursive=1", tk.list, tk.sup.key, "", "")
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Cookie", "secret=1")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	r := send(t, req)
	if r.status != 200 || r.raw != `{"ok":true}` {
		t.Fatalf("allowed GET: %d %s", r.status, r.raw)
	}
	got := e.up.last(t)
	if got.RawPath != "/api/repos/acme/webapp/git/trees/ma%7Ein" || got.Query != "recursive=1" || got.Method != "GET" {
		t.Fatalf("upstream request: %+v", got)
	}
	if a := got.Header.Values("Authorization"); len(a) != 1 || a[0] != "token upstream-secret" {
		t.Fatalf("upstream Authorization %q", a)
	}
	for _, h := range []string{"Dpop", "Cookie", "X-Forwarded-For"} {
		if v := got.Header.Get(h); v != "" {
			t.Fatalf("upstream got %s: %q", h, v)
		}
	}
	for k, vs := range got.Header {
		for _, v := range vs {
			if strings.Contains(v, tk.list) {
				t.Fatalf("upstream header %s carries the agent's token", k)
			}
		}
	}
	if got.Header.Get("Accept") != "application/vnd.github+json" || got.Header.Get("X-Request-Id") == "" {
		t.Fatalf("upstream headers: %v", got.Header)
	}
	if r.header.Get("X-Request-Id") != got.Header.Get("X-Request-Id") {
		t.Fatalf("request id not returned: %q vs %q", r.header.Get("X-Request-Id"), got.Header.Get("X-Request-Id"))
	}
	if r.header.Get("Set-Cookie") != "" {
		t.Fatal("Set-Cookie was not dropped")
	}
	if loc := r.header.Get("Location"); loc != e.proxyURL+"/github/repos/acme/webapp/pulls/1" {
		t.Fatalf("Location %q", loc)
	}
	if l := r.header.Get("Link"); l != `<`+e.proxyURL+`/github/repos/acme/webapp/pulls?page=2>; rel="next"` {
		t.Fatalf("Link %q", l)
	}
	// A PUT with the branch member is forwarded byte for byte.
	body := `{"message":"bump","branch":"ajwt/` + tk.execID + `","content":"eA=="}`
	r = send(t, agentReq(t, e.proxyURL, "PUT", "/github/repos/acme/webapp/contents/go.mod", tk.commit, tk.sup.key, "application/json", body))
	if r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.raw)
	}
	if got := e.up.last(t); got.Body != body || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("PUT upstream: %+v", got)
	}
	// The delegated planner reaches OSV (no upstream credential configured).
	r = send(t, agentReq(t, e.proxyURL, "POST", "/osv/v1/querybatch", tk.q, tk.pl.key, "application/json", `{"queries":[]}`))
	if r.status != 200 {
		t.Fatalf("osv POST: %d %s", r.status, r.raw)
	}
	if got := e.up.last(t); got.Path != "/osv/v1/querybatch" || got.Header.Get("Authorization") != "" {
		t.Fatalf("osv upstream: %+v", got)
	}
}

// forge re-signs the claims of tok with hdr and key (nil key: signature given by sig).
func forge(t testing.TB, hdr map[string]any, payload []byte, sign func(input string) []byte) string {
	t.Helper()
	hb, _ := json.Marshal(hdr)
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(payload)
	return input + "." + b64.EncodeToString(sign(input))
}

func payloadOf(t testing.TB, tok string) []byte {
	t.Helper()
	b, err := b64.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kidOf(t testing.TB, tok string) string {
	t.Helper()
	b, _ := b64.DecodeString(strings.Split(tok, ".")[0])
	var h map[string]any
	_ = json.Unmarshal(b, &h)
	return h["kid"].(string)
}

// TestReasons has one row per proxy reason code of DESIGN §5.7 (and the X3/X6/X7
// attacks), each asserting status, WWW-Authenticate and reason.
func TestReasons(t *testing.T) {
	e := newEnv(t)
	tk := e.tokens()
	base := e.proxyURL
	okPath := "/github/repos/acme/webapp/git/trees/main"
	kid := kidOf(t, tk.list)
	payload := payloadOf(t, tk.list)
	jwks := e.jwksRaw()
	attacker := newKey()

	// withTok sends tok with a valid proof by key.
	withTok := func(tok string, key ed25519.PrivateKey) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			return agentReq(t, base, "GET", okPath, tok, key, "", "")
		}
	}
	signed := func(hdr map[string]any) string {
		return forge(t, hdr, payload, func(in string) []byte { return ed25519.Sign(attacker, []byte(in)) })
	}
	noneTok := func(alg string) string {
		return forge(t, map[string]any{"alg": alg, "typ": "ajwt+jwt", "kid": kid}, payload, func(string) []byte { return nil })
	}
	hs256 := forge(t, map[string]any{"alg": "HS256", "typ": "ajwt+jwt", "kid": kid}, payload, func(in string) []byte {
		m := hmac.New(sha256.New, jwks)
		m.Write([]byte(in))
		return m.Sum(nil)
	})
	hs256x := forge(t, map[string]any{"alg": "HS256", "typ": "ajwt+jwt", "kid": kid}, payload, func(in string) []byte {
		m := hmac.New(sha256.New, e.idpPublicKey(kid))
		m.Write([]byte(in))
		return m.Sum(nil)
	})
	baseline := e.baselineToken(ajwt.ResourceGitHub, "repo:read")

	type row struct {
		name      string
		req       func(t *testing.T) *http.Request
		status    int
		challenge string // "-" = no WWW-Authenticate
		reason    ajwt.Reason
	}
	raw := func(method, path string, mut func(r *http.Request)) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := newReq(t, method, base, path, "", "")
			if mut != nil {
				mut(r)
			}
			return r
		}
	}
	pathRow := func(name, path string) row {
		return row{name, func(t *testing.T) *http.Request {
			return agentReq(t, base, "GET", path, tk.list, tk.sup.key, "", "")
		}, 400, "-", ajwt.ReasonPathInvalid}
	}
	rows := []row{
		pathRow("path %2F", "/github/repos/acme%2Fother/git/trees/main"),
		pathRow("path %2f lower", "/github/repos/acme/webapp%2fx/git/trees/main"),
		pathRow("path %2E%2E", "/github/repos/acme/webapp/git/trees/%2E%2E"),
		pathRow("path //", "/github/repos/acme/webapp//git/trees/main"),
		pathRow("path backslash", "/github/repos/acme/webapp/git/trees/a%5Cb"),
		pathRow("path %00", "/github/repos/acme/webapp/git/trees/a%00"),
		pathRow("path trailing slash", "/github/repos/acme/webapp/"),
		{"two Authorization headers", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Add("Authorization", "DPoP "+tk.list)
			return r
		}, 400, "-", ajwt.ReasonInvalidRequest},
		{"Bearer plus DPoP", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Set("Authorization", "Bearer "+tk.list)
			return r
		}, 400, "-", ajwt.ReasonInvalidRequest},
		{"no credentials", raw("GET", okPath, nil), 401, chTokenMissing, ajwt.ReasonTokenMissing},
		{"Basic scheme", raw("GET", okPath, func(r *http.Request) { r.SetBasicAuth("a", "b") }), 401, chTokenMissing, ajwt.ReasonTokenMissing},
		{"baseline token as Bearer (no credentials for DPoP)", raw("GET", okPath, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+baseline) }), 401, chTokenMissing, ajwt.ReasonTokenMissing},
		{"scheme case-insensitive", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", "/github/repos/acme/webapp", tk.list, tk.sup.key, "", "")
			r.Header.Set("Authorization", "dpop "+tk.list)
			return r
		}, 200, "-", ""},
		{"alg none", withTok(noneTok("none"), tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"alg None", withTok(noneTok("None"), tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"alg NONE", withTok(noneTok("NONE"), tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"alg nOnE", withTok(noneTok("nOnE"), tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"HS256 keyed with the JWKS", withTok(hs256, tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"HS256 keyed with the public key", withTok(hs256x, tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"unknown kid", withTok(signed(map[string]any{"alg": "EdDSA", "typ": "ajwt+jwt", "kid": "attacker-kid"}), tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"right kid, wrong key", withTok(signed(map[string]any{"alg": "EdDSA", "typ": "ajwt+jwt", "kid": kid}), tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"embedded jwk", withTok(signed(map[string]any{"alg": "EdDSA", "typ": "ajwt+jwt", "kid": kid, "jwk": map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(attacker.Public().(ed25519.PublicKey))}}), tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"jku header", withTok(signed(map[string]any{"alg": "EdDSA", "typ": "ajwt+jwt", "kid": kid, "jku": "http://evil/jwks"}), tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"crit header", withTok(signed(map[string]any{"alg": "EdDSA", "typ": "ajwt+jwt", "kid": kid, "crit": []string{"exp"}}), tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"truncated signature", withTok(tk.list[:len(tk.list)-4], tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"oversized token", withTok(strings.Repeat("a", 9000)+".b.c", tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"baseline at+jwt with DPoP scheme", withTok(baseline, tk.sup.key), 401, chToken, ajwt.ReasonTokenInvalid},
		{"audience mismatch", func(t *testing.T) *http.Request {
			return agentReq(t, base, "GET", "/osv/v1/vulns/GHSA-1", tk.list, tk.sup.key, "", "")
		}, 401, chToken, ajwt.ReasonAudienceMismatch},
		{"dpop missing", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Del("DPoP")
			return r
		}, 401, chDPoP, ajwt.ReasonDPoPMissing},
		{"dpop garbage", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Set("DPoP", "not.a.jwt")
			return r
		}, 401, chDPoP, ajwt.ReasonDPoPInvalid},
		{"two dpop headers", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Add("DPoP", r.Header.Get("DPoP"))
			return r
		}, 401, chDPoP, ajwt.ReasonDPoPInvalid},
		{"proof for another method", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Set("DPoP", proof(t, tk.sup.key, "POST", base+okPath, tk.list, time.Now()))
			return r
		}, 401, chDPoP, ajwt.ReasonDPoPHTMMismatch},
		{"proof for another URL", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Set("DPoP", proof(t, tk.sup.key, "GET", base+"/github/repos/acme/webapp", tk.list, time.Now()))
			return r
		}, 401, chDPoP, ajwt.ReasonDPoPHTUMismatch},
		{"stale proof iat", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Set("DPoP", proof(t, tk.sup.key, "GET", base+okPath, tk.list, time.Now().Add(-2*time.Minute)))
			return r
		}, 401, chDPoP, ajwt.ReasonDPoPStale},
		{"future proof iat", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Set("DPoP", proof(t, tk.sup.key, "GET", base+okPath, tk.list, time.Now().Add(time.Minute)))
			return r
		}, 401, chDPoP, ajwt.ReasonDPoPStale},
		{"wrong ath", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
			r.Header.Set("DPoP", proof(t, tk.sup.key, "GET", base+okPath, tk.commit, time.Now()))
			return r
		}, 401, chDPoP, ajwt.ReasonDPoPATHMismatch},
		{"proof by another agent's key", withTok(tk.list, tk.pl.key), 401, chDPoP, ajwt.ReasonDPoPKeyMismatch},
		{"proof by a fresh key", withTok(tk.list, attacker), 401, chDPoP, ajwt.ReasonDPoPKeyMismatch},
		{"other repository", func(t *testing.T) *http.Request {
			return agentReq(t, base, "GET", "/github/repos/acme/infra/git/trees/main", tk.list, tk.sup.key, "", "")
		}, 403, chScope, ajwt.ReasonOperationNotPermitted},
		{"write with a read token", func(t *testing.T) *http.Request {
			return agentReq(t, base, "PUT", "/github/repos/acme/webapp/contents/go.mod", tk.list, tk.sup.key, "application/json", `{"branch":"ajwt/`+tk.execID+`"}`)
		}, 403, chScope, ajwt.ReasonOperationNotPermitted},
		{"another step's operation", func(t *testing.T) *http.Request {
			return agentReq(t, base, "GET", okPath, tk.commit, tk.sup.key, "", "")
		}, 403, chScope, ajwt.ReasonOperationNotPermitted},
		{"merge (no such operation)", func(t *testing.T) *http.Request {
			return agentReq(t, base, "PUT", "/github/repos/acme/webapp/pulls/1/merge", tk.commit, tk.sup.key, "application/json", `{}`)
		}, 403, chScope, ajwt.ReasonOperationNotPermitted},
		{"two Content-Type headers", func(t *testing.T) *http.Request {
			r := agentReq(t, base, "PUT", "/github/repos/acme/webapp/contents/go.mod", tk.commit, tk.sup.key, "application/json", `{"branch":"ajwt/`+tk.execID+`"}`)
			r.Header.Add("Content-Type", "text/plain")
			return r
		}, 400, "-", ajwt.ReasonInvalidRequest},
		{"body too large", func(t *testing.T) *http.Request {
			return agentReq(t, base, "PUT", "/github/repos/acme/webapp/contents/go.mod", tk.commit, tk.sup.key, "application/json", `{"branch":"`+strings.Repeat("a", 2<<20)+`"}`)
		}, 413, "-", ajwt.ReasonBodyTooLarge},
		{"unknown resource", func(t *testing.T) *http.Request {
			return agentReq(t, base, "GET", "/gitlab/repos/acme/webapp", tk.list, tk.sup.key, "", "")
		}, 404, "-", ajwt.ReasonNotFound},
	}
	for _, c := range rows {
		t.Run(c.name, func(t *testing.T) {
			r := send(t, c.req(t))
			if r.status != c.status || r.body.reason() != string(c.reason) {
				t.Fatalf("got %d %q, want %d %q: %s", r.status, r.body.reason(), c.status, c.reason, r.raw)
			}
			ch := r.header.Get("WWW-Authenticate")
			if c.challenge == "-" && ch != "" || c.challenge != "-" && ch != c.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", ch, c.challenge)
			}
			if c.status >= 400 {
				if want := challengeError(c.challenge); want != "" && r.body["error"] != want {
					t.Fatalf("body error %v, want %q", r.body["error"], want)
				}
			}
		})
	}

	t.Run("replayed proof", func(t *testing.T) {
		req := agentReq(t, base, "GET", okPath, tk.list, tk.sup.key, "", "")
		if r := send(t, req); r.status != 200 {
			t.Fatalf("first use: %d %s", r.status, r.raw)
		}
		again := newReq(t, "GET", base, okPath, "", "")
		again.Header = req.Header.Clone()
		r := send(t, again)
		if r.status != 401 || r.body.reason() != string(ajwt.ReasonDPoPReplay) || r.header.Get("WWW-Authenticate") != chDPoP {
			t.Fatalf("replay: %d %v %q", r.status, r.body, r.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("token_expired", func(t *testing.T) {
		skew := 3 * time.Minute
		_, futureURL := e.newProxy(func(c *resourceproxy.Config) { c.Now = func() time.Time { return time.Now().Add(skew) } })
		req := newReq(t, "GET", futureURL, okPath, "", "")
		req.Header.Set("Authorization", "DPoP "+tk.list)
		req.Header.Set("DPoP", proof(t, tk.sup.key, "GET", futureURL+okPath, tk.list, time.Now().Add(skew)))
		r := send(t, req)
		if r.status != 401 || r.body.reason() != string(ajwt.ReasonTokenExpired) || r.header.Get("WWW-Authenticate") != chToken {
			t.Fatalf("expired: %d %v", r.status, r.body)
		}
	})
	t.Run("upstream_error", func(t *testing.T) {
		_, badURL := e.newProxy(func(c *resourceproxy.Config) {
			c.Upstreams[ajwt.ResourceGitHub] = resourceproxy.Upstream{URL: "http://127.0.0.1:1"}
		})
		r := send(t, agentReq(t, badURL, "GET", okPath, tk.list, tk.sup.key, "", ""))
		if r.status != 502 || r.body.reason() != string(ajwt.ReasonUpstreamError) {
			t.Fatalf("upstream down: %d %v", r.status, r.body)
		}
	})
	// Every decision above was audited in one verifiable chain.
	evs := auditEvents(t, base, e.admin)
	if len(evs) < len(rows) {
		t.Fatalf("audit has %d events for %d rows", len(evs), len(rows))
	}
	if i, err := ajwt.VerifyChain(evs, 0, ""); err != nil {
		t.Fatalf("audit chain broken at %d: %v", i, err)
	}
}

func challengeError(ch string) string {
	_, after, ok := strings.Cut(ch, `error="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, `"`)
	return v
}

func (e *env) jwksRaw() []byte {
	e.t.Helper()
	res, err := http.Get(e.idpURL + "/.well-known/jwks.json")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String())
}

// idpPublicKey is the raw public key bytes of kid (what an HS256 confusion attack
// would use as the HMAC secret).
func (e *env) idpPublicKey(kid string) []byte {
	pub, ok := e.idpSrv.PublicKey(kid)
	if !ok {
		e.t.Fatalf("no key %s", kid)
	}
	return pub.(ed25519.PublicKey)
}

func auditEvents(t testing.TB, base, admin string) []ajwt.AuditEvent {
	t.Helper()
	var all []ajwt.AuditEvent
	since := int64(0)
	for {
		req, _ := http.NewRequest("GET", base+"/v1/audit?since="+itoa(since), nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Events []ajwt.AuditEvent `json:"events"`
			Next   int64             `json:"next"`
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			return all
		}
		all = append(all, page.Events...)
		since = page.Next
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestJSONOperations: an operation with a `json` member (commit_changes' PUT with
// {"branch": "{branch}"}, registered at the real IDP) is matched against the strictly
// decoded body, and the exact checked bytes are forwarded.
func TestJSONOperations(t *testing.T) {
	e := newEnv(t)
	tk := e.tokens()
	up, base, tok, key := e.up, e.proxyURL, tk.commit, tk.sup.key
	branch := "ajwt/" + tk.execID
	if op := decodeClaims[ajwt.IntentClaims](t, tok).Intent.Operations[1]; op.JSON["branch"] != branch {
		t.Fatalf("the token's PUT operation is %+v", op)
	}
	path := "/github/repos/acme/webapp/contents/go.mod"
	good := "{\"message\":\"bump\", \"branch\" : \"" + branch + "\",\"content\":\"eA==\"}\n"
	if r := send(t, agentReq(t, base, "PUT", path, tok, key, "application/json; charset=utf-8", good)); r.status != 200 {
		t.Fatalf("PUT with branch: %d %s", r.status, r.raw)
	}
	if got := up.last(t); got.Body != good || got.Header.Get("Content-Type") != "application/json; charset=utf-8" || !strings.HasSuffix(got.RawPath, "/repos/acme/webapp/contents/go.mod") {
		t.Fatalf("upstream got %+v", got)
	}
	for _, c := range []struct {
		name, ctype, body string
		status            int
		reason            ajwt.Reason
	}{
		{"no branch", "application/json", `{"message":"x"}`, 403, ajwt.ReasonOperationNotPermitted},
		{"branch main", "application/json", `{"branch":"main"}`, 403, ajwt.ReasonOperationNotPermitted},
		{"branch not a string", "application/json", `{"branch":["` + branch + `"]}`, 403, ajwt.ReasonOperationNotPermitted},
		{"case-folded twin", "application/json", `{"branch":"` + branch + `","Branch":"main"}`, 403, ajwt.ReasonOperationNotPermitted},
		{"not JSON content type", "text/plain", `{"branch":"` + branch + `"}`, 403, ajwt.ReasonOperationNotPermitted},
		{"no body", "application/json", ``, 400, ajwt.ReasonInvalidRequest},
		{"duplicate members", "application/json", `{"branch":"` + branch + `","branch":"main"}`, 400, ajwt.ReasonInvalidRequest},
		{"nested duplicate members", "application/json", `{"branch":"` + branch + `","x":{"a":1,"a":2}}`, 400, ajwt.ReasonInvalidRequest},
		{"trailing data", "application/json", `{"branch":"` + branch + `"} {}`, 400, ajwt.ReasonInvalidRequest},
		{"invalid UTF-8", "application/json", "{\"branch\":\"ajwt/exec-1\",\"m\":\"\xff\"}", 400, ajwt.ReasonInvalidRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := up.count()
			r := send(t, agentReq(t, base, "PUT", path, tok, key, c.ctype, c.body))
			if r.status != c.status || r.body.reason() != string(c.reason) {
				t.Fatalf("got %d %q, want %d %q: %s", r.status, r.body.reason(), c.status, c.reason, r.raw)
			}
			if c.status == 403 && r.header.Get("WWW-Authenticate") != chScope {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
			if up.count() != n {
				t.Fatal("a refused request reached the upstream")
			}
		})
	}
}
