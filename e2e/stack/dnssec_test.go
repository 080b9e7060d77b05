// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// TestResolverValidatesChain is issue 14's chain of trust with real parts and no certificate:
// the provider signs example.com and publishes acme.example.com's DS, acmezone's CoreDNS signs
// the challenge zone with the dnssec plugin, and unbound, whose only trust anchor is
// example.com's key, validates the TXT answer through the user's CNAME: the AD bit is set. A
// DS that does not match acmezone's key (a forged or stale delegation) makes the same
// question SERVFAIL, while with checking disabled (CD) the data is still there: it is
// validation, not the data, that fails. `make e2e`'s TestDNSSEC issues a certificate through
// the same chain.
func TestResolverValidatesChain(t *testing.T) {
	unbound, err := exec.LookPath("unbound")
	if err != nil {
		t.Fatal("unbound is not installed: apt-get install unbound (.ci/run does)")
	}
	d := newDNSTest(t)
	ctx, dir := d.ctx, d.dir
	parentKey, err := GenerateSigningKey(dir, "example.com.")
	if err != nil {
		t.Fatal(err)
	}
	zoneKey, err := GenerateSigningKey(dir, "acme.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := GenerateSigningKey(t.TempDir(), "acme.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	d.track(StartAcmezoneWith(ctx, dir, d.coredns, d.kubeconfig, d.keyFile, AcmezoneConfig{Plugins: []string{zoneKey.Corefile()}}))
	target := d.delegate()
	provider, err := StartProviderWith(ctx, dir, d.coredns, ProviderConfig{
		Listen:  ProviderIP + ":53",
		Key:     parentKey,
		Records: []string{zoneKey.DSLine(), "_acme-challenge IN CNAME " + target},
	})
	if err != nil {
		t.Fatal(err)
	}
	d.track(provider.Process, nil)
	d.track(StartResolverAt(ctx, dir, unbound, Resolver{
		Listen: ResolverIP + ":53", Allow: "127.0.0.0/8", Provider: ProviderIP + ":53",
		TrustAnchor: parentKey.TrustAnchor(),
	}))

	key := "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	if err := d.c.Create(ctx, v1alpha1.NewChallengeRecord("shop", target, key)); err != nil {
		t.Fatal(err)
	}

	ask := func(name string, cd bool) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeTXT)
		m.SetEdns0(1232, true)
		m.AuthenticatedData = true
		m.CheckingDisabled = cd
		cl := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
		r, _, err := cl.Exchange(m, ResolverIP+":53")
		return r, err
	}
	// Validated, through the CNAME: AD set, the value there.
	r := waitValidated(t, ask, "_acme-challenge.example.com.", key)
	if !slices.ContainsFunc(r.Answer, func(rr dns.RR) bool { _, ok := rr.(*dns.CNAME); return ok }) {
		t.Errorf("the validated answer has no CNAME: %v", r)
	}
	// A name that does not exist in the signed challenge zone still validates: NOERROR with
	// the dnssec plugin's NSEC ("black lies"), secure.
	other := "missing-" + target
	nx, err := ask(other, false)
	if err != nil || nx.Rcode != dns.RcodeSuccess || !nx.AuthenticatedData || len(nx.Answer) != 0 {
		t.Errorf("TXT %s (does not exist): %v %v, want a validated NOERROR without answers", other, nx, err)
	}

	// The DS at the provider no longer matches acmezone's key: the challenge answer is bogus.
	if err := provider.RemoveRecord(zoneKey.DSLine()); err != nil {
		t.Fatal(err)
	}
	if err := provider.AddRecord(otherKey.DSLine()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := ask("_acme-challenge.example.com.", false)
		if err == nil && r.Rcode == dns.RcodeServerFailure {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with a DS of another key: %v %v, want SERVFAIL (validation failed)", r, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r, err := ask("_acme-challenge.example.com.", true); err != nil || r.Rcode != dns.RcodeSuccess || r.AuthenticatedData || !HasTXT(r, key) {
		t.Errorf("with checking disabled: %v %v, want the value, not validated", r, err)
	}
}

// waitValidated waits until the resolver answers TXT name with value and the AD bit.
func waitValidated(t *testing.T, ask func(string, bool) (*dns.Msg, error), name, value string) *dns.Msg {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := ask(name, false)
		if err == nil && r.AuthenticatedData && HasTXT(r, value) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("TXT %s through the validating resolver: %v %v, want %q with the AD bit", name, r, err, value)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
