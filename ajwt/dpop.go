package ajwt

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DPoP proof time window (DESIGN §5.1 step 10) and replay-cache lifetime.
const (
	DPoPMaxAge       = 60 * time.Second
	DPoPFutureLeeway = 5 * time.Second
	DPoPReplayWindow = 65 * time.Second
	MaxJTILength     = 64
)

// DPoPAlgs is the list of proof algorithms accepted, as advertised in
// `dpop_signing_alg_values_supported` and the WWW-Authenticate `algs` parameter.
var dpopAlgs = []string{AlgEdDSA, AlgEd25519, AlgES256}

// DPoPAlgs returns the accepted DPoP proof algorithms.
func DPoPAlgs() []string { return append([]string(nil), dpopAlgs...) }

// NewJTI returns a fresh random identifier (128 bits, base64url).
func NewJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return b64.EncodeToString(b[:])
}

// ATH is the RFC 9449 §4.2 `ath`: base64url(SHA-256(ASCII access token)).
func ATH(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return b64.EncodeToString(sum[:])
}

// NewDPoPProof builds a DPoP proof (RFC 9449 §4.2) signed by key for one request. The
// htu is the request URL without query and fragment; accessToken, when not empty, sets
// `ath`; nonce, when not empty, sets `nonce`.
func NewDPoPProof(key crypto.Signer, method, htu, accessToken, nonce string, now time.Time) (string, error) {
	jwk, err := JWKFromPublicKey(key.Public())
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(jwk)
	if err != nil {
		return "", err
	}
	if u, err := url.Parse(htu); err == nil {
		u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
		htu = u.String()
	}
	c := DPoPClaims{JTI: NewJTI(), HTM: method, HTU: htu, IssuedAt: now.Unix(), Nonce: nonce}
	if accessToken != "" {
		c.ATH = ATH(accessToken)
	}
	return Sign(Header{Typ: TypDPoP, JWK: raw}, c, key)
}

// ReplayCache remembers DPoP proofs (by key thumbprint and jti) until they expire.
// Implementations must never evict an entry before its expiry: when full they return
// an error with reason replay_cache_full.
type ReplayCache interface {
	// Insert atomically checks and records (jkt, jti) until exp. It returns an *Error
	// with reason dpop_replay if the pair is present and replay_cache_full if there is
	// no room.
	Insert(ctx context.Context, jkt, jti string, exp, now time.Time) error
}

// NonceChecker validates server-provided DPoP nonces (RFC 9449 §8). Optional.
type NonceChecker interface {
	// Valid reports whether nonce is currently acceptable.
	Valid(nonce string) bool
	// Current returns the nonce to send in a DPoP-Nonce header.
	Current() string
}

// DPoPVerifier applies the DPoP proof acceptance rule of DESIGN §5.1.
type DPoPVerifier struct {
	// Replay is consulted only after every other check passed.
	Replay ReplayCache
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Started is when the process started; proofs issued earlier are refused, so a
	// restart (which empties an in-memory cache) opens no replay window.
	Started time.Time
	// Nonce, when set, requires a valid `nonce` claim.
	Nonce NonceChecker
}

// DPoPCheck is what one request expects of its proof.
type DPoPCheck struct {
	// Values are all values of the DPoP header in the request.
	Values []string
	// Method is the request method; HTU the configured public base plus the request's
	// escaped path.
	Method, HTU string
	// AccessToken, when set, must be bound by `ath` (at a resource).
	AccessToken string
	// ExpectedJKT, when set, must equal the proof key's thumbprint (the token's cnf.jkt).
	ExpectedJKT string
	// KeyCheck, when set, is step 7 at the IDP: it decides whether the key is
	// acceptable and returns a typed error saying why not.
	KeyCheck func(jkt string, key crypto.PublicKey) error
}

// DPoPProof is a verified proof.
type DPoPProof struct {
	JKT    string
	JWK    *JWK
	Key    crypto.PublicKey
	Claims DPoPClaims
}

