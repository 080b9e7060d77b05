// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package attack is acmezone's attack suite: every attack of docs/SECURITY.md, tried by a
// tenant with the standard `edit` role (and, worse than usual, every right on acmezone's CRDs
// in its own namespace, the status subresource included) against the real parts: a real
// kube-apiserver and etcd with RBAC, bin/acmezone-controller and bin/coredns running as
// processes under the service accounts and RBAC of deploy/, and the webhook solver called
// through the aggregation layer as cert-manager calls it. Each test is an attack that must
// fail; `make test` runs them.
package attack

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records/recordstest"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/kubetest"
)

var root = filepath.Join("..", "..")

const (
	zone = "acme.example.com."
	// webhookIP is this suite's webhook address: e2e/stack's own test uses stack.WebhookIP, and
	// go test runs packages at the same time.
	webhookIP = "127.100.0.11"
	// The users: the attacker, a tenant of namespace blog, and its victim's namespace.
	attacker = "mallory"
	blog     = "blog"
	shop     = "shop"
	// maxValues is the plugin's max_values in this suite.
	maxValues = 8
	// Service accounts of deploy/.
	controllerSA = "system:serviceaccount:acmezone:acmezone-controller"
	corednsSA    = "system:serviceaccount:acmezone:acmezone-coredns"
)

// keys are ACME DNS-01 values (43 characters of base64url).
func key(i int) string { return fmt.Sprintf("%042d", i) + "K" }

// cluster is everything the attacks run against.
type cluster struct {
	dir        string
	cp         *stack.ControlPlane
	admin      client.Client // cluster-admin: the namespaces' owners and the administrator
	mallory    client.Client // the attacker: edit in blog, and acmezone's CRDs there
	provider   *recordstest.Server
	targetKey  v1alpha1.TargetKey
	keyFile    string
	dnsAddr    string
	coredns    *stack.Process
	controller *stack.Process
	acmeDNS    string // the acme-dns API's URL
	rfc2136    string // the RFC 2136 listener's address (UDP and TCP)
	// legacy is the target an earlier version gave shop's Delegation "legacy".
	legacy string
}

