// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package challenge watches cert-manager's DNS-01 Challenges that use the acmezone solver: it
// creates the Delegation a Challenge needs (when allowed), tells the user which CNAME is
// missing, ties ChallengeRecords to their Challenge and deletes those whose Challenge is gone.
package challenge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/solver"
)

// Reconciler handles one Challenge at a time.
type Reconciler struct {
	client.Client
	Recorder events.EventRecorder
	// Options are the installation's zone and target key; Options.AutoDelegate creates a
	// Delegation for a Challenge whose domain has none in the namespace cert-manager uses.
	Options *controller.Options
	// ClusterResourceNamespace is where cert-manager resolves a ClusterIssuer's Challenges
	// (its --cluster-resource-namespace), so where their Delegations must live.
	ClusterResourceNamespace string
	// Recheck is how often an unverified Delegation's Challenge is looked at again.
	Recheck time.Duration
}

// SetupWithManager registers the Delegation indexes (controller.IndexDelegations) and the
// reconciler for Challenges.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Recheck == 0 {
		r.Recheck = time.Minute
	}
	if r.Options == nil {
		return fmt.Errorf("the Challenge watcher needs the installation's Options")
	}
	if err := r.Options.IndexDelegations(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).Named("challenge").For(&cmacme.Challenge{}).Complete(r)
}

// IsAcmezone reports whether a Challenge is a DNS-01 challenge solved by acmezone's webhook.
func IsAcmezone(ch *cmacme.Challenge) bool {
	wh := ch.Spec.Solver.DNS01
	return ch.Spec.Type == cmacme.ACMEChallengeTypeDNS01 && wh != nil && wh.Webhook != nil &&
		wh.Webhook.GroupName == solver.GroupName && wh.Webhook.SolverName == solver.SolverName
}

// ResourceNamespace is the namespace cert-manager sends in the solver request: the
// Challenge's own for an Issuer, the cluster resource namespace for a ClusterIssuer.
func (r *Reconciler) ResourceNamespace(ch *cmacme.Challenge) string {
	if ch.Spec.IssuerRef.Kind == cmapi.ClusterIssuerKind {
		return r.ClusterResourceNamespace
	}
	return ch.Namespace
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	var ch cmacme.Challenge
	if err := r.Get(ctx, req.NamespacedName, &ch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !IsAcmezone(&ch) || !ch.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	ns := r.ResourceNamespace(&ch)
	domain := v1alpha1.DomainKey(ch.Spec.DNSName)

	d, target, invalid := r.Options.FindDelegation(ctx, r.Client, ns, domain, "")
	if invalid != nil && d == nil {
		return ctrl.Result{}, invalid
	}
	if d == nil {
		// Only this namespace is looked at: Delegations of other namespaces for the same
		// domain change nothing here (each has its own target) and are not disclosed.
		if !r.Options.AutoDelegate {
			r.warn(ctx, &ch, "NoDelegation", "no Delegation for %s in namespace %s: create one, or run acmezone-controller with --auto-delegate", domain, ns)
			return ctrl.Result{RequeueAfter: r.Recheck}, nil
		}
		d = &v1alpha1.Delegation{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: DelegationName(domain)},
			Spec:       v1alpha1.DelegationSpec{Domain: domain},
		}
		if err := r.Create(ctx, d); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, fmt.Errorf("create Delegation %s/%s: %w", ns, d.Name, err)
		}
		log.Info("created Delegation", "namespace", ns, "delegation", d.Name, "domain", domain)
		r.Recorder.Eventf(&ch, d, corev1.EventTypeNormal, "DelegationCreated", "AutoDelegate",
			"created Delegation %s/%s for %s; its status lists the DNS records to add", ns, d.Name, domain)
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if invalid != nil {
		r.warn(ctx, &ch, "InvalidTarget", "Delegation %s/%s for %s has no target, so its challenges cannot be answered: %v", d.Namespace, d.Name, domain, invalid)
		return ctrl.Result{RequeueAfter: r.Recheck}, nil
	}

	if err := r.adopt(ctx, &ch, d.Namespace); err != nil {
		return ctrl.Result{}, err
	}
	if meta.IsStatusConditionTrue(d.Status.Conditions, v1alpha1.ConditionVerified) {
		return ctrl.Result{}, nil
	}
	// The seed's warning, word for word where it can be.
	r.warn(ctx, &ch, "CNAMEMissing", "please add a CNAME record with your DNS provider: _acme-challenge.%s CNAME %s (Delegation %s/%s is not verified)",
		domain, strings.TrimSuffix(target, "."), d.Namespace, d.Name)
	return ctrl.Result{RequeueAfter: r.Recheck}, nil
}

