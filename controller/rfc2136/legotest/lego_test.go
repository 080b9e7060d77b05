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
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/providers/dns/dnsupdate"
	"github.com/go-acme/lego/v5/registration"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/rfc2136"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/kubetest"
)

const (
	zone      = "acme.example.com."
	namespace = "team-a"
	keySecret = "lego-tsig" // the TSIG key's Secret: key name lego-tsig.team-a.
	domain    = "example.com"
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

	// The target key, shared by the listener and CoreDNS as by the controller and CoreDNS.
	keyFile := filepath.Join(dir, "target.key")
	opts := &controller.Options{
		Zone:        zone,
		NameServers: []controller.NameServer{{Name: "ns.example.com."}},
		TargetKey:   newTargetKey(t, keyFile),
	}
	env := kubetest.Start(t, []string{filepath.Join(root, "deploy", "crds")}, namespace)

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
	dnsAddr := freeAddr(t, true)
	zonePath := filepath.Join(dir, "example.com.zone")
	writeZone(t, zonePath, "_acme-challenge IN CNAME "+target)
	coredns := startCoreDNS(ctx, t, dir, corednsBin, dnsAddr, env.Kubeconfig, keyFile, zonePath)

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
	checkCertificate(t, res, pebble.root(ctx, t))
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
	addr := freeAddr(t, true)
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

// writeZone writes example.com at the user's DNS provider, with extra. It holds no NS
// delegation of acme.example.com, since the same CoreDNS serves that zone: with one, the file
// plugin would answer the CNAME with a referral instead of following it into acmezone.
func writeZone(t *testing.T, path, extra string) {
	t.Helper()
	data := fmt.Sprintf(`$ORIGIN example.com.
$TTL 5
@    IN SOA ns1.example.com. hostmaster.example.com. 1 60 30 86400 5
@    IN NS  ns1.example.com.
ns1  IN A   127.0.0.1
%s
`, extra)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
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
    file %[4]s
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
	for _, name := range []string{zone, domain + "."} {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := stack.WaitDNS(wctx, proc, addr, name, dns.TypeSOA)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	return proc
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
