package extauthz

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// wireView is what tokengate reads of a CheckRequest.
type wireView struct {
	HasAttrs, HasRequest, HasHTTP, HasHeaderMap bool
	Method, Path, Host, Scheme, Body, RawBody   string
	Certificate                                 string
	Headers, Ext                                map[string]string
	HeaderMap                                   [][3]string // key, value, raw_value
}

func viewOf(r *authv3.CheckRequest) wireView {
	a := r.GetAttributes()
	h := a.GetRequest().GetHttp()
	v := wireView{
		HasAttrs: a != nil, HasRequest: a.GetRequest() != nil, HasHTTP: h != nil, HasHeaderMap: h.GetHeaderMap() != nil,
		Method: h.GetMethod(), Path: h.GetPath(), Host: h.GetHost(), Scheme: h.GetScheme(),
		Body: h.GetBody(), RawBody: string(h.GetRawBody()), Certificate: a.GetSource().GetCertificate(),
		Headers: h.GetHeaders(), Ext: a.GetContextExtensions(),
	}
	if len(v.Headers) == 0 {
		v.Headers = nil
	}
	if len(v.Ext) == 0 {
		v.Ext = nil
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		v.HeaderMap = append(v.HeaderMap, [3]string{hv.GetKey(), hv.GetValue(), string(hv.GetRawValue())})
	}
	return v
}

// envoyLikeRequest is a CheckRequest with every field Envoy fills for a
// POST to an MCP server, and some it fills only when configured.
func envoyLikeRequest() *authv3.CheckRequest {
	addr := func(port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	meta, _ := structpb.NewStruct(map[string]any{"k": "v", "n": 1.5})
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr(51234), Principal: "spiffe://client", Certificate: "-----BEGIN%20CERTIFICATE-----"},
		Destination: &authv3.AttributeContext_Peer{Address: addr(10000), Labels: map[string]string{"app": "mcp"}},
		Request: &authv3.AttributeContext_Request{Time: timestamppb.Now(), Http: &authv3.AttributeContext_HttpRequest{
			Id: "1234567890", Method: "POST", Path: "/mcp?x=1", Host: "mcp.example.com", Scheme: "https", Query: "x=1",
			Protocol: "HTTP/2", Size: 120, Body: "{}", RawBody: []byte("{}"),
			Headers: map[string]string{
				":authority": "mcp.example.com", ":method": "POST", ":path": "/mcp?x=1", ":scheme": "https",
				"authorization": "Bearer abc.def.ghi", "content-type": "application/json", "x-auth-sub": "spoofed",
				"mcp-session-id": "s-1", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				"empty": "",
			},
		}},
		ContextExtensions: map[string]string{"tokengate_route": "mcp", "other": "x"},
		MetadataContext:   &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": meta}},
		TlsSession:        &authv3.AttributeContext_TLSSession{Sni: "mcp.example.com"},
	}}
}

func headerMapRequest() *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/mcp", HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "authorization", RawValue: []byte("Bearer raw")},
			{Key: "x-auth-sub", Value: "spoofed"},
			{Key: "x-bin", RawValue: []byte{0xff, 0x00}},
			{Key: "empty"},
		}}},
	}}}
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

// wire builds a message from fields (number, then []byte for a
// length-delimited value, uint64 for a varint, or string).
func wire(fields ...any) []byte {
	var b []byte
	for i := 0; i < len(fields); i += 2 {
		num := protowire.Number(fields[i].(int))
		switch v := fields[i+1].(type) {
		case []byte:
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendBytes(b, v)
		case string:
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendString(b, v)
		case uint64:
			b = protowire.AppendTag(b, num, protowire.VarintType)
			b = protowire.AppendVarint(b, v)
		}
	}
	return b
}

// inHTTP wraps HttpRequest fields into a CheckRequest.
func inHTTP(fields ...any) []byte {
	return wire(1, wire(4, wire(2, wire(fields...))))
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func wireCases(t testing.TB) []struct {
	name string
	b    []byte
	// protoRefuses: proto.Unmarshal fails; DecodeCheckRequest decides
	// by ok.
	protoRefuses, ok bool
} {
	envoy := marshal(t, envoyLikeRequest())
	second := marshal(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request:           &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Path: "/other", Headers: map[string]string{"authorization": "Bearer second", "new": "1"}}},
		ContextExtensions: map[string]string{"tokengate_route": "pinned"},
	}})
	return []struct {
		name             string
		b                []byte
		protoRefuses, ok bool
	}{
		{"empty", nil, false, true},
		{"envoy-like", envoy, false, true},
		{"header_map", marshal(t, headerMapRequest()), false, true},
		{"bench", marshal(t, checkRequest("POST", "mcp.example.com", "/mcp", map[string]string{"authorization": "Bearer x"})), false, true},
		{"message fields merge, last value wins", concat(envoy, second), false, true},
		{"map entry without key or value", inHTTP(3, wire(2, "v"), 3, wire(1, "k"), 3, []byte{}), false, true},
		{"duplicate map key: last wins", inHTTP(3, wire(1, "k", 2, "a"), 3, wire(1, "k", 2, "b")), false, true},
		{"map entry field repeated: last wins", inHTTP(3, wire(1, "a", 1, "k", 2, "x", 2, "v")), false, true},
		{"known field with another wire type is unknown", inHTTP(2, uint64(7), 4, "/p", 3, uint64(1)), false, true},
		{"unknown fields everywhere", wire(1, wire(99, "x", 4, wire(2, wire(4, "/p", 77, uint64(3))), 50, uint64(1)), 7, "y"), false, true},
		{"group skipped", concat(inHTTP(4, "/p"), []byte{0x0b, 0x08, 0x01, 0x0c}), false, true},
		{"invalid UTF-8 in a header value", inHTTP(3, wire(1, "x", 2, "\xff")), true, false},
		{"invalid UTF-8 in a header name", inHTTP(3, wire(1, "\xc3", 2, "v")), true, false},
		{"invalid UTF-8 in the path", inHTTP(4, "/\xff"), true, false},
		{"invalid UTF-8 in a header_map value", inHTTP(13, wire(1, wire(1, "k", 2, "\xfe"))), true, false},
		{"invalid UTF-8 in a context extension", wire(1, wire(10, wire(1, "tokengate_route", 2, "\xff"))), true, false},
		{"invalid UTF-8 in raw_value is fine", inHTTP(13, wire(1, wire(1, "k", 3, "\xfe"))), false, true},
		// The difference from proto.Unmarshal: a field tokengate skips is
		// not checked.
		{"invalid UTF-8 in the query, which is skipped", inHTTP(4, "/p", 7, "\xff"), true, true},
		{"truncated", envoy[:len(envoy)-3], true, false},
		{"length past the end", []byte{0x0a, 0x05, 0x22}, true, false},
		{"field number 0", []byte{0x02, 0x00}, true, false},
		{"end group without start", []byte{0x0c}, true, false},
		{"bad varint", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true, false},
	}
}