func dpopErr(reason Reason, format string, args ...any) *Error {
	return NewError(http.StatusUnauthorized, CodeInvalidDPoPProof, reason, format, args...)
}

// Verify checks a DPoP proof by DESIGN §5.1 steps 1–11, in that order, and only then
// checks and records (jkt, jti) in the replay cache. Errors are *Error values with the
// resource-server shape (401 invalid_dpop_proof) and the fine reasons of §5.7; the IDP
// maps them to its own shape.
func (v *DPoPVerifier) Verify(ctx context.Context, c DPoPCheck) (*DPoPProof, error) {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	// 1. exactly one DPoP header (RFC 9449 §4.3 check 1)
	if len(c.Values) == 0 {
		return nil, dpopErr(ReasonDPoPMissing, "no DPoP proof")
	}
	if len(c.Values) > 1 {
		return nil, dpopErr(ReasonDPoPInvalid, "more than one DPoP header")
	}
	// 2. a JWT of at most 8 KiB
	j, err := ParseJWS(c.Values[0])
	if err != nil {
		return nil, dpopErr(ReasonDPoPInvalid, "DPoP proof: %v", err)
	}
	// 3. typ dpop+jwt
	if !j.TypIs(TypDPoP) {
		return nil, dpopErr(ReasonDPoPInvalid, "DPoP proof typ is not dpop+jwt")
	}
	// 4-5. alg allowed and matching the jwk, which has public members only
	if j.Header.Alg != AlgEdDSA && j.Header.Alg != AlgEd25519 && j.Header.Alg != AlgES256 {
		return nil, dpopErr(ReasonDPoPInvalid, "DPoP proof alg %q not accepted", trunc(j.Header.Alg))
	}
	if len(j.Header.JWK) == 0 {
		return nil, dpopErr(ReasonDPoPInvalid, "DPoP proof has no jwk header")
	}
	jwk, pub, err := ParseJWK(j.Header.JWK)
	if err != nil {
		return nil, dpopErr(ReasonDPoPInvalid, "DPoP proof: %v", err)
	}
	// 6. signature (Verify also refuses an alg that does not match the key type)
	if err := j.Verify(pub); err != nil {
		return nil, dpopErr(ReasonDPoPInvalid, "DPoP proof: %v", err)
	}
	var claims DPoPClaims
	if err := j.Claims(&claims); err != nil {
		return nil, dpopErr(ReasonDPoPInvalid, "DPoP proof claims: %v", err)
	}
	jkt, err := jwk.Thumbprint()
	if err != nil {
		return nil, dpopErr(ReasonDPoPInvalid, "DPoP proof: %v", err)
	}
	// 7. key binding: at a resource ath and cnf.jkt; at the IDP the caller's check
	if c.AccessToken != "" && claims.ATH != ATH(c.AccessToken) {
		return nil, dpopErr(ReasonDPoPATHMismatch, "DPoP proof ath does not match the access token")
	}
	if c.ExpectedJKT != "" && jkt != c.ExpectedJKT {
		return nil, dpopErr(ReasonDPoPKeyMismatch, "DPoP proof key is not the key the token is bound to")
	}
	if c.KeyCheck != nil {
		if err := c.KeyCheck(jkt, pub); err != nil {
			return nil, err
		}
	}
	// 8. htm
	if claims.HTM != c.Method {
		return nil, dpopErr(ReasonDPoPHTMMismatch, "DPoP proof htm does not match the request method")
	}
	// 9. htu, after syntax- and scheme-based normalisation, without query and fragment
	want, err := NormalizeHTU(c.HTU)
	if err != nil {
		return nil, NewError(http.StatusInternalServerError, CodeServerError, ReasonDPoPInvalid, "server htu misconfigured")
	}
	got, err := NormalizeHTU(claims.HTU)
	if err != nil || got != want {
		return nil, dpopErr(ReasonDPoPHTUMismatch, "DPoP proof htu does not match the request URL")
	}
	// 10. iat window, and not before this process started
	iat := time.Unix(claims.IssuedAt, 0)
	if claims.IssuedAt == 0 || iat.Before(now.Add(-DPoPMaxAge)) || iat.After(now.Add(DPoPFutureLeeway)) {
		return nil, dpopErr(ReasonDPoPStale, "DPoP proof iat is outside the accepted window")
	}
	if !v.Started.IsZero() && claims.IssuedAt < v.Started.Unix() {
		return nil, dpopErr(ReasonDPoPStale, "DPoP proof was issued before this server started")
	}
	// 11. jti
	if claims.JTI == "" || len(claims.JTI) > MaxJTILength {
		return nil, dpopErr(ReasonDPoPInvalid, "DPoP proof jti must be 1..%d characters", MaxJTILength)
	}
	if v.Nonce != nil && !v.Nonce.Valid(claims.Nonce) {
		return nil, NewError(http.StatusUnauthorized, CodeUseDPoPNonce, ReasonDPoPNonce, "a fresh DPoP nonce is required")
	}
	// Only now: replay check and insert, atomically.
	if v.Replay == nil {
		return nil, NewError(http.StatusInternalServerError, CodeServerError, ReasonDPoPInvalid, "no replay cache configured")
	}
	if err := v.Replay.Insert(ctx, jkt, claims.JTI, iat.Add(DPoPReplayWindow), now); err != nil {
		return nil, err
	}
	return &DPoPProof{JKT: jkt, JWK: jwk, Key: pub, Claims: claims}, nil
}

