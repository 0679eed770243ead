// Package shim is the client library agents run through (DESIGN §3): it recomputes the
// checksum of each live agent definition, holds per-agent Ed25519 keys in memory only,
// enrolls instances, signs delegation links, caches intent tokens, and adds the token and
// a fresh DPoP proof to every API call through an http.RoundTripper. Tools wrap it for
// langchaingo without importing langchaingo.
//
// A Client is the app's connection to the IDP (its client credential); an Agent is one
// agent instance (its key); an Execution is one run of a registered workflow.
package shim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// maxResponseBytes bounds every IDP response body the shim reads.
const maxResponseBytes = 1 << 20

// Config configures a Client.
type Config struct {
	// IDPURL is the IDP's issuer URL (the base of every endpoint and of every DPoP htu
	// sent to it).
	IDPURL string
	// ClientID and ClientSecret are the app's client credential (client_secret_basic).
	ClientID, ClientSecret string
	// ShimChecksum is the shim build declared at enrollment; empty means
	// "sha256:" + hex(SHA-256(own executable)) (DESIGN §5.2).
	ShimChecksum string
	// HTTPClient is used for IDP calls; its Transport is also the default base transport
	// of the agents' resource calls. Nil means a client with a 30 s timeout that does not
	// follow redirects.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs (never a token, key or secret); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Client is the app's connection to the IDP. It is safe for concurrent use.
type Client struct {
	base, id, secret string
	shimChecksum     string
	hc               *http.Client
	now              func() time.Time
	log              *slog.Logger
}

// NewClient validates cfg and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.IDPURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("shim: IDPURL %q is not an absolute http(s) URL", cfg.IDPURL)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("shim: ClientID and ClientSecret are required")
	}
	c := &Client{base: strings.TrimRight(cfg.IDPURL, "/"), id: cfg.ClientID, secret: cfg.ClientSecret,
		shimChecksum: cfg.ShimChecksum, hc: cfg.HTTPClient, now: cfg.Now, log: cfg.Logger}
	if c.shimChecksum == "" {
		if c.shimChecksum, err = ExecutableChecksum(); err != nil {
			return nil, fmt.Errorf("shim: shim checksum: %w", err)
		}
	}
	if c.hc == nil {
		// Agents call concurrently: keep more idle connections per host than
		// http.DefaultTransport's 2, or every burst pays new TCP connections.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		c.hc = &http.Client{Timeout: 30 * time.Second, Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

// ExecutableChecksum returns "sha256:" + hex(SHA-256(the running executable)), the
// default shim checksum (DESIGN §5.2, printed by `ajwt shim-checksum`).
func ExecutableChecksum() (string, error) {
	path, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate executable: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open executable: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash executable: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// ShimChecksum returns the shim build this client declares at enrollment.
func (c *Client) ShimChecksum() string { return c.shimChecksum }

// IDPURL returns the IDP base URL (the issuer).
func (c *Client) IDPURL() string { return c.base }

// idpRequest is one call to the IDP.
type idpRequest struct {
	method, path string
	// body is sent as JSON unless form is set; nil means no body.
	body []byte
	form bool
	// proof, when set, builds the DPoP proof for the request's htu and an optional
	// server nonce (RFC 9449 §8).
	proof func(htu, nonce string) (string, error)
}

// call sends r with client_secret_basic, retries once with a server-provided DPoP
// nonce when the IDP asks for one, and decodes a 2xx JSON answer into out (when not
// nil). An error answer is returned as a wrapped *ajwt.Error.
func (c *Client) call(ctx context.Context, r idpRequest, out any) error {
	nonce := ""
	for attempt := 0; ; attempt++ {
		res, body, err := c.send(ctx, r, nonce)
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		if res.StatusCode >= 200 && res.StatusCode < 300 {
			if out == nil || len(body) == 0 {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("%s %s: decode response: %w", r.method, r.path, err)
			}
			return nil
		}
		ae := decodeError(res, body)
		if attempt == 0 && r.proof != nil && ae.Code == ajwt.CodeUseDPoPNonce && res.Header.Get("DPoP-Nonce") != "" {
			nonce = res.Header.Get("DPoP-Nonce")
			continue
		}
		return fmt.Errorf("%s %s: %w", r.method, r.path, ae)
	}
}

func (c *Client) send(ctx context.Context, r idpRequest, nonce string) (*http.Response, []byte, error) {
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, rd)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case r.body != nil && r.form:
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case r.body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	if r.proof != nil {
		p, err := r.proof(c.base+r.path, nonce)
		if err != nil {
			return nil, nil, fmt.Errorf("dpop proof: %w", err)
		}
		req.Header.Set("DPoP", p)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := readLimited(res.Body, maxResponseBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	return res, body, nil
}

// readLimited reads at most limit bytes; a longer body is an error.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response body exceeds %d bytes", limit)
	}
	return b, nil
}

// decodeError turns an error answer `{"error","reason","error_description"}` into an
// *ajwt.Error whose Status is the HTTP status. A body of another shape still yields an
// *ajwt.Error, without a reason.
func decodeError(res *http.Response, body []byte) *ajwt.Error {
	e := &ajwt.Error{Status: res.StatusCode}
	var b ajwt.Body
	if json.Unmarshal(body, &b) == nil && (b.Error != "" || b.Reason != "") {
		e.Code, e.Reason, e.Description = b.Error, b.Reason, b.Description
	} else {
		e.Code = ajwt.CodeServerError
		e.Description = "HTTP " + strconv.Itoa(res.StatusCode)
	}
	if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && ra > 0 {
		e.RetryAfter = ra
	}
	return e
}

// jsonBody marshals v for a request body.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}
