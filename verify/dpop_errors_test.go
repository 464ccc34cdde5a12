package verify

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tokengate/tokengate/verify/dpop"
)

// TestFromDPoP: every dpop error becomes a verify error with the same code
// and unavailable flag, and keeps its dpop reason.
func TestFromDPoP(t *testing.T) {
	tests := []struct {
		in          error
		want        *Error
		unavailable bool
	}{
		{dpop.ErrProofURI, ErrDPoPProofInvalid, false},
		{dpop.ErrProofReplayed, ErrDPoPProofInvalid, false},
		{dpop.ErrNonceStale, ErrDPoPNonceRequired, false},
		{dpop.ErrReplayStoreDown, ErrDPoPReplayStoreUnavailable, true},
		{dpop.ErrReplayStoreFull, ErrDPoPReplayStoreUnavailable, true},
		{dpop.ErrCertificateMalformed, ErrClientCertificateMissing, false},
		{dpop.ErrCertificateMismatch, ErrCertificateBindingMismatch, false},
		{dpop.ErrCertificateBindingRequired, ErrCertificateBindingRequired, false},
		{dpop.ErrTokenNotBound, ErrTokenNotDPoPBound, false},
		{dpop.ErrBoundTokenAsBearer, ErrDPoPBoundTokenAsBearer, false},
		{dpop.ErrDPoPRequired, ErrDPoPRequired, false},
		{dpop.ErrConfirmationMalformed, ErrConfirmationMalformed, false},
		{errors.New("other"), ErrDPoPProofInvalid, false},
	}
	for _, tt := range tests {
		err := FromDPoP(tt.in)
		assert.ErrorIs(t, err, tt.want, tt.in.Error())
		assert.ErrorIs(t, err, tt.in)
		assert.Equal(t, string(tt.want.Code()), string(Code(err)))
		assert.Equal(t, tt.unavailable, IsUnavailable(err))
	}
	assert.Equal(t, "invalid_dpop_proof", string(Code(FromDPoP(dpop.ErrProofURI))))
	assert.NoError(t, FromDPoP(nil))
}

// TestFromDPoPCoversEveryCode: every code the dpop package defines has its
// verify sentinel.
func TestFromDPoPCoversEveryCode(t *testing.T) {
	for _, code := range []string{
		dpop.CodeInvalidProof, dpop.CodeUseNonce, dpop.CodeReplayStoreUnavailable,
		dpop.CodeCertificateMissing, dpop.CodeCertificateMismatch, dpop.CodeCertificateBindingRequired,
		dpop.CodeTokenNotBound, dpop.CodeBoundTokenAsBearer, dpop.CodeDPoPRequired, dpop.CodeConfirmationMalformed,
	} {
		s, ok := dpopSentinels[code]
		if assert.True(t, ok, code) {
			assert.Equal(t, code, string(s.Code()))
		}
	}
	assert.Len(t, dpopSentinels, 10)
}
