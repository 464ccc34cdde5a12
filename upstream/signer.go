package upstream

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
)

// RetireGrace is how long a key dropped from the configuration stays
// published after the last assertion it signed expired, so that an upstream
// that tolerates some clock skew can still verify that assertion.
const RetireGrace = time.Minute

// signingKey is one assertion key. It is shared between the Signers of
// successive configurations that keep it, so that lastExp (the latest exp
// it ever signed) survives a reload.
type signingKey struct {
	kid   string
	thumb string // RFC 7638 thumbprint: the key's identity across reloads
	alg   jwa.SignatureAlgorithm
	priv  any
	pub   jwk.Key
	hdr   jws.Headers // protected header: typ JWT and kid (jws.Sign clones it)
	// lastExp is the unix time of the latest exp this key signed.
	lastExp atomic.Int64
}

// noteExp records that the key signed an assertion expiring at exp.
func (k *signingKey) noteExp(exp int64) {
	for {
		cur := k.lastExp.Load()
		if exp <= cur || k.lastExp.CompareAndSwap(cur, exp) {
			return
		}
	}
}

// publishedUntil is when a retired key leaves the JWKS.
func (k *signingKey) publishedUntil() time.Time {
	return time.Unix(k.lastExp.Load(), 0).Add(RetireGrace)
}

// SignerOptions are a Signer's optional dependencies.
type SignerOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Signer signs upstream assertions with tokengate's newest assertion key and
// publishes the public JWKS of every configured key, plus the keys a
// previous configuration dropped until their last assertion has expired.
// It is safe for concurrent use.
type Signer struct {
	issuer    string
	signing   *signingKey
	published []*signingKey // configured, signing key first
	retired   []*signingKey // dropped by a reload, still published
	jwks      atomic.Pointer[jwksDoc]
	cache     *shardedCache[cachedAssertion]
	now       func() time.Time
}

// jwksDoc is the serialized JWKS, valid until a retired key leaves it (zero:
// for ever) or a retired key signs again (seen holds each retired key's
// lastExp at build time).
type jwksDoc struct {
	body  []byte
	until time.Time
	seen  []int64
}

// current reports whether the document still lists the right keys at now.
func (d *jwksDoc) current(now time.Time, retired []*signingKey) bool {
	if !d.until.IsZero() && !now.Before(d.until) {
		return false
	}
	for i, k := range retired {
		if k.lastExp.Load() != d.seen[i] {
			return false
		}
	}
	return true
}

// NewSigner loads the keys of cfg (which must be Enabled and valid) and
// returns a Signer. previous is the Signer of the configuration being
// replaced, or nil: keys it held that cfg no longer lists stay published
// until their last assertion expired (plus RetireGrace), keys cfg still
// lists keep their history, and when the signing key and issuer are
// unchanged the assertion cache is kept. Errors are a *config.Error whose
// problems name the key path (assertion.keys[1].key_file); they never hold
// key material.
func NewSigner(cfg config.Assertion, previous *Signer, o SignerOptions) (*Signer, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if cfg.Issuer == "" {
		return nil, &config.Error{Problems: []config.Problem{{Path: "assertion.issuer", Msg: "is required"}}}
	}
	known := map[string]*signingKey{}
	if previous != nil {
		for _, k := range append(append([]*signingKey(nil), previous.published...), previous.retired...) {
			known[k.thumb] = k
		}
	}
	s := &Signer{issuer: cfg.Issuer, now: now}
	var probs []config.Problem
	kids := map[string]bool{}
	list := cfg.SigningKeys()
	if len(list) == 0 {
		probs = append(probs, config.Problem{Path: "assertion.key_file", Msg: "is required"})
	}
	for i, kc := range list {
		path := fmt.Sprintf("assertion.keys[%d]", i)
		if cfg.KeyFile != "" {
			path = "assertion"
		}
		k, err := loadSigningKey(kc)
		if err != nil {
			probs = append(probs, config.Problem{Path: path + ".key_file", Msg: err.Error()})
			continue
		}
		if prev, ok := known[k.thumb]; ok && prev.kid == k.kid {
			k = prev // same key, same kid: keep its history
		}
		if kids[k.kid] {
			probs = append(probs, config.Problem{Path: path + ".kid", Msg: fmt.Sprintf("kid %q is used by another key", k.kid)})
			continue
		}
		kids[k.kid] = true
		s.published = append(s.published, k)
	}
	if len(probs) > 0 {
		return nil, &config.Error{Problems: probs}
	}
	s.signing = s.published[0]
	inUse := map[*signingKey]bool{}
	for _, k := range s.published {
		inUse[k] = true
	}
	t := now()
	if previous != nil {
		// The previous configuration's own keys are kept even if they have
		// not signed yet: requests still in flight under it may sign with
		// them after this point. Older retired keys stay while live.
		candidates := []*signingKey{}
		for _, k := range previous.published {
			if k.lastExp.Load() == 0 || t.Before(k.publishedUntil()) {
				candidates = append(candidates, k)
			}
		}
		for _, k := range previous.retired {
			if k.lastExp.Load() != 0 && t.Before(k.publishedUntil()) {
				candidates = append(candidates, k)
			}
		}
		for _, k := range candidates {
			if inUse[k] {
				continue
			}
			if kids[k.kid] {
				if k.lastExp.Load() == 0 {
					continue // never signed: nothing to keep verifiable
				}
				return nil, &config.Error{Problems: []config.Problem{{Path: "assertion", Msg: fmt.Sprintf(
					"kid %q now names a different key while assertions signed by the old one are still valid (until %s); give the new key a new kid",
					k.kid, k.publishedUntil().UTC().Format(time.RFC3339))}}}
			}
			inUse[k] = true
			s.retired = append(s.retired, k)
		}
	}
	if previous != nil && previous.signing == s.signing && previous.issuer == s.issuer && previous.cache != nil &&
		previous.cache.perShardOrZero() == cachePerShard(cfg.Cache()) {
		s.cache = previous.cache
	} else {
		s.cache = newShardedCache[cachedAssertion](cfg.Cache())
	}
	doc, err := s.buildJWKS(t)
	if err != nil {
		return nil, err
	}
	s.jwks.Store(doc)
	return s, nil
}

