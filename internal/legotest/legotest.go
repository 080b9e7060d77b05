// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package legotest is test support, and only test support: what the tests that run lego as a
// library against acmezone (controller/acmedns/legotest, controller/rfc2136/legotest) share.
// On 127.0.0.1 and free ports it starts a real kube-apiserver and etcd, acmezone's CoreDNS
// (bin/coredns) serving acme.example.com with the acmezone plugin and example.com, the "DNS
// provider's" zone, with the file plugin, and Pebble (bin/pebble) validating through that
// CoreDNS; it registers lego's ACME account at Pebble and checks the certificate issued.
//
// It imports lego: only tests may import it, so that lego's dependencies stay out of every
// production binary (`go list -deps ./cmd/... | grep lego` finds nothing) and out of every
// test binary but theirs.
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
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"
	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/kubetest"
)

const (
	// Zone is acmezone's zone, served by the acmezone plugin.
	Zone = "acme.example.com."
	// Domain is the user's domain, served by the file plugin, and the certificate's names are
	// Domain and *.Domain.
	Domain = "example.com"
)

// Setup is what a lego test starts from: the binaries it runs, its temporary directory, the
// target key and a real kube-apiserver.
type Setup struct {
	Root      string // the module's root
	Dir       string // the test's temporary directory
	KeyFile   string // the target key, as acmezone-controller and CoreDNS read it
	TargetKey v1alpha1.TargetKey
	Env       *kubetest.Env // kube-apiserver and etcd, with acmezone's CRDs and namespace

	corednsBin, pebbleBin, pebbleModule string
}

// Start checks that bin/coredns and bin/pebble are built under root (the module's root,
// relative to the test's directory), discards controller-runtime's log, writes a new target
// key into a temporary directory and starts kube-apiserver with acmezone's CRDs and
// namespace. The context it returns ends after four minutes or with the test.
func Start(t *testing.T, root, namespace string) (context.Context, *Setup) {
	t.Helper()
	root, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	s := &Setup{Root: root}
	s.corednsBin = requireBinary(t, root, "coredns", "make build")
	s.pebbleBin = requireBinary(t, root, "pebble", "make bin/pebble")
	if s.pebbleModule, err = stack.PebbleModuleDir(root); err != nil {
		t.Fatal(err)
	}
	logf.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	s.Dir = t.TempDir()
	s.KeyFile = filepath.Join(s.Dir, "target.key")
	s.TargetKey = newTargetKey(t, s.KeyFile)
	s.Env = kubetest.Start(t, []string{filepath.Join(root, "deploy", "crds")}, namespace)
	return ctx, s
}

// CoreDNS is bin/coredns serving Zone from acmezone and Domain from a zone file.
type CoreDNS struct {
	*stack.Process
	Addr string    // 127.0.0.1:port, UDP and TCP
	Zone *ZoneFile // Domain at the user's DNS provider
}

