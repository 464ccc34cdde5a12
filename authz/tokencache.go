package authz

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tokengate/tokengate/verify"
)

// The verified-token cache remembers successful JWT verifications, so that
// a token seen again skips parsing and signature work. It belongs to one
// Policy: a reload builds a new Policy, and with it an empty cache, since the
// verifiers and their keys may have changed.
//
// What it holds per token: the verifier that accepted it, the token's "aud"
// and the resulting identity, with its header values precomputed. It never
// holds the token: the key is the token's SHA-256.
//
// Lifetime: an entry answers until min(exp, verification + tokenCacheMaxTTL)
// on the verifiers' clock, never past exp (the clock skew tolerance that
// Verify grants past exp is left to Verify: past exp the entry misses and the
// token is verified again). An entry also stops answering as soon as its
// verifier's key set is replaced (JWKS refresh or refetch), so a key removed
// from the JWKS stops vouching for cached tokens at the same time as for new
// ones.
//
// Per route, a hit still runs the route's own checks: the accepting verifier
// must be offered the token by this route (one of its JWT verifiers for the
// token's issuer, tried in the route's order), the audience is checked again
// against this route's expected audiences, and the scopes against its
// required scopes.
//
// Bound and concurrency: the cache is split into up to 64 shards by the
// key's first bytes, each with its own lock and a fixed share of the size.
// Each shard evicts with CLOCK (second chance) rather than strict LRU: a hit
// only sets a reference bit under the shard's read lock, whereas LRU would
// move the entry to the front of a list under the write lock on every hit,
// serialising concurrent Checks of one shard. CLOCK approximates LRU well
// for this workload (a working set of active sessions), and expired or
// superseded entries are the first to go.

// tokenCacheMaxTTL bounds how long one verification is reused, whatever the
// token's exp.
const tokenCacheMaxTTL = 5 * time.Minute

// Shard sizing: at most maxTokenShards shards, each of at least
// minTokenShardSize entries (a small cache has fewer shards, so that its
// bound is exact and its eviction order meaningful).
const (
	maxTokenShards    = 64
	minTokenShardSize = 16
)

// tokenKey is the SHA-256 of a raw token.
type tokenKey [sha256.Size]byte

