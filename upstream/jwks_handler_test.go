package upstream

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tokengate/tokengate/config"
)

// TestJWKSHandler checks the served document, its headers, the 404 without
// an assertion key and that a reload is seen at once.
func TestJWKSHandler(t *testing.T) {
	c := newClock()
	s1 := newSigner(t, c, nil, config.AssertionKey{KeyFile: newKeyFile(t, "ES256"), Kid: "tg-1"})
	current := &Set{Signer: s1}
	h := JWKSHandler(func() *Set { return current })

	get := func(method string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/.well-known/jwks.json", nil))
		return rec
	}
	rec := get(http.MethodGet)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Equal(t, "public, max-age=60", rec.Header().Get("Cache-Control"))
	assert.Equal(t, []string{"tg-1"}, jwksKids(t, rec.Body.Bytes()))

	head := get(http.MethodHead)
	assert.Equal(t, http.StatusOK, head.Code)
	assert.Empty(t, head.Body.String())

	assert.Equal(t, http.StatusMethodNotAllowed, get(http.MethodPost).Code)

	current = &Set{Signer: newSigner(t, c, s1, config.AssertionKey{KeyFile: newKeyFile(t, "EdDSA"), Kid: "tg-2"})}
	assert.Equal(t, []string{"tg-2"}, jwksKids(t, get(http.MethodGet).Body.Bytes()), "tg-1 never signed, so it is not kept")

	current = &Set{}
	assert.Equal(t, http.StatusNotFound, get(http.MethodGet).Code)
	current = nil
	assert.Equal(t, http.StatusNotFound, get(http.MethodGet).Code)
}
