package ajwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

var (
	testNow   = time.Unix(1763800000, 0)
	testToken = "eyJhbGciOiJFZERTQSIsInR5cCI6ImFqd3Qrand0In0.eyJzdWIiOiJhZ2VudDpwbGFubmVyIn0.c2ln"
)

const testHTU = "https://proxy.example:8443/github/repos/acme/webapp/contents/go.mod"

type testKey struct {
	name   string
	signer crypto.Signer
	alg    string
}

func testEd25519Key(seed byte) crypto.Signer {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

func testP256Key(tb testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// testP256KeyFixed is a fixed P-256 key, the same in every process (fuzz workers re-run
// the fuzz target's setup and must know the key the seeds were signed with).
func testP256KeyFixed(tb testing.TB, seed string) crypto.Signer {
	d := sha256.Sum256([]byte(seed))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func testKeys(tb testing.TB) []testKey {
	return []testKey{
		{"Ed25519", testEd25519Key(1), AlgEdDSA},
		{"P-256", testP256KeyFixed(tb, "ajwt test key 1"), AlgES256},
	}
}

func jwkMap(tb testing.TB, pub crypto.PublicKey) map[string]any {
	j, err := JWKFromPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	raw, _ := json.Marshal(j)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustThumbprint(tb testing.TB, pub crypto.PublicKey) string {
	jkt, err := Thumbprint(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return jkt
}

// thumb is Thumbprint for keys known to be supported.
func thumb(pub crypto.PublicKey) string {
	jkt, err := Thumbprint(pub)
	if err != nil {
		panic(err)
	}
	return jkt
}

// rawSign makes the signature a key of that type makes over input (EdDSA, or ES256 as
// the 64-byte r||s of RFC 7518 §3.4).
func rawSign(tb testing.TB, key crypto.Signer, input string) []byte {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, []byte(input))
	case *ecdsa.PrivateKey:
		h := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			tb.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
	tb.Fatalf("unsupported key %T", key)
	return nil
}

// forgeRaw assembles a compact JWS from raw header and payload JSON and a signature.
func forgeRaw(header, payload string, sig []byte) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(sig)
}

func marshalMap(tb testing.TB, m map[string]any) string {
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// dpopCase is one forged proof: the defaults build a valid proof for a GET of testHTU
// bound to testToken and signed by the row's key; each field changes one thing.
type dpopCase struct {
	name     string
	values   func(proof string) []string       // the DPoP header values sent
	header   func(h map[string]any, k testKey) // edits the protected header
	claims   func(c map[string]any)            // edits the payload
	sign     func(tb testing.TB, k testKey, input string) []byte
	check    func(c *DPoPCheck, k testKey)
	verifier func(v *DPoPVerifier)
	reason   Reason // "" = accepted
	status   int
	code     string
}

func (dc dpopCase) build(tb testing.TB, k testKey) string {
	h := map[string]any{"typ": TypDPoP, "alg": k.alg, "jwk": jwkMap(tb, k.signer.Public())}
	c := map[string]any{"jti": NewJTI(), "htm": "GET", "htu": testHTU, "iat": testNow.Unix(), "ath": ATH(testToken)}
	if dc.header != nil {
		dc.header(h, k)
	}
	if dc.claims != nil {
		dc.claims(c)
	}
	input := b64.EncodeToString([]byte(marshalMap(tb, h))) + "." + b64.EncodeToString([]byte(marshalMap(tb, c)))
	var sig []byte
	if dc.sign != nil {
		sig = dc.sign(tb, k, input)
	} else {
		sig = rawSign(tb, k.signer, input)
	}
	return input + "." + b64.EncodeToString(sig)
}

var errKeyCheck = NewError(http.StatusBadRequest, CodeInvalidGrant, ReasonInstanceUnknown, "no live instance has this key")

func dpopCases() []dpopCase {
	invalid := func(name string) dpopCase {
		return dpopCase{name: name, reason: ReasonDPoPInvalid, status: 401, code: CodeInvalidDPoPProof}
	}
	with := func(dc dpopCase, f func(*dpopCase)) dpopCase { f(&dc); return dc }
	stale := func(name string, iat func() any) dpopCase {
		return dpopCase{name: name, claims: func(c map[string]any) { c["iat"] = iat() }, reason: ReasonDPoPStale, status: 401, code: CodeInvalidDPoPProof}
	}
	htu := func(name, htu string) dpopCase {
		return dpopCase{name: name, claims: func(c map[string]any) { c["htu"] = htu }, reason: ReasonDPoPHTUMismatch, status: 401, code: CodeInvalidDPoPProof}
	}
	accepted := func(name string) dpopCase { return dpopCase{name: name} }
	hmacSign := func(tb testing.TB, k testKey, input string) []byte {
		m := hmac.New(sha256.New, []byte("shared-secret"))
		m.Write([]byte(input))
		return m.Sum(nil)
	}
	noSig := func(testing.TB, testKey, string) []byte { return nil }

	return []dpopCase{
		accepted("valid"),

		// 1. exactly one DPoP header
		{name: "missing header", values: func(string) []string { return nil }, reason: ReasonDPoPMissing, status: 401, code: CodeInvalidDPoPProof},
		with(invalid("two headers"), func(dc *dpopCase) { dc.values = func(p string) []string { return []string{p, p} } }),
		// 2. a JWT of at most 8 KiB
		with(invalid("empty value"), func(dc *dpopCase) { dc.values = func(string) []string { return []string{""} } }),
		with(invalid("oversize"), func(dc *dpopCase) {
			dc.claims = func(c map[string]any) { c["pad"] = strings.Repeat("a", MaxJWTBytes) }
		}),
		with(invalid("not a JWT"), func(dc *dpopCase) { dc.values = func(string) []string { return []string{"not-a-jwt"} } }),
		with(invalid("two parts"), func(dc *dpopCase) {
			dc.values = func(p string) []string { return []string{p[:strings.LastIndexByte(p, '.')]} }
		}),
		with(invalid("four parts"), func(dc *dpopCase) { dc.values = func(p string) []string { return []string{p + ".e30"} } }),
		with(invalid("padded base64"), func(dc *dpopCase) { dc.values = func(p string) []string { return []string{p + "=="} } }),
		with(invalid("bearer prefix"), func(dc *dpopCase) { dc.values = func(p string) []string { return []string{"DPoP " + p} } }),
		with(invalid("duplicate header member"), func(dc *dpopCase) {
			dc.values = func(string) []string {
				return []string{forgeRaw(`{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"EdDSA"}`, `{}`, []byte("x"))}
			}
		}),
		with(invalid("crit header"), func(dc *dpopCase) { dc.header = func(h map[string]any, _ testKey) { h["crit"] = []string{"exp"} } }),
		// 3. typ
		with(invalid("typ JWT"), func(dc *dpopCase) { dc.header = func(h map[string]any, _ testKey) { h["typ"] = "JWT" } }),
		with(invalid("typ missing"), func(dc *dpopCase) { dc.header = func(h map[string]any, _ testKey) { delete(h, "typ") } }),
		with(invalid("typ at+jwt"), func(dc *dpopCase) { dc.header = func(h map[string]any, _ testKey) { h["typ"] = TypAccess } }),
		with(accepted("typ with application/ prefix, upper case"), func(dc *dpopCase) {
			dc.header = func(h map[string]any, _ testKey) { h["typ"] = "application/DPoP+JWT" }
		}),
		// 4. alg
		with(invalid("alg none"), func(dc *dpopCase) {
			dc.header = func(h map[string]any, _ testKey) { h["alg"] = "none" }
			dc.sign = noSig
		}),
		with(invalid("alg NONE"), func(dc *dpopCase) {
			dc.header = func(h map[string]any, _ testKey) { h["alg"] = "NONE" }
			dc.sign = noSig
		}),
		with(invalid("alg HS256"), func(dc *dpopCase) {
			dc.header = func(h map[string]any, _ testKey) { h["alg"] = "HS256" }
			dc.sign = hmacSign
		}),
		with(invalid("alg eddsa lower case"), func(dc *dpopCase) { dc.header = func(h map[string]any, _ testKey) { h["alg"] = "eddsa" } }),
		with(invalid("alg ES384"), func(dc *dpopCase) { dc.header = func(h map[string]any, _ testKey) { h["alg"] = "ES384" } }),
		with(invalid("alg missing"), func(dc *dpopCase) { dc.header = func(h map[string]any, _ testKey) { delete(h, "alg") } }),
		with(invalid("alg of the other key type"), func(dc *dpopCase) {
			// ES256 with an Ed25519 jwk, EdDSA with a P-256 jwk
			dc.header = func(h map[string]any, k testKey) {
				if k.alg == AlgEdDSA {
					h["alg"] = AlgES256
				} else {
					h["alg"] = AlgEdDSA
				}
			}
		}),
		// 5. jwk public members only
		with(invalid("jwk missing"), func(dc *dpopCase) { dc.header = func(h map[string]any, _ testKey) { delete(h, "jwk") } }),
		with(invalid("jwk null"), func(dc *dpopCase) { dc.header = func(h map[string]any, _ testKey) { h["jwk"] = nil } }),
		with(invalid("jwk with private d"), func(dc *dpopCase) {
			dc.header = func(h map[string]any, k testKey) {
				var d []byte
				switch p := k.signer.(type) {
				case ed25519.PrivateKey:
					d = p.Seed()
				case *ecdsa.PrivateKey:
					d, _ = p.Bytes()
				}
				h["jwk"].(map[string]any)["d"] = b64.EncodeToString(d)
			}
		}),
		with(invalid("jwk symmetric k"), func(dc *dpopCase) {
			dc.header = func(h map[string]any, _ testKey) { h["jwk"].(map[string]any)["k"] = "c2VjcmV0" }
		}),
		with(invalid("jwk unknown kty"), func(dc *dpopCase) {
			dc.header = func(h map[string]any, _ testKey) { h["jwk"].(map[string]any)["kty"] = "RSA" }
		}),
		with(invalid("jwk x with non-zero padding bits"), func(dc *dpopCase) {
			dc.header = func(h map[string]any, _ testKey) {
				j := h["jwk"].(map[string]any)
				x := j["x"].(string)
				last := strings.IndexByte(b64Alphabet, x[len(x)-1])
				j["x"] = x[:len(x)-1] + string(b64Alphabet[last^1])
			}
		}),
		// 6. signature
		with(invalid("bad signature"), func(dc *dpopCase) {
			dc.sign = func(tb testing.TB, k testKey, input string) []byte {
				s := rawSign(tb, k.signer, input)
				s[len(s)/2] ^= 0x01
				return s
			}
		}),
		with(invalid("signed by another key"), func(dc *dpopCase) {
			dc.sign = func(tb testing.TB, k testKey, input string) []byte {
				if k.alg == AlgEdDSA {
					return rawSign(tb, testEd25519Key(9), input)
				}
				return rawSign(tb, testP256Key(tb), input)
			}
		}),
		with(invalid("empty signature"), func(dc *dpopCase) { dc.sign = noSig }),
		// 7. key binding
		{name: "ath mismatch", claims: func(c map[string]any) { c["ath"] = ATH(testToken + "x") }, reason: ReasonDPoPATHMismatch, status: 401, code: CodeInvalidDPoPProof},
		{name: "ath missing", claims: func(c map[string]any) { delete(c, "ath") }, reason: ReasonDPoPATHMismatch, status: 401, code: CodeInvalidDPoPProof},
		{name: "jkt mismatch", check: func(c *DPoPCheck, _ testKey) { c.ExpectedJKT = thumb(testEd25519Key(9).Public()) },
			reason: ReasonDPoPKeyMismatch, status: 401, code: CodeInvalidDPoPProof},
		{name: "KeyCheck error passes through", check: func(c *DPoPCheck, _ testKey) {
			c.KeyCheck = func(string, crypto.PublicKey) error { return errKeyCheck }
		}, reason: ReasonInstanceUnknown, status: 400, code: CodeInvalidGrant},
		// 8. htm
		{name: "htm POST", claims: func(c map[string]any) { c["htm"] = "POST" }, reason: ReasonDPoPHTMMismatch, status: 401, code: CodeInvalidDPoPProof},
		{name: "htm lower case", claims: func(c map[string]any) { c["htm"] = "get" }, reason: ReasonDPoPHTMMismatch, status: 401, code: CodeInvalidDPoPProof},
		{name: "htm missing", claims: func(c map[string]any) { delete(c, "htm") }, reason: ReasonDPoPHTMMismatch, status: 401, code: CodeInvalidDPoPProof},
		// 9. htu
		htu("htu other path", "https://proxy.example:8443/github/repos/acme/infra/contents/go.mod"),
		htu("htu other host", "https://evil.example:8443/github/repos/acme/webapp/contents/go.mod"),
		htu("htu other port", "https://proxy.example:8444/github/repos/acme/webapp/contents/go.mod"),
		htu("htu other scheme", "http://proxy.example:8443/github/repos/acme/webapp/contents/go.mod"),
		htu("htu trailing slash", testHTU+"/"),
		htu("htu encoded slash", "https://proxy.example:8443/github/repos/acme%2Fwebapp/contents/go.mod"),
		htu("htu relative", "/github/repos/acme/webapp/contents/go.mod"),
		htu("htu with userinfo", "https://user@proxy.example:8443/github/repos/acme/webapp/contents/go.mod"),
		htu("htu missing", ""),
		with(accepted("htu upper-case scheme and host"), func(dc *dpopCase) {
			dc.claims = func(c map[string]any) {
				c["htu"] = "HTTPS://PROXY.Example:8443/github/repos/acme/webapp/contents/go.mod"
			}
		}),
		with(accepted("htu default port"), func(dc *dpopCase) {
			dc.claims = func(c map[string]any) { c["htu"] = "https://proxy.example:443/github/repos/acme/web~app" }
			dc.check = func(c *DPoPCheck, _ testKey) { c.HTU = "https://proxy.example/github/repos/acme/web~app" }
		}),
		with(accepted("htu %7E vs ~"), func(dc *dpopCase) {
			dc.claims = func(c map[string]any) { c["htu"] = "https://proxy.example:8443/github/repos/acme/web%7eapp" }
			dc.check = func(c *DPoPCheck, _ testKey) { c.HTU = "https://proxy.example:8443/github/repos/acme/web~app" }
		}),
		with(accepted("htu query and fragment stripped"), func(dc *dpopCase) {
			dc.claims = func(c map[string]any) { c["htu"] = testHTU + "?ref=main#top" }
		}),
		// 10. iat
		stale("iat 61 s old", func() any { return testNow.Add(-61 * time.Second).Unix() }),
		with(accepted("iat 60 s old"), func(dc *dpopCase) {
			dc.claims = func(c map[string]any) { c["iat"] = testNow.Add(-60 * time.Second).Unix() }
		}),
		stale("iat 6 s ahead", func() any { return testNow.Add(6 * time.Second).Unix() }),
		with(accepted("iat 5 s ahead"), func(dc *dpopCase) {
			dc.claims = func(c map[string]any) { c["iat"] = testNow.Add(5 * time.Second).Unix() }
		}),
		with(stale("iat before Started", func() any { return testNow.Add(-20 * time.Second).Unix() }), func(dc *dpopCase) {
			dc.verifier = func(v *DPoPVerifier) { v.Started = testNow.Add(-10 * time.Second) }
		}),
		stale("iat zero", func() any { return 0 }),
		stale("iat null", func() any { return nil }),
		with(stale("iat missing", nil), func(dc *dpopCase) { dc.claims = func(c map[string]any) { delete(c, "iat") } }),
		stale("iat far future", func() any { return int64(1) << 62 }),
		stale("iat negative", func() any { return -(int64(1) << 62) }),
		with(invalid("iat string"), func(dc *dpopCase) {
			dc.claims = func(c map[string]any) { c["iat"] = "1763800000" }
		}),
		with(invalid("iat fractional"), func(dc *dpopCase) {
			dc.claims = func(c map[string]any) { c["iat"] = 1763800000.5 }
		}),
		// 11. jti
		with(invalid("jti empty"), func(dc *dpopCase) { dc.claims = func(c map[string]any) { c["jti"] = "" } }),
		with(invalid("jti missing"), func(dc *dpopCase) { dc.claims = func(c map[string]any) { delete(c, "jti") } }),
		with(invalid("jti 65 chars"), func(dc *dpopCase) { dc.claims = func(c map[string]any) { c["jti"] = strings.Repeat("j", 65) } }),
		with(accepted("jti 64 chars"), func(dc *dpopCase) { dc.claims = func(c map[string]any) { c["jti"] = strings.Repeat("j", 64) } }),
		// nonce (--require-nonce)
		{name: "nonce required, missing", verifier: func(v *DPoPVerifier) { v.Nonce = testNonce() },
			reason: ReasonDPoPNonce, status: 401, code: CodeUseDPoPNonce},
		{name: "nonce required, wrong", verifier: func(v *DPoPVerifier) { v.Nonce = testNonce() },
			claims: func(c map[string]any) { c["nonce"] = "not-the-nonce" }, reason: ReasonDPoPNonce, status: 401, code: CodeUseDPoPNonce},
		{name: "nonce required, valid", verifier: func(v *DPoPVerifier) { v.Nonce = testNonce() },
			claims: func(c map[string]any) { c["nonce"] = testNonce().Current() }},
		// strict claims
		with(invalid("duplicate claim"), func(dc *dpopCase) {
			dc.values = nil
			dc.claims = func(c map[string]any) { c["nested"] = json.RawMessage(`{"a":1,"a":2}`) }
		}),
	}
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func testNonce() *WindowNonce {
	return &WindowNonce{Secret: []byte("nonce-secret"), Window: time.Minute, Now: func() time.Time { return testNow }}
}

func testVerifier(cache ReplayCache) *DPoPVerifier {
	return &DPoPVerifier{Replay: cache, Now: func() time.Time { return testNow }, Started: testNow.Add(-10 * time.Minute)}
}

func testCheck(proof string, k testKey) DPoPCheck {
	return DPoPCheck{Values: []string{proof}, Method: "GET", HTU: testHTU, AccessToken: testToken,
		ExpectedJKT: thumb(k.signer.Public())}
}

func TestDPoPVerify(t *testing.T) {
	for _, k := range testKeys(t) {
		for _, dc := range dpopCases() {
			t.Run(k.name+"/"+dc.name, func(t *testing.T) {
				proof := dc.build(t, k)
				cache := NewMemoryReplayCache(16)
				v := testVerifier(cache)
				if dc.verifier != nil {
					dc.verifier(v)
				}
				c := testCheck(proof, k)
				var keyCheckJKT string
				if dc.check != nil {
					dc.check(&c, k)
				} else {
					c.KeyCheck = func(jkt string, pub crypto.PublicKey) error { keyCheckJKT = jkt; return nil }
				}
				if dc.values != nil {
					c.Values = dc.values(proof)
				}
				got, err := v.Verify(context.Background(), c)
				if dc.reason == "" {
					if err != nil {
						t.Fatalf("Verify: %v, want accepted", err)
					}
					wantJKT := mustThumbprint(t, k.signer.Public())
					if got.JKT != wantJKT || got.Claims.HTM != "GET" || got.JWK == nil || got.Key == nil {
						t.Fatalf("Verify = %+v, want jkt %s", got, wantJKT)
					}
					if dc.check == nil && keyCheckJKT != wantJKT {
						t.Fatalf("KeyCheck saw jkt %q, want %q", keyCheckJKT, wantJKT)
					}
					if cache.Len() != 1 {
						t.Fatalf("replay cache holds %d entries, want 1", cache.Len())
					}
					return
				}
				if got != nil {
					t.Fatalf("Verify returned a proof with error %v", err)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Verify error = %v (%T), want *Error", err, err)
				}
				if e.Reason != dc.reason || e.Status != dc.status || e.Code != dc.code {
					t.Fatalf("Verify error = %d %s %s (%s), want %d %s %s", e.Status, e.Code, e.Reason, e.Description, dc.status, dc.code, dc.reason)
				}
				if dc.reason == ReasonInstanceUnknown && err != error(errKeyCheck) {
					t.Fatalf("KeyCheck error was not passed through unchanged: %#v", err)
				}
				if cache.Len() != 0 {
					t.Fatalf("a refused proof entered the replay cache (%d entries)", cache.Len())
				}
			})
		}
	}
}

func TestDPoPVerifyNoReplayCache(t *testing.T) {
	k := testKeys(t)[0]
	v := testVerifier(nil)
	_, err := v.Verify(context.Background(), testCheck(dpopCase{}.build(t, k), k))
	if e := AsError(err); e.Status != http.StatusInternalServerError {
		t.Fatalf("Verify without a replay cache = %v, want 500", err)
	}
}

func TestDPoPVerifyMisconfiguredHTU(t *testing.T) {
	k := testKeys(t)[0]
	c := testCheck(dpopCase{}.build(t, k), k)
	c.HTU = "/no/base"
	_, err := testVerifier(NewMemoryReplayCache(4)).Verify(context.Background(), c)
	if e := AsError(err); e.Status != http.StatusInternalServerError || e.Code != CodeServerError {
		t.Fatalf("Verify with a relative server htu = %v, want 500 server_error", err)
	}
}

func TestDPoPReplay(t *testing.T) {
	for _, k := range testKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			cache := NewMemoryReplayCache(16)
			v := testVerifier(cache)
			proof := dpopCase{}.build(t, k)
			if _, err := v.Verify(context.Background(), testCheck(proof, k)); err != nil {
				t.Fatalf("first use: %v", err)
			}
			_, err := v.Verify(context.Background(), testCheck(proof, k))
			if e := AsError(err); e.Reason != ReasonDPoPReplay || e.Status != http.StatusUnauthorized || e.Code != CodeInvalidDPoPProof {
				t.Fatalf("second use = %v, want 401 dpop_replay", err)
			}
			// The same proof at another server clock second is still a replay.
			v.Now = func() time.Time { return testNow.Add(30 * time.Second) }
			_, err = v.Verify(context.Background(), testCheck(proof, k))
			if ReasonOf(err) != ReasonDPoPReplay {
				t.Fatalf("third use = %v, want dpop_replay", err)
			}
			if cache.Len() != 1 {
				t.Fatalf("cache holds %d entries, want 1", cache.Len())
			}
		})
	}
}

// A proof that fails a check before the replay step (here ath) never enters the cache,
// so a stolen token without its key cannot fill it; the same jti then still works once
// with the right binding.
func TestDPoPFailedProofNotCached(t *testing.T) {
	for _, k := range testKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			cache := NewMemoryReplayCache(16)
			v := testVerifier(cache)
			bad := dpopCase{claims: func(c map[string]any) { c["ath"] = ATH("stolen"); c["jti"] = "fixed-jti" }}.build(t, k)
			for i := 0; i < 3; i++ {
				if _, err := v.Verify(context.Background(), testCheck(bad, k)); ReasonOf(err) != ReasonDPoPATHMismatch {
					t.Fatalf("attempt %d = %v, want dpop_ath_mismatch", i, err)
				}
			}
			if cache.Len() != 0 {
				t.Fatalf("cache holds %d entries after refused proofs, want 0", cache.Len())
			}
			good := dpopCase{claims: func(c map[string]any) { c["jti"] = "fixed-jti" }}.build(t, k)
			if _, err := v.Verify(context.Background(), testCheck(good, k)); err != nil {
				t.Fatalf("good proof with the same jti: %v", err)
			}
			if cache.Len() != 1 {
				t.Fatalf("cache holds %d entries, want 1", cache.Len())
			}
		})
	}
}

