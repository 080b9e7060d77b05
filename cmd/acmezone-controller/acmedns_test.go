// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nrdcg/goacmedns"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// TestACMEDNSFlags checks the flags' validation.
func TestACMEDNSFlags(t *testing.T) {
	for i, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"--acme-dns-registration", "open"}, true},
		{[]string{"--acme-dns-registration", "10.0.0.0/8,fd00::/8"}, true},
		{[]string{"--acme-dns-registration", "sometimes"}, false},
		{[]string{"--acme-dns-tls-cert", "c.pem"}, false},
		{[]string{"--acme-dns-tls-cert", "c.pem", "--acme-dns-tls-key", "k.pem"}, true},
		{[]string{"--acme-dns-record-max-age", "0s"}, false},
		{[]string{"--acme-dns-record-max-age", "-1h"}, false},
		{[]string{"--acme-dns-record-max-age", "90m"}, true},
		{[]string{"--acme-dns-server-url", "http://acmezone-controller.acmezone.svc:8053"}, true},
		{[]string{"--acme-dns-server-url", "https://acme-dns.example.com"}, true},
		{[]string{"--acme-dns-server-url", "acmezone-controller.acmezone.svc:8053"}, false},
		{[]string{"--acme-dns-server-url", "ftp://acme-dns.example.com"}, false},
		{[]string{"--acme-dns-server-url", "http://"}, false},
		{[]string{"--acme-dns-server-url", "http://user:pw@acme-dns.example.com"}, false},
		{[]string{"--acme-dns-trusted-header", "X-Forwarded-For"}, false}, // from anyone: forgeable
		{[]string{"--acme-dns-trusted-proxies", "10.0.0.0/8"}, false},     // no header to believe
		{[]string{"--acme-dns-trusted-header", "X-Forwarded-For", "--acme-dns-trusted-proxies", "10.0.0.0/8,fd00::/8"}, true},
		{[]string{"--acme-dns-trusted-header", "X-Forwarded-For", "--acme-dns-trusted-proxies", "10.0.0.1"}, false},
		{[]string{"--acme-dns-trusted-header", "X-Forwarded-For", "--acme-dns-trusted-proxies", "10.0.0.0/8,"}, false},
	} {
		var f acmeDNSFlags
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		f.add(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := f.complete(); (err == nil) != tc.ok {
			t.Errorf("Test %d (%v): err %v, want ok %v", i, tc.args, err, tc.ok)
		}
	}
	// The header without proxies: the error says which flag to add.
	var f acmeDNSFlags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.add(fs)
	if err := fs.Parse([]string{"--acme-dns-trusted-header", "X-Forwarded-For"}); err != nil {
		t.Fatal(err)
	}
	if err := f.complete(); err == nil || !strings.Contains(err.Error(), "--acme-dns-trusted-proxies") {
		t.Errorf("header without proxies: %v, want an error naming --acme-dns-trusted-proxies", err)
	}
}

// TestACMEDNSServe runs the API as the controller does, in a manager, over HTTPS, and drives
// it with cert-manager's acme-dns client.
func TestACMEDNSServe(t *testing.T) {
	logf.SetLogger(logr.Discard())
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds"), kubetest.MustCertManagerCRDs(t)}, "acmezone", "shop")
	dir := t.TempDir()
	pool := writeCert(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	f := &flags{}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.add(fs)
	if err := fs.Parse([]string{"--zone", "acme.example.com", "--nameserver", "ns.example.com=192.0.2.53",
		"--acme-dns-listen", addr, "--acme-dns-registration", "127.0.0.0/8", "--acme-dns-server-url", "https://" + addr,
		"--acme-dns-tls-cert", filepath.Join(dir, "tls.crt"), "--acme-dns-tls-key", filepath.Join(dir, "tls.key")}); err != nil {
		t.Fatal(err)
	}
	if err := f.complete(); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: scheme(), Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	key, err := v1alpha1.NewTargetKey([]byte(base64.StdEncoding.EncodeToString(raw)))
	if err != nil {
		t.Fatal(err)
	}
	f.opts.TargetKey = key // as main does
	if err := setupACMEDNS(mgr, f, key); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(url + "/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health never answered 200: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c, err := goacmedns.NewClient(url, goacmedns.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	acct, err := c.RegisterAccount(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	const txt = "LPsIwTo7o8BoG0-vjCyGQGBWSVIPxI-i_X336eUOQZo"
	if err := c.UpdateTXTRecord(ctx, acct, txt); err != nil {
		t.Fatal(err)
	}
	var list v1alpha1.ChallengeRecordList
	if err := env.Client.List(ctx, &list, client.InNamespace("acmezone")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Spec.Value != txt || list.Items[0].Spec.FQDN != acct.FullDomain+"." {
		t.Errorf("records %+v, want %s at %s", list.Items, txt, acct.FullDomain)
	}

	// A Delegation annotated for a Kubernetes-native account gets its Secret, with the URL of
	// --acme-dns-server-url, and the account works, at the namespace's own target by the key.
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example-com", Annotations: map[string]string{v1alpha1.ACMEDNSSecretAnnotation: "acme-dns"}},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	target, err := key.Target(v1alpha1.ClaimOf(d), "acme.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	var sec corev1.Secret
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "acme-dns"}, &sec); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no Secret shop/acme-dns: %v", err)
		}
	}
	var accounts map[string]goacmedns.Account
	if err := json.Unmarshal(sec.Data["acmedns.json"], &accounts); err != nil {
		t.Fatal(err)
	}
	native, ok := accounts["example.com"]
	if !ok || native.ServerURL != url {
		t.Fatalf("accounts %v, want example.com at %s", slices.Collect(maps.Keys(accounts)), url)
	}
	if err := c.UpdateTXTRecord(ctx, native, txt); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.List(ctx, &list, client.InNamespace("shop")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Spec.FQDN != target || native.FullDomain+"." != target {
		t.Errorf("records in shop %+v, account at %s; want one record at %s", list.Items, native.FullDomain, target)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 as dir/tls.crt and dir/tls.key and
// returns a pool that trusts it.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "acme-dns test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
