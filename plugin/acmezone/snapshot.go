// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// The read side: a published snapshot and the entries in it, which every query reads without
// a lock.
//
// Invariants of a published snapshot (the writer, store.go, keeps them):
//
//   - It never changes. Neither its shard maps nor any entry or slot they reach is written
//     after store.publish swapped it in, so a query that loaded it reads one state throughout,
//     however many changes are published meanwhile.
//   - A name is found in two places: shards[shardOf(name)] holds the dynamic entries (names
//     with a ChallengeRecord or Delegation slot, and the empty non-terminals above delegated
//     names), static the names with fixed records (the Corefile's and ConfigMaps') and the
//     empty non-terminals above them. A dynamic entry at a name of the static layer carries
//     the layer's fixed records there, so lookup may answer from the dynamic entry first.
//   - lookup hides the dynamic entries that do not exist (exists false): names that hold
//     only ChallengeRecords nobody may serve there. A dynamic entry that neither exists nor
//     holds a slot is dropped from its shard when published.
//   - exists is self (the name has data or a placed Delegation), or the apex, or some name
//     below it within its zone is self (an empty non-terminal, see store.desc and
//     newStaticLayer).
//   - Slot order: an entry's recs are sorted by value, and within one value the records that
//     may be served (candidates, see store.build) come first; appendTXT relies on it to serve
//     each value once.
//   - The served flag of a recSlot says whether that record is answered now; ttl is the
//     smallest TTL of the served records (one TTL per RRset, RFC 2181 5.2).
//   - A name with fixed records (the Corefile's or ConfigMaps') serves no ChallengeRecord: it
//     is one of the zone's own names, nobody's target (tenantOf).

import (
	"hash/maphash"

	"github.com/miekg/dns"
)

// shardCount is the number of maps a snapshot is split into. An update copies only the shards
// of the names it touches, so with 100,000 names one write copies about 400 map entries instead
// of all of them, and the query path stays a single map lookup.
const shardCount = 256

var shardSeed = maphash.MakeSeed()

// shardOf is the shard that holds the canonical name.
func shardOf(name string) int {
	return int(maphash.String(shardSeed, name) % shardCount)
}

// snapshot is an immutable view of all served names, swapped atomically as a whole.
type snapshot struct {
	shards [shardCount]map[string]*entry
	// static holds the names with fixed records that no dynamic entry answers for, and the
	// empty non-terminals above them (static.go).
	static *staticLayer
	// soa holds the SOA record of each zone, keyed by canonical zone name.
	soa map[string]*dns.SOA
	// journal holds the differences of the last serials up to this snapshot's, for IXFR
	// (journal.go); nil without the transfer plugin.
	journal []journalStep
}

// lookup returns the entry at the lower-case name, or nil when the name does not exist. A
// dynamic entry answers first: at a name of the static layer it serves the same fixed records
// (build takes them from the layer), so the challenge targets cost one map lookup.
func (s *snapshot) lookup(name string) *entry {
	if e := s.shards[shardOf(name)][name]; e != nil && e.exists {
		return e
	}
	return s.static.entries[name]
}

// names calls f with every existing name of the snapshot, once each.
func (s *snapshot) names(f func(name string)) {
	for _, shard := range s.shards {
		for name, e := range shard {
			if e.exists {
				f(name)
			}
		}
	}
	for name := range s.static.entries {
		if e := s.shards[shardOf(name)][name]; e == nil || !e.exists {
			f(name)
		}
	}
}

// entry is everything the store holds at one canonical name and what is served there: 64
// bytes. The snapshot is the index: there is no second map of names, and no map of objects
// either (see store.locate). The name is the key the entry is held at in its shard, which
// whoever has the entry has too: the entry does not keep it again.
type entry struct {
	recs  []recSlot // slot order: by value, candidates first within a value (see build)
	dels  []delSlot
	fixed *fixedSets // records from the Corefile and ConfigMaps; nil for none
	ttl   uint32     // TTL of the served TXT RRset, the smallest of its records' (RFC 2181 5.2)
	self  bool       // the name has data or is a delegated target
	// conflict says Delegations of several namespaces are placed at the name (see tenantOf):
	// logged and counted once when it starts.
	conflict bool
	// exists says the name is answered (NOERROR) rather than NXDOMAIN: it has data, is a
	// delegated target, the apex, or an empty non-terminal above such names.
	exists bool
	// dirty says the entry is the writer's: created or copied since the last publish, which
	// rebuilds it. A published entry is never dirty.
	dirty bool
}

