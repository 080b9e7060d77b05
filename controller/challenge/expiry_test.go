// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package challenge

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// Keys of ACME DNS-01 challenges: 43 base64url characters.
const (
	keyOld     = "LPsIwTo7o8BoG0-vjCyGQGBWSVIPxI-i_X336eUOQZo"
	keyYoung   = "R-ZeUaYpQdATPDKHn9c7ie_dmoiebTGE3UN4vXFI0hg"
	keyLive    = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	keyOther   = "HGFEDCBAzyxwvutsrqponmlkjihgfedcba987654321"
	keyWebhook = "webhook-webhook-webhook-webhook-webhook-web"
	keyReg     = "registered-registered-registered-registere"
)

func acmeDNSChallenge(ns, name, domain, key string) *cmacme.Challenge {
	return &cmacme.Challenge{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmacme.ChallengeSpec{
			URL: "https://pebble.test/chal/" + name, AuthorizationURL: "https://pebble.test/authz/" + name,
			DNSName: domain, Type: cmacme.ACMEChallengeTypeDNS01, Token: "token", Key: key,
			Solver: cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{
				AcmeDNS: &cmacme.ACMEIssuerDNS01ProviderAcmeDNS{
					Host:          "http://acmezone-controller.acmezone.svc:8053",
					AccountSecret: cmmeta.SecretKeySelector{LocalObjectReference: cmmeta.LocalObjectReference{Name: "acme-dns"}, Key: "acmedns.json"},
				},
			}},
			IssuerRef: cmmeta.IssuerReference{Name: "acme-dns", Kind: cmapi.IssuerKind, Group: "cert-manager.io"},
		},
	}
}

// TestExpiry runs the acme-dns record reaper against a real API server: old records go,
// young ones and those answering a live Challenge stay, the latter until the Challenge is
// gone; records not written through the API are not its business.
func TestExpiry(t *testing.T) {
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds"), kubetest.MustCertManagerCRDs(t)}, "shop", "acmezone")
	c := env.Client
	ctx := context.Background()
	now := time.Now()

	// shop delegates example.com (a Kubernetes-native account writes there); acmezone holds
	// an account made through /register, whose domain nobody knows.
	const shopTarget, regTarget = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com.", "9f3a0c1e-1111-4a34-ac99-d5097d5b2b68.acme.example.com."
	for _, d := range []*v1alpha1.Delegation{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example.com", Annotations: map[string]string{
			v1alpha1.TargetProofAnnotation: testOptions.TargetKey.Proof("shop", "example.com", shopTarget)}},
			Spec: v1alpha1.DelegationSpec{Domain: "example.com", Target: shopTarget}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: "acme-dns-x", Labels: map[string]string{v1alpha1.ACMEDNSAccountLabel: "x"}},
			Spec: v1alpha1.DelegationSpec{Domain: "9f3a0c1e-1111-4a34-ac99-d5097d5b2b68.acme.example.com", Target: regTarget}},
	} {
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	live := acmeDNSChallenge("shop", "live", "example.com", keyLive)
	for _, ch := range []*cmacme.Challenge{
		live,
		acmeDNSChallenge("shop", "other-name", "example.org", keyOther), // another domain's key
		acmeDNSChallenge("shop", "registered", "anything.example", keyReg),
		newChallenge("shop", "webhook", "example.com", cmapi.IssuerKind), // not an acme-dns solver
	} {
		if ch.Name == "webhook" {
			ch.Spec.Key = keyWebhook
		}
		if err := c.Create(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}

	type rec struct {
		ns, fqdn, value string
		account         bool
		age             time.Duration
		stays           bool
	}
	recs := map[string]rec{
		"old":           {"shop", shopTarget, keyOld, true, 2 * time.Hour, false},
		"young":         {"shop", shopTarget, keyYoung, true, 30 * time.Minute, true},
		"live":          {"shop", shopTarget, keyLive, true, 2 * time.Hour, true},
		"other name":    {"shop", shopTarget, keyOther, true, 2 * time.Hour, false},
		"webhook":       {"shop", shopTarget, keyWebhook, true, 2 * time.Hour, false},
		"registered":    {"acmezone", regTarget, keyReg, true, 2 * time.Hour, true},
		"not the API's": {"shop", shopTarget, "not-written-through-the-api-so-not-reaped-x", false, 2 * time.Hour, true},
	}
	objs := map[string]*v1alpha1.ChallengeRecord{}
	for name, r := range recs {
		o := v1alpha1.NewChallengeRecord(r.ns, r.fqdn, r.value)
		o.Annotations = map[string]string{v1alpha1.CreatedAtAnnotation: now.Add(-r.age).UTC().Format(time.RFC3339Nano)}
		if r.account {
			o.Labels = map[string]string{v1alpha1.ACMEDNSAccountLabel: "x"}
		}
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		objs[name] = o
	}

	mgr := newManager(t, env)
	if err := (&ExpiryReconciler{Client: mgr.GetClient(), Options: testOptions, MaxAge: time.Hour, Resync: time.Hour}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	if err := (&ExpiryReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err == nil {
		t.Error("a zero maximum age was accepted")
	}
	reapedBefore := testutil.ToFloat64(reaped.WithLabelValues(ReapedExpired))
	runManager(t, mgr)

	gone := func(o *v1alpha1.ChallengeRecord) bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(o), &v1alpha1.ChallengeRecord{}))
	}
	expired := 0 // the records that must go
	for name, r := range recs {
		if !r.stays {
			expired++
			waitFor(t, "the "+name+" record deleted", func() bool { return gone(objs[name]) })
		}
	}
	time.Sleep(time.Second) // give the reaper time to make a mistake
	for name, r := range recs {
		if r.stays && gone(objs[name]) {
			t.Errorf("the %s record was deleted", name)
		}
	}

	// The Challenge goes: its record follows at once, not after Resync.
	if err := c.Delete(ctx, live); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the live Challenge's record deleted after the Challenge", func() bool { return gone(objs["live"]) })
	if gone(objs["young"]) || gone(objs["registered"]) {
		t.Error("records of other Challenges went with it")
	}
	if got := testutil.ToFloat64(reaped.WithLabelValues(ReapedExpired)) - reapedBefore; got != float64(expired+1) {
		t.Errorf("acmezone_challengerecords_reaped_total{reason=expired} rose by %v, want %d", got, expired+1)
	}
}

func TestAnswers(t *testing.T) {
	rec := v1alpha1.NewChallengeRecord("shop", "t.acme.example.com", keyLive)
	for i, tc := range []struct {
		ch     *cmacme.Challenge
		domain string
		want   bool
	}{
		{acmeDNSChallenge("shop", "a", "example.com", keyLive), "example.com", true},
		{acmeDNSChallenge("shop", "a", "Example.COM.", keyLive), "example.com", true},
		{acmeDNSChallenge("shop", "a", "example.com", keyLive), "", true},
		{acmeDNSChallenge("shop", "a", "example.org", keyLive), "example.com", false},
		{acmeDNSChallenge("shop", "a", "example.com", keyOld), "example.com", false},
		{newChallenge("shop", "a", "example.com", cmapi.IssuerKind), "example.com", false},
	} {
		if tc.ch.Name == "a" && tc.ch.Spec.Solver.DNS01.Webhook != nil {
			tc.ch.Spec.Key = keyLive
		}
		if got := Answers(tc.ch, rec, tc.domain); got != tc.want {
			t.Errorf("Test %d: Answers(%s %s, %q) = %v, want %v", i, tc.ch.Spec.DNSName, tc.ch.Spec.Key, tc.domain, got, tc.want)
		}
	}
}
