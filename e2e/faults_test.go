package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/keys"
)

// faultWorkers is the number of clients of the background traffic, each
// with one request in flight at a time.
const faultWorkers = 8

// faultIdP is an identity provider the test can break: its JWKS can answer
// 503 and change, its introspection endpoint can turn slow.
type faultIdP struct {
	srv  *httptest.Server
	jwks atomic.Pointer[[]byte]
	// down makes /jwks.json answer 503; slow makes /introspect take 500ms
	// (past tokengate's 200ms timeout) unless the caller gives up first.
	down, slow atomic.Bool
}

func newFaultIdP(t *testing.T) *faultIdP {
	t.Helper()
	idp := &faultIdP{}
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jwks.json":
			if idp.down.Load() {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(*idp.jwks.Load())
		case "/introspect":
			if idp.slow.Load() {
				select {
				case <-time.After(500 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
			if id, secret, ok := r.BasicAuth(); !ok || id != "tokengate" || secret != "s3cret" {
				http.Error(w, "bad client", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			if tok := r.PostFormValue("token"); tok == "opaque-cached" || strings.HasPrefix(tok, "opaque-fresh-") {
				_, _ = w.Write([]byte(`{"active":true,"sub":"alice","scope":"mcp:read"}`))
				return
			}
			_, _ = w.Write([]byte(`{"active":false}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(idp.srv.Close)
	return idp
}

// serve makes the IdP's JWKS hold the public keys of the named keys of e.
func (idp *faultIdP) serve(t *testing.T, e *env, names ...string) {
	t.Helper()
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	for _, n := range names {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		b, err := os.ReadFile(filepath.Join(e.keyDirs[n], keys.JWKSFile))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &set))
		doc.Keys = append(doc.Keys, set.Keys...)
	}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	idp.jwks.Store(&b)
}

// faultClass is one kind of request in the background traffic. It is
// either let through (allow) or denied with 401 and want; a transition
// (armed by the test just before it changes the IdP) flips that
// expectation once the first answer of the other kind arrives: requests
// sent before then may get either answer, requests sent after it only the
// new one.
type faultClass struct {
	name  string
	path  string
	token func(seq int64) string
	allow bool
	want  string
	// unavailable is the error_description of the 503 tokengate may give
	// while a dependency of this class is down ("" for none).
	unavailable string

	enabled atomic.Bool
	armed   atomic.Bool
	flipped atomic.Int64 // unix nanoseconds of the first answer after the transition
}

// verdict is how an answer is judged.
type verdict int

const (
	verdictRight       verdict = iota
	verdictUnavailable         // 503 or no answer: fail closed
	verdictWrong               // a wrong decision: valid denied, invalid let through
	verdictUnexpected          // any other answer
)

// judge returns the verdict on a, sent at sent, and whether the class
// expected to be let through.
func (c *faultClass) judge(a envoyAnswer, sent time.Time) (verdict, bool) {
	allowed := a.allowed()
	denied := a.err == nil && !a.upstream && a.status == http.StatusUnauthorized && a.desc == c.want
	expectAllow := c.allow
	if c.armed.Load() {
		if f := c.flipped.Load(); f == 0 || sent.UnixNano() < f {
			if allowed || denied {
				if allowed != c.allow {
					c.flipped.CompareAndSwap(0, time.Now().UnixNano())
				}
				return verdictRight, allowed
			}
		} else {
			expectAllow = !c.allow
		}
	}
	switch {
	case expectAllow && allowed, !expectAllow && denied:
		return verdictRight, expectAllow
	case !expectAllow && a.upstream:
		return verdictWrong, expectAllow
	case a.err != nil || a.status == http.StatusServiceUnavailable:
		if a.desc != "" && (a.desc != c.unavailable || a.retryAfter == "") {
			return verdictUnexpected, expectAllow
		}
		return verdictUnavailable, expectAllow
	case expectAllow && (a.status == http.StatusUnauthorized || a.status == http.StatusForbidden):
		return verdictWrong, expectAllow
	}
	return verdictUnexpected, expectAllow
}

// faultPhase tallies the answers to the requests sent during one phase.
type faultPhase struct {
	name string
	mu   sync.Mutex
	// per class: answers, and how many were right or unavailable
	answers, right, unavailable map[string]int
	wrong, unexpected           int
	examples                    []string
	// the error window: valid requests answered 503 or not at all
	errFirst, errLast time.Time
	validErrors       int
	// 503s: with tokengate's body (Retry-After set), or Envoy's own (the
	// ext_authz failure path, no body); transport errors
	tokengate503, envoy503, transport int
	// while tokengate was dead: answers, and those that were not Envoy's
	// own 503 or 403
	whileDown, whileDownBad int
}

func newFaultPhase(name string) *faultPhase {
	return &faultPhase{name: name, answers: map[string]int{}, right: map[string]int{}, unavailable: map[string]int{}}
}

func (p *faultPhase) record(c *faultClass, a envoyAnswer, v verdict, valid bool, sent, done time.Time, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[c.name]++
	switch v {
	case verdictRight:
		p.right[c.name]++
	case verdictUnavailable:
		p.unavailable[c.name]++
		if valid {
			p.validErrors++
			if p.errFirst.IsZero() {
				p.errFirst = sent
			}
			p.errLast = done
		}
		switch {
		case a.err != nil:
			p.transport++
		case a.desc != "":
			p.tokengate503++
		default:
			p.envoy503++
		}
	case verdictWrong:
		p.wrong++
	case verdictUnexpected:
		p.unexpected++
	}
	if (v == verdictWrong || v == verdictUnexpected) && len(p.examples) < 10 {
		p.examples = append(p.examples, c.name+": "+a.String())
	}
	if down {
		p.whileDown++
		if a.err != nil || a.upstream || a.desc != "" ||
			(a.status != http.StatusServiceUnavailable && a.status != http.StatusForbidden) {
			p.whileDownBad++
		}
	}
}

// count returns one tally under the lock.
func (p *faultPhase) count(f func(*faultPhase) int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return f(p)
}

// errorWindow is the error window over consecutive phases: from the first
// valid request that got a 503 (or no answer) being sent to the last such
// one being answered; and how many there were.
func errorWindow(phases ...*faultPhase) (time.Duration, int) {
	var first, last time.Time
	n := 0
	for _, p := range phases {
		p.mu.Lock()
		if !p.errFirst.IsZero() {
			if first.IsZero() || p.errFirst.Before(first) {
				first = p.errFirst
			}
			if p.errLast.After(last) {
				last = p.errLast
			}
		}
		n += p.validErrors
		p.mu.Unlock()
	}
	return last.Sub(first), n
}

func (p *faultPhase) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.answers {
		n += v
	}
	return fmt.Sprintf("%s: %d answers, %d wrong decisions, %d unexpected; valid requests unavailable %d (error window %v); 503 from tokengate %d, from Envoy %d, transport errors %d",
		p.name, n, p.wrong, p.unexpected, p.validErrors, p.errLast.Sub(p.errFirst).Round(time.Millisecond),
		p.tokengate503, p.envoy503, p.transport)
}

// faultLoad is the background traffic: faultWorkers clients sending the
// enabled classes in turn through Envoy, each answer judged and tallied in
// the phase that was current when its request was sent.
type faultLoad struct {
	e        *env
	classes  []*faultClass
	phase    atomic.Pointer[faultPhase]
	phases   []*faultPhase // every phase so far, for the totals
	seen     [faultWorkers]atomic.Pointer[faultPhase]
	seq      atomic.Int64
	upstream atomic.Int64 // answers that came from the upstream
	// downFrom and downUntil (unix nanoseconds) bound the time tokengate
	// was dead: requests sent after downFrom and answered before downUntil
	// (or while it is still 0) are checked in phase.whileDown.
	downFrom, downUntil atomic.Int64
	// stopping ends the workers after their request in flight, which is
	// answered and counted.
	stopping atomic.Bool
	wg       sync.WaitGroup
	halt     func()
}

func startFaultLoad(t *testing.T, e *env, classes []*faultClass) *faultLoad {
	t.Helper()
	l := &faultLoad{e: e, classes: classes}
	first := newFaultPhase("start")
	l.phase.Store(first)
	l.phases = append(l.phases, first)
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: faultWorkers},
		Timeout:   10 * time.Second,
	}
	for w := range faultWorkers {
		l.wg.Go(func() {
			for !l.stopping.Load() {
				ph := l.phase.Load()
				l.seen[w].Store(ph)
				n := l.seq.Add(1)
				c := l.classes[int(n)%len(l.classes)]
				if !c.enabled.Load() {
					continue
				}
				sent := time.Now()
				a := askEnvoy(context.Background(), client, e.stack.EnvoyURL()+c.path, c.token(n))
				done := time.Now()
				if a.upstream {
					l.upstream.Add(1)
				}
				from, until := l.downFrom.Load(), l.downUntil.Load()
				down := from != 0 && sent.UnixNano() > from && (until == 0 || done.UnixNano() < until)
				v, valid := c.judge(a, sent)
				ph.record(c, a, v, valid, sent, done, down)
			}
		})
	}
	// halt stops the traffic and waits for the last answers.
	l.halt = sync.OnceFunc(func() {
		l.stopping.Store(true)
		l.wg.Wait()
	})
	t.Cleanup(l.halt)
	return l
}

// next starts a new phase and returns the previous one once every request
// sent during it has been answered (every worker has moved on).
func (l *faultLoad) next(t *testing.T, name string) *faultPhase {
	t.Helper()
	prev := l.phase.Load()
	ph := newFaultPhase(name)
	l.phases = append(l.phases, ph)
	l.phase.Store(ph)
	eventually(t, "every worker moves to phase "+name, func() bool {
		for w := range l.seen {
			if l.seen[w].Load() != ph {
				return false
			}
		}
		return true
	})
	return prev
}

// waitFor polls the current phase until cond holds.
func (l *faultLoad) waitFor(t *testing.T, what string, cond func(*faultPhase) bool) {
	t.Helper()
	ph := l.phase.Load()
	eventually(t, what, func() bool {
		ph.mu.Lock()
		defer ph.mu.Unlock()
		return cond(ph)
	})
}

// jwksFetches sums tokengate_jwks_refresh_total for verifier and result.
func (e *env) jwksFetches(t *testing.T, verifier, result string) float64 {
	t.Helper()
	var n float64
	for k, v := range e.scrape(t, "tokengate_jwks_refresh_total") {
		if strings.Contains(k, "verifier="+verifier) && strings.Contains(k, "result="+result) {
			n += v
		}
	}
	return n
}

// assertClean asserts that a phase had no wrong decision, no unexpected
// answer, and no request unavailable except those of the listed classes.
func assertClean(t *testing.T, ph *faultPhase, mayBeUnavailable ...string) {
	t.Helper()
	ph.mu.Lock()
	defer ph.mu.Unlock()
	assert.Zero(t, ph.wrong, "%s: wrong decisions, for example %v", ph.name, ph.examples)
	assert.Zero(t, ph.unexpected, "%s: unexpected answers, for example %v", ph.name, ph.examples)
	for name, n := range ph.unavailable {
		if n > 0 && !slices.Contains(mayBeUnavailable, name) {
			t.Errorf("%s: %d requests of class %q were unavailable", ph.name, n, name)
		}
	}
}

// TestFaultsUnderLoad keeps eight clients sending valid and invalid tokens
// through Envoy while it breaks, in turn, each dependency of tokengate and
// tokengate itself: (a) the JWKS host goes down and comes back, (b) the
// signing key rotates and the old one retires, (c) the introspection
// endpoint turns slower than its timeout, (d) the configuration is reloaded
// (TestReloadUnderTraffic covers reloads that change it), and (e) tokengate
// is SIGKILLed and restarted on the same ports. Throughout, no valid token
// may be answered 401 or 403 and no invalid one let through; a fault may
// make unavailable (503, failing closed) only the requests that depend on
// the broken part, and the test logs the error window of each.
func TestFaultsUnderLoad(t *testing.T) {
	idp := newFaultIdP(t)
	e := startEnv(t, envOptions{
		verifiers: func(e *env) string {
			e.newKey(t, "next", "ES256")
			e.newKey(t, "ghost", "ES256")
			idp.serve(t, e, "rs", "es")
			return `
  faulty:
    type: jwt
    issuer: ` + idp.srv.URL + `
    jwks_uri: ` + idp.srv.URL + `/jwks.json
    jwks_refresh: 1s
    jwks_min_refetch_interval: 100ms
  legacy:
    type: introspection
    introspection_url: ` + idp.srv.URL + `/introspect
    client_id: tokengate
    client_secret: s3cret
    timeout: 200ms
`
		},
		routeVerifiers: []string{"faulty"},
		routes: func(*env) string {
			return `
  - name: legacy
    match: {path_prefix: /legacy}
    verifiers: [legacy]
    required_scopes: [mcp:read]
`
		},
		envoyRoutes: []envoycfg.Route{{Prefix: "/legacy", PrefixRewrite: "/mcp"}},
	})
	mint := func(key, alg string, mutate func(*keys.MintOptions)) string {
		return e.mint(t, key, alg, func(o *keys.MintOptions) {
			o.Issuer = idp.srv.URL
			if mutate != nil {
				mutate(o)
			}
		})
	}
	fixed := func(tok string) func(int64) string { return func(int64) string { return tok } }
	validRS := mint("rs", "RS256", nil)
	var (
		rs = &faultClass{name: "valid RS256", path: "/mcp", token: fixed(validRS), allow: true}
		es = &faultClass{name: "valid ES256", path: "/mcp", token: fixed(mint("es", "ES256", nil)), allow: true}
		// rotated is signed with the key the IdP publishes in the rotation,
		// retired (the same token as rs) with the key it then withdraws.
		rotated = &faultClass{name: "rotated kid", path: "/mcp", token: fixed(mint("next", "ES256", nil)), want: "key_unknown"}
		retired = &faultClass{name: "retired kid", path: "/mcp", token: fixed(validRS), allow: true, want: "key_unknown"}
		cached  = &faultClass{name: "opaque cached", path: "/legacy", token: fixed("opaque-cached"), allow: true}
		fresh   = &faultClass{name: "opaque fresh", path: "/legacy", allow: true, unavailable: "introspection_unavailable",
			token: func(n int64) string { return "opaque-fresh-" + strconv.FormatInt(n, 10) }}
		unknown = &faultClass{name: "unknown kid", path: "/mcp", want: "key_unknown", unavailable: "jwks_unavailable",
			token: fixed(mint("ghost", "ES256", nil))}
		inactive = &faultClass{name: "opaque inactive", path: "/legacy", want: "token_inactive", unavailable: "introspection_unavailable",
			token: fixed("opaque-revoked")}
		classes = []*faultClass{
			rs, es, cached, fresh, rotated, retired, unknown, inactive,
			{name: "expired", path: "/mcp", want: "token_expired",
				token: fixed(mint("es", "ES256", func(o *keys.MintOptions) { o.Now = time.Now().Add(-3 * time.Hour) }))},
			{name: "wrong audience", path: "/mcp", want: "audience_mismatch",
				token: fixed(mint("rs", "RS256", func(o *keys.MintOptions) { o.Audience = []string{"https://elsewhere.example/mcp"} }))},
			{name: "garbage", path: "/mcp", want: "token_malformed", token: fixed("not-a-jwt")},
		}
		allClasses []string
	)
	for _, c := range classes {
		c.enabled.Store(c != rotated && c != retired)
		allClasses = append(allClasses, c.name)
	}
	admin := e.stack.EnvoyAdminURL()
	upstreamBefore := envoyAdminStat(t, admin, "cluster.upstream.upstream_rq_total")
	l := startFaultLoad(t, e, classes)
	l.waitFor(t, "every enabled class is answered right", func(ph *faultPhase) bool {
		for _, c := range classes {
			if c.enabled.Load() && ph.right[c.name] == 0 {
				return false
			}
		}
		return true
	})
	// tail lists the classes that may still be unavailable in the phase
	// after a fault, while its last effects drain.
	var tail []string
	begin := func(t *testing.T, name string) {
		t.Helper()
		prev := l.next(t, name)
		assertClean(t, prev, tail...)
		tail = nil
	}

	t.Run("a: JWKS host down and back", func(t *testing.T) {
		begin(t, "JWKS host down")
		defer idp.down.Store(false)
		failures := e.jwksFetches(t, "faulty", "failure")
		idp.down.Store(true)
		// Early refetches for the unknown kid run at most every 100ms, so
		// 15 failed fetches span more than one background refresh (1s).
		eventually(t, "tokengate's fetches fail", func() bool { return e.jwksFetches(t, "faulty", "failure") >= failures+15 })
		l.waitFor(t, "the unknown kid is answered 503", func(ph *faultPhase) bool { return ph.unavailable[unknown.name] > 0 })
		successes := e.jwksFetches(t, "faulty", "success")
		idp.down.Store(false)
		eventually(t, "tokengate fetches again", func() bool { return e.jwksFetches(t, "faulty", "success") > successes })
		ph := l.next(t, "JWKS host back")
		tail = []string{unknown.name}
		assertClean(t, ph, unknown.name)
		w, n := errorWindow(ph)
		assert.Zero(t, n, "known keys must keep verifying while the JWKS host is down")
		t.Logf("%s; error window %v", ph.summary(), w)
	})

	t.Run("b: key rotation and retirement", func(t *testing.T) {
		begin(t, "key rotation")
		rotated.enabled.Store(true)
		l.waitFor(t, "the next kid is unknown before the rotation", func(ph *faultPhase) bool { return ph.right[rotated.name] >= 5 })
		rotated.armed.Store(true)
		idp.serve(t, e, "rs", "es", "next")
		eventually(t, "tokens with the new kid pass", func() bool { return rotated.flipped.Load() != 0 })
		l.waitFor(t, "both kids pass", func(ph *faultPhase) bool {
			return ph.right[rotated.name] >= 20 && ph.right[rs.name] >= 20
		})
		// The old key retires: its tokens stop passing once tokengate has
		// the new JWKS, verifications it cached included.
		rs.enabled.Store(false)
		retired.enabled.Store(true)
		retired.armed.Store(true)
		idp.serve(t, e, "es", "next")
		eventually(t, "tokens with the retired kid are refused", func() bool { return retired.flipped.Load() != 0 })
		l.waitFor(t, "the retired kid keeps being refused", func(ph *faultPhase) bool { return ph.right[retired.name] >= 20 })
		ph := l.next(t, "rotated")
		assertClean(t, ph)
		w, n := errorWindow(ph)
		assert.Zero(t, n, "a rotation makes nothing unavailable")
		t.Logf("%s; error window %v", ph.summary(), w)
	})

	t.Run("c: introspection slower than its timeout", func(t *testing.T) {
		begin(t, "introspection slow")
		defer idp.slow.Store(false)
		idp.slow.Store(true)
		l.waitFor(t, "uncached opaque tokens are unavailable, cached ones pass", func(ph *faultPhase) bool {
			return ph.unavailable[fresh.name] >= 20 && ph.right[cached.name] >= 20
		})
		idp.slow.Store(false)
		slow := l.next(t, "introspection recovering")
		l.waitFor(t, "uncached opaque tokens pass again", func(ph *faultPhase) bool { return ph.right[fresh.name] >= 20 })
		recovering := l.next(t, "introspection fast")
		tail = []string{fresh.name, inactive.name}
		for _, ph := range []*faultPhase{slow, recovering} {
			assertClean(t, ph, fresh.name, inactive.name)
			assert.Zero(t, ph.count(func(p *faultPhase) int { return p.envoy503 + p.transport }),
				"%s: every 503 is tokengate's, with Retry-After", ph.name)
		}
		w, n := errorWindow(slow, recovering)
		t.Logf("%s; %s; error window of uncached opaque tokens %v (%d answered 503)", slow.summary(), recovering.summary(), w, n)
	})

	t.Run("d: configuration reload", func(t *testing.T) {
		begin(t, "reload")
		reloads := e.scrape(t, "tokengate_config_reload_total")["result=success"]
		require.NoError(t, e.stack.Signal("tokengate", syscall.SIGHUP))
		eventually(t, "the reload is done", func() bool {
			return e.scrape(t, "tokengate_config_reload_total")["result=success"] > reloads
		})
		// The new policy starts with empty caches: cached opaque tokens are
		// introspected again.
		l.waitFor(t, "requests flow on the new policy", func(ph *faultPhase) bool { return ph.right[cached.name] >= 20 })
		ph := l.next(t, "reloaded")
		assertClean(t, ph)
		w, n := errorWindow(ph)
		assert.Zero(t, n, "a reload makes nothing unavailable")
		t.Logf("%s; error window %v", ph.summary(), w)
	})

	t.Run("e: tokengate killed and restarted", func(t *testing.T) {
		begin(t, "tokengate down")
		killed := time.Now()
		require.NoError(t, e.stack.Kill("tokengate"))
		l.downFrom.Store(time.Now().UnixNano())
		l.waitFor(t, "Envoy answers while tokengate is down", func(ph *faultPhase) bool { return ph.whileDown >= 50 })
		l.downUntil.Store(time.Now().UnixNano())
		restarting := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, e.stack.Restart(ctx, "tokengate"))
		ready := time.Now()
		down := l.next(t, "tokengate restarted")
		valid := []*faultClass{es, rotated, cached, fresh}
		l.waitFor(t, "every valid class passes again", func(ph *faultPhase) bool {
			for _, c := range valid {
				if ph.right[c.name] == 0 {
					return false
				}
			}
			return true
		})
		restarted := l.next(t, "tokengate back")
		down.mu.Lock()
		whileDown, bad, tg503 := down.whileDown, down.whileDownBad, down.tokengate503
		down.mu.Unlock()
		assert.Positive(t, whileDown)
		assert.Zero(t, bad, "answers while tokengate was dead that were not Envoy's own 503 or 403")
		assert.Zero(t, tg503, "tokengate answered 503 though nothing it depends on was down")
		assertClean(t, down, allClasses...)
		assertClean(t, restarted, allClasses...)
		w, n := errorWindow(down, restarted)
		var lastErr time.Time
		for _, ph := range []*faultPhase{down, restarted} {
			ph.mu.Lock()
			if ph.errLast.After(lastErr) {
				lastErr = ph.errLast
			}
			ph.mu.Unlock()
		}
		t.Logf("%s; %s", down.summary(), restarted.summary())
		t.Logf("%d answers while tokengate was dead, all Envoy's own 503; SIGKILL to restart %v (the test waits for 50 of them); "+
			"last valid 503 answered %v after the restart began (/readyz, polled every 100ms, answered 200 after %v); error window %v (%d valid requests answered 503)",
			whileDown, restarting.Sub(killed).Round(time.Millisecond), lastErr.Sub(restarting).Round(time.Millisecond),
			ready.Sub(restarting).Round(time.Millisecond), w.Round(time.Millisecond), n)
	})

	last := l.next(t, "end")
	assertClean(t, last, tail...)
	l.halt()
	var total, wrong, unexpected int
	for _, ph := range l.phases {
		ph.mu.Lock()
		for _, n := range ph.answers {
			total += n
		}
		wrong += ph.wrong
		unexpected += ph.unexpected
		ph.mu.Unlock()
	}
	assert.Zero(t, wrong, "wrong decisions in all")
	assert.Zero(t, unexpected, "unexpected answers in all")
	assert.Equal(t, l.upstream.Load(), envoyAdminStat(t, admin, "cluster.upstream.upstream_rq_total")-upstreamBefore,
		"the requests that reached the upstream are exactly those answered from it")
	t.Logf("in all: %d answers in %d phases, %d wrong decisions, %d unexpected answers; %d reached the upstream",
		total, len(l.phases), wrong, unexpected, l.upstream.Load())
}
