// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package recordstest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/dnssec"
	"github.com/coredns/coredns/plugin/pkg/cache"
	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/controller"
)

// Key is a signing key of a zone, in files as CoreDNS's dnssec plugin reads them.
type Key struct {
	DNSKEY *dns.DNSKEY
	DS     *dns.DS // SHA-256
	// Base is the files' path without ".key" and ".private", the dnssec block's `key file`.
	Base string
}

// NewKey makes a key for zone with controller.NewDNSKEY and writes its files into a
// temporary directory of the test.
func NewKey(t testing.TB, zone string) Key {
	t.Helper()
	k, pub, priv, err := controller.NewDNSKEY(dns.CanonicalName(zone))
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(base+".key", []byte(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".private", []byte(priv), 0o600); err != nil {
		t.Fatal(err)
	}
	return Key{DNSKEY: k, DS: k.ToDS(dns.SHA256), Base: base}
}

// NameServer is an authoritative name server of one zone on a loopback address, answering
// over UDP and TCP: the zone's apex exists and has no records (NODATA for every type), other
// names do not exist. With keys, CoreDNS's own dnssec plugin sits in front and signs, as in
// acmezone's Corefile with a dnssec block; without, DNSKEY queries get NODATA as from a
// CoreDNS whose Corefile has none.
type NameServer struct {
	// Addr is IP:PORT.
	Addr string

	zone    string
	handler atomic.Pointer[plugin.Handler]
}

// NewNameServer starts a NameServer for zone at ip (127.0.0.x) and port (0: any free one),
// stopped when the test ends.
func NewNameServer(t testing.TB, ip string, port int, zone string, keys ...Key) *NameServer {
	t.Helper()
	s := &NameServer{zone: dns.CanonicalName(zone)}
	s.SetKeys(t, keys...)
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_, _ = (*s.handler.Load()).ServeDNS(context.Background(), w, r)
	})
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen UDP: %v", err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Fatalf("listen TCP at %s: %v", pc.LocalAddr(), err)
	}
	serve(t, pc, l, handler)
	s.Addr = pc.LocalAddr().String()
	return s
}

// SetKeys makes the server sign with keys from now on (none: no dnssec block), as a
// CoreDNS reloaded with another Corefile.
func (s *NameServer) SetKeys(t testing.TB, keys ...Key) {
	t.Helper()
	var h plugin.Handler = apex{s.zone}
	if len(keys) > 0 {
		var parsed []*dnssec.DNSKEY
		for _, k := range keys {
			p, err := dnssec.ParseKeyFile(k.Base+".key", k.Base+".private")
			if err != nil {
				t.Fatalf("dnssec plugin: %v", err)
			}
			parsed = append(parsed, p)
		}
		h = dnssec.New([]string{s.zone}, parsed, false, h, cache.New[[]dns.RR](1000))
	}
	s.handler.Store(&h)
}

// Port is the server's port.
func (s *NameServer) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// apex answers for zone: NODATA with the SOA at the apex, NXDOMAIN below it.
type apex struct{ zone string }

func (a apex) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if !dns.IsSubDomain(a.zone, dns.CanonicalName(r.Question[0].Name)) {
		m.Rcode = dns.RcodeRefused
	} else if dns.CanonicalName(r.Question[0].Name) != a.zone {
		m.Rcode = dns.RcodeNameError
	}
	soa, _ := dns.NewRR(a.zone + " 5 IN SOA ns.example.com. hostmaster.example.com. 1 60 30 604800 5")
	m.Ns = []dns.RR{soa}
	_ = w.WriteMsg(m)
	return m.Rcode, nil
}

func (a apex) Name() string { return "apex" }
