// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// The static layer: records from labelled ConfigMaps, the administrator's zone data, and the
// Corefile's NS and glue, merged into one immutable layer that every snapshot carries.
//
// A ConfigMap is parsed into a staticSet outside every lock (configMapRecords: refused whole
// over the byte limit, entries static data may not hold skipped one by one). The store then
// decides which ConfigMaps are served and builds the whole layer anew, under staticMu only;
// the store's lock (mu) is held only to swap the layer in and mark the few dynamic entries at
// its names for rebuilding, so ChallengeRecords are not kept waiting while a large ConfigMap
// is indexed.
//
// Invariants:
//
//   - staticMu serialises every ConfigMap change and guards statics and each staticSet's
//     served and warned flags; it is taken before mu, never after.
//   - statics holds every ConfigMap with records in its zone, served or not. A ConfigMap is
//     served whole or not at all (staticSet.served): in each zone they are admitted in the
//     order of namespace and name while the zone stays within maxRecords, so every replica
//     serves the same ones whatever order they arrived in.
//   - store.static (guarded by mu) is the layer built from the Corefile's records and the
//     served ConfigMaps in statics, at every point where mu is not held. A layer is never
//     changed once built: published snapshots share it.
//   - A layer's entries are the names with fixed records (exists, self, fixed non-nil) and
//     every name strictly between such a name and its zone's apex (empty non-terminals:
//     exists, fixed nil); nstatic counts the served ConfigMaps' records.
//   - A dynamic entry (store.go) at a name of the layer serves the layer's fixed records there
//     (build reads them): a swap edits every dynamic entry at a name of the old or the new
//     layer, so the next publish rebuilds it.
//   - Building the layer reads every served record once: it is linear in the static data.

