// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/dnssec"
	"github.com/coredns/coredns/plugin/pkg/cache"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// runDNSSECKey runs `acmezone-controller dnssec-key args...` and returns stdout and stderr.
func runDNSSECKey(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := dnssecKeyCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// checkKeyFiles reads base.key and base.private as CoreDNS's dnssec plugin does, signs the
// zone's DNSKEY records with the plugin, and checks the signature with the public key as the
// controller reads it (--dnssec-key base.key). It returns the DS the plugin computes.
func checkKeyFiles(t *testing.T, base string) *dns.DS {
	t.Helper()
	const zone = "acme.example.com."
	k, err := dnssec.ParseKeyFile(base+".key", base+".private")
	if err != nil {
		t.Fatalf("CoreDNS's dnssec plugin cannot read the key: %v", err)
	}
	public, err := controller.ReadDNSKEY(base+".key", zone)
	if err != nil {
		t.Fatalf("--dnssec-key %s.key: %v", base, err)
	}
	if k.K.Flags != 257 || k.K.Algorithm != dns.ECDSAP256SHA256 {
		t.Errorf("key flags %d algorithm %d, want 257 13", k.K.Flags, k.K.Algorithm)
	}
	if want := public.ToDS(dns.SHA256); controller.DSContent(k.D) != controller.DSContent(want) {
		t.Errorf("the plugin's DS %s, the controller's %s", controller.DSContent(k.D), controller.DSContent(want))
	}
	// The plugin signs its DNSKEY answer; the public key verifies it.
	h := dnssec.New([]string{zone}, []*dnssec.DNSKEY{k}, false, test.NextHandler(dns.RcodeSuccess, nil), cache.New[[]dns.RR](10))
	m := new(dns.Msg)
	m.SetQuestion(zone, dns.TypeDNSKEY)
	m.SetEdns0(1232, true)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := h.ServeDNS(context.Background(), rec, m); err != nil {
		t.Fatal(err)
	}
	var keys []dns.RR
	var sig *dns.RRSIG
	for _, rr := range rec.Msg.Answer {
		switch v := rr.(type) {
		case *dns.DNSKEY:
			keys = append(keys, v)
		case *dns.RRSIG:
			sig = v
		}
	}
	if sig == nil || len(keys) != 1 {
		t.Fatalf("the plugin's DNSKEY answer %v: want one key and its signature", rec.Msg.Answer)
	}
	if err := sig.Verify(public, keys); err != nil {
		t.Errorf("the plugin's signature does not verify with the public key: %v", err)
	}
	// The controller never takes the private key.
	if _, err := controller.ReadDNSKEY(base+".private", zone); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("--dnssec-key %s.private: %v, want a refusal", base, err)
	}
	return k.D
}

