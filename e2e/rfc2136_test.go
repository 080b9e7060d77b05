// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/rfc2136"
	"github.com/acmezone/acmezone/controller/solver"
	"github.com/acmezone/acmezone/e2e/stack"
)

// rfc2136Addr is where acmezone-controller's RFC 2136 listener runs in the stack: the
// controller's address (its acme-dns API is on port 8053 there), port 53 as cert-manager's
// rfc2136 solver is usually configured.
const rfc2136Addr = "127.0.53.4:53"

// TestRFC2136: a Certificate for example.com and *.example.com through a ClusterIssuer whose
// only solver is cert-manager's built-in rfc2136, sending TSIG-signed UPDATEs to
// acmezone-controller's listener. The user made a TSIG key Secret and a Delegation in
// cert-manager's cluster resource namespace and added the Delegation's CNAME at the provider;
// with cnameStrategy Follow, cert-manager updates the target in acme.example.com, where the
// two values (apex and wildcard, one name) become ChallengeRecords of the key's namespace and
// acmezone's CoreDNS serves them. cert-manager's CleanUp deletes them again by UPDATE.
func TestRFC2136(t *testing.T) {
	start := time.Now()
	// The reaper of records left behind waits an hour: any record that goes during the test
	// went by cert-manager's delete UPDATE.
	s := up(t, "--rfc2136-listen="+rfc2136Addr, "--rfc2136-record-max-age=1h")
	ctx := context.Background()
	c := s.Client
	ns := stack.ClusterResourceNamespace // a ClusterIssuer reads its Secrets there

	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := stack.WaitDNS(waitCtx, s.Controller, rfc2136Addr, "acme.example.com.", dns.TypeSOA); err != nil {
		t.Fatalf("the RFC 2136 listener: %v", err)
	}

	// The TSIG key, as the README's one command makes it: type acmezone.io/tsig-key, 32
	// random bytes in base64, hmac-sha256 by default. Its key name is <secret>.<namespace>.
	const keySecret = "acmezone-tsig"
	material := make([]byte, 32)
	_, _ = rand.Read(material)
	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keySecret},
		Type:       rfc2136.KeySecretType,
		Data:       map[string][]byte{rfc2136.SecretKey: []byte(base64.StdEncoding.EncodeToString(material))},
	}); err != nil {
		t.Fatal(err)
	}
	keyName := rfc2136.KeyName(ns, keySecret)

	// The Delegation, its target, and the CNAME the user adds at the provider.
	if err := c.Create(ctx, &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}); err != nil {
		t.Fatal(err)
	}
	d := stack.WaitDelegation(t, c, ns, "example.com")
	target := v1alpha1.CanonicalName(d.Status.Target)
	if want := s.Target(ns, "example.com"); target != want {
		t.Fatalf("Delegation target %s, want %s", target, want)
	}
	if err := s.Provider.AddRecord("_acme-challenge IN CNAME " + target); err != nil {
		t.Fatal(err)
	}
	// As a user waits for Ready: until the resolvers follow the CNAME, cert-manager (through the
	// same resolver) would update the zone example.com, which this listener rightly refuses.
	stack.RecheckVerified(t, c, &d, "Delegation verified")

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	ci := s.ClusterIssuer("rfc2136", cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{
		CNAMEStrategy: cmacme.FollowStrategy,
		RFC2136: &cmacme.ACMEIssuerDNS01ProviderRFC2136{
			Nameserver:    rfc2136Addr,
			TSIGKeyName:   keyName,
			TSIGAlgorithm: "HMACSHA256",
			TSIGSecret: cmmeta.SecretKeySelector{
				LocalObjectReference: cmmeta.LocalObjectReference{Name: keySecret},
				Key:                  rfc2136.SecretKey,
			},
		},
	}})
	if err := c.Create(ctx, ci); err != nil {
		t.Fatal(err)
	}
	crt := stack.WildcardCertificate(ci)
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}

	// While cert-manager works, remember every Challenge key, every ChallengeRecord (by
	// value) and what acmezone's CoreDNS serves at the target.
	challengeKeys := map[string]bool{}
	records := map[string]v1alpha1.ChallengeRecord{} // value -> a record holding it
	served := map[string]bool{}
	maxServed := 0 // the most values served at the target at once
	observe := func() {
		var chs cmacme.ChallengeList
		if err := c.List(ctx, &chs, client.InNamespace("shop")); err == nil {
			for _, ch := range chs.Items {
				challengeKeys[ch.Spec.Key] = true
			}
		}
		var recs v1alpha1.ChallengeRecordList
		if err := c.List(ctx, &recs); err == nil {
			for _, r := range recs.Items {
				records[r.Spec.Value] = r
			}
		}
		vals, _ := stack.TXT(stack.AcmezoneIP+":53", target, "tcp")
		for _, v := range vals {
			served[v] = true
		}
		maxServed = max(maxServed, len(vals))
	}
	eventually(t, 6*time.Minute, "Certificate Ready (rfc2136 solver)", func() (bool, string) {
		observe()
		if err := c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return false, err.Error()
		}
		return ready(crt.Status.Conditions)
	})
	checkSecret(t, s, "shop", "wildcard-tls", "example.com", "*.example.com")

	// One Challenge per name, each key written by UPDATE as a ChallengeRecord at the target,
	// in the key's namespace, labelled with the key's Secret, and served there.
	if len(challengeKeys) != 2 {
		t.Errorf("saw %d Challenge keys, want 2 (example.com and *.example.com)", len(challengeKeys))
	}
	for k := range challengeKeys {
		r, ok := records[k]
		switch {
		case !ok:
			t.Errorf("no ChallengeRecord with the Challenge's key %s was seen", k)
		case r.Namespace != ns || v1alpha1.CanonicalName(r.Spec.FQDN) != target || r.Labels[rfc2136.KeyLabel] != keySecret:
			t.Errorf("ChallengeRecord %s/%s at %s labels %v; want namespace %s, fqdn %s, label %s=%s",
				r.Namespace, r.Name, r.Spec.FQDN, r.Labels, ns, target, rfc2136.KeyLabel, keySecret)
		case r.Labels[solver.ChallengeUIDLabel] != "" || r.Labels[v1alpha1.ACMEDNSAccountLabel] != "":
			t.Errorf("ChallengeRecord %s/%s carries another writer's label: %v", r.Namespace, r.Name, r.Labels)
		}
		if !served[k] {
			t.Errorf("acmezone's CoreDNS was never seen answering the key %s at %s", k, target)
		}
	}
	for v, r := range records {
		if !challengeKeys[v] {
			t.Errorf("ChallengeRecord %s/%s holds %q, no Challenge's key", r.Namespace, r.Name, v)
		}
	}
	t.Logf("records written by UPDATE: %d, at most %d served at once", len(records), maxServed)

	// cert-manager's CleanUp sends a delete UPDATE per Challenge: the records go (long before
	// the reaper's hour), and acmezone's CoreDNS stops answering them.
	eventually(t, 2*time.Minute, "records deleted by cert-manager's UPDATEs", func() (bool, string) {
		var recs v1alpha1.ChallengeRecordList
		if err := c.List(ctx, &recs, client.HasLabels{rfc2136.KeyLabel}); err != nil {
			return false, err.Error()
		}
		var left []string
		for _, r := range recs.Items {
			left = append(left, r.Namespace+"/"+r.Name)
		}
		return len(left) == 0, "left: " + strings.Join(left, ", ")
	})
	eventually(t, 30*time.Second, "acmezone's CoreDNS answers no TXT at the target", func() (bool, string) {
		v, err := stack.TXT(stack.AcmezoneIP+":53", target, "tcp")
		if err != nil {
			return false, err.Error()
		}
		return len(v) == 0, "still served: " + strings.Join(v, ", ")
	})
	if logs := s.Controller.Logs(); strings.Contains(logs, "UPDATE refused") {
		t.Errorf("acmezone-controller refused an UPDATE of cert-manager's:\n%s", grepLines(logs, "UPDATE refused"))
	}
	t.Logf("stage took %s", time.Since(start).Round(time.Second))
}
