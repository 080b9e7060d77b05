// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records"
	"github.com/acmezone/acmezone/controller/records/recordstest"
)

// TestDNSSEC: with the zone's key (--dnssec-key), a Delegation lists the DS to add and is
// Verified only while the parent has it and the name server serves the key, signed; each
// way of breaking the chain has its reason, and a Verified Delegation flips only after
// FailuresToFlip checks in a row. The name server is CoreDNS's dnssec plugin on loopback.
func TestDNSSEC(t *testing.T) {
	ns := newNamespace(t, "dnssec")
	const zone = "acme.example.com."
	key, other := recordstest.NewKey(t, zone), recordstest.NewKey(t, zone)
	nameserver := recordstest.NewNameServer(t, "127.0.0.2", 0, zone, key)
	opts := testOptions
	opts.NameServers = []controller.NameServer{{Name: "ns.example.com.", Addrs: []net.IP{net.ParseIP("127.0.0.2")}}}
	opts.DS = []*dns.DS{key.DS}

	target := derived(t, ns, "example.com")
	ds := zone + " 3600 IN DS " + controller.DSContent(key.DS)
	unsigned := []string{
		"ns.example.com. 300 IN A 127.0.0.2",
		"acme.example.com. 300 IN NS ns.example.com.",
		"_acme-challenge.example.com. 300 IN CNAME " + target,
		target + ` 10 IN TXT "key-one"`,
	}
	public := recordstest.NewServer(t, unsigned...)
	startReconciler(t, opts, public.Addr, func(r *Reconciler) {
		r.Resolver.NameServerPort = nameserver.Port()
		r.FailedRecheck = 100 * time.Millisecond
	}, ns)
	createDelegation(t, ns, "example-com", "example.com", "")

	// No DS yet: the record to add is listed, and named in the condition and the Event.
	dsRow := v1alpha1.DNSRecord{Type: "DS", Name: "acme.example.com", Content: controller.DSContent(key.DS)}
	d := waitFor(t, ns, "example-com", "Verified=False DSMissing", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionFalse, records.ReasonDSMissing))
	if !slices.Contains(d.Status.Records, dsRow) {
		t.Errorf("status.records %+v, want the DS %+v", d.Status.Records, dsRow)
	}
	add := "add this record: acme.example.com DS " + controller.DSContent(key.DS)
	if c := condition(t, d, v1alpha1.ConditionVerified); !strings.HasSuffix(c.Message, add+".") {
		t.Errorf("Verified message %q, want it to end with %q", c.Message, add)
	}
	waitForEvent(t, d, "Warning", "NotVerified", add)

	// The DS added at the provider: Verified, saying the zone is signed.
	public.Set(t, append(slices.Clone(unsigned), ds)...)
	d = waitFor(t, ns, "example-com", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	if c := condition(t, d, v1alpha1.ConditionVerified); !strings.Contains(c.Message, "it is signed: its parent has the DS "+controller.DSContent(key.DS)+", and the key is served, signed, by ns.example.com") {
		t.Errorf("Verified message %q does not say the zone is signed", c.Message)
	}

	// Each break of the chain: Verified holds through the first failed checks, then flips to
	// the break's reason, naming what was found and what is wanted; repaired, Verified again.
	for _, tc := range []struct {
		name    string
		breakIt func()
		reason  string
		msg     []string
	}{
		{
			name: "the parent's DS is another key's",
			breakIt: func() {
				public.Set(t, append(slices.Clone(unsigned), zone+" 3600 IN DS "+controller.DSContent(other.DS))...)
			},
			reason: records.ReasonDSMismatch,
			msg:    []string{"the DS of acme.example.com at its parent zone is " + controller.DSContent(other.DS), "want " + controller.DSContent(key.DS), "replace it with this record: acme.example.com DS " + controller.DSContent(key.DS)},
		},
		{
			name:    "the name server signs without the key",
			breakIt: func() { nameserver.SetKeys(t) },
			reason:  records.ReasonDNSKEYNotServed,
			msg:     []string{"the name server ns.example.com (" + nameserver.Addr + ") serves no DNSKEY of acme.example.com with key tag " + fmt.Sprint(key.DS.KeyTag)},
		},
		{
			name:    "the name server signs with another key",
			breakIt: func() { nameserver.SetKeys(t, other) },
			reason:  records.ReasonDNSKEYNotServed,
			msg:     []string{fmt.Sprintf("(it serves key tag %d)", other.DNSKEY.KeyTag())},
		},
	} {
		tc.breakIt()
		sawHeld := false
		d = waitFor(t, ns, "example-com", tc.name+": Verified=False "+tc.reason, func(d *v1alpha1.Delegation) (bool, string) {
			c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVerified)
			if c.Status == metav1.ConditionTrue && d.Status.FailedChecks > 0 {
				sawHeld = true
			}
			return c.Status == metav1.ConditionFalse && c.Reason == tc.reason, fmt.Sprintf("%s %s, %d failed checks: %s", c.Status, c.Reason, d.Status.FailedChecks, c.Message)
		})
		if !sawHeld {
			t.Errorf("%s: Verified never stayed True through a first failed check", tc.name)
		}
		c := condition(t, d, v1alpha1.ConditionVerified)
		for _, m := range tc.msg {
			if !strings.Contains(c.Message, m) {
				t.Errorf("%s: Verified message %q does not say %q", tc.name, c.Message, m)
			}
		}
		waitForEvent(t, d, "Warning", "NotVerified", tc.msg[0])

		public.Set(t, append(slices.Clone(unsigned), ds)...)
		nameserver.SetKeys(t, key)
		waitFor(t, ns, "example-com", tc.name+": repaired, Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	}
}

// TestUnsignedUnchanged: without a key nothing about DNSSEC is listed or checked, whatever
// the parent holds.
func TestUnsignedUnchanged(t *testing.T) {
	ns := newNamespace(t, "unsigned")
	target := derived(t, ns, "example.com")
	other := recordstest.NewKey(t, "acme.example.com")
	srv := recordstest.NewServer(t, append(correct("example.com", target), "acme.example.com. 3600 IN DS "+controller.DSContent(other.DS))...)
	startController(t, srv.Addr, ns)
	createDelegation(t, ns, "example-com", "example.com", "")
	d := waitFor(t, ns, "example-com", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	for _, r := range d.Status.Records {
		if r.Type == records.TypeDS {
			t.Errorf("status.records lists %+v without a key", r)
		}
	}
	if c := condition(t, d, v1alpha1.ConditionVerified); strings.Contains(c.Message, "signed") {
		t.Errorf("Verified message %q speaks of signing without a key", c.Message)
	}
}
