package authz

import (
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Deny log defaults: DefaultDenyLogsPerSecond lines a second on average,
// bursts of DefaultDenyLogBurst.
const (
	DefaultDenyLogsPerSecond = 20
	DefaultDenyLogBurst      = 100
)

// DenyLogLimiter bounds the deny log lines an anonymous client can cause
// (docs/security.md, "Deny log volume"): a token bucket lets lines through,
// and the lines it holds back are counted, to be reported by the next line
// that gets through. It is safe for concurrent use.
type DenyLogLimiter struct {
	lim        *rate.Limiter
	suppressed atomic.Uint64
}

// NewDenyLogLimiter allows perSecond lines a second on average and bursts of
// burst lines; zero or negative values take the defaults.
func NewDenyLogLimiter(perSecond float64, burst int) *DenyLogLimiter {
	if perSecond <= 0 {
		perSecond = DefaultDenyLogsPerSecond
	}
	if burst <= 0 {
		burst = DefaultDenyLogBurst
	}
	return &DenyLogLimiter{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Allow reports whether a deny line may be written at now. When it may,
// suppressed is the number of lines held back since the last one written
// (log it as the line's "suppressed" attribute when not zero).
func (l *DenyLogLimiter) Allow(now time.Time) (ok bool, suppressed uint64) {
	if !l.lim.AllowN(now, 1) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
