// Package resourceproxy is the A-JWT resource server of DESIGN §5.6: an Echo server in
// front of the GitHub and OSV APIs that validates every request (path hygiene, intent
// token, DPoP proof, revocation feed, scope and operations) and only then forwards it
// with the proxy's own upstream credential. In Mode "oauth" it is the plain OAuth
// bearer-token baseline of the threat scenarios.
package resourceproxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// Modes of a proxy.
const (
	// ModeAJWT validates A-JWT intent tokens with DPoP (the default).
	ModeAJWT = "ajwt"
	// ModeOAuth is the baseline: plain RFC 9068 bearer tokens, scope only.
	ModeOAuth = "oauth"
)

// ResourcePrefix is the URN prefix of every resource; the proxy serves the resource
// ResourcePrefix+R under the path prefix "/R/".
const ResourcePrefix = "urn:ajwt:resource:"

// Upstream is where one resource's requests are forwarded.
type Upstream struct {
	// URL is the upstream base URL (e.g. https://api.github.com); the request path
	// after the resource prefix is appended to its path.
	URL string
	// Credential, when set, is the value of the Authorization header sent upstream
	// (e.g. "token XYZ" or "Bearer XYZ").
	Credential string
}

// Config configures a Proxy.
type Config struct {
	// Mode is ModeAJWT (default) or ModeOAuth.
	Mode string
	// PublicURL is the proxy's public base URL: the base of every DPoP `htu` and of
	// rewritten Location/Link headers.
	PublicURL string
	// IDPURL is the base URL the proxy uses to reach the IDP (metadata, JWKS, feed).
	IDPURL string
	// Issuer is the expected token `iss`; empty means the `issuer` of the IDP's
	// metadata. When set it must equal the metadata's issuer.
	Issuer string
	// ClientID and ClientSecret authenticate the proxy (a resource client) at the
	// revocation feed with client_secret_basic.
	ClientID, ClientSecret string
	// Upstreams maps a resource URN (e.g. urn:ajwt:resource:github) to its upstream.
	Upstreams map[string]Upstream
	// MaxRPS is the peak DPoP proofs per second the replay cache is sized for
	// (capacity MaxRPS × 65 s); default 1000.
	MaxRPS int
	// Leeway is the clock leeway for exp/nbf (default 5 s).
	Leeway time.Duration
	// BodyLimit is the largest request body read and forwarded (default 1 MiB).
	BodyLimit int64
	// RequireNonce turns on DPoP server nonces (RFC 9449 §8).
	RequireNonce bool
	// FeedInterval is the revocation feed polling interval (default 500 ms).
	FeedInterval time.Duration
	// HTTPClient is used for calls to the IDP; nil means a client with a 5 s timeout.
	HTTPClient *http.Client
	// Transport is used for calls to the upstreams; nil means a transport with
	// connection, TLS and response-header timeouts.
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs (never tokens or secrets); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Freshness limits of the revocation view and the JWKS refresh rate (DESIGN §5.6).
const (
	// MaxFeedAge is how old the last successful feed poll may be for tokens to be
	// accepted.
	MaxFeedAge = 2 * time.Second
	// JWKSRefreshInterval is the minimum time between two JWKS fetches triggered by
	// an unknown kid.
	JWKSRefreshInterval = 10 * time.Second
	// jwksMaxAge is how often the JWKS is re-read in the background.
	jwksMaxAge = 5 * time.Minute
)

// Proxy is a resource proxy. Create it with New, serve Handler() and run Run in the
// background.
type Proxy struct {
	cfg       Config
	log       *slog.Logger
	routes    map[string]*route // by resource name (the URN's last segment)
	dpop      *ajwt.DPoPVerifier
	replay    *ajwt.MemoryReplayCache
	nonce     *ajwt.WindowNonce
	jwks      *jwksCache
	tokens    tokenCache
	feed      *revocationView
	audit     *auditLog
	metrics   *metrics
	echo      *echo.Echo
	issuer    atomic.Pointer[string]
	transport http.RoundTripper
}

// route is one served resource.
type route struct {
	name     string // "github"
	resource string // "urn:ajwt:resource:github"
	upstream *url.URL
	cred     string
	forward  http.Handler
}

// New validates cfg and builds a Proxy. It does not contact the IDP: Run does.
func New(ctx context.Context, cfg Config) (*Proxy, error) {
	_ = ctx
	if cfg.Mode == "" {
		cfg.Mode = ModeAJWT
	}
	if cfg.Mode != ModeAJWT && cfg.Mode != ModeOAuth {
		return nil, fmt.Errorf("resourceproxy: mode must be %q or %q, not %q", ModeAJWT, ModeOAuth, cfg.Mode)
	}
	pub, err := url.Parse(strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil || (pub.Scheme != "http" && pub.Scheme != "https") || pub.Host == "" || pub.RawQuery != "" || pub.Fragment != "" {
		return nil, fmt.Errorf("resourceproxy: public URL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	cfg.PublicURL = pub.String()
	if _, err := ajwt.NormalizeHTU(cfg.PublicURL + "/x"); err != nil {
		return nil, fmt.Errorf("resourceproxy: public URL: %w", err)
	}
	idpURL, err := url.Parse(strings.TrimRight(cfg.IDPURL, "/"))
	if err != nil || (idpURL.Scheme != "http" && idpURL.Scheme != "https") || idpURL.Host == "" {
		return nil, fmt.Errorf("resourceproxy: IDP URL %q is not an absolute http(s) URL", cfg.IDPURL)
	}
	cfg.IDPURL = idpURL.String()
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.Mode == ModeAJWT && (cfg.ClientID == "" || cfg.ClientSecret == "") {
		return nil, errors.New("resourceproxy: client id and secret are required for the revocation feed")
	}
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("resourceproxy: no upstreams configured")
	}
	if cfg.MaxRPS <= 0 {
		cfg.MaxRPS = 1000
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.FeedInterval <= 0 {
		cfg.FeedInterval = 500 * time.Millisecond
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, routes: map[string]*route{}}
	p.transport = cfg.Transport
	if p.transport == nil {
		p.transport = newUpstreamTransport()
	}
	for urn, up := range cfg.Upstreams {
		name, ok := strings.CutPrefix(urn, ResourcePrefix)
		if !ok || name == "" || strings.ContainsAny(name, "/:%\\") || name == "." || name == ".." {
			return nil, fmt.Errorf("resourceproxy: resource %q is not %s<name>", urn, ResourcePrefix)
		}
		if name == "healthz" || name == "metrics" || name == "v1" {
			return nil, fmt.Errorf("resourceproxy: resource name %q is reserved for the proxy's own endpoints", name)
		}
		u, err := url.Parse(strings.TrimRight(up.URL, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("resourceproxy: upstream URL for %s is not an absolute http(s) URL", urn)
		}
		rt := &route{name: name, resource: urn, upstream: u, cred: up.Credential}
		rt.forward = p.newForwarder(rt)
		p.routes[name] = rt
	}
	if cfg.Issuer != "" {
		iss := cfg.Issuer
		p.issuer.Store(&iss)
	}
	p.replay = ajwt.NewMemoryReplayCache(cfg.MaxRPS * int(ajwt.DPoPReplayWindow/time.Second))
	p.dpop = &ajwt.DPoPVerifier{Replay: p.replay, Now: cfg.Now, Started: cfg.Now()}
	if cfg.RequireNonce {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go ≥ 1.24)
		p.nonce = &ajwt.WindowNonce{Secret: secret, Window: time.Minute, Now: cfg.Now}
		p.dpop.Nonce = p.nonce
	}
	p.jwks = newJWKSCache(cfg.HTTPClient, cfg.IDPURL+"/.well-known/jwks.json", cfg.Now)
	p.feed = newRevocationView(cfg.HTTPClient, cfg.IDPURL+"/v1/revocations", cfg.ClientID, cfg.ClientSecret, cfg.Now)
	p.audit = newAuditLog(cfg.Now, 100_000)
	p.metrics = newMetrics(p.replay)
	p.echo = p.newEcho()
	return p, nil
}

// Handler returns the HTTP handler: the resources under /<name>/..., GET /healthz,
// GET /metrics, GET /v1/audit?since=N and GET /v1/audit/stream.
func (p *Proxy) Handler() http.Handler { return p.echo }

// ReplayCacheLen returns the number of DPoP proofs the replay cache holds (live or not
// yet swept); it is bounded by MaxRPS × 65.
func (p *Proxy) ReplayCacheLen() int { return p.replay.Len() }

// Ready reports whether the proxy can accept tokens: it knows the IDP's issuer and
// keys and, in A-JWT mode, its revocation view is fresh.
func (p *Proxy) Ready() bool {
	if p.currentIssuer() == "" {
		return false
	}
	return p.cfg.Mode == ModeOAuth || p.feed.fresh()
}

// Run bootstraps the proxy against the IDP (metadata and issuer check, JWKS) and then
// polls the revocation feed every FeedInterval, until ctx ends. Failures are logged and
// retried; while the feed view is stale the proxy refuses A-JWT tokens with 503
// revocation_stale. Run returns ctx.Err() when ctx ends, or an error at once when the
// IDP's issuer differs from the configured one.
func (p *Proxy) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.FeedInterval)
	defer t.Stop()
	bootstrapped, feedFailing := false, false
	var jwksAt time.Time
	for {
		// The IDP publishes its next key before first use: pick it up periodically so
		// a rotation never waits for the unknown-kid refresh.
		if bootstrapped && time.Since(jwksAt) > jwksMaxAge {
			if err := p.jwks.refresh(ctx, true); err != nil && ctx.Err() == nil {
				p.log.WarnContext(ctx, "JWKS refresh failed", "err", err)
			}
			jwksAt = time.Now()
		}
		if !bootstrapped {
			if err := p.bootstrap(ctx); err != nil {
				var fatal *issuerMismatchError
				if errors.As(err, &fatal) {
					return err
				}
				if ctx.Err() == nil {
					p.log.WarnContext(ctx, "proxy bootstrap failed; retrying", "err", err)
				}
			} else {
				bootstrapped, jwksAt = true, time.Now()
				p.log.InfoContext(ctx, "proxy bootstrapped", "issuer", p.currentIssuer(), "mode", p.cfg.Mode)
			}
		}
		if bootstrapped && p.cfg.Mode == ModeAJWT {
			// Log when polling starts or stops failing, not at every interval.
			switch err := p.feed.poll(ctx); {
			case err != nil && ctx.Err() == nil && !feedFailing:
				feedFailing = true
				p.log.WarnContext(ctx, "revocation feed poll failed; A-JWT requests are refused once the view is stale", "err", err)
			case err == nil && feedFailing:
				feedFailing = false
				p.log.InfoContext(ctx, "revocation feed poll recovered")
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

type issuerMismatchError struct{ configured, metadata string }

func (e *issuerMismatchError) Error() string {
	return fmt.Sprintf("resourceproxy: configured issuer %q differs from the IDP metadata's %q", e.configured, e.metadata)
}

// bootstrap reads the IDP metadata (issuer) and the JWKS.
func (p *Proxy) bootstrap(ctx context.Context) error {
	iss, err := fetchIssuer(ctx, p.cfg.HTTPClient, p.cfg.IDPURL+"/.well-known/oauth-authorization-server")
	if err != nil {
		return err
	}
	if p.cfg.Issuer != "" && iss != p.cfg.Issuer {
		return &issuerMismatchError{configured: p.cfg.Issuer, metadata: iss}
	}
	if err := p.jwks.refresh(ctx, true); err != nil {
		return err
	}
	p.issuer.Store(&iss)
	return nil
}

func (p *Proxy) currentIssuer() string {
	if s := p.issuer.Load(); s != nil {
		return *s
	}
	return ""
}

// newUpstreamTransport is the default transport to the upstreams, with timeouts.
func newUpstreamTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   32,
	}
}

// newEcho builds the router.
func (p *Proxy) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = p.errorHandler
	e.GET("/healthz", func(c echo.Context) error {
		ready := "false"
		if p.Ready() {
			ready = "true"
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok", "ready": ready})
	})
	e.GET("/metrics", echo.WrapHandler(p.metrics.handler()))
	e.GET("/v1/audit", p.handleAudit)
	e.GET("/v1/audit/stream", p.handleAuditStream)
	e.Any("/*", p.handleResource)
	e.RouteNotFound("/*", p.handleResource)
	return e
}

// errorHandler renders errors that did not come from the pipeline (unknown routes,
// methods) as `{"error","reason","error_description"}`.
func (p *Proxy) errorHandler(err error, c echo.Context) {
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
		p.log.ErrorContext(c.Request().Context(), "internal error", "err", err)
		ae = ajwt.AsError(err)
	}
	writeError(c.Response(), ae, "")
}
