package ajwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
)

// RFC 8037 Appendix A: the Ed25519 example key.
const (
	rfc8037D   = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
	rfc8037X   = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	rfc8037Jkt = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
	// A.4: {"alg":"EdDSA"} over "Example of Ed25519 signing".
	rfc8037JWS = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)

// TestThumbprintRFC8037 is the RFC 8037 §A.3 thumbprint vector (RFC 7638 §3.1's example
// is an RSA key, a type this protocol does not use).
func TestThumbprintRFC8037(t *testing.T) {
	k := &JWK{Kty: "OKP", Crv: "Ed25519", X: rfc8037X}
	got, err := k.Thumbprint()
	if err != nil || got != rfc8037Jkt {
		t.Fatalf("Thumbprint = %q, %v; want %q", got, err, rfc8037Jkt)
	}
	// The same through ParseJWK (extra members do not count) and from the private key.
	parsed, pub, err := ParseJWK(json.RawMessage(`{"kty":"OKP","crv":"Ed25519","x":"` + rfc8037X + `","kid":"k1","use":"sig"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := parsed.Thumbprint(); got != rfc8037Jkt {
		t.Fatalf("parsed Thumbprint = %q", got)
	}
	if got, _ := Thumbprint(pub); got != rfc8037Jkt {
		t.Fatalf("Thumbprint(pub) = %q", got)
	}
	seed, _ := b64.DecodeString(rfc8037D)
	priv := ed25519.NewKeyFromSeed(seed)
	if got, _ := Thumbprint(priv.Public()); got != rfc8037Jkt {
		t.Fatalf("Thumbprint(public of d) = %q", got)
	}
	// RFC 8037 §A.4: the example JWS verifies with that key, and our Sign makes it.
	j, err := ParseJWS(rfc8037JWS)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(pub); err != nil {
		t.Fatalf("RFC 8037 A.4 JWS: %v", err)
	}
	sig := ed25519.Sign(priv, []byte(j.SigningInput))
	if j.SigningInput+"."+b64.EncodeToString(sig) != rfc8037JWS {
		t.Fatal("Ed25519 signature differs from RFC 8037 A.4")
	}
}

func TestJWKP256RoundTrip(t *testing.T) {
	for i := 0; i < 8; i++ {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		j, err := JWKFromPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		if j.Kty != "EC" || j.Crv != "P-256" || len(j.X) != 43 || len(j.Y) != 43 {
			t.Fatalf("JWK = %+v", j)
		}
		raw, _ := json.Marshal(j)
		parsed, pub, err := ParseJWK(raw)
		if err != nil {
			t.Fatalf("ParseJWK(%s): %v", raw, err)
		}
		if !priv.PublicKey.Equal(pub) {
			t.Fatal("round trip changed the key")
		}
		// RFC 7638 §3: SHA-256 over the required members in lexicographic order.
		canon := `{"crv":"P-256","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
		sum := sha256.Sum256([]byte(canon))
		want := b64.EncodeToString(sum[:])
		for _, got := range []func() (string, error){parsed.Thumbprint, j.Thumbprint, func() (string, error) { return Thumbprint(pub) }} {
			if g, err := got(); err != nil || g != want {
				t.Fatalf("thumbprint = %q, %v; want %q", g, err, want)
			}
		}
		if alg, _ := AlgForKey(pub); alg != AlgES256 {
			t.Fatalf("AlgForKey = %q", alg)
		}
	}
}

func TestParseJWKRefuses(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec, _ := JWKFromPublicKey(p256.Public())
	flipLast := func(s string) string {
		i := strings.IndexByte(b64Alphabet, s[len(s)-1])
		return s[:len(s)-1] + string(b64Alphabet[i^1])
	}
	okp := func(extra string) string { return `{"kty":"OKP","crv":"Ed25519","x":"` + rfc8037X + `"` + extra + `}` }
	ecj := func(x, y, extra string) string {
		return `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"` + extra + `}`
	}
	cases := []struct {
		name, raw string
	}{
		{"private d (OKP)", okp(`,"d":"` + rfc8037D + `"`)},
		{"private d (EC)", ecj(ec.X, ec.Y, `,"d":"AAAA"`)},
		{"symmetric k", okp(`,"k":"c2VjcmV0"`)},
		{"RSA private p", okp(`,"p":"AAAA"`)},
		{"RSA private oth", okp(`,"oth":[]`)},
		{"unknown kty", `{"kty":"RSA","n":"AAAA","e":"AQAB"}`},
		{"oct", `{"kty":"oct","k":"AAAA"}`},
		{"X25519", `{"kty":"OKP","crv":"X25519","x":"` + rfc8037X + `"}`},
		{"P-384", `{"kty":"EC","crv":"P-384","x":"` + ec.X + `","y":"` + ec.Y + `"}`},
		{"OKP with y", okp(`,"y":"` + rfc8037X + `"`)},
		{"x too short", `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR"}`},
		{"x padded", `{"kty":"OKP","crv":"Ed25519","x":"` + rfc8037X + `="}`},
		{"x std alphabet", `{"kty":"OKP","crv":"Ed25519","x":"` + strings.NewReplacer("_", "/", "-", "+").Replace(rfc8037X) + `"}`},
		{"x non-zero padding bits", `{"kty":"OKP","crv":"Ed25519","x":"` + flipLast(rfc8037X) + `"}`},
		{"x with a line break", `{"kty":"OKP","crv":"Ed25519","x":"` + rfc8037X[:20] + `\n` + rfc8037X[20:] + `"}`},
		{"EC x non-zero padding bits", ecj(flipLast(ec.X), ec.Y, "")},
		{"EC y non-zero padding bits", ecj(ec.X, flipLast(ec.Y), "")},
		{"EC point not on curve", ecj(b64.EncodeToString(make([]byte, 32)), b64.EncodeToString(make([]byte, 32)), "")},
		{"EC y missing", `{"kty":"EC","crv":"P-256","x":"` + ec.X + `"}`},
		{"x not a string", `{"kty":"OKP","crv":"Ed25519","x":1}`},
		{"not an object", `["OKP"]`},
		{"null", `null`},
		{"not JSON", `{"kty":`},
		{"too large", okp(`,"pad":"` + strings.Repeat("a", 1024) + `"`)},
	}
	for _, c := range cases {
		if j, pub, err := ParseJWK(json.RawMessage(c.raw)); err == nil {
			t.Errorf("%s: ParseJWK accepted %+v %T", c.name, j, pub)
		}
	}
	// The canonical spellings are accepted.
	for _, raw := range []string{okp(""), ecj(ec.X, ec.Y, "")} {
		if _, _, err := ParseJWK(json.RawMessage(raw)); err != nil {
			t.Errorf("ParseJWK(%s): %v", raw, err)
		}
	}
}

func TestParseJWS(t *testing.T) {
	priv := testEd25519Key(3)
	valid, err := Sign(Header{Typ: TypIntent, Kid: "k"}, map[string]any{"sub": "agent:planner"}, priv)
	if err != nil {
		t.Fatal(err)
	}
	sig := valid[strings.LastIndexByte(valid, '.')+1:]
	withHeader := func(h string) string {
		return b64.EncodeToString([]byte(h)) + valid[strings.IndexByte(valid, '.'):]
	}
	cases := []struct {
		name    string
		compact string
		ok      bool
	}{
		{"valid", valid, true},
		{"RFC 8037 A.4", rfc8037JWS, true},
		{"crit", withHeader(`{"alg":"EdDSA","typ":"ajwt+jwt","crit":["exp"],"exp":1}`), false},
		{"crit empty", withHeader(`{"alg":"EdDSA","crit":[]}`), false},
		{"duplicate alg", withHeader(`{"alg":"EdDSA","alg":"none"}`), false},
		{"duplicate typ", withHeader(`{"alg":"EdDSA","typ":"dpop+jwt","typ":"ajwt+jwt"}`), false},
		{"duplicate nested", withHeader(`{"alg":"EdDSA","jwk":{"x":"a","x":"b"}}`), false},
		{"duplicate via escape", withHeader(`{"alg":"EdDSA","\u0061lg":"EdDSA"}`), false},
		{"four parts", valid + ".e30", false},
		{"four parts, empty", valid + ".", false},
		{"two parts", valid[:strings.LastIndexByte(valid, '.')], false},
		{"one part", "eyJhbGciOiJFZERTQSJ9", false},
		{"empty", "", false},
		{"dots only", "..", false},
		{"header empty", valid[strings.IndexByte(valid, '.'):], false},
		{"header not JSON", withHeader(`alg=EdDSA`), false},
		{"header array", withHeader(`["alg","EdDSA"]`), false},
		{"header null", withHeader(`null`), false},
		{"header trailing data", withHeader(`{"alg":"EdDSA"}{}`), false},
		{"header invalid UTF-8", withHeader("{\"alg\":\"EdDSA\",\"x\":\"\xff\"}"), false},
		{"no alg", withHeader(`{"typ":"ajwt+jwt"}`), false},
		{"alg empty", withHeader(`{"alg":""}`), false},
		{"alg number", withHeader(`{"alg":1}`), false},
		{"padding", valid + "=", false},
		{"line break", valid[:10] + "\n" + valid[10:], false},
		{"carriage return in signature", valid[:len(valid)-5] + "\r" + valid[len(valid)-5:], false},
		{"space", " " + valid, false},
		{"std alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(valid), strings.IndexAny(valid, "-_") < 0},
		{"signature non-zero padding bits", valid[:len(valid)-1] + string(b64Alphabet[strings.IndexByte(b64Alphabet, sig[len(sig)-1])^1]), false},
		{"oversize", withHeader(`{"alg":"EdDSA","pad":"` + strings.Repeat("a", MaxJWTBytes) + `"}`), false},
	}
	for _, c := range cases {
		j, err := ParseJWS(c.compact)
		if (err == nil) != c.ok {
			t.Errorf("%s: ParseJWS error = %v, want ok %v", c.name, err, c.ok)
			continue
		}
		if c.ok && (j.Header.Alg != AlgEdDSA || j.SigningInput != c.compact[:strings.LastIndexByte(c.compact, '.')]) {
			t.Errorf("%s: parsed %+v", c.name, j.Header)
		}
	}
}

func TestJWSVerifyAndHeaders(t *testing.T) {
	ed := testEd25519Key(4)
	p256 := testP256Key(t)
	cases := []struct {
		name   string
		header Header
		sign   func(input string) []byte
		verify any
		ok     bool
	}{
		{"EdDSA", Header{Alg: AlgEdDSA}, func(in string) []byte { return rawSign(t, ed, in) }, ed.Public(), true},
		{"Ed25519 (RFC 9864)", Header{Alg: AlgEd25519}, func(in string) []byte { return rawSign(t, ed, in) }, ed.Public(), true},
		{"ES256", Header{Alg: AlgES256}, func(in string) []byte { return rawSign(t, p256, in) }, p256.Public(), true},
		{"ES256 header, Ed25519 key", Header{Alg: AlgES256}, func(in string) []byte { return rawSign(t, ed, in) }, ed.Public(), false},
		{"EdDSA header, P-256 key", Header{Alg: AlgEdDSA}, func(in string) []byte { return rawSign(t, p256, in) }, p256.Public(), false},
		{"none", Header{Alg: "none"}, func(string) []byte { return nil }, ed.Public(), false},
		{"EDDSA upper case", Header{Alg: "EDDSA"}, func(in string) []byte { return rawSign(t, ed, in) }, ed.Public(), false},
		{"wrong key", Header{Alg: AlgEdDSA}, func(in string) []byte { return rawSign(t, ed, in) }, testEd25519Key(5).Public(), false},
	}
	for _, c := range cases {
		hb, _ := json.Marshal(c.header)
		input := b64.EncodeToString(hb) + "." + b64.EncodeToString([]byte(`{"sub":"x"}`))
		j, err := ParseJWS(input + "." + b64.EncodeToString(c.sign(input)))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := j.Verify(c.verify); (err == nil) != c.ok {
			t.Errorf("%s: Verify error = %v, want ok %v", c.name, err, c.ok)
		}
	}

	typs := []struct {
		typ, want string
		ok        bool
	}{
		{"dpop+jwt", TypDPoP, true},
		{"DPoP+JWT", TypDPoP, true},
		{"application/dpop+jwt", TypDPoP, true},
		{"Application/AJWT+JWT", TypIntent, true},
		{"at+jwt", TypIntent, false},
		{"", TypDPoP, false},
		{"application/application/dpop+jwt", TypDPoP, false},
		{"dpop+jwt ", TypDPoP, false},
	}
	for _, c := range typs {
		j := &JWS{Header: Header{Typ: c.typ}}
		if got := j.TypIs(c.want); got != c.ok {
			t.Errorf("TypIs(%q) with typ %q = %v, want %v", c.want, c.typ, got, c.ok)
		}
	}
	for _, m := range []string{"jwk", "jku", "x5u", "x5c"} {
		j, err := ParseJWS(forgeRaw(`{"alg":"EdDSA","`+m+`":"x"}`, `{}`, []byte("s")))
		if err != nil || !j.HasKeyHeaders() {
			t.Errorf("HasKeyHeaders with %s = false (%v)", m, err)
		}
	}
	if j, _ := ParseJWS(forgeRaw(`{"alg":"EdDSA","kid":"x"}`, `{}`, []byte("s"))); j.HasKeyHeaders() {
		t.Error("HasKeyHeaders with kid only = true")
	}
}

func FuzzParseJWS(f *testing.F) {
	valid, _ := Sign(Header{Typ: TypIntent, Kid: "k"}, map[string]any{"sub": "agent:planner"}, testEd25519Key(3))
	for _, s := range []string{
		valid, rfc8037JWS, valid + ".e30", valid[:strings.LastIndexByte(valid, '.')], "", "..", "a.b.c",
		forgeRaw(`{"alg":"EdDSA","crit":["b64"]}`, `{}`, nil),
		forgeRaw(`{"alg":"EdDSA","alg":"none"}`, `{}`, nil),
		forgeRaw(`{"alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"`+rfc8037X+`"}}`, `{"a":[1,2,{"b":null}]}`, []byte("sig")),
		forgeRaw(`{"alg":1}`, `x`, nil),
		valid[:10] + "\n" + valid[10:],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := ParseJWS(s)
		if err != nil {
			if j != nil {
				t.Fatal("ParseJWS returned a JWS and an error")
			}
			return
		}
		if len(s) > MaxJWTBytes || strings.Count(s, ".") != 2 || strings.ContainsAny(s, "\r\n") {
			t.Fatalf("ParseJWS accepted %q", s)
		}
		parts := strings.Split(s, ".")
		// One spelling per value: every part re-encodes to itself.
		hb, _ := b64.DecodeString(parts[0])
		for i, want := range [][]byte{hb, j.Payload, j.Signature} {
			if b64.EncodeToString(want) != parts[i] {
				t.Fatalf("part %d of %q is not canonical base64url", i, s)
			}
		}
		if j.SigningInput != parts[0]+"."+parts[1] {
			t.Fatalf("SigningInput = %q", j.SigningInput)
		}
		if CheckStrictJSON(hb) != nil {
			t.Fatalf("header %q is not strict JSON", hb)
		}
		if _, ok := j.Members["crit"]; ok || j.Header.Alg == "" {
			t.Fatalf("accepted header %q", hb)
		}
	})
}