// newTokenKey hashes raw in place: sha256 only reads its input, and
// []byte(raw) would copy the token (up to 16 KiB) on every Check.
func newTokenKey(raw string) tokenKey {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// cacheableJWT is a JWT verifier whose verifications can be reused:
// *verify.JWT.
type cacheableJWT interface {
	verify.Verifier
	// KeysVersion changes whenever the verifier's keys are replaced.
	KeysVersion() verify.KeysVersion
	// CheckAudience is Verify's audience rule for an accepted token's aud.
	CheckAudience(aud, audiences []string) error
}

// idHeaders are the header values of an identity that take work to
// compute: the joined scopes and the values of the claims that routes copy
// into headers (values[i] is claim names[i]; a slice is smaller than a map).
type idHeaders struct {
	scopes        string
	names, values []string
}

// claim returns the header value of the named claim ("" if absent).
func (h *idHeaders) claim(name string) string {
	for i, n := range h.names {
		if n == name {
			return h.values[i]
		}
	}
	return ""
}

// tokenEntry is one remembered verification. Only ref changes after
// insertion.
type tokenEntry struct {
	key      tokenKey
	v        cacheableJWT
	keys     verify.KeysVersion
	issuer   string
	aud      []string
	deadline time.Time
	// id is the identity, without its payload (the claim headers' values are
	// in hdrs).
	id   verify.Identity
	hdrs idHeaders
	// ref is CLOCK's reference bit, set by hits.
	ref atomic.Bool
}

// usable reports whether the entry may still answer at now.
func (e *tokenEntry) usable(now time.Time) bool {
	return now.Before(e.deadline) && e.v.KeysVersion() == e.keys
}

// check redoes a route's verifier-level checks for a remembered token: its
// aud against the route's expected audiences for this verifier.
func (e *tokenEntry) check(audiences []string) (*verify.Identity, error) {
	if err := e.v.CheckAudience(e.aud, audiences); err != nil {
		return nil, err
	}
	return &e.id, nil
}

// tokenCache is a bounded, sharded map from token hash to verification.
type tokenCache struct {
	shards []tokenShard
	mask   uint64
	now    func() time.Time
	// claims are every claim some route copies into a header, and
	// claimNames their names.
	claims     []claimHeader
	claimNames []string
	// report is told "hit" or "miss" for every lookup; nil means nobody
	// listens.
	report func(result string)
}

type tokenShard struct {
	mu    sync.RWMutex
	index map[tokenKey]int
	slots []*tokenEntry
	hand  int
	limit int
	// Keeps neighbouring shards' locks off one cache line.
	_ [64]byte
}

// newTokenCache returns a cache of size entries for the policy's routes, or
// nil when size is 0 (disabled).
func newTokenCache(size int, routes []*Route, o BuildOptions) *tokenCache {
	if size <= 0 {
		return nil
	}
	n := 1
	for n < maxTokenShards && size/(2*n) >= minTokenShardSize {
		n *= 2
	}
	c := &tokenCache{shards: make([]tokenShard, n), mask: uint64(n - 1), now: o.Now, report: cacheHook(o.OnCache, "token")}
	if c.now == nil {
		c.now = time.Now
	}
	for i := range c.shards {
		c.shards[i].limit = size / n
		if i < size%n {
			c.shards[i].limit++
		}
		c.shards[i].index = map[tokenKey]int{}
	}
	seen := map[string]bool{}
	for _, r := range routes {
		for _, ch := range r.claimHeaders {
			if !seen[ch.claim] {
				seen[ch.claim] = true
				c.claims = append(c.claims, ch)
				c.claimNames = append(c.claimNames, ch.claim)
			}
		}
	}
	return c
}

func (c *tokenCache) shard(k *tokenKey) *tokenShard {
	return &c.shards[binary.LittleEndian.Uint64(k[:8])&c.mask]
}

// get returns the usable entry for k, or nil, and reports a hit or a miss.
func (c *tokenCache) get(k *tokenKey) *tokenEntry {
	s := c.shard(k)
	s.mu.RLock()
	var e *tokenEntry
	if i, ok := s.index[*k]; ok {
		e = s.slots[i]
		// Set under the read lock, so that an eviction sweep (under the
		// write lock) never sees bits set behind it and always ends.
		if !e.ref.Load() {
			e.ref.Store(true)
		}
	}
	s.mu.RUnlock()
	if e != nil && !e.usable(c.now()) {
		e = nil
	}
	if c.report != nil {
		if e != nil {
			c.report("hit")
		} else {
			c.report("miss")
		}
	}
	return e
}

// put remembers that v, with keys, accepted the token t hashed to k and
// returned id. It returns the entry, or nil when the token is too close to
// its exp to be worth remembering.
func (c *tokenCache) put(k tokenKey, v cacheableJWT, keys verify.KeysVersion, t *verify.Token, id *verify.Identity) *tokenEntry {
	now := c.now()
	if t.Claims == nil || t.Claims.Expiry == nil {
		return nil // Verify requires exp; never cache without one
	}
	deadline := now.Add(tokenCacheMaxTTL)
	if exp := t.Claims.Expiry.Time; exp.Before(deadline) {
		deadline = exp
	}
	if !now.Before(deadline) {
		return nil
	}
	e := &tokenEntry{
		key: k, v: v, keys: keys, issuer: t.Claims.Issuer, aud: t.Claims.Audience, deadline: deadline,
		id:   *id,
		hdrs: idHeaders{scopes: strings.Join(id.Scopes, " ")},
	}
	e.id.Payload = nil
	if len(c.claims) > 0 && id.Payload != nil {
		values := claimValues(id.Payload, c.claims)
		e.hdrs.names, e.hdrs.values = c.claimNames, make([]string, len(c.claimNames))
		for i, name := range c.claimNames {
			e.hdrs.values[i] = values[name]
		}
	}

	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch i, ok := s.index[k]; {
	case ok:
		s.slots[i] = e
	case len(s.slots) < s.limit:
		s.index[k] = len(s.slots)
		s.slots = append(s.slots, e)
	default:
		i := s.victim(now)
		delete(s.index, s.slots[i].key)
		s.slots[i] = e
		s.index[k] = i
	}
	return e
}

// victim advances the clock hand to the first entry that is unusable or
// was not referenced since the hand last passed, clearing reference bits on
// the way, and returns its slot. Called with the write lock held on a full
// shard; it ends within two turns.
func (s *tokenShard) victim(now time.Time) int {
	for {
		i := s.hand
		if s.hand++; s.hand == len(s.slots) {
			s.hand = 0
		}
		e := s.slots[i]
		if !e.usable(now) || !e.ref.Swap(false) {
			return i
		}
	}
}

// len returns the number of entries held.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.slots)
		s.mu.RUnlock()
	}
	return n
}

// jwsShaped reports whether raw has the three segments of a compact JWS;
// only such tokens are worth hashing and looking up.
func jwsShaped(raw string) bool {
	i := strings.IndexByte(raw, '.')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(raw[i+1:], '.')
	return j >= 0 && strings.IndexByte(raw[i+1+j+1:], '.') < 0
}
