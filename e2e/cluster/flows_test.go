// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build cluster

package cluster_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
)

// What the webhook flow leaves for the fault stages: the wildcard Certificate and the target
// its Delegation got.
var (
	wildcard *cmapi.Certificate
	target   string // example.com's target, with a trailing dot
)

// webhookFlow is the seed's story through the pods: a ClusterIssuer with acmezone's webhook
// solver, a Certificate for example.com and *.example.com, the Delegation naming the CNAME, the
// user adding it, the certificate issued by Pebble.
func (e *env) webhookFlow(t *testing.T) {
	ctx := context.Background()
	c := e.client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	ci := e.pebble.ClusterIssuer("acmezone", stack.AcmezoneSolver())
	if err := c.Create(ctx, ci); err != nil {
		t.Fatal(err)
	}
	e.issuerReady(t, ci)
	wildcard = stack.WildcardCertificate(ci)
	if err := c.Create(ctx, wildcard); err != nil {
		t.Fatal(err)
	}
	d := stack.WaitDelegation(t, c, stack.ClusterResourceNamespace, "example.com")
	target = d.Status.Target
	if !strings.HasSuffix(target, "."+zone+".") {
		t.Fatalf("target %s is not in the overlay's zone %s", target, zone)
	}
	if err := e.provider.AddRecord("_acme-challenge IN CNAME " + target); err != nil {
		t.Fatal(err)
	}
	stack.RecheckVerified(t, c, &d, "Delegation verified through the cluster's resolver")
	e.waitReady(t, wildcard)
	e.checkSecret(t, "shop", "wildcard-tls", "example.com", "*.example.com")
	e.noRecordsLeft(t)
	// deploy/ runs the canary: from the controller's pod, its test value comes back through
	// the cluster's resolver and from the name server at the load balancer's address, over
	// UDP and TCP. The Delegation lists the Certificate with its renewal time.
	eventually(t, 3*time.Minute, "the Delegation Served (its canary came back)", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(&d), &d); err != nil {
			return false, err.Error()
		}
		s := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionServed)
		if s == nil {
			return false, "no Served condition"
		}
		return s.Status == metav1.ConditionTrue, s.Reason + ": " + s.Message
	})
	if len(d.Status.Certificates) != 1 || d.Status.Certificates[0].Name != wildcard.Name || d.Status.Certificates[0].RenewalTime == nil {
		t.Errorf("the Delegation lists %+v, want shop/wildcard with its renewal time", d.Status.Certificates)
	}
}

// acmeDNSFlow: a Certificate through cert-manager's own acmeDNS solver, which reaches
// acmezone-controller's acme-dns API at its Service name (the cluster DNS resolves it).
func (e *env) acmeDNSFlow(t *testing.T) {
	ctx := context.Background()
	c := e.client
	const domain, secretName = "api.example.com", "acme-dns-api-example-com"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "blog"}}); err != nil {
		t.Fatal(err)
	}
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: stack.ClusterResourceNamespace, Name: domain,
			Annotations: map[string]string{v1alpha1.ACMEDNSSecretAnnotation: secretName},
		},
		Spec: v1alpha1.DelegationSpec{Domain: domain},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	var acct struct {
		Fulldomain string `json:"fulldomain"`
		ServerURL  string `json:"server_url"`
	}
	eventually(t, time.Minute, "acme-dns account Secret written by the controller", func() (bool, string) {
		var sec corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: secretName}, &sec); err != nil {
			return false, err.Error()
		}
		var accounts map[string]json.RawMessage
		if err := json.Unmarshal(sec.Data["acmedns.json"], &accounts); err != nil {
			return false, err.Error()
		}
		if err := json.Unmarshal(accounts[domain], &acct); err != nil {
			return false, err.Error()
		}
		return acct.Fulldomain != "", "no account for " + domain
	})
	const wantURL = "http://acmezone-controller.acmezone.svc:8053"
	if acct.ServerURL != wantURL {
		t.Errorf("account server_url %q, want %q (deploy/controller's --acme-dns-server-url)", acct.ServerURL, wantURL)
	}
	if err := e.provider.AddRecord("_acme-challenge.api IN CNAME " + acct.Fulldomain + "."); err != nil {
		t.Fatal(err)
	}
	ci := e.pebble.ClusterIssuer("acme-dns", cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{
		AcmeDNS: &cmacme.ACMEIssuerDNS01ProviderAcmeDNS{
			Host: acct.ServerURL,
			AccountSecret: cmmeta.SecretKeySelector{
				LocalObjectReference: cmmeta.LocalObjectReference{Name: secretName},
				Key:                  "acmedns.json",
			},
		},
	}})
	if err := c.Create(ctx, ci); err != nil {
		t.Fatal(err)
	}
	e.issuerReady(t, ci)
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "blog", Name: "api"},
		Spec: cmapi.CertificateSpec{
			SecretName: "api-tls",
			DNSNames:   []string{domain, "*." + domain},
			IssuerRef:  cmmeta.IssuerReference{Name: ci.Name, Kind: cmapi.ClusterIssuerKind},
		},
	}
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	e.waitReady(t, crt)
	e.checkSecret(t, "blog", "api-tls", domain, "*."+domain)
}

func (e *env) issuerReady(t *testing.T, ci *cmapi.ClusterIssuer) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 2*time.Minute, "ClusterIssuer "+ci.Name+" registered with Pebble", func() (bool, string) {
		if err := e.client.Get(ctx, client.ObjectKeyFromObject(ci), ci); err != nil {
			return false, err.Error()
		}
		for _, cond := range ci.Status.Conditions {
			if cond.Type == cmapi.IssuerConditionReady {
				return cond.Status == cmmeta.ConditionTrue, cond.Message
			}
		}
		return false, "no Ready condition"
	})
}

func (e *env) waitReady(t *testing.T, crt *cmapi.Certificate) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 8*time.Minute, "Certificate "+crt.Namespace+"/"+crt.Name+" Ready", func() (bool, string) {
		if err := e.client.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return false, err.Error()
		}
		return ready(crt.Status.Conditions)
	})
}

// noRecordsLeft waits until the webhook's ChallengeRecords are gone (its CleanUp): every
// record but the fault stages' probe, those written through the acme-dns API (which live
// until --acme-dns-record-max-age) and a canary's test value (gone within a minute).
func (e *env) noRecordsLeft(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 2*time.Minute, "no webhook ChallengeRecord left", func() (bool, string) {
		var recs v1alpha1.ChallengeRecordList
		if err := e.client.List(ctx, &recs); err != nil {
			return false, err.Error()
		}
		var left []string
		for _, r := range recs.Items {
			if _, acmeDNS := r.Labels[v1alpha1.ACMEDNSAccountLabel]; acmeDNS || r.Name == probeName || r.Labels[v1alpha1.CanaryLabel] != "" {
				continue
			}
			left = append(left, r.Namespace+"/"+r.Name)
		}
		return len(left) == 0, "left: " + strings.Join(left, ", ")
	})
}
