package resourceproxy

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// tokenErr is a step-1 failure: 401 invalid_token with reason.
func tokenErr(reason ajwt.Reason, format string, args ...any) *ajwt.Error {
	return ajwt.NewError(http.StatusUnauthorized, ajwt.CodeInvalidToken, reason, format, args...)
}

// errTokenMissing is "no credentials" (RFC 6750 §3.1: the challenge carries no error).
func errTokenMissing(scheme string) *ajwt.Error {
	return tokenErr(ajwt.ReasonTokenMissing, "no %s access token", scheme)
}

// authorization returns the token of the single Authorization header with the wanted
// scheme (compared case-insensitively, RFC 9110 §11.1). Two headers, or a Bearer token
// together with a DPoP header, are 400 invalid_request; another scheme counts as no
// credentials (token_missing).
func authorization(r *http.Request, scheme string) (string, *ajwt.Error) {
	vals := r.Header.Values("Authorization")
	if len(vals) > 1 {
		return "", ajwt.BadRequest(ajwt.ReasonInvalidRequest, "more than one Authorization header")
	}
	if len(vals) == 0 {
		return "", errTokenMissing(scheme)
	}
	s, tok, _ := strings.Cut(strings.TrimLeft(vals[0], " "), " ")
	if strings.EqualFold(s, "Bearer") && len(r.Header.Values("DPoP")) > 0 {
		// RFC 9449 §7.2: a DPoP proof next to a Bearer token is a malformed request.
		return "", ajwt.BadRequest(ajwt.ReasonInvalidRequest, "a Bearer token must not come with a DPoP proof")
	}
	if !strings.EqualFold(s, scheme) {
		return "", errTokenMissing(scheme)
	}
	tok = strings.Trim(tok, " ")
	if tok == "" || strings.ContainsAny(tok, " \t,") {
		return "", tokenErr(ajwt.ReasonTokenInvalid, "malformed %s credentials", scheme)
	}
	return tok, nil
}

// parseSigned parses and verifies a compact JWT issued by the IDP with the wanted typ:
// size, no crit (ParseJWS), typ, alg EdDSA, no key headers, known kid, signature.
func (p *Proxy) parseSigned(ctx context.Context, tok, typ string, v any) *ajwt.Error {
	j, err := ajwt.ParseJWS(tok)
	if err != nil {
		return tokenErr(ajwt.ReasonTokenInvalid, "token: %v", err)
	}
	if !j.TypIs(typ) {
		return tokenErr(ajwt.ReasonTokenInvalid, "token typ is not %s", typ)
	}
	if j.Header.Alg != ajwt.AlgEdDSA {
		return tokenErr(ajwt.ReasonTokenInvalid, "token alg is not EdDSA")
	}
	if j.HasKeyHeaders() {
		return tokenErr(ajwt.ReasonTokenInvalid, "token carries a key header (jwk, jku, x5u or x5c)")
	}
	if j.Header.Kid == "" {
		return tokenErr(ajwt.ReasonTokenInvalid, "token has no kid")
	}
	pub, ok := p.jwks.key(ctx, j.Header.Kid)
	if !ok {
		return tokenErr(ajwt.ReasonTokenInvalid, "token kid is not a key of the IDP")
	}
	if err := j.Verify(pub); err != nil {
		return tokenErr(ajwt.ReasonTokenInvalid, "token: %v", err)
	}
	if err := j.Claims(v); err != nil {
		return tokenErr(ajwt.ReasonTokenInvalid, "token claims: %v", err)
	}
	return nil
}

// verifiedCacheSize bounds the cache of verified tokens.
const verifiedCacheSize = 10_000

// tokenCache remembers tokens whose signature verified, with their decoded claims, so
// an agent's repeated calls with one token cost one signature check. A token string
// that verified once always verifies; every time-, audience- and revocation-dependent
// check still runs on each request. The claims stored are never modified.
type tokenCache struct {
	mu      sync.Mutex
	entries map[string]cachedToken
}

type cachedToken struct {
	claims any
	until  int64 // unix seconds after which the entry is useless (exp + leeway)
}

func (c *tokenCache) get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	return e.claims, ok
}

