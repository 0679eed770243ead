package idp

import (
	"net/http"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// TokenHandler handles one grant type at the token endpoint (one handler per grant, as
// ory/fosite does).
type TokenHandler interface {
	// CanHandle reports whether the handler serves this grant_type.
	CanHandle(grantType string) bool
	// Handle checks the request and returns the token response.
	Handle(c echo.Context, cl *Client, f form) (*TokenResponse, error)
}

// TokenResponse is the RFC 6749 §5.1 success response.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// handleToken is POST /oauth2/token: form parsing, client authentication, dispatch.
func (s *Server) handleToken(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
	f, err := readForm(c)
	if err != nil {
		return err
	}
	cl, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if err := f.require("grant_type"); err != nil {
		return err
	}
	for _, h := range s.grants {
		if h.CanHandle(f["grant_type"]) {
			resp, err := h.Handle(c, cl, f)
			if err != nil {
				return err
			}
			return writeJSON(c, http.StatusOK, resp)
		}
	}
	return ajwt.NewError(http.StatusBadRequest, ajwt.CodeUnsupportedGrantType, ajwt.ReasonInvalidRequest, "unsupported grant_type")
}

// handleDiscovery is GET /.well-known/oauth-authorization-server (RFC 8414).
func (s *Server) handleDiscovery(c echo.Context) error {
	iss := s.cfg.Issuer
	basic := []string{"client_secret_basic"}
	return writeJSON(c, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"token_endpoint":                        iss + "/oauth2/token",
		"jwks_uri":                              iss + "/.well-known/jwks.json",
		"introspection_endpoint":                iss + "/oauth2/introspect",
		"revocation_endpoint":                   iss + "/oauth2/revoke",
		"response_types_supported":              []string{},
		"grant_types_supported":                 []string{GrantAgentChecksum, GrantClientCredentials},
		"token_endpoint_auth_methods_supported": basic,
		"introspection_endpoint_auth_methods_supported": basic,
		"revocation_endpoint_auth_methods_supported":    basic,
		"scopes_supported":                    []string{ajwt.ScopeRepoRead, ajwt.ScopeRepoWrite, ajwt.ScopeVulnsRead, ajwt.ScopeAdmin},
		"dpop_signing_alg_values_supported":   ajwt.DPoPAlgs(),
		"agent_registration_endpoint":         iss + "/v1/agents",
		"workflow_registration_endpoint":      iss + "/v1/workflows",
		"execution_endpoint":                  iss + "/v1/executions",
		"revocation_feed_endpoint":            iss + "/v1/revocations",
		"audit_endpoint":                      iss + "/v1/audit",
		"agent_checksum_algorithms_supported": []string{"sha256"},
	})
}

// handleJWKS is GET /.well-known/jwks.json: the active key, the next key (published
// before first use) and retired keys until their tokens expire.
func (s *Server) handleJWKS(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=60")
	return c.Blob(http.StatusOK, "application/jwk-set+json", s.keys.get().jwks)
}

// handleRotateKeys is POST /v1/keys/rotate (admin).
func (s *Server) handleRotateKeys(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin); err != nil {
		return err
	}
	keep := s.cfg.ExecutionTTL + s.cfg.Leeway
	if s.cfg.TokenTTL > s.cfg.ExecutionTTL {
		keep = s.cfg.TokenTTL + s.cfg.Leeway
	}
	var kid string
	err := s.update(c, func(w *wtx) error {
		var err error
		if kid, err = rotateKeys(w, s.now(), keep); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	if err := s.keys.load(c.Request().Context(), s.store); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]string{"active_kid": kid})
}
