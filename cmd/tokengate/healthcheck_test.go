package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelpExitsZero checks that -h/--help on every command and subcommand
// prints that command's usage and exits 0, even when required flags are
// missing.
func TestHelpExitsZero(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stdout or stderr
	}{
		{[]string{"--help"}, "tokengate healthcheck"},
		{[]string{"-h"}, "tokengate serve"},
		{[]string{"help"}, "tokengate token mint"},
		{[]string{"serve", "--help"}, "tokengate serve [--config FILE]"},
		{[]string{"serve", "-h"}, "tokengate serve"},
		{[]string{"config", "--help"}, "tokengate config check --config FILE"},
		{[]string{"config", "check", "--help"}, "tokengate config check --config FILE"},
		{[]string{"config", "check", "-h"}, "tokengate config check"},
		{[]string{"keys", "-h"}, "tokengate keys generate --alg ALG"},
		{[]string{"keys", "generate", "--help"}, "tokengate keys generate --alg ALG"},
		{[]string{"token", "--help"}, "tokengate token mint --key FILE"},
		{[]string{"token", "mint", "-h"}, "tokengate token mint --key FILE"},
		{[]string{"token", "mint", "--key", "k", "--help"}, "tokengate token mint"},
		{[]string{"version", "--help"}, "usage: tokengate version"},
		{[]string{"version", "-h"}, "usage: tokengate version"},
		{[]string{"healthcheck", "--help"}, "tokengate healthcheck [--url URL] [--timeout 2s]"},
		{[]string{"healthcheck", "-h"}, "-timeout"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runMain(tc.args...)
			assert.Equal(t, exitOK, code, "stderr: %s", stderr)
			assert.Contains(t, stdout+stderr, tc.want)
		})
	}
}

// TestUsageErrorsStayTwo checks that help handling did not turn usage
// errors into success.
func TestUsageErrorsStayTwo(t *testing.T) {
	for _, args := range [][]string{
		{"config"}, {"keys", "nope"}, {"version", "extra"}, {"version", "--nope"},
		{"healthcheck", "--nope"}, {"healthcheck", "extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, _ := runMain(args...)
			assert.Equal(t, exitUsageErr, code)
		})
	}
}

// TestHealthcheck runs the healthcheck against real HTTP servers.
func TestHealthcheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"ready":true}`)) })
	mux.HandleFunc("/notready", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("{\"ready\":false,\n\"not_ready\":[\"idp\"]}\n"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(strings.Repeat("x", 10000)))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ready", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Hangs until the test ends: a timeout, whatever the machine's speed.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer hang.Close()
	defer close(release)

	// A port with nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + l.Addr().String() + "/readyz"
	require.NoError(t, l.Close())

	tests := []struct {
		name       string
		args       []string
		want       int
		wantStdout string
		wantStderr []string
	}{
		{name: "200", args: []string{"--url", srv.URL + "/ready"}, want: 0, wantStdout: "200 OK"},
		{name: "503 with the body on one line", args: []string{"--url", srv.URL + "/notready"}, want: 1,
			wantStderr: []string{"tokengate healthcheck: " + srv.URL + "/notready: answered 503 Service Unavailable: {\"ready\":false, \"not_ready\":[\"idp\"]}\n"}},
		{name: "long body is cut", args: []string{"--url", srv.URL + "/big"}, want: 1,
			wantStderr: []string{"answered 500", strings.Repeat("x", healthBodyLimit) + "...\n"}},
		{name: "redirect is not followed", args: []string{"--url", srv.URL + "/redirect"}, want: 1, wantStderr: []string{"answered 302 Found"}},
		{name: "unreachable", args: []string{"--url", closed}, want: 1, wantStderr: []string{closed + ": ", "refused"}},
		{name: "no answer in time", args: []string{"--url", hang.URL, "--timeout", "100ms"}, want: 1, wantStderr: []string{"no answer within 100ms"}},
		{name: "password in the URL is not printed", args: []string{"--url", "http://user:hunter2@" + l.Addr().String() + "/"}, want: 1,
			wantStderr: []string{"user:xxxxx@"}},
		{name: "not an http URL", args: []string{"--url", "ftp://x/readyz"}, want: 1, wantStderr: []string{"--url: must be an absolute http(s) URL"}},
		{name: "relative URL", args: []string{"--url", "/readyz"}, want: 1, wantStderr: []string{"--url:"}},
		{name: "bad timeout", args: []string{"--url", srv.URL + "/ready", "--timeout", "0s"}, want: 1, wantStderr: []string{"--timeout: must be positive"}},
		{name: "unparsable timeout is a usage error", args: []string{"--timeout", "soon"}, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runMain(append([]string{"healthcheck"}, tc.args...)...)
			assert.Equal(t, tc.want, code, "stderr: %s", stderr)
			assert.Contains(t, stdout, tc.wantStdout)
			for _, s := range tc.wantStderr {
				assert.Contains(t, stderr, s)
			}
			if tc.want == 1 {
				assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			}
			assert.NotContains(t, stdout+stderr, "hunter2")
		})
	}
}
