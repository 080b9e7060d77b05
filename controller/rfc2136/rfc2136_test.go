// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package rfc2136

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/internal/kubetest"
)

const zone = "acme.example.com."

// Two challenge values, 43 base64url characters as ACME's.
const (
	txt1 = "LPsIwTo7o8BoG0-vjCyGQGBWSVIPxI-i_X336eUOQZo"
	txt2 = "R-ZeUaYpQdATPDKHn9c7ie_dmoiebTGE3UN4vXFI0hg"
)

// tsigKey is one TSIG key of the fixture: its Secret and what a client signs with.
type tsigKey struct {
	namespace, secret, algorithm string // algorithm: as the client names it (canonical)
	material                     string // base64
}

func (k tsigKey) name() string { return KeyName(k.namespace, k.secret) }

// fixture is one real kube-apiserver with the CRDs, the listener on 127.0.0.1, two tenants
// (team-a with example.com, team-b with example.org and example.com too) and their keys.
type fixture struct {
	k8s      client.Client
	addr     string // host:port of UDP
	tcp      string // host:port of TCP (another port: ":0" binds each on its own)
	targetA  string // team-a's target for example.com
	targetB  string // team-b's target for example.org
	targetBA string // team-b's target for example.com
	keyA     tsigKey
	keyA512  tsigKey
	keyMD5   tsigKey
	keyB     tsigKey
	opaque   tsigKey // a Secret with a key's data but of type Opaque
}

func randomKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// start brings up the fixture. The listener gets the manager's set-up: a cache with the
// Delegation indexes for the tenancy rule, and a cache of the KeySecretType Secrets only.
func start(t *testing.T) *fixture {
	t.Helper()
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds")}, "team-a", "team-b")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	key, err := v1alpha1.NewTargetKey([]byte(randomKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	opts := &controller.Options{Zone: zone, TargetKey: key,
		NameServers: []controller.NameServer{{Name: "ns.example.com.", Addrs: []net.IP{net.ParseIP("127.0.0.1")}}}}

	objects, err := cache.New(env.Config, cache.Options{Scheme: kubetest.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := opts.IndexDelegations(ctx, objects); err != nil {
		t.Fatal(err)
	}
	keys, err := cache.New(env.Config, KeyCacheOptions(cache.Options{Scheme: kubetest.Scheme()}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []cache.Cache{objects, keys} {
		go func() { _ = c.Start(ctx) }()
	}
	cached, err := client.New(env.Config, client.Options{Scheme: kubetest.Scheme(), Cache: &client.CacheOptions{Reader: objects}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Options: opts, Client: cached, APIReader: env.Client, Secrets: keys, Addr: "127.0.0.1:0", Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := s.Start(ctx); err != nil {
			t.Error(err)
		}
	}()
	addrs, err := s.Addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{k8s: env.Client, addr: addrs[0].String(), tcp: addrs[1].String()}

	f.keyA = tsigKey{"team-a", "tsig", dns.HmacSHA256, randomKey(t)}
	f.keyA512 = tsigKey{"team-a", "tsig-512", dns.HmacSHA512, randomKey(t)}
	f.keyMD5 = tsigKey{"team-a", "tsig-md5", hmacMD5, randomKey(t)}
	f.keyB = tsigKey{"team-b", "tsig", dns.HmacSHA256, randomKey(t)}
	f.opaque = tsigKey{"team-a", "opaque", dns.HmacSHA256, randomKey(t)}
	for _, k := range []tsigKey{f.keyA, f.keyA512, f.keyMD5, f.keyB, f.opaque} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: k.namespace, Name: k.secret}, Type: KeySecretType,
			Data: map[string][]byte{SecretKey: []byte(k.material)}}
		switch k.algorithm {
		case dns.HmacSHA512:
			sec.Data[AlgorithmKey] = []byte("hmac-sha512")
		case hmacMD5:
			sec.Data[AlgorithmKey] = []byte("hmac-md5")
		}
		if k == f.opaque {
			sec.Type = corev1.SecretTypeOpaque
		}
		if err := env.Client.Create(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct{ ns, name, domain string }{
		{"team-a", "example-com", "example.com"},
		{"team-b", "example-org", "example.org"},
		{"team-b", "example-com", "example.com"},
	} {
		if err := env.Client.Create(ctx, &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: d.name},
			Spec: v1alpha1.DelegationSpec{Domain: d.domain}}); err != nil {
			t.Fatal(err)
		}
	}
	target := func(ns, domain string) string {
		tg, err := key.Target(v1alpha1.TargetClaim{Namespace: ns, Domain: domain}, zone)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	f.targetA, f.targetB, f.targetBA = target("team-a", "example.com"), target("team-b", "example.org"), target("team-b", "example.com")
	// The caches hold the Delegations and the keys once an add is answered NOERROR.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, _ := f.send(t, f.keyA, "udp", add(f.targetA, "probe"))
		if r != nil && r.Rcode == dns.RcodeSuccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener never accepted team-a's update: %v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.send(t, f.keyA, "udp", del(f.targetA, "probe"))
	return f
}

// updateMsg returns an UPDATE for zone z (the fixture's when "") with the given prerequisite and
// update records.
func updateMsg(z string, prereq []dns.RR, changes ...dns.RR) *dns.Msg {
	if z == "" {
		z = zone
	}
	m := new(dns.Msg)
	m.SetUpdate(z)
	m.Answer = prereq
	m.Ns = changes
	return m
}

func rr(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

// add and del are UPDATEs adding and deleting one TXT value at name.
func add(name, value string) *dns.Msg {
	return updateMsg("", nil, rr(fmt.Sprintf("%s 60 IN TXT %q", name, value)))
}

func del(name, value string) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(zone)
	m.Remove([]dns.RR{rr(fmt.Sprintf("%s 60 IN TXT %q", name, value))})
	return m
}

// send signs m with k (unsigned when k is zero) and sends it over netw; the answer may come with
// an error when its TSIG does not verify (an unsigned BADKEY/BADSIG answer).
func (f *fixture) send(t testing.TB, k tsigKey, netw string, m *dns.Msg) (*dns.Msg, error) {
	t.Helper()
	return f.sendAt(t, k, netw, m, time.Now().Unix())
}

func (f *fixture) sendAt(t testing.TB, k tsigKey, netw string, m *dns.Msg, signed int64) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 10 * time.Second}
	if k.secret != "" {
		c.TsigProvider = clientKey(k.material)
		m.SetTsig(k.name(), k.algorithm, 300, signed)
	}
	addr := f.addr
	if netw == "tcp" {
		addr = f.tcp
	}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// clientKey signs as a client does, with any of the algorithms (MD5 too, which miekg/dns
// dropped): the test's own, not the package's keyring.
type clientKey string

func (k clientKey) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	material, err := base64.StdEncoding.DecodeString(string(k))
	if err != nil {
		return nil, err
	}
	h, ok := algorithms[dns.CanonicalName(t.Algorithm)]
	if !ok {
		return nil, dns.ErrKeyAlg
	}
	return macOf(h, material, msg), nil
}