// StartCoreDNS runs bin/coredns on a free port: Zone from acmezone (with the target key, and
// the API server's kubeconfig), Domain from a zone file holding records. reload is how often
// the file plugin looks for a new serial (0: its default, a minute). It returns once both
// zones answer over TCP.
func (s *Setup) StartCoreDNS(ctx context.Context, t *testing.T, records string, reload time.Duration) *CoreDNS {
	t.Helper()
	addr := FreeAddr(t, true)
	zoneFile := &ZoneFile{path: filepath.Join(s.Dir, "example.com.zone")}
	zoneFile.Write(t, records)
	file := "file " + zoneFile.path
	if reload > 0 {
		file += fmt.Sprintf(" {\n        reload %s\n    }", reload)
	}
	host, port, _ := net.SplitHostPort(addr)
	corefile := filepath.Join(s.Dir, "Corefile")
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
    %[4]s
}
`, host, port, s.Env.Kubeconfig, file, s.KeyFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	proc, err := stack.Start(s.Dir, "coredns", s.corednsBin, "-conf", corefile)
	if err != nil {
		t.Fatal(err)
	}
	stopAtCleanup(t, proc, "CoreDNS")
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	for _, name := range []string{Zone, Domain + "."} {
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
	return &CoreDNS{Process: proc, Addr: addr, Zone: zoneFile}
}

// ZoneFile is Domain at the user's DNS provider: the file plugin's zone, reloaded when its
// serial grows. It holds no NS delegation of Zone, since the same CoreDNS serves that zone:
// with one, the file plugin would answer the CNAME with a referral instead of following it
// into acmezone.
type ZoneFile struct {
	path   string
	serial int
}

// Write replaces the zone with its SOA, NS and the NS's address, and extra, under the next
// serial.
func (z *ZoneFile) Write(t *testing.T, extra string) {
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

// Pebble is bin/pebble running on loopback.
type Pebble struct {
	*stack.Process
	Directory  string       // the ACME directory URL
	Client     *http.Client // trusts Pebble's HTTPS certificate
	management string
}

// StartPebble runs bin/pebble on free loopback ports with the e2e stack's settings: no random
// validation delay, no rejected nonces, no reused authorizations, and validation always on. It
// validates DNS-01 by asking dnsAddr (over TCP: Pebble's custom resolver only speaks TCP).
func (s *Setup) StartPebble(ctx context.Context, t *testing.T, dnsAddr string) *Pebble {
	t.Helper()
	certs := filepath.Join(s.pebbleModule, "test", "certs")
	listen, management := FreeAddr(t, false), FreeAddr(t, false)
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
	cfgPath := filepath.Join(s.Dir, "pebble.json")
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
	proc, err := stack.StartEnv(s.Dir, "pebble", s.pebbleBin, envVars, "-config", cfgPath, "-dnsserver", dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	stopAtCleanup(t, proc, "Pebble")
	p := &Pebble{
		Process:    proc,
		Directory:  "https://" + listen + "/dir",
		management: "https://" + management,
		Client:     &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}
	for {
		_, err := p.get(ctx, p.Directory)
		if err == nil {
			return p
		}
		if done, perr := proc.Exited(); done {
			t.Fatalf("pebble exited (%v):\n%s", perr, proc.Tail(40))
		}
		if ctx.Err() != nil {
			t.Fatalf("pebble does not answer at %s: %v", p.Directory, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Root returns the PEM of the root Pebble generated at start and issues under.
func (p *Pebble) Root(ctx context.Context, t *testing.T) []byte {
	t.Helper()
	b, err := p.get(ctx, p.management+"/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *Pebble) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.Client.Do(req)
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

// stopAtCleanup stops proc when the test ends, logging the end of its log if the test failed.
func stopAtCleanup(t *testing.T, proc *stack.Process, name string) {
	t.Cleanup(func() {
		proc.Stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, proc.Tail(60))
		}
	})
}

// NewClient returns a lego client with a new ACME account registered at pebble. lego's DNS
// client and log are package-level defaults: it points the DNS client at dnsAddr (our
// CoreDNS), never at /etc/resolv.conf or public resolvers, sends the log to the test's log
// (LogTo), and puts both back when the test ends.
func NewClient(ctx context.Context, t *testing.T, pebble *Pebble, dnsAddr string) *lego.Client {
	t.Helper()
	prevDNS := dns01.DefaultClient()
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: []string{dnsAddr}, Timeout: 5 * time.Second}))
	t.Cleanup(func() { dns01.SetDefaultClient(prevDNS) })
	LogTo(t)
	client, _ := Register(ctx, t, pebble.Directory, pebble.Client)
	return client
}

// LogTo sends lego's log, a package-level default, to the test's log until the test ends.
func LogTo(t *testing.T) {
	prevLog := legolog.Default()
	legolog.SetDefault(slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	t.Cleanup(func() { legolog.SetDefault(prevLog) })
}

// Register returns a lego client for the ACME directory, through httpClient, with a new
// account (a P-256 key) registered there, and the account.
func Register(ctx context.Context, t *testing.T, directory string, httpClient *http.Client) (*lego.Client, *acme.ExtendedAccount) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	user := &acmeUser{key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = directory
	cfg.HTTPClient = httpClient
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if user.reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
		t.Fatalf("register the ACME account at %s: %v", directory, err)
	}
	return client, user.reg
}

// CheckCertificate checks the issued certificate: Domain and *.Domain, its key, and a chain to
// root.
func CheckCertificate(t *testing.T, res *certificate.Resource, root []byte) {
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
	if names := slices.Sorted(slices.Values(leaf.DNSNames)); !slices.Equal(names, []string{"*." + Domain, Domain}) {
		t.Errorf("certificate names %q, want %s and *.%s", names, Domain, Domain)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(root) {
		t.Fatalf("Pebble's root is not PEM: %q", root)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, name := range []string{Domain, "www." + Domain} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name}); err != nil {
			t.Errorf("certificate for %s does not chain to Pebble's root: %v", name, err)
		}
	}
}

// FreeAddr returns a 127.0.0.1 address whose TCP port (and UDP port, with udp) is free now.
func FreeAddr(t *testing.T, udp bool) string {
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

// requireBinary returns root/bin/name, failing the test with how to build it when missing.
func requireBinary(t *testing.T, root, name, build string) string {
	t.Helper()
	path := filepath.Join(root, "bin", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): build it with `%s` (`make test` does)", path, err, build)
	}
	return path
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
