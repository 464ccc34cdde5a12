package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
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
// *JWT (tests wrap it).
type cacheableJWT interface {
	Verifier
	// keysVersion changes whenever the verifier's keys are replaced.
	keysVersion() keysVersion
	// checkAudience is Verify's audience rule for an accepted token's aud.
	checkAudience(aud, audiences []string) error
}

// entrySource is what an entry was verified with: the verifier that
// accepted the token and the key set it used. Entries share one per
// verifier and key set, so that each holds a single pointer for both.
type entrySource struct {
	v    cacheableJWT
	keys keysVersion
}

// sourceKey finds an entrySource.
type sourceKey struct {
	v    cacheableJWT
	keys keysVersion
}

// tokenEntry is one remembered verification. Only ref changes after
// insertion.
//
// An entry is small and holds two pointers, for the garbage collector's
// sake: a full cache is most of tokengate's heap, and every collection
// marks all of it. Its source is shared with other entries; its strings
// are in data, one allocation without pointers, which the collector marks
// without reading it. With its data and its share of the index, an entry
// takes about 150 bytes (see docs/benchmarks.md).
type tokenEntry struct {
	key tokenKey
	src *entrySource
	// born is when the token was verified, as the time since the cache's
	// epoch (on the monotonic clock when the cache's clock has one); exp is
	// the token's exp in Unix nanoseconds.
	born, exp int64
	// data holds the identity (see entryData): its subject and client ID,
	// its scopes, the token's "aud", and the values of the claims that
	// routes copy into headers. The issuer and the verifier's name are the
	// verifier's own.
	data string
	// ref is CLOCK's reference bit, set by hits.
	ref atomic.Bool
}

// verifier returns the verifier that accepted the token.
func (e *tokenEntry) verifier() cacheableJWT { return e.src.v }

// checkAudience redoes a route's verifier-level check for a remembered
// token: its "aud" against the route's expected audiences for this
// verifier.
func (e *tokenEntry) checkAudience(c *tokenCache, audiences []string) error {
	f := e.fields()
	if v, ok := e.src.v.(*JWT); ok {
		// A direct call keeps buf off the heap.
		var buf [4]string
		return v.checkAudience(c.appendAud(buf[:0], f.aud), audiences)
	}
	return e.src.v.checkAudience(c.appendAud(nil, f.aud), audiences)
}

// hasScopes reports whether the remembered identity has every scope in
// want.
func (e *tokenEntry) hasScopes(want []string) bool {
	for _, w := range want {
		if !e.hasScope(w) {
			return false
		}
	}
	return true
}

// hasScope reports whether the remembered identity has scope w.
func (e *tokenEntry) hasScope(w string) bool {
	f := e.fields()
	for rest, lens := f.joinedScopes, f.scopeLens; len(lens) > 0; {
		n := entryLen(lens)
		if rest[:n] == w {
			return true
		}
		lens = lens[2:]
		if len(lens) > 0 {
			rest = rest[n+1:] // and the space
		}
	}
	return false
}

// An entry's data is a header of entryParts 2-byte little-endian offsets,
// each the end of one part, then the parts: the subject, the client ID, the
// scopes joined with spaces (the x-auth-scopes value), the scopes' lengths
// (2 bytes each: the scopes are cut from the joined string, as a scope may
// itself hold a space), the token's audiences, and the values of the
// cache's claims, in the order of their names. An audience or a claim
// value is a 2-byte length and its bytes; an audience that the
// configuration names is not spelled out: its length holds internedAud plus
// its index in the cache's audiences. So data is shorter than 64 KiB and a
// string than 32 KiB, as every string of a verified token is: a token is at
// most MaxTokenSize bytes. Longer ones are not cached.
const (
	entryParts  = 5 // offsets; the last part ends with data
	entryHeader = 2 * entryParts
	internedAud = 0x8000
)

// entryLen reads the 2-byte length at the start of b.
func entryLen(b string) int { return int(b[0]) | int(b[1])<<8 }

// entryFields are an entry's data, read: strings point into it.
type entryFields struct {
	sub, clientID, joinedScopes string
	// The lists, still encoded.
	scopeLens, aud, claims string
}

// fields reads e.data.
func (e *tokenEntry) fields() entryFields {
	d := e.data
	o1, o2, o3 := entryLen(d), entryLen(d[2:]), entryLen(d[4:])
	o4, o5 := entryLen(d[6:]), entryLen(d[8:])
	return entryFields{
		sub: d[entryHeader:o1], clientID: d[o1:o2], joinedScopes: d[o2:o3],
		scopeLens: d[o3:o4], aud: d[o4:o5], claims: d[o5:],
	}
}