func (k clientKey) Verify(msg []byte, t *dns.TSIG) error {
	b, err := k.Generate(msg, t)
	if err != nil {
		return err
	}
	if fmt.Sprintf("%x", b) != strings.ToLower(t.MAC) {
		return dns.ErrSig
	}
	return nil
}

// stored is every ChallengeRecord in the cluster, as "namespace fqdn value" lines, sorted.
func (f *fixture) stored(t testing.TB) []string {
	t.Helper()
	var list v1alpha1.ChallengeRecordList
	if err := f.k8s.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range list.Items {
		out = append(out, r.Namespace+" "+r.Spec.FQDN+" "+r.Spec.Value)
	}
	slices.Sort(out)
	return out
}

// TestUpdate runs every case against one real kube-apiserver and one listener.
func TestUpdate(t *testing.T) {
	f := start(t)
	t.Run("AddAndDelete", f.testAddDelete)
	t.Run("Refusals", f.testRefusals)
	t.Run("Prerequisites", f.testPrerequisites)
	t.Run("SOA", f.testSOA)
	t.Run("Knsupdate", f.testKnsupdate)
}

// testAddDelete: team-a's key adds two values at team-a's target (the apex's and the
// wildcard's challenge at once), over UDP and TCP; each becomes a labelled ChallengeRecord in
// team-a; deleting one removes exactly that one; an RRset delete removes the rest.
func (f *fixture) testAddDelete(t *testing.T) {
	ctx := context.Background()
	for _, netw := range []string{"udp", "tcp"} {
		for _, k := range []tsigKey{f.keyA, f.keyA512, f.keyMD5} {
			r, err := f.send(t, k, netw, updateMsg("", nil,
				rr(fmt.Sprintf("%s 120 IN TXT %q", f.targetA, txt1)), rr(fmt.Sprintf("%s 120 IN TXT %q", f.targetA, txt2))))
			if err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("%s %s: add = %v, %v; want NOERROR, signed", netw, k.algorithm, r, err)
			}
			want := []string{"team-a " + f.targetA + " " + txt1, "team-a " + f.targetA + " " + txt2}
			if got := f.stored(t); !slices.Equal(got, want) {
				t.Fatalf("%s %s: stored %q, want %q", netw, k.algorithm, got, want)
			}
			var rec v1alpha1.ChallengeRecord
			if err := f.k8s.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: v1alpha1.ChallengeRecordName(f.targetA, txt1)}, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Labels[KeyLabel] != k.secret || rec.Annotations[v1alpha1.DomainAnnotation] != "example.com" || rec.Spec.TTL == nil || *rec.Spec.TTL != 120 {
				t.Errorf("record %s: labels %v, annotations %v, ttl %v; want the key's label, domain example.com, ttl 120", rec.Name, rec.Labels, rec.Annotations, rec.Spec.TTL)
			}
			if r, err := f.send(t, k, netw, del(f.targetA, txt1)); err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("delete = %v, %v", r, err)
			}
			if got, want := f.stored(t), []string{"team-a " + f.targetA + " " + txt2}; !slices.Equal(got, want) {
				t.Fatalf("after deleting %s: stored %q, want %q", txt1, got, want)
			}
			m := new(dns.Msg)
			m.SetUpdate(zone)
			m.RemoveRRset([]dns.RR{rr(fmt.Sprintf("%s 0 IN TXT \"x\"", f.targetA))})
			if r, err := f.send(t, k, netw, m); err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("RRset delete = %v, %v", r, err)
			}
			if got := f.stored(t); len(got) != 0 {
				t.Fatalf("after the RRset delete: stored %q, want nothing", got)
			}
		}
	}
}

