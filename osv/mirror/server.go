package mirror

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/agentic-jwt/patchcrew/osv"
)

// MaxRequestBytes bounds every request body (4 MiB; a full 1,000-query batch is far smaller).
const MaxRequestBytes = 4 << 20

// gRPC status codes the OSV API (grpc-gateway) puts in its error bodies.
const (
	codeInvalidArgument = 3
	codeNotFound        = 5
	codeUnimplemented   = 12
	codeInternal        = 13
)

// apiError is an OSV-API-style error: HTTP status plus {"code":…,"message":…}.
type apiError struct {
	status  int
	code    int
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.message) }

func invalid(format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, codeInvalidArgument, fmt.Sprintf(format, a...)}
}

// Server serves the OSV API over a DB.
type Server struct {
	db   *DB
	log  *slog.Logger
	echo *echo.Echo
}

// NewServer returns a Server over db; a nil logger discards logs.
func NewServer(db *DB, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if db == nil {
		db = newDB(map[string]*osv.Record{})
	}
	s := &Server{db: db, log: logger}
	s.echo = s.routes()
	return s
}

// Handler returns the HTTP handler serving the OSV API.
func (s *Server) Handler() http.Handler { return s.echo }

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	e.Pre(s.logRequests)
	e.Use(limitBody)
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"status": "ok", "records": s.db.Len()})
	})
	e.POST("/v1/query", s.query)
	e.POST("/v1/querybatch", s.queryBatch)
	e.GET("/v1/vulns/:id", s.getVuln)
	return e
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		var ae *apiError
		if errors.As(err, &ae) {
			status = ae.status
		}
		s.log.DebugContext(c.Request().Context(), "osv mirror request",
			"method", c.Request().Method, "path", c.Request().URL.Path, "status", status,
			"duration", time.Since(start))
		return err
	}
}

func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().ContentLength > MaxRequestBytes {
			return invalid("request body larger than %d bytes", MaxRequestBytes)
		}
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, MaxRequestBytes)
		return next(c)
	}
}

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		var he *echo.HTTPError
		switch {
		case errors.As(err, &he) && he.Code == http.StatusNotFound:
			ae = &apiError{http.StatusNotFound, codeNotFound, "Not Found"}
		case errors.As(err, &he) && he.Code == http.StatusMethodNotAllowed:
			ae = &apiError{http.StatusMethodNotAllowed, codeUnimplemented, "Method Not Allowed"}
		case errors.As(err, &he) && he.Code >= 400 && he.Code < 500:
			ae = &apiError{he.Code, codeInvalidArgument, http.StatusText(he.Code)}
		default:
			s.log.ErrorContext(c.Request().Context(), "osv mirror request failed",
				"method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
			ae = &apiError{http.StatusInternalServerError, codeInternal, "Internal error."}
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.status)
		return
	}
	_ = c.JSON(ae.status, map[string]any{"code": ae.code, "message": ae.message})
}

// decodeBody decodes the request body strictly into v: one JSON value of shape s (member
// names exact, none unknown or repeated), nothing after it, within MaxRequestBytes.
func decodeBody(c echo.Context, s *shape, v any) error {
	data, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return invalid("request body larger than %d bytes", MaxRequestBytes)
		}
		return invalid("reading request body: %v", err)
	}
	if err := checkShape(data, s); err != nil {
		return invalid("Invalid request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("Invalid request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("Invalid request body: data after the JSON value")
	}
	return nil
}

// checkQuery validates one query and returns (ecosystem, name, version).
func checkQuery(q *osv.Query) (string, string, string, error) {
	switch {
	case q.Commit != "":
		return "", "", "", invalid("commit queries are not supported by this mirror")
	case q.PageToken != "":
		return "", "", "", invalid("invalid page_token")
	case q.Package == nil:
		return "", "", "", invalid("package is required")
	case q.Package.Purl != "":
		return "", "", "", invalid("purl queries are not supported by this mirror")
	case q.Package.Ecosystem == "" || q.Package.Name == "":
		return "", "", "", invalid("package.ecosystem and package.name are required")
	}
	return q.Package.Ecosystem, q.Package.Name, q.Version, nil
}

// queryResponse is the body of POST /v1/query; omitempty renders "no vulns" as {} like OSV.
type queryResponse struct {
	Vulns []*osv.Record `json:"vulns,omitempty"`
}

func (s *Server) query(c echo.Context) error {
	var q osv.Query
	if err := decodeBody(c, queryShape, &q); err != nil {
		return err
	}
	eco, name, version, err := checkQuery(&q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, queryResponse{Vulns: s.db.Query(eco, name, version)})
}

type batchRequest struct {
	Queries []osv.Query `json:"queries"`
}

type batchResult struct {
	Vulns []osv.VulnRef `json:"vulns,omitempty"`
}

type batchResponse struct {
	Results []batchResult `json:"results"`
}

func (s *Server) queryBatch(c echo.Context) error {
	var req batchRequest
	if err := decodeBody(c, batchShape, &req); err != nil {
		return err
	}
	if len(req.Queries) > osv.MaxBatchQueries {
		return invalid("Too many queries: %d, at most %d per request", len(req.Queries), osv.MaxBatchQueries)
	}
	resp := batchResponse{Results: make([]batchResult, len(req.Queries))}
	for i := range req.Queries {
		eco, name, version, err := checkQuery(&req.Queries[i])
		if err != nil {
			ae := err.(*apiError)
			ae.message = fmt.Sprintf("queries[%d]: %s", i, ae.message)
			return ae
		}
		recs := s.db.Query(eco, name, version)
		if len(recs) == 0 {
			continue
		}
		refs := make([]osv.VulnRef, len(recs))
		for j, r := range recs {
			refs[j] = osv.VulnRef{ID: r.ID, Modified: r.Modified}
		}
		resp.Results[i].Vulns = refs
	}
	return c.JSON(http.StatusOK, resp)
}

func (s *Server) getVuln(c echo.Context) error {
	id := c.Param("id")
	if c.Request().URL.RawPath != "" {
		d, err := url.PathUnescape(id)
		if err != nil {
			return &apiError{http.StatusNotFound, codeNotFound, "Bug not found."}
		}
		id = d
	}
	rec := s.db.Get(id)
	if rec == nil {
		return &apiError{http.StatusNotFound, codeNotFound, "Bug not found."}
	}
	return c.JSON(http.StatusOK, rec)
}
