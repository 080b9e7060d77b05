package acmezone

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/types"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

const testCorefile = `acmezone acme.example.com {
	nameserver ns.acme.example.com 192.0.2.53 2001:db8::53
	nameserver ns.example.com 198.51.100.1
	soa hostmaster.example.com 60 30 86400 5
	ttl 10
}`

// newTestPlugin parses corefile and fills the store directly, the way the informers would.
func newTestPlugin(t testing.TB, corefile string) *ACMEZone {
	t.Helper()
	cfg, err := parse(caddy.NewTestController("dns", corefile))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Next = test.NextHandler(dns.RcodeNameError, nil)
	return a
}

// Shorthands for the store's operations in tests, as the reflectors' Update, Add and Delete
// (with the object's last state) make them; a nil object in setRecord and setDelegation is a
// delete whose last state is unknown.
func (s *store) setRecord(key types.NamespacedName, rec *recordIn) { s.record(key, rec, anywhere, nil) }
func (s *store) addRecord(key types.NamespacedName, rec *recordIn) { s.record(key, rec, isNew, nil) }
func (s *store) deleteRecord(key types.NamespacedName, last *recordIn) {
	s.record(key, nil, anywhere, last)
}
func (s *store) setDelegation(key types.NamespacedName, d *delegationIn) {
	s.delegation(key, d, anywhere, nil)
}
func (s *store) addDelegation(key types.NamespacedName, d *delegationIn) {
	s.delegation(key, d, isNew, nil)
}
func (s *store) deleteDelegation(key types.NamespacedName, last *delegationIn) {
	s.delegation(key, nil, anywhere, last)
}

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

// claim is a Delegation's claim created at t; setDelegation fills in namespace and name.
func claim(t time.Time) v1alpha1.Claim { return v1alpha1.Claim{Created: t} }

// confirmed marks a claim as having its target in status.
func confirmed(c v1alpha1.Claim) v1alpha1.Claim {
	c.Confirmed = true
	return c
}

func fill(t testing.TB, a *ACMEZone) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	s := a.store
	s.setDelegation(nn("shop", "example-com"), &delegationIn{target: "t1.acme.example.com.", claim: claim(old)})
	s.setDelegation(nn("shop", "empty"), &delegationIn{target: "empty.acme.example.com.", claim: claim(old)})
	s.setDelegation(nn("other", "theirs"), &delegationIn{target: "t2.acme.example.com.", claim: claim(old)})
	// A younger claim on shop's target from another namespace: it must not win.
	s.setDelegation(nn("intruder", "steal"), &delegationIn{target: "t1.acme.example.com.", claim: claim(time.Now())})
	// An older claim, but only in spec, against a target the controller confirmed: it loses.
	s.setDelegation(nn("other", "confirmed"), &delegationIn{target: "t3.acme.example.com.", claim: confirmed(claim(old))})
	s.setDelegation(nn("intruder", "older"), &delegationIn{target: "t3.acme.example.com.", claim: claim(old.Add(-time.Hour))})
	s.setRecord(nn("other", "t3"), &recordIn{fqdn: "t3.acme.example.com.", value: "confirmed-owner", created: old})
	s.setRecord(nn("intruder", "t3"), &recordIn{fqdn: "t3.acme.example.com.", value: "forged-by-intruder", created: old})

	s.setRecord(nn("shop", "k2"), &recordIn{fqdn: "t1.acme.example.com.", value: "zzz-second-key", created: old})
	s.setRecord(nn("shop", "k1"), &recordIn{fqdn: "t1.acme.example.com.", value: "aaa-first-key", created: old})
	s.setRecord(nn("shop", "dup"), &recordIn{fqdn: "t1.acme.example.com.", value: "aaa-first-key", created: old})
	s.setRecord(nn("intruder", "forged"), &recordIn{fqdn: "t1.acme.example.com.", value: "forged-by-intruder", created: old})
	s.setRecord(nn("shop", "wrong-ns"), &recordIn{fqdn: "t2.acme.example.com.", value: "not-shops-target", created: old})
	s.setRecord(nn("shop", "undelegated"), &recordIn{fqdn: "nodeleg.acme.example.com.", value: "nobody-delegated-this", created: old})
	s.setRecord(nn("shop", "outside"), &recordIn{fqdn: "t1.other.org.", value: "outside-the-zone", created: old})
	// The zone's own names as targets: the apex, the in-zone name server, a ConfigMap name.
	for _, name := range []string{"acme.example.com.", "ns.acme.example.com.", "www.acme.example.com."} {
		s.setDelegation(nn("grabber", name), &delegationIn{target: name, claim: claim(old)})
		s.setRecord(nn("grabber", name), &recordIn{fqdn: name, value: "grabbed-" + name, created: old})
	}

	rrs, errs := parseZoneData("acme.example.com.", `
www      300 IN A     192.0.2.10
www      300 IN AAAA  2001:db8::10
@            IN CAA   0 issue "letsencrypt.org"
deep.a.b     IN TXT   "below two empty non-terminals"
alias        IN CNAME t1
loop1        IN CNAME loop2
loop2        IN CNAME loop1
away         IN CNAME target.other.org.
`, 10)
	if len(errs) > 0 {
		t.Fatalf("zone data: %v", errs)
	}
	s.setStatic(nn("kube-system", "static"), rrs)
	s.goLive()
}

