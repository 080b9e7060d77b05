// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package canary

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records"
	"github.com/acmezone/acmezone/controller/records/recordstest"
	"github.com/acmezone/acmezone/internal/kubetest"
)

const (
	zone   = "acme.example.com."
	target = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
)

// world is the DNS a canary meets: the zone's name server (acmezone's CoreDNS, fed with the
// ChallengeRecords of the API server as the plugin is) and public DNS (the resolver: the
// provider's records, and the zone's answers while the delegation holds).
type world struct {
	t        *testing.T
	c        client.Client
	ns       *recordstest.Server // the zone's name server
	public   *recordstest.Server // what the resolver sees
	provider []string            // the records at the user's DNS provider
	// Knobs: the name server stops reading the API (stale), the resolver stops seeing the
	// zone's current answers (stale resolver, or the delegation broken).
	nsStale, resolverStale atomic.Bool
}

func (w *world) values() []string {
	var recs v1alpha1.ChallengeRecordList
	if err := w.c.List(context.Background(), &recs); err != nil {
		return nil
	}
	var out []string
	for _, r := range recs.Items {
		if v1alpha1.CanonicalName(r.Spec.FQDN) == target {
			out = append(out, fmt.Sprintf("%s 1 IN TXT %q", target, r.Spec.Value))
		}
	}
	return out
}

