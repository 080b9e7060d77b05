// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package integration tests the acmezone plugin against a real kube-apiserver and etcd
// (controller-runtime's envtest with the binaries from `make testbin`) and the real CoreDNS
// server, queried over UDP and TCP.
package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coretest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/dnstest"
	"github.com/acmezone/acmezone/internal/kubetest"
	"github.com/acmezone/acmezone/plugin/acmezone"
)

func init() { acmezone.InsertDirective() }

// startAPIServer starts etcd and kube-apiserver with the acmezone CRDs installed.
func startAPIServer(t *testing.T) (*kubetest.Env, client.Client, string) {
	t.Helper()
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "..", "deploy", "crds")})
	return env, env.Client, env.Kubeconfig
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// corefile serves the zone from the API server at kubeconfig, with the target key in keyFile
// and static data from ConfigMaps in namespace acmezone. No bufsize plugin: the plugin bounds
// UDP answers itself.
func corefile(kubeconfig, keyFile string, readyPort int) string {
	return fmt.Sprintf(`acme.example.com:0 {
	bind 127.0.0.1
	ready 127.0.0.1:%d
	acmezone {
		nameserver ns.acme.example.com 127.0.0.53
		kubeconfig %s
		target_key %s
		configmaps acmezone
		max_values 100
		ttl 10
		soa hostmaster.example.com 60 30 86400 5
		startup_timeout 30s
	}
}
`, readyPort, kubeconfig, keyFile)
}