const soaLine = "acme.example.com.	5	IN	SOA	ns.acme.example.com. hostmaster.example.com. 1 60 30 86400 5"

var dnsTestCases = []test.Case{
	{
		Qname: "acme.example.com.", Qtype: dns.TypeSOA,
		Answer: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: "acme.example.com.", Qtype: dns.TypeNS,
		Answer: []dns.RR{
			test.NS("acme.example.com.	3600	IN	NS	ns.acme.example.com."),
			test.NS("acme.example.com.	3600	IN	NS	ns.example.com."),
		},
		Extra: []dns.RR{
			test.A("ns.acme.example.com.	3600	IN	A	192.0.2.53"),
			test.AAAA("ns.acme.example.com.	3600	IN	AAAA	2001:db8::53"),
		},
	},
	{
		Qname: "ns.acme.example.com.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("ns.acme.example.com.	3600	IN	A	192.0.2.53")},
	},
	{
		Qname: "ns.acme.example.com.", Qtype: dns.TypeAAAA,
		Answer: []dns.RR{test.AAAA("ns.acme.example.com.	3600	IN	AAAA	2001:db8::53")},
	},
	{
		// Two values at one name, deduplicated; the intruder's record is not served.
		Qname: "t1.acme.example.com.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{
			test.TXT("t1.acme.example.com.	10	IN	TXT	aaa-first-key"),
			test.TXT("t1.acme.example.com.	10	IN	TXT	zzz-second-key"),
		},
	},
	{
		// The question's case is kept, in the answer and in the SOA's owner.
		Qname: "T1.Acme.EXAMPLE.com.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{
			test.TXT("T1.Acme.EXAMPLE.com.	10	IN	TXT	aaa-first-key"),
			test.TXT("T1.Acme.EXAMPLE.com.	10	IN	TXT	zzz-second-key"),
		},
	},
	{
		Qname: "NoSuch.Acme.Example.COM.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{test.SOA("Acme.Example.COM.	5	IN	SOA	ns.acme.example.com. hostmaster.example.com. 1 60 30 86400 5")},
	},
	{
		// A delegated target without a record right now: NODATA, not NXDOMAIN.
		Qname: "empty.acme.example.com.", Qtype: dns.TypeTXT,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		// shop wrote at other's target: not served, the name exists (NODATA).
		Qname: "t2.acme.example.com.", Qtype: dns.TypeTXT,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: "t3.acme.example.com.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.TXT("t3.acme.example.com.	10	IN	TXT	confirmed-owner")},
	},
	{
		// A record without any Delegation is not served and the name does not exist.
		Qname: "nodeleg.acme.example.com.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: "t1.acme.example.com.", Qtype: dns.TypeA,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		// Empty non-terminals above deep.a.b: NODATA.
		Qname: "a.b.acme.example.com.", Qtype: dns.TypeTXT,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: "b.acme.example.com.", Qtype: dns.TypeA,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: "deep.a.b.acme.example.com.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.TXT(`deep.a.b.acme.example.com.	10	IN	TXT	"below two empty non-terminals"`)},
	},
	{
		Qname: "x.deep.a.b.acme.example.com.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: "www.acme.example.com.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("www.acme.example.com.	300	IN	A	192.0.2.10")},
	},
	// A namespace that names the zone's own names as targets gets no TXT record served there.
	{
		Qname: "acme.example.com.", Qtype: dns.TypeTXT,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: "ns.acme.example.com.", Qtype: dns.TypeTXT,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: "www.acme.example.com.", Qtype: dns.TypeTXT,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: "www.acme.example.com.", Qtype: dns.TypeAAAA,
		Answer: []dns.RR{test.AAAA("www.acme.example.com.	300	IN	AAAA	2001:db8::10")},
	},
	{
		Qname: "acme.example.com.", Qtype: dns.TypeCAA,
		Answer: []dns.RR{test.CAA(`acme.example.com.	10	IN	CAA	0 issue "letsencrypt.org"`)},
	},
	{
		// A CNAME in the zone is followed inside the zone.
		Qname: "alias.acme.example.com.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{
			test.CNAME("alias.acme.example.com.	10	IN	CNAME	t1.acme.example.com."),
			test.TXT("t1.acme.example.com.	10	IN	TXT	aaa-first-key"),
			test.TXT("t1.acme.example.com.	10	IN	TXT	zzz-second-key"),
		},
	},
	{
		Qname: "alias.acme.example.com.", Qtype: dns.TypeCNAME,
		Answer: []dns.RR{test.CNAME("alias.acme.example.com.	10	IN	CNAME	t1.acme.example.com.")},
	},
	{
		// Out of the zone: the CNAME alone, the resolver follows it.
		Qname: "away.acme.example.com.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.CNAME("away.acme.example.com.	10	IN	CNAME	target.other.org.")},
	},
	{
		// RFC 8482: ANY gets one HINFO.
		Qname: "t1.acme.example.com.", Qtype: dns.TypeANY,
		Answer: []dns.RR{test.HINFO(`t1.acme.example.com.	10	IN	HINFO	"RFC8482" ""`)},
	},
	{
		Qname: "acme.example.com.", Qtype: dns.TypeAXFR, Rcode: dns.RcodeRefused,
	},
	{
		Qname: "example.org.", Qtype: dns.TypeTXT, Rcode: dns.RcodeRefused,
	},
	{
		// The zone of a record outside every served zone is not served.
		Qname: "t1.other.org.", Qtype: dns.TypeTXT, Rcode: dns.RcodeRefused,
	},
}

