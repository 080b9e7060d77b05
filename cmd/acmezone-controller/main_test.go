// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records/recordstest"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// TestRecordsCommand runs `acmezone-controller records` against a local resolver: once with
// the user's records in place, once without the CNAME.
func TestRecordsCommand(t *testing.T) {
	const target = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	dns := recordstest.NewServer(t,
		"ns.example.com. 60 IN A 34.84.45.1",
		"acme.example.com. 60 IN NS ns.example.com.",
		"_acme-challenge.example.com. 60 IN CNAME "+target,
		target+" 60 IN TXT \"key\"",
	)
	run := func() (string, error) {
		var out bytes.Buffer
		cmd := recordsCommand(&flags{})
		cmd.SetArgs([]string{"example.com", "--target", target, "--zone", "acme.example.com",
			"--nameserver", "ns.example.com=34.84.45.1", "--resolver", dns.Addr})
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run()
	if err != nil {
		t.Fatalf("records with every record in place: %v\n%s", err, out)
	}
	for _, want := range []string{"ns.example.com", "34.84.45.1", "acme.example.com", "_acme-challenge.example.com", strings.TrimSuffix(target, ".")} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	dns.Set(t,
		"ns.example.com. 60 IN A 34.84.45.1",
		"acme.example.com. 60 IN NS ns.example.com.",
	)
	out, err = run()
	if err == nil {
		t.Fatalf("records without the CNAME succeeded:\n%s", out)
	}
	if !strings.Contains(out, "has no CNAME") {
		t.Errorf("output does not say the CNAME is missing:\n%s", out)
	}
}

// TestRecordsFromCluster: with only --kubeconfig, `records DOMAIN` takes the target, the zone
// and its name servers from the Delegation's status, as the installation's controller wrote
// them, and checks the dns-persist-01 CNAME of a persistent authorization too (failing when
// it is missing); with no Delegation it says what to pass instead.
func TestRecordsFromCluster(t *testing.T) {
	const (
		target        = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
		persistTarget = "0c2d7a4e-93f1-8b6a-a1c2-3d4e5f607182.acme.example.com."
	)
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds")}, "shop")
	ctx := context.Background()
	persist := &v1alpha1.PersistentAuthorization{IssuerDomainNames: []string{"letsencrypt.org"}, AccountURI: "https://ca.example/acct/1"}
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example-com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com", PersistentAuthorization: persist},
	}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	d.Status.Target = target
	d.Status.PersistTarget = persistTarget
	d.Status.Records = []v1alpha1.DNSRecord{
		{Type: "A", Name: "ns1.zone-host.example", Content: "198.51.100.7"},
		{Type: "AAAA", Name: "ns1.zone-host.example", Content: "2001:db8::7"},
		{Type: "NS", Name: "acme.zone-host.example", Content: "ns1.zone-host.example"},
		{Type: "CNAME", Name: "_acme-challenge.example.com", Content: strings.TrimSuffix(target, ".")},
	}
	renews := metav1.NewTime(time.Date(2027, 1, 30, 8, 0, 0, 0, time.UTC))
	d.Status.Certificates = []v1alpha1.DependentCertificate{{Namespace: "shop", Name: "wildcard", RenewalTime: &renews, AtRisk: true}}
	d.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionServed, Status: metav1.ConditionFalse, Reason: "CNAMEMissing",
		Message: "A test value did not come back.", LastTransitionTime: metav1.Now()}}
	if err := env.Client.Status().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	dns := recordstest.NewServer(t,
		"ns1.zone-host.example. 60 IN A 198.51.100.7",
		"ns1.zone-host.example. 60 IN AAAA 2001:db8::7",
		"acme.zone-host.example. 60 IN NS ns1.zone-host.example.",
		"_acme-challenge.example.com. 60 IN CNAME "+target,
		target+" 60 IN TXT \"key\"",
		"_validation-persist.example.com. 60 IN CNAME "+persistTarget,
		persistTarget+" 60 IN TXT \"letsencrypt.org; accounturi=https://ca.example/acct/1\"",
	)
	run := func(domain string) (string, error) {
		var out bytes.Buffer
		cmd := recordsCommand(&flags{})
		cmd.SetArgs([]string{domain, "--kubeconfig", env.Kubeconfig, "--resolver", dns.Addr})
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	out, err := run("example.com")
	if err != nil {
		t.Fatalf("records from the cluster: %v\n%s", err, out)
	}
	for _, want := range []string{"zone acme.zone-host.example and its name servers from the status of Delegation shop/example-com",
		"ns1.zone-host.example", "198.51.100.7", "2001:db8::7", "acme.zone-host.example", strings.TrimSuffix(target, "."),
		"canary:   Served False (CNAMEMissing): A test value did not come back.",
		"certificates: shop/wildcard renews 2027-01-30T08:00:00Z  AT RISK",
		"dns-persist-01 (spec.persistentAuthorization):", "_validation-persist.example.com", strings.TrimSuffix(persistTarget, ".")} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The same Delegation's persist target elsewhere: the CNAME at the provider is wrong now.
	d.Status.PersistTarget = "1c2d7a4e-93f1-8b6a-a1c2-3d4e5f607182.acme.example.com."
	if err := env.Client.Status().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	if out, err = run("example.com"); err == nil || !strings.Contains(out, "1c2d7a4e-93f1-8b6a-a1c2-3d4e5f607182.acme.example.com") {
		t.Errorf("records with the persist CNAME pointing elsewhere: %v, want a failure naming the persist target\n%s", err, out)
	}
	out, err = run("unknown.example")
	if err == nil || !strings.Contains(err.Error(), "no --zone and --nameserver given, and none from the cluster: no Delegation for unknown.example has a target") {
		t.Errorf("records for a domain without a Delegation: %v, want the reason and what to pass\n%s", err, out)
	}
}

// TestSignTarget: the administrator's proof gives exactly the named namespace and domain the
// existing target, by the same rule the plugin serves by.
func TestSignTarget(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("sign-target-0123456789abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const target = "3f1a0c52-1b2e-4c3d-9e8f-0a1b2c3d4e5f.acme.example.com."
	var out bytes.Buffer
	cmd := signTargetCommand()
	cmd.SetArgs([]string{"--target-key-file", keyFile, "--namespace", "shop", "--domain", "Example.com", "--zone", "acme.example.com", "--target", target})
	cmd.SetOut(&out)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("sign-target: %v\n%s", err, out.String())
	}
	var d v1alpha1.Delegation
	if err := yaml.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatalf("output is not a Delegation: %v\n%s", err, out.String())
	}
	key, err := v1alpha1.LoadTargetKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := key.Target(v1alpha1.ClaimOf(&d), "acme.example.com."); got != target || err != nil || d.Namespace != "shop" {
		t.Errorf("the printed Delegation %s/%s gets target %q (%v), want %q", d.Namespace, d.Name, got, err, target)
	}
	d.Namespace = "blog"
	if _, err := key.Target(v1alpha1.ClaimOf(&d), "acme.example.com."); err == nil {
		t.Error("the proof also works in another namespace")
	}
	cmd = signTargetCommand()
	cmd.SetArgs([]string{"--target-key-file", keyFile, "--namespace", "shop", "--domain", "example.com", "--zone", "acme.example.com", "--target", "_acme-challenge.acme.example.com."})
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if err := cmd.ExecuteContext(context.Background()); err == nil {
		t.Error("sign-target signed a name that is not a target")
	}
}