// setup starts the control plane, applies deploy/'s RBAC, creates the tenants and starts the
// controller and CoreDNS as their service accounts.
func setup(t *testing.T) *cluster {
	t.Helper()
	kubetest.NeedControlPlane(t)
	for _, bin := range []string{"coredns", "acmezone-controller"} {
		if _, err := os.Stat(filepath.Join(root, "bin", bin)); err != nil {
			t.Fatalf("bin/%s is missing: run `make build` (make test does)", bin)
		}
	}
	ctx := context.Background()
	c := &cluster{dir: t.TempDir()}
	cmCRDs, err := kubetest.CertManagerCRDs()
	if err != nil {
		t.Fatal(err)
	}
	if c.cp, err = stack.StartControlPlaneAt(c.dir, webhookIP, filepath.Join(root, "deploy", "crds"), cmCRDs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cp.Stop)
	if c.admin, err = client.New(c.cp.Config, client.Options{Scheme: kubetest.Scheme()}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"acmezone", "cert-manager", shop, blog} {
		if err := c.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	c.kubectl(t, "apply", "-f", filepath.Join(root, "deploy", "coredns", "rbac.yaml"),
		"-f", filepath.Join(root, "deploy", "controller", "rbac.yaml"),
		"-f", filepath.Join(root, "deploy", "controller", "acme-dns", "rbac.yaml"))
	c.tenant(t, blog, attacker)
	mcfg := rest.CopyConfig(c.cp.Config)
	mcfg.Impersonate = rest.ImpersonationConfig{UserName: attacker, Groups: []string{"system:authenticated"}}
	if c.mallory, err = client.New(mcfg, client.Options{Scheme: kubetest.Scheme()}); err != nil {
		t.Fatal(err)
	}

	// A Delegation from before targets were derived: its status holds a random target (as the
	// earlier controller wrote it), and the user's CNAME points there.
	c.legacy = "5e0c1d2a-7b3f-4e8d-9a6c-0f1e2d3c4b5a." + zone
	legacy := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "legacy"}, Spec: v1alpha1.DelegationSpec{Domain: "legacy.example"}}
	if err := c.admin.Create(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	legacy.Status.Target = c.legacy
	if err := c.admin.Status().Update(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(legacy.CreationTimestamp.Add(1100 * time.Millisecond))) // the key Secret is younger

	// The public DNS the controller verifies through.
	c.provider = recordstest.NewServer(t,
		"ns.example.com. 300 IN A "+stack.AcmezoneIP,
		"acme.example.com. 300 IN NS ns.example.com.",
	)
	c.cp.Resolver = c.provider.Addr

	// The controller, as its service account, with its target key in a Secret it creates.
	ctrlKubeconfig := c.impersonating(t, "controller", controllerSA)
	acmeDNSAddr := freeAddr(t)
	c.acmeDNS = "http://" + acmeDNSAddr
	// The RFC 2136 listener runs from the start, without the RBAC of deploy/components/rfc2136
	// but while TestAttacks/RFC2136 runs: LeastPrivilege checks deploy/'s default rights.
	c.rfc2136 = freeAddr(t)
	c.controller, err = c.cp.StartController(c.dir, filepath.Join(root, "bin", "acmezone-controller"), "",
		"--kubeconfig="+ctrlKubeconfig, "--authentication-kubeconfig="+ctrlKubeconfig, "--authorization-kubeconfig="+ctrlKubeconfig,
		"--target-key-secret=acmezone/acmezone-target-key",
		"--acme-dns-listen="+acmeDNSAddr,
		"--rfc2136-listen="+c.rfc2136,
		"--acme-dns-trusted-header=X-Forwarded-For", "--acme-dns-trusted-proxies=10.0.0.0/8",
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.controller.Stop()
		if t.Failed() {
			t.Logf("acmezone-controller log:\n%s", c.controller.Tail(60))
		}
	})
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.cp.RegisterWebhook(rctx); err != nil {
		t.Fatalf("%v\n%s", err, c.controller.Tail(40))
	}
	var sec corev1.Secret
	eventually(t, "the controller creates the target key Secret", func() (bool, string) {
		err := c.admin.Get(ctx, client.ObjectKey{Namespace: "acmezone", Name: "acmezone-target-key"}, &sec)
		return err == nil, fmt.Sprint(err)
	})
	if c.targetKey, err = v1alpha1.NewTargetKey(sec.Data["key"]); err != nil {
		t.Fatal(err)
	}
	// What the kubelet does for the CoreDNS pod: the Secret's key, mounted as a file.
	c.keyFile = filepath.Join(c.dir, "target-key")
	if err := os.WriteFile(c.keyFile, sec.Data["key"], 0o600); err != nil {
		t.Fatal(err)
	}
	c.startCoreDNS(t)
	return c
}

// startCoreDNS runs bin/coredns as acmezone-coredns. The bufsize plugin is left out on
// purpose: the plugin bounds UDP answers itself.
func (c *cluster) startCoreDNS(t *testing.T) {
	t.Helper()
	if c.dnsAddr == "" {
		c.dnsAddr = freeAddr(t)
	}
	host, port, _ := net.SplitHostPort(c.dnsAddr)
	corefile := filepath.Join(c.dir, "Corefile")
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(`acme.example.com:%s {
    bind %s
    errors
    acmezone {
        nameserver ns1.acme.example.com 127.0.0.53
        kubeconfig %s
        target_key %s
        configmaps acmezone
        max_values %d
        ttl 5
        startup_timeout 30s
    }
}
`, port, host, c.impersonating(t, "coredns", corednsSA), c.keyFile, maxValues)), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := stack.Start(c.dir, "coredns", filepath.Join(root, "bin", "coredns"), "-conf", corefile)
	if err != nil {
		t.Fatal(err)
	}
	c.coredns = p
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("coredns log:\n%s", p.Tail(60))
		}
	})
	eventually(t, "CoreDNS serves the zone", func() (bool, string) {
		r, err := c.query(zone, dns.TypeSOA, "tcp", 0)
		if err != nil {
			return false, err.Error()
		}
		return r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1, r.String()
	})
}