// cachePerShard is the per-shard bound of a cache of size entries.
func cachePerShard(size int) int {
	if size <= 0 {
		return 0
	}
	return (size + cacheShards - 1) / cacheShards
}

// perShardOrZero is the per-shard bound, 0 for a disabled cache.
func (c *shardedCache[V]) perShardOrZero() int {
	if c == nil {
		return 0
	}
	return c.perShard
}

// Issuer is the iss of the assertions.
func (s *Signer) Issuer() string { return s.issuer }

// KeyID is the kid of the key that signs now.
func (s *Signer) KeyID() string { return s.signing.kid }

// JWKS returns the public JWK Set document (application/json) to serve at
// /.well-known/jwks.json: every configured key and every retired key whose
// assertions may still be valid. It is precomputed; the document is rebuilt
// only when a retired key is due to leave it or signs once more (a request
// still in flight under the previous configuration). Callers must not
// modify it.
func (s *Signer) JWKS() []byte {
	doc := s.jwks.Load()
	now := s.now()
	if doc.current(now, s.retired) {
		return doc.body
	}
	fresh, err := s.buildJWKS(now)
	if err != nil {
		return doc.body // cannot happen: the same keys encoded before
	}
	s.jwks.Store(fresh)
	return fresh.body
}

func (s *Signer) buildJWKS(now time.Time) (*jwksDoc, error) {
	set := jwk.NewSet()
	doc := &jwksDoc{seen: make([]int64, len(s.retired))}
	for _, k := range s.published {
		if err := set.AddKey(k.pub); err != nil {
			return nil, fmt.Errorf("building JWKS: %w", err)
		}
	}
	for i, k := range s.retired {
		doc.seen[i] = k.lastExp.Load()
		until := k.publishedUntil()
		if !now.Before(until) {
			continue
		}
		if err := set.AddKey(k.pub); err != nil {
			return nil, fmt.Errorf("building JWKS: %w", err)
		}
		if doc.until.IsZero() || until.Before(doc.until) {
			doc.until = until
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding JWKS: %w", err)
	}
	doc.body = body
	return doc, nil
}

// loadSigningKey reads one key file and prepares its public JWK and header.
// Messages describe the key type, never key material.
func loadSigningKey(kc config.AssertionKey) (*signingKey, error) {
	priv, err := keys.LoadPrivateKey(kc.KeyFile)
	if err != nil {
		return nil, err
	}
	alg, err := keyAlgorithm(priv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kc.KeyFile, err)
	}
	thumb, err := keys.Thumbprint(priv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kc.KeyFile, err)
	}
	kid := kc.Kid
	if kid == "" {
		kid = thumb
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		return nil, fmt.Errorf("%s: deriving public JWK: %w", kc.KeyFile, err)
	}
	for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := pub.Set(name, v); err != nil {
			return nil, fmt.Errorf("%s: setting JWK %q: %w", kc.KeyFile, name, err)
		}
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, kid); err != nil {
		return nil, err
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, thumb: thumb, alg: alg, priv: priv, pub: pub, hdr: hdr}, nil
}

// errKeyType names the key types an assertion key may have.
var errKeyType = errors.New("must be an ES256 (ECDSA P-256), EdDSA (Ed25519) or RS256 (RSA of at least 2048 bits) private key")

// keyAlgorithm returns the signing algorithm for a private key.
func keyAlgorithm(priv any) (jwa.SignatureAlgorithm, error) {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve.Params().Name == "P-256" {
			return jwa.ES256(), nil
		}
	case ed25519.PrivateKey:
		return jwa.EdDSA(), nil
	case *rsa.PrivateKey:
		if k.N.BitLen() >= 2048 {
			return jwa.RS256(), nil
		}
	}
	return jwa.EmptySignatureAlgorithm(), errKeyType
}
