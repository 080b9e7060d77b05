// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package legotest

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	legoacmedns "github.com/go-acme/lego/v5/providers/dns/acmedns"
	"github.com/go-logr/logr/testr"
	"github.com/miekg/dns"
	"github.com/nrdcg/goacmedns/storage"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/acmedns"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/legotest"
)

const (
	zone      = legotest.Zone
	namespace = "acme-dns"
	domain    = legotest.Domain
	// challengeName is where lego and Pebble look for domain's challenge.
	challengeName = "_acme-challenge.example.com."
)

// TestLegoACMEDNS runs lego's acmedns DNS provider, as a library, against acmezone's acme-dns
// API, acmezone's CoreDNS and Pebble, as a user of acme-dns would run `lego run` twice:
// the first attempt registers an account and stops, asking for the CNAME; once the CNAME is in
// the zone, the second attempt gets a certificate for example.com and *.example.com.
//
// Everything is real and on 127.0.0.1: kube-apiserver and etcd; the acme-dns API (package
// acmedns, the handler acmezone-controller serves) on an httptest server; bin/coredns, one
// process serving acme.example.com with the acmezone plugin and example.com, the "DNS
// provider's" zone, with the file plugin; bin/pebble, validating through that CoreDNS.
func TestLegoACMEDNS(t *testing.T) {
	ctx, s := legotest.Start(t, filepath.Join("..", "..", ".."), namespace)
	env := s.Env

	// The acme-dns API on top of the API server with open registration. The target key is
	// shared by the acme-dns API and CoreDNS as by the controller and CoreDNS.
	api, err := acmedns.New(acmedns.Config{Client: env.Client, Log: testr.New(t)}, acmedns.Options{
		Zone:         zone,
		Namespace:    namespace,
		TargetKey:    s.TargetKey,
		Registration: acmedns.Registration{Open: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	apiServer := httptest.NewServer(api)
	t.Cleanup(apiServer.Close)

	// acmezone's CoreDNS, also playing the user's DNS provider for example.com.
	coredns := s.StartCoreDNS(ctx, t, "", 200*time.Millisecond)
	dnsAddr := coredns.Addr

	// Pebble, asking that CoreDNS (over TCP: Pebble's custom resolver only speaks TCP).
	pebble := s.StartPebble(ctx, t, dnsAddr)

	// lego, asking our CoreDNS.
	legoClient := legotest.NewClient(ctx, t, pebble, dnsAddr)

	// One attempt is one `lego run`: a fresh provider over the same account storage file.
	accounts := filepath.Join(s.Dir, "lego-acme-dns-accounts.json")
	names := []string{domain, "*." + domain}
	obtain := func(propagationTimeout time.Duration) (*certificate.Resource, error) {
		p, err := legoacmedns.NewDNSProviderConfig(&legoacmedns.Config{APIBase: apiServer.URL, StoragePath: accounts})
		if err != nil {
			t.Fatal(err)
		}
		// The authoritative check is off: lego asks the zone's NS names on port 53 (fixed,
		// unexported) and resolves those names with the system resolver, which would leave the
		// loopback set-up. The recursive check stays on, and the "recursive" server it asks is
		// our CoreDNS, itself authoritative for both zones: it follows the CNAME and finds the
		// value at the target, which is what the authoritative check would have verified.
		if err := legoClient.Challenge.SetDNS01Provider(timeoutProvider{p, propagationTimeout}, dns01.DisableAuthoritativeNssPropagationRequirement()); err != nil {
			t.Fatal(err)
		}
		return legoClient.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: names, KeyType: certcrypto.EC256, Bundle: true})
	}

	// First attempt: lego registers an account through /register and stops with the CNAME to
	// add. Its propagation check cannot pass without that CNAME, so it gets a few seconds
	// instead of lego's default minute.
	res, err := obtain(3 * time.Second)
	if err == nil {
		t.Fatalf("first attempt obtained a certificate for %v although no CNAME exists", res.Domains)
	}
	t.Logf("first attempt: %v", err)
	cnameErr := checkFirstAttempt(t, err, dnsAddr)
	acct, err := storage.NewFile(accounts, 0o600).Fetch(ctx, domain)
	if err != nil {
		t.Fatalf("lego stored no acme-dns account for %s: %v", domain, err)
	}
	target := acct.SubDomain + "." + zone
	if acct.FullDomain+"." != target || acct.ServerURL != apiServer.URL {
		t.Errorf("stored account: fulldomain %q server %q, want %q at %q", acct.FullDomain, acct.ServerURL, target, apiServer.URL)
	}
	if cnameErr.Target != acct.FullDomain {
		t.Errorf("lego asked for a CNAME to %q, but the account it stored has %q", cnameErr.Target, acct.FullDomain)
	}
	checkAccount(ctx, t, env.Client, s.TargetKey, acct.Username, target, 1)
	if n := pebbleQueries(coredns.Process); n != 0 {
		t.Errorf("Pebble asked CoreDNS %d times in the first attempt; lego must not have asked it to validate", n)
	}

	// The user adds the record that the first attempt asked for; the provider reloads it.
	coredns.Zone.Write(t, "_acme-challenge IN CNAME "+target)
	waitCNAME(ctx, t, dnsAddr, target)

	// Second attempt: the stored account is used, /update writes both values, Pebble checks
	// them through the CNAME and issues.
	res, err = obtain(time.Minute)
	if err != nil {
		t.Fatalf("second attempt: %v\nCoreDNS:\n%s\nPebble:\n%s", err, coredns.Tail(40), pebble.Tail(40))
	}
	legotest.CheckCertificate(t, res, pebble.Root(ctx, t))
	values := checkAccount(ctx, t, env.Client, s.TargetKey, acct.Username, target, 3)
	if n := pebbleQueries(coredns.Process); n < 2 {
		t.Errorf("Pebble asked CoreDNS for %s TXT over TCP %d times, want one per authorization (2):\n%s", challengeName, n, coredns.Tail(40))
	}
	// What a resolver sees now: the CNAME, then every value of the account at the target.
	m := new(dns.Msg)
	m.SetQuestion(challengeName, dns.TypeTXT)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).ExchangeContext(ctx, m, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	var gotCNAME string
	var gotTXT []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.CNAME:
			gotCNAME = rr.Target
		case *dns.TXT:
			if rr.Hdr.Name != target {
				t.Errorf("TXT at %s, want %s", rr.Hdr.Name, target)
			}
			gotTXT = append(gotTXT, strings.Join(rr.Txt, ""))
		}
	}
	slices.Sort(gotTXT)
	if r.Rcode != dns.RcodeSuccess || gotCNAME != target || !slices.Equal(gotTXT, values) {
		t.Errorf("%s TXT: %s, CNAME %q, TXT %q; want NOERROR, CNAME %q, TXT %q", challengeName, dns.RcodeToString[r.Rcode], gotCNAME, gotTXT, target, values)
	}
}

