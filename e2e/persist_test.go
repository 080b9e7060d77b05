// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dnspersist01"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/legotest"
)

// pebbleIssuerDomainName is the issuer domain name Pebble offers in its dns-persist-01
// challenges (its default CAA identity).
const pebbleIssuerDomainName = "pebble.letsencrypt.org"

// TestDNSPersist01: lego v5, as a library, obtains a certificate for example.com and
// *.example.com from Pebble with dns-persist-01 alone. The user adds one CNAME,
// _validation-persist.example.com → the Delegation's persist target, and no _acme-challenge
// CNAME (so DNS-01 cannot be what succeeds); acmezone serves the authorization there from the
// Delegation's persistentAuthorization. Issuing writes no ChallengeRecord.
func TestDNSPersist01(t *testing.T) {
	start := time.Now()
	s := up(t)
	ctx := context.Background()
	c := s.Client

	// lego's account at Pebble: its URL is what the authorization names.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.Pebble.CABundle)
	legotest.LogTo(t)
	legoClient, account := legotest.Register(ctx, t, s.Pebble.Directory,
		&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}})
	accountURL := account.Location
	if !strings.HasPrefix(accountURL, "https://") {
		t.Fatalf("Pebble gave the account URL %q", accountURL)
	}
	// lego's DNS client is a package-level default: only the stack's resolver, on loopback.
	prevDNS := dnspersist01.DefaultClient()
	dnspersist01.SetDefaultClient(dnspersist01.NewClient(&dnspersist01.Options{RecursiveNameservers: []string{stack.ResolverIP + ":53"}, Timeout: 5 * time.Second}))
	t.Cleanup(func() { dnspersist01.SetDefaultClient(prevDNS) })

	// The user's one record, then the Delegation asking for the authorization.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	persistTarget, err := s.Key.PersistTarget(v1alpha1.TargetClaim{Namespace: "shop", Domain: "example.com"}, "acme.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Provider.AddRecord("_validation-persist IN CNAME " + persistTarget); err != nil {
		t.Fatal(err)
	}
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example.com"},
		Spec: v1alpha1.DelegationSpec{Domain: "example.com", PersistentAuthorization: &v1alpha1.PersistentAuthorization{
			IssuerDomainNames: []string{pebbleIssuerDomainName}, AccountURI: accountURL, Wildcard: true,
		}},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	value := pebbleIssuerDomainName + "; accounturi=" + accountURL + "; policy=wildcard"
	eventually(t, 3*time.Minute, "PersistVerified", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return false, err.Error()
		}
		cond := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionPersistVerified)
		if cond == nil {
			return false, "no PersistVerified condition"
		}
		return cond.Status == metav1.ConditionTrue, fmt.Sprintf("%s %s: %s", cond.Status, cond.Reason, cond.Message)
	})
	if d.Status.PersistTarget != persistTarget {
		t.Errorf("status.persistTarget %q, want %q", d.Status.PersistTarget, persistTarget)
	}
	if cond := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified); cond == nil || cond.Status == metav1.ConditionTrue {
		t.Errorf("Verified %v: without the _acme-challenge CNAME the DNS-01 path must not be verified", cond)
	}
	// acmezone serves exactly the value at the persist target, and the resolver follows the
	// CNAME to it.
	if got, err := stack.TXT(stack.AcmezoneIP+":53", persistTarget, "tcp"); err != nil || !slices.Equal(got, []string{value}) {
		t.Fatalf("acmezone's CoreDNS answers %q (%v) at %s, want %q", got, err, persistTarget, value)
	}
	if got, err := stack.TXT(stack.ResolverIP+":53", "_validation-persist.example.com.", "tcp"); err != nil || !slices.Contains(got, value) {
		t.Fatalf("the resolver answers %q (%v) for _validation-persist.example.com, want %q", got, err, value)
	}
	if got, _ := stack.TXT(stack.ResolverIP+":53", "_acme-challenge.example.com.", "tcp"); len(got) != 0 {
		t.Fatalf("the resolver answers TXT %q at _acme-challenge.example.com: DNS-01 could succeed", got)
	}

	// Every ChallengeRecord, and a watch from there: issuing must write none.
	var before v1alpha1.ChallengeRecordList
	if err := c.List(ctx, &before); err != nil {
		t.Fatal(err)
	}
	if len(before.Items) != 1 || before.Items[0].Spec.Value != value || v1alpha1.CanonicalName(before.Items[0].Spec.FQDN) != persistTarget {
		t.Fatalf("before issuing: %d ChallengeRecords, want the one persist record", len(before.Items))
	}
	wc, err := client.NewWithWatch(s.CP.Config, client.Options{Scheme: c.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &v1alpha1.ChallengeRecordList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: before.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// dns-persist-01 is lego's only solver: no DNS-01, HTTP-01 or TLS-ALPN-01 provider is set.
	// The authoritative check is off (lego would ask the provider, which holds the CNAME and
	// not the TXT); the recursive one asks the resolver, as Pebble does.
	if err := legoClient.Challenge.SetDNSPersist01(
		dnspersist01.WithIssuerDomainName(pebbleIssuerDomainName),
		dnspersist01.DisableAuthoritativeNssPropagationRequirement(),
	); err != nil {
		t.Fatal(err)
	}
	issueStart := time.Now()
	names := []string{"example.com", "*.example.com"}
	res, err := legoClient.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: names, KeyType: certcrypto.EC256, Bundle: true})
	if err != nil {
		t.Fatalf("lego with dns-persist-01: %v", err)
	}
	t.Logf("lego obtained the certificate with dns-persist-01 in %.1fs", time.Since(issueStart).Seconds())
	root, err := s.Pebble.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stack.VerifyIssued(res.Certificate, root, names...); err != nil {
		t.Fatal(err)
	}

	// Nothing was written: the same records at the same versions, and no event on the watch.
	time.Sleep(2 * time.Second) // events in flight arrive
	var after v1alpha1.ChallengeRecordList
	if err := c.List(ctx, &after); err != nil {
		t.Fatal(err)
	}
	versions := func(l *v1alpha1.ChallengeRecordList) []string {
		var out []string
		for _, r := range l.Items {
			out = append(out, r.Namespace+"/"+r.Name+"@"+r.ResourceVersion)
		}
		slices.Sort(out)
		return out
	}
	if b, a := versions(&before), versions(&after); !slices.Equal(b, a) {
		t.Errorf("ChallengeRecords before issuance %v, after %v", b, a)
	}
	// The watch is live: a probe record written now is its first event, unless issuance
	// wrote something before it.
	probe := v1alpha1.NewChallengeRecord("shop", "probe.invalid.", "not-served")
	if err := c.Create(ctx, probe); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Delete(ctx, probe) }()
	var events []string
	timeout := time.After(30 * time.Second)
	for probeSeen := false; !probeSeen; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("the watch ended before the probe record was seen; events: %v", events)
			}
			if ev.Type == watch.Bookmark {
				continue
			}
			o, isObj := ev.Object.(client.Object)
			if isObj && o.GetName() == probe.Name && ev.Type == watch.Added {
				probeSeen = true
				continue
			}
			if isObj {
				events = append(events, fmt.Sprintf("%s %s/%s", ev.Type, o.GetNamespace(), o.GetName()))
			} else {
				events = append(events, fmt.Sprintf("%s %v", ev.Type, ev.Object))
			}
		case <-timeout:
			t.Fatalf("the watch did not deliver the probe record; events: %v", events)
		}
	}
	if len(events) > 0 {
		t.Errorf("ChallengeRecords changed during issuance: %v", events)
	}
	t.Logf("TestDNSPersist01 took %.0fs", time.Since(start).Seconds())
}
