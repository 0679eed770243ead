package idp

import (
	"net/http"
	"slices"
	"strings"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// Grant type names.
const (
	GrantClientCredentials = "client_credentials"
	GrantAgentChecksum     = "agent_checksum"
)

// ClientCredentialsHandler issues RFC 9068 access tokens: the admin token (scope
// ajwt:admin, aud = the issuer) and, only with --baseline, plain bearer tokens for the
// resources (the OAuth baseline of the threat scenarios).
type ClientCredentialsHandler struct{ s *Server }

var _ TokenHandler = (*ClientCredentialsHandler)(nil)

// CanHandle implements TokenHandler.
func (h *ClientCredentialsHandler) CanHandle(gt string) bool { return gt == GrantClientCredentials }

// Handle implements TokenHandler.
func (h *ClientCredentialsHandler) Handle(c echo.Context, cl *Client, f form) (*TokenResponse, error) {
	s := h.s
	scopes := ajwt.ParseScope(f["scope"])
	if len(scopes) == 0 {
		return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidScope, ajwt.ReasonInvalidRequest, "scope is required")
	}
	now := s.now()
	var aud string
	ttl := s.cfg.TokenTTL
	if slices.Contains(scopes, ajwt.ScopeAdmin) {
		if len(scopes) != 1 {
			return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidScope, ajwt.ReasonInvalidRequest, "ajwt:admin is never combined with other scopes")
		}
		if cl.Role != RoleAdmin {
			return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeUnauthorizedClient, ajwt.ReasonForbidden, "only the admin client may obtain ajwt:admin")
		}
		if f["resource"] != "" && f["resource"] != s.cfg.Issuer {
			return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidTarget, ajwt.ReasonResourceMismatch, "the admin token's audience is the issuer")
		}
		aud, ttl = s.cfg.Issuer, s.cfg.AdminTokenTTL
	} else {
		if !s.cfg.Baseline {
			return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeUnauthorizedClient, ajwt.ReasonForbidden, "resource tokens by client_credentials are disabled (the IDP runs without --baseline)")
		}
		if cl.Role != RoleApp {
			return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeUnauthorizedClient, ajwt.ReasonForbidden, "only app clients obtain resource tokens")
		}
		aud = f["resource"]
		if aud == "" {
			return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidTarget, ajwt.ReasonInvalidRequest, "resource scopes need a resource parameter (RFC 8707)")
		}
		if aud != ajwt.ResourceGitHub && aud != ajwt.ResourceOSV {
			return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidTarget, ajwt.ReasonResourceMismatch, "unknown resource")
		}
		for _, sc := range scopes {
			if !ajwt.ValidResourceScope(aud, sc) {
				return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidScope, ajwt.ReasonInvalidRequest, "scope %q is not valid for %s", trunc(sc), aud)
			}
		}
	}
	claims := ajwt.AccessClaims{
		RegisteredClaims: ajwt.RegisteredClaims{Issuer: s.cfg.Issuer, Subject: cl.ClientID, Audience: ajwt.Audience{aud},
			IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(ttl).Unix(), JTI: ajwt.NewJTI()},
		ClientID: cl.ClientID, Scope: strings.Join(scopes, " "),
	}
	tok, err := s.keys.sign(ajwt.TypAccess, claims)
	if err != nil {
		return nil, err
	}
	info(c).jti = claims.JTI
	if err := s.update(c, func(w *wtx) error { return w.allow("") }); err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(ttl.Seconds()), Scope: claims.Scope}, nil
}
