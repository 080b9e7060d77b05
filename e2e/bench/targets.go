// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import "time"

// The targets the report checks; it says from the measurements whether each is met.
// docs/benchmarks-method.md says where each comes from and how it is measured.
const (
	// Issue 5: the acmezone plugin against the stock file plugin, and at scale.
	targetVsFile      = 1.2                    // QPS of each acmezone server over the file plugin's
	targetRSSLarge    = 150e6                  // bytes: RSS of the large server, after sync and after dnsperf
	targetSyncLarge   = 10 * time.Second       // the large server's process start to its first correct answer
	targetScaleQPS    = 0.9                    // QPS of the large server over the small one's
	targetPropagation = 100 * time.Millisecond // p99 from the start of the Create call to the answer

	// Issue 12: ConfigMap churn.
	churnTarget = 100 * time.Millisecond // every ChallengeRecord served within this of its creation

	// Issue 17: the lean build against the full one (-tags coredns_full).
	leanIdleRSSMax   = 0.5   // idle RSS, lean over full
	leanImageMax     = 0.5   // compressed coredns image, lean over full
	leanLoadedRSSMax = 100e6 // bytes: the lean build's RSS under dnsperf at -records records
	leanQPSMin       = 0.95  // QPS, lean over full: no loss beyond the noise of a shared machine

	// Issue 14: a standard secondary kept current by NOTIFY.
	targetSecondary = time.Second // p99 from the start of the Create call to the secondary's answer
)
