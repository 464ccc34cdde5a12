package verify

import (
	"bytes"
	"encoding/json"
	"strings"
)

// claimValues reads the named claims of a verified payload as header
// values (see claimText); a claim the payload lacks is absent.
func claimValues(payload []byte, names []string) map[string]string {
	var all map[string]json.RawMessage
	if json.Unmarshal(payload, &all) != nil {
		return nil
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		if raw, ok := all[name]; ok {
			out[name] = claimText(raw)
		}
	}
	return out
}

// claimText renders one claim as a header value: strings as they are,
// numbers and booleans as text, arrays comma-joined, objects as compact
// JSON, null as "".
func claimText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return ""
		}
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = claimText(it)
		}
		return strings.Join(parts, ",")
	case '{':
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return ""
		}
		return b.String()
	case 'n':
		return ""
	}
	return string(raw)
}
