// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary wire messages to the handler. Whatever arrives, it must not
// panic, must answer every message that parses, must never serve a record it was not given
// (every record of every section is one of servable, another namespace's records included),
// and must never write more than 1232 bytes over UDP.
func FuzzServeDNS(f *testing.F) {
	a := newTestPlugin(f, testCorefile)
	fill(f, a)
	allowed := servable(f)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{shopTarget, dns.TypeTXT},
		{mixedCase, dns.TypeANY},
		{migratedTarget, dns.TypeTXT},
		{"a.b.acme.example.com.", dns.TypeA},
		{"acme.example.com.", dns.TypeAXFR},
		{"example.org.", dns.TypeNS},
		{"alias.acme.example.com.", dns.TypeTXT},
		{"loop1.acme.example.com.", dns.TypeA},
		{"acme.example.com.", dns.TypeNS},
		{"acme.example.com.", dns.TypeSOA},
		{"www.acme.example.com.", dns.TypeA},
		{"nodeleg.acme.example.com.", dns.TypeTXT},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(512, true)
		buf, _ := m.Pack()
		f.Add(buf)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})

	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			return // the server drops what it cannot unpack before any plugin sees it
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rc, err := a.ServeDNS(context.Background(), request.NewScrubWriter(m, rec), m)
		if err != nil {
			t.Fatalf("ServeDNS error %v for\n%s", err, m)
		}
		if rec.Msg == nil {
			// Only fallthrough or transfer hand a question on; neither is configured here.
			t.Fatalf("no reply (rc %d) for\n%s", rc, m)
		}
		if rec.Msg.Id != m.Id || !rec.Msg.Response {
			t.Fatalf("reply is not a response to the question:\n%s", rec.Msg)
		}
		for _, section := range [][]dns.RR{rec.Msg.Answer, rec.Msg.Ns, rec.Msg.Extra} {
			for _, rr := range section {
				if !allowed[servableKey(rr)] && !isRFC8482(rr) && rr.Header().Rrtype != dns.TypeOPT {
					t.Fatalf("served a record it was not given: %s\nin\n%s", rr, rec.Msg)
				}
			}
		}
		reply, err := rec.Msg.Pack()
		if err != nil {
			t.Fatalf("the reply does not pack (%v):\n%s", err, rec.Msg)
		}
		if len(reply) > maxUDPSize {
			t.Fatalf("%d bytes over UDP:\n%s", len(reply), rec.Msg)
		}
	})
}

// servable returns the records fill gives the plugin that it may serve, by servableKey: the
// SOA, NS and glue of testCorefile, the ConfigMap's records (read with miekg/dns's zone
// parser, not the plugin's), and the ChallengeRecords of the namespace placed at each target.
// fill gives others that must never be served: another namespace's records at a target, at
// the zone's own names, at names nobody delegated and outside the zone.
func servable(tb testing.TB) map[string]bool {
	tb.Helper()
	out := map[string]bool{}
	for _, s := range []string{
		"acme.example.com. 5 IN SOA ns.acme.example.com. hostmaster.example.com. 0 60 30 86400 5",
		"acme.example.com. 3600 IN NS ns.acme.example.com.",
		"acme.example.com. 3600 IN NS ns.example.com.",
		"ns.acme.example.com. 3600 IN A 192.0.2.53",
		"ns.acme.example.com. 3600 IN AAAA 2001:db8::53",
		shopTarget + " 10 IN TXT aaa-first-key",
		shopTarget + " 10 IN TXT zzz-second-key",
		migratedTarget + " 10 IN TXT migrated-value",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
		out[servableKey(rr)] = true
	}
	zp := dns.NewZoneParser(strings.NewReader(fixtureStatic), "acme.example.com.", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out[servableKey(rr)] = true
	}
	if err := zp.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// servableKey is a record without its TTL, its owner lower-cased (answers keep the question's
// spelling), and an SOA without its serial (it changes with every snapshot).
func servableKey(rr dns.RR) string {
	if soa, ok := rr.(*dns.SOA); ok {
		c := *soa
		c.Serial = 0
		rr = &c
	}
	h := rr.Header()
	return strings.ToLower(h.Name) + " " + dns.Class(h.Class).String() + " " + dns.Type(h.Rrtype).String() + " " + rr.String()[len(h.String()):]
}

// isRFC8482 reports whether rr is the HINFO the plugin answers ANY with (RFC 8482 4.2).
func isRFC8482(rr dns.RR) bool {
	h, ok := rr.(*dns.HINFO)
	return ok && h.Cpu == "RFC8482" && h.Os == "" && h.Hdr.Class == dns.ClassINET
}
