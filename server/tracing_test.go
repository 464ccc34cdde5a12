package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/reason"
	"github.com/tokengate/tokengate/server/extauthz"
	"github.com/tokengate/tokengate/verify"
)

// otelEnv lists every OTEL_* variable tokengate's tracing reads; tests
// clear them all so that the machine's environment cannot leak in.
var otelEnv = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

func setOTelEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// TestTracesExporter checks when tracing is on and which OTLP protocol it
// uses.
func TestTracesExporter(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr error
	}{
		{name: "empty environment: off", env: nil, want: ""},
		{name: "unrelated OTEL variables: off", env: map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, want: ""},
		{name: "endpoint: on, http/protobuf", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, want: "http/protobuf"},
		{name: "traces endpoint: on", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, want: "http/protobuf"},
		{name: "exporter otlp alone: on (default endpoint)", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: "http/protobuf"},
		{name: "grpc protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: "grpc"},
		{name: "traces protocol wins", env: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
		}, want: "grpc"},
		{name: "exporter none beats an endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: ""},
		{name: "SDK disabled beats everything", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, want: ""},
		{name: "SDK disabled=false keeps it on", env: map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, want: "http/protobuf"},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: errUnsupportedExporter},
		{name: "http/json unsupported", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: errUnsupportedProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tracesExporter(func(k string) string { return tc.env[k] })
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.True(t, strings.HasPrefix(err.Error(), "OTEL_"), "the error names the variable: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestSetupTracingOff checks that without OTEL configuration nothing is
// installed: a no-op provider, the service registered as is, the metrics
// as the only observer.
func TestSetupTracingOff(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"empty":         nil,
		"disabled":      {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		"exporter none": {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
	} {
		t.Run(name, func(t *testing.T) {
			setOTelEnv(t, env)
			tp, shutdown, err := SetupTracing(context.Background(), nil)
			require.NoError(t, err)
			assert.IsType(t, noop.TracerProvider{}, tp)
			require.NoError(t, shutdown(context.Background()))

			tr, err := newTracing(nil, nil)
			require.NoError(t, err)
			assert.False(t, tr.on())
			svc := extauthz.NewService(authz.NewService(nil, nil, nil))
			assert.Same(t, svc, tr.wrap(svc), "no wrapper when tracing is off")
			m := NewMetrics(prometheus.NewRegistry())
			assert.Same(t, m, tr.observer(m), "no tracing observer when tracing is off")
		})
	}
}

// TestSetupTracingBadEnv checks that a bad OTEL setting stops start-up
// with an error naming the variable.
func TestSetupTracingBadEnv(t *testing.T) {
	setOTelEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console"})
	_, _, err := SetupTracing(context.Background(), nil)
	require.ErrorIs(t, err, errUnsupportedExporter)
	assert.Contains(t, err.Error(), "OTEL_TRACES_EXPORTER")

	cfg := &config.Config{Server: config.Server{GRPCListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"}}
	_, err = New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.ErrorIs(t, err, errUnsupportedExporter)
}

// tracingFixture is a policy with one JWT route (/mcp) and a token for it.
type tracingFixture struct {
	policy *authz.Policy
	token  string
	cfg    *config.Config
}

func newTracingFixture(t *testing.T) tracingFixture {
	t.Helper()
	dir := t.TempDir()
	_, err := keys.Generate("ES256", "k", dir)
	require.NoError(t, err)
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(reloadConfig(filepath.Join(dir, keys.PublicKeyFile), "read")), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	p, err := authz.Build(cfg, authz.BuildOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	p.Start(t.Context())
	token, err := keys.Mint(keys.MintOptions{
		KeyFile: filepath.Join(dir, keys.PrivateKeyFile), Alg: "ES256", Kid: "k",
		Issuer: "https://issuer.test", Audience: []string{"https://mcp.example.com/mcp"}, Subject: "alice", Scope: "read",
	})
	require.NoError(t, err)
	return tracingFixture{policy: p, token: token, cfg: cfg}
}

const (
	parentTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + parentTraceID + "-" + parentSpanID + "-01"
)

// TestTracedCheck runs Checks through the tracing wrapper and observer
// and inspects the one span each produces.
func TestTracedCheck(t *testing.T) {
	fx := newTracingFixture(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr, err := newTracing(tp, nil)
	require.NoError(t, err)
	require.True(t, tr.on())
	m := NewMetrics(prometheus.NewRegistry())
	svc := tr.wrap(extauthz.NewService(authz.NewService(fx.policy, slog.New(slog.NewTextHandler(io.Discard, nil)), tr.observer(m))))

	req := func(path string, headers map[string]string) *authv3.CheckRequest {
		return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: "POST", Path: path, Host: "mcp.example.com", Headers: headers},
		}}}
	}
	rawReq := req("/mcp", nil)
	rawReq.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "authorization", RawValue: []byte("Bearer " + fx.token)},
		{Key: "traceparent", RawValue: []byte(traceparent)},
	}}
	grpcMD := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", traceparent))

	tests := []struct {
		name       string
		ctx        context.Context
		req        *authv3.CheckRequest
		wantParent bool
		wantAttrs  map[attribute.Key]attribute.Value
		wantStatus codes.Code
	}{
		{
			name: "traceparent header, allowed", ctx: context.Background(),
			req:        req("/mcp?session=secret-query", map[string]string{"authorization": "Bearer " + fx.token, "traceparent": traceparent}),
			wantParent: true,
			wantAttrs: map[attribute.Key]attribute.Value{
				attrHTTPMethod: attribute.StringValue("POST"), attrURLPath: attribute.StringValue("/mcp"),
				attrRoute: attribute.StringValue("mcp"), attrVerifier: attribute.StringValue("k"),
				attrDecision: attribute.StringValue("allow"), attrReason: attribute.StringValue("ok"),
			},
		},
		{
			name: "no traceparent, no token: root span, 401", ctx: context.Background(),
			req: req("/mcp", nil),
			wantAttrs: map[attribute.Key]attribute.Value{
				attrHTTPMethod: attribute.StringValue("POST"), attrURLPath: attribute.StringValue("/mcp"),
				attrRoute: attribute.StringValue("mcp"), attrDecision: attribute.StringValue("deny"),
				attrReason: attribute.StringValue(string(verify.Code(verify.ErrTokenMissing))), attrStatusCode: attribute.IntValue(401),
			},
		},
		{
			name: "no route: 403", ctx: context.Background(),
			req: req("/other", map[string]string{"traceparent": traceparent}), wantParent: true,
			wantAttrs: map[attribute.Key]attribute.Value{
				attrURLPath: attribute.StringValue("/other"), attrDecision: attribute.StringValue("deny"),
				attrReason: attribute.StringValue(string(reason.RouteNotFound)), attrStatusCode: attribute.IntValue(403),
			},
		},
		{
			name: "raw header_map", ctx: context.Background(), req: rawReq, wantParent: true,
			wantAttrs: map[attribute.Key]attribute.Value{
				attrDecision: attribute.StringValue("allow"), attrVerifier: attribute.StringValue("k"),
			},
		},
		{
			name: "trace context from Envoy's gRPC metadata", ctx: grpcMD, wantParent: true,
			req:       req("/mcp", map[string]string{"authorization": "Bearer " + fx.token}),
			wantAttrs: map[attribute.Key]attribute.Value{attrDecision: attribute.StringValue("allow")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp.Reset()
			_, err := svc.Check(tc.ctx, tc.req)
			require.NoError(t, err)
			spans := exp.GetSpans()
			require.Len(t, spans, 1)
			s := spans[0]
			assert.Equal(t, CheckSpanName, s.Name)
			assert.Equal(t, trace.SpanKindServer, s.SpanKind)
			if tc.wantParent {
				assert.Equal(t, parentTraceID, s.Parent.TraceID().String())
				assert.Equal(t, parentSpanID, s.Parent.SpanID().String())
				assert.True(t, s.Parent.IsRemote())
				assert.Equal(t, parentTraceID, s.SpanContext.TraceID().String(), "the span joins the caller's trace")
			} else {
				assert.False(t, s.Parent.IsValid(), "a root span")
			}
			got := map[attribute.Key]attribute.Value{}
			for _, kv := range s.Attributes {
				got[kv.Key] = kv.Value
				assert.NotContains(t, kv.Value.Emit(), fx.token, "span attribute %s leaks the token", kv.Key)
				assert.NotContains(t, kv.Value.Emit(), "alice", "span attribute %s leaks the subject", kv.Key)
				assert.NotContains(t, kv.Value.Emit(), "secret-query", "span attribute %s leaks the query", kv.Key)
			}
			for k, v := range tc.wantAttrs {
				assert.Equal(t, v, got[k], "attribute %s", k)
			}
			if _, ok := tc.wantAttrs[attrStatusCode]; !ok {
				assert.NotContains(t, got, attrStatusCode, "no status code on allow")
			}
			assert.Equal(t, tc.wantStatus, s.Status.Code)
		})
	}
	assert.Equal(t, 3.0, testutil.ToFloat64(m.checks.WithLabelValues("mcp", "k", "allow", "ok")),
		"the metrics observer still sees every Check")
}

// TestServerTracesGRPC checks the wiring in New: the Check registered on
// the gRPC server is the traced one when a provider is given.
func TestServerTracesGRPC(t *testing.T) {
	fx := newTracingFixture(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	srv, err := New(fx.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{TracerProvider: tp})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	r := checkReq(fx.token)
	r.Attributes.Request.Http.Headers["traceparent"] = traceparent
	resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), r)
	require.NoError(t, err)
	require.NotNil(t, resp.GetOkResponse())

	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	assert.Equal(t, parentTraceID, spans[0].Parent.TraceID().String())
	assert.Contains(t, spans[0].Attributes, attrRoute.String("mcp"))
	assert.Contains(t, spans[0].Attributes, attrDecision.String("allow"))
}

