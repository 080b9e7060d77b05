// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/dnstest"
	"github.com/acmezone/acmezone/plugin/acmezone"
)

const signedZone = "acme.example.com."

// writeDNSKEY generates a key for signedZone with miekg/dns (ECDSA P-256, flags 257: one key
// signs everything, as `dnssec-keygen -a ECDSAP256SHA256 -f KSK` makes it) and writes
// BASE.key and BASE.private, the files `dnssec { key file BASE }` reads.
func writeDNSKEY(t *testing.T) (string, *dns.DNSKEY) {
	t.Helper()
	k := newDNSKEY(t)
	priv, err := k.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), fmt.Sprintf("K%s+%03d+%05d", signedZone, k.Algorithm, k.KeyTag()))
	if err := os.WriteFile(base+".key", []byte(k.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".private", []byte(k.PrivateKeyString(priv)), 0o600); err != nil {
		t.Fatal(err)
	}
	return base, k
}

func newDNSKEY(t *testing.T) *dns.DNSKEY {
	t.Helper()
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: signedZone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     dns.ZONE | dns.SEP,
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	if _, err := k.Generate(256); err != nil {
		t.Fatal(err)
	}
	return k
}

// startSigned runs bin/coredns with dnssec in front of acmezone in one server block and
// returns its address (UDP and TCP) once the plugin has synced.
func startSigned(t *testing.T, kubeconfig, targetKey, keyBase string) string {
	t.Helper()
	port := freePort(t)
	corefile := fmt.Sprintf(`acme.example.com:%d {
	bind 127.0.0.1
	dnssec {
		key file %s
	}
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
`, port, keyBase, kubeconfig, targetKey)
	runBinary(t, corefile)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, func() error {
		m, err := ask("tcp", addr, signedZone, dns.TypeSOA, true, 1232)
		if err != nil {
			return err
		}
		if m.Rcode != dns.RcodeSuccess {
			return fmt.Errorf("SOA: %s", dns.RcodeToString[m.Rcode])
		}
		return nil
	})
	return addr
}

// ask sends one question, with or without the DO bit, announcing an EDNS0 buffer of size.
func ask(network, addr, name string, qtype uint16, do bool, size uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	m.SetEdns0(size, do)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, UDPSize: size}
	resp, _, err := c.Exchange(m, addr)
	return resp, err
}

// waitFor retries f until it returns nil, for at most 15 seconds.
func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSigned checks what a validator checks in one section of an answer: every RRset
// (RRSIG and OPT aside) has an RRSIG by key, for the zone, that verifies over the whole set
// and whose validity window holds now; every RRSIG covers a set in the section. It returns
// the signed sets as "owner TYPE", the owner spelled as in the answer, sorted.
func checkSigned(section []dns.RR, key *dns.DNSKEY, now time.Time) ([]string, error) {
	type setKey struct {
		name  string
		rtype uint16
	}
	sets := map[setKey][]dns.RR{}
	var sigs []*dns.RRSIG
	for _, rr := range section {
		switch rr := rr.(type) {
		case *dns.RRSIG:
			sigs = append(sigs, rr)
		case *dns.OPT:
		default:
			k := setKey{dns.CanonicalName(rr.Header().Name), rr.Header().Rrtype}
			sets[k] = append(sets[k], rr)
		}
	}
	var signed []string
	var errs []error
	for k, set := range sets {
		var why []string
		ok := false
		for _, sig := range sigs {
			if sig.TypeCovered != k.rtype || dns.CanonicalName(sig.Hdr.Name) != k.name {
				continue
			}
			switch {
			case sig.SignerName != signedZone:
				why = append(why, "signer "+sig.SignerName)
			case !sig.ValidityPeriod(now):
				why = append(why, fmt.Sprintf("valid %s to %s", dns.TimeToString(sig.Inception), dns.TimeToString(sig.Expiration)))
			default:
				if err := sig.Verify(key, set); err != nil {
					why = append(why, err.Error())
				} else {
					ok = true
				}
			}
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%s %s (%d RRs) has no RRSIG that verifies with key %d %v", set[0].Header().Name, dns.TypeToString[k.rtype], len(set), key.KeyTag(), why))
			continue
		}
		signed = append(signed, set[0].Header().Name+" "+dns.TypeToString[k.rtype])
	}
	for _, sig := range sigs {
		if _, ok := sets[setKey{dns.CanonicalName(sig.Hdr.Name), sig.TypeCovered}]; !ok {
			errs = append(errs, fmt.Errorf("RRSIG %s %s covers no set in the section", sig.Hdr.Name, dns.TypeToString[sig.TypeCovered]))
		}
	}
	slices.Sort(signed)
	return signed, errors.Join(errs...)
}

