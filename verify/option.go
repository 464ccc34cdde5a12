package verify

import (
	"errors"
	"fmt"
)

// OptionError is a constructor's refusal of one option (NewJWT,
// NewIntrospection, NewStatic). Key names the option by its configuration
// key ("algorithms", "client_id", "tokens"); an error about a JWT
// verifier's key source carries that source's KeySource.Key. Read it with
// errors.As. Err never holds a secret, a token or key material.
type OptionError struct {
	Key string
	Err error
}

// Error returns "key: message".
func (e *OptionError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *OptionError) Unwrap() error { return e.Err }

// optionErr returns an *OptionError for key with a formatted reason.
func optionErr(key, format string, args ...any) error {
	var err error
	if len(args) == 0 {
		err = errors.New(format)
	} else {
		err = fmt.Errorf(format, args...)
	}
	return &OptionError{Key: key, Err: err}
}
