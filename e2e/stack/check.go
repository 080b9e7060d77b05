// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// ParseChain parses the certificates of a PEM bundle, in order.
func ParseChain(pemBytes []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for rest := pemBytes; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return chain, nil
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		chain = append(chain, cert)
	}
}

// VerifyIssued checks an issued chain (PEM, leaf first): the leaf names exactly dnsNames and
// chains to rootPEM (Pebble's root). It returns the leaf.
func VerifyIssued(chainPEM, rootPEM []byte, dnsNames ...string) (*x509.Certificate, error) {
	chain, err := ParseChain(chainPEM)
	if err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("no certificate")
	}
	leaf := chain[0]
	if got, want := slices.Sorted(slices.Values(leaf.DNSNames)), slices.Sorted(slices.Values(dnsNames)); !slices.Equal(got, want) {
		return leaf, fmt.Errorf("certificate names %v, want %v", got, want)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host(dnsNames[0])}); err != nil {
		return leaf, fmt.Errorf("the certificate does not chain to Pebble's root: %w", err)
	}
	return leaf, nil
}

// host is a host name that dnsName covers: the name itself, or one under a wildcard.
func host(dnsName string) string {
	if rest, ok := strings.CutPrefix(dnsName, "*."); ok {
		return "www." + rest
	}
	return dnsName
}

// TXT returns the TXT values server (HOST:PORT) answers at name over netw ("udp", "tcp"); an
// error unless it answers NOERROR (NODATA included).
func TXT(server, name, netw string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	r, _, err := (&dns.Client{Net: netw, Timeout: 2 * time.Second}).Exchange(m, server)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("%s TXT: %s", name, dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}

// Leaf returns the first certificate of a PEM bundle, nil when there is none.
func Leaf(pemBytes []byte) *x509.Certificate {
	if chain, err := ParseChain(pemBytes); err == nil && len(chain) > 0 {
		return chain[0]
	}
	return nil
}

// Eventually polls cond every second until it is true, logging how long it took, or fails the
// test after timeout with cond's last state.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	for {
		ok, state := cond()
		if ok {
			t.Logf("%-60s after %5.1fs", what, time.Since(start).Seconds())
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not after %s; last state: %s", what, timeout, state)
		}
		time.Sleep(time.Second)
	}
}

// Ready reports a Certificate's Ready condition, and describes it.
func Ready(conds []cmapi.CertificateCondition) (bool, string) {
	for _, c := range conds {
		if c.Type == cmapi.CertificateConditionReady {
			return c.Status == cmmeta.ConditionTrue, string(c.Status) + " " + c.Reason + ": " + c.Message
		}
	}
	return false, "no Ready condition"
}

// WaitDelegation waits until namespace ns holds a Delegation for domain with a target (the
// Challenge watcher creates it, the reconciler gives it its target) and returns it.
func WaitDelegation(t testing.TB, c client.Client, ns, domain string) v1alpha1.Delegation {
	t.Helper()
	var d v1alpha1.Delegation
	Eventually(t, 2*time.Minute, "Delegation for "+domain+" with a target", func() (bool, string) {
		var list v1alpha1.DelegationList
		if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, item := range list.Items {
			if item.Spec.Domain == domain && item.Status.Target != "" {
				d = item
				return true, ""
			}
		}
		return false, "none yet"
	})
	return d
}

// RecheckVerified asks for d's recheck now rather than at the next backoff step, as a user can
// once the CNAME is in place, and waits until d is Verified.
func RecheckVerified(t testing.TB, c client.Client, d *v1alpha1.Delegation, what string) {
	t.Helper()
	ctx := context.Background()
	d.Annotations = map[string]string{"acmezone.io/recheck": time.Now().Format(time.RFC3339)}
	if err := c.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 2*time.Minute, what, func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return false, err.Error()
		}
		v := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
		if v == nil {
			return false, "no Verified condition"
		}
		return v.Status == metav1.ConditionTrue, v.Reason + ": " + v.Message
	})
}

// HasTXT reports whether r answers a TXT record holding value.
func HasTXT(r *dns.Msg, value string) bool {
	return slices.ContainsFunc(r.Answer, func(rr dns.RR) bool {
		txt, ok := rr.(*dns.TXT)
		return ok && slices.Contains(txt.Txt, value)
	})
}