// mustSign checks a section with checkSigned and that exactly the sets want are signed.
func mustSign(section []dns.RR, key *dns.DNSKEY, want ...string) error {
	got, err := checkSigned(section, key, time.Now())
	if err != nil {
		return err
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("signed sets %q, want %q", got, want)
	}
	return nil
}

// txtValues returns the TXT values in rrs owned by exactly owner, sorted.
func txtValues(rrs []dns.RR, owner string) []string {
	var v []string
	for _, rr := range rrs {
		if txt, ok := rr.(*dns.TXT); ok && txt.Hdr.Name == owner {
			v = append(v, strings.Join(txt.Txt, ""))
		}
	}
	slices.Sort(v)
	return v
}

// without returns rrs without RRSIG and OPT records.
func without(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if t := rr.Header().Rrtype; t != dns.TypeRRSIG && t != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// blackLie checks a signed denial as the dnssec plugin makes it: NOERROR, no answer, the SOA
// and an NSEC at the question's name (as spelled) whose bitmap has TXT exactly when hasTXT
// and never the asked type, both signed.
func blackLie(m *dns.Msg, key *dns.DNSKEY, hasTXT bool) error {
	q := m.Question[0]
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		return fmt.Errorf("rcode %s, %d answers; want NOERROR and no answer", dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	apex := q.Name[len(q.Name)-len(signedZone):]
	if err := mustSign(m.Ns, key, apex+" SOA", q.Name+" NSEC"); err != nil {
		return err
	}
	var nsec *dns.NSEC
	for _, rr := range m.Ns {
		if n, ok := rr.(*dns.NSEC); ok {
			nsec = n
		}
	}
	if nsec.NextDomain != `\000.`+q.Name {
		return fmt.Errorf("NSEC next name %q, want %q", nsec.NextDomain, `\000.`+q.Name)
	}
	if slices.Contains(nsec.TypeBitMap, q.Qtype) {
		return fmt.Errorf("NSEC bitmap %v has the asked type %s", nsec.TypeBitMap, dns.TypeToString[q.Qtype])
	}
	if slices.Contains(nsec.TypeBitMap, dns.TypeTXT) != hasTXT {
		return fmt.Errorf("NSEC bitmap %v: TXT present is %v, want %v", nsec.TypeBitMap, !hasTXT, hasTXT)
	}
	if !slices.Contains(nsec.TypeBitMap, dns.TypeNSEC) || !slices.Contains(nsec.TypeBitMap, dns.TypeRRSIG) {
		return fmt.Errorf("NSEC bitmap %v lacks NSEC or RRSIG", nsec.TypeBitMap)
	}
	return nil
}

// unsignedNegative checks what a client without the DO bit gets: rcode and the SOA alone.
func unsignedNegative(m *dns.Msg, rcode int) error {
	if m.Rcode != rcode || len(m.Answer) != 0 {
		return fmt.Errorf("rcode %s, %d answers; want %s and no answer", dns.RcodeToString[m.Rcode], len(m.Answer), dns.RcodeToString[rcode])
	}
	if len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
		return fmt.Errorf("authority %v, want the SOA alone", m.Ns)
	}
	if len(without(m.Extra)) != 0 {
		return fmt.Errorf("additional %v, want nothing but OPT", m.Extra)
	}
	return nil
}

// mixCase spells name in alternating case, as a resolver using 0x20 mixing might.
func mixCase(name string) string {
	b := []byte(name)
	up := false
	for i, c := range b {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			if up {
				b[i] = c &^ 0x20
			} else {
				b[i] = c | 0x20
			}
			up = !up
		}
	}
	return string(b)
}

