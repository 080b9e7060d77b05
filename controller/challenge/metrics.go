// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package challenge

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Reasons a ChallengeRecord is reaped: the label "reason" of acmezone_challengerecords_reaped_total.
const (
	ReapedOrphaned = "orphaned" // the Challenge it was written for is gone (OrphanReconciler)
	ReapedExpired  = "expired"  // an acme-dns record older than --acme-dns-record-max-age, no Challenge left (ExpiryReconciler)
)

var reaped = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "acmezone",
	Subsystem: "challengerecords",
	Name:      "reaped_total",
	Help:      "Counter of ChallengeRecords deleted by acmezone-controller rather than by their writer, by reason: orphaned (their Challenge is gone) or expired (acme-dns records past their maximum age).",
}, []string{"reason"})

func init() {
	ctrlmetrics.Registry.MustRegister(reaped)
}