// Two keys may use the same jti: the cache key is (jkt, jti).
func TestDPoPReplayKeyedByJKT(t *testing.T) {
	cache := NewMemoryReplayCache(16)
	v := testVerifier(cache)
	for _, k := range testKeys(t) {
		p := dpopCase{claims: func(c map[string]any) { c["jti"] = "same" }}.build(t, k)
		if _, err := v.Verify(context.Background(), testCheck(p, k)); err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
	}
	if cache.Len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", cache.Len())
	}
}

func TestDPoPReplayCacheFull(t *testing.T) {
	k := testKeys(t)[0]
	cache := NewMemoryReplayCache(2)
	now := testNow
	v := testVerifier(cache)
	v.Now = func() time.Time { return now }
	proofAt := func(iat time.Time) string {
		return dpopCase{claims: func(c map[string]any) { c["iat"] = iat.Unix() }}.build(t, k)
	}
	verify := func(p string) error {
		_, err := v.Verify(context.Background(), testCheck(p, k))
		return err
	}
	p1, p2 := proofAt(now), proofAt(now)
	if err := verify(p1); err != nil {
		t.Fatal(err)
	}
	if err := verify(p2); err != nil {
		t.Fatal(err)
	}
	// Full: 503 temporarily_unavailable, Retry-After 1.
	for _, at := range []time.Duration{0, 30 * time.Second, 64 * time.Second} {
		now = testNow.Add(at)
		err := verify(proofAt(now))
		var e *Error
		if !errors.As(err, &e) || e.Reason != ReasonReplayCacheFull || e.Status != http.StatusServiceUnavailable ||
			e.Code != CodeTemporarilyUnavail || e.RetryAfter != 1 {
			t.Fatalf("at +%v: error = %#v, want 503 temporarily_unavailable replay_cache_full Retry-After 1", at, err)
		}
		if cache.Len() != 2 {
			t.Fatalf("at +%v: cache holds %d entries, want 2", at, cache.Len())
		}
	}
	// Nothing unexpired was evicted: the first two proofs are still replays.
	now = testNow.Add(10 * time.Second)
	for i, p := range []string{p1, p2} {
		if err := verify(p); ReasonOf(err) != ReasonDPoPReplay {
			t.Fatalf("proof %d replayed while the cache is full = %v, want dpop_replay", i+1, err)
		}
	}
	// Entries expire at iat + 65 s; then their room is reused.
	now = testNow.Add(DPoPReplayWindow)
	p3, p4 := proofAt(now), proofAt(now)
	if err := verify(p3); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if err := verify(p4); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if cache.Len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", cache.Len())
	}
	if err := verify(p3); ReasonOf(err) != ReasonDPoPReplay {
		t.Fatalf("replay of a reused slot = %v, want dpop_replay", err)
	}
	if err := verify(proofAt(now)); ReasonOf(err) != ReasonReplayCacheFull {
		t.Fatalf("full again = %v, want replay_cache_full", err)
	}
}

