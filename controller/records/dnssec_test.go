// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"context"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records/recordstest"
)

// signedZone is a signed challenge zone with two name servers on their own loopback
// addresses, each a real CoreDNS dnssec plugin in front of the zone: the public DNS (a
// recordstest.Server) serves the delegation, the DS and a challenge value.
type signedZone struct {
	key        recordstest.Key
	opts       controller.Options
	resolver   *Resolver
	public     *recordstest.Server
	port       int
	ns1IP      string
	ns2IP      string
	publicRRs  []string // the records of a correct set-up
	zoneRecord string   // the DS a user adds, zone-file form
}

// newSignedZone starts the zone; ns2Keys, when set, gives the keys the second name server
// signs with instead of the zone's (none: no dnssec block).
func newSignedZone(t *testing.T, ns2Keys func(t *testing.T, zoneKey recordstest.Key) []recordstest.Key) *signedZone {
	t.Helper()
	const zone = "acme.example.com."
	z := &signedZone{key: recordstest.NewKey(t, zone), ns1IP: "127.0.0.2", ns2IP: "127.0.0.3"}
	ns1 := recordstest.NewNameServer(t, z.ns1IP, 0, zone, z.key)
	z.port = ns1.Port()
	keys := []recordstest.Key{z.key}
	if ns2Keys != nil {
		keys = ns2Keys(t, z.key)
	}
	recordstest.NewNameServer(t, z.ns2IP, z.port, zone, keys...)
	z.opts = controller.Options{
		Zone: zone,
		NameServers: []controller.NameServer{
			{Name: "ns1.example.com.", Addrs: []net.IP{net.ParseIP(z.ns1IP)}},
			{Name: "ns2.example.com.", Addrs: []net.IP{net.ParseIP(z.ns2IP)}},
		},
		DS: []*dns.DS{z.key.DS},
	}
	z.zoneRecord = zone + " 3600 IN DS " + controller.DSContent(z.key.DS)
	z.publicRRs = []string{
		"ns1.example.com. 300 IN A " + z.ns1IP,
		"ns2.example.com. 300 IN A " + z.ns2IP,
		"acme.example.com. 300 IN NS ns1.example.com.",
		"acme.example.com. 300 IN NS ns2.example.com.",
		z.zoneRecord,
		"_acme-challenge.example.com. 300 IN CNAME " + seedTarget,
		seedTarget + ` 10 IN TXT "key-one"`,
	}
	z.public = recordstest.NewServer(t, z.publicRRs...)
	z.resolver = &Resolver{Servers: []string{z.public.Addr}, Timeout: 2 * time.Second, NameServerPort: z.port}
	return z
}

// copyFile copies a key file.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestForDS(t *testing.T) {
	key := recordstest.NewKey(t, "acme.example.com")
	opts := seedOptions()
	opts.DS = []*dns.DS{key.DS}
	recs := For(opts, "example.com", seedTarget)
	want := v1alpha1.DNSRecord{Type: "DS", Name: "acme.example.com", Content: controller.DSContent(key.DS)}
	if len(recs) != 4 || recs[2] != want {
		t.Fatalf("For with a key: %+v, want the DS %+v after the NS record", recs, want)
	}
	// The row is what a user types: a DS record the resolver library reads back as the key's.
	rr, err := dns.NewRR(recs[2].Name + ". IN DS " + recs[2].Content)
	if err != nil || !sameDS(rr.(*dns.DS), key.DNSKEY.ToDS(dns.SHA256)) {
		t.Errorf("the DS row %q does not parse back to the key's DS (%v)", recs[2].Content, err)
	}
	if strings.ToUpper(recs[2].Content) != recs[2].Content {
		t.Errorf("DS content %q: want the digest in upper case, as providers show it", recs[2].Content)
	}
	for _, r := range For(seedOptions(), "example.com", seedTarget) {
		if r.Type == TypeDS {
			t.Errorf("For without a key lists %+v", r)
		}
	}
}

