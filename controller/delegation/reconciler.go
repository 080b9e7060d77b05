// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package delegation is acmezone-controller's Delegation reconciler: it assigns each
// Delegation its target, lists the records the user adds at their DNS provider, checks them in
// public DNS, and reports the result in conditions and Events.
package delegation

import (
	"context"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records"
)

// Defaults of the Reconciler's durations.
const (
	// DefaultRetryMin is the first wait before checking an unverified Delegation again. The
	// wait then grows with the time it has been unverified, so it about doubles each time.
	DefaultRetryMin = 10 * time.Second
	// DefaultRetryMax bounds the wait between checks of an unverified Delegation.
	DefaultRetryMax = 5 * time.Minute
	// DefaultRecheck is the wait between checks of a verified Delegation: records can vanish.
	DefaultRecheck = 10 * time.Minute
)

// RecorderName is the reporting controller of the Reconciler's Events.
const RecorderName = "acmezone-controller"

// Reconciler reconciles Delegations. SetupWithManager fills the fields left unset.
type Reconciler struct {
	client.Client
	Options  controller.Options
	Resolver *records.Resolver // the resolvers of Options.Resolvers by default
	Recorder events.EventRecorder
	Now      func() time.Time

	RetryMin, RetryMax time.Duration // backoff while not verified
	Recheck            time.Duration // period once verified

	// FailuresToFlip is how many checks (or canaries) in a row must fail before a Verified
	// (or Served) Delegation is no longer; FailedRecheck the wait before the next check
	// after such a failure. DefaultFailuresToFlip and DefaultFailedRecheck when zero.
	FailuresToFlip int
	FailedRecheck  time.Duration

	// Canary, when set, tests Verified Delegations end to end (condition Served).
	Canary *Canary
	// Renewal, when set, lists the Certificates that depend on each Delegation and warns
	// when a renewal is coming while the Delegation is broken.
	Renewal *Renewal
}

// +kubebuilder:rbac:groups=acmezone.io,resources=delegations,verbs=get;list;watch
// +kubebuilder:rbac:groups=acmezone.io,resources=delegations/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the Delegation indexes (controller.IndexDelegations) and the controller with mgr. Status writes do
// not trigger a reconcile; spec and annotation changes do (so `kubectl annotate` asks for a
// check now).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Resolver == nil {
		res, err := records.NewResolver(r.Options.Resolvers)
		if err != nil {
			return err
		}
		r.Resolver = res
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder(RecorderName)
	}
	if !r.Options.TargetKey.Valid() {
		return fmt.Errorf("the Delegation reconciler needs the target key")
	}
	if err := r.Options.IndexDelegations(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	changed := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("delegation").
		// A canary waits for its value for up to a minute: others go on meanwhile.
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: 4}).
		For(&v1alpha1.Delegation{}, builder.WithPredicates(changed))
	if r.Renewal != nil {
		if err := mgr.GetFieldIndexer().IndexField(context.Background(), &cmapi.Certificate{}, certDomainField, func(o client.Object) []string {
			return certDomains(o.(*cmapi.Certificate))
		}); err != nil {
			return fmt.Errorf("index Certificates by domain: %w", err)
		}
		b = b.Watches(&cmapi.Certificate{}, handler.EnqueueRequestsFromMapFunc(r.delegationsOf), builder.WithPredicates(certificateChanged))
	}
	// dns-persist-01: the account URL of an issuerRef, and the records written at the
	// persist target (deleted or changed by someone else: written again).
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Delegation{}, PersistIssuerField, func(o client.Object) []string {
		if k := persistIssuerKey(o.(*v1alpha1.Delegation)); k != "" {
			return []string{k}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("index Delegations by their persistentAuthorization's issuer: %w", err)
	}
	persistRecord := predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := o.GetLabels()[v1alpha1.PersistLabel]
		return ok
	})
	b = b.Watches(&cmapi.Issuer{}, handler.EnqueueRequestsFromMapFunc(r.delegationsOfIssuer)).
		Watches(&cmapi.ClusterIssuer{}, handler.EnqueueRequestsFromMapFunc(r.delegationsOfIssuer)).
		Watches(&v1alpha1.ChallengeRecord{}, handler.EnqueueRequestsFromMapFunc(delegationOfPersistRecord), builder.WithPredicates(persistRecord))
	return b.Complete(r)
}