func TestServeDNS(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	fill(t, a)
	serial := a.store.load().soa["acme.example.com."].Serial

	for i, tc := range dnsTestCases {
		m := tc.Msg()
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := a.ServeDNS(context.Background(), rec, m); err != nil {
			t.Errorf("Test %d (%s %s): expected no error, got %v", i, tc.Qname, dns.TypeToString[tc.Qtype], err)
			continue
		}
		resp := rec.Msg
		for _, rr := range tc.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Serial = serial
			}
		}
		for _, rr := range tc.Answer {
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Serial = serial
			}
		}
		if err := test.SortAndCheck(resp, tc); err != nil {
			t.Errorf("Test %d (%s %s): %v\n%s", i, tc.Qname, dns.TypeToString[tc.Qtype], err, resp)
			continue
		}
		inZone := tc.Rcode != dns.RcodeRefused
		if resp.Authoritative != inZone {
			t.Errorf("Test %d (%s): AA is %v, want %v", i, tc.Qname, resp.Authoritative, inZone)
		}
		if resp.RecursionAvailable {
			t.Errorf("Test %d (%s): RA is set; acmezone never recurses", i, tc.Qname)
		}
		if resp.Question[0].Name != tc.Qname {
			t.Errorf("Test %d: question is %q, want %q", i, resp.Question[0].Name, tc.Qname)
		}
	}
}

