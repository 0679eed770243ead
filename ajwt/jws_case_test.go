package ajwt

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
)

// TestJWTMemberNamesAreExact: member names that Go's decoder would fold onto ours
// ("ALG", a Kelvin-sign "kid", "SUB") are refused in headers and payloads.
func TestJWTMemberNamesAreExact(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signRaw := func(header, payload string) string {
		in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
		return in + "." + b64.EncodeToString(ed25519.Sign(key, []byte(in)))
	}
	cases := []struct {
		name, header, payload string
		ok                    bool
	}{
		{"lower-case names", `{"alg":"EdDSA","typ":"ajwt-delegation+jwt"}`, `{"sub":"agent:a"}`, true},
		{"upper-case alg", `{"alg":"none","ALG":"EdDSA"}`, `{}`, false},
		{"Kelvin sign kid", `{"alg":"EdDSA","\u212aid":"x"}`, `{}`, false},
		{"upper-case claim", `{"alg":"EdDSA"}`, `{"SUB":"agent:a"}`, false},
		{"nested upper-case claim", `{"alg":"EdDSA"}`, `{"cnf":{"JKT":"x"}}`, false},
	}
	for _, c := range cases {
		j, err := ParseJWS(signRaw(c.header, c.payload))
		if err == nil {
			var dc DelegationClaims
			err = j.Claims(&dc)
		}
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "lower-case") {
			t.Errorf("%s: unexpected error %v", c.name, err)
		}
	}
}

func TestCheckStrictJSONSurrogates(t *testing.T) {
	for in, ok := range map[string]bool{
		`"\ud83d\ude00"`: true, `"\u00e9"`: true, `"\\ud800"`: true, `"a\"\ud800"`: false,
		`"\ud800"`: false, `"\udc00"`: false, `"\ud800\u0041"`: false, `{"\ud800":1}`: false,
	} {
		if err := CheckStrictJSON([]byte(in)); (err == nil) != ok {
			t.Errorf("%s: err = %v, want ok=%v", in, err, ok)
		}
	}
}
