package verify

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

// FuzzIntrospectionResponse feeds arbitrary response bodies to the
// introspection parser: it never panics, every refusal carries one of the
// package's codes, and an accepted body is a JSON object whose "active" is
// the boolean true.
func FuzzIntrospectionResponse(f *testing.F) {
	seeds := []string{
		`{"active":true,"sub":"alice","scope":"a b","client_id":"c","exp":4102444800}`,
		`{"active":false}`,
		`{"active":"true"}`,
		`{"active":1}`,
		`{"active":true,"exp":"soon"}`,
		`{"active":true,"aud":["x","y"],"iss":"https://idp"}`,
		`{"active":true,"scope":["a","b"]}`,
		`{"active":true,"nbf":1e300}`,
		`[{"active":true}]`,
		`null`,
		``,
		`{"active":true,"active":false}`,
		"{\"active\":true,\"sub\":\"\\u0000\"}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	v, err := NewIntrospection(IntrospectionOptions{
		Name: "fuzz", URL: "https://idp.example/introspect", ClientID: "c", ClientSecret: "s",
		ClockSkew: time.Minute, Now: func() time.Time { return time.Unix(1_800_000_000, 0) },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, _, err := v.judge(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("refusal without a code: %v", err)
			}
			if res != nil {
				t.Fatal("a refusal returned a result")
			}
			return
		}
		if res == nil || res.id == nil {
			t.Fatal("accepted without an identity")
		}
	})
}
