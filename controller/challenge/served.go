// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package challenge

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// Reasons of a ChallengeRecord's Served condition.
const (
	ReasonOwnTarget    = "OwnTarget"    // Served True: a Delegation of the namespace has the name as its target
	ReasonNotOwnTarget = "NotOwnTarget" // Served False: no Delegation of the namespace has it
	// Served True: a Delegation of the namespace with persistentAuthorization has the name as
	// its persist target.
	ReasonOwnPersistTarget = "OwnPersistTarget"
)

// ServedReconciler shows on each ChallengeRecord whether the CoreDNS plugin serves it: whether
// its name is the target of a Delegation of its own namespace (controller.Options.DelegationAt,
// the plugin's rule with the same key). It looks in the record's namespace only, so the
// status never tells of other namespaces. It writes only when the answer changes.
type ServedReconciler struct {
	client.Client
	Options *controller.Options
}

// SetupWithManager registers the reconciler for ChallengeRecords and, through their namespace,
// for the Delegations that decide.
func (r *ServedReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if !r.Options.TargetKey.Valid() {
		return fmt.Errorf("the ChallengeRecord status reconciler needs the target key")
	}
	if err := r.Options.IndexDelegations(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("challengerecord-served").
		For(&v1alpha1.ChallengeRecord{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.Delegation{}, handler.EnqueueRequestsFromMapFunc(r.recordsIn),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Complete(r)
}

// recordsIn maps a Delegation event to the ChallengeRecords of its namespace: a Delegation
// created, changed or deleted may change which of them are served.
func (r *ServedReconciler) recordsIn(ctx context.Context, d client.Object) []reconcile.Request {
	var recs v1alpha1.ChallengeRecordList
	if err := r.List(ctx, &recs, client.InNamespace(d.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "list ChallengeRecords", "namespace", d.GetNamespace())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(recs.Items))
	for _, rec := range recs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: rec.Namespace, Name: rec.Name}})
	}
	return reqs
}

// Reconcile implements reconcile.Reconciler.
func (r *ServedReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rec v1alpha1.ChallengeRecord
	if err := r.Get(ctx, req.NamespacedName, &rec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rec.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	d, err := r.Options.DelegationAt(ctx, r.Client, rec.Namespace, rec.Spec.FQDN)
	if err != nil {
		return ctrl.Result{}, err
	}
	name := v1alpha1.CanonicalName(rec.Spec.FQDN)
	cond := metav1.Condition{Type: v1alpha1.ConditionServed, ObservedGeneration: rec.Generation}
	var persist *v1alpha1.Delegation
	if d == nil {
		if persist, err = r.Options.PersistDelegationAt(ctx, r.Client, rec.Namespace, rec.Spec.FQDN); err != nil {
			return ctrl.Result{}, err
		}
	}
	switch {
	case persist != nil:
		cond.Status, cond.Reason = metav1.ConditionTrue, ReasonOwnPersistTarget
		cond.Message = fmt.Sprintf("%s is the persist target of Delegation %s (domain %s, dns-persist-01): acmezone's CoreDNS serves this value there.", name, persist.Name, persist.Spec.Domain)
	case d != nil:
		cond.Status, cond.Reason = metav1.ConditionTrue, ReasonOwnTarget
		cond.Message = fmt.Sprintf("%s is the target of Delegation %s (domain %s): acmezone's CoreDNS serves this value there.", name, d.Name, d.Spec.Domain)
	default:
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonNotOwnTarget
		cond.Message = fmt.Sprintf("%s is not the target of a Delegation in namespace %s, so acmezone's CoreDNS does not serve this value; create the Delegation for the domain here (its status.target is where to write).", name, rec.Namespace)
	}
	old := rec.Status.DeepCopy()
	meta.SetStatusCondition(&rec.Status.Conditions, cond)
	if equality.Semantic.DeepEqual(*old, rec.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Status().Update(ctx, &rec); err != nil {
		return ctrl.Result{}, fmt.Errorf("update status of ChallengeRecord %s: %w", req.NamespacedName, err)
	}
	return ctrl.Result{}, nil
}
