// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// TestSecondaryFollowsNotify is issue 14's replication with real parts and no certificate:
// Knot, a standard secondary, transfers acme.example.com from acmezone's CoreDNS (TSIG-signed),
// and every ChallengeRecord written afterwards reaches it through acmezone's signed NOTIFY
// and an incremental transfer, within seconds although the SOA refresh is an hour. A record
// deleted leaves it the same way. `make e2e`'s TestSecondary issues a certificate through it.
func TestSecondaryFollowsNotify(t *testing.T) {
	knotd, err := Knotd()
	if err != nil {
		t.Fatal(err)
	}
	d := newDNSTest(t)
	ctx, c := d.ctx, d.c
	tsig, err := NewTSIGKey("xfr.acme.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	d.track(StartAcmezoneWith(ctx, d.dir, d.coredns, d.kubeconfig, d.keyFile, AcmezoneConfig{}.HiddenPrimary(tsig)))
	sec, err := StartSecondary(ctx, d.dir, knotd, AcmezoneIP+":53", tsig)
	if err != nil {
		t.Fatal(err)
	}
	d.track(sec.Process, nil)

	// Transfers need the key: an unsigned AXFR, even from the secondary's address, is refused.
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(SecondaryIP)}}).Dial("tcp", AcmezoneIP+":53")
	if err != nil {
		t.Fatal(err)
	}
	tr := &dns.Transfer{Conn: &dns.Conn{Conn: conn}}
	m := new(dns.Msg)
	m.SetAxfr("acme.example.com.")
	if env, err := tr.In(m, AcmezoneIP+":53"); err == nil {
		if e := <-env; e.Error == nil {
			t.Errorf("an unsigned AXFR was answered with %d records, want it refused", len(e.RR))
		}
	}
	conn.Close()

	target := d.delegate()
	for i := range 3 {
		value := fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
		rec := v1alpha1.NewChallengeRecord("shop", target, value)
		start := time.Now()
		if err := c.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		waitSecondary(t, sec, target, value, true)
		t.Logf("record %d answered by the secondary %v after its creation", i, time.Since(start).Round(time.Millisecond))
		if err := c.Delete(ctx, rec); err != nil && client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
		waitSecondary(t, sec, target, value, false)
	}
	// The first transfer was the whole zone, the later ones increments.
	xfrs := sec.Transfers()
	if len(xfrs) < 2 || !strings.Contains(xfrs[0], "AXFR") {
		t.Fatalf("the secondary's transfers: %q, want an AXFR first", xfrs)
	}
	for _, l := range xfrs[1:] {
		if !strings.Contains(l, "IXFR") || strings.Contains(l, "fallback") {
			t.Errorf("a later transfer was not incremental: %s", l)
		}
	}
	// Both serve the same serial at the end.
	primary, err := SOASerial(AcmezoneIP + ":53")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sec.Serial(); err != nil || got != primary {
		t.Errorf("the secondary's serial is %d (%v), the primary's %d", got, err, primary)
	}
}

// waitSecondary waits until the secondary answers TXT name with value (present), or without
// it: at most 10 s, far less than the SOA refresh (an hour), so only a NOTIFY can explain it.
func waitSecondary(t *testing.T, sec *Secondary, name, value string, present bool) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	cl := &dns.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _, err := cl.Exchange(m, sec.Addr)
		if err == nil && HasTXT(r, value) == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("TXT %s at the secondary 10 s after the change: %v %v, want the value %q present=%v (the SOA refresh is an hour: was there no NOTIFY?)", name, r, err, value, present)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
