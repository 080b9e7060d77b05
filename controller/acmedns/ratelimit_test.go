// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmedns

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiterBounded is the attack on the limiter's memory: a client with many addresses (an
// IPv6 /48 is 65,536 /64s) fails from each. The limiter keeps at most max buckets; the
// addresses beyond share one overflow bucket, so they cannot each get a fresh one either.
func TestLimiterBounded(t *testing.T) {
	now := time.Now()
	l := newLimiter(1, 2) // one token a second, two at most
	l.now = func() time.Time { return now }
	l.max = 10
	for i := range 100 {
		l.take(fmt.Sprintf("k%d", i))
		if len(l.buckets) > l.max {
			t.Fatalf("after %d keys: %d buckets, want at most %d", i+1, len(l.buckets), l.max)
		}
	}
	// The 90 keys beyond the first ten drained the overflow bucket: every new key is blocked,
	// the ten known ones are not.
	if !l.blocked("new") || l.take("new") {
		t.Error("a new key in a full limiter is not blocked after the overflow bucket was drained")
	}
	if l.blocked("k0") {
		t.Error("k0, one failure of two, is blocked")
	}
	// A second later the known buckets are full again: they are forgotten, and new keys get
	// buckets of their own.
	now = now.Add(2 * time.Second)
	if !l.take("fresh") || len(l.buckets) != 1 {
		t.Errorf("after the buckets refilled: %d buckets, want the one fresh key's", len(l.buckets))
	}
}

// TestLimiterBlocked checks the bucket itself: burst takes, then blocked until it refills.
func TestLimiterBlocked(t *testing.T) {
	now := time.Now()
	l := newLimiter(1.0/60, 3)
	l.now = func() time.Time { return now }
	if l.blocked("a") {
		t.Error("a key never seen is blocked")
	}
	for i := range 3 {
		if !l.take("a") {
			t.Fatalf("take %d refused", i)
		}
	}
	if !l.blocked("a") || l.take("a") {
		t.Error("an empty bucket is not blocked")
	}
	if l.blocked("b") {
		t.Error("another key is blocked")
	}
	now = now.Add(time.Minute)
	if l.blocked("a") || !l.take("a") || l.take("a") {
		t.Error("a minute later: want one token, exactly")
	}
}
