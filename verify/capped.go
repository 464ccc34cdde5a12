package verify

import (
	"fmt"
	"io"
)

// MaxResponseBody caps every identity-provider response tokengate reads.
const MaxResponseBody = 1 << 20

// ReadCapped reads an identity provider's response body, what it is named
// in errors ("JWKS", "metadata", "the response"), refusing one larger than
// MaxResponseBody rather than cutting it short. Every response tokengate
// reads from an identity provider goes through it.
func ReadCapped(body io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, MaxResponseBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if len(b) > MaxResponseBody {
		return nil, fmt.Errorf("%s larger than %d bytes", what, MaxResponseBody)
	}
	return b, nil
}
