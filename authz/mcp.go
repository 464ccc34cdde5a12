package authz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/tokengate/tokengate/config"
)

// MCP operations (contract section 9): which JSON-RPC operation a request
// carries, and the scopes it needs.

// Headers of SEP-2243 (MCP 2026-07-28) and the protocol version that makes
// them trustworthy.
const (
	hdrMCPMethod          = "mcp-method"
	hdrMCPName            = "mcp-name"
	hdrMCPProtocolVersion = "mcp-protocol-version"
	// headersSince is the first protocol version whose clients send
	// Mcp-Method and Mcp-Name; dates compare as strings.
	headersSince = "2026-07-28"
	// hdrPartialBody is set by Envoy when it forwarded only the first
	// max_request_bytes of the body.
	hdrPartialBody = "x-envoy-auth-partial-body"
)

// HeaderMCPMethod and HeaderMCPName tell the upstream the operation that
// was authorized.
const (
	HeaderMCPMethod = "x-auth-mcp-method"
	HeaderMCPName   = "x-auth-mcp-name"
)

// Operation is one JSON-RPC message of a request: a request or
// notification (Method set) or a client's response (Method empty).
type Operation struct {
	Method, Name string
	// ID is the message's raw JSON-RPC id (nil for a notification), echoed
	// in a -32020 answer.
	ID json.RawMessage
}

// Errors of operation extraction.
var (
	// errOperationUnknown: a POST whose operation cannot be determined.
	errOperationUnknown = errors.New("mcp operation unknown")
	// errHeaderMismatch: Mcp-Method/Mcp-Name disagree with the body, or
	// cannot be decoded.
	errHeaderMismatch = errors.New("mcp header mismatch")
)

// mcpRules are a route's compiled mcp block.
type mcpRules struct {
	ops          []opRule
	denyUnlisted bool
	readBody     bool
}

// opRule is one compiled operation rule.
type opRule struct {
	method string
	prefix bool // method ends in "/*": match method as a prefix ("tools/")
	name   string
	named  bool
	// scopes are the rule's scopes beyond the route's.
	scopes []string
}

func compileMCP(m *config.MCP) *mcpRules {
	if m == nil {
		return nil
	}
	r := &mcpRules{denyUnlisted: m.Unlisted == config.UnlistedDeny, readBody: m.Body != config.BodyNever}
	for _, op := range m.Operations {
		o := opRule{method: op.Method, scopes: op.Scopes}
		if p, ok := strings.CutSuffix(op.Method, "/*"); ok {
			o.method, o.prefix = p+"/", true
		}
		if op.Name != nil {
			o.name, o.named = *op.Name, true
		}
		r.ops = append(r.ops, o)
	}
	return r
}

// rule returns the first rule matching op, or nil.
func (m *mcpRules) rule(op Operation) *opRule {
	for i := range m.ops {
		r := &m.ops[i]
		if r.prefix {
			if !strings.HasPrefix(op.Method, r.method) {
				continue
			}
		} else if op.Method != r.method {
			continue
		}
		if r.named && !glob(r.name, op.Name) {
			continue
		}
		return r
	}
	return nil
}

// operations returns the JSON-RPC messages of a POST: from the SEP-2243
// headers when the protocol version says they are sent, and from the body
// Envoy forwards. When both are there they must agree.
func (m *mcpRules) operations(req *Request) ([]Operation, error) {
	var hdr *Operation
	if method := req.Headers.Get(hdrMCPMethod); method != "" && sendsHeaders(req.Headers.Get(hdrMCPProtocolVersion)) {
		name, err := decodeMCPName(req.Headers.Get(hdrMCPName))
		if err != nil {
			return nil, errHeaderMismatch
		}
		hdr = &Operation{Method: method, Name: name}
	}
	var body []Operation
	if m.readBody && len(req.Body) > 0 {
		if req.Headers.Get(hdrPartialBody) == "true" {
			// A cut body cannot show what the rest says: a later duplicate
			// member could name another tool for the upstream.
			return nil, errOperationUnknown
		}
		var err error
		if body, err = parseMessages(req.Body); err != nil {
			return nil, errOperationUnknown
		}
	}
	switch {
	case hdr != nil && body != nil:
		if len(body) != 1 || body[0].Method != hdr.Method || body[0].Name != hdr.Name {
			if len(body) == 1 {
				return body, errHeaderMismatch
			}
			return nil, errHeaderMismatch
		}
		return body, nil
	case hdr != nil:
		return []Operation{*hdr}, nil
	case body != nil:
		return body, nil
	}
	return nil, errOperationUnknown
}