// tenant gives user the standard edit role in ns, and every right on acmezone's CRDs there
// (the status subresource too: the rules must hold even then).
func (c *cluster) tenant(t *testing.T, ns, user string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "acmezone-tenant-everything"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"delegations", "delegations/status", "challengerecords"}, Verbs: []string{"*"}}},
	}
	if err := c.admin.Create(ctx, role); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	// edit's rules are aggregated into it by kube-controller-manager, which this control plane
	// does not run: bind the role they come from too.
	for _, r := range []string{"edit", "system:aggregate-to-edit", "system:aggregate-to-view", role.Name} {
		if err := c.admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-" + r},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// impersonating writes a kubeconfig for the admin that acts as user (a service account of
// deploy/), so a process under test has exactly that account's rights.
func (c *cluster) impersonating(t *testing.T, name, user string) string {
	t.Helper()
	cfg := c.cp.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	ns := strings.Split(user, ":")[2]
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
		Impersonate: user, ImpersonateGroups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "sa"}
	kc.CurrentContext = "test"
	path := filepath.Join(c.dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), append([]string{"--kubeconfig", c.cp.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// target is the rule's target for namespace and domain.
func (c *cluster) target(ns, domain string) string {
	t, err := c.targetKey.Target(v1alpha1.TargetClaim{Namespace: ns, Domain: domain}, zone)
	if err != nil {
		panic(err)
	}
	return t
}

// query asks CoreDNS over network ("udp" or "tcp"), with an EDNS0 buffer of bufsize (0: none).
func (c *cluster) query(name string, qtype uint16, network string, bufsize uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	if bufsize > 0 {
		m.SetEdns0(bufsize, false)
	}
	cl := &dns.Client{Net: network, Timeout: 2 * time.Second, UDPSize: 65535}
	r, _, err := cl.Exchange(m, c.dnsAddr)
	return r, err
}

// txt returns the TXT values served at name, over TCP, sorted.
func (c *cluster) txt(t *testing.T, name string) []string {
	t.Helper()
	r, err := c.query(name, dns.TypeTXT, "tcp", 1232)
	if err != nil {
		t.Fatalf("TXT %s: %v", name, err)
	}
	var out []string
	for _, rr := range r.Answer {
		if v, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(v.Txt, ""))
		}
	}
	slices.Sort(out)
	return out
}

// record writes a ChallengeRecord as cl (the namespace's user) and returns it. Its creation
// time has sub-seconds (as the solver writes it), so "newest" is well defined.
func (c *cluster) record(t *testing.T, cl client.Client, ns, fqdn, value string) *v1alpha1.ChallengeRecord {
	t.Helper()
	rec := v1alpha1.NewChallengeRecord(ns, fqdn, value)
	rec.Annotations = map[string]string{v1alpha1.CreatedAtAnnotation: time.Now().UTC().Format(time.RFC3339Nano)}
	if err := cl.Create(context.Background(), rec); err != nil {
		t.Fatalf("create ChallengeRecord in %s at %s: %v", ns, fqdn, err)
	}
	return rec
}

// delegation creates a Delegation as cl.
func (c *cluster) delegation(t *testing.T, cl client.Client, ns, name, domain, target string) *v1alpha1.Delegation {
	t.Helper()
	d := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.DelegationSpec{Domain: domain, Target: target}}
	if err := cl.Create(context.Background(), d); err != nil {
		t.Fatalf("create Delegation %s/%s: %v", ns, name, err)
	}
	return d
}

// settle waits until a sentinel written after the attack is served: CoreDNS has seen the
// ChallengeRecords and Delegations written before it (one watch per kind, in order).
func (c *cluster) settle(t *testing.T, what string) {
	t.Helper()
	ns := "acmezone"
	domain := fmt.Sprintf("sentinel-%d.example", time.Now().UnixNano())
	c.delegation(t, c.admin, ns, strings.ReplaceAll(domain, ".", "-"), domain, "")
	value := key(int(time.Now().UnixNano() % 1e9))
	c.record(t, c.admin, ns, c.target(ns, domain), value)
	eventually(t, "the sentinel after "+what, func() (bool, string) {
		got := c.txt(t, c.target(ns, domain))
		return slices.Equal(got, []string{value}), fmt.Sprint(got)
	})
	time.Sleep(300 * time.Millisecond) // the other kinds' watches
}

// eventually polls cond for up to 30 s.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if pc, err := net.ListenPacket("udp", addr); err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no free port for UDP and TCP")
	return ""
}
