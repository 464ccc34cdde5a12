package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokengate/tokengate/authz"
)

// Metrics holds tokengate's Prometheus collectors. Labels never carry token
// values or subjects.
type Metrics struct {
	checks        *prometheus.CounterVec
	checkDuration *prometheus.HistogramVec
	jwksRefresh   *prometheus.CounterVec
	jwksKeys      *prometheus.GaugeVec
	reloads       *prometheus.CounterVec
	introspection *prometheus.HistogramVec
	cache         *prometheus.CounterVec
}

// NewMetrics registers the collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokengate_check_total",
			Help: "Check decisions by route, verifier, decision and reason code.",
		}, []string{"route", "verifier", "decision", "reason"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokengate_check_duration_seconds",
			Help:    "Time to answer one Check, by route.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		jwksRefresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokengate_jwks_refresh_total",
			Help: "JWKS fetches by verifier and result (success, failure).",
		}, []string{"verifier", "result"}),
		jwksKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tokengate_jwks_keys",
			Help: "Keys in use per JWKS verifier.",
		}, []string{"verifier"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokengate_config_reload_total",
			Help: "Configuration reloads by result (success, failure).",
		}, []string{"result"}),
		introspection: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokengate_introspection_duration_seconds",
			Help:    "Introspection request time by verifier.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"verifier"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokengate_cache_total",
			Help: "Cache lookups by cache and result (hit, miss).",
		}, []string{"cache", "result"}),
	}
	reg.MustRegister(m.checks, m.checkDuration, m.jwksRefresh, m.jwksKeys, m.reloads, m.introspection, m.cache)
	return m
}

// Observe implements authz.Observer.
func (m *Metrics) Observe(_ context.Context, o authz.Outcome) {
	m.checks.WithLabelValues(o.Route, o.Verifier, o.Decision, string(o.Reason)).Inc()
	m.checkDuration.WithLabelValues(o.Route).Observe(o.Duration.Seconds())
}

// JWKSFetched records one JWKS fetch.
func (m *Metrics) JWKSFetched(verifier, result string, keys int) {
	m.jwksRefresh.WithLabelValues(verifier, result).Inc()
	m.jwksKeys.WithLabelValues(verifier).Set(float64(keys))
}

// Introspected records one introspection request's duration.
func (m *Metrics) Introspected(verifier string, d time.Duration) {
	m.introspection.WithLabelValues(verifier).Observe(d.Seconds())
}

// CacheLookup records one cache lookup.
func (m *Metrics) CacheLookup(cache, result string) {
	m.cache.WithLabelValues(cache, result).Inc()
}
