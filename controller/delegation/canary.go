// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"context"
	"hash/fnv"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/canary"
)

// Defaults of the canary and of the hysteresis of a verified Delegation.
const (
	// DefaultCanaryInterval is the time between canaries of a Verified Delegation.
	DefaultCanaryInterval = 30 * time.Minute
	// DefaultCanaryRetry is the time between canaries while they fail.
	DefaultCanaryRetry = time.Minute
	// DefaultFailuresToFlip is how many record checks (or canaries) must fail in a row before
	// a Delegation that was Verified (or Served) is no longer.
	DefaultFailuresToFlip = 3
	// DefaultFailedRecheck is the wait before checking again a verified Delegation whose
	// check just failed.
	DefaultFailedRecheck = time.Minute
)

// Reasons of a Delegation's Served condition besides the canary's own (canary.Reason*,
// records.Reason*).
const (
	ReasonCanaryNotRun = "NotVerified" // Served Unknown: the canary runs once the Delegation is Verified
)

// Canary configures the canary of the Reconciler; nil turns it off.
type Canary struct {
	Prober *canary.Prober
	// Interval between canaries of a Verified Delegation (jittered by ±10 % per Delegation),
	// and Retry between canaries while they fail.
	Interval, Retry time.Duration
	// Limit bounds the canaries of all Delegations together, so that thousands of them do
	// not hammer the resolvers; nil: no limit.
	Limit *rate.Limiter
}

// hold reports whether a failed check of a Delegation that is Verified stays unreported, as
// one of the first failures in a row, and counts it.
func (r *Reconciler) hold(d *v1alpha1.Delegation, ok bool) bool {
	if ok {
		d.Status.FailedChecks = 0
		return false
	}
	v := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
	if v == nil || v.Status != metav1.ConditionTrue {
		d.Status.FailedChecks = 0
		return false
	}
	d.Status.FailedChecks++
	return int(d.Status.FailedChecks) < or(r.FailuresToFlip, DefaultFailuresToFlip)
}

// canaryDue is when d's next canary is due: Interval after the last (Retry while failing),
// jittered by its UID so that Delegations created together do not probe together.
func (r *Reconciler) canaryDue(d *v1alpha1.Delegation) time.Time {
	c := d.Status.Canary
	if c == nil || c.LastProbeTime == nil {
		return time.Time{}
	}
	wait := or(r.Canary.Interval, DefaultCanaryInterval)
	if c.ConsecutiveFailures > 0 {
		wait = or(r.Canary.Retry, DefaultCanaryRetry)
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(d.UID))
	jitter := 0.9 + 0.2*float64(h.Sum32()%1000)/1000
	return c.LastProbeTime.Add(time.Duration(float64(wait) * jitter))
}

// runCanary runs d's canary if it is due, and sets the Served condition and status.canary.
// A Delegation that was Served stays so until FailuresToFlip canaries in a row failed. It
// returns the wait until the next canary.
func (r *Reconciler) runCanary(ctx context.Context, d *v1alpha1.Delegation, target string, now time.Time) time.Duration {
	v := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
	if r.Canary == nil || v == nil || v.Status != metav1.ConditionTrue {
		if r.Canary == nil {
			return 0
		}
		cond := metav1.Condition{Type: v1alpha1.ConditionServed, Status: metav1.ConditionUnknown, Reason: ReasonCanaryNotRun,
			Message: "The canary runs once the Delegation is Verified.", ObservedGeneration: d.Generation, LastTransitionTime: metav1.NewTime(now)}
		if d.Status.Canary != nil && v != nil && v.Status == metav1.ConditionFalse {
			// It was served, and its records broke: not served, for the reason the check found.
			cond.Status, cond.Reason = metav1.ConditionFalse, v.Reason
			cond.Message = "The canary waits for the records: " + v.Message
		}
		meta.SetStatusCondition(&d.Status.Conditions, cond)
		observeServed(d)
		return 0
	}
	if due := r.canaryDue(d); due.After(now) {
		return due.Sub(now)
	}
	if r.Canary.Limit != nil {
		if err := r.Canary.Limit.Wait(ctx); err != nil {
			return or(r.Canary.Retry, DefaultCanaryRetry)
		}
	}
	res := r.Canary.Prober.Probe(ctx, d, target)
	logf.FromContext(ctx).V(1).Info("canary", "domain", d.Spec.Domain, "ok", res.OK, "skipped", res.Skipped, "reason", res.Reason, "latency", res.Latency)
	if res.Skipped {
		// A real challenge is being answered: it is a better canary than ours; look again soon.
		return or(r.Canary.Retry, DefaultCanaryRetry)
	}
	if d.Status.Canary == nil {
		d.Status.Canary = &v1alpha1.CanaryStatus{}
	}
	c := d.Status.Canary
	started := metav1.NewTime(res.Started.Truncate(time.Second))
	c.LastProbeTime = &started
	set := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionServed, Status: status, Reason: reason,
			Message: msg, ObservedGeneration: d.Generation, LastTransitionTime: metav1.NewTime(now)})
	}
	if res.OK {
		c.ConsecutiveFailures = 0
		c.LastSuccessTime = &started
		c.Latency = &metav1.Duration{Duration: res.Latency.Round(time.Millisecond)}
		set(metav1.ConditionTrue, res.Reason, res.Message)
		observeCanary(d, res)
		return r.canaryDue(d).Sub(now)
	}
	c.ConsecutiveFailures++
	served := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionServed)
	if served == nil || served.Status != metav1.ConditionTrue || int(c.ConsecutiveFailures) >= or(r.FailuresToFlip, DefaultFailuresToFlip) {
		set(metav1.ConditionFalse, res.Reason, res.Message)
	} // else a hiccup, until it happens again
	observeCanary(d, res)
	return or(r.Canary.Retry, DefaultCanaryRetry)
}
