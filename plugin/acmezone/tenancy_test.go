// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// TestTenantOf is the tenancy rule at one name, alone: records are served iff every
// Delegation placed at the name is of one namespace, and the name is not one of the zone's own.
func TestTenantOf(t *testing.T) {
	const shop, blog = 1, 2
	slots := func(nss ...uint32) []delSlot {
		var out []delSlot
		for i, ns := range nss {
			out = append(out, delSlot{id: objID{uint32(i)}, ns: ns})
		}
		return out
	}
	for i, tc := range []struct {
		dels     []delSlot
		zoneName bool
		ns       uint32
		ok       bool
		conflict bool
	}{
		{dels: nil},
		{dels: slots(shop), ns: shop, ok: true},
		{dels: slots(shop, shop), ns: shop, ok: true}, // two Delegations of one domain in one namespace
		{dels: slots(shop, blog), conflict: true},     // only a proof signed for the wrong namespace does this
		{dels: slots(blog, shop, shop), conflict: true},
		{dels: slots(shop), zoneName: true}, // the apex, a name server, a name with static records
		{dels: slots(shop, blog), zoneName: true},
	} {
		ns, ok, conflict := tenantOf(tc.dels, tc.zoneName)
		if ok != tc.ok || conflict != tc.conflict || ok && ns != tc.ns {
			t.Errorf("Test %d: tenantOf(%v, %v) = %d, %v, %v; want %d, %v, %v", i, tc.dels, tc.zoneName, ns, ok, conflict, tc.ns, tc.ok, tc.conflict)
		}
	}
}

// TestTargetConflict: two namespaces placed at one target (a proof signed for the wrong one)
// serve nobody's records there, and the conflict is counted once, until it ends.
func TestTargetConflict(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	s := a.store
	shop := targetOf("shop", "example.com")
	s.updateDelegation("", nn("shop", "d"), deleg("example.com"))
	s.updateRecord("", nn("shop", "r"), &recordIn{fqdn: shop, value: "shop-value"})
	s.updateRecord("", nn("blog", "r"), &recordIn{fqdn: shop, value: "blog-value"})
	s.goLive()
	if got := txtValues(s.load(), shop); got != "shop-value" {
		t.Fatalf("before: %q, want shop's value", got)
	}
	before := testutil.ToFloat64(targetConflicts)
	mistake := pinned("blog.example", shop, testKey.Proof("blog", "blog.example", shop))
	s.updateDelegation("", nn("blog", "d"), mistake)
	s.updateRecord("", nn("shop", "r2"), &recordIn{fqdn: shop, value: "shop-value-2"}) // a rebuild while it lasts
	if got := txtValues(s.load(), shop); got != "" {
		t.Errorf("with Delegations of shop and blog at the target: %q, want no value", got)
	}
	if n := testutil.ToFloat64(targetConflicts) - before; n != 1 {
		t.Errorf("the conflict was counted %v times, want 1", n)
	}
	s.deleteDelegation("", nn("blog", "d"), mistake)
	if got := txtValues(s.load(), shop); got != "shop-value,shop-value-2" {
		t.Errorf("after the wrong Delegation is gone: %q, want shop's values", got)
	}
}

// TestZoneNamesAreNobodysTarget: a name server named like a target, proved for a namespace,
// still serves no TXT record of it.
func TestZoneNamesAreNobodysTarget(t *testing.T) {
	const ns = "0a1b2c3d-0000-4000-8000-000000000053.acme.example.com."
	a := newTestPlugin(t, strings.Replace(testCorefile, "nameserver ns.example.com", "nameserver "+ns+" 192.0.2.54\n\tnameserver ns.example.com", 1))
	a.store.updateDelegation("", nn("shop", "d"), pinned("example.com", ns, testKey.Proof("shop", "example.com", ns)))
	a.store.updateRecord("", nn("shop", "r"), &recordIn{fqdn: ns, value: "speaks-for-the-name-server"})
	a.store.goLive()
	if got := txtValues(a.store.load(), ns); got != "" {
		t.Errorf("TXT at the name server %s: %q, want none", ns, got)
	}
	if resp := query(t, a, ns, dns.TypeA); len(resp.Answer) != 1 {
		t.Errorf("the name server's glue: %v", resp.Answer)
	}
}

