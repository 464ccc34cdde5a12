package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"

	"github.com/tokengate/tokengate/config"
)

// TestPprofOptIn checks that the profiles are served on the HTTP port only
// with server.pprof: true, and never from http.DefaultServeMux.
func TestPprofOptIn(t *testing.T) {
	tests := []struct {
		name  string
		pprof bool
		path  string
		want  int
	}{
		{"off: index", false, "/debug/pprof/", http.StatusNotFound},
		{"off: heap", false, "/debug/pprof/heap", http.StatusNotFound},
		{"off: cmdline", false, "/debug/pprof/cmdline", http.StatusNotFound},
		{"on: index", true, "/debug/pprof/", http.StatusOK},
		{"on: heap", true, "/debug/pprof/heap?debug=1", http.StatusOK},
		{"on: goroutine", true, "/debug/pprof/goroutine?debug=1", http.StatusOK},
		{"on: cmdline", true, "/debug/pprof/cmdline", http.StatusOK},
		{"on: symbol", true, "/debug/pprof/symbol", http.StatusOK},
		{"on: unknown profile", true, "/debug/pprof/nosuch", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{cfg: &config.Config{Server: config.Server{Pprof: tt.pprof}}, registry: prometheus.NewRegistry()}
			rec := httptest.NewRecorder()
			s.routes().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			assert.Equal(t, tt.want, rec.Code)
		})
	}
}
