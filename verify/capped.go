package verify

import (
	"fmt"
	"io"
)

// MaxResponseBody caps every identity-provider response tokengate reads.
const MaxResponseBody = 1 << 20

// readCapped reads an identity provider's response body, what it is named
// in errors ("JWKS", "metadata", "response"), refusing one larger than
// MaxResponseBody rather than cutting it short.
func readCapped(body io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, MaxResponseBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if len(b) > MaxResponseBody {
		return nil, fmt.Errorf("%s larger than %d bytes", what, MaxResponseBody)
	}
	return b, nil
}