import (
	"maps"
	"slices"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// staticSet is one ConfigMap's records, parsed and indexed by canonical owner name outside
// the store's locks.
type staticSet struct {
	zone   string // the zone of its label, canonical
	names  map[string][]dns.RR
	count  int
	served bool // admitted within its zone's maxRecords (under staticMu)
	warned bool // refused, and the refusal logged (under staticMu)
}

// newStaticSet indexes a ConfigMap's records of zone by name; records outside the zone are
// dropped (parseZoneData keeps none).
func newStaticSet(zone string, rrs []dns.RR) *staticSet {
	set := &staticSet{zone: zone, names: map[string][]dns.RR{}}
	for _, rr := range rrs {
		name := canonical(rr.Header().Name)
		if !inZone(zone, name) {
			continue
		}
		set.names[name] = append(set.names[name], rr)
		set.count++
	}
	return set
}

// staticLayer is the fixed records of every name that has some, grouped into RRsets, and the
// empty non-terminals above them. It is built whole (newStaticLayer) and never changed.
type staticLayer struct {
	entries map[string]*entry
	nstatic int // records of the served ConfigMaps
}

// newStaticLayer builds the layer of the Corefile's records (fixed) and of sets, the served
// ConfigMaps in the order of their namespace and name. It reads nothing but its arguments.
func newStaticLayer(zones []string, fixed map[string][]dns.RR, sets []*staticSet) *staticLayer {
	byName := make(map[string][]dns.RR, len(fixed))
	for name, rrs := range fixed {
		byName[name] = append(byName[name], rrs...)
	}
	l := &staticLayer{}
	for _, set := range sets {
		for name, rrs := range set.names {
			byName[name] = append(byName[name], rrs...)
		}
		l.nstatic += set.count
	}
	l.entries = make(map[string]*entry, len(byName))
	for name, rrs := range byName {
		l.entries[name] = &entry{fixed: &fixedSets{rrsets: groupRRsets(rrs)}, self: true, exists: true}
	}
	for name := range byName {
		zone := zoneOf(zones, name)
		for a := parent(name); a != "" && len(a) > len(zone); a = parent(a) {
			if l.entries[a] != nil {
				break // a name of byName, whose own walk adds the rest, or added by an earlier walk
			}
			l.entries[a] = &entry{exists: true}
		}
	}
	return l
}

// setStatic makes set, parsed outside the lock (configMapRecords), the records of the
// ConfigMap key; nil when it has nothing to serve (over the byte limit, or of a zone not
// served here).
func (s *store) setStatic(rv string, key types.NamespacedName, set *staticSet) {
	s.changeStatic(rv, func() []string { return s.putStatic(key, set) })
}

// deleteStatic forgets the records of a deleted ConfigMap.
func (s *store) deleteStatic(rv string, key types.NamespacedName) {
	s.changeStatic(rv, func() []string { return s.removeStatic(key) })
}

// replaceStatic makes the ConfigMaps of namespace ("" for all) what list holds, as one change.
func (s *store) replaceStatic(rv, namespace string, list map[types.NamespacedName]*staticSet) {
	s.changeStatic(rv, func() []string {
		var zones []string
		for key := range s.statics {
			if _, ok := list[key]; !ok && (namespace == "" || key.Namespace == namespace) {
				zones = append(zones, s.removeStatic(key)...)
			}
		}
		for key, set := range list {
			zones = append(zones, s.putStatic(key, set)...)
		}
		return zones
	})
}

// changeStatic makes one change to the ConfigMaps under staticMu (f returns the zones it
// touched), admits those zones' ConfigMaps again, builds the static layer and, under mu
// only for that, swaps it in and publishes once (when live). rv is the resourceVersion the
// change brings the store to ("" for none known).
func (s *store) changeStatic(rv string, f func() (zones []string)) {
	s.staticMu.Lock()
	defer s.staticMu.Unlock()
	zones := f()
	slices.Sort(zones)
	for _, z := range slices.Compact(zones) {
		s.admit(z)
	}
	keys := slices.SortedFunc(maps.Keys(s.statics), func(a, b types.NamespacedName) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var served []*staticSet
	for _, key := range keys {
		if set := s.statics[key]; set.served {
			served = append(served, set)
		}
	}
	layer := newStaticLayer(s.zones, s.fixed, served)
	if s.staticBuilt != nil {
		s.staticBuilt()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.static
	s.static = layer
	// The dynamic entries at names of either layer serve the layer's records: rebuild them.
	// Targets cannot be static names (rule 1), so these are few.
	for _, l := range []*staticLayer{old, layer} {
		for name := range l.entries {
			if s.shards[shardOf(name)][name] != nil {
				s.edit(name, false)
			}
		}
	}
	s.applied(rv)
	s.publishIfLive()
}

// putStatic makes set the records of the ConfigMap key, replacing what the store held of it
// (set nil or empty: it has nothing to serve), and returns the zones concerned. Under
// staticMu.
func (s *store) putStatic(key types.NamespacedName, set *staticSet) (zones []string) {
	zones = s.removeStatic(key)
	if set != nil && set.count > 0 {
		set.served, set.warned = false, false
		s.statics[key] = set
		zones = append(zones, set.zone)
	}
	return zones
}

// removeStatic forgets the ConfigMap key and returns its zone, none when the store held
// nothing of it. Under staticMu.
func (s *store) removeStatic(key types.NamespacedName) (zones []string) {
	old := s.statics[key]
	if old == nil {
		return nil
	}
	delete(s.statics, key)
	return []string{old.zone}
}

// admit decides which ConfigMaps of zone are served: in the order of their namespace and
// name, each that keeps the zone within maxRecords static records, so that every replica
// serves the same ones whatever order they arrived in. A ConfigMap is served whole or not at
// all.
func (s *store) admit(zone string) {
	// Under staticMu.
	var keys []types.NamespacedName
	for key, set := range s.statics {
		if set.zone == zone {
			keys = append(keys, key)
		}
	}
	slices.SortFunc(keys, func(a, b types.NamespacedName) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	total := 0
	for _, key := range keys {
		set := s.statics[key]
		fits := total+set.count <= s.maxRecords
		if fits {
			total += set.count
			set.warned = false
		} else if !set.warned {
			set.warned = true
			configMapsRefused.WithLabelValues("records").Inc()
			log.Warningf("ConfigMap %s is not served: its %d records would make %d static records in zone %s, over the limit of %d; "+
				"split the data or remove records, or raise the limit with 'configmap_limits MAXBYTES MAXRECORDS' in the acmezone block",
				key, set.count, total+set.count, zone, s.maxRecords)
		}
		set.served = fits
	}
}

// configMapRecords parses a ConfigMap's zone data, outside the store's lock; nil when its zone
// is not served here or its data is over the size limit (then none of it is served). Entries
// that do not parse or that static data may not hold (see checkRecord) are skipped with a
// warning each.
func (a *ACMEZone) configMapRecords(cm *corev1.ConfigMap) *staticSet {
	key := keyOf(cm)
	zone := canonical(cm.Labels[ZoneLabel])
	if !slices.Contains(a.cfg.zones, zone) {
		return nil
	}
	size := 0
	for k, v := range cm.Data {
		size += len(k) + len(v)
	}
	if size > a.cfg.maxBytes {
		configMapsRefused.WithLabelValues("bytes").Inc()
		log.Warningf("ConfigMap %s is not served: its data has %d bytes, over the limit of %d; "+
			"split it into several ConfigMaps, or raise the limit with 'configmap_limits MAXBYTES MAXRECORDS' in the acmezone block",
			key, size, a.cfg.maxBytes)
		return nil
	}
	rules := a.staticRules()
	var all []dns.RR
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		rrs, errs := parseZoneData(zone, cm.Data[k], a.cfg.ttl, rules)
		for _, e := range errs {
			rejectedLines.Inc()
			log.Warningf("ConfigMap %s key %q: %s; the entry is skipped", key, k, e.Error())
		}
		all = append(all, rrs...)
	}
	return newStaticSet(zone, all)
}

// staticRules are the names of the Corefile that static data may not touch.
func (a *ACMEZone) staticRules() staticRules {
	r := staticRules{zones: a.cfg.zones}
	for _, ns := range a.cfg.nameservers {
		if plugin.Zones(a.cfg.zones).Matches(ns.name) != "" {
			r.nameservers = append(r.nameservers, ns.name)
		}
	}
	return r
}
