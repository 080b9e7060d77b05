// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package challenge

import (
	"context"
	"fmt"
	"sync"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// Field indexes of the ExpiryReconciler (and, challengeKeyField, of the solver's lookup).
const (
	challengeKeyField = "spec.key"
	recordValueField  = "spec.value"
)

// Answers reports whether the ChallengeRecord rec holds the answer to ch, a cert-manager
// Challenge solved through an acme-dns server (its acmeDNS solver): a DNS-01 Challenge whose
// key is rec's value and, when domain (the domain rec's target is delegated for) is known, for
// that domain. domain is "" for accounts made through /register, whose users never say
// which domain they point at them. This is the one rule that keeps an acme-dns record alive
// past its maximum age.
func Answers(ch *cmacme.Challenge, rec *v1alpha1.ChallengeRecord, domain string) bool {
	return answers(ch, rec, domain, usesACMEDNS)
}

// answers is Answers for the solver uses says the Challenge must have.
func answers(ch *cmacme.Challenge, rec *v1alpha1.ChallengeRecord, domain string, uses func(*cmacme.ACMEChallengeSolverDNS01) bool) bool {
	return ch.Spec.Type == cmacme.ACMEChallengeTypeDNS01 && ch.Spec.Solver.DNS01 != nil && uses(ch.Spec.Solver.DNS01) &&
		ch.Spec.Key == rec.Spec.Value && (domain == "" || v1alpha1.DomainKey(ch.Spec.DNSName) == v1alpha1.DomainKey(domain))
}

func usesACMEDNS(s *cmacme.ACMEChallengeSolverDNS01) bool { return s.AcmeDNS != nil }
func usesRFC2136(s *cmacme.ACMEChallengeSolverDNS01) bool { return s.RFC2136 != nil }

// The writers whose records an ExpiryReconciler reaps: the label each marks its records with,
// and the cert-manager solver whose Challenges keep them.
var (
	// ACMEDNSRecords are the records of the acme-dns API.
	ACMEDNSRecords = Writer{Name: "acme-dns", Label: v1alpha1.ACMEDNSAccountLabel, Uses: usesACMEDNS}
	// RFC2136Records are the records written through RFC 2136 UPDATEs (package rfc2136), which
	// clients delete themselves; the reaper removes those a client left behind.
	RFC2136Records = Writer{Name: "rfc2136", Label: RFC2136KeyLabel, Uses: usesRFC2136}
)

// RFC2136KeyLabel marks the ChallengeRecords written through RFC 2136 with the name of the
// TSIG key's Secret (package rfc2136).
const RFC2136KeyLabel = "acmezone.io/rfc2136-key"

// Writer is a protocol that writes ChallengeRecords an ExpiryReconciler reaps.
type Writer struct {
	// Name names the reconciler (acme-dns-record-expiry, rfc2136-record-expiry).
	Name string
	// Label marks the writer's records.
	Label string
	// Uses reports whether a Challenge's solver is the writer's client: only such a Challenge
	// keeps a record past its maximum age.
	Uses func(*cmacme.ACMEChallengeSolverDNS01) bool
}

// ExpiryReconciler deletes the ChallengeRecords written through the acme-dns API (labelled
// v1alpha1.ACMEDNSAccountLabel), or through another Writer, once they are older than MaxAge,
// except those that answer a Challenge of the writer's solver that still exists; those go as
// soon as their Challenge is gone. acme-dns has no delete, so nothing else removes them; an
// RFC 2136 client deletes its own, unless it crashed.
type ExpiryReconciler struct {
	client.Client
	// Writer is whose records are reaped: ACMEDNSRecords when zero.
	Writer Writer
	// Options are the installation's zone and target key: a record's Delegation is the one
	// whose target it is at.
	Options *controller.Options
	// MaxAge is how long a record is kept when no Challenge needs it (--acme-dns-record-max-age).
	MaxAge time.Duration
	// Resync is how often a record kept for its Challenge is looked at again, in case the
	// Challenge's deletion was missed.
	Resync time.Duration
	Now    func() time.Time
}

// SetupWithManager registers the reconciler for acme-dns records and for Challenges, which
// wake the records holding their key.
func (r *ExpiryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.MaxAge <= 0 {
		return fmt.Errorf("the maximum age of acme-dns records must be positive, not %s", r.MaxAge)
	}
	if r.Options == nil || !r.Options.TargetKey.Valid() {
		return fmt.Errorf("the acme-dns record reaper needs the installation's Options with the target key")
	}
	if r.Resync == 0 {
		r.Resync = 5 * time.Minute
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Writer.Label == "" {
		r.Writer = ACMEDNSRecords
	}
	ctx := context.Background()
	if err := r.Options.IndexDelegations(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	if err := IndexChallengeKeys(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	if _, done := valuesIndexed.LoadOrStore(mgr.GetFieldIndexer(), struct{}{}); !done {
		if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.ChallengeRecord{}, recordValueField,
			func(o client.Object) []string { return []string{o.(*v1alpha1.ChallengeRecord).Spec.Value} }); err != nil {
			valuesIndexed.Delete(mgr.GetFieldIndexer())
			return err
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(r.Writer.Name+"-record-expiry").
		For(&v1alpha1.ChallengeRecord{}, builder.WithPredicates(predicate.NewPredicateFuncs(r.reaps))).
		Watches(&cmacme.Challenge{}, handler.EnqueueRequestsFromMapFunc(r.recordsWithKey)).
		Complete(r)
}

// valuesIndexed holds the field indexers recordValueField is registered with: one manager may
// run a reaper per writer.
var valuesIndexed sync.Map // client.FieldIndexer -> struct{}

// reaps reports whether o is a record of the reconciler's writer.
func (r *ExpiryReconciler) reaps(o client.Object) bool {
	return o.GetLabels()[r.Writer.Label] != ""
}

// recordsWithKey maps a Challenge to the writer's records holding its key.
func (r *ExpiryReconciler) recordsWithKey(ctx context.Context, o client.Object) []reconcile.Request {
	ch := o.(*cmacme.Challenge)
	if ch.Spec.Key == "" {
		return nil
	}
	var recs v1alpha1.ChallengeRecordList
	if err := r.List(ctx, &recs, client.MatchingFields{recordValueField: ch.Spec.Key}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, rec := range recs.Items {
		if r.reaps(&rec) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: rec.Namespace, Name: rec.Name}})
		}
	}
	return reqs
}

// Reconcile implements reconcile.Reconciler.
func (r *ExpiryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rec v1alpha1.ChallengeRecord
	if err := r.Get(ctx, req.NamespacedName, &rec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !r.reaps(&rec) || !rec.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if age := r.Now().Sub(rec.WrittenAt()); age < r.MaxAge {
		return ctrl.Result{RequeueAfter: r.MaxAge - age}, nil
	}
	ch, err := r.liveChallenge(ctx, &rec)
	if err != nil {
		return ctrl.Result{}, err
	}
	if ch != nil {
		logf.FromContext(ctx).V(1).Info("kept for its Challenge", "challenge", client.ObjectKeyFromObject(ch), "fqdn", rec.Spec.FQDN)
		return ctrl.Result{RequeueAfter: r.Resync}, nil
	}
	// Conditional on the version seen: a record written again meanwhile is younger now.
	pre := client.Preconditions{UID: &rec.UID, ResourceVersion: &rec.ResourceVersion}
	if err := r.Delete(ctx, &rec, pre); apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	} else if client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("delete expired ChallengeRecord %s: %w", req, err)
	}
	reaped.WithLabelValues(ReapedExpired).Inc()
	logf.FromContext(ctx).Info("deleted expired "+r.Writer.Name+" record", "fqdn", rec.Spec.FQDN, "writtenAt", rec.WrittenAt(), "writer", rec.Labels[r.Writer.Label])
	return ctrl.Result{}, nil
}

// liveChallenge returns a Challenge, not being deleted, that rec Answers; nil when none.
func (r *ExpiryReconciler) liveChallenge(ctx context.Context, rec *v1alpha1.ChallengeRecord) (*cmacme.Challenge, error) {
	var chs cmacme.ChallengeList
	if err := r.List(ctx, &chs, client.MatchingFields{challengeKeyField: rec.Spec.Value}); err != nil {
		return nil, fmt.Errorf("look up Challenges with the key of %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	if len(chs.Items) == 0 {
		return nil, nil
	}
	domain, err := r.delegatedDomain(ctx, rec)
	if err != nil {
		return nil, err
	}
	for i := range chs.Items {
		if ch := &chs.Items[i]; ch.DeletionTimestamp.IsZero() && answers(ch, rec, domain, r.Writer.Uses) {
			return ch, nil
		}
	}
	return nil, nil
}

// delegatedDomain is the domain of the Delegation in rec's namespace whose target rec is at,
// or "" when that is an acme-dns account made through /register (or there is none).
func (r *ExpiryReconciler) delegatedDomain(ctx context.Context, rec *v1alpha1.ChallengeRecord) (string, error) {
	d, err := r.Options.DelegationAt(ctx, r.Client, rec.Namespace, rec.Spec.FQDN)
	if err != nil || d == nil || d.Labels[v1alpha1.ACMEDNSAccountLabel] != "" {
		return "", err
	}
	return d.Spec.Domain, nil
}
