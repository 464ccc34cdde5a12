package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profiler saves tokengate's CPU profile and allocation delta profile
// over a run, and its heap profile after it (-profile DIR), from its
// /debug/pprof/ endpoints. A nil profiler does nothing.
type profiler struct {
	dir, base string
	mu        sync.Mutex
	firstErr  error
}

func newProfiler(dir string, httpPort int) *profiler {
	if dir == "" {
		return nil
	}
	return &profiler{dir: dir, base: fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", httpPort)}
}

// during runs f while profiling for about d (whole seconds, at least one),
// into DIR/cpu-NAME.pprof and DIR/allocs-NAME.pprof, and waits for both
// profiles before returning so that the next run stays out of them; then
// it saves what is in use in DIR/heap-NAME.pprof.
func (p *profiler) during(name string, d time.Duration, f func() result) result {
	if p == nil {
		return f()
	}
	secs := max(1, int(math.Ceil(d.Seconds())))
	var wg sync.WaitGroup
	for kind, file := range map[string]string{"profile": "cpu", "allocs": "allocs"} {
		wg.Go(func() {
			p.fetch(fmt.Sprintf("%s%s?seconds=%d", p.base, kind, secs), filepath.Join(p.dir, file+"-"+name+".pprof"))
		})
	}
	r := f()
	wg.Wait()
	// What is live (in use) right after the run, after a GC.
	p.fetch(p.base+"heap?gc=1", filepath.Join(p.dir, "heap-"+name+".pprof"))
	return r
}

func (p *profiler) fetch(url, path string) {
	err := func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		fmt.Printf("profile: %s\n", path)
		return f.Close()
	}()
	if err != nil {
		p.mu.Lock()
		if p.firstErr == nil {
			p.firstErr = err
		}
		p.mu.Unlock()
	}
}

// err returns the first failed fetch, if any.
func (p *profiler) err() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}
