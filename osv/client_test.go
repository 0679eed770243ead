package osv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testClient(url string) *Client {
	c := NewClient(url, &http.Client{})
	c.Backoff, c.MaxBackoff, c.Timeout = time.Millisecond, 5*time.Millisecond, 2*time.Second
	return c
}

// batchServer answers querybatch: query "pkgN" has vuln "V-N"; queries named "paged*" get a
// second page through next_page_token.
func batchServer(t *testing.T, sizes *[]int, mu *sync.Mutex) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/osv/v1/querybatch" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad route "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var req batchRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if len(req.Queries) > MaxBatchQueries {
			http.Error(w, "too many queries", http.StatusBadRequest)
			return
		}
		mu.Lock()
		*sizes = append(*sizes, len(req.Queries))
		mu.Unlock()
		type res struct {
			Vulns         []VulnRef `json:"vulns,omitempty"`
			NextPageToken string    `json:"next_page_token,omitempty"`
		}
		out := struct {
			Results []res `json:"results"`
		}{}
		for _, q := range req.Queries {
			name := q.Package.Name
			switch {
			case strings.HasPrefix(name, "paged") && q.PageToken == "":
				out.Results = append(out.Results, res{Vulns: []VulnRef{{ID: "P1-" + name}}, NextPageToken: "tok-" + name})
			case strings.HasPrefix(name, "paged"):
				if q.PageToken != "tok-"+name {
					t.Errorf("page token %q for %s", q.PageToken, name)
				}
				out.Results = append(out.Results, res{Vulns: []VulnRef{{ID: "P2-" + name}}})
			case strings.HasPrefix(name, "clean"):
				out.Results = append(out.Results, res{})
			default:
				out.Results = append(out.Results, res{Vulns: []VulnRef{{ID: "V-" + name, Modified: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}}})
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
}

func TestQueryBatchChunksAndPages(t *testing.T) {
	var sizes []int
	var mu sync.Mutex
	srv := batchServer(t, &sizes, &mu)
	defer srv.Close()
	var qs []Query
	for i := range 2500 {
		name := fmt.Sprintf("pkg%d", i)
		switch {
		case i == 7 || i == 1999:
			name = fmt.Sprintf("paged%d", i)
		case i%3 == 0:
			name = fmt.Sprintf("clean%d", i)
		}
		qs = append(qs, QueryFor(Package{Ecosystem: EcosystemNPM, Name: name, Version: "1.0.0"}))
	}
	res, err := testClient(srv.URL+"/osv/").QueryBatch(context.Background(), qs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1000, 1000, 500, 2}; fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Errorf("request sizes %v, want %v", sizes, want)
	}
	if len(res) != 2500 {
		t.Fatalf("%d results", len(res))
	}
	if got := res[7]; len(got) != 2 || got[0].ID != "P1-paged7" || got[1].ID != "P2-paged7" {
		t.Errorf("paged result %+v", got)
	}
	if got := res[1999]; len(got) != 2 || got[1].ID != "P2-paged1999" {
		t.Errorf("paged result %+v", got)
	}
	if len(res[3]) != 0 || len(res[4]) != 1 || res[4][0].ID != "V-pkg4" || res[4][0].Modified.Year() != 2024 {
		t.Errorf("results 3,4: %+v %+v", res[3], res[4])
	}
}

func TestQueryBatchResultCountMismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"results":[]}`))
	}))
	defer srv.Close()
	_, err := testClient(srv.URL).QueryBatch(context.Background(), []Query{{Commit: "abc"}})
	if err == nil || !strings.Contains(err.Error(), "0 results for 1 queries") {
		t.Errorf("err = %v", err)
	}
}

func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		name       string
		statuses   []int // answers before success; success when exhausted
		maxRetries int
		wantCalls  int32
		wantStatus int // 0: success
	}{
		{"429 then ok", []int{429}, 0, 2, 0},
		{"503 502 500 then ok", []int{503, 502, 500}, 0, 4, 0},
		{"bounded", []int{503, 503, 503, 503, 503, 503, 503}, 2, 3, 503},
		{"no retry on 400", []int{400}, 0, 1, 400},
		{"no retry on 404", []int{404}, 0, 1, 404},
		{"retries disabled", []int{429}, -1, 1, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				if n < len(tc.statuses) {
					w.Header().Set("Retry-After", "0")
					http.Error(w, "nope", tc.statuses[n])
					return
				}
				_, _ = w.Write([]byte(`{"id":"GHSA-x","modified":"2024-01-01T00:00:00Z"}`))
			}))
			defer srv.Close()
			c := testClient(srv.URL)
			c.MaxRetries = tc.maxRetries
			rec, err := c.GetVuln(context.Background(), "GHSA-x")
			if calls.Load() != tc.wantCalls {
				t.Errorf("calls %d, want %d", calls.Load(), tc.wantCalls)
			}
			if tc.wantStatus == 0 {
				if err != nil || rec.ID != "GHSA-x" {
					t.Fatalf("rec %+v err %v", rec, err)
				}
				return
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.wantStatus || apiErr.Body != "nope" {
				t.Fatalf("err = %v, want APIError %d", err, tc.wantStatus)
			}
			if errors.Is(err, ErrNotFound) != (tc.wantStatus == 404) {
				t.Errorf("errors.Is(ErrNotFound) wrong for %d", tc.wantStatus)
			}
		})
	}
}

func TestRetryAfterCappedAndContextCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c := testClient(srv.URL)
	c.MaxRetries, c.MaxBackoff = 1, 10*time.Millisecond
	start := time.Now()
	if _, err := c.GetVuln(context.Background(), "X"); err == nil || time.Since(start) > time.Second {
		t.Errorf("err %v after %v: Retry-After must be capped by MaxBackoff", err, time.Since(start))
	}
	c.MaxBackoff = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetVuln(ctx, "X"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the caller's deadline", err)
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		_, _ = w.Write([]byte(`{"id":"X","modified":"2024-01-01T00:00:00Z"}`))
	}))
	defer srv.Close()
	defer close(release)
	c := testClient(srv.URL)
	c.Timeout = 100 * time.Millisecond
	if rec, err := c.GetVuln(context.Background(), "X"); err != nil || rec.ID != "X" || calls.Load() != 2 {
		t.Errorf("rec %v err %v calls %d: a timed-out attempt is retried", rec, err, calls.Load())
	}
}

func TestGetVulnAndQuery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/vulns/GHSA-jf85-cpcp-j695":
			http.ServeFile(w, r, "testdata/records/GHSA-jf85-cpcp-j695.json")
		case r.Method == http.MethodGet && r.URL.Path == "/v1/vulns/BAD-1":
			_, _ = w.Write([]byte(`{"id":"BAD-1"}`)) // no modified
		case r.Method == http.MethodGet && r.URL.Path == "/v1/vulns/JUNK-1":
			_, _ = w.Write([]byte(`<html>`))
		case r.Method == http.MethodPost && r.URL.Path == "/v1/query":
			var q Query
			if err := json.NewDecoder(r.Body).Decode(&q); err != nil || q.Package == nil || q.Package.Name != "lodash" {
				http.Error(w, "bad query", 400)
				return
			}
			if q.PageToken == "" {
				_, _ = w.Write([]byte(`{"vulns":[{"id":"A","modified":"2024-01-01T00:00:00Z","new_api_member":1}],"next_page_token":"p2"}`))
				return
			}
			_, _ = w.Write([]byte(`{"vulns":[{"id":"B","modified":"2024-01-01T00:00:00Z"}]}`))
		default:
			http.Error(w, `{"code":5,"message":"Bug not found."}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c := testClient(srv.URL)
	ctx := context.Background()
	rec, err := c.GetVuln(ctx, "GHSA-jf85-cpcp-j695")
	if err != nil || rec.Aliases[0] != "CVE-2019-10744" {
		t.Fatalf("rec %+v err %v", rec, err)
	}
	if _, err := c.GetVuln(ctx, "GHSA-none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if _, err := c.GetVuln(ctx, "BAD-1"); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("invalid record: %v", err)
	}
	if _, err := c.GetVuln(ctx, "JUNK-1"); err == nil || !strings.Contains(err.Error(), "decode response") {
		t.Errorf("junk: %v", err)
	}
	for _, id := range []string{"", "..", "a/../b", "../x", "a b", strings.Repeat("a", 200)} {
		if _, err := c.GetVuln(ctx, id); err == nil || !strings.Contains(err.Error(), "invalid vulnerability id") {
			t.Errorf("id %q: %v", id, err)
		}
	}
	recs, err := c.Query(ctx, QueryFor(Package{Ecosystem: EcosystemNPM, Name: "lodash", Version: "4.17.11"}))
	if err != nil || len(recs) != 2 || recs[0].ID != "A" || recs[1].ID != "B" {
		t.Errorf("query: %v %v", recs, err)
	}
}

func TestClientResponseTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"id":"X","modified":"2024-01-01T00:00:00Z","details":"`))
		chunk := []byte(strings.Repeat("a", 1<<20))
		for range MaxResponseSize>>20 + 1 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	if _, err := testClient(srv.URL).GetVuln(context.Background(), "X"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
}
