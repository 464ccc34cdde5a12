package dpop

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfirmationFromPayload(t *testing.T) {
	tests := []struct {
		payload string
		want    Confirmation
		err     error
	}{
		{`{"sub":"a"}`, Confirmation{}, nil},
		{`{"cnf":null}`, Confirmation{}, nil},
		{`{"cnf":{}}`, Confirmation{}, nil},
		{`{"cnf":{"jkt":"J"}}`, Confirmation{JKT: "J"}, nil},
		{`{"cnf":{"x5t#S256":"X"}}`, Confirmation{X5TS256: "X"}, nil},
		{`{"active":true,"cnf":{"jkt":"J","x5t#S256":"X","kid":"k"}}`, Confirmation{JKT: "J", X5TS256: "X"}, nil},
		{`{"cnf":"J"}`, Confirmation{}, ErrConfirmationMalformed},
		{`{"cnf":["J"]}`, Confirmation{}, ErrConfirmationMalformed},
		{`{"cnf":{"jkt":1}}`, Confirmation{}, ErrConfirmationMalformed},
		{`{"cnf":{"x5t#S256":{}}}`, Confirmation{}, ErrConfirmationMalformed},
		{`not json`, Confirmation{}, ErrConfirmationMalformed},
	}
	for _, tt := range tests {
		got, err := ConfirmationFromPayload([]byte(tt.payload))
		if tt.err != nil {
			assert.ErrorIs(t, err, tt.err, tt.payload)
			continue
		}
		require.NoError(t, err, tt.payload)
		assert.Equal(t, tt.want, got, tt.payload)
	}
}

// TestCheckScheme: the downgrade and require_dpop rules.
func TestCheckScheme(t *testing.T) {
	bound, plain := Confirmation{JKT: "J"}, Confirmation{}
	tests := []struct {
		name        string
		dpop        bool
		cnf         Confirmation
		requireDPoP bool
		want        error
	}{
		{"DPoP with cnf.jkt", true, bound, false, nil},
		{"DPoP with cnf.jkt on require_dpop", true, bound, true, nil},
		{"DPoP without cnf.jkt", true, plain, false, ErrTokenNotBound},
		{"Bearer plain", false, plain, false, nil},
		{"Bearer with cnf.jkt (downgrade)", false, bound, false, ErrBoundTokenAsBearer},
		{"Bearer with cnf.jkt on require_dpop", false, bound, true, ErrBoundTokenAsBearer},
		{"Bearer plain on require_dpop", false, plain, true, ErrDPoPRequired},
		{"Bearer with only x5t", false, Confirmation{X5TS256: "X"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckScheme(tt.dpop, tt.cnf, tt.requireDPoP)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, tt.want.(*Error).Code(), asError(t, err).Code())
		})
	}

	// Check itself refuses a token without cnf.jkt too.
	c := newTestChecker(t, nil)
	err := c.Check(context.Background(), []string{makeProof(t, proofSpec{})}, testRequest(), "")
	require.ErrorIs(t, err, ErrTokenNotBound)
}

// TestCheckCertificate: cnf.x5t#S256 and require_mtls_binding.
func TestCheckCertificate(t *testing.T) {
	tests := []struct {
		name    string
		cnf     Confirmation
		tp      string
		require bool
		want    error
	}{
		{"bound, right cert", Confirmation{X5TS256: "A"}, "A", false, nil},
		{"bound, other cert", Confirmation{X5TS256: "A"}, "B", false, ErrCertificateMismatch},
		{"bound, no cert", Confirmation{X5TS256: "A"}, "", false, ErrCertificateMissing},
		{"bound on required route", Confirmation{X5TS256: "A"}, "A", true, nil},
		{"unbound", Confirmation{JKT: "J"}, "", false, nil},
		{"unbound with cert", Confirmation{}, "A", false, nil},
		{"unbound on required route", Confirmation{}, "A", true, ErrCertificateBindingRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCertificate(tt.cnf, tt.tp, tt.require)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}
