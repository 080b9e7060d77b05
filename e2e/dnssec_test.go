// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
)

// TestDNSSEC is issue 14's signed chain: example.com is signed at the provider, which
// publishes acme.example.com's DS; acmezone's CoreDNS signs the challenge zone online (the
// dnssec plugin); unbound, the public resolver for Pebble and cert-manager, validates from
// example.com's key. The TXT answer through the user's CNAME carries the AD bit, a wildcard
// certificate is issued through the validated chain, and a DS that does not match acmezone's
// key makes the answer bogus (SERVFAIL) and the Delegation not Verified.
func TestDNSSEC(t *testing.T) {
	// One failed check turns Verified false (the default waits for three).
	s := upWith(t, stack.Options{DNSSEC: true, ControllerArgs: []string{"--failures-to-flip=1"}})
	ctx := context.Background()
	c := s.Client
	ci, d := delegated(t, s)

	// The AD bit on the TXT answer through the CNAME: a value written at the target, asked
	// at the challenge name.
	probe := v1alpha1.NewChallengeRecord(stack.ClusterResourceNamespace, d.Status.Target, "dnssec-probe-"+time.Now().Format("150405.000"))
	if err := c.Create(ctx, probe); err != nil {
		t.Fatal(err)
	}
	var r *dns.Msg
	eventually(t, time.Minute, "validated TXT answer (AD) through the CNAME", func() (bool, string) {
		var err error
		if r, err = askResolver("_acme-challenge.example.com.", dns.TypeTXT, false); err != nil {
			return false, err.Error()
		}
		return r.AuthenticatedData && stack.HasTXT(r, probe.Spec.Value), r.String()
	})
	t.Logf("the resolver's answer:\n%s", r)
	if err := c.Delete(ctx, probe); err != nil {
		t.Fatal(err)
	}

	crt := wildcardOnly(t, s, ci, "dnssec")
	checkSecret(t, s, "shop", crt.Spec.SecretName, "*.example.com")

	// A forged delegation: the provider's DS is for another key. The resolver refuses the
	// answer (SERVFAIL; with checking disabled the value is there), and the Delegation says
	// the DS does not match.
	other, err := stack.GenerateSigningKey(t.TempDir(), "acme.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Provider.RemoveRecord(s.ZoneKey.DSLine()); err != nil {
		t.Fatal(err)
	}
	if err := s.Provider.AddRecord(other.DSLine()); err != nil {
		t.Fatal(err)
	}
	probe = v1alpha1.NewChallengeRecord(stack.ClusterResourceNamespace, d.Status.Target, "dnssec-forged-"+time.Now().Format("150405.000"))
	if err := c.Create(ctx, probe); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "bogus answer (SERVFAIL) with another key's DS", func() (bool, string) {
		r, err := askResolver("_acme-challenge.example.com.", dns.TypeTXT, false)
		if err != nil {
			return false, err.Error()
		}
		return r.Rcode == dns.RcodeServerFailure, r.String()
	})
	if r, err := askResolver("_acme-challenge.example.com.", dns.TypeTXT, true); err != nil || r.AuthenticatedData || !stack.HasTXT(r, probe.Spec.Value) {
		t.Errorf("with checking disabled: %v %v, want the value, not validated", r, err)
	}
	recheck(t, c, &d)
	eventually(t, 2*time.Minute, "Delegation not Verified: the DS does not match", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(&d), &d); err != nil {
			return false, err.Error()
		}
		v := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
		return v != nil && v.Status == metav1.ConditionFalse && strings.Contains(v.Reason, "DS"), condString(v)
	})
}

// delegated creates namespace shop, a ClusterIssuer at Pebble solving with acmezone's webhook,
// and the Delegation of example.com in cert-manager's namespace (where a ClusterIssuer's
// challenges are solved); adds the CNAME at the provider and waits until the Delegation is
// Verified.
func delegated(t *testing.T, s *stack.Stack) (*cmapi.ClusterIssuer, v1alpha1.Delegation) {
	t.Helper()
	ctx := context.Background()
	c := s.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	ci := s.ClusterIssuer("acmezone", stack.AcmezoneSolver())
	if err := c.Create(ctx, ci); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: stack.ClusterResourceNamespace, Name: "example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}); err != nil {
		t.Fatal(err)
	}
	d := stack.WaitDelegation(t, c, stack.ClusterResourceNamespace, "example.com")
	if err := s.Provider.AddRecord("_acme-challenge IN CNAME " + d.Status.Target); err != nil {
		t.Fatal(err)
	}
	stack.RecheckVerified(t, c, &d, "Delegation verified")
	issuerReady(t, c, ci)
	return ci, d
}

// wildcardOnly issues a certificate for *.example.com alone (one DNS-01 challenge, so one of
// cert-manager's 60-s waits rather than two) in namespace shop and waits until it is Ready.
func wildcardOnly(t *testing.T, s *stack.Stack, ci *cmapi.ClusterIssuer, name string) *cmapi.Certificate {
	t.Helper()
	ctx := context.Background()
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: cmapi.CertificateSpec{
			SecretName: name + "-tls",
			DNSNames:   []string{"*.example.com"},
			IssuerRef:  cmmeta.IssuerReference{Name: ci.Name, Kind: cmapi.ClusterIssuerKind},
		},
	}
	if err := s.Client.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	eventually(t, 6*time.Minute, "Certificate "+name+" Ready", func() (bool, string) {
		if err := s.Client.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return false, err.Error()
		}
		return ready(crt.Status.Conditions)
	})
	return crt
}

// askResolver asks the stack's resolver over TCP with the DO bit (and CD when cd).
func askResolver(name string, qtype uint16, cd bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, true)
	m.AuthenticatedData = true
	m.CheckingDisabled = cd
	cl := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
	r, _, err := cl.Exchange(m, stack.ResolverIP+":53")
	return r, err
}

// recheck asks for d's recheck now.
func recheck(t *testing.T, c client.Client, d *v1alpha1.Delegation) {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(d), d); err != nil {
		t.Fatal(err)
	}
	d.Annotations = map[string]string{"acmezone.io/recheck": time.Now().Format(time.RFC3339Nano)}
	if err := c.Update(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

func condString(c *metav1.Condition) string {
	if c == nil {
		return "no condition"
	}
	return string(c.Status) + " " + c.Reason + ": " + c.Message
}
