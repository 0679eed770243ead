package resourceproxy

import (
	"net/http"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the proxy's Prometheus metrics, on a registry of its own (no global
// state, so several proxies can live in one process).
type metrics struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
}

func newMetrics(replay *ajwt.MemoryReplayCache) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ajwt_proxy_decisions_total",
			Help: "Proxy decisions by decision (allow, deny) and reason code.",
		}, []string{"decision", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ajwt_proxy_added_latency_seconds",
			Help:    "Latency the proxy's validation adds before forwarding (or answering a refusal).",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3, 0.25, 1},
		}),
	}
	replaySize := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ajwt_proxy_replay_cache_entries",
		Help: "DPoP proofs held by the replay cache.",
	}, func() float64 { return float64(replay.Len()) })
	m.reg.MustRegister(m.decisions, m.latency, replaySize)
	return m
}

func (m *metrics) observe(decision string, reason ajwt.Reason, lat time.Duration) {
	m.decisions.WithLabelValues(decision, string(reason)).Inc()
	m.latency.Observe(lat.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
