// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
)

// TestWildcardUsesDNS01 is the seed's rule with the example ClusterIssuer that lists http01
// first and acmezone's dns01 second: the wildcard gets a DNS-01 Challenge, the plain name an
// HTTP-01 one. No ingress controller runs here, so the HTTP-01 Challenge is not expected to pass.
func TestWildcardUsesDNS01(t *testing.T) {
	s := up(t)
	ctx := context.Background()
	c := s.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	class := "nginx"
	http01 := cmacme.ACMEChallengeSolver{HTTP01: &cmacme.ACMEChallengeSolverHTTP01{
		Ingress: &cmacme.ACMEChallengeSolverHTTP01Ingress{IngressClassName: &class},
	}}
	ci := s.ClusterIssuer("http01-and-dns01", http01, stack.AcmezoneSolver())
	if err := c.Create(ctx, ci); err != nil {
		t.Fatal(err)
	}
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "mixed"},
		Spec: cmapi.CertificateSpec{
			SecretName: "mixed-tls",
			DNSNames:   []string{"www.example.net", "*.example.net"},
			IssuerRef:  cmmeta.IssuerReference{Name: ci.Name, Kind: cmapi.ClusterIssuerKind},
		},
	}
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	types := map[string]cmacme.ACMEChallengeType{}
	eventually(t, 3*time.Minute, "a Challenge for each name", func() (bool, string) {
		var chs cmacme.ChallengeList
		if err := c.List(ctx, &chs, client.InNamespace("web")); err != nil {
			return false, err.Error()
		}
		for _, ch := range chs.Items {
			name := ch.Spec.DNSName
			if ch.Spec.Wildcard {
				name = "*." + name
			}
			types[name] = ch.Spec.Type
		}
		return len(types) == 2, "challenges so far: " + strings.Join(keys(types), ", ")
	})
	if types["*.example.net"] != cmacme.ACMEChallengeTypeDNS01 {
		t.Errorf("*.example.net got a %q Challenge, want DNS-01", types["*.example.net"])
	}
	if types["www.example.net"] != cmacme.ACMEChallengeTypeHTTP01 {
		t.Errorf("www.example.net got a %q Challenge, want HTTP-01", types["www.example.net"])
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestIsolation: a Certificate in namespace blog, through blog's own Issuer, for a domain
// whose public CNAME points at shop's target. Auto-delegation gives blog a target of its own;
// cert-manager presents blog's value there, and the lookup the CA makes never sees it. Nothing
// blog is told names shop. (The domain lies in example.com, the only zone the stack's public
// DNS knows.)
func TestIsolation(t *testing.T) {
	s := up(t)
	ctx := context.Background()
	c := s.Client
	for _, ns := range []string{"shop", "blog"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop.example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "shop.example.com"},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	shopTarget := s.Target("shop", "shop.example.com")
	if err := s.Provider.AddRecord("_acme-challenge.shop IN CNAME " + shopTarget); err != nil {
		t.Fatal(err)
	}

	// blog's own Issuer: cert-manager sends blog as the solver's namespace.
	iss := &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "blog", Name: "acmezone"},
		Spec:       s.ClusterIssuer("acmezone", stack.AcmezoneSolver()).Spec,
	}
	if err := c.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "blog", Name: "steal"},
		Spec: cmapi.CertificateSpec{
			SecretName: "steal-tls",
			DNSNames:   []string{"shop.example.com"},
			IssuerRef:  cmmeta.IssuerReference{Name: iss.Name, Kind: cmapi.IssuerKind},
		},
	}
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	blogTarget := s.Target("blog", "shop.example.com")
	var value string
	eventually(t, 3*time.Minute, "cert-manager presents blog's value at blog's own target", func() (bool, string) {
		var recs v1alpha1.ChallengeRecordList
		if err := c.List(ctx, &recs); err != nil {
			return false, err.Error()
		}
		for _, r := range recs.Items {
			if r.Namespace != "blog" || r.Spec.FQDN != blogTarget {
				t.Fatalf("a record for blog at %s/%s, not at blog's target %s", r.Namespace, r.Spec.FQDN, blogTarget)
			}
			value = r.Spec.Value
		}
		return value != "", fmt.Sprintf("%d records", len(recs.Items))
	})
	// What the CA reads: the public lookup follows shop's CNAME and finds nothing of blog's.
	for _, server := range []string{stack.ResolverIP + ":53", stack.AcmezoneIP + ":53"} {
		name := "_acme-challenge.shop.example.com."
		if server == stack.AcmezoneIP+":53" {
			name = shopTarget
		}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeTXT)
		r, _, err := (&dns.Client{Net: "tcp"}).Exchange(m, server)
		if err != nil {
			t.Fatal(err)
		}
		for _, rr := range r.Answer {
			if txt, ok := rr.(*dns.TXT); ok && strings.Join(txt.Txt, "") == value {
				t.Errorf("%s at %s answers blog's value: %v", name, server, r)
			}
		}
	}
	var ch cmacme.Challenge
	var chs cmacme.ChallengeList
	if err := c.List(ctx, &chs, client.InNamespace("blog")); err != nil || len(chs.Items) == 0 {
		t.Fatalf("no Challenge in blog: %v", err)
	}
	ch = chs.Items[0]
	notes, err := s.Events(ctx, &ch)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range append(notes, ch.Status.Reason) {
		if strings.Contains(text, "shop/") || strings.Contains(text, "namespace shop") || strings.Contains(text, strings.TrimSuffix(shopTarget, ".")) {
			t.Errorf("blog is told about shop: %q", text)
		}
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
		t.Fatal(err)
	}
	if d.Status.Target != shopTarget {
		t.Errorf("shop's target is %q, want %q", d.Status.Target, shopTarget)
	}
}
