package dpop

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// maxCachedKeys bounds the proof-key cache.
const maxCachedKeys = 10_000

// proofKey is a parsed jwk header: the public key to verify with and its
// RFC 7638 thumbprint.
type proofKey struct {
	pub any    // *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey
	jkt string // base64url SHA-256 thumbprint
}

// keyCache maps the exact bytes of a jwk header to its parsed key, so that
// a client's stream of proofs parses its key once. It caches parsing only:
// every proof's signature is still verified. Entries are added only for
// keys that have signed a valid proof; when full, the cache starts over.
type keyCache struct {
	max   int64
	n     atomic.Int64
	store atomic.Pointer[sync.Map]
}

func newKeyCache(max int) *keyCache {
	c := &keyCache{max: int64(max)}
	c.store.Store(new(sync.Map))
	return c
}

// get returns the key of a jwk header and whether it came from the cache.
func (c *keyCache) get(raw json.RawMessage) (proofKey, bool, error) {
	if v, ok := c.store.Load().Load(string(raw)); ok {
		return v.(proofKey), true, nil
	}
	k, err := parseProofKey(raw)
	return k, false, err
}

func (c *keyCache) put(raw json.RawMessage, k proofKey) {
	if c.n.Add(1) > c.max {
		c.store.Store(new(sync.Map))
		c.n.Store(1)
	}
	c.store.Load().Store(string(raw), k)
}

// parseProofKey parses the jwk header with jwx and accepts only an
// asymmetric public key: private members (d, p, q, ...) or a symmetric
// key make it ErrProofKey.
func parseProofKey(raw json.RawMessage) (proofKey, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return proofKey{}, ErrProofKey
	}
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return proofKey{}, ErrProofKey
	}
	private, err := jwk.IsPrivateKey(key)
	if err != nil || private { // a symmetric key is not asymmetric: err
		return proofKey{}, ErrProofKey
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return proofKey{}, ErrProofKey
	}
	var pub any
	if err := jwk.Export(key, &pub); err != nil {
		return proofKey{}, ErrProofKey
	}
	return proofKey{pub: pub, jkt: base64.RawURLEncoding.EncodeToString(tp)}, nil
}