func TestVerifyDNSSEC(t *testing.T) {
	z := newSignedZone(t, nil)
	other := recordstest.NewKey(t, "acme.example.com")
	otherDS := "acme.example.com. 3600 IN DS " + controller.DSContent(other.DS)
	ok := want{ok: true}
	dsRow := "acme.example.com DS " + controller.DSContent(z.key.DS)
	withoutDS := without(z.publicRRs, z.zoneRecord)
	tests := []struct {
		name string
		rrs  []string
		want []want // A, A, NS, NS, DS, CNAME, TXT lookup, DNSKEY ns1, DNSKEY ns2
	}{
		{name: "signed and linked", rrs: z.publicRRs, want: []want{ok, ok, ok, ok, ok, ok, ok, ok, ok}},
		{name: "rollover: the old DS next to the new", rrs: append(slices.Clone(z.publicRRs), otherDS), want: []want{ok, ok, ok, ok, ok, ok, ok, ok, ok}},
		{
			name: "DS missing", rrs: withoutDS,
			want: []want{ok, ok, ok, ok, {reason: "DSMissing", problem: "acme.example.com has no DS record at its parent zone, so validating resolvers treat it as unsigned; add this record: " + dsRow}, ok, ok, ok, ok},
		},
		{
			name: "DS of another key", rrs: append(slices.Clone(withoutDS), otherDS),
			want: []want{ok, ok, ok, ok, {reason: "DSMismatch", problem: "the DS of acme.example.com at its parent zone is " + controller.DSContent(other.DS) +
				", which matches no key acmezone's CoreDNS signs with (want " + controller.DSContent(z.key.DS) + "): validating resolvers reject every answer of the zone; replace it with this record: " + dsRow}, ok, ok, ok, ok},
		},
	}
	for i, tc := range tests {
		z.public.Set(t, tc.rrs...)
		checks := Verify(context.Background(), z.resolver, z.opts, "example.com", seedTarget)
		if len(checks) != len(tc.want) {
			t.Errorf("Test %d (%s): %d checks, want %d: %+v", i, tc.name, len(checks), len(tc.want), checks)
			continue
		}
		for j, c := range checks {
			w := tc.want[j]
			if c.OK != w.ok || c.Reason != w.reason || c.Problem != w.problem {
				t.Errorf("Test %d (%s): check %d (%s %s): OK=%v reason %q problem %q; want OK=%v reason %q problem %q",
					i, tc.name, j, c.Record.Type, c.Record.Content, c.OK, c.Reason, c.Problem, w.ok, w.reason, w.problem)
			}
		}
	}
	if c := Verify(context.Background(), z.resolver, z.opts, "example.com", seedTarget)[8]; c.Record.Type != TypeDNSKEY || c.Record.Content != "ns2.example.com" || !strings.Contains(c.Found, z.ns2IP) {
		t.Errorf("last check %+v, want the DNSKEY check of ns2.example.com at %s", c, z.ns2IP)
	}
}

// TestVerifyDNSKEY: every name server must serve the key and sign its DNSKEY records with it.
// The second name server is replaced by one that does not.
func TestVerifyDNSKEY(t *testing.T) {
	other := recordstest.NewKey(t, "acme.example.com")
	tests := []struct {
		name    string
		ns2     func(t *testing.T, zoneKey recordstest.Key) []recordstest.Key
		problem string // with NS2 for "ns2.example.com (127.0.0.3:PORT)"
	}{
		{
			name: "no dnssec block", ns2: func(*testing.T, recordstest.Key) []recordstest.Key { return nil },
			problem: "the name server NS2 serves no DNSKEY of acme.example.com with key tag TAG (it serves none), although the DS DS names it: give its CoreDNS the key in a dnssec block (the Secret acmezone-dnssec in deploy/'s dnssec component, or the chart's dnssec.enabled)",
		},
		{
			name: "another key", ns2: func(*testing.T, recordstest.Key) []recordstest.Key { return []recordstest.Key{other} },
			problem: "the name server NS2 serves no DNSKEY of acme.example.com with key tag TAG (it serves key tag OTHER), although the DS DS names it: give its CoreDNS the key in a dnssec block (the Secret acmezone-dnssec in deploy/'s dnssec component, or the chart's dnssec.enabled)",
		},
		{
			name: "the key signed by another private key", ns2: func(t *testing.T, zoneKey recordstest.Key) []recordstest.Key {
				// The zone's public key with another key's private part: what a forger without
				// the private key can serve.
				forged := recordstest.Key{Base: t.TempDir() + "/zone"}
				copyFile(t, zoneKey.Base+".key", forged.Base+".key")
				copyFile(t, other.Base+".private", forged.Base+".private")
				return []recordstest.Key{forged}
			},
			problem: "the name server NS2 serves the DNSKEY of acme.example.com with key tag TAG but no valid signature by it over the DNSKEY records: does its CoreDNS sign with that key's private part?",
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := newSignedZone(t, tc.ns2)
			checks := Verify(context.Background(), z.resolver, z.opts, "example.com", seedTarget)
			want := strings.NewReplacer("NS2", "ns2.example.com ("+net.JoinHostPort(z.ns2IP, itoa(z.port))+")", "OTHER", itoa(int(other.DNSKEY.KeyTag())),
				"TAG", itoa(int(z.key.DS.KeyTag)), " DS DS ", " DS "+controller.DSContent(z.key.DS)+" ").Replace(tc.problem)
			for j, c := range checks {
				switch {
				case j == len(checks)-1:
					if c.OK || c.Reason != ReasonDNSKEYNotServed || c.Problem != want {
						t.Errorf("Test %d: ns2's DNSKEY check: OK=%v reason %q problem\n%q, want DNSKEYNotServed\n%q", i, c.OK, c.Reason, c.Problem, want)
					}
				case !c.OK:
					t.Errorf("Test %d: check %d (%s %s) failed: %s", i, j, c.Record.Type, c.Record.Content, c.Problem)
				}
			}
		})
	}
}
