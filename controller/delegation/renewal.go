// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records"
)

// DefaultRenewalWindow: a Certificate whose renewal is due within it is at risk while its
// Delegation is not Verified or not Served. A week leaves the user time to restore a record
// before cert-manager's first attempt, and cert-manager keeps retrying until expiry after.
const DefaultRenewalWindow = 7 * 24 * time.Hour

// ReasonRenewalAtRisk is the reason of the Warning Events on a Certificate at risk and on its
// Delegation.
const ReasonRenewalAtRisk = "RenewalAtRisk"

// maxDependents bounds status.certificates.
const maxDependents = 100

// certDomainField indexes Certificates by the domain key of each of their DNS names.
const certDomainField = "acmezone.domain"

// Renewal configures the tracking of the Certificates that depend on each Delegation; nil
// turns it off.
type Renewal struct {
	// ClusterResourceNamespace is cert-manager's: its Delegations answer the Certificates of
	// ClusterIssuers, in every namespace.
	ClusterResourceNamespace string
	// Window is DefaultRenewalWindow when zero.
	Window time.Duration
}

// certDomains are the domain keys of a Certificate's DNS names and common name.
func certDomains(c *cmapi.Certificate) []string {
	var out []string
	for _, n := range append(slices.Clone(c.Spec.DNSNames), c.Spec.CommonName) {
		if k := v1alpha1.DomainKey(n); k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// clusterIssued reports whether c's issuer is a ClusterIssuer.
func clusterIssued(c *cmapi.Certificate) bool {
	return c.Spec.IssuerRef.Kind == cmapi.ClusterIssuerKind
}

// delegationsOf maps a Certificate event to the Delegations it depends on.
func (r *Reconciler) delegationsOf(ctx context.Context, o client.Object) []reconcile.Request {
	c, ok := o.(*cmapi.Certificate)
	if !ok {
		return nil
	}
	ns := c.Namespace
	if clusterIssued(c) {
		ns = r.Renewal.ClusterResourceNamespace
	}
	var reqs []reconcile.Request
	for _, domain := range certDomains(c) {
		var list v1alpha1.DelegationList
		if err := r.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{controller.DomainField: domain}); err != nil {
			logf.FromContext(ctx).Error(err, "list Delegations for a Certificate", "certificate", client.ObjectKeyFromObject(c))
			continue
		}
		for _, d := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: d.Namespace, Name: d.Name}})
		}
	}
	return reqs
}

// certificateChanged lets through Certificate events that can change what a Delegation shows:
// a new or deleted Certificate, changed DNS names or issuer, or a new renewal time. cert-manager's
// other status writes (conditions during an issuance) would only cost DNS checks.
var certificateChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*cmapi.Certificate)
		n, ok2 := e.ObjectNew.(*cmapi.Certificate)
		if !ok1 || !ok2 {
			return false
		}
		return o.Generation != n.Generation || !o.Status.RenewalTime.Equal(n.Status.RenewalTime)
	},
}

// dependents lists the Certificates that need d's records, soonest renewal first.
func (r *Reconciler) dependents(ctx context.Context, d *v1alpha1.Delegation) ([]cmapi.Certificate, error) {
	var list cmapi.CertificateList
	opts := []client.ListOption{client.MatchingFields{certDomainField: v1alpha1.DomainKey(d.Spec.Domain)}}
	if d.Namespace != r.Renewal.ClusterResourceNamespace {
		opts = append(opts, client.InNamespace(d.Namespace))
	}
	if err := r.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("list the Certificates for %s: %w", d.Spec.Domain, err)
	}
	out := slices.DeleteFunc(list.Items, func(c cmapi.Certificate) bool {
		if !c.DeletionTimestamp.IsZero() {
			return true
		}
		if clusterIssued(&c) {
			return d.Namespace != r.Renewal.ClusterResourceNamespace
		}
		return c.Namespace != d.Namespace
	})
	slices.SortFunc(out, func(a, b cmapi.Certificate) int {
		ta, tb := renewalOf(&a), renewalOf(&b)
		if c := ta.Compare(tb); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out, nil
}

// renewalOf is c's renewal time; far in the future when it has none yet (not issued).
func renewalOf(c *cmapi.Certificate) time.Time {
	if c.Status.RenewalTime == nil {
		return time.Unix(1<<40, 0)
	}
	return c.Status.RenewalTime.Time
}

// trackRenewals fills status.certificates, marks those at risk, posts a Warning Event on each
// Certificate that becomes at risk and on d, and sets the risk metric. It returns the wait
// until a renewal enters the window (0: none ahead).
func (r *Reconciler) trackRenewals(ctx context.Context, d *v1alpha1.Delegation, before []v1alpha1.DependentCertificate, target string, now time.Time) time.Duration {
	if r.Renewal == nil {
		return 0
	}
	certs, err := r.dependents(ctx, d)
	if err != nil {
		logf.FromContext(ctx).Error(err, "renewal risk")
		return 0
	}
	window := or(r.Renewal.Window, DefaultRenewalWindow)
	broken, why := r.broken(d)
	wasAtRisk := map[string]bool{}
	for _, c := range before {
		wasAtRisk[c.Namespace+"/"+c.Name] = c.AtRisk
	}
	forgetRisks(d)
	var next time.Duration
	d.Status.Certificates = nil
	for i := range certs {
		c := &certs[i]
		dep := v1alpha1.DependentCertificate{Namespace: c.Namespace, Name: c.Name, RenewalTime: c.Status.RenewalTime}
		if t := c.Status.RenewalTime; t != nil {
			due := t.Add(-window)
			dep.AtRisk = broken && !now.Before(due)
			if wait := due.Sub(now); wait > 0 && (next == 0 || wait < next) {
				next = wait
			}
		}
		observeRisk(d, c, dep.AtRisk)
		if dep.AtRisk && !wasAtRisk[c.Namespace+"/"+c.Name] {
			note := fmt.Sprintf("Certificate %s/%s renews at %s, and its DNS-01 challenges for %s would fail: %s Restore: %s CNAME %s",
				c.Namespace, c.Name, renewsAt(c), d.Spec.Domain, why, strings.TrimSuffix(records.ChallengeName(d.Spec.Domain), "."), strings.TrimSuffix(target, "."))
			r.emit(c, "Warning", ReasonRenewalAtRisk, "CheckRenewal", note)
			r.emit(d, "Warning", ReasonRenewalAtRisk, "CheckRenewal", note)
		}
		if len(d.Status.Certificates) < maxDependents {
			d.Status.Certificates = append(d.Status.Certificates, dep)
		}
	}
	return next
}

func renewsAt(c *cmapi.Certificate) string { return c.Status.RenewalTime.UTC().Format(time.RFC3339) }

// broken reports whether d's challenges would fail now (not Verified, or the canary not
// Served), and why, in the condition's words.
func (r *Reconciler) broken(d *v1alpha1.Delegation) (bool, string) {
	for _, typ := range []string{v1alpha1.ConditionVerified, v1alpha1.ConditionServed} {
		c := meta.FindStatusCondition(d.Status.Conditions, typ)
		if c != nil && c.Status == metav1.ConditionFalse {
			return true, c.Message
		}
	}
	return false, ""
}

// emit posts an Event about obj, cut to the longest note the API takes.
func (r *Reconciler) emit(obj client.Object, eventtype, reason, action, note string) {
	if r.Recorder == nil {
		return
	}
	if len(note) > maxNote {
		note = note[:maxNote-3] + "..."
	}
	r.Recorder.Eventf(obj, nil, eventtype, reason, action, "%s", note)
}
