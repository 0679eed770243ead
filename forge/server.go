package forge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Config configures a Server.
type Config struct {
	// DataDir holds the bare repositories and their metadata files.
	DataDir string
	// Token is required on every request as "Authorization: token <Token>"
	// or "Authorization: Bearer <Token>".
	Token string
	// Logger receives request and error logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock used for commit and pull request times; nil is time.Now.
	Now func() time.Time
}

// Server is the forge: an http.Handler over the repositories in DataDir.
type Server struct {
	store     *store
	tokenHash [sha256.Size]byte
	log       *slog.Logger
	now       func() time.Time
	echo      *echo.Echo
}

// New validates cfg, creates DataDir if needed and returns a Server.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Token == "" {
		return nil, errors.New("forge: Token is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	st, err := newStore(cfg.DataDir, cfg.Now)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{store: st, tokenHash: sha256.Sum256([]byte(cfg.Token)), log: log, now: cfg.Now}
	s.echo = s.routes()
	return s, nil
}

// Handler returns the HTTP handler serving the GitHub-compatible API.
func (s *Server) Handler() http.Handler { return s.echo }

// Seed creates the demo repositories in this server's data directory (see
// the package-level Seed).
func (s *Server) Seed(ctx context.Context) error { return seed(ctx, s.store) }

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	e.Pre(s.logRequests, s.authenticate)
	e.Use(s.limitBody)

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/repositories/:id", s.getRepoByID)
	e.GET("/repos/:owner/:repo", s.getRepo)
	e.DELETE("/repos/:owner/:repo", s.deleteRepo)
	e.GET("/repos/:owner/:repo/git/ref/heads/*", s.getBranchRef)
	e.POST("/repos/:owner/:repo/git/refs", s.createRef)
	e.DELETE("/repos/:owner/:repo/git/refs/heads/*", s.deleteBranchRef)
	e.GET("/repos/:owner/:repo/git/trees/*", s.getTree)
	e.GET("/repos/:owner/:repo/contents", s.getContents)
	e.GET("/repos/:owner/:repo/contents/*", s.getContents)
	e.PUT("/repos/:owner/:repo/contents/*", s.putContents)
	e.POST("/repos/:owner/:repo/pulls", s.createPull)
	e.GET("/repos/:owner/:repo/pulls", s.listPulls)
	e.GET("/repos/:owner/:repo/pulls/:number", s.getPull)
	e.PUT("/repos/:owner/:repo/pulls/:number/merge", s.mergePull)
	return e
}

// authenticate runs before routing: every request but /healthz needs the
// token. The comparison is over SHA-256 digests in constant time, so neither
// the content nor the length of the token leaks through timing.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Method == http.MethodGet && req.URL.Path == "/healthz" {
			return next(c)
		}
		vals := req.Header.Values(echo.HeaderAuthorization)
		if len(vals) != 1 {
			return errBadCredentials()
		}
		scheme, tok, ok := strings.Cut(vals[0], " ")
		if !ok || !(strings.EqualFold(scheme, "token") || strings.EqualFold(scheme, "bearer")) {
			return errBadCredentials()
		}
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) != 1 {
			return errBadCredentials()
		}
		return next(c)
	}
}

// logRequests logs every request with its final status.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := s.now()
		err := next(c)
		status := c.Response().Status
		if ae, ok := asAPIError(err); ok {
			status = ae.Status
		}
		s.log.DebugContext(c.Request().Context(), "forge request",
			"method", c.Request().Method, "path", c.Request().URL.Path, "status", status,
			"duration", s.now().Sub(start))
		return err
	}
}

// limitBody bounds every request body to maxBodyBytes.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().ContentLength > maxBodyBytes {
			return errTooLarge()
		}
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, maxBodyBytes)
		return next(c)
	}
}

// errorHandler renders every error as GitHub does:
// {"message": ..., "documentation_url": ...}.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae, ok := asAPIError(err)
	if !ok {
		var he *echo.HTTPError
		switch {
		case errors.As(err, &he) && he.Code == http.StatusNotFound:
			ae = errNotFound()
		case errors.As(err, &he) && he.Code == http.StatusMethodNotAllowed:
			ae = errNotFound() // GitHub answers 404 for unknown routes
		case errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge:
			ae = errTooLarge()
		case errors.As(err, &he) && he.Code >= 400 && he.Code < 500:
			ae = &APIError{Status: he.Code, Message: http.StatusText(he.Code)}
		default:
			s.log.ErrorContext(c.Request().Context(), "forge request failed",
				"method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
			ae = errInternal()
		}
	}
	if ae.Status >= 400 && ae.Status < 500 {
		s.log.InfoContext(c.Request().Context(), "forge request refused",
			"method", c.Request().Method, "path", c.Request().URL.Path, "status", ae.Status, "message", ae.Message)
	}
	body := map[string]string{"message": ae.Message, "documentation_url": documentationURL}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, body)
}

// param returns a path parameter, percent-decoded exactly once. Echo matches
// on the raw path when one exists, and then its parameters are still encoded.
func param(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return "", errNotFound()
	}
	return d, nil
}

// repoParams returns the owner and repository path parameters.
func repoParams(c echo.Context) (string, string, error) {
	owner, err := param(c, "owner")
	if err != nil {
		return "", "", err
	}
	name, err := param(c, "repo")
	if err != nil {
		return "", "", err
	}
	if !validRepoName(owner, name) {
		return "", "", errNotFound()
	}
	return owner, name, nil
}

// baseURL is the API root as seen by the client.
func baseURL(c echo.Context) string {
	return fmt.Sprintf("%s://%s", c.Scheme(), c.Request().Host)
}
