package osv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// OSV API limits and client defaults.
const (
	MaxBatchQueries     = 1000     // queries per POST /v1/querybatch (OSV API limit)
	MaxResponseSize     = 64 << 20 // largest API response body read
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRetries   = 4
	DefaultBackoff      = 500 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	maxPages            = 1000 // bound on next_page_token rounds
	DefaultOSVAPIURL    = "https://api.osv.dev"
	errorSnippetMaxSize = 512
)

// ErrNotFound is wrapped by the error of GetVuln when the server answers 404.
var ErrNotFound = errors.New("osv: not found")

// APIError is a non-2xx answer of the OSV API (after retries, for retryable statuses).
type APIError struct {
	Method     string
	URL        string
	StatusCode int
	Body       string // at most 512 bytes of the response body
}

func (e *APIError) Error() string {
	return fmt.Sprintf("osv: %s %s: HTTP %d: %s", e.Method, e.URL, e.StatusCode, e.Body)
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// Client talks to an OSV-API-compatible server (api.osv.dev, the local mirror, or the
// resource proxy in front of either). The zero values of the tuning fields mean the defaults.
type Client struct {
	BaseURL    string        // e.g. "https://api.osv.dev" or "http://proxy:8082/osv"
	HTTP       *http.Client  // any client, e.g. the shim's; nil means http.DefaultClient
	Timeout    time.Duration // per attempt; DefaultTimeout when 0
	MaxRetries int           // retries after the first attempt on 429/5xx/transport errors; DefaultMaxRetries when 0, none when < 0
	Backoff    time.Duration // first retry delay, doubled each retry (with jitter); DefaultBackoff when 0
	MaxBackoff time.Duration // cap on one delay, also on Retry-After; DefaultMaxBackoff when 0
	UserAgent  string
}

// NewClient returns a Client for baseURL using hc (nil: http.DefaultClient).
func NewClient(baseURL string, hc *http.Client) *Client {
	return &Client{BaseURL: baseURL, HTTP: hc}
}

// Query is one OSV query: a package and version (or a commit), as the OSV API defines it.
type Query struct {
	Package   *QueryPackage `json:"package,omitempty"`
	Version   string        `json:"version,omitempty"`
	Commit    string        `json:"commit,omitempty"`
	PageToken string        `json:"page_token,omitempty"`
}

// QueryPackage identifies a package by ecosystem and name, or by purl.
type QueryPackage struct {
	Name      string `json:"name,omitempty"`
	Ecosystem string `json:"ecosystem,omitempty"`
	Purl      string `json:"purl,omitempty"`
}

// QueryFor builds the query for a manifest package.
func QueryFor(p Package) Query {
	return Query{Package: &QueryPackage{Name: p.Name, Ecosystem: p.Ecosystem}, Version: p.Version}
}

// VulnRef is what querybatch returns per vulnerability: its id and modified time.
type VulnRef struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
}

type batchRequest struct {
	Queries []Query `json:"queries"`
}

type batchResponse struct {
	Results []struct {
		Vulns         []VulnRef `json:"vulns"`
		NextPageToken string    `json:"next_page_token"`
	} `json:"results"`
}

type queryResponse struct {
	Vulns         []*Record `json:"vulns"`
	NextPageToken string    `json:"next_page_token"`
}

// QueryBatch runs POST /v1/querybatch for any number of queries, at most MaxBatchQueries
// per request, and follows next_page_token until every query is complete. Result i holds
// the vulnerabilities of queries[i].
func (c *Client) QueryBatch(ctx context.Context, queries []Query) ([][]VulnRef, error) {
	results := make([][]VulnRef, len(queries))
	// pending: index into queries -> query to send (with page token once paging).
	type pending struct {
		idx int
		q   Query
	}
	todo := make([]pending, len(queries))
	for i, q := range queries {
		todo[i] = pending{i, q}
	}
	for round := 0; len(todo) > 0; round++ {
		if round > maxPages {
			return nil, fmt.Errorf("osv: querybatch: more than %d pages", maxPages)
		}
		var next []pending
		for start := 0; start < len(todo); start += MaxBatchQueries {
			chunk := todo[start:min(start+MaxBatchQueries, len(todo))]
			req := batchRequest{Queries: make([]Query, len(chunk))}
			for i, p := range chunk {
				req.Queries[i] = p.q
			}
			var resp batchResponse
			if err := c.do(ctx, http.MethodPost, "/v1/querybatch", req, &resp); err != nil {
				return nil, err
			}
			if len(resp.Results) != len(chunk) {
				return nil, fmt.Errorf("osv: querybatch: %d results for %d queries", len(resp.Results), len(chunk))
			}
			for i, r := range resp.Results {
				p := chunk[i]
				results[p.idx] = append(results[p.idx], r.Vulns...)
				if r.NextPageToken != "" {
					q := p.q
					q.PageToken = r.NextPageToken
					next = append(next, pending{p.idx, q})
				}
			}
		}
		todo = next
	}
	return results, nil
}

