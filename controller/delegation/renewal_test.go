// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records/recordstest"
)

// TestRenewalRiskReconciler: a Delegation lists the Certificates whose challenges it answers
// with their renewal times; when its records break, those renewing within the window are at
// risk: a Warning Event on each and on the Delegation names the record to restore, and the
// metric is set; restoring the record clears it. A ClusterIssuer's Certificates, in any
// namespace, depend on the Delegation of cert-manager's namespace only.
func TestRenewalRiskReconciler(t *testing.T) {
	ns, cm := newNamespace(t, "renewal"), newNamespace(t, "cert-manager")
	target := derived(t, ns, "example.com")
	srv := recordstest.NewServer(t, correct("example.com", target)...)
	startReconciler(t, testOptions, srv.Addr, func(r *Reconciler) {
		r.FailedRecheck = 100 * time.Millisecond
		r.Renewal = &Renewal{ClusterResourceNamespace: cm, Window: 24 * time.Hour}
	}, ns, cm)
	ctx := context.Background()
	cert := func(ns, name string, kind string, renews time.Duration, dnsNames ...string) *cmapi.Certificate {
		c := &cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: cmapi.CertificateSpec{SecretName: name + "-tls", DNSNames: dnsNames,
				IssuerRef: cmmeta.IssuerReference{Name: "acmezone", Kind: kind, Group: "cert-manager.io"}},
		}
		if err := k8s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		rt := metav1.NewTime(time.Now().Add(renews).Truncate(time.Second))
		c.Status.RenewalTime = &rt
		if err := k8s.Status().Update(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	soon := cert(ns, "wildcard", cmapi.IssuerKind, time.Hour, "example.com", "*.example.com")
	cert(ns, "later", cmapi.IssuerKind, 30*24*time.Hour, "www.example.com", "example.com")
	cert(ns, "other-domain", cmapi.IssuerKind, time.Hour, "example.org")
	cert(ns, "cluster-issued", cmapi.ClusterIssuerKind, time.Hour, "example.com") // depends on cm's Delegation
	createDelegation(t, ns, "example-com", "example.com", "")

	listed := func(want ...string) func(d *v1alpha1.Delegation) (bool, string) {
		return func(d *v1alpha1.Delegation) (bool, string) {
			var got []string
			for _, c := range d.Status.Certificates {
				got = append(got, fmt.Sprintf("%s/%s atRisk=%v", c.Namespace, c.Name, c.AtRisk))
			}
			return strings.Join(got, ", ") == strings.Join(want, ", "), strings.Join(got, ", ")
		}
	}
	waitFor(t, ns, "example-com", "the two Certificates of example.com in "+ns+", soonest first, none at risk",
		listed(ns+"/wildcard atRisk=false", ns+"/later atRisk=false"))
	if got := testutil.ToFloat64(renewalRisk.WithLabelValues(ns, "wildcard", ns, "example-com")); got != 0 {
		t.Errorf("acmezone_certificate_renewal_at_risk %v while verified, want 0", got)
	}

	// Someone tidies the DNS provider: the CNAME goes.
	srv.Set(t, delegated...)
	d := waitFor(t, ns, "example-com", "the Certificate renewing within the window at risk",
		listed(ns+"/wildcard atRisk=true", ns+"/later atRisk=false"))
	restore := "Restore: _acme-challenge.example.com CNAME " + strings.TrimSuffix(target, ".")
	waitForEvent(t, d, "Warning", ReasonRenewalAtRisk, restore)
	waitForEventAbout(t, soon, "Certificate", "Warning", ReasonRenewalAtRisk, "Certificate "+ns+"/wildcard renews at")
	if got := testutil.ToFloat64(renewalRisk.WithLabelValues(ns, "wildcard", ns, "example-com")); got != 1 {
		t.Errorf("acmezone_certificate_renewal_at_risk %v at risk, want 1", got)
	}
	if got := testutil.ToFloat64(renewalRisk.WithLabelValues(ns, "later", ns, "example-com")); got != 0 {
		t.Errorf("acmezone_certificate_renewal_at_risk of the Certificate renewing in 30 days %v, want 0", got)
	}

	// The user restores it.
	srv.Set(t, correct("example.com", target)...)
	waitFor(t, ns, "example-com", "no Certificate at risk once the CNAME is back",
		listed(ns+"/wildcard atRisk=false", ns+"/later atRisk=false"))
	if got := testutil.ToFloat64(renewalRisk.WithLabelValues(ns, "wildcard", ns, "example-com")); got != 0 {
		t.Errorf("acmezone_certificate_renewal_at_risk %v once restored, want 0", got)
	}

	// cert-manager's namespace: its Delegation answers the ClusterIssuer's Certificates. The
	// public CNAME points at the other namespace's target, so it is not Verified: the
	// ClusterIssuer's Certificate renewing within the window is at risk.
	createDelegation(t, cm, "example-com", "example.com", "")
	waitFor(t, cm, "example-com", "the ClusterIssuer's Certificate from "+ns+", at risk", listed(ns+"/cluster-issued atRisk=true"))
}
