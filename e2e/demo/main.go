// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Command demo walks through the seed's story on this machine with real parts: a user asks for
// a wildcard certificate, acmezone tells them which records to add at their DNS provider, they
// add the CNAME, and cert-manager gets the certificate from Pebble through acmezone's CoreDNS.
// `make demo` builds what it needs and runs it; KEEP=1 leaves the stack running.
package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records"
	"github.com/acmezone/acmezone/e2e/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func section(title string) { say("\n== %s ==", title) }

// poll calls fn every interval until it returns true, an error, or ctx ends.
func poll(ctx context.Context, what string, fn func() (bool, error)) error {
	for {
		ok, err := fn()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	keep := os.Getenv("KEEP") == "1"
	dir, err := os.MkdirTemp("", "acmezone-demo-")
	if err != nil {
		return err
	}
	root, _ := os.Getwd()

	section("Starting the stack on loopback (logs in " + dir + ")")
	// Signed, as a careful user's zone is: the provider signs example.com, acmezone's CoreDNS
	// the challenge zone, and the public resolver (unbound) validates.
	s, err := stack.UpWith(ctx, root, dir, func(f string, a ...any) { say("  started "+f, a...) }, stack.Options{DNSSEC: true})
	if err != nil {
		return err
	}
	if !keep {
		defer s.Down()
	}
	c := s.Client

	section("The user asks cert-manager for a certificate for example.com and *.example.com")
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		return err
	}
	ci := s.ClusterIssuer("acmezone", stack.AcmezoneSolver())
	if err := c.Create(ctx, ci); err != nil {
		return err
	}
	crt := stack.WildcardCertificate(ci)
	if err := c.Create(ctx, crt); err != nil {
		return err
	}
	say("  ClusterIssuer %q (ACME at Pebble, DNS-01 solver: acmezone), Certificate shop/wildcard", ci.Name)

	section("acmezone generates a unique address to answer the DNS challenge")
	var d v1alpha1.Delegation
	if err := poll(ctx, "the Delegation's target", func() (bool, error) {
		var list v1alpha1.DelegationList
		if err := c.List(ctx, &list, client.InNamespace(stack.ClusterResourceNamespace)); err != nil {
			return false, err
		}
		for _, item := range list.Items {
			if item.Spec.Domain == "example.com" && item.Status.Target != "" {
				d = item
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	target := d.Status.Target
	say("  Delegation %s/%s: target %s", d.Namespace, d.Name, strings.TrimSuffix(target, "."))
	if err := poll(ctx, "the warning", func() (bool, error) {
		var chs cmacme.ChallengeList
		if err := c.List(ctx, &chs, client.InNamespace("shop")); err != nil {
			return false, err
		}
		for i := range chs.Items {
			notes, _ := s.Events(ctx, &chs.Items[i])
			for _, n := range notes {
				if strings.Contains(n, "please add a CNAME") {
					say("  Warning on Challenge %s:\n    %s", chs.Items[i].Name, n)
					return true, nil
				}
			}
		}
		return false, nil
	}); err != nil {
		return err
	}

	ns, err := controller.ParseNameServer("ns.example.com=" + stack.AcmezoneIP)
	if err != nil {
		return err
	}
	opts := controller.Options{Zone: "acme.example.com.", NameServers: []controller.NameServer{ns}, Resolvers: []string{stack.ResolverIP + ":53"},
		DS: []*dns.DS{s.ZoneKey.DS()}}
	section("Records to add at the DNS provider, as the public DNS sees them now")
	say("  (the A, NS and DS records were added once, when acmezone was set up)")
	if _, err := records.Run(ctx, os.Stdout, opts, "example.com", target); err != nil {
		return err
	}

	section("The user adds the CNAME at their DNS provider")
	say("  _acme-challenge.example.com  CNAME  %s", strings.TrimSuffix(target, "."))
	if err := s.Provider.AddRecord("_acme-challenge IN CNAME " + target); err != nil {
		return err
	}
	d.Annotations = map[string]string{"acmezone.io/recheck": time.Now().Format(time.RFC3339)}
	if err := c.Update(ctx, &d); err != nil {
		return err
	}
	if err := poll(ctx, "verification", func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(&d), &d); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(d.Status.Conditions, v1alpha1.ConditionVerified), nil
	}); err != nil {
		return err
	}
	say("  Delegation verified:")
	if _, err := records.Run(ctx, os.Stdout, opts, "example.com", target); err != nil {
		return err
	}

	section("cert-manager solves the challenges (it waits 60 s after each passing self-check)")
	start := time.Now()
	seen := map[string]string{}
	if err := poll(ctx, "the certificate", func() (bool, error) {
		var chs cmacme.ChallengeList
		if err := c.List(ctx, &chs, client.InNamespace("shop")); err != nil {
			return false, err
		}
		for _, ch := range chs.Items {
			name := ch.Spec.DNSName
			if ch.Spec.Wildcard {
				name = "*." + name
			}
			state := fmt.Sprintf("%s %s presented=%v %s", ch.Spec.Type, ch.Status.State, ch.Status.Presented, ch.Status.Reason)
			if seen[ch.Name] != state {
				seen[ch.Name] = state
				say("  %5.0fs  challenge %-16s %s", time.Since(start).Seconds(), name, state)
			}
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return false, err
		}
		for _, cond := range crt.Status.Conditions {
			if cond.Type == cmapi.CertificateConditionReady && cond.Status == cmmeta.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}

	section("The certificate")
	var sec corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: crt.Spec.SecretName}, &sec); err != nil {
		return err
	}
	b, _ := pem.Decode(sec.Data[corev1.TLSCertKey])
	if b == nil {
		return fmt.Errorf("secret %s holds no certificate", crt.Spec.SecretName)
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return err
	}
	say("  names:   %s", strings.Join(leaf.DNSNames, ", "))
	say("  issuer:  %s", leaf.Issuer.CommonName)
	say("  expires: %s", leaf.NotAfter.Format(time.RFC1123))
	say("  in:      Secret shop/%s, after %.0fs", crt.Spec.SecretName, time.Since(start).Seconds())
	say("\nKeep the records at your DNS provider: cert-manager renews through the same target.")

	if keep {
		section("The stack keeps running (KEEP=1); Ctrl-C stops it")
		say("  export KUBECONFIG=%s", filepath.Join(dir, "kubeconfig"))
		say("  kubectl get delegations,challengerecords -A")
		say("  dig @%s %s NS +norec", stack.AcmezoneIP, "acme.example.com")
		say("  dig @%s _acme-challenge.example.com TXT +dnssec   # flags: ad (validated)", stack.ResolverIP)
		<-ctx.Done()
		s.Down()
	}
	return nil
}
