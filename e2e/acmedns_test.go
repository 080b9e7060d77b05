// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/solver"
	"github.com/acmezone/acmezone/e2e/stack"
)

// acmeDNSAccount is one entry of the JSON cert-manager's acmeDNS solver reads (goacmedns's
// Account).
type acmeDNSAccount struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	Fulldomain string `json:"fulldomain"`
	Subdomain  string `json:"subdomain"`
	ServerURL  string `json:"server_url"`
}

// TestACMEDNSSolver: a Certificate for example.com and *.example.com through a ClusterIssuer
// whose only solver is cert-manager's built-in acmeDNS, talking to acmezone-controller's
// acme-dns-compatible API. No webhook is involved: cert-manager writes the TXT values with
// POST /update, and acmezone's CoreDNS serves them at the account's target.
func TestACMEDNSSolver(t *testing.T) {
	start := time.Now()
	s := up(t)
	ctx := context.Background()
	c := s.Client

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}

	// The Delegation, annotated so that acmezone-controller makes an acme-dns account bound to
	// its target and writes it into the Secret secretName of the Delegation's namespace. Both
	// live in cert-manager's cluster resource namespace: a ClusterIssuer (the seed's set-up,
	// one issuer for every namespace) reads its acmeDNS accountSecretRef there, as it reads
	// the Delegations of the webhook's ClusterIssuer challenges there. A namespaced Issuer
	// would read it from its own namespace, which the Delegation would then live in.
	const secretName = "acme-dns-example-com"
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: stack.ClusterResourceNamespace, Name: "example.com",
			Annotations: map[string]string{v1alpha1.ACMEDNSSecretAnnotation: secretName},
		},
		Spec: v1alpha1.DelegationSpec{Domain: "example.com"},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	acct := accountFromSecret(t, s, d, secretName, "example.com")
	target := v1alpha1.CanonicalName(acct.Fulldomain)

	// The user adds the one CNAME at the provider, as for the webhook.
	if err := s.Provider.AddRecord("_acme-challenge IN CNAME " + target); err != nil {
		t.Fatal(err)
	}

	ci := s.ClusterIssuer("acme-dns", cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{
		AcmeDNS: &cmacme.ACMEIssuerDNS01ProviderAcmeDNS{
			Host: stack.ACMEDNSURL,
			AccountSecret: cmmeta.SecretKeySelector{
				LocalObjectReference: cmmeta.LocalObjectReference{Name: secretName},
				Key:                  acmeDNSSecretKey,
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

	// While cert-manager works, watch what it does: every Challenge's key and solver, every
	// ChallengeRecord at the target, and what acmezone's CoreDNS serves there.
	challengeKeys := map[string]bool{}  // the Challenges' keys (the TXT values)
	records := map[string]string{}      // value -> "namespace/name" of a record at the target
	recordUser := map[string]string{}   // value -> the record's acme-dns account label
	served := map[string]bool{}         // TXT values acmezone's CoreDNS answered at the target
	wrongSolver := map[string]bool{}    // Challenges with another solver than acmeDNS
	webhookRecords := map[string]bool{} // records the webhook solver wrote (its label)
	observe := func() {
		var chs cmacme.ChallengeList
		if err := c.List(ctx, &chs, client.InNamespace("shop")); err == nil {
			for _, ch := range chs.Items {
				challengeKeys[ch.Spec.Key] = true
				if sv := ch.Spec.Solver.DNS01; sv == nil || sv.AcmeDNS == nil || sv.Webhook != nil {
					wrongSolver[ch.Name] = true
				}
			}
		}
		var recs v1alpha1.ChallengeRecordList
		if err := c.List(ctx, &recs); err == nil {
			for _, r := range recs.Items {
				if _, ok := r.Labels[solver.ChallengeUIDLabel]; ok {
					webhookRecords[r.Namespace+"/"+r.Name] = true
				}
				if v1alpha1.CanonicalName(r.Spec.FQDN) == target {
					records[r.Spec.Value] = r.Namespace + "/" + r.Name
					recordUser[r.Spec.Value] = r.Labels[v1alpha1.ACMEDNSAccountLabel]
				}
			}
		}
		vals, _ := stack.TXT(stack.AcmezoneIP+":53", target, "tcp")
		for _, v := range vals {
			served[v] = true
		}
	}
	eventually(t, 8*time.Minute, "Certificate Ready (acmeDNS solver)", func() (bool, string) {
		observe()
		if err := c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return false, err.Error()
		}
		return ready(crt.Status.Conditions)
	})
	checkSecret(t, s, "shop", "wildcard-tls", "example.com", "*.example.com")

	// cert-manager made one Challenge per name (apex and wildcard, two keys), each written
	// through /update as a ChallengeRecord of the account, in the Delegation's namespace, and
	// served at the target.
	if len(challengeKeys) != 2 {
		t.Errorf("saw %d Challenge keys, want 2 (example.com and *.example.com)", len(challengeKeys))
	}
	for k := range challengeKeys {
		if records[k] == "" {
			t.Errorf("no ChallengeRecord at %s with the Challenge's key %s was seen", target, k)
		} else if ns, _, _ := strings.Cut(records[k], "/"); ns != d.Namespace {
			t.Errorf("ChallengeRecord %s is not in the Delegation's namespace %s", records[k], d.Namespace)
		} else if recordUser[k] != acct.Username {
			t.Errorf("ChallengeRecord %s carries acme-dns account %q, want %q", records[k], recordUser[k], acct.Username)
		}
		if !served[k] {
			t.Errorf("acmezone's CoreDNS was never seen answering the key %s at %s", k, target)
		}
	}
	t.Logf("records written through /update: %v", records)

	// The webhook had no part in it.
	if len(wrongSolver) > 0 {
		t.Errorf("Challenges not solved by acmeDNS alone: %v", keys(wrongSolver))
	}
	if len(webhookRecords) > 0 {
		t.Errorf("ChallengeRecords written by the webhook solver (label %s): %v", solver.ChallengeUIDLabel, keys(webhookRecords))
	}
	if logs := s.Controller.Logs(); strings.Contains(logs, `"msg":"presented"`) {
		t.Errorf("acmezone-controller's log shows a webhook Present:\n%s", grepLines(logs, `"msg":"presented"`))
	}

	// cert-manager's acmeDNS CleanUp does nothing (acme-dns has no delete); acmezone-controller
	// deletes a record written through /update once no Challenge needs it and it is older
	// than --acme-dns-record-max-age. cert-manager deletes the Challenges of the finished
	// Order, so both records go, and acmezone's CoreDNS stops answering them.
	eventually(t, stack.RecordMaxAge+2*time.Minute, "records written through /update deleted", func() (bool, string) {
		var recs v1alpha1.ChallengeRecordList
		if err := c.List(ctx, &recs); err != nil {
			return false, err.Error()
		}
		var left []string
		for _, r := range recs.Items {
			if v1alpha1.CanonicalName(r.Spec.FQDN) == target {
				left = append(left, r.Namespace+"/"+r.Name)
			}
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
	t.Logf("stage took %s", time.Since(start).Round(time.Second))
}

// acmeDNSSecretKey is the key of the account JSON in the Secret acmezone-controller writes.
const acmeDNSSecretKey = "acmedns.json"

// accountFromSecret waits until acmezone-controller has written the acme-dns account of the
// annotated Delegation d into the Secret name of d's namespace, checks that the account is
// bound to d's target and names the stack's API, and returns it.
func accountFromSecret(t *testing.T, s *stack.Stack, d *v1alpha1.Delegation, name, domain string) acmeDNSAccount {
	t.Helper()
	ctx := context.Background()
	c := s.Client
	var accounts map[string]acmeDNSAccount
	eventually(t, time.Minute, "acme-dns account Secret written by the controller", func() (bool, string) {
		var sec corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: name}, &sec); err != nil {
			return false, err.Error()
		}
		raw, ok := sec.Data[acmeDNSSecretKey]
		if !ok {
			return false, "no key " + acmeDNSSecretKey
		}
		if err := json.Unmarshal(raw, &accounts); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
		t.Fatal(err)
	}
	target := d.Status.Target
	acct, ok := accounts[domain]
	switch {
	case !ok:
		t.Fatalf("Secret %s/%s has no account for %s: %v", d.Namespace, name, domain, keys(accounts))
	case target == "":
		t.Fatalf("Delegation %s/%s has no target, but its account Secret exists", d.Namespace, d.Name)
	case acct.Fulldomain != strings.TrimSuffix(target, "."):
		t.Fatalf("account fulldomain %q, want the Delegation's target %s", acct.Fulldomain, target)
	}
	if label, _, _ := strings.Cut(target, "."); acct.Subdomain != label {
		t.Errorf("account subdomain %q, want %q (the target's first label)", acct.Subdomain, label)
	}
	if acct.ServerURL != stack.ACMEDNSURL {
		t.Errorf("account server_url %q, want %q", acct.ServerURL, stack.ACMEDNSURL)
	}
	if acct.Username == "" || len(acct.Password) != 40 {
		t.Errorf("account username %q, password of %d characters; want a username and acme-dns's 40", acct.Username, len(acct.Password))
	}
	t.Logf("acme-dns account %s, target %s, server_url %s", acct.Username, acct.Fulldomain, acct.ServerURL)
	return acct
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
