// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

var root = filepath.Join("..", "..")

// TestResolverFollowsDelegation checks the DNS half of the seed's flow with real parts: unbound
// knows only the provider, the provider delegates acme.example.com to acmezone, and the user's
// CNAME leads the resolver to the TXT value acmezone serves from the API server.
func TestResolverFollowsDelegation(t *testing.T) {
	unbound, err := exec.LookPath("unbound")
	if err != nil {
		t.Fatal("unbound is not installed: apt-get install unbound (.ci/run does)")
	}
	d := newDNSTest(t)
	ctx, c := d.ctx, d.c
	d.track(StartAcmezone(ctx, d.dir, d.coredns, d.kubeconfig, d.keyFile))
	provider, err := StartProvider(ctx, d.dir, d.coredns)
	if err != nil {
		t.Fatal(err)
	}
	d.track(provider.Process, nil)
	d.track(StartResolver(ctx, d.dir, unbound))
	target := d.delegate()
	key := "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	if err := c.Create(ctx, v1alpha1.NewChallengeRecord("shop", target, key)); err != nil {
		t.Fatal(err)
	}

	ask := func(name string) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeTXT)
		cl := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
		r, _, err := cl.Exchange(m, ResolverIP+":53")
		return r, err
	}
	// Before the CNAME exists: the challenge name does not exist at the provider.
	if r, err := ask("_acme-challenge.example.com."); err != nil || r.Rcode != dns.RcodeNameError {
		t.Fatalf("before the CNAME: %v %v, want NXDOMAIN", r, err)
	}
	// The target is reachable through the NS delegation alone.
	waitTXT(t, ask, target, key)

	if err := provider.AddRecord("_acme-challenge IN CNAME " + target); err != nil {
		t.Fatal(err)
	}
	waitTXT(t, ask, "_acme-challenge.example.com.", key)
}

func waitTXT(t *testing.T, ask func(string) (*dns.Msg, error), name, value string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := ask(name)
		if err == nil {
			for _, rr := range r.Answer {
				if txt, ok := rr.(*dns.TXT); ok && slices.Contains(txt.Txt, value) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("TXT %s through the resolver: %v %v, want %q", name, r, err, value)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// dnsTest is what the DNS tests share: a real API server with the CRDs and namespace shop, a
// directory with the target key, bin/coredns, and the processes started, stopped when the test
// ends (their logs printed when it failed).
type dnsTest struct {
	t                                 *testing.T
	ctx                               context.Context
	c                                 client.Client
	dir, kubeconfig, keyFile, coredns string
	key                               v1alpha1.TargetKey
}

func newDNSTest(t *testing.T) *dnsTest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	env := kubetest.Start(t, []string{filepath.Join(root, "deploy", "crds")}, "shop")
	d := &dnsTest{t: t, ctx: ctx, c: env.Client, dir: t.TempDir(), kubeconfig: env.Kubeconfig, coredns: filepath.Join(root, "bin", "coredns")}
	var err error
	if d.keyFile, d.key, err = WriteTargetKey(d.dir); err != nil {
		t.Fatal(err)
	}
	return d
}

// track fails the test when a process did not start, and stops it when the test ends.
func (d *dnsTest) track(p *Process, err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		p.Stop()
		if d.t.Failed() {
			d.t.Logf("%s log:\n%s", p.Name, tail(p.Logs(), 60))
		}
	})
}

// delegate creates shop's Delegation of example.com and returns its target.
func (d *dnsTest) delegate() string {
	d.t.Helper()
	target, err := d.key.Target(v1alpha1.TargetClaim{Namespace: "shop", Domain: "example.com"}, "acme.example.com.")
	if err != nil {
		d.t.Fatal(err)
	}
	if err := d.c.Create(d.ctx, &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}); err != nil {
		d.t.Fatal(err)
	}
	return target
}
