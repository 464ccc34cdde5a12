package verify

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClaimFastPaths: the number grammar and the string decoding of the
// strict claims decoder agree with encoding/json on what both accept.
func TestClaimFastPaths(t *testing.T) {
	tests := []struct {
		in         string
		wantNumber bool
		wantPlain  bool
	}{
		{`0`, true, false},
		{`-0`, true, false},
		{`1800000000`, true, false},
		{`1800000000.25`, true, false},
		{`1.8e9`, true, false},
		{`1E+9`, true, false},
		{`1e-9`, true, false},
		{`-12.5E-3`, true, false},
		{`01`, false, false},
		{`+1`, false, false},
		{`1.`, false, false},
		{`.5`, false, false},
		{`1e`, false, false},
		{`1e+`, false, false},
		{`-`, false, false},
		{``, false, false},
		{`0x10`, false, false},
		{`Inf`, false, false},
		{`NaN`, false, false},
		{`1 `, false, false},
		{` 1`, false, false},
		{`true`, false, false},
		{`null`, false, false},
		{`"1"`, false, true},
		{`"https://mcp.example.com/mcp"`, false, true},
		{`"mcp:read mcp:write"`, false, true},
		{`""`, false, true},
		{`"a\"b"`, false, true},
		{`"a\u0041"`, false, true},
		{`"\ud83d\ude00"`, false, true},
		{`"\ud83d"`, false, false},
		{`"\ude00\ud83d"`, false, false},
		{`"\u00"`, false, false},
		{`"\x"`, false, false},
		{`"caf` + "\xc3\xa9" + `"`, false, true},
		{`"surrogate in UTF-8 ` + "\xed\xa0\x80" + `"`, false, false},
		{`1099511627776`, true, false},
		{`1099511627777`, true, false},
		{`9999999999999`, true, false},
		{`99999999999999999999`, true, false},
		{`-0.0`, true, false},
		{`"bad` + "\xff" + `"`, false, false},
		{`"tab` + "\t" + `"`, false, false},
		{`"`, false, false},
		{`"a`, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			assert.Equal(t, tc.wantNumber, isJSONNumber([]byte(tc.in)), "isJSONNumber")
			assert.Equal(t, tc.wantPlain, validJSON([]byte(tc.in)) == nil && tc.in[0] == '"', "a strict JSON string")
			checkClaimFastPaths(t, []byte(tc.in))
		})
	}
}

// FuzzClaimFastPaths: for any input, a shortcut that answers gives what
// encoding/json gives, and isJSONNumber misses no JSON number without
// surrounding space.
func FuzzClaimFastPaths(f *testing.F) {
	for _, s := range []string{`0`, `-1.5e3`, `"plain"`, `"esc\n"`, `01`, `1.`, `"caf` + "\xc3\xa9" + `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkClaimFastPaths)
}

func checkClaimFastPaths(t *testing.T, b []byte) {
	if isJSONNumber(b) {
		var n json.Number
		require.NoError(t, json.Unmarshal(b, &n), "a number for isJSONNumber is one for encoding/json")
		require.Equal(t, string(b), n.String())
	} else if len(b) > 0 && (b[0] == '-' || ('0' <= b[0] && b[0] <= '9')) && !strings.ContainsAny(string(b[len(b)-1:]), " \t\r\n") && json.Valid(b) {
		// (The claims decoder hands over values without surrounding space;
		// with it, encoding/json decodes them, as before.)
		t.Fatalf("isJSONNumber missed %q", b)
	}
	if v := trimJSONSpace(b); len(v) > 0 && v[0] == '"' && validJSON(b) == nil {
		var want string
		require.NoError(t, json.Unmarshal(b, &want), "a strict JSON string is a JSON string")
		require.Equal(t, want, jsonString(v))
	}
	if isJSONNumber(b) {
		// The integer shortcut of numericDate agrees with strconv.
		got, ok := numericDate(b)
		f, err := strconv.ParseFloat(string(b), 64)
		want := err == nil && f >= 0 && f <= maxNumericDate
		require.Equal(t, want, ok, "numericDate(%q) accepted", b)
		if ok {
			sec, frac := math.Modf(f)
			require.True(t, time.Unix(int64(sec), int64(frac*1e9)).Equal(got), "numericDate(%q)", b)
		}
	}
}