// Reconcile shows the target (v1alpha1.TargetKey's rule: nothing here decides it), fills the
// records, checks them in DNS and writes the status. Delegations of several namespaces may
// name the same domain, each with its own target: public DNS decides which one is used, and
// each learns only whether the CNAME points at its own target.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	var d v1alpha1.Delegation
	if err := r.Get(ctx, req.NamespacedName, &d); err != nil {
		if apierrors.IsNotFound(err) {
			forget(req.NamespacedName)
			// Its dns-persist-01 records go with it (a real cluster's garbage collector
			// would delete them too, by their owner reference).
			return ctrl.Result{}, r.syncPersistRecords(ctx, req.Namespace, req.Name, nil, nil)
		}
		return ctrl.Result{}, err
	}
	if !d.DeletionTimestamp.IsZero() || d.Labels[v1alpha1.ACMEDNSAccountLabel] != "" {
		forget(req.NamespacedName)
		if err := r.syncPersistRecords(ctx, req.Namespace, req.Name, nil, nil); err != nil {
			return ctrl.Result{}, err
		}
		// acme-dns accounts have a target but no known domain: nothing to list or verify.
		return ctrl.Result{}, nil
	}
	target, invalid := r.Options.Target(&d)
	if migrated, err := r.migrate(ctx, &d, target); err != nil || migrated {
		return ctrl.Result{}, err
	}
	now := r.now()
	old := d.Status.DeepCopy()
	d.Status.Target = target
	// Conditions of earlier versions: Conflict named other namespaces.
	meta.RemoveStatusCondition(&d.Status.Conditions, conditionConflict)
	meta.RemoveStatusCondition(&d.Status.Conditions, conditionTargetFixed)

	d.Status.Records = nil
	var checks []records.Check
	if invalid == nil {
		d.Status.Records = records.For(r.Options, d.Spec.Domain, target)
		checks = records.Verify(ctx, r.Resolver, r.Options, d.Spec.Domain, target)
	}
	held := invalid == nil && r.hold(&d, records.AllOK(checks))
	if !held {
		setConditions(&d, r.Options, invalid, checks, now)
	}
	observe(&d, checks)
	if err := r.persist(ctx, &d, invalid, now); err != nil {
		return ctrl.Result{}, err
	}
	canaryAfter := time.Duration(0)
	if invalid == nil && !held {
		canaryAfter = r.runCanary(ctx, &d, target, r.now())
	}
	renewalAfter := r.trackRenewals(ctx, &d, old.Certificates, target, r.now())
	d.Status.ObservedGeneration = d.Generation

	if !equality.Semantic.DeepEqual(*old, d.Status) {
		if err := r.Status().Update(ctx, &d); err != nil {
			return ctrl.Result{}, fmt.Errorf("update status of Delegation %s: %w", req.NamespacedName, err)
		}
		r.recordChanges(&d, old.Conditions)
	}
	after := r.requeueAfter(&d, now)
	if held {
		after = or(r.FailedRecheck, DefaultFailedRecheck)
	}
	for _, next := range []time.Duration{canaryAfter, renewalAfter} {
		if next > 0 && next < after {
			after = next
		}
	}
	log.V(1).Info("checked", "domain", d.Spec.Domain, "target", target,
		"verified", conditionStatus(&d, v1alpha1.ConditionVerified), "failedChecks", d.Status.FailedChecks, "invalidTarget", invalid != nil, "recheckIn", after)
	return ctrl.Result{RequeueAfter: after}, nil
}

// requeueAfter is the wait before the next check: while the Delegation is not verified, as
// long as it has been unverified (so the waits double), between RetryMin and RetryMax; else
// Recheck; the same for PersistVerified, the sooner of the two. The conditions'
// lastTransitionTimes are the only state it needs.
func (r *Reconciler) requeueAfter(d *v1alpha1.Delegation, now time.Time) time.Duration {
	recheck, lo, hi := or(r.Recheck, DefaultRecheck), or(r.RetryMin, DefaultRetryMin), or(r.RetryMax, DefaultRetryMax)
	after := recheck
	// PersistVerified waits as Verified does while it is False: the user is adding its CNAME.
	for _, typ := range []string{v1alpha1.ConditionVerified, v1alpha1.ConditionPersistVerified} {
		if c := meta.FindStatusCondition(d.Status.Conditions, typ); c != nil && c.Status == "False" {
			after = min(after, min(max(now.Sub(c.LastTransitionTime.Time), lo), hi))
		}
	}
	return after
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func or[T int | time.Duration](d, def T) T {
	if d > 0 {
		return d
	}
	return def
}