func TestDNSSECSignedAnswers(t *testing.T) {
	needBinary(t)
	_, c, kubeconfig := startAPIServer(t)
	ctx := context.Background()
	for _, ns := range []string{"shop", "acmezone"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	targetKeyFile, targetKey := writeKey(t)
	keyBase, key := writeDNSKEY(t)
	addr := startSigned(t, kubeconfig, targetKeyFile, keyBase)

	delegate := func(name, domain string) string {
		d := &v1alpha1.Delegation{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Spec:       v1alpha1.DelegationSpec{Domain: domain},
		}
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		return targetOf(t, targetKey, d)
	}
	publish := func(target string, values ...string) {
		for _, v := range values {
			if err := c.Create(ctx, v1alpha1.NewChallengeRecord("shop", target, v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Two values at one target (apex and wildcard challenge), a delegated target without
	// records yet, and twenty values at a third: 1143 bytes unsigned, more once signed.
	target := delegate("example-com", "example.com")
	values := []string{"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "wildcard-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}
	publish(target, values...)
	waiting := delegate("waiting", "waiting.example")
	big := delegate("big", "big.example")
	var bigValues []string
	for i := range 20 {
		bigValues = append(bigValues, fmt.Sprintf("value-%034d", i))
	}
	publish(big, bigValues...)
	// Targets of Delegations lego's check waits for: created while it polls.
	lateDelegation := func(i int) *v1alpha1.Delegation {
		return &v1alpha1.Delegation{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("late%d", i)},
			Spec:       v1alpha1.DelegationSpec{Domain: fmt.Sprintf("late%d.example", i)},
		}
	}
	late := []string{targetOf(t, targetKey, lateDelegation(0)), targetOf(t, targetKey, lateDelegation(1))}

	// Static records: a challenge CNAME to the target inside the zone (what the user's
	// provider holds, here in the zone itself), names below an empty non-terminal, CNAMEs
	// that end at a missing name and at a name without the asked type.
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: "static", Labels: map[string]string{acmezone.ZoneLabel: "acme.example.com"}},
		Data: map[string]string{"records": fmt.Sprintf(`_acme-challenge.shop IN CNAME %s
_acme-challenge.late0 IN CNAME %s
_acme-challenge.late1 IN CNAME %s
info 60 IN TXT "static text"
leaf.ent 60 IN TXT "below an empty non-terminal"
dangling IN CNAME nowhere.acme.example.com.
to-info IN CNAME info.acme.example.com.
`, target, late[0], late[1])},
	}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error {
		for name, n := range map[string]int{target: 2, big: 20, "info.acme.example.com.": 1, "_acme-challenge.shop.acme.example.com.": 2} {
			m, err := ask("tcp", addr, name, dns.TypeTXT, false, 1232)
			if err != nil {
				return err
			}
			if got := len(without(m.Answer)) - strings.Count(name, "_acme-challenge"); got != n {
				return fmt.Errorf("%s TXT: %d values, want %d", name, got, n)
			}
		}
		return nil
	})

	type tc struct {
		name  string
		qname string
		qtype uint16
		do    bool
		check func(m *dns.Msg) error
	}
	cname := "_acme-challenge.shop." + signedZone
	mixedTarget := mixCase(target)
	cases := []tc{
		{"TXT with two values", target, dns.TypeTXT, true, func(m *dns.Msg) error {
			if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
				return fmt.Errorf("rcode %s AA=%v, want NOERROR and AA", dns.RcodeToString[m.Rcode], m.Authoritative)
			}
			if got := txtValues(m.Answer, target); !slices.Equal(got, values) {
				return fmt.Errorf("TXT %q, want %q", got, values)
			}
			if err := mustSign(m.Answer, key, target+" TXT"); err != nil {
				return err
			}
			// The check can fail: another key for the same zone verifies nothing.
			if _, err := checkSigned(m.Answer, newDNSKEY(t), time.Now()); err == nil {
				return errors.New("the answer verifies with a key the server does not hold")
			}
			return nil
		}},
		{"DNSKEY at the apex, self-signed", signedZone, dns.TypeDNSKEY, true, func(m *dns.Msg) error {
			keys := without(m.Answer)
			if m.Rcode != dns.RcodeSuccess || len(keys) != 1 {
				return fmt.Errorf("rcode %s, answer %v; want the one DNSKEY", dns.RcodeToString[m.Rcode], keys)
			}
			if k, ok := keys[0].(*dns.DNSKEY); !ok || k.PublicKey != key.PublicKey || k.Flags != key.Flags || k.Algorithm != key.Algorithm {
				return fmt.Errorf("DNSKEY %v, want %v", keys[0], key)
			}
			return mustSign(m.Answer, key, signedZone+" DNSKEY")
		}},
		{"SOA at the apex", signedZone, dns.TypeSOA, true, func(m *dns.Msg) error {
			if len(without(m.Answer)) != 1 {
				return fmt.Errorf("answer %v, want the SOA", m.Answer)
			}
			return mustSign(m.Answer, key, signedZone+" SOA")
		}},
		{"NS at the apex, glue signed too", signedZone, dns.TypeNS, true, func(m *dns.Msg) error {
			if err := mustSign(m.Answer, key, signedZone+" NS"); err != nil {
				return err
			}
			return mustSign(m.Extra, key, "ns.acme.example.com. A")
		}},
		{"missing name: NOERROR with an NSEC (black lie)", "nosuch." + signedZone, dns.TypeTXT, true, func(m *dns.Msg) error {
			return blackLie(m, key, false)
		}},
		{"missing name without DO: NXDOMAIN", "nosuch." + signedZone, dns.TypeTXT, false, func(m *dns.Msg) error {
			return unsignedNegative(m, dns.RcodeNameError)
		}},
		{"NODATA: TXT at the name, A asked", target, dns.TypeA, true, func(m *dns.Msg) error {
			return blackLie(m, key, true)
		}},
		{"NODATA: delegated target, no record yet", waiting, dns.TypeTXT, true, func(m *dns.Msg) error {
			return blackLie(m, key, false)
		}},
		{"NODATA without DO", waiting, dns.TypeTXT, false, func(m *dns.Msg) error {
			return unsignedNegative(m, dns.RcodeSuccess)
		}},
		{"empty non-terminal", "ent." + signedZone, dns.TypeTXT, true, func(m *dns.Msg) error {
			return blackLie(m, key, false)
		}},
		{"empty non-terminal without DO: NODATA", "ent." + signedZone, dns.TypeTXT, false, func(m *dns.Msg) error {
			return unsignedNegative(m, dns.RcodeSuccess)
		}},
		{"CNAME chain to the target", cname, dns.TypeTXT, true, func(m *dns.Msg) error {
			if got := txtValues(m.Answer, target); !slices.Equal(got, values) {
				return fmt.Errorf("TXT %q, want %q", got, values)
			}
			return mustSign(m.Answer, key, cname+" CNAME", target+" TXT")
		}},
		{"CNAME chain to a missing name", "dangling." + signedZone, dns.TypeTXT, true, func(m *dns.Msg) error {
			// The resolver must be able to validate the CNAME; the denial of the name it
			// leads to is the resolver's own next question.
			if m.Rcode != dns.RcodeSuccess {
				return fmt.Errorf("rcode %s, want NOERROR", dns.RcodeToString[m.Rcode])
			}
			if err := mustSign(m.Answer, key, "dangling.acme.example.com. CNAME"); err != nil {
				return err
			}
			if _, err := checkSigned(m.Ns, key, time.Now()); err != nil {
				return err
			}
			return nil
		}},
		{"CNAME chain to a name without the type", "to-info." + signedZone, dns.TypeA, true, func(m *dns.Msg) error {
			if m.Rcode != dns.RcodeSuccess {
				return fmt.Errorf("rcode %s, want NOERROR", dns.RcodeToString[m.Rcode])
			}
			if err := mustSign(m.Answer, key, "to-info.acme.example.com. CNAME"); err != nil {
				return err
			}
			// A NODATA for info.acme.example.com. needs its NSEC; without one, the
			// resolver asks that name itself.
			signed, err := checkSigned(m.Ns, key, time.Now())
			if err != nil {
				return err
			}
			if len(signed) > 0 && !slices.Contains(signed, "info.acme.example.com. NSEC") {
				return fmt.Errorf("authority %q denies A at the chain's end without the NSEC that proves it", signed)
			}
			return nil
		}},
		{"ANY: one signed HINFO", target, dns.TypeANY, true, func(m *dns.Msg) error {
			rrs := without(m.Answer)
			if len(rrs) != 1 {
				return fmt.Errorf("answer %v, want one HINFO", rrs)
			}
			if h, ok := rrs[0].(*dns.HINFO); !ok || h.Cpu != "RFC8482" {
				return fmt.Errorf("answer %v, want HINFO \"RFC8482\"", rrs)
			}
			return mustSign(m.Answer, key, target+" HINFO")
		}},
		{"mixed case: TXT owners as asked, signatures verify", mixedTarget, dns.TypeTXT, true, func(m *dns.Msg) error {
			if got := txtValues(m.Answer, mixedTarget); !slices.Equal(got, values) {
				return fmt.Errorf("TXT owned by %s: %q, want %q (answer %v)", mixedTarget, got, values, m.Answer)
			}
			for _, rr := range m.Answer {
				if rr.Header().Name != mixedTarget {
					return fmt.Errorf("owner %s, want %s as asked", rr.Header().Name, mixedTarget)
				}
			}
			return mustSign(m.Answer, key, mixedTarget+" TXT")
		}},
		{"mixed case: missing name", mixCase("nosuch." + signedZone), dns.TypeTXT, true, func(m *dns.Msg) error {
			return blackLie(m, key, false)
		}},
		{"mixed case: CNAME chain", mixCase(cname), dns.TypeTXT, true, func(m *dns.Msg) error {
			return mustSign(m.Answer, key, mixCase(cname)+" CNAME", target+" TXT")
		}},
		{"mixed case: DNSKEY", mixCase(signedZone), dns.TypeDNSKEY, true, func(m *dns.Msg) error {
			return mustSign(m.Answer, key, signedZone+" DNSKEY")
		}},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range cases {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				m, err := ask(network, addr, tt.qname, tt.qtype, tt.do, 1232)
				if err != nil {
					t.Fatal(err)
				}
				if m.Truncated {
					t.Fatalf("%s %s: truncated, want the whole answer in 1232 bytes", tt.qname, dns.TypeToString[tt.qtype])
				}
				if opt := m.IsEdns0(); opt == nil || opt.Do() != tt.do {
					t.Errorf("%s %s: OPT %v, want it echoed with DO=%v", tt.qname, dns.TypeToString[tt.qtype], opt, tt.do)
				}
				err = tt.check(m)
				if err != nil {
					t.Errorf("%s %s DO=%v: %v\n%v", tt.qname, dns.TypeToString[tt.qtype], tt.do, err, m)
				}
			})
		}
	}

	t.Run("TC over UDP, whole over TCP", func(t *testing.T) {
		// Unsigned, the twenty values fit in 1232 bytes; signed, they do not.
		plain, err := ask("udp", addr, big, dns.TypeTXT, false, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if plain.Truncated || len(without(plain.Answer)) != 20 {
			t.Fatalf("unsigned over UDP: TC=%v with %d values, want all 20 untruncated (the sizes this test is built on)", plain.Truncated, len(without(plain.Answer)))
		}
		whole, err := ask("tcp", addr, big, dns.TypeTXT, true, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if got := txtValues(whole.Answer, big); !slices.Equal(got, bigValues) {
			t.Errorf("over TCP: %d values, want all %d", len(got), len(bigValues))
		}
		if err := mustSign(whole.Answer, key, big+" TXT"); err != nil {
			t.Errorf("over TCP: %v", err)
		}
		if n := whole.Len(); whole.Truncated || n <= 1232 {
			t.Fatalf("signed over TCP: %d bytes, TC=%v; want more than 1232 bytes (the sizes this test is built on)", n, whole.Truncated)
		}
		for _, size := range []uint16{512, 1232, 4096, 65535} {
			limit := min(int(size), 1232)
			q := new(dns.Msg)
			q.SetQuestion(big, dns.TypeTXT)
			q.SetEdns0(size, true)
			_, raw, resp, err := dnstest.ExchangeUDP(addr, q, 5*time.Second)
			if err != nil {
				t.Fatalf("buffer %d: %v", size, err)
			}
			if len(raw) > limit || !resp.Truncated {
				t.Errorf("buffer %d: %d bytes, TC=%v; want at most %d bytes with TC", size, len(raw), resp.Truncated, limit)
			}
		}
	})

	t.Run("lego's propagation check", func(t *testing.T) {
		testLegoPreCheck(t, addr, func(i int, value string) {
			d := lateDelegation(i)
			if err := c.Create(ctx, d); err != nil {
				t.Error(err)
				return
			}
			publish(late[i], value)
		}, func(value string) { publish(target, value) })
	})
}

// doRelay stands for a validating resolver between lego and the server: it asks with the DO
// bit, as such a resolver does, and hands the answer on without DNSSEC records to a client
// that did not ask for them. It is how lego sees the signed server's denials.
func doRelay(t *testing.T, upstream string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		q := new(dns.Msg)
		q.SetQuestion(r.Question[0].Name, r.Question[0].Qtype)
		q.SetEdns0(1232, true)
		resp, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, upstream)
		if err != nil {
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
			return
		}
		strip := func(rrs []dns.RR) []dns.RR {
			return slices.DeleteFunc(rrs, func(rr dns.RR) bool {
				t := rr.Header().Rrtype
				return t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeOPT
			})
		}
		resp.Answer, resp.Ns, resp.Extra = strip(resp.Answer), strip(resp.Ns), strip(resp.Extra)
		resp.Id = r.Id
		_ = w.WriteMsg(resp)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// legoProvider is a DNS provider for lego's Challenge that publishes nothing itself (the test
// does) and sets how long and how often lego's check polls.
type legoProvider struct{ timeout time.Duration }

func (legoProvider) Present(context.Context, string, string, string) error { return nil }
func (legoProvider) CleanUp(context.Context, string, string, string) error { return nil }
func (p legoProvider) Timeout() (time.Duration, time.Duration) {
	return p.timeout, 100 * time.Millisecond
}

// testLegoPreCheck runs lego's DNS-01 Solve, whose pre-check (dns01's checkDNSPropagation,
// reached through WrapPreCheck, which hands it over) asks the given name server for the TXT
// value at _acme-challenge.DOMAIN, following the CNAME. Only the recursive-name-server
// check runs: the authoritative one looks the NS records up and asks them on port 53.
func testLegoPreCheck(t *testing.T, addr string, publishLate func(i int, value string), publishAtTarget func(value string)) {
	dir := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(acme.Directory{NewNonceURL: "https://" + r.Host + "/nonce", NewAccountURL: "https://" + r.Host + "/account", NewOrderURL: "https://" + r.Host + "/order"})
	}))
	t.Cleanup(dir.Close)
	accountKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	core, err := api.New(dir.Client(), "acmezone-dnssec-test", dir.URL, "", accountKey)
	if err != nil {
		t.Fatal(err)
	}
	saved := dns01.DefaultClient()
	t.Cleanup(func() { dns01.SetDefaultClient(saved) })

	// solve runs lego's Solve for domain with a challenge token, publishing (if set) after
	// lego's check has failed twice; it returns the check's errors, whether the CA would
	// have been told to validate, and Solve's error.
	solve := func(nameserver, domain, token string, timeout time.Duration, publish func(value string)) ([]string, bool, error) {
		dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: []string{nameserver}, Timeout: 2 * time.Second}))
		var mu sync.Mutex
		var failures []string
		var once sync.Once
		validated := false
		chlg := dns01.NewChallenge(core,
			func(context.Context, *api.Core, string, acme.Challenge) error { validated = true; return nil },
			legoProvider{timeout},
			dns01.DisableAuthoritativeNssPropagationRequirement(),
			dns01.WrapPreCheck(func(ctx context.Context, _, fqdn, value string, check dns01.PreCheckFunc) (bool, error) {
				ok, err := check(ctx, fqdn, value)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures = append(failures, err.Error())
				}
				if len(failures) == 2 && publish != nil {
					once.Do(func() { publish(value) })
				}
				return ok, err
			}))
		err := chlg.Solve(context.Background(), acme.Authorization{
			Identifier: acme.Identifier{Type: "dns", Value: domain},
			Challenges: []acme.Challenge{{Type: "dns-01", Token: token}},
		})
		mu.Lock()
		defer mu.Unlock()
		return failures, validated, err
	}

	udp := addr // the server's UDP and TCP listen on the same port
	for i, via := range []struct {
		name, nameserver string
		notYet           string // what lego's check says while the name does not exist
	}{
		{"through a validating resolver (DO)", doRelay(t, addr), "did not return the expected TXT record"},
		{"straight to the server (no DO)", udp, "returned NXDOMAIN"},
	} {
		t.Run(via.name, func(t *testing.T) {
			shop := "shop.acme.example.com"
			// A value not there yet: lego keeps polling and gives up at its timeout.
			failures, validated, err := solve(via.nameserver, shop, fmt.Sprintf("absent-token-%d", i), time.Second, nil)
			if err == nil || validated || len(failures) == 0 || !strings.Contains(failures[0], "did not return the expected TXT record") {
				t.Errorf("value absent: Solve %v, validated %v, check errors %q; want lego to time out on the missing value", err, validated, failures)
			}
			// Published: lego's check passes at once.
			token := fmt.Sprintf("present-token-%d", i)
			keyAuth, _ := core.GetKeyAuthorization(token)
			publishAtTarget(dns01.GetChallengeInfo(context.Background(), shop, keyAuth).Value)
			waitFor(t, func() error {
				failures, validated, err := solve(via.nameserver, shop, token, time.Second, nil)
				if err != nil || !validated {
					return fmt.Errorf("value present: Solve %v, validated %v, check errors %q; want the check to pass", err, validated, failures)
				}
				return nil
			})
			// The CNAME leads to a name that does not exist yet: not an error that stops
			// lego, just "not yet", until the Delegation and the record appear.
			late := fmt.Sprintf("late%d.acme.example.com", i)
			failures, validated, err = solve(via.nameserver, late, "late-token", 20*time.Second, func(value string) { publishLate(i, value) })
			if err != nil || !validated {
				t.Errorf("name created while lego polls: Solve %v, validated %v, check errors %q; want it to pass once the record is there", err, validated, failures)
			}
			if len(failures) < 2 || !strings.Contains(failures[0], via.notYet) {
				t.Errorf("while the name does not exist, lego's check said %q; want %q", failures, via.notYet)
			}
		})
	}
}
