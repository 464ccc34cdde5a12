// Package e2e runs tokengate, the sample MCP server and a real Envoy as
// processes and talks to them through Envoy, as a client would.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tokengate/tokengate/internal/browser"
	"github.com/tokengate/tokengate/internal/envoycfg"
)

// bins are the binaries built once for the whole suite.
var bins struct {
	tokengate, mcpSample, envoy string
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	envoyBin, err := envoycfg.Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: %v (CI=true: a missing Envoy is a failure)\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: SKIP: %v\n", err)
		return 0
	}
	bins.envoy = envoyBin
	dir, err := os.MkdirTemp("", "tokengate-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.tokengate = filepath.Join(dir, "tokengate")
	bins.mcpSample = filepath.Join(dir, "mcp-sample")
	for out, pkg := range map[string]string{bins.tokengate: "../cmd/tokengate", bins.mcpSample: "../cmd/mcp-sample"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n", pkg, err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: using Envoy %s\n", envoyBin)
	// The browser tests share one Chromium, started on first use.
	defer browser.Shutdown()
	defer stopKeycloak() // started by the first Keycloak test, shared by all
	return m.Run()
}