func (c *tokenCache) put(key string, claims any, until, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]cachedToken{}
	}
	if len(c.entries) >= verifiedCacheSize {
		for k, e := range c.entries {
			if e.until < now {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= verifiedCacheSize {
			clear(c.entries)
		}
	}
	c.entries[key] = cachedToken{claims: claims, until: until}
}

// verified parses and verifies tok as a T (parseSigned), through the token cache.
func verified[T any](ctx context.Context, p *Proxy, tok, typ string, rc func(*T) *ajwt.RegisteredClaims) (*T, *ajwt.Error) {
	key := typ + "\x00" + tok
	if v, ok := p.tokens.get(key); ok {
		if c, ok := v.(*T); ok {
			return c, nil
		}
	}
	c := new(T)
	if aerr := p.parseSigned(ctx, tok, typ, c); aerr != nil {
		return nil, aerr
	}
	now := p.cfg.Now().Unix()
	if exp := rc(c).Expiry; exp > now {
		p.tokens.put(key, c, exp+int64(p.cfg.Leeway/time.Second), now)
	}
	return c, nil
}

// checkRegistered checks iss, aud (exactly this route's resource), exp, nbf and jti.
func (p *Proxy) checkRegistered(rc *ajwt.RegisteredClaims, resource string, now time.Time) *ajwt.Error {
	iss := p.currentIssuer()
	if iss == "" {
		return notReady()
	}
	if rc.Issuer != iss {
		return tokenErr(ajwt.ReasonTokenInvalid, "token iss is not the IDP")
	}
	if len(rc.Audience) != 1 || rc.Audience[0] != resource {
		return tokenErr(ajwt.ReasonAudienceMismatch, "token aud is not %s", resource)
	}
	if rc.Expiry == 0 || rc.JTI == "" {
		return tokenErr(ajwt.ReasonTokenInvalid, "token lacks exp or jti")
	}
	leeway := int64(p.cfg.Leeway / time.Second)
	if now.Unix() > rc.Expiry+leeway {
		return tokenErr(ajwt.ReasonTokenExpired, "token expired")
	}
	if rc.NotBefore != 0 && rc.NotBefore > now.Unix()+leeway {
		return tokenErr(ajwt.ReasonTokenExpired, "token is not yet valid")
	}
	return nil
}

// notReady is the answer before the proxy knows the IDP's issuer and keys.
func notReady() *ajwt.Error {
	e := ajwt.NewError(http.StatusServiceUnavailable, ajwt.CodeTemporarilyUnavail, ajwt.ReasonRevocationStale, "the proxy has not synchronised with the IDP yet")
	e.RetryAfter = 1
	return e
}

// intentToken is step 1 in A-JWT mode: a DPoP-scheme `ajwt+jwt` intent token.
func (p *Proxy) intentToken(ctx context.Context, r *http.Request, rt *route, now time.Time) (string, *ajwt.IntentClaims, *ajwt.Error) {
	tok, aerr := authorization(r, "DPoP")
	if aerr != nil {
		return "", nil, aerr
	}
	if p.currentIssuer() == "" {
		return "", nil, notReady()
	}
	c, aerr := verified(ctx, p, tok, ajwt.TypIntent, func(c *ajwt.IntentClaims) *ajwt.RegisteredClaims { return &c.RegisteredClaims })
	if aerr != nil {
		return "", nil, aerr
	}
	if aerr := p.checkRegistered(&c.RegisteredClaims, rt.resource, now); aerr != nil {
		return "", c, aerr
	}
	if c.Cnf == nil || c.Cnf.JKT == "" || c.Intent == nil || c.AgentProof == nil || !strings.HasPrefix(c.Subject, "agent:") {
		return "", c, tokenErr(ajwt.ReasonTokenInvalid, "token lacks cnf, intent or agent_proof")
	}
	return tok, c, nil
}

// bearerToken is step 1 in OAuth (baseline) mode: a Bearer `at+jwt` access token that
// is not DPoP-bound (RFC 9449 §7.2).
func (p *Proxy) bearerToken(ctx context.Context, r *http.Request, rt *route, now time.Time) (*ajwt.AccessClaims, *ajwt.Error) {
	tok, aerr := authorization(r, "Bearer")
	if aerr != nil {
		return nil, aerr
	}
	if p.currentIssuer() == "" {
		return nil, notReady()
	}
	c, aerr := verified(ctx, p, tok, ajwt.TypAccess, func(c *ajwt.AccessClaims) *ajwt.RegisteredClaims { return &c.RegisteredClaims })
	if aerr != nil {
		return nil, aerr
	}
	if c.Cnf != nil {
		return c, tokenErr(ajwt.ReasonTokenInvalid, "a DPoP-bound token is not accepted as a bearer token")
	}
	if aerr := p.checkRegistered(&c.RegisteredClaims, rt.resource, now); aerr != nil {
		return c, aerr
	}
	return c, nil
}

// adminToken authorises reads of the proxy's own audit: a Bearer admin token issued by
// the IDP (`at+jwt`, aud = the issuer, scope ajwt:admin), verified with the same JWKS
// as every other token. Audit events name agents, executions and paths, so they are not
// public.
func (p *Proxy) adminToken(ctx context.Context, r *http.Request) *ajwt.Error {
	tok, aerr := authorization(r, "Bearer")
	if aerr != nil {
		return aerr
	}
	iss := p.currentIssuer()
	if iss == "" {
		return notReady()
	}
	c, aerr := verified(ctx, p, tok, ajwt.TypAccess, func(c *ajwt.AccessClaims) *ajwt.RegisteredClaims { return &c.RegisteredClaims })
	if aerr != nil {
		return aerr
	}
	if aerr := p.checkRegistered(&c.RegisteredClaims, iss, p.cfg.Now()); aerr != nil {
		return aerr
	}
	if !slices.Contains(ajwt.ParseScope(c.Scope), ajwt.ScopeAdmin) {
		return ajwt.Forbidden(ajwt.ReasonForbidden, "the audit needs an admin token")
	}
	return nil
}