// TestTXTOrderIsStable checks that the values come in one order, whatever the insertion order.
func TestTXTOrderIsStable(t *testing.T) {
	values := []string{"m", "c", "x", "a", "q"}
	var first []string
	for round := range 3 {
		a := newTestPlugin(t, testCorefile)
		a.store.setDelegation(nn("ns", "d"), &delegationIn{target: "t.acme.example.com."})
		for i := range values {
			v := values[(i+round)%len(values)]
			a.store.setRecord(nn("ns", v), &recordIn{fqdn: "t.acme.example.com.", value: v})
		}
		a.store.goLive()
		var got []string
		for _, rr := range query(t, a, "t.acme.example.com.", dns.TypeTXT).Answer {
			got = append(got, rr.(*dns.TXT).Txt[0])
		}
		if round == 0 {
			first = got
			if strings.Join(got, ",") != "a,c,m,q,x" {
				t.Fatalf("Round 0: got %v, want sorted values", got)
			}
		} else if strings.Join(got, ",") != strings.Join(first, ",") {
			t.Errorf("Round %d: got %v, want %v", round, got, first)
		}
	}
}

func query(t testing.TB, a *ACMEZone, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := a.ServeDNS(context.Background(), rec, m); err != nil {
		t.Fatalf("ServeDNS(%s): %v", name, err)
	}
	return rec.Msg
}

func TestNotSyncedIsServfail(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	if a.Ready() {
		t.Fatal("Ready() is true before the informers synced")
	}
	if rc := query(t, a, "acme.example.com.", dns.TypeSOA).Rcode; rc != dns.RcodeServerFailure {
		t.Errorf("before sync: rcode %s, want SERVFAIL", dns.RcodeToString[rc])
	}
	a.store.goLive()
	if !a.Ready() {
		t.Fatal("Ready() is false after sync")
	}
	if rc := query(t, a, "acme.example.com.", dns.TypeSOA).Rcode; rc != dns.RcodeSuccess {
		t.Errorf("after sync: rcode %s, want NOERROR", dns.RcodeToString[rc])
	}
}

func TestFallthrough(t *testing.T) {
	a := newTestPlugin(t, strings.Replace(testCorefile, "ttl 10", "ttl 10\n\tfallthrough", 1))
	fill(t, a)
	// NXDOMAIN inside the zone goes to the next plugin (which answers NXDOMAIN itself).
	m := new(dns.Msg)
	m.SetQuestion("nosuch.acme.example.com.", dns.TypeTXT)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rc, _ := a.ServeDNS(context.Background(), rec, m)
	if rc != dns.RcodeNameError || rec.Msg != nil {
		t.Errorf("in-zone NXDOMAIN with fallthrough: rc %d, msg written %v; want the next plugin's NXDOMAIN and no message", rc, rec.Msg != nil)
	}
	// Names that exist are still answered here.
	if resp := query(t, a, "t1.acme.example.com.", dns.TypeTXT); len(resp.Answer) != 2 {
		t.Errorf("with fallthrough: t1 TXT has %d answers, want 2", len(resp.Answer))
	}
}

