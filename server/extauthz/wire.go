package extauthz

import (
	"errors"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The CheckRequest decoder. Envoy's CheckRequest carries much that
// tokengate never reads (peer addresses, a timestamp, metadata, TLS
// details), and protobuf's generic decoder pays for all of it, its maps
// most of all: about 5 µs and 100 allocations for an ordinary request, a
// fifth of a cached Check's CPU. DecodeCheckRequest reads the wire form
// with protowire, the protobuf module's own low-level API, keeps the fields
// below and skips the rest:
//
//	CheckRequest.attributes (1)
//	  AttributeContext.source (1) with Peer.certificate (5)
//	  AttributeContext.request (4), .context_extensions (10)
//	    Request.http (2)
//	      HttpRequest.method (2), .headers (3), .path (4), .host (5),
//	      .scheme (6), .body (11), .raw_body (12), .header_map (13) with
//	      HeaderValue key, value, raw_value
//
// Reading any other field of a decoded request finds it empty: a new use of
// the request must add its field here (wire_test.go checks the code for
// the getters of the dropped fields).
//
// Where it keeps a field it decodes it as proto.Unmarshal does: the last
// value of a field wins, a message field that comes twice is merged, map
// entries may lack their key or value, a known field number with another
// wire type is skipped as an unknown field, and a kept string must be valid
// UTF-8. Its one difference: proto.Unmarshal also refuses a request whose
// skipped fields are malformed (invalid UTF-8 in the query string, say),
// where DecodeCheckRequest decides on the fields it reads. FuzzCheckRequestWire
// holds it to that.

// Field numbers of the kept fields.
const (
	wireCheckAttributes     = 1
	wireAttrSource          = 1
	wirePeerCertificate     = 5
	wireAttrRequest         = 4
	wireAttrContextExt      = 10
	wireRequestHTTP         = 2
	wireHTTPMethod          = 2
	wireHTTPHeaders         = 3
	wireHTTPPath            = 4
	wireHTTPHost            = 5
	wireHTTPScheme          = 6
	wireHTTPBody            = 11
	wireHTTPRawBody         = 12
	wireHTTPHeaderMap       = 13
	wireHeaderMapHeaders    = 1
	wireHeaderValueKey      = 1
	wireHeaderValueValue    = 2
	wireHeaderValueRawValue = 3
	wireMapKey              = 1
	wireMapValue            = 2
)

var (
	errWireEndGroup = errors.New("proto: unexpected end group")
	errWireUTF8     = errors.New("proto: string field contains invalid UTF-8")
)

// DecodeCheckRequest decodes b, the protobuf wire form of a CheckRequest,
// into req (reset first), keeping the fields tokengate reads. req's strings
// point into b, which therefore becomes req's: the caller must not modify
// it afterwards.
func DecodeCheckRequest(b []byte, req *authv3.CheckRequest) error {
	proto.Reset(req)
	if len(b) == 0 {
		return nil
	}
	d := wireDecoder{b: b, s: unsafe.String(&b[0], len(b))}
	return d.checkRequest(req, 0, len(b))
}

type wireDecoder struct {
	b []byte
	s string // b, for strings that point into it
	// p holds the nested messages of the request, allocated together when
	// the first is needed.
	p *wireParts
}

type wireParts struct {
	attrs authv3.AttributeContext
	peer  authv3.AttributeContext_Peer
	req   authv3.AttributeContext_Request
	http  authv3.AttributeContext_HttpRequest
	hmap  corev3.HeaderMap
}

func (d *wireDecoder) parts() *wireParts {
	if d.p == nil {
		d.p = new(wireParts)
	}
	return d.p
}

// wireField is one field: its number and wire type and, for a
// length-delimited one, where its content is (b[lo:hi]).
type wireField struct {
	num    protowire.Number
	typ    protowire.Type
	lo, hi int
}

// next reads the field at b[pos:end] and returns it with the position
// after it.
func (d *wireDecoder) next(pos, end int) (wireField, int, error) {
	num, typ, n := protowire.ConsumeTag(d.b[pos:end])
	if n < 0 {
		return wireField{}, 0, protowire.ParseError(n)
	}
	pos += n
	f := wireField{num: num, typ: typ}
	switch typ {
	case protowire.BytesType:
		v, m := protowire.ConsumeBytes(d.b[pos:end])
		if m < 0 {
			return wireField{}, 0, protowire.ParseError(m)
		}
		f.lo = pos + m - len(v)
		f.hi = f.lo + len(v)
		return f, pos + m, nil
	case protowire.EndGroupType:
		return wireField{}, 0, errWireEndGroup
	}
	m := protowire.ConsumeFieldValue(num, typ, d.b[pos:end])
	if m < 0 {
		return wireField{}, 0, protowire.ParseError(m)
	}
	return f, pos + m, nil
}

// str returns f's content as a string, which must be valid UTF-8.
func (d *wireDecoder) str(f wireField) (string, error) {
	if !utf8.Valid(d.b[f.lo:f.hi]) {
		return "", errWireUTF8
	}
	return d.s[f.lo:f.hi], nil
}

// bytes returns f's content as a new slice, as proto.Unmarshal does
// (empty, not nil, for an empty field).
func (d *wireDecoder) bytes(f wireField) []byte {
	return append([]byte{}, d.b[f.lo:f.hi]...)
}

// each calls field for each field of the message at b[pos:end] that has
// wire type bytes (every kept field has), and skips the others.
func (d *wireDecoder) each(pos, end int, field func(wireField) error) error {
	for pos < end {
		f, next, err := d.next(pos, end)
		if err != nil {
			return err
		}
		pos = next
		if f.typ != protowire.BytesType {
			continue
		}
		if err := field(f); err != nil {
			return err
		}
	}
	return nil
}

func (d *wireDecoder) checkRequest(req *authv3.CheckRequest, pos, end int) error {
	return d.each(pos, end, func(f wireField) error {
		if f.num != wireCheckAttributes {
			return nil
		}
		if req.Attributes == nil {
			req.Attributes = &d.parts().attrs
		}
		return d.attributes(req.Attributes, f.lo, f.hi)
	})
}

func (d *wireDecoder) attributes(a *authv3.AttributeContext, pos, end int) error {
	return d.each(pos, end, func(f wireField) error {
		switch f.num {
		case wireAttrSource:
			if a.Source == nil {
				a.Source = &d.parts().peer
			}
			return d.peer(a.Source, f.lo, f.hi)
		case wireAttrRequest:
			if a.Request == nil {
				a.Request = &d.parts().req
			}
			return d.request(a.Request, f.lo, f.hi)
		case wireAttrContextExt:
			if a.ContextExtensions == nil {
				a.ContextExtensions = make(map[string]string, d.count(pos, end, wireAttrContextExt))
			}
			return d.mapEntry(a.ContextExtensions, f.lo, f.hi)
		}
		return nil
	})
}

// peer keeps the client certificate of the downstream connection
// (include_peer_certificate), for certificate-bound tokens.
func (d *wireDecoder) peer(p *authv3.AttributeContext_Peer, pos, end int) error {
	return d.each(pos, end, func(f wireField) error {
		if f.num != wirePeerCertificate {
			return nil
		}
		var err error
		p.Certificate, err = d.str(f)
		return err
	})
}

func (d *wireDecoder) request(r *authv3.AttributeContext_Request, pos, end int) error {
	return d.each(pos, end, func(f wireField) error {
		if f.num != wireRequestHTTP {
			return nil
		}
		if r.Http == nil {
			r.Http = &d.parts().http
		}
		return d.http(r.Http, f.lo, f.hi)
	})
}

func (d *wireDecoder) http(h *authv3.AttributeContext_HttpRequest, pos, end int) error {
	return d.each(pos, end, func(f wireField) error {
		var err error
		switch f.num {
		case wireHTTPMethod:
			h.Method, err = d.str(f)
		case wireHTTPPath:
			h.Path, err = d.str(f)
		case wireHTTPHost:
			h.Host, err = d.str(f)
		case wireHTTPScheme:
			h.Scheme, err = d.str(f)
		case wireHTTPBody:
			h.Body, err = d.str(f)
		case wireHTTPRawBody:
			h.RawBody = d.b[f.lo:f.hi:f.hi] // req owns b: no copy
		case wireHTTPHeaders:
			if h.Headers == nil {
				h.Headers = make(map[string]string, d.count(pos, end, wireHTTPHeaders))
			}
			err = d.mapEntry(h.Headers, f.lo, f.hi)
		case wireHTTPHeaderMap:
			if h.HeaderMap == nil {
				h.HeaderMap = &d.parts().hmap
			}
			err = d.headerMap(h.HeaderMap, f.lo, f.hi)
		}
		return err
	})
}

func (d *wireDecoder) headerMap(m *corev3.HeaderMap, pos, end int) error {
	return d.each(pos, end, func(f wireField) error {
		if f.num != wireHeaderMapHeaders {
			return nil
		}
		hv := new(corev3.HeaderValue)
		m.Headers = append(m.Headers, hv)
		return d.each(f.lo, f.hi, func(g wireField) error {
			var err error
			switch g.num {
			case wireHeaderValueKey:
				hv.Key, err = d.str(g)
			case wireHeaderValueValue:
				hv.Value, err = d.str(g)
			case wireHeaderValueRawValue:
				hv.RawValue = d.bytes(g)
			}
			return err
		})
	})
}

// mapEntry adds the map<string, string> entry at b[pos:end] to m.
func (d *wireDecoder) mapEntry(m map[string]string, pos, end int) error {
	var k, v string
	err := d.each(pos, end, func(f wireField) error {
		var err error
		switch f.num {
		case wireMapKey:
			k, err = d.str(f)
		case wireMapValue:
			v, err = d.str(f)
		}
		return err
	})
	if err != nil {
		return err
	}
	m[k] = v
	return nil
}

// count returns how many length-delimited fields numbered num the message
// at b[pos:end] has (to size a map), or 0 if it is malformed.
func (d *wireDecoder) count(pos, end int, num protowire.Number) int {
	n := 0
	for pos < end {
		f, next, err := d.next(pos, end)
		if err != nil {
			return 0
		}
		if f.num == num && f.typ == protowire.BytesType {
			n++
		}
		pos = next
	}
	return n
}
