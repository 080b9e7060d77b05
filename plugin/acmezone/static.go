package acmezone

// The static layer: records from labelled ConfigMaps, the administrator's zone data.
//
// A ConfigMap is parsed into a staticSet outside the store's lock (configMapRecords: refused
// whole over the byte limit, entries static data may not hold skipped one by one), then handed
// to the store, which indexes it by name and decides which ConfigMaps are served.
//
// Invariants the store keeps for it (under its lock):
//
//   - statics holds every ConfigMap with records in a served zone; staticsAt[name] lists, for
//     each name, the ConfigMaps in statics with records there. Building an entry reads only
//     those (build.go), so a rebuild is linear in the data.
//   - A ConfigMap is served whole or not at all (staticSet.served). In each zone they are
//     admitted in the order of namespace and name while the zone stays within maxRecords,
//     so every replica serves the same ones whatever order they arrived in.
//   - nstatic is the sum of count over the served ConfigMaps.
//   - Every name whose served records change is edited (marked dirty) in the same change, so
//     the next publish rebuilds it.

import (
	"maps"
	"slices"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// staticSet is one ConfigMap's records, parsed (outside the store's lock) and indexed by
// canonical owner name.
type staticSet struct {
	zone   string // the zone of its label, canonical
	names  map[string][]dns.RR
	count  int
	served bool // admitted within its zone's maxRecords
	warned bool // refused, and the refusal logged
}

// newStaticSet indexes a ConfigMap's records of zone by name.
func newStaticSet(zone string, rrs []dns.RR) *staticSet {
	set := &staticSet{zone: zone, names: map[string][]dns.RR{}, count: len(rrs)}
	for _, rr := range rrs {
		name := canonical(rr.Header().Name)
		set.names[name] = append(set.names[name], rr)
	}
	return set
}

// putStatic makes set the records of the ConfigMap key, replacing what the store held of it
// (set nil or empty: it has nothing to serve, being over the byte limit or of a zone not
// served here), and admits the ConfigMaps of the zones concerned again.
func (s *store) putStatic(key types.NamespacedName, set *staticSet) {
	var zones []string
	if old := s.unindexStatic(key); old != "" {
		zones = append(zones, old)
	}
	if set != nil && set.count > 0 {
		for name := range set.names {
			if s.zoneOf(name) == "" { // parseZoneData keeps only names in the zone
				set.count -= len(set.names[name])
				delete(set.names, name)
				continue
			}
			s.staticsAt[name] = append(s.staticsAt[name], key)
		}
		set.served, set.warned = false, false
		s.statics[key] = set
		if !slices.Contains(zones, set.zone) {
			zones = append(zones, set.zone)
		}
	}
	for _, z := range zones {
		s.admit(z)
	}
}

// removeStatic forgets the ConfigMap key and admits the other ConfigMaps of its zone again.
func (s *store) removeStatic(key types.NamespacedName) {
	if zone := s.unindexStatic(key); zone != "" {
		s.admit(zone)
	}
}

// unindexStatic takes the ConfigMap key out of statics and staticsAt and marks the names it
// served for rebuilding. It returns its zone, "" when the store held nothing of it.
func (s *store) unindexStatic(key types.NamespacedName) (zone string) {
	old := s.statics[key]
	if old == nil {
		return ""
	}
	if old.served {
		s.nstatic -= old.count
	}
	for name := range old.names {
		if keys := slices.DeleteFunc(s.staticsAt[name], func(k types.NamespacedName) bool { return k == key }); len(keys) > 0 {
			s.staticsAt[name] = keys
		} else {
			delete(s.staticsAt, name)
		}
		if old.served {
			s.edit(name, true)
		}
	}
	delete(s.statics, key)
	return old.zone
}

// admit decides which ConfigMaps of zone are served: in the order of their namespace and
// name, each that keeps the zone within maxRecords static records, so that every replica
// serves the same ones whatever order they arrived in. A ConfigMap is served whole or not at
// all.
func (s *store) admit(zone string) {
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
		if fits == set.served {
			continue
		}
		set.served = fits
		if fits {
			s.nstatic += set.count
		} else {
			s.nstatic -= set.count
		}
		for name := range set.names {
			s.edit(name, true)
		}
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
