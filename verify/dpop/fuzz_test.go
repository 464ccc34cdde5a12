package dpop

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzCheck: any DPoP header value and request give nil or one *Error,
// never a panic. The seeds include valid proofs of every family and each
// broken variant from TestCheckRules' shapes.
func FuzzCheck(f *testing.F) {
	es := keyFor(f, "ES256")
	for _, s := range []proofSpec{
		{}, {alg: "EdDSA"}, {alg: "RS256"}, {alg: "PS256"}, {alg: "ES384"},
		{typ: strp("JWT")}, {unsigned: true, jwk: mustPub(f, es)}, {jwk: "omit"},
		{claims: map[string]any{"iat": "x"}}, {claims: map[string]any{"htu": "https://[::1"}},
		{claims: map[string]any{"ath": nil, "jti": nil}}, {tamper: true},
	} {
		f.Add(makeProof(f, s), "POST", testURL)
	}
	f.Add("", "GET", "")
	f.Add("a.b.c", "GET", "https://x/")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7fX0.e30.AA", "POST", "http://[::1]:80/%7e")
	f.Add(strings.Repeat("e", 100)+".."+strings.Repeat("A", 10), "POST", testURL)

	c := newTestChecker(f, nil)
	jkt := jktOf(f, es)
	f.Fuzz(func(t *testing.T, proof, method, url string) {
		err := c.Check(context.Background(), []string{proof}, Request{Method: method, URL: url, AccessToken: testToken}, jkt)
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Code() == "" {
			t.Fatalf("untyped error %v", err)
		}
		if e.Unavailable() {
			t.Fatalf("memory store reported unavailable: %v", err)
		}
	})
}

// FuzzNormalizeHTU: normalization never panics, never keeps a query or
// fragment, and is idempotent.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{
		testURL, "HTTPS://A.B:443/%7e/./../x?y#z", "http://[FE80::1]:080", "https://a/%zz", "https://a:/",
		"https://a/b c/%2f", "https://user@a/", "http://a:65536/",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, dropQuery bool) {
		got, err := NormalizeHTU(in, dropQuery)
		if err != nil {
			return
		}
		if strings.ContainsAny(got, "?#") {
			t.Fatalf("%q kept a query or fragment: %q", in, got)
		}
		again, err := NormalizeHTU(got, false)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %.200q -> %.200q -> %.200q (%v)", in, got, again, err)
		}
	})
}

// FuzzThumbprintFromXFCC: any header gives a thumbprint or a typed error.
func FuzzThumbprintFromXFCC(f *testing.F) {
	for _, s := range []string{
		`By=spiffe://a;Hash=` + strings.Repeat("ab", 32) + `;Subject="CN=x,O=y";URI=spiffe://b`,
		`Cert="-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A"`,
		`a="\"`, `,,,;;;===`, `Hash=zz`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tp, err := ThumbprintFromXFCC(h)
		if err == nil {
			if len(tp) != 43 {
				t.Fatalf("thumbprint %q has the wrong length", tp)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
