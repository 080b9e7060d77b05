// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records"
)

func TestRequeueAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	r := &Reconciler{} // the defaults
	tests := []struct {
		status metav1.ConditionStatus // "" for no Verified condition
		since  time.Duration          // unverified for this long
		want   time.Duration
	}{
		{"", 0, DefaultRecheck},
		{metav1.ConditionTrue, time.Hour, DefaultRecheck},
		{metav1.ConditionUnknown, time.Hour, DefaultRecheck},
		{metav1.ConditionFalse, 0, DefaultRetryMin},
		{metav1.ConditionFalse, 10 * time.Second, 10 * time.Second},
		{metav1.ConditionFalse, 20 * time.Second, 20 * time.Second},
		{metav1.ConditionFalse, 40 * time.Second, 40 * time.Second},
		{metav1.ConditionFalse, 4 * time.Minute, 4 * time.Minute},
		{metav1.ConditionFalse, 3 * time.Hour, DefaultRetryMax},
	}
	for i, tc := range tests {
		d := &v1alpha1.Delegation{}
		if tc.status != "" {
			meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionVerified, Status: tc.status,
				Reason: "Test", LastTransitionTime: metav1.NewTime(now.Add(-tc.since))})
		}
		if got := r.requeueAfter(d, now); got != tc.want {
			t.Errorf("Test %d: Verified %q for %v: requeue after %v, want %v", i, tc.status, tc.since, got, tc.want)
		}
	}
	short := &Reconciler{RetryMin: time.Second, RetryMax: 3 * time.Second, Recheck: 5 * time.Second}
	d := &v1alpha1.Delegation{}
	meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionVerified, Status: metav1.ConditionFalse,
		Reason: "Test", LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))})
	if got := short.requeueAfter(d, now); got != 3*time.Second {
		t.Errorf("RetryMax 3s: requeue after %v", got)
	}
}

func TestSetConditionsReason(t *testing.T) {
	// Several checks fail: the reason is the first in the order of the records (the A record
	// before the NS delegation before the CNAME before the lookup), the message has them all.
	checks := []records.Check{
		{OK: true},
		{Reason: records.ReasonNSNotDelegated, Problem: "p1"},
		{Reason: records.ReasonCNAMEMissing, Problem: "p2"},
		{Reason: records.ReasonTXTLookupFailed, Problem: "p3"},
	}
	now := time.Now()
	d := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Generation: 4}, Spec: v1alpha1.DelegationSpec{Domain: "example.com"}}
	setConditions(d, testOptions, nil, checks, now)
	c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != records.ReasonNSNotDelegated || c.Message != "p1. p2. p3." || c.ObservedGeneration != 4 {
		t.Errorf("Verified %+v, want False NSNotDelegated \"p1. p2. p3.\" at generation 4", c)
	}

	// A DS that names no served key makes a validating resolver fail the NS and TXT lookups:
	// the DNSSEC problem gives the reason and comes first. A missing DS breaks nothing.
	signed := []records.Check{
		{Reason: records.ReasonNSNotDelegated, Problem: "p1"},
		{Reason: records.ReasonDSMismatch, Problem: "p2"},
		{Reason: records.ReasonTXTLookupFailed, Problem: "p3"},
		{Reason: records.ReasonDNSKEYNotServed, Problem: "p4"},
	}
	setConditions(d, testOptions, nil, signed, now)
	if c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified); c == nil || c.Reason != records.ReasonDSMismatch || c.Message != "p2. p4. p1. p3." {
		t.Errorf("Verified %+v, want DSMismatch \"p2. p4. p1. p3.\"", c)
	}
	signed[1] = records.Check{Reason: records.ReasonDSMissing, Problem: "p2"}
	setConditions(d, testOptions, nil, signed[:3], now)
	if c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified); c == nil || c.Reason != records.ReasonNSNotDelegated || c.Message != "p1. p2. p3." {
		t.Errorf("Verified %+v, want NSNotDelegated \"p1. p2. p3.\"", c)
	}

	// No target: not verified, not ready, whatever the checks say.
	setConditions(d, testOptions, v1alpha1.ErrTargetNotOwned, nil, now)
	for typ, want := range map[string]metav1.ConditionStatus{
		v1alpha1.ConditionVerified: metav1.ConditionUnknown,
		v1alpha1.ConditionReady:    metav1.ConditionFalse,
	} {
		if c := meta.FindStatusCondition(d.Status.Conditions, typ); c == nil || c.Status != want {
			t.Errorf("%s %+v, want %s", typ, c, want)
		}
	}
}

func TestLegacyOwnerBefore(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Second))
	mk := func(ns, name string, ts metav1.Time) *v1alpha1.Delegation {
		return &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: ts}}
	}
	tests := []struct {
		a, b *v1alpha1.Delegation
		want bool
	}{
		{mk("z", "z", t0), mk("a", "a", t1), true},
		{mk("a", "a", t1), mk("z", "z", t0), false},
		{mk("a", "z", t0), mk("b", "a", t0), true},
		{mk("a", "a", t0), mk("a", "b", t0), true},
		{mk("a", "b", t0), mk("a", "a", t0), false},
	}
	for i, tc := range tests {
		if got := legacyOwnerBefore(tc.a, tc.b); got != tc.want {
			t.Errorf("Test %d: older(%s/%s, %s/%s) = %v, want %v", i, tc.a.Namespace, tc.a.Name, tc.b.Namespace, tc.b.Name, got, tc.want)
		}
	}
}
