// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

var (
	checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "acmezone",
		Subsystem: "delegation",
		Name:      "checks_total",
		Help:      "Counter of Delegation record checks in DNS, by the Verified condition's reason: RecordsResolve when verified, else the first record that failed (NameServerAddress, NSNotDelegated, CNAMEMissing, CNAMEWrongTarget, TXTLookupFailed) or InvalidTarget.",
	}, []string{"reason"})
	verified = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "acmezone",
		Subsystem: "delegation",
		Name:      "verified",
		Help:      "1 when the Delegation's records resolve as they must (condition Verified True), 0 otherwise; one series per Delegation, on the leader.",
	}, []string{"namespace", "name", "domain"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(checks, verified)
}

// observe records the outcome of one check of d.
func observe(d *v1alpha1.Delegation) {
	c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
	if c == nil {
		return
	}
	checks.WithLabelValues(c.Reason).Inc()
	v := 0.0
	if c.Status == "True" {
		v = 1
	}
	// A changed spec.domain would leave the old domain's series behind.
	forget(types.NamespacedName{Namespace: d.Namespace, Name: d.Name})
	verified.WithLabelValues(d.Namespace, d.Name, d.Spec.Domain).Set(v)
}

// forget drops the series of a Delegation that is gone.
func forget(key types.NamespacedName) {
	verified.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
}
