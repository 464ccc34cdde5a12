package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Nonce sizes: an 8-byte time slot and a 16-byte truncated HMAC-SHA-256.
const (
	nonceSlotLen = 8
	nonceMACLen  = 16
	nonceLen     = nonceSlotLen + nonceMACLen
	// MinNonceKeyLen is the smallest key NewNonces accepts.
	MinNonceKeyLen = 32
)

// Nonces issues and checks stateless server nonces (RFC 9449 section 9).
// A nonce is base64url(slot || HMAC-SHA-256(key, slot)[:16]) where slot is
// the number of the rotation interval it was issued in. The nonce of the
// current slot and of the previous one are accepted, so a nonce lives
// between one and two intervals.
//
// Replicas accept each other's nonces only when they share the key; with a
// random per-process key a client that lands on another replica gets one
// more use_dpop_nonce answer and retries with that replica's nonce.
type Nonces struct {
	key      []byte
	interval time.Duration
	now      func() time.Time
	cur      atomic.Pointer[issuedNonce]
}

type issuedNonce struct {
	slot  uint64
	value string
}

// NewNonces returns a nonce source rotating every interval. key nil means a
// random 32-byte key for this process; otherwise it must be at least
// MinNonceKeyLen bytes. now nil means time.Now.
func NewNonces(key []byte, interval time.Duration, now func() time.Time) (*Nonces, error) {
	if interval < time.Second {
		return nil, fmt.Errorf("dpop: nonce interval must be at least 1s, got %s", interval)
	}
	if key == nil {
		key = make([]byte, MinNonceKeyLen)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("dpop: nonce key: %w", err)
		}
	} else if len(key) < MinNonceKeyLen {
		return nil, fmt.Errorf("dpop: nonce key must be at least %d bytes, got %d", MinNonceKeyLen, len(key))
	}
	if now == nil {
		now = time.Now
	}
	return &Nonces{key: append([]byte(nil), key...), interval: interval, now: now}, nil
}

// Current returns the nonce to hand out now.
func (n *Nonces) Current() string {
	slot := n.slot()
	if c := n.cur.Load(); c != nil && c.slot == slot {
		return c.value
	}
	c := &issuedNonce{slot: slot, value: n.issue(slot)}
	n.cur.Store(c)
	return c.value
}

// Check returns nil for a nonce of the current or previous slot,
// ErrNonceMissing for "", ErrNonceStale for an authentic older (or future)
// nonce, and ErrNonceInvalid for anything else.
func (n *Nonces) Check(nonce string) error {
	if nonce == "" {
		return ErrNonceMissing
	}
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceLen {
		return ErrNonceInvalid
	}
	var raw [nonceLen]byte
	if _, err := base64.RawURLEncoding.Decode(raw[:], []byte(nonce)); err != nil {
		return ErrNonceInvalid
	}
	slot := binary.BigEndian.Uint64(raw[:nonceSlotLen])
	if !hmac.Equal(raw[nonceSlotLen:], n.mac(slot)) {
		return ErrNonceInvalid
	}
	if cur := n.slot(); slot != cur && slot+1 != cur {
		return ErrNonceStale
	}
	return nil
}

// check is Check with the nonce to send attached to a failure.
func (n *Nonces) check(nonce string) error {
	err := n.Check(nonce)
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.nonce = n.Current()
		return &c
	}
	return err
}

func (n *Nonces) slot() uint64 {
	t := n.now().UnixNano()
	if t < 0 {
		return 0
	}
	return uint64(t) / uint64(n.interval)
}

func (n *Nonces) issue(slot uint64) string {
	var raw [nonceLen]byte
	binary.BigEndian.PutUint64(raw[:nonceSlotLen], slot)
	copy(raw[nonceSlotLen:], n.mac(slot))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (n *Nonces) mac(slot uint64) []byte {
	var b [nonceSlotLen]byte
	binary.BigEndian.PutUint64(b[:], slot)
	m := hmac.New(sha256.New, n.key)
	m.Write(b[:])
	return m.Sum(nil)[:nonceMACLen]
}
