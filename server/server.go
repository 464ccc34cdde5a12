// Package server runs tokengate: the ext_authz gRPC server and the HTTP side
// port (health, readiness, metrics, protected resource metadata).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/server/extauthz"
	"github.com/tokengate/tokengate/upstream"
)

// ShutdownGrace bounds how long in-flight requests may take at shutdown.
const ShutdownGrace = 10 * time.Second

// Server is a running tokengate.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	svc      *authz.Service
	metrics  *Metrics
	registry *prometheus.Registry
	health   *health.Server

	grpcLn, httpLn net.Listener
	grpcSrv        *grpc.Server
	httpSrv        *http.Server

	opts Options
	// reload state: the context policies run under, the running policy's
	// cancel, one reload at a time.
	reloadMu     sync.Mutex
	runCtx       context.Context
	policyCancel context.CancelFunc
	// traceShutdown flushes buffered spans at the end of Run.
	traceShutdown func(context.Context) error
}

// Options are optional Server settings.
type Options struct {
	// Load re-reads the configuration for a reload; nil disables reloads.
	Load func() (*config.Config, error)
	// WatchFile is the configuration file to watch; a change triggers a
	// reload. Empty disables watching.
	WatchFile string
	// ReadyTimeout bounds how long a reload waits for the new policy's
	// verifiers to load their keys before swapping it in (default 10s).
	ReadyTimeout time.Duration
	// TracerProvider traces Checks; nil sets tracing up from the OTEL_*
	// environment (SetupTracing), and a no-op provider turns it off.
	TracerProvider trace.TracerProvider
	// HTTP bounds the HTTP port's connections and request bodies; zero
	// fields take the defaults (HTTPLimits).
	HTTP HTTPLimits
}

// New builds the policy from cfg and opens both listeners, so that port
// and configuration problems surface before Run.
func New(cfg *config.Config, log *slog.Logger, opts ...Options) (*Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := NewMetrics(reg)
	policy, err := authz.Build(cfg, m.buildOptions(log))
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: log, metrics: m, registry: reg,
		health: health.NewServer(),
	}
	if len(opts) > 0 {
		s.opts = opts[0]
	}
	if s.opts.ReadyTimeout <= 0 {
		s.opts.ReadyTimeout = 10 * time.Second
	}
	if s.grpcLn, err = net.Listen("tcp", cfg.Server.GRPCListen); err != nil {
		return nil, fmt.Errorf("server.grpc_listen: %w", err)
	}
	if s.httpLn, err = net.Listen("tcp", cfg.Server.HTTPListen); err != nil {
		s.grpcLn.Close()
		return nil, fmt.Errorf("server.http_listen: %w", err)
	}
	tr, err := newTracing(s.opts.TracerProvider, log)
	if err != nil {
		s.grpcLn.Close()
		s.httpLn.Close()
		return nil, err
	}
	s.traceShutdown = tr.shutdown
	s.svc = authz.NewService(policy, log, tr.observer(m))
	// Stream workers answer Checks on long-lived goroutines, whose stacks
	// have already grown: a goroutine per Check spends about a tenth of a
	// hot Check growing its stack (docs/benchmarks.md). When every worker
	// is busy, gRPC falls back to a goroutine for the stream, so there are
	// more workers than cores: Envoy sends Checks in bursts.
	s.grpcSrv = grpc.NewServer(
		grpc.NumStreamWorkers(uint32(max(64, 8*runtime.GOMAXPROCS(0)))),
		grpc.ForceServerCodecV2(extauthz.NewCodec()),
	)
	authv3.RegisterAuthorizationServer(s.grpcSrv, tr.wrap(extauthz.NewService(s.svc)))
	healthpb.RegisterHealthServer(s.grpcSrv, s.health)
	s.httpSrv = newHTTPServer(s.routes(), s.opts.HTTP)
	return s, nil
}

// GRPCAddr is the gRPC listener's address.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// HTTPAddr is the HTTP listener's address.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// Run serves until ctx ends, then drains gracefully.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.reloadMu.Lock()
	s.runCtx = ctx
	s.policyCancel = s.startPolicy(s.svc.Policy())
	s.reloadMu.Unlock()
	go s.watchReadiness(ctx)
	if s.opts.WatchFile != "" && s.opts.Load != nil {
		if err := s.watchFile(ctx); err != nil {
			s.log.Warn("config file not watched; reload with SIGHUP", "file", s.opts.WatchFile, "error", err)
		}
	}

	errc := make(chan error, 2)
	go func() { errc <- s.grpcSrv.Serve(s.grpcLn) }()
	go func() {
		if err := s.httpSrv.Serve(s.httpLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
			return
		}
		errc <- nil
	}()
	s.log.Info("tokengate serving", "grpc", s.GRPCAddr(), "http", s.HTTPAddr())

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.health.Shutdown()
	shutdownCtx, stop := context.WithTimeout(context.Background(), ShutdownGrace)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		done := make(chan struct{})
		go func() { s.grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-shutdownCtx.Done():
			s.grpcSrv.Stop()
		}
	})
	wg.Go(func() { _ = s.httpSrv.Shutdown(shutdownCtx) })
	wg.Wait()
	// Spans get their own deadline: draining may have used up the grace.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelFlush()
	if err := s.traceShutdown(flushCtx); err != nil {
		s.log.Warn("flushing traces failed", "error", err)
	}
	s.log.Info("tokengate stopped")
	return err
}

// watchReadiness keeps the gRPC health status in step with readiness.
func (s *Server) watchReadiness(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if len(s.svc.Policy().NotReady()) == 0 {
			st = healthpb.HealthCheckResponse_SERVING
		}
		if st != last {
			s.health.SetServingStatus("", st)
			s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, st)
			last = st
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		notReady := s.svc.Policy().NotReady()
		w.Header().Set("Content-Type", "application/json")
		if len(notReady) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"ready": false, "not_ready": notReady})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": true})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+authz.WellKnownPRM+"/", s.metadata)
	mux.HandleFunc("GET "+authz.WellKnownPRM, s.metadata)
	// The assertion keys, for upstreams that verify tokengate's assertions.
	mux.Handle("/.well-known/jwks.json", upstream.JWKSHandler(func() *upstream.Set { return s.svc.Policy().Upstream() }))
	s.handleForwardAuth(mux)
	if s.cfg.Server.Pprof {
		handlePprof(mux)
	}
	return mux
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	doc, ok := s.svc.Policy().Metadata(strings.TrimSuffix(r.URL.EscapedPath(), "/"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*") // RFC 9728 documents are public
	_, _ = w.Write(doc)
}