// writeKey writes a random target key to a file, as `head -c 32 /dev/urandom | base64` does,
// and returns its path and the key, to compute the targets the plugin serves.
func writeKey(t *testing.T) (string, v1alpha1.TargetKey) {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	text := base64.StdEncoding.EncodeToString(raw) + "\n"
	path := filepath.Join(t.TempDir(), "target-key")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := v1alpha1.NewTargetKey([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return path, key
}

// targetOf is where the plugin serves the records of a Delegation d, by the tenancy rule.
func targetOf(t *testing.T, key v1alpha1.TargetKey, d *v1alpha1.Delegation) string {
	t.Helper()
	target, err := key.Target(v1alpha1.ClaimOf(d), "acme.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// resolver queries the server under test over one transport.
type resolver struct {
	net, addr string
}

func (r resolver) query(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: r.net, Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(m, r.addr)
	return resp, err
}

// answer is what a test expects: the rcode and the sorted TXT (or A) values.
type answer struct {
	rcode  int
	values []string
}

func (a answer) String() string {
	return fmt.Sprintf("%s %v", dns.RcodeToString[a.rcode], a.values)
}

func summarize(m *dns.Msg) answer {
	a := answer{rcode: m.Rcode}
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.TXT:
			a.values = append(a.values, strings.Join(v.Txt, ""))
		case *dns.A:
			a.values = append(a.values, v.A.String())
		default:
			a.values = append(a.values, rr.String())
		}
	}
	slices.Sort(a.values)
	return a
}

// eventually queries over every transport until the answer matches want.
func eventually(t *testing.T, resolvers []resolver, name string, qtype uint16, want answer) {
	t.Helper()
	for _, r := range resolvers {
		deadline := time.Now().Add(15 * time.Second)
		var last string
		for {
			resp, err := r.query(name, qtype)
			if err == nil {
				got := summarize(resp)
				if got.String() == want.String() {
					if !resp.Authoritative || resp.RecursionAvailable {
						t.Errorf("%s %s over %s: AA=%v RA=%v, want AA and no RA", name, dns.TypeToString[qtype], r.net, resp.Authoritative, resp.RecursionAvailable)
					}
					break
				}
				last = got.String()
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s over %s: got %s, want %s", name, dns.TypeToString[qtype], r.net, last, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// syncBuffer collects the in-process CoreDNS's log (the standard library's logger).
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestAgainstAPIServer(t *testing.T) {
	logs := &syncBuffer{}
	log.SetOutput(io.MultiWriter(os.Stderr, logs))
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	env, c, kubeconfig := startAPIServer(t)
	ctx := context.Background()
	for _, ns := range []string{"shop", "other", "acmezone"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	keyFile, key := writeKey(t)

	readyPort := freePort(t)
	inst, udp, tcp, err := coretest.CoreDNSServerAndPorts(corefile(kubeconfig, keyFile, readyPort))
	if err != nil {
		t.Fatalf("start CoreDNS: %v", err)
	}
	t.Cleanup(func() { inst.Stop() })
	both := []resolver{{"udp", udp}, {"tcp", tcp}}
	shopDelegation := func(name string) *v1alpha1.Delegation {
		return &v1alpha1.Delegation{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
		}
	}
	target := targetOf(t, key, shopDelegation("example-com"))

	t.Run("synced and ready", func(t *testing.T) {
		eventually(t, both, "acme.example.com.", dns.TypeNS, answer{values: []string{"acme.example.com.\t3600\tIN\tNS\tns.acme.example.com."}})
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/ready: %d, want 200 once synced", resp.StatusCode)
		}
		eventually(t, both, target, dns.TypeTXT, answer{rcode: dns.RcodeNameError})
	})

	t.Run("delegation, records, tenancy", func(t *testing.T) {
		d := shopDelegation("example-com")
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		eventually(t, both, target, dns.TypeTXT, answer{}) // NODATA: delegated, no record yet

		// Namespace other reads shop's target in public DNS and tries to answer there: a
		// record, Delegations naming the target without a proof and with a copied one.
		for _, steal := range []*v1alpha1.Delegation{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "steal"}, Spec: v1alpha1.DelegationSpec{Domain: "example.com", Target: target}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "copied-proof", Annotations: map[string]string{v1alpha1.TargetProofAnnotation: key.Proof("shop", "example.com", target)}},
				Spec: v1alpha1.DelegationSpec{Domain: "example.com", Target: target}},
		} {
			if err := c.Create(ctx, steal); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Create(ctx, v1alpha1.NewChallengeRecord("other", target, "forged-value-from-other-namespace")); err != nil {
			t.Fatal(err)
		}
		k1 := v1alpha1.NewChallengeRecord("shop", target, "key-one-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
		if err := c.Create(ctx, k1); err != nil {
			t.Fatal(err)
		}
		// Creating the same record again is refused by name: idempotent.
		if err := c.Create(ctx, v1alpha1.NewChallengeRecord("shop", strings.ToUpper(target), k1.Spec.Value)); err == nil {
			t.Error("a second ChallengeRecord with the same fqdn and value was created; want AlreadyExists")
		}
		eventually(t, both, target, dns.TypeTXT, answer{values: []string{k1.Spec.Value}})

		k2 := v1alpha1.NewChallengeRecord("shop", target, "key-two-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
		if err := c.Create(ctx, k2); err != nil {
			t.Fatal(err)
		}
		eventually(t, both, strings.ToUpper(target), dns.TypeTXT, answer{values: []string{k1.Spec.Value, k2.Spec.Value}})

		if err := c.Delete(ctx, k1); err != nil {
			t.Fatal(err)
		}
		eventually(t, both, target, dns.TypeTXT, answer{values: []string{k2.Spec.Value}})

		// shop's Delegation is gone: the target does not pass to other, whose Delegations
		// and record still wait there.
		if err := c.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
		eventually(t, both, target, dns.TypeTXT, answer{rcode: dns.RcodeNameError})
		time.Sleep(time.Second) // time for a wrong answer to show
		eventually(t, both, target, dns.TypeTXT, answer{rcode: dns.RcodeNameError})
		// Re-created under another name, it gets the same target back.
		if err := c.Create(ctx, shopDelegation("example-com-again")); err != nil {
			t.Fatal(err)
		}
		eventually(t, both, target, dns.TypeTXT, answer{values: []string{k2.Spec.Value}})
	})

	t.Run("spec.target at the zone's challenge name", func(t *testing.T) {
		grab := &v1alpha1.Delegation{
			ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "zone-challenge"},
			Spec:       v1alpha1.DelegationSpec{Domain: "acme.example.com", Target: "_acme-challenge.acme.example.com."},
		}
		if err := c.Create(ctx, grab); err == nil {
			// The CRD refuses it; if it did not, the plugin must place it nowhere.
			if err := c.Create(ctx, v1alpha1.NewChallengeRecord("other", "_acme-challenge.acme.example.com.", "zone-challenge-value")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			eventually(t, both, "_acme-challenge.acme.example.com.", dns.TypeTXT, answer{rcode: dns.RcodeNameError})
		}
	})

	migrated := "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	t.Run("spec.target proved by the annotation", func(t *testing.T) {
		proof := key.Proof("shop", "shop.example", migrated)
		d := &v1alpha1.Delegation{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "migrated", Annotations: map[string]string{v1alpha1.TargetProofAnnotation: proof}},
			Spec:       v1alpha1.DelegationSpec{Domain: "shop.example", Target: migrated},
		}
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, v1alpha1.NewChallengeRecord("shop", migrated, "assigned-value")); err != nil {
			t.Fatal(err)
		}
		// other copies the annotation: the proof names shop, so it proves nothing for other.
		copied := &v1alpha1.Delegation{
			ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "migrated", Annotations: map[string]string{v1alpha1.TargetProofAnnotation: proof}},
			Spec:       v1alpha1.DelegationSpec{Domain: "shop.example", Target: migrated},
		}
		if err := c.Create(ctx, copied); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, v1alpha1.NewChallengeRecord("other", migrated, "forged-value-from-other-namespace")); err != nil {
			t.Fatal(err)
		}
		eventually(t, both, migrated, dns.TypeTXT, answer{values: []string{"assigned-value"}})
	})

	t.Run("configmap records", func(t *testing.T) {
		label := target[:strings.IndexByte(target, '.')]
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: "static", Labels: map[string]string{acmezone.ZoneLabel: "acme.example.com"}},
			Data: map[string]string{"records": `www 60 IN A 192.0.2.10
this line is not a record
stray.other.org. IN A 192.0.2.99
@ IN CAA 0 issue "letsencrypt.org"
` + label + ` IN TXT "forged-value-from-a-configmap"
ns IN A 203.0.113.66
_acme-challenge IN TXT "forged-value-from-a-configmap"
`},
		}
		if err := c.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
		eventually(t, both, "www.acme.example.com.", dns.TypeA, answer{values: []string{"192.0.2.10"}})
		eventually(t, both, "acme.example.com.", dns.TypeCAA, answer{values: []string{"acme.example.com.\t10\tIN\tCAA\t0 issue \"letsencrypt.org\""}})
		// Static data may not speak for a target, the glue or the zone's challenge name.
		eventually(t, both, target, dns.TypeTXT, answer{values: []string{"key-two-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}})
		eventually(t, both, "ns.acme.example.com.", dns.TypeA, answer{values: []string{"127.0.0.53"}})
		eventually(t, both, "_acme-challenge.acme.example.com.", dns.TypeTXT, answer{rcode: dns.RcodeNameError})

		cm.Data["records"] = "www 60 IN A 192.0.2.11\n"
		if err := c.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		eventually(t, both, "www.acme.example.com.", dns.TypeA, answer{values: []string{"192.0.2.11"}})
		eventually(t, both, "acme.example.com.", dns.TypeCAA, answer{})

		// Neither a ConfigMap without the label nor one in a tenant's namespace is read.
		for _, other := range []*corev1.ConfigMap{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: "unlabelled"}, Data: map[string]string{"records": "plain 60 IN A 192.0.2.12\n"}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "tenant", Labels: map[string]string{acmezone.ZoneLabel: "acme.example.com"}}, Data: map[string]string{"records": "tenant 60 IN A 192.0.2.13\n"}},
		} {
			if err := c.Create(ctx, other); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Delete(ctx, cm); err != nil {
			t.Fatal(err)
		}
		eventually(t, both, "www.acme.example.com.", dns.TypeA, answer{rcode: dns.RcodeNameError})
		eventually(t, both, "plain.acme.example.com.", dns.TypeA, answer{rcode: dns.RcodeNameError})
		eventually(t, both, "tenant.acme.example.com.", dns.TypeA, answer{rcode: dns.RcodeNameError})
	})

	t.Run("UDP answers are at most 1232 bytes", func(t *testing.T) {
		d := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "many"}, Spec: v1alpha1.DelegationSpec{Domain: "many.example"}}
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		many := targetOf(t, key, d)
		var values []string
		for i := range 60 {
			v := fmt.Sprintf("value-%037d", i)
			values = append(values, v)
			if err := c.Create(ctx, v1alpha1.NewChallengeRecord("shop", many, v)); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, []resolver{{"tcp", tcp}}, many, dns.TypeTXT, answer{values: values})
		// A 49-byte question asking for a 65535-byte buffer.
		m := new(dns.Msg)
		m.SetQuestion(many, dns.TypeTXT)
		m.SetEdns0(65535, false)
		q, raw, resp, err := dnstest.ExchangeUDP(udp, m, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		n := len(raw)
		if n > 1232 || !resp.Truncated {
			t.Errorf("a %d-byte question for 60 values got %d bytes over UDP, TC=%v; want at most 1232 with TC", len(q), n, resp.Truncated)
		}
	})

	t.Run("the API server rejects bad records and the answer is unchanged", func(t *testing.T) {
		ttl := func(v int32) *int32 { return &v }
		bad := []v1alpha1.ChallengeRecordSpec{
			{FQDN: migrated, Value: "line\nbreak"},
			{FQDN: migrated, Value: strings.Repeat("x", 256)},
			{FQDN: migrated, Value: ""},
			{FQDN: strings.TrimSuffix(migrated, "."), Value: "no-trailing-dot"},
			{FQDN: "two words.acme.example.com.", Value: "space-in-name"},
			{FQDN: migrated, Value: "ttl-zero", TTL: ttl(0)},
			{FQDN: migrated, Value: "ttl-huge", TTL: ttl(100000)},
		}
		for i, spec := range bad {
			cr := &v1alpha1.ChallengeRecord{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("bad-%d", i)}, Spec: spec}
			if err := c.Create(ctx, cr); err == nil {
				t.Errorf("Test %d: ChallengeRecord %+v was accepted; want a validation error", i, spec)
			}
		}
		// The spec is immutable: the name is derived from it.
		cr := &v1alpha1.ChallengeRecord{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(v1alpha1.NewChallengeRecord("shop", migrated, "assigned-value")), cr); err != nil {
			t.Fatal(err)
		}
		cr.Spec.Value = "changed-value"
		if err := c.Update(ctx, cr); err == nil || !strings.Contains(err.Error(), "spec is immutable") {
			t.Errorf("changing a ChallengeRecord's spec: %v, want the immutability error", err)
		}
		if err := c.Create(ctx, &v1alpha1.Delegation{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "bad-domain"},
			Spec:       v1alpha1.DelegationSpec{Domain: "not a domain"},
		}); err == nil {
			t.Error("a Delegation with domain \"not a domain\" was accepted")
		}
		eventually(t, both, migrated, dns.TypeTXT, answer{values: []string{"assigned-value"}})
	})

	t.Run("lists of several pages after a reload", func(t *testing.T) {
		// More objects than one list page (500) of each kind, so that a new instance reads
		// every kind in several pages.
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "many"}}); err != nil {
			t.Fatal(err)
		}
		const n = 1201
		delegation := func(i int) *v1alpha1.Delegation {
			return &v1alpha1.Delegation{
				ObjectMeta: metav1.ObjectMeta{Namespace: "many", Name: fmt.Sprintf("d%04d", i)},
				Spec:       v1alpha1.DelegationSpec{Domain: fmt.Sprintf("d%04d.example.com", i)},
			}
		}
		name := func(i int) string { return targetOf(t, key, delegation(i)) }
		value := func(i int) string { return fmt.Sprintf("value-%04d", i) }
		var wg sync.WaitGroup
		errs := make(chan error, n)
		work := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range work {
					if err := c.Create(ctx, delegation(i)); err != nil {
						errs <- err
						continue
					}
					if err := c.Create(ctx, v1alpha1.NewChallengeRecord("many", name(i), value(i))); err != nil {
						errs <- err
					}
				}
			})
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		next, err := inst.Restart(coretest.NewInput(corefile(kubeconfig, keyFile, readyPort)))
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		inst = next
		for _, i := range []int{0, 499, 500, 777, n - 1} {
			eventually(t, both, name(i), dns.TypeTXT, answer{values: []string{value(i)}})
		}
		eventually(t, both, name(n), dns.TypeTXT, answer{rcode: dns.RcodeNameError})
		eventually(t, both, migrated, dns.TypeTXT, answer{values: []string{"assigned-value"}})
		// The reflectors report their list and watch errors as warnings: a clean reload
		// has none.
		if warned := grepLines(logs.String(), "[WARNING] plugin/acmezone: UnhandledError"); warned != "" {
			t.Errorf("list or watch errors during the reload:\n%s", warned)
		}
		if !strings.Contains(logs.String(), "synced with the API server") {
			t.Error("no sync line in the log: is the log capture working?")
		}
	})

	t.Run("reload keeps serving without leaking goroutines", func(t *testing.T) {
		before := runtime.NumGoroutine()
		for i := range 3 {
			next, err := inst.Restart(coretest.NewInput(corefile(kubeconfig, keyFile, readyPort)))
			if err != nil {
				t.Fatalf("reload %d: %v", i, err)
			}
			inst = next
			eventually(t, both, migrated, dns.TypeTXT, answer{values: []string{"assigned-value"}})
		}
		// Informers of replaced instances must be gone; allow for idle HTTP connections.
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before+10 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if after := runtime.NumGoroutine(); after > before+10 {
			t.Errorf("goroutines grew from %d to %d over 3 reloads", before, after)
		}
	})

	t.Run("API server gone: last snapshot is served", func(t *testing.T) {
		// Stop sends SIGTERM and, after StopTimeout, SIGKILL; either way the process is gone.
		_ = env.ControlPlane.APIServer.Stop()
		if err := c.List(ctx, &v1alpha1.DelegationList{}); err == nil {
			t.Fatal("the API server still answers after Stop")
		}
		time.Sleep(2 * time.Second) // let the informers notice
		for range 5 {
			eventually(t, both, migrated, dns.TypeTXT, answer{values: []string{"assigned-value"}})
			eventually(t, both, "nothing.acme.example.com.", dns.TypeTXT, answer{rcode: dns.RcodeNameError})
			time.Sleep(200 * time.Millisecond)
		}
		// ... and says that it may be stale.
		deadline := time.Now().Add(30 * time.Second)
		for staleReflectors(t) == 0 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if n := staleReflectors(t); n == 0 {
			t.Error("coredns_acmezone_stale_reflectors is still 0 30 s after the API server stopped")
		}
	})
}

// staleReflectors reads coredns_acmezone_stale_reflectors from the process's registry, where
// the in-process server registers its metrics.
func staleReflectors(t *testing.T) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "coredns_acmezone_stale_reflectors" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no coredns_acmezone_stale_reflectors in the registry")
	return 0
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
