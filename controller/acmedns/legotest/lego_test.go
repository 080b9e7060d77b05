// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package legotest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	legoacmedns "github.com/go-acme/lego/v5/providers/dns/acmedns"
	"github.com/go-acme/lego/v5/registration"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/miekg/dns"
	"github.com/nrdcg/goacmedns/storage"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/acmedns"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/kubetest"
)

const (
	zone      = "acme.example.com."
	namespace = "acme-dns"
	domain    = "example.com"
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
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	corednsBin := requireBinary(t, root, "coredns", "make build")
	pebbleBin := requireBinary(t, root, "pebble", "make bin/pebble")
	pebbleModule, err := stack.PebbleModuleDir(root)
	if err != nil {
		t.Fatal(err)
	}
	logf.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()

	// The target key, shared by the acme-dns API and CoreDNS as by the controller and CoreDNS.
	keyFile := filepath.Join(dir, "target.key")
	targetKey := newTargetKey(t, keyFile)

	// The API server, and the acme-dns API on top of it with open registration.
	env := kubetest.Start(t, []string{filepath.Join(root, "deploy", "crds")}, namespace)
	api, err := acmedns.New(acmedns.Config{Client: env.Client, Log: testr.New(t)}, acmedns.Options{
		Zone:         zone,
		Namespace:    namespace,
		TargetKey:    targetKey,
		Registration: acmedns.Registration{Open: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	apiServer := httptest.NewServer(api)
	t.Cleanup(apiServer.Close)

	// acmezone's CoreDNS, also playing the user's DNS provider for example.com.
	dnsAddr := freeAddr(t, true)
	zoneFile := &zoneFile{path: filepath.Join(dir, "example.com.zone")}
	zoneFile.write(t, "")
	coredns := startCoreDNS(ctx, t, dir, corednsBin, dnsAddr, env.Kubeconfig, keyFile, zoneFile.path)

	// Pebble, asking that CoreDNS (over TCP: Pebble's custom resolver only speaks TCP).
	pebble := startPebble(ctx, t, dir, pebbleBin, pebbleModule, dnsAddr)

	// lego. Its DNS client is a package-level default: point it at our CoreDNS, never at
	// /etc/resolv.conf or public resolvers, and put it back afterwards.
	prevDNS := dns01.DefaultClient()
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: []string{dnsAddr}, Timeout: 5 * time.Second}))
	t.Cleanup(func() { dns01.SetDefaultClient(prevDNS) })
	prevLog := legolog.Default()
	legolog.SetDefault(slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	t.Cleanup(func() { legolog.SetDefault(prevLog) })

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	user := &acmeUser{key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = pebble.directory
	cfg.HTTPClient = pebble.client
	legoClient, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if user.reg, err = legoClient.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
		t.Fatalf("register the ACME account at Pebble: %v", err)
	}

	// One attempt is one `lego run`: a fresh provider over the same account storage file.
	accounts := filepath.Join(dir, "lego-acme-dns-accounts.json")
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
	checkAccount(ctx, t, env.Client, targetKey, acct.Username, target, 1)
	if n := pebbleQueries(coredns); n != 0 {
		t.Errorf("Pebble asked CoreDNS %d times in the first attempt; lego must not have asked it to validate", n)
	}

	// The user adds the record that the first attempt asked for; the provider reloads it.
	zoneFile.write(t, "_acme-challenge IN CNAME "+target)
	waitCNAME(ctx, t, dnsAddr, target)

	// Second attempt: the stored account is used, /update writes both values, Pebble checks
	// them through the CNAME and issues.
	res, err = obtain(time.Minute)
	if err != nil {
		t.Fatalf("second attempt: %v\nCoreDNS:\n%s\nPebble:\n%s", err, coredns.Tail(40), pebble.Tail(40))
	}
	checkCertificate(t, res, pebble.root(ctx, t))
	values := checkAccount(ctx, t, env.Client, targetKey, acct.Username, target, 3)
	if n := pebbleQueries(coredns); n < 2 {
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

// checkCertificate checks the issued certificate: both names, its key, and a chain to root.
func checkCertificate(t *testing.T, res *certificate.Resource, root []byte) {
	t.Helper()
	if _, err := tls.X509KeyPair(res.Certificate, res.PrivateKey); err != nil {
		t.Errorf("certificate and key do not match: %v", err)
	}
	var chain []*x509.Certificate
	for rest := res.Certificate; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) < 2 {
		t.Fatalf("bundle holds %d certificates, want the leaf and Pebble's intermediate", len(chain))
	}
	leaf := chain[0]
	if names := slices.Sorted(slices.Values(leaf.DNSNames)); !slices.Equal(names, []string{"*." + domain, domain}) {
		t.Errorf("certificate names %q, want %s and *.%s", names, domain, domain)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(root) {
		t.Fatalf("Pebble's root is not PEM: %q", root)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, name := range []string{domain, "www." + domain} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name}); err != nil {
			t.Errorf("certificate for %s does not chain to Pebble's root: %v", name, err)
		}
	}
}

// pebbleQueries counts the TXT questions for the challenge name that CoreDNS logged over TCP:
// Pebble's (lego asks over UDP).
func pebbleQueries(coredns *stack.Process) int {
	return len(regexp.MustCompile(`(?i)"TXT IN _acme-challenge\.example\.com\. tcp `).FindAllString(coredns.Logs(), -1))
}

// zoneFile is example.com at the user's DNS provider: the file plugin's zone, reloaded when
// its serial grows. It holds no NS delegation of acme.example.com, since the same CoreDNS
// serves that zone: with one, the file plugin would answer the CNAME with a referral instead
// of following it into acmezone.
type zoneFile struct {
	path   string
	serial int
}

func (z *zoneFile) write(t *testing.T, extra string) {
	t.Helper()
	z.serial++
	data := fmt.Sprintf(`$ORIGIN example.com.
$TTL 5
@    IN SOA ns1.example.com. hostmaster.example.com. %d 60 30 86400 5
@    IN NS  ns1.example.com.
ns1  IN A   127.0.0.1
%s
`, z.serial, extra)
	tmp := z.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, z.path); err != nil {
		t.Fatal(err)
	}
}