// checkFirstAttempt checks the error of the first attempt: one name stopped at lego's
// ErrCNAMERequired with the record to add, the other at lego's propagation check, which asked
// our CoreDNS and found no CNAME yet.
func checkFirstAttempt(t *testing.T, err error, dnsAddr string) legoacmedns.ErrCNAMERequired {
	t.Helper()
	var e legoacmedns.ErrCNAMERequired
	if !errors.As(err, &e) {
		t.Fatalf("first attempt: %v; want lego's acmedns.ErrCNAMERequired", err)
	}
	if e.Domain != domain || e.FQDN != challengeName || !strings.HasSuffix(e.Target, "."+strings.TrimSuffix(zone, ".")) {
		t.Errorf("ErrCNAMERequired %+v, want domain %s, FQDN %s and a target in %s", e, domain, challengeName, zone)
	}
	if record := challengeName + " CNAME " + e.Target + "."; !strings.Contains(err.Error(), record) {
		t.Errorf("first attempt's message does not name the record %q:\n%v", record, err)
	}
	if check := "NS " + dnsAddr + " returned NXDOMAIN for " + challengeName; !strings.Contains(err.Error(), check) {
		t.Errorf("first attempt's message does not show the propagation check %q:\n%v", check, err)
	}
	return e
}

// checkAccount checks what the API server holds for the acme-dns account username: one
// Delegation (and its Secret) whose target is target by the tenancy rule (spec.target and its
// proof: no Delegation reconciler runs here to write the status), and want ChallengeRecords,
// all at target. It returns the records' values, sorted.
func checkAccount(ctx context.Context, t *testing.T, c client.Client, key v1alpha1.TargetKey, username, target string, want int) []string {
	t.Helper()
	var dels v1alpha1.DelegationList
	if err := c.List(ctx, &dels, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	if len(dels.Items) != 1 {
		t.Fatalf("%d Delegations in %s, want the account's one", len(dels.Items), namespace)
	}
	d := dels.Items[0]
	if d.Name != acmedns.AccountName(username) || d.Labels[v1alpha1.ACMEDNSAccountLabel] != username ||
		d.Spec.Domain != strings.TrimSuffix(target, ".") || d.Spec.Target != target {
		t.Errorf("Delegation %s labels %v spec %+v; want the account %s with target %s", d.Name, d.Labels, d.Spec, username, target)
	}
	if got, err := key.Target(v1alpha1.ClaimOf(&d), zone); err != nil || got != target {
		t.Errorf("Delegation %s has target %q (%v) by the tenancy rule, want %s", d.Name, got, err, target)
	}
	var sec corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: acmedns.AccountName(username)}, &sec); err != nil {
		t.Errorf("the account's Secret: %v", err)
	}
	var recs v1alpha1.ChallengeRecordList
	if err := c.List(ctx, &recs, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, r := range recs.Items {
		if r.Spec.FQDN != target || r.Labels[v1alpha1.ACMEDNSAccountLabel] != username || len(r.Spec.Value) != 43 {
			t.Errorf("ChallengeRecord %s: fqdn %s value %q labels %v; want a 43-character value at %s for %s", r.Name, r.Spec.FQDN, r.Spec.Value, r.Labels, target, username)
		}
		values = append(values, r.Spec.Value)
	}
	slices.Sort(values)
	if len(slices.Compact(slices.Clone(values))) != want {
		t.Errorf("ChallengeRecords hold %d distinct values %q, want %d", len(values), values, want)
	}
	return values
}

// pebbleQueries counts the TXT questions for the challenge name that CoreDNS logged over TCP:
// Pebble's (lego asks over UDP).
func pebbleQueries(coredns *stack.Process) int {
	return len(regexp.MustCompile(`(?i)"TXT IN _acme-challenge\.example\.com\. tcp `).FindAllString(coredns.Logs(), -1))
}

// waitCNAME waits until CoreDNS serves the user's new CNAME to target.
func waitCNAME(ctx context.Context, t *testing.T, addr, target string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(challengeName, dns.TypeCNAME)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, _, err := (&dns.Client{Timeout: time.Second}).ExchangeContext(ctx, m, addr)
		if err == nil && len(r.Answer) == 1 {
			if c, ok := r.Answer[0].(*dns.CNAME); ok && c.Target == target {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file plugin does not serve %s CNAME %s after a reload: %v %v", challengeName, target, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// timeoutProvider gives lego's acmedns provider a propagation timeout (lego's
// challenge.ProviderTimeout); the provider has none of its own, so lego waits a minute.
type timeoutProvider struct {
	*legoacmedns.DNSProvider
	timeout time.Duration
}

func (p timeoutProvider) Timeout() (timeout, interval time.Duration) {
	return p.timeout, 500 * time.Millisecond
}
