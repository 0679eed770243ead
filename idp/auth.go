package idp

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

const (
	ctxBasicUsed = "ajwt.basic"
	ctxClient    = "ajwt.client"
)

func errInvalidClient(format string, args ...any) *ajwt.Error {
	return ajwt.NewError(http.StatusUnauthorized, ajwt.CodeInvalidClient, ajwt.ReasonUnknownClient, format, args...)
}

func readAllLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "cannot read request body")
	}
	if int64(len(b)) > limit {
		return nil, errBodyTooLarge()
	}
	return b, nil
}

// authenticate identifies the calling client: HTTP Basic (client_secret_basic, with
// client_id and secret form-urldecoded as RFC 6749 §2.3.1 says) or, for the admin
// client, a Bearer admin token. Exactly one Authorization header is accepted.
func (s *Server) authenticate(c echo.Context) (*Client, error) {
	if cl, ok := c.Get(ctxClient).(*Client); ok {
		return cl, nil
	}
	vals := c.Request().Header.Values("Authorization")
	if len(vals) == 0 {
		return nil, errInvalidClient("client authentication required")
	}
	if len(vals) > 1 {
		return nil, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "more than one Authorization header")
	}
	scheme, cred, _ := strings.Cut(vals[0], " ")
	var cl *Client
	var err error
	switch {
	case strings.EqualFold(scheme, "Basic"):
		c.Set(ctxBasicUsed, true)
		cl, err = s.authBasic(strings.TrimSpace(cred))
	case strings.EqualFold(scheme, "Bearer"):
		cl, err = s.authAdminToken(c.Request().Context(), strings.TrimSpace(cred))
	default:
		err = errInvalidClient("unsupported authentication scheme")
	}
	if err != nil {
		return nil, err
	}
	c.Set(ctxClient, cl)
	return cl, nil
}

func (s *Server) authBasic(cred string) (*Client, error) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return nil, errInvalidClient("malformed Basic credentials")
	}
	id, secret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, errInvalidClient("malformed Basic credentials")
	}
	id, err1 := url.QueryUnescape(id)
	secret, err2 := url.QueryUnescape(secret)
	if err1 != nil || err2 != nil {
		return nil, errInvalidClient("malformed Basic credentials")
	}
	cl, ok := s.clients[id]
	if !ok || !s.secrets.verify(cl, secret) {
		return nil, errInvalidClient("client authentication failed")
	}
	return cl, nil
}

// authAdminToken accepts an admin access token: typ at+jwt, signed by us, aud = the
// issuer, scope ajwt:admin, not expired, and the client's role still admin.
func (s *Server) authAdminToken(ctx context.Context, tok string) (*Client, error) {
	j, err := s.keys.verify(tok, ajwt.TypAccess)
	if err != nil {
		return nil, errInvalidClient("invalid admin token")
	}
	var cl ajwt.AccessClaims
	if err := j.Claims(&cl); err != nil {
		return nil, errInvalidClient("invalid admin token")
	}
	now := s.now().Unix()
	leeway := int64(s.cfg.Leeway.Seconds())
	if cl.Issuer != s.cfg.Issuer || !cl.Audience.Contains(s.cfg.Issuer) || !hasScope(cl.Scope, ajwt.ScopeAdmin) ||
		cl.Expiry+leeway < now || cl.NotBefore-leeway > now {
		return nil, errInvalidClient("invalid or expired admin token")
	}
	c, ok := s.clients[cl.ClientID]
	if !ok || c.Role != RoleAdmin {
		return nil, errInvalidClient("admin token's client is not an admin")
	}
	if s.tokenRevoked(ctx, cl.JTI) {
		return nil, errInvalidClient("admin token revoked")
	}
	return c, nil
}

func hasScope(scope, want string) bool {
	for _, s := range strings.Fields(scope) {
		if s == want {
			return true
		}
	}
	return false
}

// requireRole authenticates and checks the client's role.
func (s *Server) requireRole(c echo.Context, roles ...string) (*Client, error) {
	cl, err := s.authenticate(c)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		if cl.Role == r {
			return cl, nil
		}
	}
	return nil, ajwt.Forbidden(ajwt.ReasonForbidden, "client role %q may not call this endpoint", cl.Role)
}

// form is a parsed application/x-www-form-urlencoded body where every parameter
// appears at most once (RFC 6749 §3.2: parameters MUST NOT be included more than once).
type form map[string]string

// readForm parses the request body as a form; query parameters are ignored.
func readForm(c echo.Context) (form, error) {
	ct := c.Request().Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/x-www-form-urlencoded") {
		return nil, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "Content-Type must be application/x-www-form-urlencoded")
	}
	b, err := readBody(c)
	if err != nil {
		return nil, err
	}
	return parseForm(string(b))
}

// parseForm parses a urlencoded form, refusing repeated parameters and malformed
// escapes.
func parseForm(body string) (form, error) {
	vals, err := url.ParseQuery(body)
	if err != nil {
		return nil, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "malformed form body")
	}
	f := make(form, len(vals))
	for k, v := range vals {
		if len(v) != 1 {
			return nil, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "parameter %q is repeated", trunc(k))
		}
		f[k] = v[0]
	}
	return f, nil
}

// require returns the non-empty values of names or a 400 naming the first missing one.
func (f form) require(names ...string) error {
	for _, n := range names {
		if f[n] == "" {
			return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "missing parameter %q", n)
		}
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
