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
// panic, must answer every message that parses, must never serve a record of another
// namespace than the target's, and must never write more than 1232 bytes over UDP.
func FuzzServeDNS(f *testing.F) {
	a := newTestPlugin(f, testCorefile)
	fill(f, a)
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
		for _, rr := range rec.Msg.Answer {
			if txt, ok := rr.(*dns.TXT); ok && (txt.Txt[0] == "forged-by-intruder" || strings.HasPrefix(txt.Txt[0], "grabbed-")) {
				t.Fatalf("served another namespace's record:\n%s", rec.Msg)
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
