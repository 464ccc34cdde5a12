package verify

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClaimText(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`"alice"`, "alice"},
		{`42`, "42"},
		{`4.5e3`, "4.5e3"},
		{`true`, "true"},
		{`false`, "false"},
		{`null`, ""},
		{`["a","b",3]`, "a,b,3"},
		{`[]`, ""},
		{`{ "b": 1, "a": [1, 2] }`, `{"b":1,"a":[1,2]}`},
		{`"line\nbreak"`, "line\nbreak"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, claimText([]byte(tt.raw)), "claimText(%s)", tt.raw)
	}
}
