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
	coredns := filepath.Join(root, "bin", "coredns")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	env := kubetest.Start(t, []string{filepath.Join(root, "deploy", "crds")}, "shop")
	dir, kubeconfig, c := t.TempDir(), env.Kubeconfig, env.Client

	var procs []*Process
	defer func() {
		for _, p := range procs {
			p.Stop()
			if t.Failed() {
				t.Logf("%s log:\n%s", p.Name, tail(p.Logs(), 60))
			}
		}
	}()
	keyFile, targetKey, err := WriteTargetKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	az, err := StartAcmezone(ctx, dir, coredns, kubeconfig, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	procs = append(procs, az)
	provider, err := StartProvider(ctx, dir, coredns)
	if err != nil {
		t.Fatal(err)
	}
	procs = append(procs, provider.Process)
	resolver, err := StartResolver(ctx, dir, unbound)
	if err != nil {
		t.Fatal(err)
	}
	procs = append(procs, resolver)

	target, err := targetKey.Target(v1alpha1.TargetClaim{Namespace: "shop", Domain: "example.com"}, "acme.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}); err != nil {
		t.Fatal(err)
	}
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