// adopt makes the Challenge the owner of its ChallengeRecords when they share its namespace, so
// that Kubernetes' garbage collector deletes them with it; elsewhere the UID label does.
func (r *Reconciler) adopt(ctx context.Context, ch *cmacme.Challenge, ns string) error {
	if ns != ch.Namespace {
		return nil
	}
	var recs v1alpha1.ChallengeRecordList
	if err := r.List(ctx, &recs, client.InNamespace(ns), client.MatchingLabels{solver.ChallengeUIDLabel: string(ch.UID)}); err != nil {
		return fmt.Errorf("list ChallengeRecords of Challenge %s/%s: %w", ch.Namespace, ch.Name, err)
	}
	for i := range recs.Items {
		rec := &recs.Items[i]
		if metav1.IsControlledBy(rec, ch) || hasOwner(rec, ch) {
			continue
		}
		if err := controllerutil.SetOwnerReference(ch, rec, r.Scheme()); err != nil {
			return err
		}
		if err := r.Update(ctx, rec); err != nil {
			return fmt.Errorf("adopt ChallengeRecord %s/%s: %w", rec.Namespace, rec.Name, err)
		}
	}
	return nil
}

func hasOwner(obj metav1.Object, owner metav1.Object) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == owner.GetUID() {
			return true
		}
	}
	return false
}

// warn posts a Warning Event on the Challenge and, when found, on its Certificate.
func (r *Reconciler) warn(ctx context.Context, ch *cmacme.Challenge, reason, format string, args ...any) {
	r.Recorder.Eventf(ch, nil, corev1.EventTypeWarning, reason, "Verify", format, args...)
	if crt := r.certificate(ctx, ch); crt != nil {
		r.Recorder.Eventf(crt, ch, corev1.EventTypeWarning, reason, "Verify", format, args...)
	}
}

// certificate follows Challenge → Order → CertificateRequest → Certificate through owner
// references and cert-manager's certificate-name annotation; nil when any link is missing.
func (r *Reconciler) certificate(ctx context.Context, ch *cmacme.Challenge) *cmapi.Certificate {
	order := ownerNamed(ch, "Order")
	if order == "" {
		return nil
	}
	var o cmacme.Order
	if err := r.Get(ctx, client.ObjectKey{Namespace: ch.Namespace, Name: order}, &o); err != nil {
		return nil
	}
	name := o.Annotations[cmapi.CertificateNameKey]
	if cr := ownerNamed(&o, "CertificateRequest"); name == "" && cr != "" {
		var req cmapi.CertificateRequest
		if err := r.Get(ctx, client.ObjectKey{Namespace: ch.Namespace, Name: cr}, &req); err == nil {
			name = req.Annotations[cmapi.CertificateNameKey]
		}
	}
	if name == "" {
		return nil
	}
	var crt cmapi.Certificate
	if err := r.Get(ctx, client.ObjectKey{Namespace: ch.Namespace, Name: name}, &crt); err != nil {
		return nil
	}
	return &crt
}

func ownerNamed(obj metav1.Object, kind string) string {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Kind == kind {
			return ref.Name
		}
	}
	return ""
}

// DelegationName is the name of an auto-created Delegation: the domain itself when it is a
// valid object name, else a readable prefix and a hash.
func DelegationName(domain string) string {
	if len(validation.IsDNS1123Subdomain(domain)) == 0 {
		return domain
	}
	sum := sha256.Sum256([]byte(domain))
	prefix := strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, domain), "-.")
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	return strings.Trim(prefix, "-.") + "-" + hex.EncodeToString(sum[:6])
}
