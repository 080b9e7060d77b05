// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// migrate keeps the target a Delegation was given before targets were derived (a random
// <uuid>.<zone>, confirmed in status.target), so that the CNAME its user added keeps working:
// it writes the target to spec.target with the proof annotation, which the plugin honours.
// It reports whether it wrote; the write brings the Delegation back with its new generation.
//
// Only a Delegation created before Options.LegacyBefore (when the target key was made: no
// object created since can be from the earlier version) is migrated, and only when it owns
// the target by the earlier version's rule among the Delegations whose status names it (the
// oldest, then namespace and name) and no other Delegation is proved to hold it already. A
// tenant cannot write a status that reaches here afterwards: its Delegation would be too
// young. served is where the rule serves d now ("" for nowhere).
func (r *Reconciler) migrate(ctx context.Context, d *v1alpha1.Delegation, served string) (bool, error) {
	t := v1alpha1.CanonicalName(d.Status.Target)
	before := r.Options.LegacyBefore
	if d.Status.Target == "" || before.IsZero() || !d.CreationTimestamp.Time.Before(before) || d.Spec.Domain == "" || served == t {
		return false, nil // nothing to keep, too young, or served there already (derived, or migrated)
	}
	if _, ok := v1alpha1.TargetLabel(t, r.Options.Zone); !ok {
		return false, nil // not a name the controller hands out: it cannot be kept
	}
	var list v1alpha1.DelegationList
	if err := r.List(ctx, &list, client.MatchingFields{controller.StatusTargetField: t}); err != nil {
		return false, fmt.Errorf("list Delegations with status.target %s: %w", t, err)
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == d.UID || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if ot, err := r.Options.Target(o); err == nil && ot == t {
			return false, nil // kept by another Delegation already
		}
		if o.CreationTimestamp.Time.Before(before) && legacyOwnerBefore(o, d) {
			return false, nil // the earlier version served o's namespace here, not d's
		}
	}
	patch := client.MergeFrom(d.DeepCopy())
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[v1alpha1.TargetProofAnnotation] = r.Options.TargetKey.Proof(d.Namespace, d.Spec.Domain, t)
	d.Spec.Target = t
	if err := r.Patch(ctx, d, patch); err != nil {
		return false, fmt.Errorf("keep the target of Delegation %s/%s: %w", d.Namespace, d.Name, err)
	}
	logf.FromContext(ctx).Info("kept the target given before targets were derived", "domain", d.Spec.Domain, "target", t)
	if r.Recorder != nil {
		r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, ReasonTargetKept, "KeepTarget",
			"This Delegation keeps its target %s, given before targets were derived, so the CNAME _acme-challenge.%s needs no change: spec.target and the annotation %s now prove it is this namespace's. Keep both if you re-create the Delegation.",
			strings.TrimSuffix(t, "."), v1alpha1.DomainKey(d.Spec.Domain), v1alpha1.TargetProofAnnotation)
	}
	return true, nil
}

// legacyOwnerBefore is the earlier version's rule for Delegations that all had the target in
// status: the older one owned it, then namespace and name.
func legacyOwnerBefore(a, b *v1alpha1.Delegation) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}
