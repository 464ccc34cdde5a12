package dpop

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// maxCachedHeads bounds the proof-header cache.
const maxCachedHeads = 10_000

// proofKey is a parsed jwk header: the public key to verify with and its
// RFC 7638 thumbprint.
type proofKey struct {
	pub any    // *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey
	jkt string // base64url SHA-256 thumbprint
}

// proofHead is a checked protected header: its algorithm (allowed) and
// its jwk (an asymmetric public key).
type proofHead struct {
	alg jwa.SignatureAlgorithm
	key proofKey
}

// headCache maps the exact base64 protected-header segment of a proof to
// its checked header, so that a client's stream of proofs (same typ, alg
// and jwk each time) decodes and parses its header once. It caches parsing
// only: every proof's signature, claims and jti are still checked. Entries
// are added only for headers whose key has signed a valid proof; when
// full, the cache starts over.
type headCache struct {
	max   int64
	n     atomic.Int64
	store atomic.Pointer[sync.Map]
}

func newHeadCache(max int) *headCache {
	c := &headCache{max: int64(max)}
	c.store.Store(new(sync.Map))
	return c
}

// get returns the cached header of seg, if any.
func (c *headCache) get(seg string) (proofHead, bool) {
	if v, ok := c.store.Load().Load(seg); ok {
		return v.(proofHead), true
	}
	return proofHead{}, false
}

func (c *headCache) put(seg string, h proofHead) {
	if c.n.Add(1) > c.max {
		c.store.Store(new(sync.Map))
		c.n.Store(1)
	}
	c.store.Load().Store(seg, h)
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