func trunc(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// NormalizeHTU normalises an HTTP URI for `htu` comparison (RFC 9449 §4.3 check 9,
// RFC 3986 §6.2.2 and §6.2.3): scheme and host lower-cased, default port removed,
// percent-encodings upper-cased and unreserved characters decoded, dot segments
// removed, empty path as "/", query and fragment dropped.
func NormalizeHTU(s string) (string, error) {
	if len(s) > 4096 {
		return "", errors.New("htu too long")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	// Hostname, not Host: "http://:" and "http://:80" have a Host but no host.
	if (scheme != "http" && scheme != "https") || u.Hostname() == "" || u.User != nil {
		return "", errors.New("htu is not an absolute http(s) URL")
	}
	// Lower-case ASCII only (RFC 3986 §6.2.2.1): strings.ToLower would turn each invalid
	// UTF-8 byte into U+FFFD (distinct hosts colliding) and U+212A KELVIN SIGN into "k".
	// Hosts are DNS names (punycode for IDNs), IPv4 or IPv6 literals: anything else,
	// including IPv6 zone identifiers (link-local only, RFC 6874) and percent-decoded
	// delimiters, is refused rather than re-encoded, so the result is always a URI
	// that normalises to itself.
	host := asciiLower(u.Hostname())
	for i := 0; i < len(host); i++ {
		if c := host[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return "", errors.New("htu host has characters outside a DNS name or IP literal")
		}
	}
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	p, err := normalizePercent(u.EscapedPath())
	if err != nil {
		return "", err
	}
	p = removeDotSegments(p)
	if p == "" {
		p = "/"
	}
	return scheme + "://" + host + p, nil
}

// asciiLower lower-cases the ASCII letters of s and leaves every other byte alone.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func normalizePercent(p string) (string, error) {
	if !strings.Contains(p, "%") {
		return p, nil
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) {
			return "", errors.New("bad percent-encoding")
		}
		h, ok1 := unhex(p[i+1])
		l, ok2 := unhex(p[i+2])
		if !ok1 || !ok2 {
			return "", errors.New("bad percent-encoding")
		}
		if c := h<<4 | l; isUnreserved(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
		i += 2
	}
	return b.String(), nil
}

// removeDotSegments implements RFC 3986 §5.2.4 for an absolute path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "/")
}
