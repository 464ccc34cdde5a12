package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/tokengate/tokengate/authz"
)

// ErrReloadDisabled is returned by Reload when the server has no loader.
var ErrReloadDisabled = errors.New("reload is not configured")

// startPolicy starts p's background work under its own context, so that a
// replaced policy's JWKS refreshers stop. s.reloadMu must be held.
func (s *Server) startPolicy(p *authz.Policy) context.CancelFunc {
	ctx, cancel := context.WithCancel(s.runCtx)
	p.Start(ctx)
	return cancel
}

// Reload reads the configuration again, builds and starts a new policy,
// waits (up to ReadyTimeout) for its verifiers to have keys, then swaps it
// in atomically: Checks in flight finish on the old policy. A bad
// configuration keeps the old policy; either way the result is counted in
// tokengate_config_reload_total.
func (s *Server) Reload() error {
	if s.opts.Load == nil {
		return ErrReloadDisabled
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.runCtx == nil {
		return errors.New("server is not running")
	}
	err := s.reload()
	result := "success"
	if err != nil {
		result = "failure"
		s.log.Error("configuration reload failed; keeping the last good configuration", "error", err)
	}
	s.metrics.reloads.WithLabelValues(result).Inc()
	return err
}

func (s *Server) reload() error {
	cfg, err := s.opts.Load()
	if err != nil {
		return err
	}
	o := s.metrics.buildOptions(s.log)
	o.Previous = s.svc.Policy()
	p, err := authz.Build(cfg, o)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(cfg.Server, s.cfg.Server) {
		s.log.Warn("server.* changes (listeners, clock_skew) apply only after a restart")
		// clock_skew is part of the new policy's verifiers already; the
		// listeners stay as they are.
	}
	cancel := s.startPolicy(p)
	deadline := time.Now().Add(s.opts.ReadyTimeout)
	for len(p.NotReady()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if nr := p.NotReady(); len(nr) > 0 {
		s.log.Warn("new configuration swapped in before every verifier was ready", "not_ready", nr)
	}
	s.svc.SetPolicy(p)
	if s.policyCancel != nil {
		s.policyCancel()
	}
	s.policyCancel = cancel
	s.cfg = cfg
	s.log.Info("configuration reloaded", "routes", len(cfg.Routes), "verifiers", len(cfg.Verifiers))
	return nil
}

// watchFile reloads when the configuration file changes. It watches the
// file's directory, so editors that replace the file and Kubernetes
// ConfigMap symlink swaps are both seen; bursts of events are coalesced.
func (s *Server) watchFile(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	path, err := filepath.Abs(s.opts.WatchFile)
	if err != nil {
		w.Close()
		return err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return fmt.Errorf("watching %s: %w", filepath.Dir(path), err)
	}
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				name := filepath.Base(ev.Name)
				if ev.Name == path || name == "..data" || name == filepath.Base(path) {
					timer = time.After(200 * time.Millisecond)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("config watch error", "error", err)
			case <-timer:
				timer = nil
				s.log.Info("configuration file changed; reloading", "file", path)
				_ = s.Reload()
			}
		}
	}()
	return nil
}

// buildOptions wires the metrics into a policy build.
func (m *Metrics) buildOptions(log *slog.Logger) authz.BuildOptions {
	return authz.BuildOptions{
		Logger:          log,
		OnJWKSFetch:     m.JWKSFetched,
		OnIntrospection: m.Introspected,
		OnCache:         m.CacheLookup,
	}
}