// Query runs POST /v1/query and follows next_page_token, returning the full records.
func (c *Client) Query(ctx context.Context, q Query) ([]*Record, error) {
	var all []*Record
	for page := 0; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("osv: query: more than %d pages", maxPages)
		}
		var resp queryResponse
		if err := c.do(ctx, http.MethodPost, "/v1/query", q, &resp); err != nil {
			return nil, err
		}
		for _, r := range resp.Vulns {
			if r == nil {
				continue
			}
			if err := r.Validate(); err != nil {
				return nil, fmt.Errorf("osv: query: %w", err)
			}
			all = append(all, r)
		}
		if resp.NextPageToken == "" {
			return all, nil
		}
		q.PageToken = resp.NextPageToken
	}
}

var vulnIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// GetVuln runs GET /v1/vulns/{id}. A 404 yields an error wrapping ErrNotFound.
func (c *Client) GetVuln(ctx context.Context, id string) (*Record, error) {
	if !vulnIDPattern.MatchString(id) || strings.Contains(id, "..") {
		return nil, fmt.Errorf("osv: invalid vulnerability id %q", id)
	}
	var rec Record
	if err := c.do(ctx, http.MethodGet, "/v1/vulns/"+url.PathEscape(id), nil, &rec); err != nil {
		return nil, err
	}
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("osv: vulns/%s: %w", id, err)
	}
	return &rec, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func orDefault[T ~int64 | ~int](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// do sends one API call with retries: 429 and 5xx answers and transport errors are retried
// up to MaxRetries times with exponential backoff and jitter (Retry-After honoured, capped);
// any other non-2xx answer fails at once. Responses are decoded leniently (the API may add
// members) with MaxResponseSize as the limit.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	base := c.BaseURL
	if base == "" {
		base = DefaultOSVAPIURL
	}
	u := strings.TrimRight(base, "/") + path
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("osv: encode %s: %w", path, err)
		}
	}
	retries := orDefault(c.MaxRetries, DefaultMaxRetries)
	if retries < 0 {
		retries = 0
	}
	backoff := orDefault(c.Backoff, DefaultBackoff)
	maxBackoff := orDefault(c.MaxBackoff, DefaultMaxBackoff)
	var lastErr error
	for attempt := 0; ; attempt++ {
		retryAfter, err := c.attempt(ctx, method, u, payload, out)
		if err == nil {
			return nil
		}
		lastErr = err
		var apiErr *APIError
		retryable := !errors.As(err, &apiErr) || apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode >= 500
		var decErr *decodeError
		if errors.As(err, &decErr) || ctx.Err() != nil {
			retryable = false
		}
		if !retryable || attempt >= retries {
			if attempt > 0 {
				return fmt.Errorf("after %d attempts: %w", attempt+1, lastErr)
			}
			return lastErr
		}
		delay := backoff << attempt
		if delay <= 0 || delay > maxBackoff {
			delay = maxBackoff
		}
		delay = delay/2 + rand.N(delay/2+1) // jitter in [d/2, d]
		if retryAfter > 0 {
			delay = min(retryAfter, maxBackoff)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("osv: %s %s: %w (last error: %v)", method, u, ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}

type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

func (c *Client) attempt(ctx context.Context, method, u string, payload []byte, out any) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, orDefault(c.Timeout, DefaultTimeout))
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, &decodeError{fmt.Errorf("osv: %s %s: %w", method, u, err)}
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, fmt.Errorf("osv: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, errorSnippetMaxSize))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		var ra time.Duration
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s >= 0 {
			ra = time.Duration(s) * time.Second
		}
		return ra, &APIError{Method: method, URL: u, StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(snippet))}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return 0, fmt.Errorf("osv: %s %s: read body: %w", method, u, err)
	}
	if len(data) > MaxResponseSize {
		return 0, &decodeError{fmt.Errorf("osv: %s %s: response larger than %d bytes", method, u, MaxResponseSize)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return 0, &decodeError{fmt.Errorf("osv: %s %s: decode response: %w", method, u, err)}
	}
	return 0, nil
}
