// Package browser runs one headless Chromium per test binary, driven over
// the DevTools protocol (chromedp), so that tests can load a page from a
// local server and read what the page's JavaScript found: what a real
// browser allows and blocks (CORS, readable headers), not what a Go HTTP
// client sees.
//
// The browser starts on first use (Shared) and is stopped by Shutdown, which
// the test binary's TestMain calls after m.Run. Each caller gets its own tab.
//
// A page reports its results by writing them into the DOM: Page wraps a
// script whose value (a promise is awaited) is written as JSON into the
// element with id ResultID, after which an element with id DoneID is added.
// ReadDOM waits for DoneID and returns ResultID's text. Eval evaluates an
// expression (awaiting a promise) in a loaded page instead.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ErrNotFound says how to get Chromium.
var ErrNotFound = errors.New("chromium not found: run `make chromium` (installs the Debian package chromium) or set CHROMIUM_BIN")

// ResultID and DoneID are the element ids through which a page made by Page
// reports: the JSON result goes into ResultID's text, then DoneID appears.
const (
	ResultID = "result"
	DoneID   = "done"
)

// actionTimeout bounds one page load and read, so that a page that never
// reports ends the test with an error instead of hanging it. It is a safety
// bound, not a measurement: no assertion depends on it.
const actionTimeout = 60 * time.Second

// Flags are the Chromium command-line flags (without "--") the browser
// starts with, besides a fresh --user-data-dir. The machine that runs the
// tests has no outside network: these also switch off Chromium's own
// background connections (component updates, sync, QUIC probes), which
// would otherwise be refused noisily.
var Flags = []string{
	"headless",
	"no-sandbox", // tests often run as root, where the sandbox cannot start
	"disable-gpu",
	"disable-quic",
	"no-first-run",
	"no-default-browser-check",
	"disable-background-networking",
	"disable-component-update",
	"disable-sync",
	"disable-dev-shm-usage", // /dev/shm is small in containers
	"disable-extensions",
	"disable-default-apps",
	"metrics-recording-only",
	"mute-audio",
}

// Binary finds Chromium: $CHROMIUM_BIN, then chromium, chromium-browser,
// google-chrome-stable or google-chrome on PATH.
func Binary() (string, error) {
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CHROMIUM_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// Browser is one running headless Chromium.
type Browser struct {
	dir    string
	out    *syncBuffer
	ctx    context.Context // the browser's first chromedp context
	cancel context.CancelFunc
	closed sync.Once
}

// syncBuffer collects Chromium's output and chromedp's error log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 { // keep the first MiB
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start starts Chromium from bin, headless with Flags and a fresh user data
// directory, and waits until it answers.
func Start(bin string) (*Browser, error) {
	dir, err := os.MkdirTemp("", "tokengate-chromium-")
	if err != nil {
		return nil, err
	}
	b := &Browser{dir: dir, out: &syncBuffer{}}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(dir),
		chromedp.CombinedOutput(b.out),
	}
	for _, f := range Flags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		fmt.Fprintf(b.out, "chromedp: "+format+"\n", args...)
	}))
	b.ctx = ctx
	b.cancel = func() { cancelCtx(); cancelAlloc() }
	// The first Run starts the browser; it lives as long as ctx, so this
	// call must not carry a timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("starting %s: %w\n%s", bin, err, b.out.String())
	}
	return b, nil
}

// Close stops the browser and removes its user data directory.
func (b *Browser) Close() {
	b.closed.Do(func() {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		_ = chromedp.Cancel(ctx)
		cancel()
		b.cancel()
		_ = os.RemoveAll(b.dir)
	})
}

// Output returns what Chromium and chromedp logged so far (the first MiB),
// for test failure messages.
func (b *Browser) Output() string { return b.out.String() }

// shared is the browser of this test binary.
var shared struct {
	mu  sync.Mutex
	b   *Browser
	err error
}

// Shared returns this test binary's browser, starting it on first use. A
// missing Chromium skips the test, or fails it when CI=true; a Chromium that
// does not start fails it.
func Shared(t testing.TB) *Browser {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.b == nil && shared.err == nil {
		bin, err := Binary()
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true and no Chromium: %v", err)
			}
			t.Skipf("skipping: %v", err)
		}
		shared.b, shared.err = Start(bin)
	}
	if shared.err != nil {
		t.Fatalf("browser: %v", shared.err)
	}
	return shared.b
}

// Shutdown stops the shared browser if it was started. TestMain calls it
// after m.Run.
func Shutdown() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.b != nil {
		shared.b.Close()
		shared.b = nil
	}
	shared.err = nil
}

// Tab opens a new tab in b, closed when the test ends. Its context is
// bounded by actionTimeout.
func (b *Browser) Tab(t testing.TB) context.Context {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(b.ctx)
	ctx, cancel := context.WithTimeout(tab, actionTimeout)
	t.Cleanup(func() { cancel(); cancelTab() })
	return ctx
}

// Page returns an HTML page whose script evaluates the JavaScript
// expression script (a promise is awaited), writes the value as JSON into
// the element ResultID, or {"error": message} if it throws, and then adds
// the element DoneID.
func Page(title, script string) string {
	return `<!doctype html>
<html><head><meta charset="utf-8"><title>` + html.EscapeString(title) + `</title>
<link rel="icon" href="data:,"></head>
<body><pre id="` + ResultID + `"></pre>
<script>
(async () => {
  let out;
  try {
    out = await (` + script + `);
  } catch (e) {
    out = {error: String(e)};
  }
  document.getElementById("` + ResultID + `").textContent = JSON.stringify(out === undefined ? null : out);
  const done = document.createElement("div");
  done.id = "` + DoneID + `";
  document.body.appendChild(done);
})();
</script></body></html>
`
}

// ReadDOM loads url in a new tab, waits until the page has added the
// element DoneID, and returns the text of the element ResultID.
func (b *Browser) ReadDOM(t testing.TB, url string) string {
	t.Helper()
	ctx := b.Tab(t)
	text, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (string, error) {
		if _, err := chromedp.Navigate(url)(ctx, tg); err != nil {
			return "", err
		}
		if _, err := chromedp.WaitReady(chromedp.ID(DoneID))(ctx, tg); err != nil {
			return "", err
		}
		return chromedp.TextContent(chromedp.ID(ResultID))(ctx, tg)
	})
	if err != nil {
		t.Fatalf("browser: reading #%s of %s: %v\n%s", ResultID, url, err, tail(b.Output(), 30))
	}
	return text
}

// Results is ReadDOM with the page's JSON result decoded into T.
func Results[T any](t testing.TB, b *Browser, url string) T {
	t.Helper()
	text := b.ReadDOM(t, url)
	var v T
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("browser: result of %s is not the JSON expected: %v\n%s", url, err, text)
	}
	return v
}

// Eval loads url in a new tab and evaluates the JavaScript expression expr
// in it (a promise is awaited), decoding the value into T.
func Eval[T any](t testing.TB, b *Browser, url, expr string) T {
	t.Helper()
	ctx := b.Tab(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("browser: loading %s: %v\n%s", url, err, tail(b.Output(), 30))
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("browser: evaluating in %s: %v", url, err)
	}
	return v
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
