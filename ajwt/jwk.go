package ajwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

var b64 = base64.RawURLEncoding

// b64strict also refuses non-zero padding bits (RFC 4648 §3.5).
var b64strict = base64.RawURLEncoding.Strict()

// JWK is a public JSON Web Key (RFC 7517) of the two types this protocol uses: OKP
// Ed25519 (RFC 8037) and EC P-256. Private members are never part of this type; a key
// that carries them is refused by ParseJWK.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// privateMembers are JWK members that only private (or symmetric) keys carry.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParseJWK decodes a public JWK from raw JSON, refusing private members (RFC 9449 §4.2:
// "MUST NOT contain a private key"), unknown key types and curves, and invalid points.
func ParseJWK(raw json.RawMessage) (*JWK, crypto.PublicKey, error) {
	if len(raw) > 1024 {
		return nil, nil, errors.New("jwk too large")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, nil, fmt.Errorf("jwk: %w", err)
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return nil, nil, fmt.Errorf("jwk carries private member %q", m)
		}
	}
	var k JWK
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, nil, fmt.Errorf("jwk: %w", err)
	}
	pub, err := k.PublicKey()
	if err != nil {
		return nil, nil, err
	}
	return &k, pub, nil
}

// PublicKey returns the Go public key (ed25519.PublicKey or *ecdsa.PublicKey).
func (k *JWK) PublicKey() (crypto.PublicKey, error) {
	switch {
	case k.Kty == "OKP" && k.Crv == "Ed25519":
		if k.Y != "" {
			return nil, errors.New("jwk: OKP key with y")
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize || b64.EncodeToString(x) != k.X {
			// The canonical-encoding check matters: the thumbprint hashes the x string,
			// so a second spelling of the same key (non-zero trailing bits, an embedded
			// newline, both ignored by the decoder) would be a second jkt.
			return nil, errors.New("jwk: bad Ed25519 x")
		}
		return ed25519.PublicKey(x), nil
	case k.Kty == "EC" && k.Crv == "P-256":
		x, err1 := b64.DecodeString(k.X)
		y, err2 := b64.DecodeString(k.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 ||
			b64.EncodeToString(x) != k.X || b64.EncodeToString(y) != k.Y {
			return nil, errors.New("jwk: bad P-256 coordinates")
		}
		// Validate the point through the crypto/ecdh checks (on-curve, not infinity).
		uncompressed := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), uncompressed)
		if err != nil {
			return nil, errors.New("jwk: P-256 point not on curve")
		}
		return pub, nil
	default:
		return nil, fmt.Errorf("jwk: unsupported kty/crv %q/%q", k.Kty, k.Crv)
	}
}

// JWKFromPublicKey builds the JWK of an Ed25519 or P-256 public key.
func JWKFromPublicKey(pub crypto.PublicKey) (*JWK, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return &JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(p)}, nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, errors.New("jwk: only P-256 is supported")
		}
		raw, err := p.Bytes()
		if err != nil {
			return nil, fmt.Errorf("jwk: %w", err)
		}
		return &JWK{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(raw[1:33]), Y: b64.EncodeToString(raw[33:65])}, nil
	default:
		return nil, fmt.Errorf("jwk: unsupported key type %T", pub)
	}
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url without padding):
// the hash of the required members in lexicographic order with no whitespace.
func (k *JWK) Thumbprint() (string, error) {
	var canon string
	switch k.Kty {
	case "OKP":
		canon = fmt.Sprintf(`{"crv":%s,"kty":"OKP","x":%s}`, jsonString(k.Crv), jsonString(k.X))
	case "EC":
		canon = fmt.Sprintf(`{"crv":%s,"kty":"EC","x":%s,"y":%s}`, jsonString(k.Crv), jsonString(k.X), jsonString(k.Y))
	default:
		return "", fmt.Errorf("thumbprint: unsupported kty %q", k.Kty)
	}
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:]), nil
}

// Thumbprint returns the RFC 7638 thumbprint of a public key.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	k, err := JWKFromPublicKey(pub)
	if err != nil {
		return "", err
	}
	return k.Thumbprint()
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // strings always marshal
	return string(b)
}

// AlgForKey returns the JWS alg name for a key ("EdDSA" or "ES256").
func AlgForKey(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return AlgEdDSA, nil
	case *ecdsa.PublicKey:
		if p.Curve == elliptic.P256() {
			return AlgES256, nil
		}
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}
