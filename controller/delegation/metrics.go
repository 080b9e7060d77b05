// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"sync"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/canary"
	"github.com/acmezone/acmezone/controller/records"
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

	served = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "acmezone",
		Subsystem: "delegation",
		Name:      "served",
		Help:      "1 when the Delegation's last canary came back (condition Served True), 0 otherwise; one series per Delegation the canary ran for, on the leader.",
	}, []string{"namespace", "name", "domain"})
	canarySuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "acmezone",
		Subsystem: "canary",
		Name:      "last_success_timestamp_seconds",
		Help:      "Unix time of the Delegation's last canary value that came back through the resolvers and from every name server.",
	}, []string{"namespace", "name", "domain"})
	canaryLatency = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "acmezone",
		Subsystem: "canary",
		Name:      "latency_seconds",
		Help:      "Seconds the Delegation's last successful canary value took from its write to its answer through the resolvers.",
	}, []string{"namespace", "name", "domain"})
	renewalRisk = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "acmezone",
		Subsystem: "certificate",
		Name:      "renewal_at_risk",
		Help:      "1 while the Certificate's renewal is due within the renewal-risk window (or overdue) and the Delegation that answers its challenges is not Verified or not Served, else 0; on the leader.",
	}, []string{"namespace", "certificate", "delegation_namespace", "delegation"})
	canaryFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "acmezone",
		Subsystem: "canary",
		Name:      "failures_total",
		Help:      "Counter of canaries that did not come back, by reason (CNAMEMissing, CNAMEWrongTarget, NSNotDelegated, NameServerAddress, NameServerUnreachableUDP, NameServerUnreachableTCP, NameServerStale, ResolverStale, TXTLookupFailed, CanaryWriteFailed).",
	}, []string{"reason"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(checks, verified, served, canarySuccess, canaryLatency, canaryFailures, renewalRisk)
}

// observe records the outcome of one check of d: the first failed record's reason (also
// while a Verified Delegation holds on to its condition), and the Verified condition.
func observe(d *v1alpha1.Delegation, results []records.Check) {
	c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
	if c == nil {
		return
	}
	reason := c.Reason
	if results != nil {
		reason = ReasonRecordsResolve
		for _, r := range results {
			if !r.OK {
				reason = r.Reason
				break
			}
		}
	}
	checks.WithLabelValues(reason).Inc()
	v := 0.0
	if c.Status == "True" {
		v = 1
	}
	relabel(d)
	verified.WithLabelValues(d.Namespace, d.Name, d.Spec.Domain).Set(v)
}

// observeCanary records one canary of d.
func observeCanary(d *v1alpha1.Delegation, res canary.Result) {
	if !res.OK {
		canaryFailures.WithLabelValues(res.Reason).Inc()
	} else {
		canaryLatency.WithLabelValues(d.Namespace, d.Name, d.Spec.Domain).Set(res.Latency.Seconds())
		canarySuccess.WithLabelValues(d.Namespace, d.Name, d.Spec.Domain).Set(float64(res.Started.Unix()))
	}
	observeServed(d)
}

// observeServed sets acmezone_delegation_served from d's Served condition.
func observeServed(d *v1alpha1.Delegation) {
	v := 0.0
	if c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionServed); c != nil && c.Status == "True" {
		v = 1
	}
	served.WithLabelValues(d.Namespace, d.Name, d.Spec.Domain).Set(v)
}

// seriesDomain is the domain label each Delegation's series were last set with, so that a
// changed spec.domain drops the old ones.
var (
	seriesMu     sync.Mutex
	seriesDomain = map[types.NamespacedName]string{}
)

// relabel drops d's series when they carry another domain than d's now.
func relabel(d *v1alpha1.Delegation) {
	key := types.NamespacedName{Namespace: d.Namespace, Name: d.Name}
	seriesMu.Lock()
	old, ok := seriesDomain[key]
	seriesMu.Unlock()
	if ok && old != d.Spec.Domain {
		forget(key)
	}
	seriesMu.Lock()
	seriesDomain[key] = d.Spec.Domain
	seriesMu.Unlock()
}

// observeRisk sets the renewal risk of Certificate c, whose challenges d answers.
func observeRisk(d *v1alpha1.Delegation, c *cmapi.Certificate, atRisk bool) {
	v := 0.0
	if atRisk {
		v = 1
	}
	renewalRisk.WithLabelValues(c.Namespace, c.Name, d.Namespace, d.Name).Set(v)
}

// forgetRisks drops the renewal-risk series of d's Certificates, before they are set again.
func forgetRisks(d *v1alpha1.Delegation) {
	renewalRisk.DeletePartialMatch(prometheus.Labels{"delegation_namespace": d.Namespace, "delegation": d.Name})
}

// forget drops the series of a Delegation that is gone.
func forget(key types.NamespacedName) {
	for _, v := range []*prometheus.GaugeVec{verified, served, canaryLatency, canarySuccess} {
		v.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
	}
	renewalRisk.DeletePartialMatch(prometheus.Labels{"delegation_namespace": key.Namespace, "delegation": key.Name})
	seriesMu.Lock()
	delete(seriesDomain, key)
	seriesMu.Unlock()
}
