package acmedns

import (
	"sync"

	"golang.org/x/time/rate"
)

// maxTracked bounds the failure buckets kept; beyond it, full buckets (clients that have not
// failed lately) are forgotten.
const maxTracked = 10000

// failureLimiter is a token bucket of failed requests per client address: every failure
// takes a token, and a client with an empty bucket is turned away until it refills.
type failureLimiter struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

func newFailureLimiter(limit rate.Limit, burst int) *failureLimiter {
	return &failureLimiter{limit: limit, burst: burst, buckets: map[string]*rate.Limiter{}}
}

// blocked reports whether key has no failure left.
func (l *failureLimiter) blocked(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	return b != nil && b.Tokens() < 1
}

// fail takes a token from key's bucket.
func (l *failureLimiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxTracked {
			for k, o := range l.buckets {
				if o.Tokens() >= float64(l.burst) {
					delete(l.buckets, k)
				}
			}
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	b.Allow()
}
