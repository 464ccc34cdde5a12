package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tokengate/tokengate/keys"
)

// Exit codes shared by the keys and token subcommands.
const (
	exitOK       = 0
	exitInvalid  = 1
	exitUsageErr = 2
)

// runKeysGenerate implements `tokengate keys generate --alg ALG [--kid KID]
// --out DIR`. It prints the written paths, one per line.
func runKeysGenerate(args []string, stdout, stderr io.Writer) int {
	const name = "tokengate keys generate"
	fs := newFlagSet(name, stderr, "--alg ALG [--kid KID] --out DIR")
	alg := fs.String("alg", "", "signing algorithm: "+strings.Join(keys.Algorithms(), ", "))
	kid := fs.String("kid", "", "key ID (default: RFC 7638 thumbprint of the public key; ignored for HS*)")
	out := fs.String("out", "", "output directory, created with mode 0700 if missing")
	if code, done := parseFlags(fs, args, "alg", "out"); done {
		return code
	}
	if !slices.Contains(keys.Algorithms(), *alg) {
		return fail(stderr, name, "--alg: unsupported algorithm %q (supported: %s)", *alg, strings.Join(keys.Algorithms(), ", "))
	}
	written, err := keys.Generate(*alg, *kid, *out)
	if err != nil {
		return fail(stderr, name, "%v", err)
	}
	for _, p := range written {
		fmt.Fprintln(stdout, p)
	}
	return exitOK
}

// runTokenMint implements `tokengate token mint --key FILE --alg ALG
// [--kid KID] --iss ISS --aud AUD --sub SUB [--scope "a b"] [--ttl 1h]
// [--claim k=v ...] [--typ JWT] [--cnf-jkt JKT | --dpop-key FILE]
// [--cnf-x5t CERTFILE]`. It prints the compact JWS and a newline.
func runTokenMint(args []string, stdout, stderr io.Writer) int {
	const name = "tokengate token mint"
	fs := newFlagSet(name, stderr, `--key FILE --alg ALG [--kid KID] --iss ISS --aud AUD [--aud AUD ...] --sub SUB [--scope "a b"] [--ttl 1h] [--claim k=v ...] [--typ JWT] [--cnf-jkt JKT | --dpop-key FILE] [--cnf-x5t CERTFILE]`)
	var (
		aud    stringList
		claims = claimFlag{}
	)
	key := fs.String("key", "", "private key file (PEM) or HMAC secret file")
	alg := fs.String("alg", "", "signing algorithm: "+strings.Join(keys.Algorithms(), ", "))
	kid := fs.String("kid", "", "kid header (default: thumbprint of the public key; none for HS*)")
	iss := fs.String("iss", "", "issuer (iss claim)")
	fs.Var(&aud, "aud", "audience (aud claim); repeatable")
	sub := fs.String("sub", "", "subject (sub claim)")
	scope := fs.String("scope", "", "space-separated scope claim")
	ttl := fs.Duration("ttl", keys.DefaultTTL, "token lifetime")
	fs.Var(claims, "claim", "extra claim k=v; v is JSON if it is a number, bool, array or object, else a string; repeatable")
	typ := fs.String("typ", "JWT", "typ header: JWT or at+jwt")
	cnfJKT := fs.String("cnf-jkt", "", "bind the token to a DPoP key: cnf.jkt, the key's RFC 7638 thumbprint")
	dpopKey := fs.String("dpop-key", "", "bind the token to the DPoP key in FILE (PEM private or public key): cnf.jkt is its thumbprint")
	cnfX5T := fs.String("cnf-x5t", "", "bind the token to the client certificate in FILE (PEM or DER): cnf.x5t#S256")
	if code, done := parseFlags(fs, args, "key", "alg", "iss", "aud", "sub"); done {
		return code
	}
	if *cnfJKT != "" && *dpopKey != "" {
		return usageError(fs, "--cnf-jkt and --dpop-key are mutually exclusive")
	}
	if !slices.Contains(keys.Algorithms(), *alg) {
		return fail(stderr, name, "--alg: unsupported algorithm %q (supported: %s)", *alg, strings.Join(keys.Algorithms(), ", "))
	}
	if *ttl <= 0 {
		return fail(stderr, name, "--ttl: must be positive, got %s", *ttl)
	}
	jkt, x5t := *cnfJKT, ""
	if *dpopKey != "" {
		var err error
		if jkt, err = keys.KeyThumbprintFile(*dpopKey); err != nil {
			return fail(stderr, name, "--dpop-key: %v", err)
		}
	}
	if *cnfX5T != "" {
		var err error
		if x5t, err = keys.CertificateThumbprintFile(*cnfX5T); err != nil {
			return fail(stderr, name, "--cnf-x5t: %v", err)
		}
	}
	token, err := keys.Mint(keys.MintOptions{
		KeyFile:  *key,
		Alg:      *alg,
		Kid:      *kid,
		Issuer:   *iss,
		Audience: aud,
		Subject:  *sub,
		Scope:    *scope,
		TTL:      *ttl,
		Claims:   claims,
		Type:     *typ,
		CnfJKT:   jkt,
		CnfX5T:   x5t,
	})
	if err != nil {
		return fail(stderr, name, "%v", err)
	}
	fmt.Fprintln(stdout, token)
	return exitOK
}

// newFlagSet returns a ContinueOnError flag set whose usage goes to stderr.
func newFlagSet(name string, stderr io.Writer, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and checks the required flags were given. done is
// true when the command must stop with code: 0 for -h/--help, 2 for a usage
// error (which has been reported on the flag set's output).
func parseFlags(fs *flag.FlagSet, args []string, required ...string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitUsageErr, true
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0)), true
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, r := range required {
		if !set[r] {
			return usageError(fs, "missing required flag --%s", r), true
		}
	}
	return exitOK, false
}

// usageError reports a usage problem followed by the usage text.
func usageError(fs *flag.FlagSet, format string, a ...any) int {
	fmt.Fprintf(fs.Output(), "%s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.Usage()
	return exitUsageErr
}

// fail reports invalid input and returns exitInvalid.
func fail(stderr io.Writer, name, format string, a ...any) int {
	fmt.Fprintf(stderr, "%s: %s\n", name, fmt.Sprintf(format, a...))
	return exitInvalid
}

// stringList is a repeatable string flag.
type stringList []string

// String implements flag.Value.
func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value by appending v.
func (l *stringList) Set(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	*l = append(*l, v)
	return nil
}

// claimFlag is a repeatable k=v flag collecting extra claims.
type claimFlag map[string]any

// String implements flag.Value.
func (c claimFlag) String() string { return "" }

// Set implements flag.Value by parsing one k=v pair.
func (c claimFlag) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return errors.New("want k=v")
	}
	if _, dup := c[k]; dup {
		return fmt.Errorf("claim %q given twice", k)
	}
	c[k] = claimValue(v)
	return nil
}

// claimValue parses v as JSON when it is a number, bool, array or object,
// and returns it unchanged as a string otherwise.
func claimValue(v string) any {
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return v
	}
	if _, err := dec.Token(); err != io.EOF {
		return v
	}
	switch x.(type) {
	case json.Number, bool, []any, map[string]any:
		return x
	}
	return v
}