// claim returns the value of the claim name, one of names, the cache's
// claim names, or "" if the token has none.
func (f entryFields) claim(names []string, name string) string {
	b := f.claims
	for _, n := range names {
		if len(b) < 2 {
			break
		}
		l := entryLen(b)
		if n == name {
			return b[2 : 2+l]
		}
		b = b[2+l:]
	}
	return ""
}

// appendAud appends the audiences that aud, an encoded audience list,
// holds.
func (c *tokenCache) appendAud(list []string, aud string) []string {
	for len(aud) > 0 {
		n := entryLen(aud)
		aud = aud[2:]
		if n >= internedAud {
			list = append(list, c.audiences[n-internedAud])
			continue
		}
		list = append(list, aud[:n])
		aud = aud[n:]
	}
	return list
}

// entryData encodes id and the token's audiences (its "aud", or the
// verifier's audience claim) as an entry's data, or
// returns "" if they do not fit.
func (c *tokenCache) entryData(t *Token, id *Identity, aud []string) string {
	b := make([]byte, entryHeader, 128)
	ok := true
	end := func(part int) {
		if len(b) > 0xffff {
			ok = false
			return
		}
		b[2*part], b[2*part+1] = byte(len(b)), byte(len(b)>>8)
	}
	length := func(n int) {
		if n < 0 || n >= internedAud {
			ok = false
		}
		b = append(b, byte(n), byte(n>>8))
	}
	b = append(b, id.Subject...)
	end(0)
	b = append(b, id.ClientID...)
	end(1)
	for i, s := range id.Scopes {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	end(2)
	for _, s := range id.Scopes {
		length(len(s))
	}
	end(3)
	for _, a := range aud {
		if i := slices.Index(c.audiences, a); i >= 0 {
			b = append(b, byte(internedAud+i), byte((internedAud+i)>>8))
			continue
		}
		length(len(a))
		b = append(b, a...)
	}
	end(4)
	var values map[string]string
	if len(c.claimNames) > 0 && id.Payload != nil {
		values = claimValues(id.Payload, c.claimNames)
	}
	for _, name := range c.claimNames {
		v := values[name]
		length(len(v))
		b = append(b, v...)
	}
	if !ok || len(b) > 0xffff {
		return ""
	}
	return string(b)
}

// tokenCache is a bounded, sharded map from token hash to verification.
type tokenCache struct {
	shards []tokenShard
	mask   uint64
	now    func() time.Time
	// epoch is the clock's reading at creation: entries' ages are counted
	// from it.
	epoch time.Time
	// claimNames are every claim some route copies into a header.
	claimNames []string
	// audiences are the audiences the configuration names (at most
	// maxInternedAud), which entries refer to by index.
	audiences []string
	// sources are the entries' shared sources.
	sourcesMu sync.Mutex
	sources   map[sourceKey]*entrySource
	// report is told "hit" or "miss" for every lookup; nil means nobody
	// listens.
	report func(result string)
}

// maxInternedAud bounds tokenCache.audiences.
const maxInternedAud = 256

// tokenShard is one shard: entries in slots, found through index by the
// 8 bytes of their key that follow the bytes that chose the shard. Two
// tokens may share those 8 bytes: a lookup then compares the whole key,
// and an insert replaces the other token's entry.
type tokenShard struct {
	mu    sync.RWMutex
	index map[uint64]int32
	slots []*tokenEntry
	hand  int
	limit int
	// Keeps neighbouring shards' locks off one cache line.
	_ [64]byte
}

// indexKey is k's key in its shard's index.
func indexKey(k *tokenKey) uint64 { return binary.LittleEndian.Uint64(k[8:16]) }

// CacheOptions configure the verified-token cache that every route's
// Chain of one policy shares.
type CacheOptions struct {
	// Size bounds the entries; 0 disables caching.
	Size int
	// ClaimNames are the claims routes copy into headers: entries keep
	// their values, and every Result answers them.
	ClaimNames []string
	// Audiences are the expected audiences the configuration names: entries
	// refer to them by index rather than spelling them out.
	Audiences []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnLookup is told "hit" or "miss" for every lookup; nil means nobody
	// listens.
	OnLookup func(result string)
}

// TokenCache remembers verified JWTs for the Chains of one policy (see the
// top of this file). A reload builds a new one, and with it an empty cache.
type TokenCache = tokenCache

// NewTokenCache returns the cache o describes. With Size 0 it remembers
// nothing but still knows the claim names.
func NewTokenCache(o CacheOptions) *TokenCache {
	c := &tokenCache{now: o.Now, report: o.OnLookup, claimNames: slices.Clone(o.ClaimNames)}
	if c.now == nil {
		c.now = time.Now
	}
	c.epoch = c.now()
	c.internAudiences(o.Audiences)
	if o.Size <= 0 {
		return c
	}
	n := 1
	for n < maxTokenShards && o.Size/(2*n) >= minTokenShardSize {
		n *= 2
	}
	c.shards, c.mask = make([]tokenShard, n), uint64(n-1)
	c.sources = map[sourceKey]*entrySource{}
	for i := range c.shards {
		c.shards[i].limit = o.Size / n
		if i < o.Size%n {
			c.shards[i].limit++
		}
		c.shards[i].index = map[uint64]int32{}
	}
	return c
}

// enabled reports whether the cache remembers anything.
func (c *tokenCache) enabled() bool { return len(c.shards) > 0 }

// internAudiences adds audiences to those entries refer to by index.
func (c *tokenCache) internAudiences(audiences []string) {
	for _, a := range audiences {
		if len(c.audiences) < maxInternedAud && !slices.Contains(c.audiences, a) {
			c.audiences = append(c.audiences, a)
		}
	}
}

func (c *tokenCache) shard(k *tokenKey) *tokenShard {
	return &c.shards[binary.LittleEndian.Uint64(k[:8])&c.mask]
}

// usable reports whether e may still answer at now.
func (c *tokenCache) usable(e *tokenEntry, now time.Time) bool {
	return int64(now.Sub(c.epoch)) < e.born+int64(tokenCacheMaxTTL) && now.UnixNano() < e.exp &&
		e.src.v.keysVersion() == e.src.keys
}

// get returns the usable entry for k, or nil, and reports a hit or a miss.
func (c *tokenCache) get(k *tokenKey) *tokenEntry {
	s := c.shard(k)
	s.mu.RLock()
	var e *tokenEntry
	if i, ok := s.index[indexKey(k)]; ok && s.slots[i].key == *k {
		e = s.slots[i]
		// Set under the read lock, so that an eviction sweep (under the
		// write lock) never sees bits set behind it and always ends.
		if !e.ref.Load() {
			e.ref.Store(true)
		}
	}
	s.mu.RUnlock()
	if e != nil && !c.usable(e, c.now()) {
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

// source returns the shared source for v and keys.
func (c *tokenCache) source(v cacheableJWT, keys keysVersion) *entrySource {
	k := sourceKey{v: v, keys: keys}
	c.sourcesMu.Lock()
	defer c.sourcesMu.Unlock()
	src := c.sources[k]
	if src == nil {
		// Sources of replaced key sets are dropped here, lest the map grow
		// with every JWKS refresh; entries keep theirs alive until evicted.
		for old := range c.sources {
			if old.v == v {
				delete(c.sources, old)
			}
		}
		src = &entrySource{v: v, keys: keys}
		c.sources[k] = src
	}
	return src
}

// put remembers that v, with keys, accepted the token t hashed to k and
// returned id. It returns the entry, or nil when the token is too close to
// its exp to be worth remembering, or when an entry could not stand for id
// exactly.
func (c *tokenCache) put(k tokenKey, v cacheableJWT, keys keysVersion, t *Token, id *Identity) *tokenEntry {
	now := c.now()
	if t.Claims == nil || t.Claims.Expiry == nil {
		return nil // Verify requires exp; never cache without one
	}
	if id.Issuer != v.Issuer() || t.Claims.Issuer != v.Issuer() || id.Verifier != v.Name() {
		return nil // an entry answers with v's issuer and name
	}
	exp := t.Claims.Expiry.Time
	if !now.Before(exp) {
		return nil
	}
	aud, ok := tokenAudience(v, t, id)
	if !ok {
		return nil
	}
	data := c.entryData(t, id, aud)
	if data == "" {
		return nil
	}
	e := &tokenEntry{key: k, src: c.source(v, keys), born: int64(now.Sub(c.epoch)), exp: exp.UnixNano(), data: data}

	s := c.shard(&k)
	ik := indexKey(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch i, ok := s.index[ik]; {
	case ok:
		s.slots[i] = e
	case len(s.slots) < s.limit:
		s.index[ik] = int32(len(s.slots))
		s.slots = append(s.slots, e)
	default:
		i := s.victim(c, now)
		delete(s.index, indexKey(&s.slots[i].key))
		s.slots[i] = e
		s.index[ik] = int32(i)
	}
	return e
}

// victim advances the clock hand to the first entry that is unusable or
// was not referenced since the hand last passed, clearing reference bits on
// the way, and returns its slot. Called with the write lock held on a full
// shard; it ends within two turns.
func (s *tokenShard) victim(c *tokenCache, now time.Time) int {
	for {
		i := s.hand
		if s.hand++; s.hand == len(s.slots) {
			s.hand = 0
		}
		e := s.slots[i]
		if !c.usable(e, now) || !e.ref.Swap(false) {
			return i
		}
	}
}

// Len returns the number of entries held.
func (c *tokenCache) Len() int {
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
