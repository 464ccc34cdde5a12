package dpop

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Defaults of Config.
const (
	// DefaultMaxAge is the proof iat window (dpop.proof_max_age).
	DefaultMaxAge = 60 * time.Second
	// MaxProofSize caps one DPoP header value; an RSA 4096 proof is
	// about 1.5 KiB.
	MaxProofSize = 8 << 10
	// maxJTILen caps the jti claim.
	maxJTILen = 512
	// ProofType is the required typ header.
	ProofType = "dpop+jwt"
)

// DefaultAlgorithms are the proof algorithms accepted when
// Config.Algorithms is empty.
var DefaultAlgorithms = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}

// asymmetric lists every algorithm a proof may use; none and HS* are not
// here and can never be configured.
var asymmetric = []string{
	"ES256", "ES384", "ES512", "EdDSA",
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
}

// Config is the fixed setup of a Checker.
type Config struct {
	// Algorithms are the accepted proof algorithms (dpop.algorithms), a
	// subset of ES256, ES384, ES512, EdDSA, RS256, RS384, RS512, PS256,
	// PS384, PS512. Empty means DefaultAlgorithms.
	Algorithms []string
	// MaxAge is how old a proof's iat may be (dpop.proof_max_age). Zero
	// means DefaultMaxAge.
	MaxAge time.Duration
	// ClockSkew is allowed on both sides of the window (server.clock_skew).
	ClockSkew time.Duration
	// Nonces, when set, makes a valid server nonce mandatory (dpop.nonce).
	Nonces *Nonces
	// Store records proof IDs (dpop.replay_store). Required.
	Store ReplayStore
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Checker checks DPoP proofs. It is safe for concurrent use.
type Checker struct {
	algs   map[string]jwa.SignatureAlgorithm
	names  []string
	maxAge time.Duration
	skew   time.Duration
	ttl    time.Duration
	nonces *Nonces
	store  ReplayStore
	now    func() time.Time
	heads  *headCache
}

// Request is what one request offers to a proof.
type Request struct {
	// Method is the HTTP method (:method), compared with htm exactly.
	Method string
	// URL is the request URI as the client used it, see RequestURL. A
	// query and fragment are ignored; NormalizeHTU is applied.
	URL string
	// AccessToken is the DPoP access token; ath must be its SHA-256.
	AccessToken string
}

// NewChecker validates cfg and returns a Checker.
func NewChecker(cfg Config) (*Checker, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("dpop: a replay store is required")
	}
	names := cfg.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	c := &Checker{
		algs:   make(map[string]jwa.SignatureAlgorithm, len(names)),
		maxAge: cfg.MaxAge,
		skew:   cfg.ClockSkew,
		nonces: cfg.Nonces,
		store:  cfg.Store,
		now:    cfg.Now,
		heads:  newHeadCache(maxCachedHeads),
	}
	for _, n := range names {
		if !contains(asymmetric, n) {
			return nil, fmt.Errorf("dpop: algorithm %q is not allowed for proofs (use %s)", n, strings.Join(asymmetric, ", "))
		}
		a, ok := jwa.LookupSignatureAlgorithm(n)
		if !ok {
			return nil, fmt.Errorf("dpop: algorithm %q is not registered", n)
		}
		if _, dup := c.algs[n]; !dup {
			c.names = append(c.names, n)
		}
		c.algs[n] = a
	}
	if c.maxAge == 0 {
		c.maxAge = DefaultMaxAge
	}
	if c.maxAge < 0 || c.skew < 0 {
		return nil, fmt.Errorf("dpop: proof max age and clock skew must not be negative")
	}
	// A proof is acceptable while now is in [iat-skew, iat+maxAge+skew]
	// and is recorded no earlier than iat-skew: its entry must outlive
	// maxAge + 2*skew.
	c.ttl = c.maxAge + 2*c.skew
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Algorithms returns the accepted algorithms, for the algs parameter of the
// DPoP challenge and dpop_signing_alg_values_supported.
func (c *Checker) Algorithms() []string { return append([]string(nil), c.names...) }

// Nonce returns the nonce to send in DPoP-Nonce, or "" without nonces.
func (c *Checker) Nonce() string {
	if c.nonces == nil {
		return ""
	}
	return c.nonces.Current()
}

// proofClaims are the proof's payload members that Check reads.
type proofClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   *string         `json:"ath"`
	Nonce string          `json:"nonce"`
}