// collector is an OTLP trace receiver over both gRPC and HTTP.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*collectortrace.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, r *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, r)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, _ := c.Export(r.Context(), &req)
	b, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

// exported returns the service name and span names received.
func (c *collector) exported() (services, spans []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reqs {
		for _, rs := range r.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					services = append(services, kv.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					spans = append(spans, s.GetName())
				}
			}
		}
	}
	return services, spans
}

// TestSetupTracingExports checks the environment end to end: spans reach
// a real OTLP receiver over HTTP or gRPC, with the service name, sampler
// and endpoint the OTEL_* variables give, and shutdown flushes them.
func TestSetupTracingExports(t *testing.T) {
	tests := []struct {
		name        string
		grpc        bool
		env         func(httpURL, grpcAddr string) map[string]string
		wantService string
		wantSpans   int
	}{
		{
			name:        "http endpoint, default service name",
			env:         func(u, _ string) map[string]string { return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": u} },
			wantService: DefaultServiceName, wantSpans: 1,
		},
		{
			name: "traces endpoint used as is, OTEL_SERVICE_NAME",
			env: func(u, _ string) map[string]string {
				return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": u + "/v1/traces", "OTEL_SERVICE_NAME": "gate-eu"}
			},
			wantService: "gate-eu", wantSpans: 1,
		},
		{
			name: "grpc protocol, service name from resource attributes",
			grpc: true,
			env: func(_, a string) map[string]string {
				return map[string]string{
					"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + a, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
					"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs",
				}
			},
			wantService: "from-attrs", wantSpans: 1,
		},
		{
			name: "sampler always_off exports nothing",
			env: func(u, _ string) map[string]string {
				return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": u, "OTEL_TRACES_SAMPLER": "always_off"}
			},
			wantSpans: 0,
		},
	}
	fx := newTracingFixture(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			col := &collector{}
			hs := httptest.NewServer(col)
			defer hs.Close()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			gs := grpc.NewServer()
			collectortrace.RegisterTraceServiceServer(gs, col)
			go func() { _ = gs.Serve(ln) }()
			defer gs.Stop()

			setOTelEnv(t, tc.env(hs.URL, ln.Addr().String()))
			tp, shutdown, err := SetupTracing(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			require.NoError(t, err)
			require.IsType(t, &sdktrace.TracerProvider{}, tp)
			tr, err := newTracing(tp, nil)
			require.NoError(t, err)
			svc := tr.wrap(extauthz.NewService(authz.NewService(fx.policy, slog.New(slog.NewTextHandler(io.Discard, nil)), tr.observer(NewMetrics(prometheus.NewRegistry())))))
			_, err = svc.Check(context.Background(), checkReq(fx.token))
			require.NoError(t, err)
			require.NoError(t, shutdown(context.Background()), "shutdown flushes the batch")

			services, spans := col.exported()
			assert.Len(t, spans, tc.wantSpans)
			if tc.wantSpans > 0 {
				assert.Equal(t, []string{CheckSpanName}, spans)
				assert.Equal(t, []string{tc.wantService}, services, fmt.Sprintf("env %v", tc.env(hs.URL, ln.Addr().String())))
			}
		})
	}
}

