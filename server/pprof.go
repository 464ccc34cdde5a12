package server

import (
	"net/http"
	"net/http/pprof"
)

// handlePprof serves the runtime profiles under /debug/pprof/ on mux (the
// HTTP port's own mux: importing net/http/pprof also fills
// http.DefaultServeMux, which tokengate never serves). Only with
// server.pprof: true; the profiles show internals, so keep that port
// private.
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
