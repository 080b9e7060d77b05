// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coretest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
	"github.com/acmezone/acmezone/plugin/acmezone"
)

const (
	zone    = "acme.example.com."
	xfrKey  = "xfr.acme.example.com."
	crdPath = "../../../deploy/crds"
)

// secondary plays a secondary name server: a miekg/dns server on a loopback port that
// records the NOTIFYs it gets, answering each after delay.
type secondary struct {
	addr  string
	delay atomic.Int64 // nanoseconds

	mu          sync.Mutex
	notifies    []notifyMsg
	inflight    int
	maxInflight int
}

type notifyMsg struct {
	serial   uint32 // of the SOA in the answer section, 0 for none
	signed   bool
	verified bool // signed, and the TSIG verifies with the secondary's key
}

func startSecondary(t *testing.T, secrets map[string]string) *secondary {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &secondary{addr: pc.LocalAddr().String()}
	srv := &dns.Server{PacketConn: pc, TsigSecret: secrets, Handler: dns.HandlerFunc(s.serve)}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

func (s *secondary) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	if r.Opcode != dns.OpcodeNotify {
		_ = w.WriteMsg(m.SetRcode(r, dns.RcodeRefused))
		return
	}
	s.mu.Lock()
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	s.mu.Unlock()
	time.Sleep(time.Duration(s.delay.Load()))
	n := notifyMsg{signed: r.IsTsig() != nil}
	n.verified = n.signed && w.TsigStatus() == nil
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			n.serial = soa.Serial
		}
	}
	s.mu.Lock()
	s.inflight--
	s.notifies = append(s.notifies, n)
	s.mu.Unlock()
	m.SetReply(r)
	m.Authoritative = true
	if tsig := r.IsTsig(); tsig != nil && n.verified {
		m.SetTsig(tsig.Hdr.Name, dns.HmacSHA256, 300, time.Now().Unix())
	}
	_ = w.WriteMsg(m)
}

// received returns the NOTIFYs received so far.
func (s *secondary) received() []notifyMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.notifies)
}

// waitNotify waits until the secondary has received a NOTIFY after the first `after` with
// serial in its SOA (any with serial 0), and returns how many it has received.
func (s *secondary) waitNotify(t *testing.T, after int, serial uint32) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := s.received()
		for _, n := range got[min(after, len(got)):] {
			if serial == 0 || n.serial == serial {
				return len(got)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no NOTIFY with serial %d after the first %d within 15 s; received %+v", serial, after, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomSecret() string {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	return base64.StdEncoding.EncodeToString(raw)
}

// servedSerial is the serial of the SOA the server answers, 0 while it answers none.
func servedSerial(addr string) uint32 {
	resp, err := resolver{"udp", addr}.query(zone, dns.TypeSOA)
	if err != nil || len(resp.Answer) != 1 {
		return 0
	}
	return resp.Answer[0].(*dns.SOA).Serial
}

// xfr runs a zone transfer over TCP, TSIG-signed with key when it is not "", and returns the
// records.
func xfr(addr string, m *dns.Msg, key, secret string) ([]dns.RR, error) {
	tr := &dns.Transfer{}
	if key != "" {
		tr.TsigSecret = map[string]string{key: secret}
		m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, err
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			return nil, env.Error
		}
		rrs = append(rrs, env.RR...)
	}
	if len(rrs) == 0 {
		return nil, fmt.Errorf("no records")
	}
	return rrs, nil
}

// axfr returns the zone's serial and records but the SOA, in text form, sorted.
func axfr(t *testing.T, addr, key, secret string) (uint32, []string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetAxfr(zone)
	rrs, err := xfr(addr, m, key, secret)
	if err != nil {
		t.Fatalf("AXFR: %v", err)
	}
	var z []string
	for _, rr := range rrs[1 : len(rrs)-1] {
		z = append(z, rr.String())
	}
	slices.Sort(z)
	return rrs[0].(*dns.SOA).Serial, z
}

