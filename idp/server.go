// Package idp is the A-JWT authorization server: agent, workflow and shim registries,
// executions with AS-side step state, instance enrollment, the token endpoint with the
// agent_checksum and client_credentials grants, delegation verification, JWKS,
// discovery, introspection, revocation and the audit hash chain (DESIGN §5.3).
package idp

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// MaxBodyBytes is the largest request body any IDP endpoint reads (DESIGN: 64 KiB).
const MaxBodyBytes = 64 << 10

// ShimAttestor is the plug-in point for an out-of-process attestation of the enrolling
// shim build (DESIGN §5.2). The default accepts the declared checksum as declared.
type ShimAttestor interface {
	// Attest returns an error if the declared shim checksum cannot be confirmed.
	Attest(ctx context.Context, declared string, r *http.Request) error
}

// Config configures a Server.
type Config struct {
	// Issuer is the public base URL of the IDP; it is the `iss` of every token and the
	// base of every `htu` the IDP checks.
	Issuer string
	// Store holds all state.
	Store Store
	// Clients, when not nil, replaces the stored client set at start.
	Clients *ClientsFile
	// TokenTTL is the intent-token lifetime (default 60 s).
	TokenTTL time.Duration
	// ExecutionTTL is the lifetime of an execution's root delegation (default 1 h).
	ExecutionTTL time.Duration
	// AdminTokenTTL is the admin token lifetime (default and maximum 5 min).
	AdminTokenTTL time.Duration
	// Leeway is the clock leeway (default 5 s).
	Leeway time.Duration
	// Baseline allows client_credentials tokens for the resources (the OAuth baseline).
	Baseline bool
	// ReplayCacheSize bounds the DPoP replay cache (default 100 000 proofs).
	ReplayCacheSize int
	// Attestor optionally confirms shim builds at enrollment.
	Attestor ShimAttestor
	// Logger receives operational logs (never secrets); nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the IDP. Create it with New and serve Handler().
type Server struct {
	cfg     Config
	store   Store
	keys    keyring
	clients map[string]*Client
	secrets secretCache
	dpop    *ajwt.DPoPVerifier
	echo    *echo.Echo
	broker  *broker
	log     *slog.Logger
	grants  []TokenHandler
	// workflows caches immutable workflow versions by key.
	workflows sync.Map
}

// New opens the server over cfg.Store: it applies the clients file, creates signing
// keys on first start and loads them.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Issuer == "" || cfg.Store == nil {
		return nil, errors.New("idp: issuer and store are required")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 60 * time.Second
	}
	if cfg.ExecutionTTL <= 0 {
		cfg.ExecutionTTL = time.Hour
	}
	if cfg.AdminTokenTTL <= 0 || cfg.AdminTokenTTL > 5*time.Minute {
		cfg.AdminTokenTTL = 5 * time.Minute
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.ReplayCacheSize <= 0 {
		cfg.ReplayCacheSize = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, broker: newBroker()}
	now := cfg.Now()
	s.dpop = &ajwt.DPoPVerifier{Replay: ajwt.NewMemoryReplayCache(cfg.ReplayCacheSize), Now: cfg.Now, Started: now}
	if err := s.store.Update(ctx, func(tx Tx) error {
		if cfg.Clients != nil {
			if err := storeClients(tx, cfg.Clients); err != nil {
				return err
			}
		}
		return ensureKeys(tx, now)
	}); err != nil {
		return nil, fmt.Errorf("idp: init: %w", err)
	}
	if err := s.keys.load(ctx, s.store); err != nil {
		return nil, fmt.Errorf("idp: keys: %w", err)
	}
	if err := s.loadClients(ctx); err != nil {
		return nil, fmt.Errorf("idp: clients: %w", err)
	}
	s.grants = []TokenHandler{&ClientCredentialsHandler{s: s}, &AgentChecksumHandler{s: s}}
	s.echo = s.routes()
	return s, nil
}

// HasClients reports whether st already holds a client set (so a restart without
// --clients keeps the stored one).
func HasClients(ctx context.Context, st Store) (bool, error) {
	var n int
	err := st.View(ctx, func(tx Tx) error {
		v, err := tx.List(tblClients, "")
		n = len(v)
		return err
	})
	return n > 0, err
}