// Check checks the DPoP header values of one request against the request
// and the token's cnf.jkt (RFC 9449 sections 4.3 and 7.1). It returns nil
// or an *Error: class ErrInvalidProof for a bad proof, ErrUseNonce (with
// NonceOf) when a nonce is needed, ErrReplayStoreUnavailable when the jti
// could not be recorded. The checks run cheapest first; the jti is recorded
// last, only for a proof that passed everything else.
func (c *Checker) Check(ctx context.Context, proofs []string, req Request, wantJKT string) error {
	proof, err := onlyProof(proofs)
	if err != nil {
		return err
	}
	if wantJKT == "" {
		return ErrTokenNotBound
	}
	hseg, payload, err := splitProof(proof)
	if err != nil {
		return err
	}
	head, cached := c.heads.get(hseg)
	if !cached {
		if head, err = c.parseHead(hseg); err != nil {
			return err
		}
	}
	var cl proofClaims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return ErrProofMalformed
	}
	if cl.JTI == "" || len(cl.JTI) > maxJTILen {
		return ErrProofMalformed
	}
	if cl.HTM == "" || cl.HTM != req.Method {
		return ErrProofMethod
	}
	if err := checkHTU(cl.HTU, req.URL); err != nil {
		return err
	}
	if err := c.checkIAT(cl.IAT); err != nil {
		return err
	}
	if cl.ATH == nil || !equal(*cl.ATH, TokenHash(req.AccessToken)) {
		return ErrProofTokenHash
	}
	if !equal(head.key.jkt, wantJKT) {
		return ErrProofKeyMismatch
	}
	if c.nonces != nil {
		if err := c.nonces.check(cl.Nonce); err != nil {
			return err
		}
	}
	if _, err := jws.VerifyCompactFast(head.key.pub, []byte(proof), head.alg); err != nil {
		return ErrProofSignature
	}
	if !cached {
		c.heads.put(hseg, head) // only headers whose key has signed a proof
	}
	return c.store.Remember(ctx, NewReplayID(head.key.jkt, cl.JTI), c.ttl)
}

// onlyProof returns the single DPoP header value. Envoy joins repeated
// headers with ",", which a compact JWS never contains, so a comma means
// two proofs.
func onlyProof(proofs []string) (string, error) {
	switch {
	case len(proofs) == 0 || len(proofs) == 1 && strings.TrimSpace(proofs[0]) == "":
		return "", ErrProofMissing
	case len(proofs) > 1 || strings.IndexByte(proofs[0], ',') >= 0:
		return "", ErrProofCount
	case len(proofs[0]) > MaxProofSize:
		return "", ErrProofMalformed
	}
	return strings.TrimSpace(proofs[0]), nil
}

// proofHeader are the protected header members that Check reads before
// the signature. jws.VerifyCompactFast reads alg again and refuses crit and
// b64, so a header with two different alg members cannot pass.
type proofHeader struct {
	Typ string          `json:"typ"`
	Alg string          `json:"alg"`
	JWK json.RawMessage `json:"jwk"`
}

// splitProof splits a compact JWS into its header segment (still base64)
// and its decoded payload. Only the parsing is done here; the jwk is parsed
// and the signature checked by jwx.
func splitProof(proof string) (string, []byte, error) {
	first := strings.IndexByte(proof, '.')
	last := strings.LastIndexByte(proof, '.')
	if first < 0 || first == last || strings.IndexByte(proof[first+1:last], '.') >= 0 {
		return "", nil, ErrProofMalformed
	}
	payload, err := base64.RawURLEncoding.DecodeString(proof[first+1 : last])
	if err != nil {
		return "", nil, ErrProofMalformed
	}
	return proof[:first], payload, nil
}

// parseHead decodes a protected header segment and checks typ, alg and
// jwk, in that order.
func (c *Checker) parseHead(seg string) (proofHead, error) {
	var h proofHeader
	hb, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil || json.Unmarshal(hb, &h) != nil {
		return proofHead{}, ErrProofMalformed
	}
	if !strings.EqualFold(h.Typ, ProofType) {
		return proofHead{}, ErrProofType
	}
	alg, ok := c.algs[h.Alg]
	if !ok {
		return proofHead{}, ErrProofAlgorithm
	}
	key, err := parseProofKey(h.JWK)
	if err != nil {
		return proofHead{}, err
	}
	return proofHead{alg: alg, key: key}, nil
}

// checkHTU compares the proof's htu with the request URL, both normalized.
func checkHTU(htu, reqURL string) error {
	got, err := NormalizeHTU(htu, false)
	if err != nil {
		return ErrProofURI
	}
	want, err := NormalizeHTU(reqURL, true)
	if err != nil || got != want {
		return ErrProofURI
	}
	return nil
}

// checkIAT keeps iat, a JSON number (NumericDate), inside
// [now-maxAge-skew, now+skew]. A quoted number is malformed.
func (c *Checker) checkIAT(raw json.RawMessage) error {
	if len(raw) == 0 || raw[0] != '-' && !isDigit(raw[0]) {
		return ErrProofMalformed
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return ErrProofMalformed
	}
	now := float64(c.now().UnixNano()) / 1e9
	switch {
	case f > now+c.skew.Seconds():
		return ErrProofIssuedInFuture
	case f < now-(c.maxAge+c.skew).Seconds():
		return ErrProofExpired
	}
	return nil
}

// TokenHash returns the ath of an access token: base64url(SHA-256(token)).
func TokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
