// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// The tenancy rule, the plugin's security boundary, in two pure functions that read nothing
// but their arguments and are tested alone (tenancy_test.go):
//
//   - placement: where a Delegation is placed, the one target v1alpha1.TargetKey.Target gives
//     it (derived from its namespace and domain, or a spec.target it proves), or nowhere.
//   - persistPlacement: where a Delegation with spec.persistentAuthorization is placed a second
//     time, its persist target (TargetKey.PersistTarget), which exists only where its target
//     does; nowhere without persistentAuthorization.
//   - tenantOf: whose ChallengeRecords a name serves, given the Delegations placed there.
//
// Nothing else decides: not status, creation times, the order objects arrive in, or other
// Delegations. The store (store.go) calls placement when a Delegation arrives and tenantOf when
// it builds an entry (build.go).

import (
	"github.com/acmezone/acmezone/api/v1alpha1"
)

// placement is where the Delegation d of namespace ns is placed: TargetKey.Target with the
// zones in Corefile order (derived targets live in the first), when that is a name in one of
// them; "" for nowhere (d nil, or a spec.target it does not prove).
func placement(key v1alpha1.TargetKey, zones []string, ns string, d *delegationIn) string {
	if d == nil {
		return ""
	}
	c := d.claim
	c.Namespace = ns
	t, err := key.Target(c, zones...)
	if err != nil || zoneOf(zones, t) == "" {
		return ""
	}
	return t
}

// persistPlacement is where the Delegation d of namespace ns is placed for dns-persist-01: its
// persist target when it has spec.persistentAuthorization and placement places it, else ""
// (nowhere). At that name tenantOf decides as at any target: the namespace's records are
// served there, nobody else's.
func persistPlacement(key v1alpha1.TargetKey, zones []string, ns string, d *delegationIn) string {
	if d == nil || !d.persist || placement(key, zones, ns, d) == "" {
		return ""
	}
	c := d.claim
	c.Namespace = ns
	t, err := key.PersistTarget(c, zones...)
	if err != nil || zoneOf(zones, t) == "" {
		return ""
	}
	return t
}

// tenantOf is the tenancy rule at one name: the namespace whose ChallengeRecords the name
// serves, given the Delegations placed there (each at the one target placement gives it) and
// whether the name is one of the zone's own (its apex, an in-zone name server, a name with
// static records). Records are served iff a Delegation of their namespace is placed at the
// name and every Delegation placed there is of that namespace. A derived target is one
// namespace's alone, so Delegations of several namespaces at one name come only from a proof
// signed by mistake: then nobody's records are served there, and conflict is set.
func tenantOf(dels []delSlot, zoneName bool) (ns uint32, ok, conflict bool) {
	if zoneName || len(dels) == 0 {
		return 0, false, false
	}
	ns = dels[0].ns
	for _, d := range dels[1:] {
		if d.ns != ns {
			return 0, false, true
		}
	}
	return ns, true, false
}
