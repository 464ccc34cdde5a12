package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// defaultHealthURL is the readiness endpoint on the default HTTP port.
const defaultHealthURL = "http://127.0.0.1:9192/readyz"

// healthBodyLimit bounds how much of an unhealthy answer is quoted.
const healthBodyLimit = 256

// runHealthcheck implements `tokengate healthcheck [--url URL] [--timeout
// 2s]`, for container images without a shell or curl: exit 0 if URL
// answers 200, else 1 with a one-line reason on stderr. Redirects are not
// followed and no proxy is used.
func runHealthcheck(args []string, stdout, stderr io.Writer) int {
	const name = "tokengate healthcheck"
	fs := newFlagSet(name, stderr, "[--url URL] [--timeout 2s]")
	target := fs.String("url", defaultHealthURL, "URL to GET; healthy only if it answers 200")
	timeout := fs.Duration("timeout", 2*time.Second, "time allowed for the whole request")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	u, err := url.Parse(*target)
	if err != nil {
		return fail(stderr, name, "--url: must be an absolute http(s) URL")
	}
	shown := u.Redacted() // never print a password from the URL
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail(stderr, name, "--url: must be an absolute http(s) URL, got %q", shown)
	}
	if *timeout <= 0 {
		return fail(stderr, name, "--timeout: must be positive, got %s", *timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail(stderr, name, "--url: %v", err)
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fail(stderr, name, "%s: no answer within %s", shown, *timeout)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fail(stderr, name, "%s: %v", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		reason := fmt.Sprintf("%s: answered %s", shown, resp.Status)
		if body := oneLine(resp.Body); body != "" {
			reason += ": " + body
		}
		return fail(stderr, name, "%s", reason)
	}
	fmt.Fprintf(stdout, "%s: %s\n", shown, resp.Status)
	return exitOK
}

// oneLine returns the start of an answer's body on one line, for the
// reason of an unhealthy check (readyz lists the verifiers not ready).
func oneLine(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, healthBodyLimit+1))
	truncated := len(b) > healthBodyLimit
	if truncated {
		b = b[:healthBodyLimit]
	}
	s := strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, string(b))
	s = strings.Join(strings.Fields(s), " ")
	if truncated {
		s += "..."
	}
	return s
}
