// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package challenge

import (
	"context"
	"fmt"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/solver"
)

// challengeUIDField indexes Challenges by UID, so a ChallengeRecord's label finds its
// Challenge in the cache, whatever namespace it is in.
const challengeUIDField = "metadata.uid"

// OrphanReconciler deletes ChallengeRecords whose Challenge is gone. Records without the
// Challenge UID label (written by hand or through other APIs) are not its business.
type OrphanReconciler struct {
	client.Client
	// Grace is how long a record may exist before its Challenge is in the cache: the solver
	// writes it while cert-manager processes that Challenge, so a missing one is cache lag.
	Grace time.Duration
	// Resync is how often every labelled record is checked again, so that no record outlives
	// its Challenge for longer than this even when an event was missed.
	Resync time.Duration
	Now    func() time.Time
}

// SetupWithManager registers the reconciler for ChallengeRecords and for deleted Challenges.
func (r *OrphanReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Grace == 0 {
		r.Grace = time.Minute
	}
	if r.Resync == 0 {
		r.Resync = 5 * time.Minute
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &cmacme.Challenge{}, challengeUIDField,
		func(o client.Object) []string { return []string{string(o.GetUID())} }); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("challengerecord-orphans").
		For(&v1alpha1.ChallengeRecord{}).
		Watches(&cmacme.Challenge{}, handler.EnqueueRequestsFromMapFunc(r.recordsOf)).
		Complete(r)
}

// recordsOf maps a Challenge event to the records labelled with its UID.
func (r *OrphanReconciler) recordsOf(ctx context.Context, o client.Object) []reconcile.Request {
	var recs v1alpha1.ChallengeRecordList
	if err := r.List(ctx, &recs, client.MatchingLabels{solver.ChallengeUIDLabel: string(o.GetUID())}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(recs.Items))
	for _, rec := range recs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: rec.Namespace, Name: rec.Name}})
	}
	return reqs
}

// Reconcile implements reconcile.Reconciler.
func (r *OrphanReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rec v1alpha1.ChallengeRecord
	if err := r.Get(ctx, req.NamespacedName, &rec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	uid := rec.Labels[solver.ChallengeUIDLabel]
	if uid == "" {
		return ctrl.Result{}, nil
	}
	var chs cmacme.ChallengeList
	if err := r.List(ctx, &chs, client.MatchingFields{challengeUIDField: uid}); err != nil {
		return ctrl.Result{}, fmt.Errorf("look up Challenge %s: %w", uid, err)
	}
	for _, ch := range chs.Items {
		if ch.DeletionTimestamp.IsZero() {
			return ctrl.Result{RequeueAfter: r.Resync}, nil
		}
	}
	if age := r.Now().Sub(rec.CreationTimestamp.Time); age < r.Grace {
		return ctrl.Result{RequeueAfter: r.Grace - age}, nil
	}
	if err := r.Delete(ctx, &rec); apierrors.IsNotFound(err) {
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, fmt.Errorf("delete orphaned ChallengeRecord %s: %w", req, err)
	}
	reaped.WithLabelValues(ReapedOrphaned).Inc()
	logf.FromContext(ctx).Info("deleted ChallengeRecord whose Challenge is gone", "challengeUID", uid, "fqdn", rec.Spec.FQDN)
	return ctrl.Result{}, nil
}