// recSlot is how the store keeps a ChallengeRecord, in the entry of its fqdn: 48 bytes.
type recSlot struct {
	id      objID
	txt     [1]string // the value; served TXT records use txt[:] as their Txt, never writing it
	created int64     // Unix nanoseconds, noTime for none
	ttl     uint32    // 0: the plugin's default
	nsFlags uint32    // index into store.nsNames, and servedFlag
}

// servedFlag marks a recSlot the published entry answers. It is the top bit of nsFlags:
// a server never sees two billion namespaces.
const servedFlag = 1 << 31

func (r *recSlot) ns() uint32   { return r.nsFlags &^ servedFlag }
func (r *recSlot) served() bool { return r.nsFlags&servedFlag != 0 }

func (r *recSlot) setServed(served bool) {
	if served {
		r.nsFlags |= servedFlag
	} else {
		r.nsFlags &^= servedFlag
	}
}

// delSlot is how the store keeps a Delegation, in the entry of its target. Only its namespace
// takes part in the tenancy rule (see tenantOf). 20 bytes.
type delSlot struct {
	id objID
	ns uint32
}

// fixedSets are the RRsets of a name with Corefile or ConfigMap records, grouped by type.
type fixedSets struct{ rrsets []rrset }

type rrset struct {
	qtype uint16
	rrs   []dns.RR
}

func (f *fixedSets) get(qtype uint16) []dns.RR {
	if f == nil {
		return nil
	}
	for i := range f.rrsets {
		if f.rrsets[i].qtype == qtype {
			return f.rrsets[i].rrs
		}
	}
	return nil
}

// appendTXT appends the TXT RRset served from ChallengeRecords, owned by name: one record per
// distinct value, in value order. Each record is new (its header is the caller's to change);
// the value strings are shared.
func (e *entry) appendTXT(dst []dns.RR, name string) []dns.RR {
	for i := range e.recs {
		r := &e.recs[i]
		if !r.served() || (i > 0 && e.recs[i-1].served() && e.recs[i-1].txt[0] == r.txt[0]) {
			continue // not served, or a duplicate (slot order puts served records first in a value)
		}
		dst = append(dst, &dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: e.ttl},
			Txt: r.txt[:],
		})
	}
	return dst
}

// get returns the RRset of type qtype at the entry, owned by its name, nil for none. Shared
// records for the Corefile's and ConfigMaps' data, new ones for ChallengeRecords.
func (e *entry) get(qtype uint16, name string) []dns.RR {
	if qtype == dns.TypeTXT {
		if rrs := e.appendTXT(nil, name); rrs != nil {
			return rrs
		}
	}
	return e.fixed.get(qtype)
}

// answer appends the RRset of type qtype owned by name (the question's spelling) to dst, as
// copies; ok is false when the entry has none.
func (e *entry) answer(dst []dns.RR, qtype uint16, name string) (_ []dns.RR, ok bool) {
	if qtype == dns.TypeTXT {
		n := len(dst)
		if dst = e.appendTXT(dst, name); len(dst) > n {
			return dst, true
		}
	}
	if rrs := e.fixed.get(qtype); rrs != nil {
		return appendRenamed(dst, rrs, name), true
	}
	return dst, false
}

// sets returns every RRset at the entry, owned by its name, in type order.
func (e *entry) sets(name string) [][]dns.RR {
	var out [][]dns.RR
	if e.fixed != nil {
		for _, set := range e.fixed.rrsets {
			out = append(out, set.rrs)
		}
	}
	// A name with fixed records never serves ChallengeRecords (see store.build).
	if txt := e.appendTXT(nil, name); txt != nil {
		out = append(out, txt)
	}
	return out
}
