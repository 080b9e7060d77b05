// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/controller/records/recordstest"
)

// correct are the seed's records as public DNS serves them once the user added them, and a
// challenge value at the target.
var correct = []string{
	"ns.example.com. 300 IN A 34.84.45.1",
	"acme.example.com. 300 IN NS ns.example.com.",
	"_acme-challenge.example.com. 300 IN CNAME " + seedTarget,
	seedTarget + ` 10 IN TXT "key-one"`,
}

// without returns rrs without the records that start with prefix.
func without(rrs []string, prefix string) []string {
	var out []string
	for _, rr := range rrs {
		if !strings.HasPrefix(rr, prefix) {
			out = append(out, rr)
		}
	}
	return out
}

// want is one expected Check: OK, or the reason and the exact problem.
type want struct {
	ok      bool
	reason  string
	problem string
}

func TestVerify(t *testing.T) {
	srv := recordstest.NewServer(t)
	resolver := &Resolver{Servers: []string{srv.Addr}, Timeout: 2 * time.Second}
	ok := want{ok: true}

	tests := []struct {
		name   string
		rrs    []string
		rcodes map[string]int
		target string
		want   []want // A, NS, CNAME, TXT lookup
	}{
		{name: "all correct", rrs: correct, target: seedTarget, want: []want{ok, ok, ok, ok}},
		{
			name:   "all correct, NODATA at the target",
			rrs:    without(correct, seedTarget),
			rcodes: map[string]int{seedTarget: dns.RcodeSuccess},
			target: seedTarget,
			want:   []want{ok, ok, ok, ok},
		},
		{
			name:   "CNAME missing (NXDOMAIN)",
			rrs:    without(correct, "_acme-challenge."),
			target: seedTarget,
			want: []want{ok, ok,
				{reason: "CNAMEMissing", problem: "_acme-challenge.example.com has no CNAME; add: _acme-challenge.example.com CNAME b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com"},
				{reason: "TXTLookupFailed", problem: "the TXT lookup of _acme-challenge.example.com fails: NXDOMAIN (_acme-challenge.example.com does not exist)"},
			},
		},
		{
			name: "CNAME to the wrong target",
			rrs: append(without(correct, "_acme-challenge."),
				"_acme-challenge.example.com. 300 IN CNAME other.example.net.",
				`other.example.net. 300 IN TXT "left over"`),
			target: seedTarget,
			want: []want{ok, ok,
				{reason: "CNAMEWrongTarget", problem: "_acme-challenge.example.com is a CNAME to other.example.net, not to b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com; change it"},
				{reason: "TXTLookupFailed", problem: "the TXT lookup of _acme-challenge.example.com ends at other.example.net, not at b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com"},
			},
		},
		{
			// A secondary cannot transfer a name without records: it denies the target.
			name:   "all correct, NXDOMAIN at the target from the zone (a secondary)",
			rrs:    append(without(correct, seedTarget), "acme.example.com. 300 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 604800 2"),
			target: seedTarget,
			want:   []want{ok, ok, ok, ok},
		},
		{
			// The same denial from the parent (the zone is not delegated) is no answer of ours.
			name:   "NS not delegated, NXDOMAIN at the target from the parent",
			rrs:    append(without(without(correct, "acme.example.com."), seedTarget), "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 604800 2"),
			target: seedTarget,
			want: []want{ok,
				{reason: "NSNotDelegated", problem: "acme.example.com is not delegated to ns.example.com (NS lookup returned NXDOMAIN); add: acme.example.com NS ns.example.com"},
				ok,
				{reason: "TXTLookupFailed", problem: "the TXT lookup of _acme-challenge.example.com fails: NXDOMAIN (b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com does not exist)"},
			},
		},
		{
			name:   "NS not delegated",
			rrs:    without(without(correct, "acme.example.com."), seedTarget),
			target: seedTarget,
			want: []want{ok,
				{reason: "NSNotDelegated", problem: "acme.example.com is not delegated to ns.example.com (NS lookup returned NXDOMAIN); add: acme.example.com NS ns.example.com"},
				ok,
				{reason: "TXTLookupFailed", problem: "the TXT lookup of _acme-challenge.example.com fails: NXDOMAIN (b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com does not exist)"},
			},
		},
		{
			name:   "zone delegated elsewhere",
			rrs:    append(without(correct, "acme.example.com."), "acme.example.com. 300 IN NS ns1.provider.net."),
			target: seedTarget,
			want: []want{ok,
				{reason: "NSNotDelegated", problem: "acme.example.com is not delegated to ns.example.com (NS lookup returned ns1.provider.net); add: acme.example.com NS ns.example.com"},
				ok, ok,
			},
		},
		{
			name:   "wrong name-server address",
			rrs:    append(without(correct, "ns.example.com."), "ns.example.com. 300 IN A 1.2.3.4"),
			target: seedTarget,
			want: []want{
				{reason: "NameServerAddress", problem: "ns.example.com resolves to 1.2.3.4, not 34.84.45.1; change it"},
				ok, ok, ok,
			},
		},
		{
			name:   "no name-server address",
			rrs:    without(correct, "ns.example.com."),
			target: seedTarget,
			want: []want{
				{reason: "NameServerAddress", problem: "ns.example.com has no A record; add: ns.example.com A 34.84.45.1"},
				ok, ok, ok,
			},
		},
		{
			name:   "TXT lookup SERVFAIL",
			rrs:    correct,
			rcodes: map[string]int{seedTarget: dns.RcodeServerFailure},
			target: seedTarget,
			want: []want{ok, ok, ok,
				{reason: "TXTLookupFailed", problem: "the TXT lookup of _acme-challenge.example.com fails: SERVFAIL"},
			},
		},
		{
			name:   "target unknown: any CNAME into the zone passes",
			rrs:    correct,
			target: "",
			want:   []want{ok, ok, ok, ok},
		},
		{
			name:   "target unknown: a CNAME out of the zone fails",
			rrs:    append(without(correct, "_acme-challenge."), "_acme-challenge.example.com. 300 IN CNAME other.example.net."),
			target: "",
			want: []want{ok, ok,
				{reason: "CNAMEWrongTarget", problem: "_acme-challenge.example.com is a CNAME to other.example.net, which is not inside acme.example.com; change it to the Delegation's target"},
				{reason: "TXTLookupFailed", problem: "the TXT lookup of _acme-challenge.example.com fails: NXDOMAIN (other.example.net does not exist)"},
			},
		},
		{
			name:   "own zone: no CNAME, the lookup ends at the challenge name",
			rrs:    append(without(correct, "_acme-challenge."), `_acme-challenge.example.com. 10 IN TXT "key"`),
			target: "_acme-challenge.example.com.",
			want:   []want{ok, ok, ok},
		},
	}
	for i, tc := range tests {
		srv.Set(t, tc.rrs...)
		for name, rcode := range tc.rcodes {
			srv.SetRcode(name, rcode)
		}
		checks := Verify(context.Background(), resolver, seedOptions(), "example.com", tc.target)
		if len(checks) != len(tc.want) {
			t.Errorf("Test %d (%s): %d checks, want %d: %+v", i, tc.name, len(checks), len(tc.want), checks)
			continue
		}
		for j, c := range checks {
			w := tc.want[j]
			if c.OK != w.ok || c.Reason != w.reason || c.Problem != w.problem {
				t.Errorf("Test %d (%s): check %d (%s %s): OK=%v reason %q problem %q; want OK=%v reason %q problem %q",
					i, tc.name, j, c.Record.Type, c.Record.Name, c.OK, c.Reason, c.Problem, w.ok, w.reason, w.problem)
			}
		}
		if got, wantAll := AllOK(checks), !anyFails(tc.want); got != wantAll {
			t.Errorf("Test %d (%s): AllOK = %v, want %v", i, tc.name, got, wantAll)
		}
	}
}

// anyFails reports whether any of ws fails.
func anyFails(ws []want) bool {
	for _, w := range ws {
		if !w.ok {
			return true
		}
	}
	return false
}

func TestVerifyFound(t *testing.T) {
	srv := recordstest.NewServer(t, correct...)
	resolver := &Resolver{Servers: []string{srv.Addr}}
	checks := Verify(context.Background(), resolver, seedOptions(), "example.com", "")
	want := []string{"34.84.45.1", "ns.example.com", "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com", "1 TXT records at b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com"}
	for i, c := range checks {
		if c.Found != want[i] {
			t.Errorf("Test %d: %s %s found %q, want %q", i, c.Record.Type, c.Record.Name, c.Found, want[i])
		}
	}
}
