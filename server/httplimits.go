package server

import (
	"net/http"
	"time"
)

// HTTPLimits bound what one client can hold on the HTTP port (health,
// metrics, metadata and forward-auth): a connection that sends its headers
// or its body too slowly, or stays idle, is closed, and a request body is
// never read beyond MaxBodyBytes. Zero fields take the defaults below;
// docs/operations.md lists them.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing a response (0: none, the default, so that
	// a pprof profile may run for as long as it asks).
	WriteTimeout time.Duration
	// MaxBodyBytes is the largest request body accepted. tokengate never
	// needs a body: a larger declared Content-Length is answered 413 at
	// once and the connection closed, without waiting for the body.
	MaxBodyBytes int64
}

// The HTTP port's default limits.
const (
	DefaultHTTPReadHeaderTimeout = 5 * time.Second
	DefaultHTTPReadTimeout       = 10 * time.Second
	DefaultHTTPIdleTimeout       = 90 * time.Second
	DefaultHTTPMaxBodyBytes      = 64 << 10
)

// withDefaults fills the zero fields.
func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultHTTPReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultHTTPReadTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultHTTPIdleTimeout
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultHTTPMaxBodyBytes
	}
	return l
}

// newHTTPServer is the HTTP port's server with the limits l applied.
func newHTTPServer(h http.Handler, l HTTPLimits) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           limitBody(l.MaxBodyBytes, h),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		IdleTimeout:       l.IdleTimeout,
		WriteTimeout:      l.WriteTimeout,
	}
}

// limitBody answers 413 to a request whose declared body is larger than
// max, and closes its connection, before any handler runs; other bodies
// are cut at max. (Go's server otherwise reads up to 256 KiB of an unread
// body before it answers, which a client that declares a body and never
// sends it turns into a connection held until ReadTimeout.)
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"request_body_too_large"}`))
			return
		}
		if r.ContentLength != 0 {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}