// applyIXFR applies an IXFR answer to the zone at the old serial (records but the SOA, in
// text form) and returns the zone it describes, sorted, and whether it was incremental.
func applyIXFR(t *testing.T, old []string, rrs []dns.RR) (z []string, incremental bool) {
	t.Helper()
	if len(rrs) == 1 {
		return old, false
	}
	if rrs[1].Header().Rrtype != dns.TypeSOA { // the whole zone
		for _, rr := range rrs[1 : len(rrs)-1] {
			z = append(z, rr.String())
		}
		slices.Sort(z)
		return z, false
	}
	have := map[string]bool{}
	for _, rr := range old {
		have[rr] = true
	}
	adding := true // the next SOA starts a difference's deletions
	for _, rr := range rrs[1 : len(rrs)-1] {
		if rr.Header().Rrtype == dns.TypeSOA {
			adding = !adding
			continue
		}
		if have[rr.String()] == adding {
			t.Errorf("IXFR adds a record the old zone has, or deletes one it lacks: %s (adding %v)", rr, adding)
		}
		have[rr.String()] = adding
	}
	for rr, ok := range have {
		if ok {
			z = append(z, rr)
		}
	}
	slices.Sort(z)
	return z, true
}

// TestSecondaries runs the plugin as a primary for secondaries, against a real API server:
// NOTIFY (never before the initial sync, TSIG-signed, coalesced), IXFR from the journal and
// TSIG-protected transfers, and SOA serials that agree between replicas.
func TestSecondaries(t *testing.T) {
	// At first only the ChallengeRecord CRD: the Delegation reflector cannot list, so the
	// plugin does not sync while ChallengeRecords are written.
	env := kubetest.Start(t, []string{filepath.Join(crdPath, "acmezone.io_challengerecords.yaml")}, "shop", "acmezone")
	c, ctx := env.Client, context.Background()
	keyFile, key := writeKey(t)
	secret := randomSecret()
	signed := startSecondary(t, map[string]string{xfrKey: secret})

	primary := fmt.Sprintf(`acme.example.com:0 {
	bind 127.0.0.1
	tsig {
		secret %s %s
		require AXFR IXFR
	}
	transfer {
		to %s
	}
	acmezone {
		nameserver ns.acme.example.com 127.0.0.53
		kubeconfig %s
		target_key %s
		configmaps acmezone
		max_values 100
		startup_timeout 0
		notify %s
		notify_key %s
	}
}
`, xfrKey, secret, signed.addr, env.Kubeconfig, keyFile, signed.addr, xfrKey)
	inst, udp, tcp, err := coretest.CoreDNSServerAndPorts(primary)
	if err != nil {
		t.Fatalf("start CoreDNS: %v", err)
	}
	t.Cleanup(func() { inst.Stop() })

	d := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example-com"}, Spec: v1alpha1.DelegationSpec{Domain: "example.com"}}
	target := targetOf(t, key, d)
	create := func(t *testing.T, value string) *v1alpha1.ChallengeRecord {
		t.Helper()
		cr := v1alpha1.NewChallengeRecord("shop", target, value)
		if err := c.Create(ctx, cr); err != nil {
			t.Fatal(err)
		}
		return cr
	}
	var values []string // served at target
	serve := func(t *testing.T, addr string) {
		t.Helper()
		// Over TCP: 50 values do not fit a UDP answer.
		eventually(t, []resolver{{"tcp", addr}}, target, dns.TypeTXT, answer{values: slices.Sorted(slices.Values(values))})
	}

	t.Run("no NOTIFY before the initial sync", func(t *testing.T) {
		for i := range 3 {
			v := fmt.Sprintf("before-sync-%d", i)
			create(t, v)
			values = append(values, v)
		}
		time.Sleep(2 * time.Second)
		if got := signed.received(); len(got) != 0 {
			t.Errorf("%d NOTIFYs before the plugin synced: %+v", len(got), got)
		}
		if s := servedSerial(udp); s != 0 {
			t.Fatalf("the SOA is served (serial %d) before the Delegation CRD exists", s)
		}
		if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join(crdPath, "acmezone.io_delegations.yaml")}}); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		serve(t, tcp)
		signed.waitNotify(t, 0, servedSerial(udp))
	})

	var serials []uint32
	t.Run("serial follows resourceVersion, NOTIFY signed after each change", func(t *testing.T) {
		var last *v1alpha1.ChallengeRecord
		for i := range 6 {
			before := len(signed.received())
			if i%3 == 2 { // a deletion
				if err := c.Delete(ctx, last); err != nil {
					t.Fatal(err)
				}
				values = slices.DeleteFunc(values, func(v string) bool { return v == last.Spec.Value })
			} else {
				v := fmt.Sprintf("change-%d", i)
				last = create(t, v)
				values = append(values, v)
			}
			serve(t, tcp)
			serial := servedSerial(udp)
			if i%3 != 2 {
				if rv, _ := strconv.ParseUint(last.ResourceVersion, 10, 64); serial != uint32(rv) {
					t.Errorf("change %d: serial %d, want the new record's resourceVersion %s", i, serial, last.ResourceVersion)
				}
			}
			if n := len(serials); n > 0 && int32(serial-serials[n-1]) <= 0 {
				t.Errorf("change %d: serial %d after %d, want it to increase with each change", i, serial, serials[n-1])
			}
			serials = append(serials, serial)
			signed.waitNotify(t, before, serial)
		}
		for i, n := range signed.received() {
			if !n.verified {
				t.Errorf("NOTIFY %d: signed %v, verified %v; want every NOTIFY signed with %s", i, n.signed, n.verified, xfrKey)
			}
		}
		if ok := notifiesCounted(t, "ok"); ok < float64(len(signed.received())) {
			t.Errorf("coredns_acmezone_notifies_total{result=\"ok\"} is %v after %d NOTIFYs were answered", ok, len(signed.received()))
		}
	})

	t.Run("a burst of changes is notified in a few rounds, the last one included", func(t *testing.T) {
		signed.delay.Store(int64(200 * time.Millisecond)) // a secondary some way off
		defer signed.delay.Store(0)
		before := len(signed.received())
		for i := range 50 {
			v := fmt.Sprintf("burst-%02d", i)
			create(t, v)
			values = append(values, v)
		}
		serve(t, tcp)
		final := servedSerial(udp)
		signed.waitNotify(t, before, final)
		time.Sleep(time.Second) // a round too many would show now
		got := signed.received()[before:]
		t.Logf("50 changes, %d NOTIFY rounds", len(got))
		if len(got) >= 25 {
			t.Errorf("50 changes sent %d NOTIFYs, want far fewer (one round at a time)", len(got))
		}
		if last := got[len(got)-1].serial; last != final {
			t.Errorf("the last NOTIFY has serial %d, want the final %d", last, final)
		}
		signed.mu.Lock()
		defer signed.mu.Unlock()
		if signed.maxInflight != 1 {
			t.Errorf("%d NOTIFYs in flight at once, want one round at a time", signed.maxInflight)
		}
	})

	t.Run("IXFR and AXFR over TCP with TSIG", func(t *testing.T) {
		s0, z0 := axfr(t, tcp, xfrKey, secret)
		for i := range 3 {
			v := fmt.Sprintf("ixfr-%d", i)
			create(t, v)
			values = append(values, v)
		}
		if err := c.Delete(ctx, v1alpha1.NewChallengeRecord("shop", target, "burst-00")); err != nil {
			t.Fatal(err)
		}
		values = slices.DeleteFunc(values, func(v string) bool { return v == "burst-00" })
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: "static", Labels: map[string]string{acmezone.ZoneLabel: "acme.example.com"}},
			Data:       map[string]string{"records": "www 60 IN A 192.0.2.10\n"},
		}
		if err := c.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
		serve(t, tcp)
		eventually(t, []resolver{{"udp", udp}}, "www.acme.example.com.", dns.TypeA, answer{values: []string{"192.0.2.10"}})
		s2, z2 := axfr(t, tcp, xfrKey, secret)
		if s2 == s0 || slices.Equal(z0, z2) {
			t.Fatal("the changes changed nothing")
		}

		ixfr := func(serial uint32, key, secret string) ([]dns.RR, error) {
			m := new(dns.Msg)
			m.SetIxfr(zone, serial, "ns.acme.example.com.", "hostmaster.acme.example.com.")
			return xfr(tcp, m, key, secret)
		}
		rrs, err := ixfr(s0, xfrKey, secret)
		if err != nil {
			t.Fatalf("IXFR from %d: %v", s0, err)
		}
		got, incremental := applyIXFR(t, z0, rrs)
		if !incremental || !slices.Equal(got, z2) {
			t.Errorf("IXFR from %d: incremental %v; applied to the zone at %d it gives\n%v\nwant (AXFR)\n%v", s0, incremental, s0, got, z2)
		}
		if n := len(rrs); n > 20 {
			t.Errorf("IXFR from %d sent %d records for 6 changed ones", s0, n)
		}
		rrs, err = ixfr(serials[0]-1000, xfrKey, secret) // older than anything the journal holds
		if err != nil {
			t.Fatalf("IXFR from an old serial: %v", err)
		}
		if got, incremental := applyIXFR(t, nil, rrs); incremental || !slices.Equal(got, z2) {
			t.Errorf("IXFR from a serial the journal does not hold: incremental %v, want the whole zone", incremental)
		}
		if rrs, err := ixfr(s2, xfrKey, secret); err != nil || len(rrs) != 1 {
			t.Errorf("IXFR from the current serial: %d records (%v), want the SOA", len(rrs), err)
		}

		wrong := randomSecret()
		for _, tc := range []struct {
			what        string
			key, secret string
		}{{"without a key", "", ""}, {"with a wrong key", xfrKey, wrong}, {"with an unknown key", "other.acme.example.com.", secret}} {
			m := new(dns.Msg)
			m.SetAxfr(zone)
			if _, err := xfr(tcp, m, tc.key, tc.secret); err == nil {
				t.Errorf("AXFR %s succeeded", tc.what)
			}
			if _, err := ixfr(s0, tc.key, tc.secret); err == nil {
				t.Errorf("IXFR %s succeeded", tc.what)
			}
		}
	})

	t.Run("a second replica serves the same serials; the transfer plugin notifies", func(t *testing.T) {
		plain := startSecondary(t, nil)
		replica := fmt.Sprintf(`acme.example.com:0 {
	bind 127.0.0.1
	transfer {
		to %s
	}
	acmezone {
		nameserver ns.acme.example.com 127.0.0.53
		kubeconfig %s
		target_key %s
		configmaps acmezone
		max_values 100
	}
}
`, plain.addr, env.Kubeconfig, keyFile)
		second, udp2, tcp2, err := coretest.CoreDNSServerAndPorts(replica)
		if err != nil {
			t.Fatalf("start the second CoreDNS: %v", err)
		}
		defer second.Stop()
		serve(t, tcp2)
		s1, s2 := servedSerial(udp), servedSerial(udp2)
		if s1 != s2 {
			t.Errorf("the same content: serial %d on the first replica, %d on the one started later", s1, s2)
		}
		if int32(s2-serials[len(serials)-1]) <= 0 {
			t.Errorf("the replica started later serves %d, not newer than %d, which the first served for older content", s2, serials[len(serials)-1])
		}
		before := len(plain.received())
		create(t, "on-both")
		values = append(values, "on-both")
		serve(t, tcp)
		serve(t, tcp2)
		n1, n2 := servedSerial(udp), servedSerial(udp2)
		if n1 != n2 || int32(n1-s1) <= 0 {
			t.Errorf("after one more change: serials %d and %d, want equal and newer than %d", n1, n2, s1)
		}
		plain.waitNotify(t, before, 0)
		for _, n := range plain.received() {
			if n.signed {
				t.Errorf("a signed NOTIFY from the transfer plugin's path: %+v", n)
			}
		}
	})
}

// notifiesCounted reads coredns_acmezone_notifies_total for the zone and result from the
// process's registry, where the in-process servers register their metrics.
func notifiesCounted(t *testing.T, result string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "coredns_acmezone_notifies_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["zone"] == zone && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
