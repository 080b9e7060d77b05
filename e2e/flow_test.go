// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

// Package e2e runs the seed's flow with real parts: kube-apiserver and etcd, cert-manager's
// controller, Pebble, unbound as the public resolver, a CoreDNS "DNS provider", and acmezone's
// CoreDNS and controller. `make e2e` runs it; it takes minutes, because cert-manager waits 60 s
// after each passing DNS-01 self-check.
package e2e

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
)

var root = filepath.Join("..")

// envtest logs through controller-runtime's logger and, without one, prints a warning with a
// stack trace; the stack keeps every process's own log, which is what a failure prints.
func init() { ctrllog.SetLogger(logr.Discard()) }

// up starts the stack for one test and, when it fails, prints every process's log.
func up(t *testing.T, controllerArgs ...string) *stack.Stack {
	t.Helper()
	return upWith(t, stack.Options{ControllerArgs: controllerArgs})
}

// upWith is up with o's changes to the stack.
func upWith(t *testing.T, o stack.Options) *stack.Stack {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make e2e`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Not t.TempDir: the logs of every process stay on disk when the test fails.
	dir, err := os.MkdirTemp("", "acmezone-e2e-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.UpWith(ctx, root, dir, t.Logf, o)
	if err != nil {
		t.Fatalf("%v (logs kept in %s)", err, dir)
	}
	t.Cleanup(func() {
		s.Down()
		if t.Failed() {
			for _, p := range s.Processes() {
				t.Logf("===== %s (%s) =====\n%s", p.Name, p.LogPath, lastLines(p.Logs(), 120))
			}
			t.Logf("logs of every process, and kube-apiserver's, are kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return s
}

// eventually and ready are the stack's Eventually and Ready.
var (
	eventually = stack.Eventually
	ready      = stack.Ready
)

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestSeedFlow is the seed's story: a wildcard certificate for example.com through the CNAME
// delegation, with the Delegation telling the user what to add, then a renewal.
func TestSeedFlow(t *testing.T) {
	// The canary runs as in deploy/, faster; every renewal is "due" within the window (Pebble's
	// certificates last years); the metrics are plain HTTP on loopback for the test to read.
	s := up(t, "--canary-interval=5s", "--canary-deadline=15s", "--failures-to-flip=2", "--renewal-risk-window=87600h",
		"--metrics-bind-address="+metricsAddr, "--metrics-secure=false")
	ctx := context.Background()
	c := s.Client

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	ci := s.ClusterIssuer("acmezone", stack.AcmezoneSolver())
	if err := c.Create(ctx, ci); err != nil {
		t.Fatal(err)
	}
	issuerReady(t, c, ci)

	crt := stack.WildcardCertificate(ci)
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}

	// The Challenge watcher creates the Delegation (ClusterIssuer: in cert-manager's
	// namespace) and the reconciler gives it a target; the CNAME is not there yet.
	d := stack.WaitDelegation(t, c, stack.ClusterResourceNamespace, "example.com")
	target := d.Status.Target
	cname := "_acme-challenge.example.com CNAME " + strings.TrimSuffix(target, ".")
	eventually(t, time.Minute, "Delegation not verified, saying the CNAME is missing", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(&d), &d); err != nil {
			return false, err.Error()
		}
		v := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
		if v == nil {
			return false, "no Verified condition"
		}
		return v.Status == metav1.ConditionFalse && strings.Contains(v.Message, "_acme-challenge.example.com"), v.Reason + ": " + v.Message
	})
	eventually(t, 2*time.Minute, "Warning Event naming the exact CNAME", func() (bool, string) {
		var chs cmacme.ChallengeList
		if err := c.List(ctx, &chs, client.InNamespace("shop")); err != nil {
			return false, err.Error()
		}
		for i := range chs.Items {
			notes, _ := s.Events(ctx, &chs.Items[i])
			for _, n := range notes {
				if strings.HasPrefix(n, "Warning") && strings.Contains(n, cname) {
					t.Logf("the user sees: %s", n)
					return true, ""
				}
			}
		}
		return false, "no such Event yet"
	})

	// The user adds the CNAME at the provider.
	if err := s.Provider.AddRecord("_acme-challenge IN CNAME " + target); err != nil {
		t.Fatal(err)
	}
	stack.RecheckVerified(t, c, &d, "Delegation verified")
	eventually(t, 8*time.Minute, "Certificate Ready", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return false, err.Error()
		}
		return ready(crt.Status.Conditions)
	})
	leaf := checkSecret(t, s, "shop", "wildcard-tls", "example.com", "*.example.com")
	if dialed, err := s.CP.DialedPlaceholder(); err != nil || dialed {
		t.Errorf("kube-apiserver's log mentions the placeholder endpoint %s (err %v): the aggregator dialed it instead of the cluster IP", "192.0.2.1", err)
	}
	eventually(t, time.Minute, "no ChallengeRecord left", func() (bool, string) {
		var recs v1alpha1.ChallengeRecordList
		if err := c.List(ctx, &recs); err != nil {
			return false, err.Error()
		}
		var left []string
		for _, r := range recs.Items {
			if r.Labels[v1alpha1.CanaryLabel] == "" { // the canary's values live for seconds
				left = append(left, r.Name)
			}
		}
		return len(left) == 0, "records left: " + strings.Join(left, ", ")
	})

	// #18's stage: the user's one standing duty is to keep the records; someone deletes the
	// CNAME, and acmezone says so long before the renewal fails.
	t.Run("TestRenewalRisk", func(t *testing.T) { renewalRisk(t, s, crt, &d, target) })

	// Renewal, as `cmctl renew` triggers it: the Issuing condition.
	t.Run("renewal through the same target", func(t *testing.T) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			t.Fatal(err)
		}
		crt.Status.Conditions = append(crt.Status.Conditions, cmapi.CertificateCondition{
			Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue,
			Reason: "ManuallyTriggered", Message: "renewal requested by the e2e test",
			LastTransitionTime: &metav1.Time{Time: time.Now()},
		})
		if err := c.Status().Update(ctx, crt); err != nil {
			t.Fatal(err)
		}
		eventually(t, 8*time.Minute, "renewed certificate", func() (bool, string) {
			var sec corev1.Secret
			if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "wildcard-tls"}, &sec); err != nil {
				return false, err.Error()
			}
			cert := stack.Leaf(sec.Data[corev1.TLSCertKey])
			if cert == nil || cert.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return false, "same certificate"
			}
			return true, ""
		})
		checkSecret(t, s, "shop", "wildcard-tls", "example.com", "*.example.com")
		if err := c.Get(ctx, client.ObjectKeyFromObject(&d), &d); err != nil {
			t.Fatal(err)
		}
		if d.Status.Target != target {
			t.Errorf("the target changed from %s to %s", target, d.Status.Target)
		}
	})
}

// issuerReady waits until ci is registered with Pebble (Ready).
func issuerReady(t *testing.T, c client.Client, ci *cmapi.ClusterIssuer) {
	t.Helper()
	ctx := context.Background()
	eventually(t, time.Minute, "ClusterIssuer registered with Pebble", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(ci), ci); err != nil {
			return false, err.Error()
		}
		for _, cond := range ci.Status.Conditions {
			if cond.Type == cmapi.IssuerConditionReady {
				return cond.Status == cmmeta.ConditionTrue, cond.Message
			}
		}
		return false, "no Ready condition"
	})
}

// checkSecret checks the issued certificate: the names, and a chain to Pebble's root.
func checkSecret(t *testing.T, s *stack.Stack, ns, name string, dnsNames ...string) *x509.Certificate {
	t.Helper()
	ctx := context.Background()
	var sec corev1.Secret
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sec); err != nil {
		t.Fatal(err)
	}
	rootPEM, err := s.Pebble.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := stack.VerifyIssued(sec.Data[corev1.TLSCertKey], rootPEM, dnsNames...)
	if err != nil {
		t.Fatalf("secret %s/%s: %v", ns, name, err)
	}
	t.Logf("issued: %v, serial %s, expires %s", leaf.DNSNames, leaf.SerialNumber, leaf.NotAfter.Format(time.RFC3339))
	return leaf
}