// newTargetKey writes 32 random bytes, base64-encoded as the controller writes its key
// Secret, to path and returns the key.
func newTargetKey(t *testing.T, path string) v1alpha1.TargetKey {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := v1alpha1.LoadTargetKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startCoreDNS runs bin/coredns on addr: acme.example.com from acmezone (with the target key
// in keyFile), example.com from zoneFile. It returns once both zones answer over TCP.
func startCoreDNS(ctx context.Context, t *testing.T, dir, bin, addr, kubeconfig, keyFile, zoneFile string) *stack.Process {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	corefile := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(`acme.example.com:%[2]s {
    bind %[1]s
    errors
    log
    acmezone {
        nameserver ns.example.com %[1]s
        kubeconfig %[3]s
        target_key %[5]s
        ttl 5
        soa hostmaster.example.com 60 30 86400 2
    }
}
example.com:%[2]s {
    bind %[1]s
    errors
    log
    file %[4]s {
        reload 200ms
    }
}
`, host, port, kubeconfig, zoneFile, keyFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	proc, err := stack.Start(dir, "coredns", bin, "-conf", corefile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Stop()
		if t.Failed() {
			t.Logf("CoreDNS log:\n%s", proc.Tail(60))
		}
	})
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	for _, name := range []string{zone, domain + "."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSOA)
		for {
			r, _, err := c.ExchangeContext(ctx, m, addr)
			if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
				break
			}
			if done, perr := proc.Exited(); done {
				t.Fatalf("coredns exited (%v):\n%s", perr, proc.Tail(40))
			}
			if ctx.Err() != nil {
				t.Fatalf("coredns does not answer %s SOA on %s: %v %v", name, addr, r, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return proc
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

// pebbleCA is bin/pebble running on loopback.
type pebbleCA struct {
	*stack.Process
	directory  string
	management string
	client     *http.Client // trusts Pebble's HTTPS certificate
}

// startPebble runs bin/pebble on free loopback ports with the e2e stack's settings: no random
// validation delay, no rejected nonces, no reused authorizations, and validation always on.
func startPebble(ctx context.Context, t *testing.T, dir, bin, moduleDir, dnsAddr string) *pebbleCA {
	t.Helper()
	certs := filepath.Join(moduleDir, "test", "certs")
	listen, management := freeAddr(t, false), freeAddr(t, false)
	cfg, _ := json.MarshalIndent(map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        management,
		"certificate":                    filepath.Join(certs, "localhost", "cert.pem"),
		"privateKey":                     filepath.Join(certs, "localhost", "key.pem"),
		"httpPort":                       5002,
		"tlsPort":                        5001,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       map[string]any{"default": map[string]any{"description": "acmezone lego test", "validityPeriod": 7776000}},
	}}, "", "  ")
	cfgPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(certs, "pebble.minica.pem"))
	if err != nil {
		t.Fatalf("Pebble's HTTPS CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("%s holds no certificate", filepath.Join(certs, "pebble.minica.pem"))
	}
	envVars := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0", "PEBBLE_VA_ALWAYS_VALID=0"}
	proc, err := stack.StartEnv(dir, "pebble", bin, envVars, "-config", cfgPath, "-dnsserver", dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Stop()
		if t.Failed() {
			t.Logf("Pebble log:\n%s", proc.Tail(60))
		}
	})
	p := &pebbleCA{
		Process:    proc,
		directory:  "https://" + listen + "/dir",
		management: "https://" + management,
		client:     &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}
	for {
		_, err := p.get(ctx, p.directory)
		if err == nil {
			return p
		}
		if done, perr := proc.Exited(); done {
			t.Fatalf("pebble exited (%v):\n%s", perr, proc.Tail(40))
		}
		if ctx.Err() != nil {
			t.Fatalf("pebble does not answer at %s: %v", p.directory, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// root returns the PEM of the root Pebble generated at start and issues under.
func (p *pebbleCA) root(ctx context.Context, t *testing.T) []byte {
	t.Helper()
	b, err := p.get(ctx, p.management+"/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *pebbleCA) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// requireBinary returns root/bin/name, failing the test with how to build it when missing.
func requireBinary(t *testing.T, root, name, build string) string {
	t.Helper()
	path := filepath.Join(root, "bin", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): build it with `%s` (`make test` does)", path, err, build)
	}
	return path
}

// freeAddr returns a 127.0.0.1 address whose TCP port (and UDP port, with udp) is free now.
func freeAddr(t *testing.T, udp bool) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if udp {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				l.Close()
				continue
			}
			pc.Close()
		}
		l.Close()
		return addr
	}
	t.Fatal("no free port on 127.0.0.1 for TCP and UDP")
	return ""
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

// acmeUser is lego's registration.User: the ACME account at Pebble.
type acmeUser struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *acmeUser) GetEmail() string                       { return "" }
func (u *acmeUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *acmeUser) GetPrivateKey() crypto.Signer           { return u.key }

// testWriter sends lego's log to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
