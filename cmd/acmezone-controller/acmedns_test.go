package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nrdcg/goacmedns"
	"github.com/spf13/pflag"
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
}

// TestACMEDNSServe runs the API as the controller does, in a manager, over HTTPS, and drives
// it with cert-manager's acme-dns client.
func TestACMEDNSServe(t *testing.T) {
	logf.SetLogger(logr.Discard())
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds")}, "acmezone")
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
		"--acme-dns-listen", addr, "--acme-dns-registration", "127.0.0.0/8",
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
	if err := setupACMEDNS(mgr, f); err != nil {
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
