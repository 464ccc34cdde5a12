package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/metadata"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/server/extauthz"
)

// DefaultServiceName is the service.name of tokengate's spans unless
// OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says
// otherwise.
const DefaultServiceName = "tokengate"

// CheckSpanName is the name of the server span around each Check.
const CheckSpanName = "ext_authz.Check"

// instrumentationName names tokengate's tracer.
const instrumentationName = "github.com/tokengate/tokengate/server"

// Span attribute keys. They never carry a token or a subject.
const (
	attrHTTPMethod = attribute.Key("http.request.method")
	attrURLPath    = attribute.Key("url.path")
	attrStatusCode = attribute.Key("http.response.status_code")
	attrRoute      = attribute.Key("tokengate.route")
	attrVerifier   = attribute.Key("tokengate.verifier")
	attrDecision   = attribute.Key("tokengate.decision")
	attrReason     = attribute.Key("tokengate.reason")
)

// Errors of the OTEL_* environment.
var (
	errUnsupportedExporter = errors.New("unsupported exporter")
	errUnsupportedProtocol = errors.New("unsupported protocol")
)

// tracesExporter returns the trace exporter the OTEL_* environment asks
// for: "" when tracing is off, else the OTLP protocol ("grpc" or
// "http/protobuf"). Tracing is on only when OTEL_TRACES_EXPORTER,
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
// and never when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
func tracesExporter(getenv func(string) string) (string, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return "", nil
	}
	otlp := false
	if names := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); names != "" {
		for name := range strings.SplitSeq(names, ",") {
			switch n := strings.ToLower(strings.TrimSpace(name)); n {
			case "otlp":
				otlp = true
			case "none", "":
			default:
				return "", fmt.Errorf("OTEL_TRACES_EXPORTER: %w %q (supported: otlp, none)", errUnsupportedExporter, n)
			}
		}
	} else {
		otlp = getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	}
	if !otlp {
		return "", nil
	}
	key := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	proto := strings.TrimSpace(getenv(key))
	if proto == "" {
		key = "OTEL_EXPORTER_OTLP_PROTOCOL"
		proto = strings.TrimSpace(getenv(key))
	}
	switch proto {
	case "", "http/protobuf":
		return "http/protobuf", nil
	case "grpc":
		return "grpc", nil
	}
	return "", fmt.Errorf("%s: %w %q (supported: grpc, http/protobuf)", key, errUnsupportedProtocol, proto)
}

// SetupTracing configures OpenTelemetry tracing from the standard OTEL_*
// environment (see docs/operations.md). When tracing is off it returns a
// no-op TracerProvider and a shutdown that does nothing: no exporter, no
// goroutine. When it is on, the provider batches spans to an OTLP exporter
// (whose endpoint, headers, TLS and timeout the exporter reads from
// OTEL_EXPORTER_OTLP_*), samples as OTEL_TRACES_SAMPLER says (default
// parentbased_always_on), and shutdown flushes the spans still buffered.
// Export errors are logged on log.
func SetupTracing(ctx context.Context, log *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	noShutdown := func(context.Context) error { return nil }
	proto, err := tracesExporter(os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	if proto == "" {
		return noop.NewTracerProvider(), noShutdown, nil
	}
	var exp sdktrace.SpanExporter
	if proto == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the default service name.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	if log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("opentelemetry", "error", err)
		}))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// tracing is the Check path's tracing: off when tracer is nil.
type tracing struct {
	tracer   trace.Tracer
	shutdown func(context.Context) error
}

// newTracing uses tp, or, when tp is nil, sets tracing up from the
// environment. A no-op provider turns tracing off.
func newTracing(tp trace.TracerProvider, log *slog.Logger) (*tracing, error) {
	t := &tracing{shutdown: func(context.Context) error { return nil }}
	if tp == nil {
		var err error
		if tp, t.shutdown, err = SetupTracing(context.Background(), log); err != nil {
			return nil, err
		}
	}
	if _, off := tp.(noop.TracerProvider); !off {
		t.tracer = tp.Tracer(instrumentationName)
	}
	return t, nil
}