// sendsHeaders reports whether a client of protocol version v sends the
// SEP-2243 headers: v is a date (YYYY-MM-DD) no earlier than headersSince.
// Anything else ("draft", "latest") is not trusted.
func sendsHeaders(v string) bool {
	if len(v) != len(headersSince) || v[4] != '-' || v[7] != '-' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if i != 4 && i != 7 && (v[i] < '0' || v[i] > '9') {
			return false
		}
	}
	return v >= headersSince
}

// decodeMCPName decodes an Mcp-Name value: as it is, or "=?base64?...?="
// for names that are not plain header text.
func decodeMCPName(v string) (string, error) {
	enc, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v, nil
	}
	enc, ok = strings.CutSuffix(enc, "?=")
	if !ok {
		return "", errHeaderMismatch
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", errHeaderMismatch
	}
	return string(b), nil
}

// parseMessages reads a JSON-RPC message or batch strictly: member names
// are matched exactly, and a duplicated member makes the body unreadable,
// since the upstream's parser may take another of the two values.
func parseMessages(body []byte) ([]Operation, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errOperationUnknown
	}
	if body[0] != '[' {
		op, err := parseMessage(body)
		if err != nil {
			return nil, err
		}
		return []Operation{op}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil || len(items) == 0 {
		return nil, errOperationUnknown
	}
	ops := make([]Operation, 0, len(items))
	for _, it := range items {
		op, err := parseMessage(it)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// parseMessage reads one JSON-RPC message object.
func parseMessage(raw []byte) (Operation, error) {
	var op Operation
	var hasMethod, isResponse bool
	var params json.RawMessage
	err := strictObject(raw, func(name string, val json.RawMessage) error {
		switch name {
		case "jsonrpc":
			var v string
			if json.Unmarshal(val, &v) != nil || v != "2.0" {
				return errOperationUnknown
			}
		case "method":
			if json.Unmarshal(val, &op.Method) != nil || op.Method == "" {
				return errOperationUnknown
			}
			hasMethod = true
		case "id":
			op.ID = val
		case "params":
			params = val
		case "result", "error":
			isResponse = true
		}
		return nil
	})
	if err != nil || hasMethod == isResponse {
		return Operation{}, errOperationUnknown
	}
	if !hasMethod {
		return op, nil // a client's answer to a server request
	}
	key := ""
	switch op.Method {
	case "tools/call", "prompts/get":
		key = "name"
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		key = "uri"
	}
	if key == "" || len(params) == 0 {
		if key != "" {
			return Operation{}, errOperationUnknown
		}
		return op, nil
	}
	found := false
	err = strictObject(params, func(name string, val json.RawMessage) error {
		if name == key {
			found = true
			if json.Unmarshal(val, &op.Name) != nil {
				return errOperationUnknown
			}
		}
		return nil
	})
	if err != nil || !found {
		return Operation{}, errOperationUnknown
	}
	return op, nil
}

// rpcMembers are the member names tokengate reads in a JSON-RPC message
// and its params.
var rpcMembers = []string{"jsonrpc", "method", "id", "params", "result", "error", "name", "uri"}

// strictObject calls f with every member of the JSON object raw, by its
// exact name. It fails on a duplicated name, on trailing data, and on a
// name that is one of rpcMembers but for letter case: parsers that match
// names case-insensitively (Go's encoding/json, for one) would read such a
// member as the one tokengate saw under its exact name, or the other way.
func strictObject(raw []byte, f func(name string, val json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errOperationUnknown
	}
	var seen []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return errOperationUnknown
		}
		name, _ := t.(string)
		for _, s := range seen {
			if strings.EqualFold(s, name) {
				return errOperationUnknown
			}
		}
		for _, m := range rpcMembers {
			if name != m && strings.EqualFold(name, m) {
				return errOperationUnknown
			}
		}
		seen = append(seen, name)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return errOperationUnknown
		}
		if err := f(name, val); err != nil {
			return err
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return errOperationUnknown
	}
	if _, err := dec.Token(); err != io.EOF {
		return errOperationUnknown
	}
	return nil
}

// glob matches name against pattern, where "*" stands for any run of
// characters (slashes included) and every other byte for itself.
func glob(pattern, name string) bool {
	px, nx := 0, 0
	nextPx, nextNx := 0, 0
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			c := pattern[px]
			if c == '*' {
				// Try to match the empty run first; come back for more.
				nextPx, nextNx = px, nx+1
				px++
				continue
			}
			if nx < len(name) && name[nx] == c {
				px++
				nx++
				continue
			}
		}
		if 0 < nextNx && nextNx <= len(name) {
			px, nx = nextPx, nextNx
			continue
		}
		return false
	}
	return true
}