// testRefusals: every UPDATE a tenant must not make, or that is not well formed, gets its
// rcode (and TSIG error) and changes nothing. The first cases are the attacks: writing at
// another namespace's target, with or without a key, or with a key of the wrong kind.
func (f *fixture) testRefusals(t *testing.T) {
	// A value of team-b's, which team-a must not be able to delete.
	if r, err := f.send(t, f.keyB, "udp", add(f.targetBA, txt2)); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("team-b's add = %v, %v", r, err)
	}
	defer f.send(t, f.keyB, "udp", del(f.targetBA, txt2))
	wrong := f.keyA
	wrong.material = randomKey(t)
	wrongAlg := f.keyA
	wrongAlg.algorithm = dns.HmacSHA512
	unknown := tsigKey{"team-a", "nope", dns.HmacSHA256, randomKey(t)}
	otherNS := f.keyA
	otherNS.namespace = "team-b" // team-a's Secret named as if it were team-b's
	for _, tc := range []struct {
		name    string
		key     tsigKey
		msg     *dns.Msg
		signed  int64 // 0: now
		rcode   int
		tsigErr uint16
	}{
		{"AnotherNamespacesTarget", f.keyA, add(f.targetBA, txt1), 0, dns.RcodeRefused, 0},
		{"AnotherNamespacesOtherDomain", f.keyA, add(f.targetB, txt1), 0, dns.RcodeRefused, 0},
		{"DeleteAnotherNamespacesValue", f.keyA, del(f.targetBA, txt2), 0, dns.RcodeRefused, 0},
		{"KeyNamedForAnotherNamespace", otherNS, add(f.targetBA, txt1), 0, dns.RcodeNotAuth, dns.RcodeBadSig},
		{"Unsigned", tsigKey{}, add(f.targetA, txt1), 0, dns.RcodeRefused, 0},
		{"UnknownKey", unknown, add(f.targetA, txt1), 0, dns.RcodeNotAuth, dns.RcodeBadKey},
		{"OpaqueSecret", f.opaque, add(f.targetA, txt1), 0, dns.RcodeNotAuth, dns.RcodeBadKey},
		{"WrongSecret", wrong, add(f.targetA, txt1), 0, dns.RcodeNotAuth, dns.RcodeBadSig},
		{"WrongAlgorithm", wrongAlg, add(f.targetA, txt1), 0, dns.RcodeNotAuth, dns.RcodeBadKey},
		{"MD5NotNamed", tsigKey{"team-a", "tsig", hmacMD5, f.keyA.material}, add(f.targetA, txt1), 0, dns.RcodeNotAuth, dns.RcodeBadKey},
		{"TimeOff", f.keyA, add(f.targetA, txt1), time.Now().Unix() - 3600, dns.RcodeNotAuth, dns.RcodeBadTime},
		{"OtherZone", f.keyA, updateMsg("example.com.", nil, rr(`_acme-challenge.example.com. 60 IN TXT "x"`)), 0, dns.RcodeNotAuth, 0},
		{"NameOutsideZone", f.keyA, updateMsg("", nil, rr(`_acme-challenge.example.com. 60 IN TXT "x"`)), 0, dns.RcodeNotZone, 0},
		{"Apex", f.keyA, updateMsg("", nil, rr(zone+` 60 IN TXT "x"`)), 0, dns.RcodeRefused, 0},
		{"ApexNS", f.keyA, updateMsg("", nil, rr(zone+` 60 IN NS evil.example.net.`)), 0, dns.RcodeRefused, 0},
		{"OwnTargetA", f.keyA, updateMsg("", nil, rr(f.targetA+` 60 IN A 192.0.2.1`)), 0, dns.RcodeRefused, 0},
		{"OwnTargetCNAME", f.keyA, updateMsg("", nil, rr(f.targetA+` 60 IN CNAME evil.example.net.`)), 0, dns.RcodeRefused, 0},
		{"BelowOwnTarget", f.keyA, updateMsg("", nil, rr(`x.`+f.targetA+` 60 IN TXT "x"`)), 0, dns.RcodeRefused, 0},
		{"TwoStrings", f.keyA, updateMsg("", nil, rr(f.targetA+` 60 IN TXT "a" "b"`)), 0, dns.RcodeRefused, 0},
		{"ControlByte", f.keyA, updateMsg("", nil, rr(f.targetA+` 60 IN TXT "a\007"`)), 0, dns.RcodeRefused, 0},
		{"OwnThenForeign", f.keyA, updateMsg("", nil, rr(fmt.Sprintf("%s 60 IN TXT %q", f.targetA, txt1)), rr(fmt.Sprintf("%s 60 IN TXT %q", f.targetBA, txt1))), 0, dns.RcodeRefused, 0},
		{"PrerequisiteOnForeign", f.keyA, updateMsg("", []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: f.targetBA, Rrtype: dns.TypeTXT, Class: dns.ClassANY}}}, rr(fmt.Sprintf("%s 60 IN TXT %q", f.targetA, txt1))), 0, dns.RcodeRefused, 0},
		{"PrerequisiteTTL", f.keyA, updateMsg("", []dns.RR{rr(fmt.Sprintf("%s 60 IN TXT %q", f.targetA, txt1))}), 0, dns.RcodeFormatError, 0},
		{"ZoneNotSOA", f.keyA, func() *dns.Msg { m := add(f.targetA, txt1); m.Question[0].Qtype = dns.TypeA; return m }(), 0, dns.RcodeFormatError, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.stored(t)
			signed := tc.signed
			if signed == 0 {
				signed = time.Now().Unix()
			}
			r, err := f.sendAt(t, tc.key, "udp", tc.msg, signed)
			if r == nil {
				t.Fatalf("no answer: %v", err)
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			var gotErr uint16
			if ts := r.IsTsig(); ts != nil {
				gotErr = ts.Error
			}
			if gotErr != tc.tsigErr {
				t.Errorf("TSIG error %s, want %s", dns.RcodeToString[int(gotErr)], dns.RcodeToString[int(tc.tsigErr)])
			}
			// An answer to a verified request is signed; miekg/dns's client declines to verify
			// any NOTAUTH answer (ErrAuth), so those are checked by knsupdate (testKnsupdate).
			if tc.tsigErr == 0 && tc.key.secret != "" && r.Rcode != dns.RcodeNotAuth && err != nil {
				t.Errorf("the answer's TSIG does not verify: %v", err)
			}
			if after := f.stored(t); !slices.Equal(before, after) {
				t.Errorf("the store changed: %q -> %q", before, after)
			}
		})
	}
}