func TestUpdatesChangeAnswers(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	fill(t, a)
	s := a.store
	s.setRecord(nn("shop", "k1"), nil)
	s.setRecord(nn("shop", "dup"), nil)
	if resp := query(t, a, "t1.acme.example.com.", dns.TypeTXT); len(resp.Answer) != 1 || resp.Answer[0].(*dns.TXT).Txt[0] != "zzz-second-key" {
		t.Errorf("after deleting one key: %v, want only zzz-second-key", resp.Answer)
	}
	// Deleting shop's Delegation hands t1 to the intruder's (younger) Delegation.
	s.setDelegation(nn("shop", "example-com"), nil)
	if resp := query(t, a, "t1.acme.example.com.", dns.TypeTXT); len(resp.Answer) != 1 || resp.Answer[0].(*dns.TXT).Txt[0] != "forged-by-intruder" {
		t.Errorf("after the owner's Delegation is gone: %v, want the next owner's record", resp.Answer)
	}
	s.setDelegation(nn("intruder", "steal"), nil)
	if resp := query(t, a, "t1.acme.example.com.", dns.TypeTXT); resp.Rcode != dns.RcodeNameError {
		t.Errorf("without Delegations t1 is %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
	// Once the ConfigMap's records are gone, www is a name like any other: the grabber's
	// Delegation and record there are served.
	s.setStatic(nn("kube-system", "static"), nil)
	if resp := query(t, a, "www.acme.example.com.", dns.TypeTXT); len(resp.Answer) != 1 {
		t.Errorf("www TXT after the ConfigMap is gone: %v, want the grabber's record", resp.Answer)
	}
	s.setDelegation(nn("grabber", "www.acme.example.com."), nil)
	// Removing the ConfigMap removed its names and the empty non-terminals above them.
	for _, name := range []string{"www.acme.example.com.", "a.b.acme.example.com.", "b.acme.example.com."} {
		if resp := query(t, a, name, dns.TypeA); resp.Rcode != dns.RcodeNameError {
			t.Errorf("after ConfigMap delete %s is %s, want NXDOMAIN", name, dns.RcodeToString[resp.Rcode])
		}
	}
	if resp := query(t, a, "acme.example.com.", dns.TypeSOA); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("the apex must always answer: %v", resp)
	}
}

// TestTruncation checks that a large TXT RRset over UDP honours the EDNS0 buffer and sets TC,
// through the ScrubWriter CoreDNS's server wraps every writer in.
func TestTruncation(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	a.store.setDelegation(nn("ns", "d"), &delegationIn{target: "big.acme.example.com."})
	for i := range 40 {
		v := fmt.Sprintf("%043d", i)
		a.store.setRecord(nn("ns", v), &recordIn{fqdn: "big.acme.example.com.", value: v})
	}
	a.store.goLive()

	for _, tc := range []struct {
		bufsize   uint16 // 0: no EDNS0
		tcp       bool
		truncated bool
		answers   int
	}{
		{bufsize: 0, truncated: true},
		{bufsize: 1232, truncated: true},
		{bufsize: 4096, answers: 40},
		{tcp: true, answers: 40},
	} {
		m := new(dns.Msg)
		m.SetQuestion("big.acme.example.com.", dns.TypeTXT)
		if tc.bufsize > 0 {
			m.SetEdns0(tc.bufsize, false)
		}
		rw := &test.ResponseWriter{TCP: tc.tcp}
		rec := dnstest.NewRecorder(rw)
		if _, err := a.ServeDNS(context.Background(), request.NewScrubWriter(m, rec), m); err != nil {
			t.Fatal(err)
		}
		resp := rec.Msg
		if resp.Truncated != tc.truncated {
			t.Errorf("bufsize %d tcp %v: TC=%v, want %v", tc.bufsize, tc.tcp, resp.Truncated, tc.truncated)
		}
		if !tc.truncated && len(resp.Answer) != tc.answers {
			t.Errorf("bufsize %d tcp %v: %d answers, want %d", tc.bufsize, tc.tcp, len(resp.Answer), tc.answers)
		}
		if size := resp.Len(); !tc.tcp && size > max(512, int(tc.bufsize)) {
			t.Errorf("bufsize %d: reply is %d bytes", tc.bufsize, size)
		}
		if opt := resp.IsEdns0(); (opt != nil) != (tc.bufsize > 0) {
			t.Errorf("bufsize %d: OPT in reply is %v, want it echoed only when asked", tc.bufsize, opt != nil)
		}
	}
}

func TestTransfer(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	fill(t, a)
	ch, err := a.Transfer("acme.example.com.", 0)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for set := range ch {
		rrs = append(rrs, set...)
	}
	if len(rrs) < 3 || rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("AXFR must start and end with the SOA, got %v", rrs)
	}
	joined := fmt.Sprint(rrs)
	for _, want := range []string{"aaa-first-key", "zzz-second-key", "192.0.2.10", "ns.example.com."} {
		if !strings.Contains(joined, want) {
			t.Errorf("AXFR lacks %q", want)
		}
	}
	if strings.Contains(joined, "forged-by-intruder") || strings.Contains(joined, "not-shops-target") {
		t.Errorf("AXFR holds records that are not served: %v", rrs)
	}
	serial := rrs[0].(*dns.SOA).Serial
	ch, _ = a.Transfer("acme.example.com.", serial)
	n := 0
	for set := range ch {
		n += len(set)
	}
	if n != 1 {
		t.Errorf("IXFR from the current serial: %d records, want the SOA only", n)
	}
	if _, err := a.Transfer("other.org.", 0); err == nil {
		t.Error("Transfer of a zone not served: want ErrNotAuthoritative")
	}
}