// TestSpanObserver checks the outcome-to-span mapping, including the
// error status of a 503 and the no-op without a recording span.
func TestSpanObserver(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tests := []struct {
		name       string
		o          authz.Outcome
		wantStatus codes.Code
		wantCode   int64 // 0: no http.response.status_code
	}{
		{"allow", authz.Outcome{Route: "mcp", Verifier: "k", Decision: "allow", Reason: reason.OK}, codes.Unset, 0},
		{"metadata", authz.Outcome{Route: "mcp", Decision: "metadata", Reason: reason.Metadata, Status: 200}, codes.Unset, 200},
		{"insufficient scope", authz.Outcome{Route: "mcp", Verifier: "k", Decision: "deny", Reason: verify.Code(verify.ErrScopeInsufficient), Status: 403}, codes.Unset, 403},
		{"jwks unavailable", authz.Outcome{Route: "mcp", Decision: "deny", Reason: verify.Code(verify.ErrJWKSUnavailable), Status: 503}, codes.Error, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp.Reset()
			ctx, span := tp.Tracer("test").Start(context.Background(), "check")
			spanObserver{}.Observe(ctx, tc.o)
			span.End()
			s := exp.GetSpans()[0]
			assert.Contains(t, s.Attributes, attrDecision.String(tc.o.Decision))
			assert.Contains(t, s.Attributes, attrReason.String(string(tc.o.Reason)))
			got := map[attribute.Key]attribute.Value{}
			for _, kv := range s.Attributes {
				got[kv.Key] = kv.Value
			}
			if tc.wantCode == 0 {
				assert.NotContains(t, got, attrStatusCode)
			} else {
				assert.Equal(t, tc.wantCode, got[attrStatusCode].AsInt64())
			}
			if tc.o.Verifier == "" {
				assert.NotContains(t, got, attrVerifier, "no empty verifier attribute")
			}
			assert.Equal(t, tc.wantStatus, s.Status.Code)
			if tc.wantStatus == codes.Error {
				assert.Equal(t, string(tc.o.Reason), s.Status.Description)
			}
		})
	}
	t.Run("no span in the context", func(t *testing.T) {
		exp.Reset()
		spanObserver{}.Observe(context.Background(), tests[0].o)
		assert.Empty(t, exp.GetSpans())
	})
}
