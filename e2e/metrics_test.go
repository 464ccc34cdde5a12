package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

// scrape reads tokengate's /metrics and returns one metric family's
// samples keyed by their labels ("name=value,..." in label-name order),
// with the value of a counter or gauge, or a histogram's sample count.
func (e *env) scrape(t *testing.T, family string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(e.stack.TokengateHTTP() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	mf, ok := families[family]
	if !ok {
		return out
	}
	for _, m := range mf.GetMetric() {
		out[labelKey(m)] = sampleValue(m)
	}
	return out
}

func labelKey(m *dto.Metric) string {
	parts := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return -1
}

// TestCheckMetrics sends a known mix of requests through Envoy and checks
// that tokengate counted exactly those decisions, each under its route,
// verifier, decision and reason, and nothing else.
func TestCheckMetrics(t *testing.T) {
	e := startEnv(t, envOptions{})
	require.Empty(t, e.scrape(t, "tokengate_check_total"), "no Check before the mix")

	valid := e.mint(t, "rs", "RS256", nil)
	expired := e.mint(t, "es", "ES256", func(o *keys.MintOptions) { o.Now = time.Now().Add(-3 * time.Hour) })
	noScope := e.mint(t, "rs", "RS256", func(o *keys.MintOptions) { o.Scope = "mcp:write" })
	mix := []struct {
		path    string
		headers map[string]string
		status  int
		times   int
	}{
		{"/mcp", bearer(valid), http.StatusOK, 3},
		{"/mcp", nil, http.StatusUnauthorized, 2},
		{"/mcp", map[string]string{"Authorization": "Basic YWxpY2U6cHc="}, http.StatusUnauthorized, 1},
		{"/mcp", bearer(expired), http.StatusUnauthorized, 2},
		{"/mcp", bearer(noScope), http.StatusForbidden, 1},
		{"/other", bearer(valid), http.StatusForbidden, 1},
	}
	for _, m := range mix {
		for range m.times {
			resp, _ := e.post(t, m.path, m.headers)
			require.Equal(t, m.status, resp.StatusCode, "%s %v", m.path, m.headers)
		}
	}
	resp, _ := get(t, e.stack.EnvoyURL()+"/.well-known/oauth-protected-resource/mcp")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Observed before Envoy gets the answer: no waiting needed.
	assert.Equal(t, map[string]float64{
		"decision=allow,reason=ok,route=mcp,verifier=idp":                3,
		"decision=deny,reason=token_missing,route=mcp,verifier=":         3,
		"decision=deny,reason=token_expired,route=mcp,verifier=idp":      2,
		"decision=deny,reason=scope_insufficient,route=mcp,verifier=idp": 1,
		"decision=deny,reason=route_not_found,route=,verifier=":          1,
		"decision=metadata,reason=metadata,route=mcp,verifier=":          1,
	}, e.scrape(t, "tokengate_check_total"))
	assert.Equal(t, map[string]float64{"route=mcp": 10, "route=": 1}, e.scrape(t, "tokengate_check_duration_seconds"))
	assert.Equal(t, map[string]float64{"verifier=idp": 2}, e.scrape(t, "tokengate_jwks_keys"))
}
