package e2e_test

import (
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

// BenchmarkEndToEnd measures loopback calls at concurrency 8 (RunParallel with 4
// goroutines per CPU on 2 CPUs): straight to the upstream (the baseline) and through the
// shim and the proxy, with a fresh DPoP proof per request and the proxy's full
// pipeline. It reports req/s and the p50/p99 latency; compare the two in one run.
func BenchmarkEndToEnd(b *testing.B) {
	s := newStack(b)
	_, pl, ex := setup(b, s)
	through := pl.HTTPClient(ex, "list_files")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	direct := &http.Client{Transport: tr}
	run := func(b *testing.B, hc *http.Client, url string) {
		var mu sync.Mutex
		var lat []time.Duration
		b.SetParallelism(4)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				t0 := time.Now()
				res, err := hc.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Errorf("status %d", res.StatusCode)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		el := time.Since(start)
		if len(lat) == 0 {
			return
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(len(lat))/el.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("direct", func(b *testing.B) { run(b, direct, s.upstreamURL+"/repos/acme/webapp/git/trees/main") })
	b.Run("through-proxy", func(b *testing.B) { run(b, through, s.proxyURL+"/github/repos/acme/webapp/git/trees/main") })
}
