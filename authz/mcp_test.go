package authz

import "testing"

func TestSendsHeaders(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"2026-07-28", true},
		{"2027-01-01", true},
		{"2025-11-25", false},
		{"", false},
		{"draft", false},
		{"latest", false},
		{"2026-7-28", false},
		{"2026-07-28x", false},
		{"9999-99-99", true},
		{"2026/07/28", false},
	}
	for _, tt := range tests {
		if got := sendsHeaders(tt.v); got != tt.want {
			t.Errorf("sendsHeaders(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"admin_*", "admin_reset", true},
		{"admin_*", "admin_", true},
		{"admin_*", "xadmin_reset", false},
		{"*", "", true},
		{"sample://secret/*", "sample://secret/report", true},
		{"sample://secret/*", "sample://secret/a/b", true},
		{"sample://secret/*", "sample://public/report", false},
		{"*_reset", "admin_reset", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"echo", "echo", true},
		{"echo", "echo2", false},
	}
	for _, tt := range tests {
		if got := glob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