func TestDNSSECKeySecret(t *testing.T) {
	out, errOut, err := runDNSSECKey(t, "Acme.Example.com", "--namespace", "acmezone")
	if err != nil {
		t.Fatalf("dnssec-key: %v\n%s", err, errOut)
	}
	var sec corev1.Secret
	if err := yaml.UnmarshalStrict([]byte(out), &sec); err != nil {
		t.Fatalf("the manifest is no Secret: %v\n%s", err, out)
	}
	if sec.Kind != "Secret" || sec.Name != "acmezone-dnssec" || sec.Namespace != "acmezone" || len(sec.Data) != 2 {
		t.Fatalf("manifest %s %s/%s with %d items, want Secret acmezone/acmezone-dnssec with zone.key and zone.private", sec.Kind, sec.Namespace, sec.Name, len(sec.Data))
	}
	dir := t.TempDir()
	for item, data := range sec.Data {
		if err := os.WriteFile(filepath.Join(dir, item), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ds := checkKeyFiles(t, filepath.Join(dir, "zone"))
	line := "acme.example.com DS " + controller.DSContent(ds)
	if !strings.Contains(errOut, line) || !strings.Contains(out, "# "+line) {
		t.Errorf("the DS %q is not shown on stderr and in the manifest's comment:\n%s\n%s", line, errOut, out)
	}
	if strings.Contains(errOut, "PrivateKey") {
		t.Errorf("stderr shows the private key:\n%s", errOut)
	}
	// A second run makes another key.
	out2, _, err := runDNSSECKey(t, "acme.example.com")
	if err != nil || out2 == out || strings.Contains(out2, "namespace:") {
		t.Errorf("second run: %v; want a new key and no namespace without --namespace", err)
	}
}

func TestDNSSECKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dnssec")
	_, errOut, err := runDNSSECKey(t, "acme.example.com", "--out-dir", dir)
	if err != nil {
		t.Fatalf("dnssec-key --out-dir: %v\n%s", err, errOut)
	}
	for item, mode := range map[string]os.FileMode{"zone.key": 0o644, "zone.private": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, item))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v; want mode %v", item, err, fi.Mode().Perm(), mode)
		}
	}
	ds := checkKeyFiles(t, filepath.Join(dir, "zone"))
	for _, want := range []string{"dnssec { key file " + filepath.Join(dir, "zone") + " }", "--dnssec-key " + filepath.Join(dir, "zone.key"), "acme.example.com DS " + controller.DSContent(ds)} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}
	before, _ := os.ReadFile(filepath.Join(dir, "zone.private"))
	if _, _, err := runDNSSECKey(t, "acme.example.com", "--out-dir", dir); err == nil || !strings.Contains(err.Error(), "a new key needs a new DS") {
		t.Errorf("a second key into the same directory: %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "zone.private")); !bytes.Equal(before, after) {
		t.Error("the refused run replaced the key")
	}
	if _, _, err := runDNSSECKey(t, "not a zone!"); err == nil || !strings.Contains(err.Error(), "is not a domain name") {
		t.Errorf("a bad zone: %v", err)
	}
}

// TestDNSSECKeyFlag: --dnssec-key gives the zone's DS to the options, the records from a
// Delegation's status give it back, and a key of another zone is refused.
func TestDNSSECKeyFlag(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runDNSSECKey(t, "acme.example.com", "--out-dir", dir); err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) (*flags, error) {
		f := &flags{}
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		f.add(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return f, f.complete()
	}
	keyFile := filepath.Join(dir, "zone.key")
	f, err := parse("--zone=acme.example.com", "--nameserver=ns.example.com=34.84.45.1", "--dnssec-key="+keyFile, "--dnssec-key="+keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := controller.ReadDNSKEY(keyFile, "acme.example.com.")
	want := controller.DSContent(key.ToDS(dns.SHA256))
	if len(f.opts.DS) != 1 || controller.DSContent(f.opts.DS[0]) != want {
		t.Fatalf("opts.DS %v, want the one DS %s", f.opts.DS, want)
	}
	if _, err := parse("--zone=other.example.com", "--nameserver=ns.example.com", "--dnssec-key="+keyFile); err == nil || !strings.Contains(err.Error(), "not for --zone other.example.com.") {
		t.Errorf("a key of another zone: %v", err)
	}
	if _, err := parse("--zone=acme.example.com", "--nameserver=ns.example.com", "--dnssec-key="+filepath.Join(dir, "zone.private")); err == nil || !strings.Contains(err.Error(), "is a private key") {
		t.Errorf("the private key: %v", err)
	}
	// `records DOMAIN` from the cluster: the DS comes from the Delegation's status.
	g := &flags{}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	g.add(fs)
	if err := g.fromRecords([]v1alpha1.DNSRecord{
		{Type: "A", Name: "ns.example.com", Content: "34.84.45.1"},
		{Type: "NS", Name: "acme.example.com", Content: "ns.example.com"},
		{Type: "DS", Name: "acme.example.com", Content: want},
	}); err != nil {
		t.Fatal(err)
	}
	if err := g.complete(); err != nil {
		t.Fatal(err)
	}
	if len(g.opts.DS) != 1 || controller.DSContent(g.opts.DS[0]) != want {
		t.Errorf("DS from the status: %v, want %s", g.opts.DS, want)
	}
}
