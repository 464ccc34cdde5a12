package extauthz

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// checkCodec is the gRPC server's codec: gRPC's own protobuf codec, except
// that a CheckRequest is decoded by DecodeCheckRequest, which keeps
// only the fields tokengate reads (see wire.go for what it costs
// otherwise and what it keeps).
type checkCodec struct{ proto encoding.CodecV2 }

// NewCodec returns the codec for the gRPC server (grpc.ForceServerCodecV2).
func NewCodec() encoding.CodecV2 { return newCheckCodec() }

func newCheckCodec() checkCodec { return checkCodec{proto: encoding.GetCodecV2(proto.Name)} }

func (checkCodec) Name() string { return proto.Name }

func (c checkCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c checkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*authv3.CheckRequest)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	// A copy the request owns: its strings point into it, and gRPC frees
	// data when Unmarshal returns.
	b := make([]byte, data.Len())
	data.CopyTo(b)
	return DecodeCheckRequest(b, req)
}
