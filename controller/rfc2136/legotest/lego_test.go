// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package legotest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/providers/dns/dnsupdate"
	"github.com/go-logr/logr/testr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/rfc2136"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/kubetest"
	"github.com/acmezone/acmezone/internal/legotest"
)

const (
	zone      = legotest.Zone
	namespace = "team-a"
	keySecret = "lego-tsig" // the TSIG key's Secret: key name lego-tsig.team-a.
	domain    = legotest.Domain
)

// TestLegoDNSUpdate runs lego's dnsupdate (RFC 2136) DNS provider, as a library, against the
// UPDATE listener of package rfc2136, acmezone's CoreDNS and Pebble, as a user of lego (or of
// Traefik or Caddy) would: the namespace's owner made a TSIG key Secret and a Delegation for
// example.com, and added the Delegation's CNAME at the DNS provider. lego follows
// _acme-challenge.example.com's CNAME to the target, finds the zone by asking the listener for
// its SOA, and writes and deletes the values there by signed UPDATEs. A first attempt with a
// wrong TSIG secret writes nothing; the second gets a certificate for example.com and
// *.example.com, and every value is gone once lego has cleaned up.
//
// Everything is real and on 127.0.0.1: kube-apiserver and etcd; the listener in a
// controller-runtime manager as acmezone-controller runs it; bin/coredns, one process serving
// acme.example.com with the acmezone plugin and example.com, the "DNS provider's" zone, with
// the file plugin; bin/pebble, validating through that CoreDNS.
func TestLegoDNSUpdate(t *testing.T) {
	ctx, s := legotest.Start(t, filepath.Join("..", "..", ".."), namespace)
	env := s.Env

	// The target key, shared by the listener and CoreDNS as by the controller and CoreDNS.
	opts := &controller.Options{
		Zone:        zone,
		NameServers: []controller.NameServer{{Name: "ns.example.com."}},
		TargetKey:   s.TargetKey,
	}

	// What the namespace's owner creates: the TSIG key, as the README's one command does (no
	// algorithm: hmac-sha256), and the Delegation, whose target the tenancy rule gives.
	material := make([]byte, 32)
	_, _ = rand.Read(material)
	secret := base64.StdEncoding.EncodeToString(material)
	if err := env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: keySecret},
		Type:       rfc2136.KeySecretType,
		Data:       map[string][]byte{rfc2136.SecretKey: []byte(secret)},
	}); err != nil {
		t.Fatal(err)
	}
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: domain},
		Spec:       v1alpha1.DelegationSpec{Domain: domain},
	}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	target, err := opts.Target(d)
	if err != nil {
		t.Fatal(err)
	}

	updateAddr := startListener(ctx, t, env.Config, opts)

	// acmezone's CoreDNS, also playing the user's DNS provider for example.com, which holds
	// the Delegation's CNAME.
	coredns := s.StartCoreDNS(ctx, t, "_acme-challenge IN CNAME "+target, 0)
	dnsAddr := coredns.Addr

	// Pebble, asking that CoreDNS (over TCP: Pebble's custom resolver only speaks TCP).
	pebble := s.StartPebble(ctx, t, dnsAddr)

	// lego, asking our CoreDNS.
	legoClient := legotest.NewClient(ctx, t, pebble, dnsAddr)

	// One attempt is one `lego run --dns rfc2136` with the key's name and the given secret.
	obtain := func(secret string) (*watchedProvider, *certificate.Resource, error) {
		c := dnsupdate.NewDefaultConfig()
		c.Nameserver = updateAddr
		c.TSIGKey = rfc2136.KeyName(namespace, keySecret)
		c.TSIGSecret = secret
		c.TSIGAlgorithm = dns.HmacSHA256 // lego's default is hmac-sha1
		c.DNSTimeout = 5 * time.Second
		c.PropagationTimeout = time.Minute
		c.PollingInterval = 500 * time.Millisecond
		c.SequenceInterval = time.Second // lego solves RFC 2136 challenges one by one
		p, err := dnsupdate.NewDNSProviderConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		w := &watchedProvider{DNSProvider: p, t: t, c: env.Client, target: target}
		// The authoritative check is off: lego asks the zone's NS names on port 53 (fixed,
		// unexported) and resolves those names with the system resolver, which would leave the
		// loopback set-up. The recursive check stays on, and the "recursive" server it asks is
		// our CoreDNS, itself authoritative for both zones: it follows the CNAME and finds the
		// value at the target, which is what the authoritative check would have verified.
		if err := legoClient.Challenge.SetDNS01Provider(w, dns01.DisableAuthoritativeNssPropagationRequirement()); err != nil {
			t.Fatal(err)
		}
		res, err := legoClient.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{domain, "*." + domain}, KeyType: certcrypto.EC256, Bundle: true})
		return w, res, err
	}

	// First attempt: the key's name with another secret. The listener answers NOTAUTH (BADSIG),
	// lego's Present fails, and nothing is written.
	wrong := make([]byte, 32)
	_, _ = rand.Read(wrong)
	w, res, err := obtain(base64.StdEncoding.EncodeToString(wrong))
	if err == nil {
		t.Fatalf("an attempt with a wrong TSIG secret obtained a certificate for %v", res.Domains)
	}
	t.Logf("attempt with a wrong secret: %v", err)
	if !strings.Contains(err.Error(), "dnsupdate: failed to insert") {
		t.Errorf("attempt with a wrong secret: %v; want lego's dnsupdate Present to fail", err)
	}
	if len(w.presented) != 0 {
		t.Errorf("attempt with a wrong secret: Present succeeded for %q", w.presented)
	}
	if recs := records(ctx, t, env.Client); len(recs) != 0 {
		t.Errorf("attempt with a wrong secret wrote ChallengeRecords: %v", recs)
	}

	// Second attempt: the key's secret. lego presents, checks, has Pebble validate and cleans up
	// each name in turn (watchedProvider checks the store after each UPDATE).
	w, res, err = obtain(secret)
	if err != nil {
		t.Fatalf("attempt with the key's secret: %v\nCoreDNS:\n%s\nPebble:\n%s", err, coredns.Tail(40), pebble.Tail(40))
	}
	legotest.CheckCertificate(t, res, pebble.Root(ctx, t))
	w.mu.Lock()
	presented, cleaned := slices.Clone(w.presented), slices.Clone(w.cleaned)
	w.mu.Unlock()
	if len(presented) != 2 || presented[0] == presented[1] {
		t.Errorf("lego presented %q, want two values (example.com and *.example.com)", presented)
	}
	slices.Sort(presented)
	slices.Sort(cleaned)
	if !slices.Equal(presented, cleaned) {
		t.Errorf("lego presented %q but cleaned up %q", presented, cleaned)
	}
	if recs := records(ctx, t, env.Client); len(recs) != 0 {
		t.Errorf("ChallengeRecords left after lego's CleanUp: %v", recs)
	}
	// acmezone's CoreDNS stops answering them (it learns of deletions by watch).
	deadline := time.Now().Add(15 * time.Second)
	for {
		vals, err := stack.TXT(dnsAddr, target, "tcp")
		if err == nil && len(vals) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acmezone's CoreDNS still answers %s TXT %q (%v) after lego's CleanUp", target, vals, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchedProvider is lego's dnsupdate provider (its Timeout and Sequential too), checking the
// API server after each of its UPDATEs: after Present, the one ChallengeRecord at the target is
// the value just presented (lego deletes the TXT RRset before it adds), in the key's namespace
// with the key's label; after CleanUp, no ChallengeRecord holds that value.
type watchedProvider struct {
	*dnsupdate.DNSProvider
	t      *testing.T
	c      client.Client
	target string

	mu        sync.Mutex
	presented []string
	cleaned   []string
}

func (p *watchedProvider) Present(ctx context.Context, domain, token, keyAuth string) error {
	if err := p.DNSProvider.Present(ctx, domain, token, keyAuth); err != nil {
		return err
	}
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	if info.EffectiveFQDN != p.target {
		p.t.Errorf("lego wrote %s's value at %s, want the target %s (the CNAME followed)", domain, info.EffectiveFQDN, p.target)
	}
	recs := records(ctx, p.t, p.c)
	if len(recs) != 1 || recs[0].Namespace != namespace || v1alpha1.CanonicalName(recs[0].Spec.FQDN) != p.target || recs[0].Spec.Value != info.Value ||
		recs[0].Labels[rfc2136.KeyLabel] != keySecret {
		p.t.Errorf("after Present of %s (%s): ChallengeRecords %v; want one in %s at %s with %q, label %s=%s",
			domain, info.Value, recs, namespace, p.target, info.Value, rfc2136.KeyLabel, keySecret)
	}
	p.mu.Lock()
	p.presented = append(p.presented, info.Value)
	p.mu.Unlock()
	return nil
}

func (p *watchedProvider) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	if err := p.DNSProvider.CleanUp(ctx, domain, token, keyAuth); err != nil {
		return err
	}
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	for _, r := range records(ctx, p.t, p.c) {
		if r.Spec.Value == info.Value {
			p.t.Errorf("after CleanUp of %s: ChallengeRecord %s/%s still holds %s", domain, r.Namespace, r.Name, info.Value)
		}
	}
	p.mu.Lock()
	p.cleaned = append(p.cleaned, info.Value)
	p.mu.Unlock()
	return nil
}

// records returns every ChallengeRecord the API server holds, in every namespace.
func records(ctx context.Context, t *testing.T, c client.Client) []v1alpha1.ChallengeRecord {
	t.Helper()
	var list v1alpha1.ChallengeRecordList
	if err := c.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// startListener runs the RFC 2136 listener as acmezone-controller's --rfc2136-listen does (a
// manager with the Delegation indexes and the cache of TSIG key Secrets) on a free 127.0.0.1
// port, the same for UDP and TCP, and returns that address once it is bound.
func startListener(ctx context.Context, t *testing.T, cfg *rest.Config, opts *controller.Options) string {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: kubetest.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := opts.IndexDelegations(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	keys, err := rfc2136.NewKeyCache(mgr)
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(keys); err != nil {
		t.Fatal(err)
	}
	addr := legotest.FreeAddr(t, true)
	srv, err := rfc2136.New(rfc2136.Config{
		Options: opts, Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Secrets: keys,
		Addr: addr, Log: testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(srv); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if _, err := srv.Addrs(wctx); err != nil {
		t.Fatalf("the RFC 2136 listener is not bound on %s: %v", addr, err)
	}
	return addr
}