// on reports whether Checks are traced.
func (t *tracing) on() bool { return t.tracer != nil }

// observer returns the Check observer: the metrics alone when tracing is
// off, else the metrics and the span attributes.
func (t *tracing) observer(m *Metrics) authz.Observer {
	if !t.on() {
		return m
	}
	return observers{m, spanObserver{}}
}

// wrap returns the Check server to register: svc itself when tracing is
// off, else svc inside a span.
func (t *tracing) wrap(svc authv3.AuthorizationServer) authv3.AuthorizationServer {
	if !t.on() {
		return svc
	}
	return &tracedService{next: svc, tracer: t.tracer, prop: propagation.TraceContext{}}
}

// tracedService runs each Check in a server span whose parent is the W3C
// trace context of the request Envoy asks about.
type tracedService struct {
	authv3.UnimplementedAuthorizationServer
	next   authv3.AuthorizationServer
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// Check implements authv3.AuthorizationServer. The parent span comes from
// the request's traceparent/tracestate headers or, when the request has
// none, from the gRPC metadata of Envoy's ext_authz call.
func (s *tracedService) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	if c := (headerCarrier{h}); c.Get("traceparent") != "" {
		ctx = s.prop.Extract(ctx, c)
	} else if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = s.prop.Extract(ctx, metadataCarrier(md))
	}
	ctx, span := s.tracer.Start(ctx, CheckSpanName,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attrHTTPMethod.String(h.GetMethod()),
			attrURLPath.String(authz.PathOnly(h.GetPath())), // never a query: it may carry secrets
		))
	defer span.End()
	resp, err := s.next.Check(ctx, req)
	if err != nil {
		span.SetStatus(codes.Error, "check failed")
	}
	return resp, err
}

// spanObserver records a Check's outcome on the Check's span.
type spanObserver struct{}

// Observe implements authz.Observer.
func (spanObserver) Observe(ctx context.Context, o authz.Outcome) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, attrDecision.String(o.Decision), attrReason.String(string(o.Reason)))
	if o.Route != "" {
		attrs = append(attrs, attrRoute.String(o.Route))
	}
	if o.Verifier != "" {
		attrs = append(attrs, attrVerifier.String(o.Verifier))
	}
	if o.Status != 0 {
		attrs = append(attrs, attrStatusCode.Int(o.Status))
	}
	span.SetAttributes(attrs...)
	if o.Status >= 500 {
		span.SetStatus(codes.Error, string(o.Reason))
	}
}

// observers tells every observer in turn.
type observers []authz.Observer

// Observe implements authz.Observer.
func (list observers) Observe(ctx context.Context, o authz.Outcome) {
	for _, obs := range list {
		obs.Observe(ctx, o)
	}
}

// headerCarrier reads trace context from a CheckRequest's HTTP headers:
// the headers map, or header_map when Envoy sends raw headers (repeated
// headers joined with ",", as in the map).
type headerCarrier struct {
	h *authv3.AttributeContext_HttpRequest
}

// Get implements propagation.TextMapCarrier.
func (c headerCarrier) Get(key string) string {
	hs := extauthz.RequestHeaders(c.h)
	return hs.Get(key)
}

// Set implements propagation.TextMapCarrier; the request is read-only.
func (headerCarrier) Set(string, string) {}

// Keys implements propagation.TextMapCarrier.
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c.h.GetHeaders()))
	for k := range c.h.GetHeaders() {
		keys = append(keys, k)
	}
	for _, hv := range c.h.GetHeaderMap().GetHeaders() {
		keys = append(keys, strings.ToLower(hv.GetKey()))
	}
	return keys
}

// metadataCarrier reads trace context from incoming gRPC metadata.
type metadataCarrier metadata.MD

// Get implements propagation.TextMapCarrier.
func (c metadataCarrier) Get(key string) string {
	return strings.Join(metadata.MD(c).Get(key), ",")
}

// Set implements propagation.TextMapCarrier; incoming metadata is read-only.
func (metadataCarrier) Set(string, string) {}

// Keys implements propagation.TextMapCarrier.
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