// testPrerequisites: RFC 2136 3.2's five kinds, each passing and failing, at team-a's target.
func (f *fixture) testPrerequisites(t *testing.T) {
	name := f.targetA
	anyOf := func(typ uint16, class uint16) dns.RR {
		return &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: typ, Class: class}}
	}
	value := func(v string) dns.RR {
		r := rr(fmt.Sprintf("%s 0 IN TXT %q", name, v))
		return r
	}
	change := rr(fmt.Sprintf("%s 60 IN TXT %q", name, txt2))
	steps := []struct {
		name   string
		prereq []dns.RR
		rcode  int
	}{
		// The name holds nothing yet.
		{"YXDomainEmpty", []dns.RR{anyOf(dns.TypeANY, dns.ClassANY)}, dns.RcodeNameError},
		{"YXRRsetEmpty", []dns.RR{anyOf(dns.TypeTXT, dns.ClassANY)}, dns.RcodeNXRrset},
		{"YXRRsetOfA", []dns.RR{anyOf(dns.TypeA, dns.ClassANY)}, dns.RcodeNXRrset},
		{"NXDomainEmpty", []dns.RR{anyOf(dns.TypeANY, dns.ClassNONE)}, dns.RcodeSuccess}, // adds txt2
		// Now txt2 is there.
		{"NXDomainInUse", []dns.RR{anyOf(dns.TypeANY, dns.ClassNONE)}, dns.RcodeYXDomain},
		{"NXRRsetExists", []dns.RR{anyOf(dns.TypeTXT, dns.ClassNONE)}, dns.RcodeYXRrset},
		{"NXRRsetOfA", []dns.RR{anyOf(dns.TypeA, dns.ClassNONE)}, dns.RcodeSuccess},
		{"YXDomain", []dns.RR{anyOf(dns.TypeANY, dns.ClassANY)}, dns.RcodeSuccess},
		{"YXRRset", []dns.RR{anyOf(dns.TypeTXT, dns.ClassANY)}, dns.RcodeSuccess},
		{"ValueMatches", []dns.RR{value(txt2)}, dns.RcodeSuccess},
		{"ValueDiffers", []dns.RR{value(txt1)}, dns.RcodeNXRrset},
		{"ValueSuperset", []dns.RR{value(txt2), value(txt1)}, dns.RcodeNXRrset},
	}
	for _, st := range steps {
		before := f.stored(t)
		r, err := f.send(t, f.keyA, "tcp", updateMsg("", st.prereq, change))
		if err != nil || r.Rcode != st.rcode {
			t.Errorf("%s: %v, %v; want %s", st.name, r, err, dns.RcodeToString[st.rcode])
		}
		if after := f.stored(t); st.rcode != dns.RcodeSuccess && !slices.Equal(before, after) {
			t.Errorf("%s: the store changed: %q -> %q", st.name, before, after)
		}
	}
	if got, want := f.stored(t), []string{"team-a " + name + " " + txt2}; !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
	f.send(t, f.keyA, "udp", del(name, txt2))
}

