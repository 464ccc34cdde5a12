package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// tokenRefusedError is an introspection endpoint's 400 answer naming *this
// token* as the problem (contract section 4): invalid_request, invalid_token
// or unsupported_token_type. Some providers answer so, instead of
// {"active": false}, for JWTs they did not issue. The token is invalid
// (401), never "unavailable": a client must re-authenticate, not retry.
type tokenRefusedError struct{ code string }

func (e *tokenRefusedError) Error() string {
	return "introspection endpoint refused the token (" + e.code + ")"
}

// credentialsRejectedError is a 401 or 403 from the introspection endpoint
// (or a 400 invalid_client / unauthorized_client): tokengate's own client
// credentials are wrong. tokengate cannot decide (503) and says so in an
// error log line.
type credentialsRejectedError struct{ status int }

func (e *credentialsRejectedError) Error() string {
	return fmt.Sprintf("introspection endpoint answered HTTP %d: tokengate's client credentials (client_id, client_secret, client_auth) are misconfigured", e.status)
}

// statusError maps an introspection answer other than 200 to an error. body
// is the (size-limited) response body, used only to read a 400's "error"
// member; it is never put in the error, which may be logged.
func statusError(status int, body []byte) error {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &credentialsRejectedError{status: status}
	case http.StatusBadRequest:
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil {
			switch e.Error {
			case "invalid_request", "invalid_token", "unsupported_token_type":
				return &tokenRefusedError{code: e.Error}
			case "invalid_client", "unauthorized_client":
				return &credentialsRejectedError{status: status}
			}
		}
	}
	return fmt.Errorf("introspection endpoint answered HTTP %d", status)
}

// postError turns an error of post into the verification error: a refused
// token is inactive (401), anything else is unavailable (503) and logged.
func (v *Introspection) postError(err error) error {
	var refused *tokenRefusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("%w: %w", ErrTokenInactive, err)
	}
	var creds *credentialsRejectedError
	if errors.As(err, &creds) {
		v.complain(true, err)
	} else {
		v.warn(err)
	}
	return fmt.Errorf("%w: %w", ErrIntrospectionUnavailable, err)
}
