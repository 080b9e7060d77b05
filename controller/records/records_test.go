// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"net"
	"slices"
	"testing"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

const seedTarget = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."

// seedOptions are the seed's installation: zone acme.example.com, name server ns.example.com
// at 34.84.45.1.
func seedOptions() controller.Options {
	return controller.Options{
		Zone:        "acme.example.com.",
		NameServers: []controller.NameServer{{Name: "ns.example.com.", Addrs: []net.IP{net.ParseIP("34.84.45.1")}}},
	}
}

func TestFor(t *testing.T) {
	twoNS := controller.Options{
		Zone: "acme.example.com.",
		NameServers: []controller.NameServer{
			{Name: "ns1.acme.example.com.", Addrs: []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")}},
			{Name: "NS2.Example.NET."}, // has its addresses already
		},
	}
	tests := []struct {
		opts           controller.Options
		domain, target string
		want           []v1alpha1.DNSRecord
	}{
		// The seed's tables, in their order.
		{seedOptions(), "example.com", seedTarget, []v1alpha1.DNSRecord{
			{Type: "A", Name: "ns.example.com", Content: "34.84.45.1"},
			{Type: "NS", Name: "acme.example.com", Content: "ns.example.com"},
			{Type: "CNAME", Name: "_acme-challenge.example.com", Content: "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com"},
		}},
		// A wildcard, upper case and a trailing dot in the domain make no difference.
		{seedOptions(), "*.Example.COM.", "B6E4682C-5109-4A34-AC99-D5097D5B2B68.ACME.example.com.", []v1alpha1.DNSRecord{
			{Type: "A", Name: "ns.example.com", Content: "34.84.45.1"},
			{Type: "NS", Name: "acme.example.com", Content: "ns.example.com"},
			{Type: "CNAME", Name: "_acme-challenge.example.com", Content: "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com"},
		}},
		// Unknown target: the placeholder.
		{seedOptions(), "shop.example", "", []v1alpha1.DNSRecord{
			{Type: "A", Name: "ns.example.com", Content: "34.84.45.1"},
			{Type: "NS", Name: "acme.example.com", Content: "ns.example.com"},
			{Type: "CNAME", Name: "_acme-challenge.shop.example", Content: "<target of the Delegation>"},
		}},
		// acmezone serves the user's own zone: the target is the challenge name, no CNAME.
		{seedOptions(), "example.com", "_acme-challenge.example.com.", []v1alpha1.DNSRecord{
			{Type: "A", Name: "ns.example.com", Content: "34.84.45.1"},
			{Type: "NS", Name: "acme.example.com", Content: "ns.example.com"},
		}},
		// Glue for the in-zone name server, A before AAAA as given; none for the one without
		// addresses; one NS per name server.
		{twoNS, "example.com", "t.acme.example.com.", []v1alpha1.DNSRecord{
			{Type: "A", Name: "ns1.acme.example.com", Content: "192.0.2.1"},
			{Type: "AAAA", Name: "ns1.acme.example.com", Content: "2001:db8::1"},
			{Type: "NS", Name: "acme.example.com", Content: "ns1.acme.example.com"},
			{Type: "NS", Name: "acme.example.com", Content: "ns2.example.net"},
			{Type: "CNAME", Name: "_acme-challenge.example.com", Content: "t.acme.example.com"},
		}},
	}
	for i, tc := range tests {
		got := For(tc.opts, tc.domain, tc.target)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Test %d: For(%q, %q) = %v, want %v", i, tc.domain, tc.target, got, tc.want)
		}
	}
}

func TestChallengeName(t *testing.T) {
	for i, tc := range []struct{ domain, want string }{
		{"example.com", "_acme-challenge.example.com."},
		{"*.Example.com.", "_acme-challenge.example.com."},
		{"a.b.example", "_acme-challenge.a.b.example."},
	} {
		if got := ChallengeName(tc.domain); got != tc.want {
			t.Errorf("Test %d: ChallengeName(%q) = %q, want %q", i, tc.domain, got, tc.want)
		}
	}
}