// feed copies the served values into both servers every 50 ms, as the plugin's watch would.
func (w *world) feed(ctx context.Context) {
	zoneRRs := []string{zone + " 60 IN NS ns.example.com."}
	for {
		vals := w.values()
		if !w.nsStale.Load() {
			w.ns.Set(w.t, append(zoneRRs, vals...)...)
		}
		pub := append([]string(nil), w.provider...)
		switch {
		case w.resolverStale.Load():
			pub = append(pub, target+` 1 IN TXT "a value of an hour ago"`) // what it cached
		case delegated(w.provider):
			pub = append(pub, vals...)
		}
		w.public.Set(w.t, pub...)
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// delegated: the provider still delegates the zone to ns.example.com.
func delegated(provider []string) bool {
	for _, rr := range provider {
		if strings.HasPrefix(rr, zone+" ") && strings.HasSuffix(rr, "NS ns.example.com.") {
			return true
		}
	}
	return false
}

func correct() []string {
	return []string{
		"ns.example.com. 60 IN A 127.0.0.1",
		zone + " 60 IN NS ns.example.com.",
		"_acme-challenge.example.com. 60 IN CNAME " + target,
	}
}

func without(rrs []string, prefix string) []string {
	var out []string
	for _, rr := range rrs {
		if !strings.HasPrefix(rr, prefix) {
			out = append(out, rr)
		}
	}
	return out
}

// udpOnly serves h over UDP only, at ip and port: TCP there is refused.
func udpOnly(t *testing.T, ip string, port int, h dns.Handler) {
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
}

func TestProbe(t *testing.T) {
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds")}, "shop")
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example-com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}
	tests := []struct {
		name     string
		provider []string
		nsIP     string // the name server's address; the zone server's by default
		nsStale  bool
		resStale bool
		udpOnly  bool // the name server answers UDP only
		pending  bool // a real challenge's value is at the target
		ok       bool
		reason   string
		msg      string
	}{
		{name: "answered", provider: correct(), ok: true, reason: ReasonAnswered,
			msg: "came back for _acme-challenge.example.com through the resolvers in"},
		{name: "CNAME gone", provider: without(correct(), "_acme-challenge."), reason: records.ReasonCNAMEMissing,
			msg: "_acme-challenge.example.com has no CNAME; add: _acme-challenge.example.com CNAME " + strings.TrimSuffix(target, ".")},
		{name: "CNAME elsewhere", provider: append(without(correct(), "_acme-challenge."), "_acme-challenge.example.com. 60 IN CNAME old.acme-dns.example.net."),
			reason: records.ReasonCNAMEWrongTarget, msg: "is a CNAME to old.acme-dns.example.net, not to"},
		{name: "NS delegation changed", provider: append(without(correct(), zone), zone+" 60 IN NS ns.other-provider.example."),
			reason: records.ReasonNSNotDelegated, msg: "acme.example.com is not delegated to ns.example.com"},
		{name: "name server unreachable", provider: correct(), nsIP: "127.0.0.2", reason: ReasonUnreachableUDP,
			msg: "does not answer over UDP"},
		{name: "name server without TCP", provider: correct(), nsIP: "127.0.0.3", udpOnly: true, reason: ReasonUnreachableTCP,
			msg: "does not answer over TCP"},
		{name: "name server stale", provider: correct(), nsStale: true, reason: ReasonStaleNameServer,
			msg: "answers over UDP without a test value"},
		{name: "resolver stale", provider: correct(), resStale: true, reason: ReasonStaleResolver,
			msg: "although every record is in place"},
		{name: "real challenge pending", provider: correct(), pending: true, reason: ReasonChallengePending},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			w := &world{t: t, c: env.Client, ns: recordstest.NewServer(t), public: recordstest.NewServer(t), provider: tc.provider}
			w.nsStale.Store(tc.nsStale)
			w.resolverStale.Store(tc.resStale)
			done := make(chan struct{})
			go func() { defer close(done); w.feed(ctx) }()
			defer func() { cancel(); <-done }()

			_, portStr, _ := net.SplitHostPort(w.ns.Addr)
			var port int
			fmt.Sscan(portStr, &port)
			ip := "127.0.0.1"
			if tc.nsIP != "" {
				ip = tc.nsIP
			}
			if tc.udpOnly {
				udpOnly(t, ip, port, w.ns)
			}
			opts := &controller.Options{Zone: zone, NameServers: []controller.NameServer{{Name: "ns.example.com.", Addrs: []net.IP{net.ParseIP(ip)}}}}
			p := &Prober{Client: env.Client, Resolver: &records.Resolver{Servers: []string{w.public.Addr}, Timeout: time.Second},
				Options: opts, Deadline: 2 * time.Second, Poll: 100 * time.Millisecond, Port: port}
			if tc.pending {
				real := v1alpha1.NewChallengeRecord("shop", target, "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
				if err := env.Client.Create(ctx, real); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = env.Client.Delete(context.Background(), real) }()
			}
			// A canary value left behind by an earlier leader goes first.
			leftover := v1alpha1.NewChallengeRecord("shop", target, "left-behind-by-a-stopped-leader-xxxxxxxxxxx")
			leftover.Labels = map[string]string{v1alpha1.CanaryLabel: "true"}
			if err := env.Client.Create(ctx, leftover); err != nil {
				t.Fatal(err)
			}

			r := p.Probe(ctx, d, target)
			t.Logf("%+v", r)
			if r.OK != tc.ok || r.Reason != tc.reason || !strings.Contains(r.Message, tc.msg) {
				t.Errorf("Probe: ok %v reason %q message %q; want ok %v reason %q and a message containing %q", r.OK, r.Reason, r.Message, tc.ok, tc.reason, tc.msg)
			}
			if tc.ok && r.Latency <= 0 {
				t.Errorf("latency %v for a value that came back", r.Latency)
			}
			if tc.pending != r.Skipped {
				t.Errorf("skipped %v, want %v", r.Skipped, tc.pending)
			}
			// Nothing of the canary's lingers; the real challenge's value is untouched.
			var recs v1alpha1.ChallengeRecordList
			if err := env.Client.List(ctx, &recs, client.InNamespace("shop")); err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs.Items {
				if rec.Labels[v1alpha1.CanaryLabel] != "" && !(tc.pending && rec.Name == leftover.Name) {
					t.Errorf("canary record %s (%s) left behind", rec.Name, rec.Spec.Value)
				}
			}
			if tc.pending {
				_ = env.Client.Delete(context.Background(), leftover)
			}
		})
	}
}