// TestPlacement is where the rule places a Delegation, alone: at the target derived from its
// namespace and domain, at a spec.target only with a proof for that namespace, domain and
// target, and never outside the served zones.
func TestPlacement(t *testing.T) {
	zones := []string{"acme.example.com.", "other.example.org."}
	const pinnedTarget = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	const outside = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.elsewhere.example."
	for i, tc := range []struct {
		ns   string
		d    *delegationIn
		want string
	}{
		{"shop", nil, ""},
		{"shop", deleg("example.com"), targetOf("shop", "example.com")},
		{"shop", deleg("EXAMPLE.com."), targetOf("shop", "example.com")}, // one domain key
		{"blog", deleg("example.com"), targetOf("blog", "example.com")},
		// The claim's own namespace is not read: the store's is.
		{"blog", &delegationIn{claim: v1alpha1.TargetClaim{Namespace: "shop", Domain: "example.com"}}, targetOf("blog", "example.com")},
		{"shop", pinned("example.com", pinnedTarget, testKey.Proof("shop", "example.com", pinnedTarget)), pinnedTarget},
		{"shop", pinned("example.com", targetOf("shop", "example.com"), ""), targetOf("shop", "example.com")}, // its own derived target
		{"shop", pinned("example.com", pinnedTarget, ""), ""},                                                 // no proof
		{"blog", pinned("example.com", pinnedTarget, testKey.Proof("shop", "example.com", pinnedTarget)), ""}, // shop's proof
		{"shop", pinned("example.org", pinnedTarget, testKey.Proof("shop", "example.com", pinnedTarget)), ""}, // another domain's
		{"shop", pinned("example.com", targetOf("blog", "example.com"), ""), ""},                              // blog's target
		{"shop", pinned("example.com", outside, testKey.Proof("shop", "example.com", outside)), ""},           // not a served zone
		{"shop", pinned("example.com", "_acme-challenge.acme.example.com.", ""), ""},
	} {
		if got := placement(testKey, zones, tc.ns, tc.d); got != tc.want {
			t.Errorf("Test %d: placement(%s, %+v) = %q, want %q", i, tc.ns, tc.d, got, tc.want)
		}
	}
}

// persisting is a Delegation of domain with spec.persistentAuthorization.
func persisting(domain string) *delegationIn {
	return &delegationIn{claim: v1alpha1.TargetClaim{Domain: domain}, persist: true}
}

// persistTargetOf is the persist target of a Delegation of domain in namespace ns.
func persistTargetOf(ns, domain string) string {
	t, err := testKey.PersistTarget(v1alpha1.TargetClaim{Namespace: ns, Domain: domain}, "acme.example.com.")
	if err != nil {
		panic(err)
	}
	return t
}

// TestPersistPlacement is where the rule places a Delegation's second slot, alone: at its
// persist target only with persistentAuthorization, and only where it has a target.
func TestPersistPlacement(t *testing.T) {
	zones := []string{"acme.example.com.", "other.example.org."}
	const pinnedTarget = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	withPersist := func(d *delegationIn) *delegationIn { d.persist = true; return d }
	for i, tc := range []struct {
		ns   string
		d    *delegationIn
		want string
	}{
		{"shop", nil, ""},
		{"shop", deleg("example.com"), ""}, // no persistentAuthorization
		{"shop", persisting("example.com"), persistTargetOf("shop", "example.com")},
		{"blog", persisting("example.com"), persistTargetOf("blog", "example.com")},
		{"blog", &delegationIn{claim: v1alpha1.TargetClaim{Namespace: "shop", Domain: "example.com"}, persist: true}, persistTargetOf("blog", "example.com")},
		{"shop", withPersist(pinned("example.com", pinnedTarget, testKey.Proof("shop", "example.com", pinnedTarget))), persistTargetOf("shop", "example.com")},
		{"shop", withPersist(pinned("example.com", pinnedTarget, "")), ""},                           // no proof: no target, no persist target
		{"shop", withPersist(pinned("example.com", targetOf("blog", "example.com"), "")), ""},        // blog's target
		{"blog", withPersist(pinned("example.com", persistTargetOf("shop", "example.com"), "")), ""}, // shop's persist target as spec.target
	} {
		if got := persistPlacement(testKey, zones, tc.ns, tc.d); got != tc.want {
			t.Errorf("Test %d: persistPlacement(%s, %+v) = %q, want %q", i, tc.ns, tc.d, got, tc.want)
		}
	}
	if persistTargetOf("shop", "example.com") == targetOf("shop", "example.com") {
		t.Fatal("the persist target is the challenge target")
	}
}

