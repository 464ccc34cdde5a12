package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DPoP configures sender-constrained tokens (contract section 11).
type DPoP struct {
	// Algorithms are the proof algorithms accepted (asymmetric only);
	// empty means ES256, ES384, EdDSA, RS256 and PS256.
	Algorithms []string `koanf:"algorithms" yaml:"algorithms,omitempty"`
	// ProofMaxAge is the proof iat window, plus server.clock_skew
	// (default 60s).
	ProofMaxAge Duration `koanf:"proof_max_age" yaml:"proof_max_age,omitempty"`
	// Nonce requires a server nonce (DPoP-Nonce, use_dpop_nonce).
	Nonce bool `koanf:"nonce" yaml:"nonce,omitempty"`
	// ReplayStore is "memory" (per replica, the default) or
	// redis://host:port/db (shared by every replica).
	ReplayStore string `koanf:"replay_store" yaml:"replay_store,omitempty"`
}

// dpopAlgorithms are the proof algorithms tokengate can check.
var dpopAlgorithms = []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

func (v *validator) dpop(d DPoP) {
	for i, a := range d.Algorithms {
		if !slices.Contains(dpopAlgorithms, a) {
			v.add(fmt.Sprintf("dpop.algorithms[%d]", i), fmt.Sprintf("%q is not one of %s (proofs are signed with an asymmetric key)", a, strings.Join(dpopAlgorithms, " ")))
		}
	}
	if d.ProofMaxAge < 0 || d.ProofMaxAge.D() > 10*time.Minute {
		v.add("dpop.proof_max_age", "must be between 0s (the default, 60s) and 10m")
	}
	switch s := d.ReplayStore; {
	case s == "" || s == "memory":
	case strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://"):
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			v.add("dpop.replay_store", "must be memory or a redis://host:port/db URL")
		}
	default:
		v.add("dpop.replay_store", "must be memory or a redis://host:port/db URL")
	}
}
