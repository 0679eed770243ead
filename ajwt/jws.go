package ajwt

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// JWS algorithm names accepted by this protocol.
const (
	AlgEdDSA   = "EdDSA"
	AlgEd25519 = "Ed25519" // RFC 9864's fully specified name
	AlgES256   = "ES256"
)

// JWT `typ` values (DESIGN §5.1).
const (
	TypIntent     = "ajwt+jwt"
	TypAccess     = "at+jwt"
	TypDelegation = "ajwt-delegation+jwt"
	TypDPoP       = "dpop+jwt"
)

// MaxJWTBytes is the largest compact JWT accepted anywhere (DESIGN §5.1).
const MaxJWTBytes = 8 << 10

// Header is the protected header of a compact JWS as far as this protocol reads it.
type Header struct {
	Alg string          `json:"alg"`
	Typ string          `json:"typ,omitempty"`
	Kid string          `json:"kid,omitempty"`
	JWK json.RawMessage `json:"jwk,omitempty"`
}

// JWS is a parsed, not yet verified, compact JWS.
type JWS struct {
	Header Header
	// Members lists every header member name present.
	Members      map[string]json.RawMessage
	Payload      []byte
	SigningInput string
	Signature    []byte
}

// ParseJWS splits and decodes a compact JWS. It enforces the size limit, base64url
// without padding, a strict JSON header object and refuses any `crit` header (DESIGN
// §5.1: no extension we would have to understand). It does not verify the signature.
func ParseJWS(compact string) (*JWS, error) {
	if len(compact) > MaxJWTBytes {
		return nil, fmt.Errorf("jwt exceeds %d bytes", MaxJWTBytes)
	}
	// base64url as JWS uses it has one spelling per value: no line breaks (which the
	// decoder would skip) and zero padding bits (b64strict), so a token or proof
	// cannot be re-spelled into a different string that still verifies.
	if strings.ContainsAny(compact, "\r\n") {
		return nil, errors.New("jwt contains a line break")
	}
	first := strings.IndexByte(compact, '.')
	last := strings.LastIndexByte(compact, '.')
	if first < 0 || first == last || strings.Count(compact, ".") != 2 {
		return nil, errors.New("jwt is not three dot-separated parts")
	}
	hb, err := b64strict.DecodeString(compact[:first])
	if err != nil {
		return nil, errors.New("jwt header is not base64url")
	}
	pb, err := b64strict.DecodeString(compact[first+1 : last])
	if err != nil {
		return nil, errors.New("jwt payload is not base64url")
	}
	sig, err := b64strict.DecodeString(compact[last+1:])
	if err != nil {
		return nil, errors.New("jwt signature is not base64url")
	}
	j := &JWS{Payload: pb, SigningInput: compact[:last], Signature: sig}
	if err := CheckStrictJWTJSON(hb); err != nil {
		return nil, fmt.Errorf("jwt header: %w", err)
	}
	if err := json.Unmarshal(hb, &j.Members); err != nil {
		return nil, errors.New("jwt header is not a JSON object")
	}
	if err := json.Unmarshal(hb, &j.Header); err != nil {
		return nil, errors.New("jwt header has members of the wrong type")
	}
	if _, ok := j.Members["crit"]; ok {
		return nil, errors.New("jwt has a crit header")
	}
	if j.Header.Alg == "" {
		return nil, errors.New("jwt has no alg")
	}
	return j, nil
}

// TypIs compares the `typ` header with want case-insensitively, allowing an optional
// "application/" prefix (RFC 7515 §4.1.9).
func (j *JWS) TypIs(want string) bool {
	t := strings.ToLower(j.Header.Typ)
	t = strings.TrimPrefix(t, "application/")
	return t == want
}

// HasKeyHeaders reports whether the header carries a key or a key reference (`jwk`,
// `jku`, `x5u`, `x5c`), which access tokens and delegation links must not.
func (j *JWS) HasKeyHeaders() bool {
	for _, m := range []string{"jwk", "jku", "x5u", "x5c"} {
		if _, ok := j.Members[m]; ok {
			return true
		}
	}
	return false
}

// Verify checks the signature with pub. The header `alg` must be one the key can make:
// EdDSA or Ed25519 for an Ed25519 key, ES256 for a P-256 key. `none`, HMAC and every
// other alg are refused whatever their case.
func (j *JWS) Verify(pub crypto.PublicKey) error {
	keyAlg, err := AlgForKey(pub)
	if err != nil {
		return err
	}
	var m jwt.SigningMethod
	switch {
	case keyAlg == AlgEdDSA && (j.Header.Alg == AlgEdDSA || j.Header.Alg == AlgEd25519):
		m = jwt.SigningMethodEdDSA
	case keyAlg == AlgES256 && j.Header.Alg == AlgES256:
		m = jwt.SigningMethodES256
	default:
		return fmt.Errorf("alg %q does not match the key", j.Header.Alg)
	}
	if err := m.Verify(j.SigningInput, j.Signature, pub); err != nil {
		return errors.New("signature does not verify")
	}
	return nil
}

// Claims decodes the payload strictly (valid UTF-8, no duplicate members) into v.
func (j *JWS) Claims(v any) error { return decodeJWTPart(j.Payload, v) }

// Sign produces a compact JWS over claims with the header members given. The signer
// must be an ed25519.PrivateKey (alg EdDSA) or *ecdsa.PrivateKey on P-256 (alg ES256).
func Sign(h Header, claims any, key crypto.Signer) (string, error) {
	alg, err := AlgForKey(key.Public())
	if err != nil {
		return "", err
	}
	if h.Alg == "" {
		h.Alg = alg
	}
	var m jwt.SigningMethod
	switch h.Alg {
	case AlgEdDSA, AlgEd25519:
		m = jwt.SigningMethodEdDSA
	case AlgES256:
		m = jwt.SigningMethodES256
	default:
		return "", fmt.Errorf("sign: unsupported alg %q", h.Alg)
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("sign: header: %w", err)
	}
	pb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("sign: claims: %w", err)
	}
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(pb)
	sig, err := m.Sign(input, key)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}