// TestPersistTargetTenancy: a Delegation with persistentAuthorization serves its namespace's
// records at its persist target too, and nothing else changes: another namespace's records
// there are not served, a Delegation without persistentAuthorization serves nothing there,
// and removing persistentAuthorization (or the Delegation) stops serving there.
func TestPersistTargetTenancy(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	s := a.store
	target, persist := targetOf("shop", "example.com"), persistTargetOf("shop", "example.com")
	s.addRecord("", nn("shop", "p"), &recordIn{fqdn: persist, value: "pebble.letsencrypt.org; accounturi=https://ca.example/acct/1"})
	s.addRecord("", nn("blog", "p"), &recordIn{fqdn: persist, value: "blog's value"})
	s.addRecord("", nn("shop", "c"), &recordIn{fqdn: target, value: "challenge"})
	s.addDelegation("", nn("shop", "d"), deleg("example.com"))
	s.goLive()
	if got := txtValues(s.load(), persist); got != "NXDOMAIN" {
		t.Errorf("without persistentAuthorization, at the persist target: %q, want NXDOMAIN", got)
	}
	if got := txtValues(s.load(), target); got != "challenge" {
		t.Errorf("at the target: %q", got)
	}

	s.updateDelegation("", nn("shop", "d"), persisting("example.com"))
	if got := txtValues(s.load(), persist); got != "pebble.letsencrypt.org; accounturi=https://ca.example/acct/1" {
		t.Errorf("with persistentAuthorization, at the persist target: %q, want shop's value alone", got)
	}
	if got := txtValues(s.load(), target); got != "challenge" {
		t.Errorf("at the target with persistentAuthorization: %q", got)
	}
	// blog's own Delegation with persistentAuthorization serves blog's records at blog's
	// persist target only, never at shop's.
	s.addDelegation("", nn("blog", "d"), persisting("example.com"))
	s.addRecord("", nn("blog", "own"), &recordIn{fqdn: persistTargetOf("blog", "example.com"), value: "blog's own"})
	if got := txtValues(s.load(), persist); got != "pebble.letsencrypt.org; accounturi=https://ca.example/acct/1" {
		t.Errorf("with blog's Delegation too, at shop's persist target: %q", got)
	}
	if got := txtValues(s.load(), persistTargetOf("blog", "example.com")); got != "blog's own" {
		t.Errorf("at blog's persist target: %q, want blog's own value", got)
	}
	// A status change keeps the slot; a relist keeps it too and walks nothing.
	s.updateDelegation("", nn("shop", "d"), persisting("example.com"))
	s.replace("", "", objects{delegations: map[types.NamespacedName]*delegationIn{
		nn("shop", "d"): persisting("example.com"), nn("blog", "d"): persisting("example.com"),
	}})
	if got := txtValues(s.load(), persist); got != "pebble.letsencrypt.org; accounturi=https://ca.example/acct/1" {
		t.Errorf("after a relist: %q", got)
	}

	s.updateDelegation("", nn("shop", "d"), deleg("example.com"))
	if got := txtValues(s.load(), persist); got != "NXDOMAIN" {
		t.Errorf("after persistentAuthorization was removed: %q, want NXDOMAIN", got)
	}
	if got := txtValues(s.load(), target); got != "challenge" {
		t.Errorf("at the target after persistentAuthorization was removed: %q", got)
	}
	s.updateDelegation("", nn("shop", "d"), persisting("example.com"))
	s.deleteDelegation("", nn("shop", "d"), persisting("example.com"))
	if got := txtValues(s.load(), persist); got != "NXDOMAIN" {
		t.Errorf("after the Delegation was deleted: %q, want NXDOMAIN", got)
	}
	// A relist that no longer lists blog's Delegation drops its persist slot too.
	s.replace("", "", objects{delegations: map[types.NamespacedName]*delegationIn{}})
	if got := txtValues(s.load(), persistTargetOf("blog", "example.com")); got != "NXDOMAIN" {
		t.Errorf("after a relist without blog's Delegation, at its persist target: %q, want NXDOMAIN", got)
	}
	if len(s.persisted) != 0 {
		t.Errorf("persist slots still recorded: %v", s.persisted)
	}
	if s.walks != 0 {
		t.Errorf("%d walks over all entries, want 0", s.walks)
	}
}
