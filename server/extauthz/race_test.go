package extauthz

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/authz"
)

// TestSetPolicyWhileChecking swaps policies while 8 goroutines call Check.
// Run with -race: every Check reads one snapshot, so each answer is one of
// the two policies' answers and never a mix or a crash.
func TestSetPolicyWhileChecking(t *testing.T) {
	// authz.Policy b requires only mcp:read on the mcp route, so the "noscope"
	// token is denied by a and allowed by b.
	relaxed := strings.Replace(testConfig, "required_scopes: [mcp:read, mcp:write]", "required_scopes: [mcp:read]", 1)
	require.NotEqual(t, testConfig, relaxed)
	ps, tokens := testPolicies(t, testConfig, relaxed)
	a, b := ps[0], ps[1]
	svc := newService(a, slog.New(slog.NewTextHandler(io.Discard, nil)), &countingObserver{})

	bearer := func(name string) map[string]string {
		return map[string]string{"authorization": "Bearer " + tokens[name]}
	}
	requests := []struct {
		name    string
		headers map[string]string
		// allowed lists the acceptable outcomes: 0 for allow, else the status.
		allowed []int
	}{
		{"valid", bearer("valid"), []int{0}},
		{"noscope", bearer("noscope"), []int{0, 403}},
		{"expired", bearer("expired"), []int{401}},
		{"none", nil, []int{401}},
	}

	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				r := requests[(w+i)%len(requests)]
				resp, err := svc.Check(context.Background(), checkRequest("GET", "mcp.example.com", "/mcp", r.headers))
				if err != nil {
					errs <- r.name + ": " + err.Error()
					continue
				}
				status := 0
				if d := resp.GetDeniedResponse(); d != nil {
					status = int(d.GetStatus().GetCode())
				}
				if !containsInt(r.allowed, status) {
					errs <- r.name + ": unexpected status"
				}
			}
		}(w)
	}
	for i := 0; i < rounds; i++ {
		if i%2 == 0 {
			svc.authz.SetPolicy(b)
		} else {
			svc.authz.SetPolicy(a)
		}
		_ = svc.authz.Policy().NotReady()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// After the swaps, the policy in use decides alone.
	svc.authz.SetPolicy(b)
	resp, err := svc.Check(context.Background(), checkRequest("GET", "mcp.example.com", "/mcp", bearer("noscope")))
	require.NoError(t, err)
	assert.NotNil(t, resp.GetOkResponse(), "policy b allows mcp:read")
	svc.authz.SetPolicy(a)
	resp, err = svc.Check(context.Background(), checkRequest("GET", "mcp.example.com", "/mcp", bearer("noscope")))
	require.NoError(t, err)
	assert.Equal(t, int32(403), int32(resp.GetDeniedResponse().GetStatus().GetCode()), "policy a wants mcp:write too")
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// countingObserver is called from every Check goroutine.
type countingObserver struct {
	mu sync.Mutex
	n  int
}

func (o *countingObserver) Observe(context.Context, authz.Outcome) {
	o.mu.Lock()
	o.n++
	o.mu.Unlock()
}
