// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// What a published entry serves, computed from what the store holds at its name. build runs
// for every entry a change touched, when the change is published (store.publish), under the
// store's lock, on the writer's copy of the entry.
//
// It relies on, and keeps:
//
//   - What an entry serves follows from the objects held at its name alone: the fixed records
//     (the Corefile's NS and glue, the served ConfigMaps' records at the name), the Delegations
//     placed there and the ChallengeRecords whose fqdn it is. A record is served iff tenantOf
//     gives its namespace for the name and its value is among the max_values newest served
//     there; age, status and order of arrival take no part.
//   - Slot order: recs sorted by value, candidates first within a value (appendTXT serves each
//     value once, from the first slot).
//   - nserved changes exactly when a slot's served flag does; the propagation histogram
//     observes a record each time its flag turns on (once, unless a conflict or the cap took
//     it away meanwhile), if it was created after the store was (since).
//   - The fixed records at a name are the static layer's entry there (static.go), built and
//     grouped outside the lock: building an entry reads one map, however much static data
//     there is.

import (
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// build recomputes what the entry at name serves from the stored objects, and reports whether
// the name exists on its own (it has data or is a delegated target).
func (s *store) build(name string, e *entry, now time.Time) (self bool) {
	e.fixed = nil
	if se := s.static.entries[name]; se != nil {
		e.fixed = se.fixed
	}
	self = len(e.dels) > 0 || e.fixed != nil
	// The zone's own names are nobody's target: TXT records a namespace wrote there would
	// speak for the zone. (Targets have the form <uuid>.<zone>, which static data may not use,
	// so this only matters for a name server named like one.)
	owner, delegated, conflict := tenantOf(e.dels, e.fixed != nil || s.soaTmpl[name].Hdr.Name != "")
	if conflict && !e.conflict {
		targetConflicts.Inc()
		var nss []string
		for _, d := range e.dels {
			if !slices.Contains(nss, s.nsNames[d.ns]) {
				nss = append(nss, s.nsNames[d.ns])
			}
		}
		slices.Sort(nss)
		log.Warningf("target %s is claimed by Delegations in several namespaces (%s): no records are served there until only one namespace's remain; "+
			"a target-proof annotation was signed for the wrong namespace, remove it and spec.target from the Delegations that do not own %s", name, strings.Join(nss, ", "), name)
	}
	e.conflict = conflict
	candidate := func(r *recSlot) bool { return delegated && r.ns() == owner }
	// Slot order: candidates first within a value, so appendTXT skips only duplicates of a
	// served one.
	slices.SortFunc(e.recs, func(a, b recSlot) int {
		if c := strings.Compare(a.txt[0], b.txt[0]); c != 0 {
			return c
		}
		return boolOrder(candidate(&b), candidate(&a))
	})
	kept := s.newestValues(name, e, candidate)
	e.ttl = 0
	first := true
	for i := range e.recs {
		r := &e.recs[i]
		serve := candidate(r) && (kept == nil || kept[r.txt[0]])
		if serve {
			self = true
			ttl := r.ttl
			if ttl == 0 {
				ttl = s.defaultTTL
			}
			if first || ttl < e.ttl {
				e.ttl = ttl
			}
			first = false
			if !r.served() && r.created > s.since.UnixNano() && s.observe != nil {
				s.observe(now.Sub(time.Unix(0, r.created)))
			}
		}
		if serve != r.served() {
			r.setServed(serve)
			if serve {
				s.nserved++
			} else {
				s.nserved--
			}
		}
	}
	return self
}

// newestValues caps the TXT values the entry serves at maxValues: nil when the candidates
// (sorted by value) have no more distinct values than that, else the newest values to keep
// (a value is as new as its newest record; ties go to the smaller value). The capping is
// logged and counted.
func (s *store) newestValues(name string, e *entry, candidate func(*recSlot) bool) map[string]bool {
	distinct, last := 0, ""
	for i := range e.recs {
		if r := &e.recs[i]; candidate(r) && (distinct == 0 || r.txt[0] != last) {
			distinct, last = distinct+1, r.txt[0]
		}
	}
	if distinct <= s.maxValues {
		return nil // the usual case, without allocations
	}
	type value struct {
		txt     string
		created int64
	}
	values := make([]value, 0, distinct)
	for i := range e.recs {
		r := &e.recs[i]
		if !candidate(r) {
			continue
		}
		if n := len(values); n > 0 && values[n-1].txt == r.txt[0] {
			values[n-1].created = max(values[n-1].created, r.created)
			continue
		}
		values = append(values, value{r.txt[0], r.created})
	}
	slices.SortStableFunc(values, func(a, b value) int {
		switch {
		case a.created > b.created:
			return -1
		case a.created < b.created:
			return 1
		}
		return 0 // sorted by value already
	})
	kept := make(map[string]bool, s.maxValues)
	for _, v := range values[:s.maxValues] {
		kept[v.txt] = true
	}
	valuesCapped.Inc()
	log.Warningf("%s has %d TXT values, more than max_values %d: serving the %d newest, %d dropped; "+
		"delete the ChallengeRecords there that are no longer needed, or raise max_values in the acmezone block",
		name, len(values), s.maxValues, s.maxValues, len(values)-s.maxValues)
	return kept
}

// boolOrder orders false before true.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// groupRRsets sorts records into RRsets: deduplicated, in a stable order, one TTL per RRset
// (the smallest, RFC 2181 section 5.2).
func groupRRsets(rrs []dns.RR) []rrset {
	slices.SortStableFunc(rrs, func(a, b dns.RR) int {
		if a.Header().Rrtype != b.Header().Rrtype {
			return int(a.Header().Rrtype) - int(b.Header().Rrtype)
		}
		return strings.Compare(rdata(a), rdata(b))
	})
	var sets []rrset
	for _, rr := range rrs {
		t := rr.Header().Rrtype
		if len(sets) == 0 || sets[len(sets)-1].qtype != t {
			sets = append(sets, rrset{qtype: t})
		}
		cur := &sets[len(sets)-1]
		if k := len(cur.rrs); k > 0 && rdata(cur.rrs[k-1]) == rdata(rr) {
			if rr.Header().Ttl < cur.rrs[k-1].Header().Ttl {
				cur.rrs[k-1] = rr
			}
			continue
		}
		cur.rrs = append(cur.rrs, rr)
	}
	for i := range sets {
		minTTL := sets[i].rrs[0].Header().Ttl
		for _, rr := range sets[i].rrs {
			minTTL = min(minTTL, rr.Header().Ttl)
		}
		for j, rr := range sets[i].rrs {
			if rr.Header().Ttl != minTTL {
				rr = dns.Copy(rr)
				rr.Header().Ttl = minTTL
				sets[i].rrs[j] = rr
			}
		}
	}
	return sets
}

// rdata is the presentation form of a record's data, for ordering and deduplication.
func rdata(rr dns.RR) string {
	if t, ok := rr.(*dns.TXT); ok && len(t.Txt) == 1 {
		return t.Txt[0]
	}
	s := rr.String()
	return s[len(rr.Header().String()):]
}
