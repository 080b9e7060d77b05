// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

const testCorefile = `acmezone acme.example.com {
	nameserver ns.acme.example.com 192.0.2.53 2001:db8::53
	nameserver ns.example.com 198.51.100.1
	soa hostmaster.example.com 60 30 86400 5
	ttl 10
}`

// testKey is the target key of every test plugin (newTestPlugin writes it to a file), so that
// tests can compute targets as the controller does.
var testKey = func() v1alpha1.TargetKey {
	k, err := v1alpha1.NewTargetKey([]byte("the acmezone plugin's unit-test target key, 32+ bytes"))
	if err != nil {
		panic(err)
	}
	return k
}()

// writeKey writes testKey's bytes to a file in a temporary directory and returns its path.
func writeKey(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "target-key")
	if err := os.WriteFile(path, []byte("the acmezone plugin's unit-test target key, 32+ bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// withKey adds a target_key line for a file holding testKey at the end of the (last) block of
// corefile, unless it has one.
func withKey(t testing.TB, corefile string) string {
	t.Helper()
	i := strings.LastIndex(corefile, "}")
	if i < 0 || strings.Contains(corefile, "target_key") {
		return corefile
	}
	return corefile[:i] + "\ttarget_key " + writeKey(t) + "\n" + corefile[i:]
}

// newTestPlugin parses corefile (with the test key); tests fill its store directly, through
// the operations the reflectors' sinks call.
func newTestPlugin(t testing.TB, corefile string) *ACMEZone {
	t.Helper()
	cfg, err := parse(caddy.NewTestController("dns", withKey(t, corefile)))
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

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

// deleg is a Delegation of domain without spec.target: served at its namespace's derived
// target.
func deleg(domain string) *delegationIn {
	return &delegationIn{claim: v1alpha1.TargetClaim{Domain: domain}}
}

// pinned is a Delegation of domain whose spec.target is target, with the proof annotation
// proof ("" for none).
func pinned(domain, target, proof string) *delegationIn {
	return &delegationIn{claim: v1alpha1.TargetClaim{Domain: domain, SpecTarget: target, Proof: proof}}
}

// targetOf is the derived target of a Delegation of domain in namespace ns, in the test zone.
func targetOf(ns, domain string) string {
	t, err := testKey.Target(v1alpha1.TargetClaim{Namespace: ns, Domain: domain}, "acme.example.com.")
	if err != nil {
		panic(err)
	}
	return t
}

// setConfigMap hands the ConfigMap ns/name with data (one key, "records") to the store, parsed
// as the reflector's sink parses it.
func setConfigMap(a *ACMEZone, ns, name, zone, data string) *staticSet {
	set := a.configMapRecords(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{ZoneLabel: zone}},
		Data:       map[string]string{"records": data},
	})
	a.store.setStatic("", nn(ns, name), set)
	return set
}

// The targets of the fixture: each namespace's own, derived from its namespace and domain, and
// one given by an earlier version and kept with a proof.
var (
	shopTarget     = targetOf("shop", "example.com")
	emptyTarget    = targetOf("shop", "empty.example")
	otherTarget    = targetOf("other", "other.example")
	migratedTarget = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	// mixedCase is shopTarget as a resolver with 0x20 randomisation may ask it.
	mixedCase = strings.ToUpper(shopTarget[:8]) + shopTarget[8:len(shopTarget)-len("acme.example.com.")] + "Acme.EXAMPLE.com."
)

// fixtureStatic is the zone data of fill's ConfigMap.
var fixtureStatic = `
www      300 IN A     192.0.2.10
www      300 IN AAAA  2001:db8::10
@            IN CAA   0 issue "letsencrypt.org"
deep.a.b     IN TXT   "below two empty non-terminals"
alias        IN CNAME ` + shopTarget + `
loop1        IN CNAME loop2
loop2        IN CNAME loop1
away         IN CNAME target.other.org.
`

// fill gives the store the fixture of the handler's tests: Delegations and ChallengeRecords
// of several namespaces (attacks included) and a ConfigMap, then makes it live.
func fill(t testing.TB, a *ACMEZone) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	s := a.store
	s.updateDelegation("", nn("shop", "example-com"), deleg("example.com"))
	s.updateDelegation("", nn("shop", "empty"), deleg("empty.example"))
	s.updateDelegation("", nn("other", "theirs"), deleg("other.example"))
	s.updateDelegation("", nn("shop", "migrated"), pinned("migrated.example", migratedTarget, testKey.Proof("shop", "migrated.example", migratedTarget)))
	s.updateRecord("", nn("shop", "migrated"), &recordIn{fqdn: migratedTarget, value: "migrated-value", created: old})

	s.updateRecord("", nn("shop", "k2"), &recordIn{fqdn: shopTarget, value: "zzz-second-key", created: old})
	s.updateRecord("", nn("shop", "k1"), &recordIn{fqdn: shopTarget, value: "aaa-first-key", created: old})
	s.updateRecord("", nn("shop", "dup"), &recordIn{fqdn: shopTarget, value: "aaa-first-key", created: old})
	s.updateRecord("", nn("shop", "wrong-ns"), &recordIn{fqdn: otherTarget, value: "not-shops-target", created: old})
	s.updateRecord("", nn("shop", "undelegated"), &recordIn{fqdn: "nodeleg.acme.example.com.", value: "nobody-delegated-this", created: old})
	s.updateRecord("", nn("shop", "outside"), &recordIn{fqdn: "t1.other.org.", value: "outside-the-zone", created: old})

	// The attacks of namespace intruder on shop's target, which anyone reads in public DNS: a
	// record there, Delegations naming it in spec.target without a proof, with shop's proof
	// copied, and with a proof for another domain; none of them places intruder there.
	s.updateRecord("", nn("intruder", "forged"), &recordIn{fqdn: shopTarget, value: "forged-by-intruder", created: old})
	s.updateDelegation("", nn("intruder", "steal"), pinned("example.com", shopTarget, ""))
	s.updateDelegation("", nn("intruder", "copied"), pinned("example.com", migratedTarget, testKey.Proof("shop", "migrated.example", migratedTarget)))
	s.updateDelegation("", nn("intruder", "other-domain"), pinned("intruder.example", shopTarget, testKey.Proof("intruder", "other.example", shopTarget)))
	s.updateRecord("", nn("intruder", "forged-migrated"), &recordIn{fqdn: migratedTarget, value: "forged-by-intruder", created: old})
	// The zone's own names as targets: the apex, its challenge name, the in-zone name server,
	// a ConfigMap name. None has the target form, so none is anyone's target.
	for _, name := range []string{"acme.example.com.", "_acme-challenge.acme.example.com.", "ns.acme.example.com.", "www.acme.example.com."} {
		s.updateDelegation("", nn("grabber", name), pinned("example.com", name, ""))
		s.updateRecord("", nn("grabber", name), &recordIn{fqdn: name, value: "grabbed-" + name, created: old})
	}

	setConfigMap(a, "kube-system", "static", "acme.example.com", fixtureStatic)
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
		// Two values at one name, deduplicated; the intruder's record is not served, whatever
		// its Delegations name in spec.target.
		Qname: shopTarget, Qtype: dns.TypeTXT,
		Answer: []dns.RR{
			test.TXT(shopTarget + "	10	IN	TXT	aaa-first-key"),
			test.TXT(shopTarget + "	10	IN	TXT	zzz-second-key"),
		},
	},
	{
		// The question's case is kept, in the answer and in the SOA's owner.
		Qname: mixedCase, Qtype: dns.TypeTXT,
		Answer: []dns.RR{
			test.TXT(mixedCase + "	10	IN	TXT	aaa-first-key"),
			test.TXT(mixedCase + "	10	IN	TXT	zzz-second-key"),
		},
	},
	{
		// A spec.target proved for shop: shop's record only, not the intruder's, whose
		// Delegation copied shop's proof.
		Qname: migratedTarget, Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.TXT(migratedTarget + "	10	IN	TXT	migrated-value")},
	},
	{
		Qname: "NoSuch.Acme.Example.COM.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{test.SOA("Acme.Example.COM.	5	IN	SOA	ns.acme.example.com. hostmaster.example.com. 1 60 30 86400 5")},
	},
	{
		// A delegated target without a record right now: NODATA, not NXDOMAIN.
		Qname: emptyTarget, Qtype: dns.TypeTXT,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		// shop wrote at other's target: not served, the name exists (NODATA).
		Qname: otherTarget, Qtype: dns.TypeTXT,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		// A record without any Delegation is not served and the name does not exist.
		Qname: "nodeleg.acme.example.com.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		// A Delegation with spec.target _acme-challenge.<zone> is placed nowhere: answering
		// there would give certificates for the zone itself.
		Qname: "_acme-challenge.acme.example.com.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{test.SOA(soaLine)},
	},
	{
		Qname: shopTarget, Qtype: dns.TypeA,
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
			test.CNAME("alias.acme.example.com.	10	IN	CNAME	" + shopTarget),
			test.TXT(shopTarget + "	10	IN	TXT	aaa-first-key"),
			test.TXT(shopTarget + "	10	IN	TXT	zzz-second-key"),
		},
	},
	{
		Qname: "alias.acme.example.com.", Qtype: dns.TypeCNAME,
		Answer: []dns.RR{test.CNAME("alias.acme.example.com.	10	IN	CNAME	" + shopTarget)},
	},
	{
		// Out of the zone: the CNAME alone, the resolver follows it.
		Qname: "away.acme.example.com.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.CNAME("away.acme.example.com.	10	IN	CNAME	target.other.org.")},
	},
	{
		// RFC 8482: ANY gets one HINFO.
		Qname: shopTarget, Qtype: dns.TypeANY,
		Answer: []dns.RR{test.HINFO(shopTarget + `	10	IN	HINFO	"RFC8482" ""`)},
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
		sort.Sort(test.RRSet(tc.Answer)) // SortAndCheck sorts the reply's records
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
		target := targetOf("ns", "d.example")
		a.store.updateDelegation("", nn("ns", "d"), deleg("d.example"))
		for i := range values {
			v := values[(i+round)%len(values)]
			a.store.updateRecord("", nn("ns", v), &recordIn{fqdn: target, value: v})
		}
		a.store.goLive()
		var got []string
		for _, rr := range query(t, a, target, dns.TypeTXT).Answer {
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
		t.Fatal("Ready() is true before the reflectors synced")
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
	if resp := query(t, a, shopTarget, dns.TypeTXT); len(resp.Answer) != 2 {
		t.Errorf("with fallthrough: shop's target has %d TXT answers, want 2", len(resp.Answer))
	}
}

func TestUpdatesChangeAnswers(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	fill(t, a)
	s := a.store
	s.deleteRecord("", nn("shop", "k1"), nil)
	s.deleteRecord("", nn("shop", "dup"), nil)
	if resp := query(t, a, shopTarget, dns.TypeTXT); len(resp.Answer) != 1 || resp.Answer[0].(*dns.TXT).Txt[0] != "zzz-second-key" {
		t.Errorf("after deleting one key: %v, want only zzz-second-key", resp.Answer)
	}
	// shop's Delegation is gone (a namespace clean-up, a GitOps re-create): the target does
	// not pass to the intruder, whose Delegations and record wait there.
	s.deleteDelegation("", nn("shop", "example-com"), nil)
	if resp := query(t, a, shopTarget, dns.TypeTXT); resp.Rcode != dns.RcodeNameError {
		t.Errorf("after the owner's Delegation is gone: %s %v, want NXDOMAIN", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
	// Re-created, it gets the same target back, and shop's records are served again.
	s.updateDelegation("", nn("shop", "example-com-again"), deleg("Example.COM."))
	if resp := query(t, a, shopTarget, dns.TypeTXT); len(resp.Answer) != 1 || resp.Answer[0].(*dns.TXT).Txt[0] != "zzz-second-key" {
		t.Errorf("after re-creating the Delegation: %v, want shop's zzz-second-key", resp.Answer)
	}
	// Once the ConfigMap's records are gone, www is a name like any other, and still nobody's
	// target: it does not have the target form.
	s.setStatic("", nn("kube-system", "static"), nil)
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

// TestUDPAnswersAreBounded checks that no answer over UDP is larger than 1232 bytes on the
// wire, whatever EDNS0 buffer the client announces, through the ScrubWriter CoreDNS's server
// wraps every writer in and without it; that a truncated answer has TC set; and that TCP gets
// the whole answer.
func TestUDPAnswersAreBounded(t *testing.T) {
	a := newTestPlugin(t, strings.Replace(testCorefile, "ttl 10", "ttl 10\n\tmax_values 100", 1))
	names := map[string]int{}
	for _, set := range []struct {
		domain string
		n, len int
	}{
		{"many.example", 40, 43},   // ACME values: more than fit, compressed or not
		{"long.example", 5, 200},   // fit only compressed: between 1232 and 1480 bytes without
		{"small.example", 2, 43},   // fits any buffer
		{"edge.example", 20, 43},   // about 1232 bytes compressed
		{"huge.example", 100, 255}, // 26 KB over TCP
	} {
		target := targetOf("ns", set.domain)
		a.store.updateDelegation("", nn("ns", set.domain), deleg(set.domain))
		for i := range set.n {
			v := fmt.Sprintf("%0*d", set.len, i)
			a.store.updateRecord("", nn("ns", set.domain+v), &recordIn{fqdn: target, value: v})
		}
		names[target] = set.n
	}
	a.store.goLive()

	for target, n := range names {
		for _, bufsize := range []uint16{0, 512, 1232, 1400, 4096, 65535} {
			for _, tcp := range []bool{false, true} {
				for _, scrub := range []bool{true, false} {
					m := new(dns.Msg)
					m.SetQuestion(target, dns.TypeTXT)
					if bufsize > 0 {
						m.SetEdns0(bufsize, false)
					}
					rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tcp})
					var w dns.ResponseWriter = rec
					if scrub {
						w = request.NewScrubWriter(m, rec)
					}
					if _, err := a.ServeDNS(context.Background(), w, m); err != nil {
						t.Fatal(err)
					}
					resp := rec.Msg
					wire, err := resp.Pack()
					if err != nil {
						t.Fatal(err)
					}
					what := fmt.Sprintf("%d values, bufsize %d, tcp %v, ScrubWriter %v", n, bufsize, tcp, scrub)
					limit := min(max(512, int(bufsize)), 1232)
					switch {
					case tcp && (resp.Truncated || len(resp.Answer) != n):
						t.Errorf("%s: TC=%v with %d answers, want all %d", what, resp.Truncated, len(resp.Answer), n)
					case !tcp && len(wire) > limit:
						t.Errorf("%s: %d bytes over UDP, want at most %d", what, len(wire), limit)
					case !tcp && len(resp.Answer) < n && !resp.Truncated:
						t.Errorf("%s: %d of %d answers without TC", what, len(resp.Answer), n)
					case !tcp && len(resp.Answer) == n && resp.Truncated:
						t.Errorf("%s: every answer and TC", what)
					}
					if opt := resp.IsEdns0(); (opt != nil) != (bufsize > 0) {
						t.Errorf("%s: OPT in reply is %v, want it echoed only when asked", what, opt != nil)
					}
				}
			}
		}
	}
	// The amplification the issue measured: a 65535-byte buffer for a name with many values.
	m := new(dns.Msg)
	m.SetQuestion(targetOf("ns", "huge.example"), dns.TypeTXT)
	m.SetEdns0(65535, false)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := a.ServeDNS(context.Background(), request.NewScrubWriter(m, rec), m); err != nil {
		t.Fatal(err)
	}
	if wire, _ := rec.Msg.Pack(); len(wire) > 1232 || !rec.Msg.Truncated {
		t.Errorf("bufsize 65535: %d bytes, TC=%v; want at most 1232 bytes with TC", len(wire), rec.Msg.Truncated)
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
	for _, want := range []string{"aaa-first-key", "zzz-second-key", "migrated-value", "192.0.2.10", "ns.example.com."} {
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

// TestStaticDataAttacks: zone data that would speak for a tenant's target, for the zone's own
// challenge name or for its name servers is not served; the rest of the ConfigMap is.
func TestStaticDataAttacks(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	fill(t, a)
	label := shopTarget[:strings.IndexByte(shopTarget, '.')]
	before := testutil.ToFloat64(rejectedLines)
	set := setConfigMap(a, "kube-system", "attack", "acme.example.com", label+` IN TXT "forged-by-intruder"
x.`+label+` IN TXT "forged-by-intruder"
`+strings.ToUpper(label)+` IN CNAME elsewhere.example.
ns IN A 203.0.113.66
_acme-challenge IN TXT "forged-by-intruder"
takeover IN DNAME elsewhere.example.
@ IN CNAME elsewhere.example.
ctl IN TXT "bell\007"
fine IN TXT "served"
`)
	if set == nil || set.count != 1 {
		t.Fatalf("the ConfigMap kept %+v, want only the last record", set)
	}
	if n := testutil.ToFloat64(rejectedLines) - before; n != 8 {
		t.Errorf("%v rejections counted, want 8", n)
	}
	for _, tc := range []test.Case{
		{Qname: shopTarget, Qtype: dns.TypeTXT, Answer: []dns.RR{
			test.TXT(shopTarget + "	10	IN	TXT	aaa-first-key"),
			test.TXT(shopTarget + "	10	IN	TXT	zzz-second-key"),
		}},
		{Qname: "x." + shopTarget, Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soaLine)}},
		{Qname: "ns.acme.example.com.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("ns.acme.example.com.	3600	IN	A	192.0.2.53")}},
		{Qname: "_acme-challenge.acme.example.com.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soaLine)}},
		{Qname: "y.takeover.acme.example.com.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soaLine)}},
		{Qname: "acme.example.com.", Qtype: dns.TypeSOA, Answer: []dns.RR{test.SOA(soaLine)}},
		{Qname: "ctl.acme.example.com.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soaLine)}},
		{Qname: "fine.acme.example.com.", Qtype: dns.TypeTXT, Answer: []dns.RR{test.TXT("fine.acme.example.com.	10	IN	TXT	served")}},
	} {
		resp := query(t, a, tc.Qname, tc.Qtype)
		serial := a.store.load().soa["acme.example.com."].Serial
		for _, rr := range append(tc.Answer, tc.Ns...) {
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Serial = serial
			}
		}
		if err := test.SortAndCheck(resp, tc); err != nil {
			t.Errorf("%s %s: %v\n%s", tc.Qname, dns.TypeToString[tc.Qtype], err, resp)
		}
	}
}
