// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package rfc2136

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// recorder is the dns.ResponseWriter of the fuzz target: it does what miekg/dns's does with a
// verified TSIG status and signs as it would.
type recorder struct {
	status error
	keys   dns.TsigProvider
	mac    string
	out    *dns.Msg
	wire   []byte
}

func (r *recorder) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353} }
func (r *recorder) WriteMsg(m *dns.Msg) error {
	r.out = m
	if m.IsTsig() != nil {
		b, _, err := dns.TsigGenerateWithProvider(m, r.keys, r.mac, false)
		r.wire = b
		return err
	}
	b, err := m.Pack()
	r.wire = b
	return err
}
func (r *recorder) Write(b []byte) (int, error) { r.wire = b; return len(b), nil }
func (r *recorder) Close() error                { return nil }
func (r *recorder) TsigStatus() error           { return r.status }
func (r *recorder) TsigTimersOnly(bool)         {}
func (r *recorder) Hijack()                     {}

// FuzzUpdate: whatever bytes arrive, the listener never panics, answers with a message that
// packs, and a message it does not answer NOERROR changes nothing; nothing ever lands outside
// team-a's own target, the only place team-a's key may write. The seeds include UPDATEs
// validly signed with team-a's key, so the fuzzer starts from messages that get through TSIG.
func FuzzUpdate(f *testing.F) {
	s := kubetest.Scheme()
	key, err := v1alpha1.NewTargetKey([]byte("0123456789abcdef0123456789abcdef-fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	opts := &controller.Options{Zone: zone, TargetKey: key}
	material := "2Mr7OZcY8p6qWOGzXAKdZDkNvM9e2fEYF0ZjE2ktZ0Q="
	b := fake.NewClientBuilder().WithScheme(s).WithObjects(
		&v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "a"}, Spec: v1alpha1.DelegationSpec{Domain: "example.com"}},
		&v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "b"}, Spec: v1alpha1.DelegationSpec{Domain: "example.com"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tsig"}, Type: KeySecretType, Data: map[string][]byte{SecretKey: []byte(material)}},
	)
	if err := opts.IndexDelegations(context.Background(), kubetest.BuilderIndexer{B: b}); err != nil {
		f.Fatal(err)
	}
	c := b.Build()
	srv, err := New(Config{Options: opts, Client: c, Secrets: c, Addr: "unused", Log: logr.Discard()})
	if err != nil {
		f.Fatal(err)
	}
	targetA, _ := key.Target(v1alpha1.TargetClaim{Namespace: "team-a", Domain: "example.com"}, zone)
	targetB, _ := key.Target(v1alpha1.TargetClaim{Namespace: "team-b", Domain: "example.com"}, zone)
	if err := c.Create(context.Background(), v1alpha1.NewChallengeRecord("team-b", targetB, txt2)); err != nil {
		f.Fatal(err)
	}

	sign := func(m *dns.Msg) []byte {
		m.SetTsig("tsig.team-a.", dns.HmacSHA256, 300, time.Now().Unix())
		wire, _, err := dns.TsigGenerate(m, material, "", false)
		if err != nil {
			f.Fatal(err)
		}
		return wire
	}
	seed := func(m *dns.Msg) {
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	for _, m := range []*dns.Msg{
		add(targetA, txt1), del(targetA, txt1), add(targetB, txt1), del(targetB, txt2),
		updateMsg("", []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: targetA, Rrtype: dns.TypeANY, Class: dns.ClassNONE}}}, rr(fmt.Sprintf("%s 60 IN TXT %q", targetA, txt2))),
		updateMsg("", nil, rr(zone+" 60 IN NS evil.example.net.")),
	} {
		f.Add(sign(m.Copy()))
		seed(m)
	}
	q := new(dns.Msg)
	q.SetQuestion(zone, dns.TypeSOA)
	seed(q)

	stored := func(t *testing.T) []string {
		var list v1alpha1.ChallengeRecordList
		if err := c.List(context.Background(), &list); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range list.Items {
			out = append(out, r.Namespace+" "+r.Spec.FQDN+" "+r.Spec.Value)
		}
		slices.Sort(out)
		return out
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(wire); err != nil {
			return // miekg/dns's server drops what does not parse
		}
		if req.Response || (req.Opcode != dns.OpcodeUpdate && req.Opcode != dns.OpcodeQuery) {
			return // accept drops responses and answers other opcodes NOTIMP itself
		}
		w := &recorder{keys: srv.keys}
		if ts := req.IsTsig(); ts != nil {
			w.status = dns.TsigVerifyWithProvider(wire, srv.keys, "", false)
			w.mac = ts.MAC
		}
		before := stored(t)
		srv.ServeDNS(w, req)
		after := stored(t)
		if w.out == nil {
			t.Fatalf("no answer to %v", req)
		}
		if w.out.Rcode != dns.RcodeSuccess && !slices.Equal(before, after) {
			t.Fatalf("answered %s but the store changed: %q -> %q", dns.RcodeToString[w.out.Rcode], before, after)
		}
		for _, r := range after {
			if r != "team-b "+targetB+" "+txt2 && !(len(r) > len("team-a "+targetA) && r[:len("team-a "+targetA)+1] == "team-a "+targetA+" ") {
				t.Fatalf("a record outside team-a's target: %q (request %v)", r, req)
			}
		}
		if !slices.Contains(after, "team-b "+targetB+" "+txt2) {
			t.Fatalf("team-b's record is gone (request %v)", req)
		}
	})
}