func TestNewDPoPProofRoundTrip(t *testing.T) {
	for _, k := range testKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			nonce := testNonce()
			p, err := NewDPoPProof(k.signer, "PUT", testHTU+"?ref=main#x", testToken, nonce.Current(), testNow)
			if err != nil {
				t.Fatal(err)
			}
			v := testVerifier(NewMemoryReplayCache(4))
			v.Nonce = nonce
			c := testCheck(p, k)
			c.Method = "PUT"
			got, err := v.Verify(context.Background(), c)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Claims.HTU != testHTU || got.Claims.ATH != ATH(testToken) || got.Claims.IssuedAt != testNow.Unix() || len(got.Claims.JTI) != 22 {
				t.Fatalf("claims = %+v", got.Claims)
			}
		})
	}
}

func TestNormalizeHTU(t *testing.T) {
	cases := []struct {
		in, want string
		wantErr  bool
	}{
		{"https://proxy.example/github/repos", "https://proxy.example/github/repos", false},
		{"HTTPS://Proxy.EXAMPLE:443/github/repos", "https://proxy.example/github/repos", false},
		{"http://proxy.example:80/a", "http://proxy.example/a", false},
		{"http://proxy.example:443/a", "http://proxy.example:443/a", false},
		{"https://proxy.example:80/a", "https://proxy.example:80/a", false},
		{"https://proxy.example", "https://proxy.example/", false},
		{"https://proxy.example?x=1", "https://proxy.example/", false},
		{"https://proxy.example/a?x=1#f", "https://proxy.example/a", false},
		{"https://proxy.example/a%7e%41b", "https://proxy.example/a~Ab", false},
		{"https://proxy.example/a%2fb", "https://proxy.example/a%2Fb", false},
		{"https://proxy.example/a/./b/../c", "https://proxy.example/a/c", false},
		{"https://proxy.example/a/%2E%2E/c", "https://proxy.example/c", false},
		{"https://proxy.example/../a", "https://proxy.example/a", false},
		{"https://[::1]:8443/a", "https://[::1]:8443/a", false},
		{"https://[::1]:443/a", "https://[::1]/a", false},
		{"", "", true},
		{"/relative", "", true},
		{"ftp://proxy.example/a", "", true},
		{"https://user:pw@proxy.example/a", "", true},
		{"https:///a", "", true},
		{"HTTP://:", "", true}, // a Host of ":" with no host name (found by FuzzNormalizeHTU)
		{"http://:80/a", "", true},
		// Hosts outside DNS names and IP literals are refused, so nothing can collide
		// (FuzzNormalizeHTU found invalid UTF-8 bytes folding to U+FFFD, U+212A KELVIN
		// SIGN folding to "k", and a decoded "[" in an IPv6 zone making a non-URI).
		{"http://\x93/a", "", true},
		{"http://\x94/a", "", true},
		{"https://pro\u212Ay.example/a", "", true},
		{"https://PRO\u212AY.example/a", "", true},
		{"hTtp://[::%25%5B]", "", true},
		{"http://[fe80::1%25eth0]/a", "", true},
		{"https://Proxy.Example/a", "https://proxy.example/a", false},
		{"https://:8443/github/repos", "", true},
		{"https://proxy.example/a%zz", "", true},
		{"https://proxy.example/" + strings.Repeat("a", 4096), "", true},
	}
	for _, c := range cases {
		got, err := NormalizeHTU(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("NormalizeHTU(%q) = %q, %v; want %q, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func FuzzDPoPVerify(f *testing.F) {
	k := testKeys(f)
	for _, key := range k {
		for _, dc := range []dpopCase{
			{},
			{claims: func(c map[string]any) { c["htm"] = "POST" }},
			{claims: func(c map[string]any) { c["iat"] = testNow.Add(-61 * time.Second).Unix() }},
			{claims: func(c map[string]any) { c["nested"] = json.RawMessage(`{"a":[1,{"b":null}]}`) }},
			{header: func(h map[string]any, _ testKey) { h["alg"] = "none" }, sign: func(testing.TB, testKey, string) []byte { return nil }},
			{header: func(h map[string]any, _ testKey) { h["jwk"].(map[string]any)["d"] = "AAAA" }},
		} {
			f.Add(dc.build(f, key))
		}
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("e30.e30.")
	f.Add(forgeRaw(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`, `{"jti":"a","htm":"GET","htu":"`+testHTU+`","iat":1763800000}`, make([]byte, 64)))
	f.Add(forgeRaw(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}}`, `{}`, make([]byte, 64)))
	jkts := []string{mustThumbprint(f, k[0].signer.Public()), mustThumbprint(f, k[1].signer.Public())}
	f.Fuzz(func(t *testing.T, header string) {
		cache := NewMemoryReplayCache(4)
		v := testVerifier(cache)
		v.Started = testNow.Add(-time.Hour)
		c := DPoPCheck{Values: []string{header}, Method: "GET", HTU: testHTU, AccessToken: testToken}
		proof, err := v.Verify(context.Background(), c)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || proof != nil {
				t.Fatalf("Verify = %v, %#v; want nil and an *Error", proof, err)
			}
			if e.Status != http.StatusUnauthorized || cache.Len() != 0 {
				t.Fatalf("error %d %s with %d cache entries", e.Status, e.Reason, cache.Len())
			}
			return
		}
		// Accepted: it must really be a proof for this request by one of our keys
		// (nobody else's signature verifies).
		if proof == nil || (proof.JKT != jkts[0] && proof.JKT != jkts[1]) || proof.Claims.HTM != "GET" ||
			proof.Claims.ATH != ATH(testToken) || proof.Claims.JTI == "" || len(proof.Claims.JTI) > MaxJTILength {
			t.Fatalf("accepted proof %+v", proof)
		}
		if got, _ := NormalizeHTU(proof.Claims.HTU); got != "https://proxy.example:8443/github/repos/acme/webapp/contents/go.mod" {
			t.Fatalf("accepted htu %q", proof.Claims.HTU)
		}
		if cache.Len() != 1 {
			t.Fatalf("accepted proof left %d cache entries", cache.Len())
		}
		if _, err := v.Verify(context.Background(), c); ReasonOf(err) != ReasonDPoPReplay {
			t.Fatalf("second Verify = %v, want dpop_replay", err)
		}
	})
}

func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{
		testHTU, "HTTPS://PROXY.EXAMPLE:443/a/%7e/./b/../c?x#y", "http://h:80", "https://[::1]:443/",
		"https://[fe80::1%25en0]/a", "https://h/%2e%2E/%2F", "https://h/a/b/..", "https://h/.", "http://h/%C3%A9",
		"https://ex%C3%A9mple.com/", "https://h:/a", "https://h/a b", "https://h/a%", "//h/a", "https:h", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeHTU(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(n, "http://") && !strings.HasPrefix(n, "https://") {
			t.Fatalf("NormalizeHTU(%q) = %q: not http(s)", s, n)
		}
		if strings.ContainsAny(n, "?#") {
			t.Fatalf("NormalizeHTU(%q) = %q keeps a query or fragment", s, n)
		}
		// Normalisation is idempotent for what it accepts (unless percent-encoding raw
		// bytes made the result longer than the 4096-byte input limit).
		if len(n) > 4096 {
			return
		}
		n2, err := NormalizeHTU(n)
		if err != nil || n2 != n {
			t.Fatalf("NormalizeHTU(%.200q) = %.200q, but normalising that gives %.200q, %v", s, n, n2, err)
		}
	})
}

func BenchmarkDPoPVerify(b *testing.B) {
	for _, k := range testKeys(b) {
		b.Run(k.name, func(b *testing.B) {
			proofs := make([]string, b.N)
			for i := range proofs {
				p, err := NewDPoPProof(k.signer, "GET", testHTU, testToken, "", testNow)
				if err != nil {
					b.Fatal(err)
				}
				proofs[i] = p
			}
			v := testVerifier(NewMemoryReplayCache(b.N + 1))
			c := DPoPCheck{Method: "GET", HTU: testHTU, AccessToken: testToken, ExpectedJKT: mustThumbprint(b, k.signer.Public())}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.Values = proofs[i : i+1]
				if _, err := v.Verify(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
