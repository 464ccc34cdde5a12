package upstream

import (
	"net/http"
	"strconv"
)

// JWKSCacheSeconds is the Cache-Control max-age of the served JWKS: short,
// so that upstreams see a rotated-in key soon.
const JWKSCacheSeconds = 60

// JWKSHandler serves the current configuration's assertion JWKS (GET and
// HEAD on /.well-known/jwks.json): 200 application/json, or 404 when the
// configuration has no assertion block. current returns the Set in force;
// it is called once per request, so a reload is seen at once.
func JWKSHandler(current func() *Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body := current().JWKS()
		if body == nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(JWKSCacheSeconds))
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
