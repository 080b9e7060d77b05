// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmedns

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxTracked bounds the buckets one limiter keeps.
const maxTracked = 10000

// limiter is a token bucket per client key (clientAddr's: an address, never with a port).
// The failure limiter takes a token for every failed request and turns a client with an empty
// bucket away; the registration limiter takes one for every /register.
//
// Invariants: len(buckets) <= max, so memory is bounded whatever addresses clients come
// from. A full bucket is one a client would be given afresh, so forgetting it changes
// nothing: when the map is full, such buckets are swept out (at most once a second, so a flood
// of new addresses does not rescan the map per request). While it is still full, every key not
// in it shares the one overflow bucket: many addresses cannot mean many fresh buckets.
type limiter struct {
	mu       sync.Mutex
	limit    rate.Limit
	burst    int
	max      int
	buckets  map[string]*rate.Limiter
	overflow *rate.Limiter
	swept    time.Time
	now      func() time.Time
}

func newLimiter(limit rate.Limit, burst int) *limiter {
	return &limiter{
		limit: limit, burst: burst, max: maxTracked,
		buckets:  map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(limit, burst),
		now:      time.Now,
	}
}

// blocked reports whether key's bucket is empty; it takes nothing.
func (l *limiter) blocked(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.bucket(key, now, false)
	return b != nil && b.TokensAt(now) < 1
}

// take takes a token from key's bucket and reports whether there was one.
func (l *limiter) take(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return l.bucket(key, now, true).AllowN(now, 1)
}

// bucket returns key's bucket, the overflow bucket when the map is full, or, unless create,
// nil for a key that has none (a full bucket). l.mu is held.
func (l *limiter) bucket(key string, now time.Time, create bool) *rate.Limiter {
	if b := l.buckets[key]; b != nil {
		return b
	}
	if len(l.buckets) >= l.max && now.Sub(l.swept) >= time.Second {
		l.swept = now
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
	}
	switch {
	case len(l.buckets) >= l.max:
		return l.overflow
	case !create:
		return nil
	}
	b := rate.NewLimiter(l.limit, l.burst)
	l.buckets[key] = b
	return b
}
