package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/keys"
)

// TestReloadUnderTraffic rewrites tokengate's configuration file (and
// sends it SIGHUP) while 16 clients keep sending requests with a valid
// token through Envoy: every request succeeds, and each new configuration
// takes effect without a restart. A broken configuration is refused and
// the last good one stays in force.
func TestReloadUnderTraffic(t *testing.T) {
	publicRoute := envoycfg.Route{Prefix: "/public", PrefixRewrite: "/mcp"}
	e := startEnv(t, envOptions{envoyRoutes: []envoycfg.Route{publicRoute}})
	tok := e.mint(t, "rs", "RS256", func(o *keys.MintOptions) {
		o.Claims = map[string]any{"email": "alice@example.com", "dept": "eng"}
	})
	reloads := func(result string) float64 {
		return e.scrape(t, "tokengate_config_reload_total")["result="+result]
	}

	const workers = 16
	var (
		sent     atomic.Int64
		failMu   sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, body, err := initialize(client, e.stack.EnvoyURL()+"/mcp", bearer(tok))
				sent.Add(1)
				if err != nil || resp.StatusCode != http.StatusOK {
					failMu.Lock()
					if err != nil {
						failures = append(failures, err.Error())
					} else {
						failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
					}
					failMu.Unlock()
				}
			}
		})
	}
	stopTraffic := sync.OnceFunc(func() { stop(); wg.Wait() })
	t.Cleanup(stopTraffic)
	// trafficFlows waits until the clients have sent more requests, so that
	// each change is made, and takes effect, under load.
	trafficFlows := func() {
		t.Helper()
		mark := sent.Load()
		eventually(t, "requests flow", func() bool { return sent.Load() >= mark+2*workers })
	}
	whoamiHas := func(header, value string) func() bool {
		return func() bool {
			who := e.whoamiWith(t, tok)
			v, ok := who[header]
			return ok && v == value
		}
	}

	trafficFlows()
	require.Equal(t, float64(0), reloads("success"))
	resp, _ := e.post(t, "/public", nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no public route yet")

	// 1. A claim header appears (the file written in place).
	require.NoError(t, os.WriteFile(e.cfgPath, []byte(e.config(envOptions{mcpRoute: "    claim_headers: {x-auth-email: email}\n"})), 0o644))
	eventually(t, "x-auth-email is set", whoamiHas("x-auth-email", "alice@example.com"))
	trafficFlows()

	// 2. The claim header changes and a route is added (the file replaced
	// by a rename).
	withPublic := e.config(envOptions{
		mcpRoute: "    claim_headers: {x-auth-dept: dept}\n",
		routes: func(*env) string {
			return "  - name: public\n    match: {path_prefix: /public}\n    allow_anonymous: true\n"
		},
	})
	e.replaceConfig(t, withPublic)
	eventually(t, "x-auth-dept replaces x-auth-email", whoamiHas("x-auth-dept", "eng"))
	assert.NotContains(t, e.whoamiWith(t, tok), "x-auth-email")
	assert.Equal(t, map[string]any{"authorization_present": false}, e.whoamiAt(t, "/public", nil))
	trafficFlows()
	eventually(t, "two reloads counted", func() bool { return reloads("success") == 2 })

	// 3. SIGHUP reloads the unchanged file.
	require.NoError(t, e.stack.Signal("tokengate", syscall.SIGHUP))
	eventually(t, "the SIGHUP reload is counted", func() bool { return reloads("success") == 3 })
	trafficFlows()

	// 4. A broken file is refused; the last good configuration stays.
	e.replaceConfig(t, withPublic+"    verifiers: [nobody]\n")
	eventually(t, "the failed reload is counted", func() bool { return reloads("failure") == 1 })
	trafficFlows()
	assert.Equal(t, "eng", e.whoamiWith(t, tok)["x-auth-dept"])
	assert.Equal(t, float64(3), reloads("success"))

	stopTraffic()
	failMu.Lock()
	defer failMu.Unlock()
	assert.Empty(t, failures, "%d of %d requests failed", len(failures), sent.Load())
	t.Logf("%d requests during 4 reloads, none failed", sent.Load())
}
