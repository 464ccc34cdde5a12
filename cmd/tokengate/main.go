// Command tokengate is an Envoy external-authorization (ext_authz v3) server
// that verifies OAuth 2.0 bearer tokens per route.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the linker: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

const usage = `tokengate: OAuth bearer-token verification for Envoy ext_authz

Usage:
  tokengate serve [--config FILE]
  tokengate config check --config FILE
  tokengate keys generate --alg ALG [--kid KID] --out DIR
  tokengate token mint --key FILE --alg ALG [--kid KID] --iss ISS --aud AUD --sub SUB [--scope "a b"] [--ttl 1h] [--claim k=v ...]
  tokengate version
  tokengate healthcheck [--url http://127.0.0.1:9192/readyz] [--timeout 2s]

Run "tokengate COMMAND --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsageErr
	}
	sub := func(want string) ([]string, bool) {
		if len(args) >= 2 && args[1] == want {
			return args[2:], true
		}
		return nil, false
	}
	if len(args) >= 2 && isHelp(args[1]) && groupUsage(args[0]) != "" {
		fmt.Fprint(stdout, groupUsage(args[0]))
		return exitOK
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "config":
		if rest, ok := sub("check"); ok {
			return runConfigCheck(rest, stdout, stderr)
		}
	case "keys":
		if rest, ok := sub("generate"); ok {
			return runKeysGenerate(rest, stdout, stderr)
		}
	case "token":
		if rest, ok := sub("mint"); ok {
			return runTokenMint(rest, stdout, stderr)
		}
	case "version", "--version":
		fs := newFlagSet("tokengate version", stderr, "")
		fs.Usage = func() {
			fmt.Fprint(stderr, "usage: tokengate version\n\nPrints the version, the commit and the Go version.\n")
		}
		if code, done := parseFlags(fs, args[1:]); done {
			return code
		}
		fmt.Fprintf(stdout, "tokengate %s (commit %s, %s)\n", version, commitID(), runtime.Version())
		return exitOK
	case "healthcheck":
		return runHealthcheck(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "tokengate: unknown command %q\n\n%s", joinArgs(args), usage)
	return exitUsageErr
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// groupUsage returns the usage lines of the commands under group (config,
// keys, token), or "" for a command that is not a group.
func groupUsage(group string) string {
	switch group {
	case "config", "keys", "token":
	default:
		return ""
	}
	var b strings.Builder
	b.WriteString("Usage:\n")
	for line := range strings.SplitSeq(usage, "\n") {
		if strings.HasPrefix(line, "  tokengate "+group+" ") {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("\nRun \"tokengate " + group + " COMMAND --help\" for a command's flags.\n")
	return b.String()
}

func joinArgs(args []string) string {
	if len(args) > 2 {
		args = args[:2]
	}
	s := args[0]
	if len(args) == 2 {
		s += " " + args[1]
	}
	return s
}

func commitID() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