// TestCheckRequestWire decodes requests with DecodeCheckRequest and with
// proto.Unmarshal: where proto.Unmarshal accepts, both read the same.
func TestCheckRequestWire(t *testing.T) {
	for _, tc := range wireCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			var want authv3.CheckRequest
			perr := proto.Unmarshal(tc.b, &want)
			require.Equal(t, tc.protoRefuses, perr != nil, "proto.Unmarshal: %v", perr)

			var got authv3.CheckRequest
			err := DecodeCheckRequest(append([]byte(nil), tc.b...), &got)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			if perr == nil {
				assert.Equal(t, viewOf(&want), viewOf(&got))
			}
		})
	}
}

// TestCheckRequestWireReuse: a decoded request is reset first, and its
// strings stay right after the bytes are decoded into another request.
func TestCheckRequestWireReuse(t *testing.T) {
	var r authv3.CheckRequest
	require.NoError(t, DecodeCheckRequest(marshal(t, envoyLikeRequest()), &r))
	first := viewOf(&r)
	require.Equal(t, "mcp", first.Ext["tokengate_route"])
	require.NoError(t, DecodeCheckRequest(marshal(t, headerMapRequest()), &r))
	assert.Nil(t, r.GetAttributes().GetContextExtensions(), "reset before decoding")
	assert.Equal(t, "GET", r.GetAttributes().GetRequest().GetHttp().GetMethod())
}

// FuzzCheckRequestWire: for any bytes, DecodeCheckRequest never panics;
// where proto.Unmarshal accepts them it accepts them too and reads the
// same; whatever it accepts, every string it kept is valid UTF-8.
func FuzzCheckRequestWire(f *testing.F) {
	for _, tc := range wireCases(f) {
		f.Add(tc.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want authv3.CheckRequest
		perr := proto.Unmarshal(b, &want)
		var got authv3.CheckRequest
		err := DecodeCheckRequest(append([]byte(nil), b...), &got)
		if perr == nil {
			require.NoError(t, err, "proto.Unmarshal accepts it")
			require.Equal(t, viewOf(&want), viewOf(&got))
		}
		if err != nil {
			return
		}
		v := viewOf(&got)
		strs := []string{v.Method, v.Path, v.Host, v.Scheme}
		for k, val := range v.Headers {
			strs = append(strs, k, val)
		}
		for k, val := range v.Ext {
			strs = append(strs, k, val)
		}
		for _, h := range v.HeaderMap {
			strs = append(strs, h[0], h[1])
		}
		for _, s := range strs {
			require.True(t, utf8.ValidString(s), "kept string %q", s)
		}
	})
}

// TestWireDroppedFieldsUnused: the code reads no field of the request
// that DecodeCheckRequest drops. (Getters shared with other messages, such
// as GetBody and GetId, cannot be told apart here.)
func TestWireDroppedFieldsUnused(t *testing.T) {
	dropped := regexp.MustCompile(`\.(GetDestination|GetTime|GetQuery|GetFragment|GetSize|GetProtocol|GetTlsSession|GetMetadataContext|GetRouteMetadataContext)\(\)`)
	for _, dir := range []string{".", "..", "../../authz"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			src, err := os.ReadFile(file)
			require.NoError(t, err)
			for _, m := range dropped.FindAll(src, -1) {
				t.Errorf("%s calls %s, a field DecodeCheckRequest drops: keep it in server/extauthz/wire.go", file, m)
			}
		}
	}
}

func BenchmarkCheckRequestWire(b *testing.B) {
	buf := marshal(b, envoyLikeRequest())
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r authv3.CheckRequest
			if err := proto.Unmarshal(buf, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeCheckRequest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r authv3.CheckRequest
			if err := DecodeCheckRequest(append([]byte(nil), buf...), &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
