// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/canary"
	"github.com/acmezone/acmezone/controller/records"
	"github.com/acmezone/acmezone/controller/records/recordstest"
)

// TestCanaryAndHysteresis: a Verified Delegation gets a Served condition from its canary; a
// name server that goes stale makes it not Served only after several canaries in a row
// failed, and Served again once it recovers; a CNAME deleted at the provider makes it not
// Verified only after several checks in a row failed. One DNS server plays the resolver and
// the zone's name server, fed with the ChallengeRecords of the API server as the plugin is.
func TestCanaryAndHysteresis(t *testing.T) {
	ns := newNamespace(t, "canary")
	target := derived(t, ns, "example.com")
	srv := recordstest.NewServer(t)
	static := []string{
		"ns.example.com. 300 IN A 127.0.0.1",
		"acme.example.com. 300 IN NS ns.example.com.",
		"_acme-challenge.example.com. 300 IN CNAME " + target,
	}
	var staticNow atomic.Pointer[[]string]
	staticNow.Store(&static)
	var stale atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for ctx.Err() == nil {
			if !stale.Load() {
				rrs := append([]string(nil), *staticNow.Load()...)
				var recs v1alpha1.ChallengeRecordList
				if err := k8s.List(ctx, &recs, client.InNamespace(ns)); err == nil {
					for _, r := range recs.Items {
						rrs = append(rrs, fmt.Sprintf("%s 1 IN TXT %q", r.Spec.FQDN, r.Spec.Value))
					}
				}
				srv.Set(t, rrs...)
				srv.SetRcode(target, dns.RcodeSuccess) // the target exists (NODATA), as the plugin answers it
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-fed }()

	_, portStr, _ := net.SplitHostPort(srv.Addr)
	port, _ := strconv.Atoi(portStr)
	opts := testOptions
	opts.NameServers = []controller.NameServer{{Name: "ns.example.com.", Addrs: []net.IP{net.ParseIP("127.0.0.1")}}}
	startReconciler(t, opts, srv.Addr, func(r *Reconciler) {
		r.FailedRecheck = 200 * time.Millisecond
		r.Canary = &Canary{
			Prober: &canary.Prober{Client: k8s, Resolver: r.Resolver, Options: &r.Options,
				Deadline: time.Second, Poll: 50 * time.Millisecond, Port: port},
			Interval: 500 * time.Millisecond, Retry: 200 * time.Millisecond,
			Limit: rate.NewLimiter(rate.Every(10*time.Millisecond), 1),
		}
	}, ns)
	staleBefore := testutil.ToFloat64(canaryFailures.WithLabelValues(canary.ReasonStaleNameServer))
	createDelegation(t, ns, "example-com", "example.com", "")

	d := waitFor(t, ns, "example-com", "Served=True", hasCondition(v1alpha1.ConditionServed, metav1.ConditionTrue, canary.ReasonAnswered))
	if c := d.Status.Canary; c == nil || c.LastSuccessTime == nil || c.Latency == nil || c.Latency.Duration <= 0 {
		t.Errorf("status.canary %+v, want the last success and its latency", c)
	}
	if got := testutil.ToFloat64(served.WithLabelValues(ns, "example-com", "example.com")); got != 1 {
		t.Errorf("acmezone_delegation_served %v, want 1", got)
	}
	if got := testutil.ToFloat64(canarySuccess.WithLabelValues(ns, "example-com", "example.com")); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("acmezone_canary_last_success_timestamp_seconds %v, want about now", got)
	}

	// The name server goes stale: Served holds through the first failures, then flips.
	stale.Store(true)
	sawHeld := false
	waitFor(t, ns, "example-com", "Served=False NameServerStale", func(d *v1alpha1.Delegation) (bool, string) {
		c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionServed)
		if c.Status == metav1.ConditionTrue && d.Status.Canary.ConsecutiveFailures > 0 {
			sawHeld = true
		}
		return c.Status == metav1.ConditionFalse && c.Reason == canary.ReasonStaleNameServer, fmt.Sprintf("%s %s, %d failures", c.Status, c.Reason, d.Status.Canary.ConsecutiveFailures)
	})
	if !sawHeld {
		t.Error("Served never stayed True through a first failed canary")
	}
	if got := testutil.ToFloat64(canaryFailures.WithLabelValues(canary.ReasonStaleNameServer)) - staleBefore; got < DefaultFailuresToFlip {
		t.Errorf("acmezone_canary_failures_total{reason=NameServerStale} rose by %v, want at least %d", got, DefaultFailuresToFlip)
	}
	if got := testutil.ToFloat64(served.WithLabelValues(ns, "example-com", "example.com")); got != 0 {
		t.Errorf("acmezone_delegation_served %v once not served, want 0", got)
	}
	stale.Store(false)
	waitFor(t, ns, "example-com", "Served=True again", hasCondition(v1alpha1.ConditionServed, metav1.ConditionTrue, canary.ReasonAnswered))

	// The CNAME is deleted at the provider: Verified holds through the first failed checks.
	noCNAME := static[:2]
	staticNow.Store(&noCNAME)
	sawHeld = false
	d = waitFor(t, ns, "example-com", "Verified=False CNAMEMissing", func(d *v1alpha1.Delegation) (bool, string) {
		c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
		if c.Status == metav1.ConditionTrue && d.Status.FailedChecks > 0 {
			sawHeld = true
		}
		return c.Status == metav1.ConditionFalse && c.Reason == records.ReasonCNAMEMissing, fmt.Sprintf("%s %s, %d failed checks", c.Status, c.Reason, d.Status.FailedChecks)
	})
	if !sawHeld {
		t.Error("Verified never stayed True through a first failed check")
	}
	if c := condition(t, d, v1alpha1.ConditionServed); c.Status != metav1.ConditionFalse || c.Reason != records.ReasonCNAMEMissing {
		t.Errorf("Served %s %s once not Verified, want False CNAMEMissing (it was served; its records broke)", c.Status, c.Reason)
	}
}