func storeClients(tx Tx, cf *ClientsFile) error {
	if err := cf.Validate(); err != nil {
		return err
	}
	old, err := tx.List(tblClients, "")
	if err != nil {
		return err
	}
	for _, b := range old {
		var c Client
		if err := json.Unmarshal(b, &c); err != nil {
			return err
		}
		if err := tx.Delete(tblClients, c.ClientID); err != nil {
			return err
		}
	}
	for _, cc := range cf.Clients {
		h, err := HashSecret(cc.ClientSecret)
		if err != nil {
			return err
		}
		c := Client{ClientID: cc.ClientID, SecretHash: h, Role: cc.Role, AllowedParams: cc.AllowedParams}
		if err := putJSON(tx, tblClients, c.ClientID, &c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) loadClients(ctx context.Context) error {
	var cs []*Client
	if err := s.store.View(ctx, func(tx Tx) error {
		var err error
		cs, err = listJSON[Client](tx, tblClients, "")
		return err
	}); err != nil {
		return err
	}
	s.clients = make(map[string]*Client, len(cs))
	for _, c := range cs {
		s.clients[c.ClientID] = c
	}
	return nil
}

// Handler returns the HTTP handler of the IDP.
func (s *Server) Handler() http.Handler { return s.echo }

// Issuer returns the configured issuer URL.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// PublicKey returns the public key for kid (for in-process verification in tests).
func (s *Server) PublicKey(kid string) (crypto.PublicKey, bool) {
	k, ok := s.keys.get().byKID[kid]
	if !ok {
		return nil, false
	}
	return k.pub, true
}

func (s *Server) now() time.Time { return s.cfg.Now() }

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.auditContext)

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/.well-known/oauth-authorization-server", s.handleDiscovery)
	e.GET("/.well-known/jwks.json", s.handleJWKS)

	e.POST("/oauth2/token", s.handleToken)
	e.POST("/oauth2/introspect", s.handleIntrospect)
	e.POST("/oauth2/revoke", s.handleRevoke)

	e.POST("/v1/agents", s.handleRegisterAgent)
	e.GET("/v1/agents", s.handleListAgents)
	e.GET("/v1/agents/:id", s.handleGetAgent)
	e.PATCH("/v1/agents/:id", s.handlePatchAgent)
	e.POST("/v1/agents/:id/revoke", s.handleRevokeAgent)
	e.POST("/v1/agents/:id/instances", s.handleEnroll)
	e.POST("/v1/agents/:id/instances/:iid/revoke", s.handleRevokeInstance)
	e.POST("/v1/shims", s.handleAllowShim)
	e.GET("/v1/shims", s.handleListShims)
	e.POST("/v1/workflows", s.handleRegisterWorkflow)
	e.GET("/v1/workflows", s.handleListWorkflows)
	e.GET("/v1/workflows/:id", s.handleGetWorkflow)
	e.POST("/v1/executions", s.handleStartExecution)
	e.GET("/v1/executions", s.handleListExecutions)
	e.GET("/v1/executions/:id", s.handleGetExecution)
	e.POST("/v1/executions/:id/steps/:step/approve", s.handleApprove)
	e.POST("/v1/executions/:id/steps/:step/complete", s.handleComplete)
	e.POST("/v1/executions/:id/close", s.handleClose)
	e.POST("/v1/keys/rotate", s.handleRotateKeys)

	e.GET("/v1/revocations", s.handleRevocations)
	e.GET("/v1/audit", s.handleAudit)
	e.GET("/v1/audit/head", s.handleAuditHead)
	e.GET("/v1/audit/stream", s.handleAuditStream)
	return e
}

// errorHandler renders every error as `{"error","reason","error_description"}` and
// audits refusals.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	var ae *ajwt.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			ae = ajwt.NotFound("no such endpoint")
		case http.StatusMethodNotAllowed:
			ae = ajwt.NewError(http.StatusMethodNotAllowed, ajwt.CodeInvalidRequest, ajwt.ReasonInvalidRequest, "method not allowed")
		default:
			ae = ajwt.NewError(he.Code, ajwt.CodeInvalidRequest, ajwt.ReasonInvalidRequest, "%s", http.StatusText(he.Code))
		}
	default:
		s.log.ErrorContext(c.Request().Context(), "internal error", "path", c.Request().URL.Path, "err", err)
		ae = ajwt.AsError(err)
	}
	h := c.Response().Header()
	if ae.RetryAfter > 0 {
		h.Set("Retry-After", fmt.Sprint(ae.RetryAfter))
	}
	if ae.Code == ajwt.CodeInvalidClient && c.Get(ctxBasicUsed) == true {
		h.Set("WWW-Authenticate", `Basic realm="ajwt"`)
	}
	if ae.Code == ajwt.CodeUseDPoPNonce && s.dpop.Nonce != nil {
		h.Set("DPoP-Nonce", s.dpop.Nonce.Current())
	}
	if strings.HasPrefix(c.Path(), "/oauth2/") {
		h.Set("Cache-Control", "no-store")
	}
	if ae.Status != http.StatusNotFound || c.Path() != "" {
		s.auditDeny(c, ae)
	}
	_ = c.JSON(ae.Status, ae)
}

// readBody reads at most MaxBodyBytes; more is 413 body_too_large.
func readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > MaxBodyBytes {
		return nil, errBodyTooLarge()
	}
	b, err := readAllLimited(r.Body, MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func errBodyTooLarge() *ajwt.Error {
	return ajwt.NewError(http.StatusRequestEntityTooLarge, ajwt.CodeInvalidRequest, ajwt.ReasonBodyTooLarge, "request body exceeds %d bytes", MaxBodyBytes)
}

// decodeJSON reads a strict JSON body (valid UTF-8, no duplicate or unknown members,
// no trailing data) into v. An empty body decodes as {} when allowEmpty.
func decodeJSON(c echo.Context, v any, allowEmpty bool) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if allowEmpty {
			return nil
		}
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "request body is empty")
	}
	ct := c.Request().Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "Content-Type must be application/json")
	}
	if err := ajwt.DecodeStrict(b, v); err != nil {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "malformed JSON body: %v", err)
	}
	return nil
}

func writeJSON(c echo.Context, status int, v any) error { return c.JSON(status, v) }

// rfc3339 formats a time as an RFC 3339 UTC string, "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