// testSOA: the listener answers the SOA queries clients find the zone with, and nothing else.
func (f *fixture) testSOA(t *testing.T) {
	c := &dns.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		name              string
		qtype             uint16
		rcode             int
		answer, authority int
	}{
		{zone, dns.TypeSOA, dns.RcodeSuccess, 1, 0},
		{f.targetA, dns.TypeSOA, dns.RcodeSuccess, 0, 1},
		{f.targetA, dns.TypeTXT, dns.RcodeRefused, 0, 0},
		{"example.com.", dns.TypeSOA, dns.RcodeRefused, 0, 0},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.name, tc.qtype)
		r, _, err := c.Exchange(m, f.addr)
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != tc.rcode || len(r.Answer) != tc.answer || len(r.Ns) != tc.authority {
			t.Errorf("%s %s: %s with %d answers and %d in authority; want %s, %d, %d", tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[r.Rcode], len(r.Answer), len(r.Ns), dns.RcodeToString[tc.rcode], tc.answer, tc.authority)
		}
	}
}

// TestUnescape: TXT strings as miekg/dns unpacks them become the bytes on the wire, which is
// what a ChallengeRecord holds and the plugin serves.
func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		txt1: txt1, `a\\b`: `a\b`, `a\"b`: `a"b`, `a\007`: "a\a", `\255`: "\xff", `\256`: "256", `a\`: `a\`, `\1`: "1",
	} {
		var m dns.Msg
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
		// The round trip through the wire: miekg/dns escapes what unescape undoes.
		if want != "256" && want != "1" && want != `a\` {
			m.Extra = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{in}}}
			b, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			var back dns.Msg
			if err := back.Unpack(b); err != nil {
				t.Fatal(err)
			}
			if got := unescape(back.Extra[0].(*dns.TXT).Txt[0]); got != want {
				t.Errorf("over the wire %q became %q, want %q", in, got, want)
			}
		}
	}
}
