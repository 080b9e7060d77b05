// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestResponsesCounted checks that every answer counts once in the counter of its server, zone
// and result, through the cache of counters.
func TestResponsesCounted(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	target := targetOf("ns", "t.example")
	a.store.updateDelegation("", nn("ns", "d"), deleg("t.example"))
	a.store.updateRecord("", nn("ns", "r"), &recordIn{fqdn: target, value: "v"})
	a.store.goLive()
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://:5300"})
	count := func(zone, result string) float64 {
		return testutil.ToFloat64(responses.WithLabelValues("dns://:5300", zone, result))
	}
	ask := func(m *dns.Msg) {
		if _, err := a.ServeDNS(ctx, dnstest.NewRecorder(&test.ResponseWriter{}), m); err != nil {
			t.Fatal(err)
		}
	}
	hits, nx, formerr := count("acme.example.com.", "answer"), count("acme.example.com.", "nxdomain"), count("", "formerr")
	for range 3 {
		ask(new(dns.Msg).SetQuestion(target, dns.TypeTXT))
	}
	ask(new(dns.Msg).SetQuestion(strings.ToUpper(target), dns.TypeTXT))
	ask(new(dns.Msg).SetQuestion("nosuch.acme.example.com.", dns.TypeTXT))
	ask(&dns.Msg{}) // no question
	if got := count("acme.example.com.", "answer") - hits; got != 4 {
		t.Errorf("answers counted: %v, want 4", got)
	}
	if got := count("acme.example.com.", "nxdomain") - nx; got != 1 {
		t.Errorf("NXDOMAINs counted: %v, want 1", got)
	}
	if got := count("", "formerr") - formerr; got != 1 {
		t.Errorf("FORMERRs counted: %v, want 1", got)
	}
}
