package browser

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// pageServer serves Page(title, script) at /.
func pageServer(t *testing.T, title, script string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(Page(title, script)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSharedIsOneBrowser(t *testing.T) {
	assert.Same(t, Shared(t), Shared(t))
}

func TestReadDOM(t *testing.T) {
	b := Shared(t)
	tests := []struct {
		name, script, want string
	}{
		{"value", `({answer: 6 * 7, title: document.title})`, `{"answer":42,"title":"read & write"}`},
		{"awaited promise", `new Promise(r => setTimeout(() => r(["late"]), 20))`, `["late"]`},
		{"undefined is null", `undefined`, `null`},
		{"a thrown error is reported", `(async () => { throw new Error("boom") })()`, `{"error":"Error: boom"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := pageServer(t, "read & write", tc.script)
			assert.JSONEq(t, tc.want, b.ReadDOM(t, srv.URL+"/"))
		})
	}
}

func TestEval(t *testing.T) {
	b := Shared(t)
	srv := pageServer(t, "eval", `1`)
	assert.Equal(t, 42, Eval[int](t, b, srv.URL+"/", `new Promise(r => setTimeout(() => r(42), 20))`))
	assert.Equal(t, "eval", Eval[string](t, b, srv.URL+"/", `document.title`))
}

// TestBrowserEnforcesCORS shows that the harness observes what a browser
// really does: a cross-origin fetch is blocked unless the other server's
// CORS headers allow it, a non-simple request is preflighted and never sent
// when the preflight fails, and only exposed response headers are readable.
// The browser end-to-end tests rely on each of these.
func TestBrowserEnforcesCORS(t *testing.T) {
	b := Shared(t)
	var mu sync.Mutex
	var seen []string
	allow := map[string]bool{} // path -> CORS headers on
	var origin string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		on := allow[r.URL.Path]
		mu.Unlock()
		if on {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Expose-Headers", "X-Exposed")
		}
		w.Header().Set("X-Exposed", "yes")
		w.Header().Set("X-Hidden", "no")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = w.Write([]byte("body of " + r.URL.Path))
	}))
	t.Cleanup(api.Close)
	allow["/open"] = true

	script := `(async () => {
  const api = ` + "`" + api.URL + "`" + `;
  const attempt = async (path, init) => {
    try {
      const r = await fetch(api + path, init);
      return {status: r.status, body: await r.text(), exposed: r.headers.get("X-Exposed"), hidden: r.headers.get("X-Hidden")};
    } catch (e) {
      return {blocked: e.name};
    }
  };
  const auth = {method: "POST", headers: {"Authorization": "Bearer t", "Content-Type": "application/json"}, body: "{}"};
  return {
    open: await attempt("/open", auth),
    closedSimple: await attempt("/closed-simple"),
    closedPreflighted: await attempt("/closed-preflighted", auth),
  };
})()`
	page := pageServer(t, "cors", script)
	origin = page.URL
	require.NotEqual(t, strings.TrimPrefix(page.URL, "http://"), strings.TrimPrefix(api.URL, "http://"), "two origins")

	type outcome struct {
		Status  int     `json:"status"`
		Body    string  `json:"body"`
		Exposed *string `json:"exposed"`
		Hidden  *string `json:"hidden"`
		Blocked string  `json:"blocked"`
	}
	got := Results[map[string]outcome](t, b, page.URL+"/")
	yes := "yes"
	assert.Equal(t, outcome{Status: 200, Body: "body of /open", Exposed: &yes}, got["open"],
		"allowed: readable, only the exposed header visible")
	assert.Equal(t, outcome{Blocked: "TypeError"}, got["closedSimple"], "no CORS headers: fetch rejects")
	assert.Equal(t, outcome{Blocked: "TypeError"}, got["closedPreflighted"], "failed preflight: fetch rejects")

	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, seen, "OPTIONS /open")
	assert.Contains(t, seen, "POST /open")
	assert.Contains(t, seen, "GET /closed-simple", "a simple request is sent; only its answer is hidden")
	assert.Contains(t, seen, "OPTIONS /closed-preflighted")
	assert.NotContains(t, seen, "POST /closed-preflighted", "after a failed preflight the request is never sent")
}
