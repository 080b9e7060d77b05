// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// The writer: the store turns what the reflectors deliver into snapshots (snapshot.go) and
// publishes them. Writers (the reflectors' sinks) serialise on store.mu; readers only load the
// published snapshot and never lock.
//
// Copy-on-write. The writer works on the published maps and entries: the first change to a
// shard after a publish copies its map, the first change to an entry copies the entry (edit),
// and publish hands the copies to readers as the next snapshot in one atomic swap. Between
// two publishes the writer changes its copies in place, so the initial sync and a relist copy
// nothing.
//
// Invariants, between two changes (mu not held) and in every published snapshot:
//
//   - Shard ownership: owned[i] says shards[i] is the writer's own copy, which no published
//     snapshot holds; a shard with owned[i] false may be the published one and is copied
//     before it is written. publish gives every shard to readers and clears owned.
//   - Entry ownership: an entry is written only while dirty, and a dirty entry is reachable
//     from no published snapshot (edit creates or copies it, puts it in the writer's shard
//     and lists it in dirty); publish rebuilds every dirty entry and clears dirty.
//   - A held object is in exactly one place. A ChallengeRecord is a recSlot in the entry of
//     its fqdn when that name is in a zone and its value may be served (servableValue), else
//     in placeless. A Delegation is a delSlot in the entry of its placement (tenancy.go),
//     else, the rule placing it nowhere, in placeless. A Delegation with
//     persistentAuthorization has a second delSlot (id of kindPersist) in the entry of its
//     persistPlacement; a persist slot is never placeless, and persisted says where each one
//     is. There is no other map of objects: locate finds one where its last known state puts
//     it.
//   - A reflector never sends Add for an object it holds (delivered and not deleted since): a
//     watch resumes after the last event it delivered, and a relist comes as one Replace. So
//     an added object is looked for only at its own name and among the placeless (atHint),
//     never by a walk; an Update may have moved it, and a Delete's last state may not be the
//     state held, so those look everywhere when the hint misses.
//   - desc[name] counts the entries in the shards strictly below name, within its zone, that
//     are self (have data or a placed Delegation); it is kept for every name strictly between
//     such an entry and its zone's apex. An entry in the shards exists iff it is self, or
//     desc > 0, or it is an apex. (The static layer has its own empty non-terminals.)
//   - nserved counts the recSlots with the served flag in the writer's entries (after a
//     publish: the ChallengeRecords the published snapshot answers).
//   - The shards hold entries only for names with a slot and for the names above them that
//     desc makes exist; a name with fixed records and neither is only in the static layer
//     (static.go), which the next snapshot carries as it is. build reads a name's fixed
//     records from that layer.
//   - A change is published as a whole: every public operation below takes mu, makes its
//     change and publishes once (when live), so readers see either none or all of it; a
//     relist (replace) is one change. ConfigMap changes (static.go) build their layer under
//     staticMu and take mu only to swap it in, publishing once too. compact (compact.go), once
//     per start, copies the published entries without mu and takes it only to swap the
//     copies in, unchanged answers, when nothing was published meanwhile.

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/types"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// store holds every object the reflectors delivered and publishes what is served.
type store struct {
	zones      []string // canonical zone names, longest first
	order      []string // the same in Corefile order: derived targets live in the first
	key        v1alpha1.TargetKey
	defaultTTL uint32
	maxValues  int                 // TXT values served at one name
	maxRecords int                 // static records of one zone
	soaTmpl    map[string]dns.SOA  // per zone, serial filled in on publish
	fixed      map[string][]dns.RR // NS at the apex and in-zone glue, from the Corefile
	observe    func(delay time.Duration)

	// staticMu serialises ConfigMap changes (static.go); taken before mu.
	staticMu    sync.Mutex
	statics     map[types.NamespacedName]*staticSet // every ConfigMap with records (staticMu)
	staticBuilt func()                              // tests: called when a layer is built, before mu is taken

	compactCopied func() // tests: called when compact has copied the entries, before mu is taken

	mu        sync.Mutex
	shards    [shardCount]map[string]*entry // the next snapshot's maps
	owned     [shardCount]bool              // shards[i] is a copy no reader has seen
	static    *staticLayer                  // the next snapshot's static layer
	placeless map[objID]placeless           // objects held that no name serves
	persisted map[objID]string              // persist slots (kindPersist ids) held: at which name
	desc      map[string]int                // number of self names strictly below
	nsNames   []string                      // namespaces, by the index slots hold
	nsIndex   map[string]uint32
	dirty     []dirtyEntry
	live      bool      // publish on every change (after the initial sync)
	since     time.Time // records created before this are not timed
	serial    uint32    // of the last published snapshot, 0 before the first (serial.go)
	version   uint64    // the highest resourceVersion applied (serial.go)
	versioned bool      // version holds one
	opaque    bool      // a resourceVersion was not a number: the serial follows the clock
	journal   *journal  // the differences of the last serials, for IXFR; nil: none kept
	published func()    // called after each publish (under mu): NOTIFY, see notify.go
	nserved   int       // ChallengeRecords served (see the invariants)
	walks     int       // searches through every entry (locate)

	snap atomic.Pointer[snapshot]
}

// dirtyEntry is an entry the next publish rebuilds, and the name it is held at.
type dirtyEntry struct {
	name string
	e    *entry
}

// placeless is what the store keeps of an object that no name serves.
type placeless struct {
	ns   uint32
	kind byte
}

func newStore(cfg *config, observe func(time.Duration)) *store {
	s := &store{
		zones:      slices.Clone(cfg.zones),
		order:      slices.Clone(cfg.zones),
		key:        cfg.targetKey,
		defaultTTL: cfg.ttl,
		maxValues:  cfg.maxValues,
		maxRecords: cfg.maxRecords,
		soaTmpl:    map[string]dns.SOA{},
		fixed:      map[string][]dns.RR{},
		observe:    observe,
		placeless:  map[objID]placeless{},
		persisted:  map[objID]string{},
		statics:    map[types.NamespacedName]*staticSet{},
		desc:       map[string]int{},
		nsIndex:    map[string]uint32{},
		since:      time.Now(),
	}
	if s.maxValues <= 0 {
		s.maxValues = defaultMaxValues
	}
	if s.maxRecords <= 0 {
		s.maxRecords = defaultMaxStaticRecords
	}
	slices.SortFunc(s.zones, func(a, b string) int { return len(b) - len(a) })
	for _, z := range s.zones {
		s.soaTmpl[z] = cfg.soaFor(z)
		for _, ns := range cfg.nameservers {
			s.fixed[z] = append(s.fixed[z], &dns.NS{
				Hdr: dns.RR_Header{Name: z, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: cfg.nsTTL},
				Ns:  ns.name,
			})
			if s.zoneOf(ns.name) != z {
				continue
			}
			for _, ip := range ns.addrs {
				hdr := dns.RR_Header{Name: ns.name, Class: dns.ClassINET, Ttl: cfg.nsTTL}
				if ip4 := ip.To4(); ip4 != nil {
					hdr.Rrtype = dns.TypeA
					s.fixed[ns.name] = append(s.fixed[ns.name], &dns.A{Hdr: hdr, A: ip4})
				} else {
					hdr.Rrtype = dns.TypeAAAA
					s.fixed[ns.name] = append(s.fixed[ns.name], &dns.AAAA{Hdr: hdr, AAAA: ip})
				}
			}
		}
	}
	s.static = newStaticLayer(s.zones, s.fixed, nil)
	return s
}

// zoneOf returns the most specific served zone that holds the canonical name, or "".
func (s *store) zoneOf(name string) string { return zoneOf(s.zones, name) }

// target is where the Delegation d of namespace ns is placed (see placement), "" for nowhere.
// It reads only what never changes after newStore, so it needs no lock.
func (s *store) target(ns string, d *delegationIn) string {
	return placement(s.key, s.order, ns, d)
}

// persistTarget is where the Delegation d of namespace ns has its persist slot (see
// persistPlacement), "" for none. Lock-free, as target.
func (s *store) persistTarget(ns string, d *delegationIn) string {
	return persistPlacement(s.key, s.order, ns, d)
}

// load returns the published snapshot, nil before the first sync.
func (s *store) load() *snapshot { return s.snap.Load() }

// synced reports whether a snapshot has been published.
func (s *store) synced() bool { return s.snap.Load() != nil }

// The writer's operations, one per event a reflector delivers. Each is one change: it takes
// the lock, changes what the store holds and publishes once (when live).

// addRecord holds a ChallengeRecord the watch reports as created.
func (s *store) addRecord(rv string, key types.NamespacedName, rec *recordIn) {
	s.change(rv, func() { s.putRecord(idOf(kindRecord, key), key.Namespace, rec, rec.fqdn, atHint) })
}

// updateRecord holds the new state of a ChallengeRecord, which may have moved to another name.
func (s *store) updateRecord(rv string, key types.NamespacedName, rec *recordIn) {
	s.change(rv, func() { s.putRecord(idOf(kindRecord, key), key.Namespace, rec, rec.fqdn, everywhere) })
}

// deleteRecord forgets a ChallengeRecord; last is its last known state (nil: unknown), which
// says where to look first.
func (s *store) deleteRecord(rv string, key types.NamespacedName, last *recordIn) {
	hint := ""
	if last != nil {
		hint = last.fqdn
	}
	s.change(rv, func() { s.removeRecord(idOf(kindRecord, key), hint, everywhere) })
}

// addDelegation holds a Delegation the watch reports as created.
func (s *store) addDelegation(rv string, key types.NamespacedName, d *delegationIn) {
	target, persist := s.target(key.Namespace, d), s.persistTarget(key.Namespace, d) // keyed hashes: outside the lock
	s.change(rv, func() {
		s.putDelegation(idOf(kindDelegation, key), key.Namespace, target, target, atHint)
		s.putPersist(idOf(kindPersist, key), key.Namespace, persist)
	})
}

// updateDelegation holds the new state of a Delegation, which may have moved to another target
// (a changed spec.target or proof).
func (s *store) updateDelegation(rv string, key types.NamespacedName, d *delegationIn) {
	target, persist := s.target(key.Namespace, d), s.persistTarget(key.Namespace, d)
	s.change(rv, func() {
		s.putDelegation(idOf(kindDelegation, key), key.Namespace, target, target, everywhere)
		s.putPersist(idOf(kindPersist, key), key.Namespace, persist)
	})
}

// deleteDelegation forgets a Delegation; last is its last known state (nil: unknown).
func (s *store) deleteDelegation(rv string, key types.NamespacedName, last *delegationIn) {
	hint := s.target(key.Namespace, last)
	s.change(rv, func() {
		s.removeDelegation(idOf(kindDelegation, key), hint, everywhere)
		s.putPersist(idOf(kindPersist, key), key.Namespace, "")
	})
}

// ConfigMaps have their own operations, which build the static layer outside mu: setStatic,
// deleteStatic and replaceStatic (static.go).

// change makes one change to the store under its lock, published at once when live. rv is the
// resourceVersion the change brings the store to ("" for none known).
func (s *store) change(rv string, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	s.applied(rv)
	s.publishIfLive()
}

// objects is the content of one list of ChallengeRecords or Delegations: what the store
// replaces on a (re)list.
type objects struct {
	records     map[types.NamespacedName]*recordIn
	delegations map[types.NamespacedName]*delegationIn
}

// replace makes the store's objects of one kind in namespace ("" for all) what list holds,
// as one change: a relist after a lost watch publishes once, not once per object. rv is the
// list's resourceVersion: objects deleted while the watch was down are gone as of it.
func (s *store) replace(rv, namespace string, list objects) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nsIndex, scoped := s.nsIndex[namespace]
	inScope := func(ns uint32) bool { return namespace == "" || (scoped && ns == nsIndex) }
	if list.records != nil || list.delegations != nil {
		// Where each held object of the kind in scope is ("" for placeless): one walk over the
		// entries, not one per object. Empty at the initial sync.
		held := map[objID]string{}
		for _, shard := range s.shards {
			for name, e := range shard {
				if list.records != nil {
					for i := range e.recs {
						if inScope(e.recs[i].ns()) {
							held[e.recs[i].id] = name
						}
					}
				}
				if list.delegations != nil {
					for i := range e.dels {
						if inScope(e.dels[i].ns) {
							held[e.dels[i].id] = name
						}
					}
				}
			}
		}
		for id, p := range s.placeless {
			if (p.kind == kindRecord) == (list.records != nil) && inScope(p.ns) {
				held[id] = ""
			}
		}
		// held says exactly where each object is, so none needs a walk.
		for key, rec := range list.records {
			id := idOf(kindRecord, key)
			s.putRecord(id, key.Namespace, rec, held[id], atHint)
			delete(held, id)
		}
		for key, d := range list.delegations {
			id := idOf(kindDelegation, key)
			s.putDelegation(id, key.Namespace, s.target(key.Namespace, d), held[id], atHint)
			delete(held, id)
			pid := idOf(kindPersist, key)
			s.putPersist(pid, key.Namespace, s.persistTarget(key.Namespace, d))
			delete(held, pid)
		}
		// Not listed: deleted while the watch was down (a persist slot among them is an
		// entry's delSlot, which removeDelegation drops as any other).
		for id, name := range held {
			if list.records != nil {
				s.removeRecord(id, name, atHint)
			} else {
				s.removeDelegation(id, name, atHint)
			}
		}
	}
	s.applied(rv)
	s.publishIfLive()
}

// search says how far locate looks for an object the store may hold.
type search int

const (
	// atHint looks at the name the object's state gives and among the placeless: enough for
	// an Add (a reflector never sends Add for an object it holds) and for a relist, which
	// knows where each held object is.
	atHint search = iota
	// everywhere looks at the hint, among the placeless, and then in every entry: an Update
	// may have moved the object, and a Delete's last state may not be the one held.
	everywhere
)

// locate finds a held object: at the name hint, among the placeless, and then, if how is
// everywhere, in every entry. index finds it in an entry. It returns the entry, the name it is
// held at and the index there, or e == nil and held telling whether it is placeless.
func (s *store) locate(id objID, hint string, how search, index func(*entry) int) (name string, e *entry, i int, held bool) {
	if hint != "" {
		if e := s.shards[shardOf(hint)][hint]; e != nil {
			if i := index(e); i >= 0 {
				return hint, e, i, true
			}
		}
	}
	if _, ok := s.placeless[id]; ok {
		return "", nil, -1, true
	}
	if how == atHint {
		return "", nil, -1, false
	}
	// A moved object, or a delete of an object whose last state was not what the store holds:
	// rare, and a walk over every entry (about a millisecond at 100,000 names).
	s.walks++
	for _, shard := range s.shards {
		for name, e := range shard {
			if i := index(e); i >= 0 {
				return name, e, i, true
			}
		}
	}
	return "", nil, -1, false
}

// rec returns the index of the ChallengeRecord id in e.recs, -1 for none.
func (e *entry) rec(id objID) int {
	return slices.IndexFunc(e.recs, func(r recSlot) bool { return r.id == id })
}

// del returns the index of the Delegation id in e.dels, -1 for none.
func (e *entry) del(id objID) int {
	return slices.IndexFunc(e.dels, func(d delSlot) bool { return d.id == id })
}

// putRecord holds rec as the ChallengeRecord id of namespace ns, replacing the state held of
// it, which locate looks for from hint.
func (s *store) putRecord(id objID, ns string, rec *recordIn, hint string, how search) {
	// A value that is not one TXT string of printable ASCII is never served (the CRD refuses
	// it too); a backslash is escaped, so that the wire carries the value as written.
	placed := s.zoneOf(rec.fqdn) != "" && servableValue(rec.value)
	var txt string
	if placed {
		txt = txtString(rec.value)
	}
	name, e, i, held := s.locate(id, hint, how, func(e *entry) int { return e.rec(id) })
	if e != nil {
		old := &e.recs[i]
		if placed && rec.fqdn == name && txt == old.txt[0] && rec.ttl == old.ttl {
			return // a resync or a metadata change: nothing served changes
		}
	}
	s.dropRecord(id, name, e, i, held)
	if !placed {
		s.placeless[id] = placeless{ns: s.nsOf(ns), kind: kindRecord} // outside the zones, or not servable
		return
	}
	e = s.edit(rec.fqdn, true)
	e.recs = append(e.recs, recSlot{
		id: id, txt: [1]string{txt}, created: unixNano(rec.created), ttl: rec.ttl, nsFlags: s.nsOf(ns),
	})
}

// removeRecord forgets the ChallengeRecord id, which locate looks for from hint.
func (s *store) removeRecord(id objID, hint string, how search) {
	name, e, i, held := s.locate(id, hint, how, func(e *entry) int { return e.rec(id) })
	s.dropRecord(id, name, e, i, held)
}

// dropRecord takes the ChallengeRecord id out of where locate found it: slot i of e, the entry
// at name, or the placeless when held.
func (s *store) dropRecord(id objID, name string, e *entry, i int, held bool) {
	switch {
	case e != nil:
		served := e.recs[i].served()
		e = s.edit(name, false)
		if served {
			s.nserved--
		}
		e.recs = slices.Delete(e.recs, i, i+1)
		if len(e.recs) == 0 {
			e.recs = nil
		}
	case held:
		delete(s.placeless, id)
	}
}

// putDelegation holds the Delegation id of namespace ns at target, its placement ("" for
// nowhere: placeless), replacing the state held of it, which locate looks for from hint.
func (s *store) putDelegation(id objID, ns, target, hint string, how search) {
	name, e, i, held := s.locate(id, hint, how, func(e *entry) int { return e.del(id) })
	switch {
	case e != nil && target == name:
		return // a status or metadata change: the Delegation stays where it is
	case e == nil && held && target == "":
		return // still placeless
	}
	s.dropDelegation(id, name, e, i, held)
	if target == "" {
		s.placeless[id] = placeless{ns: s.nsOf(ns), kind: kindDelegation} // the rule gives no target
		return
	}
	e = s.edit(target, true)
	e.dels = append(e.dels, delSlot{id: id, ns: s.nsOf(ns)})
}

// removeDelegation forgets the Delegation id, which locate looks for from hint.
func (s *store) removeDelegation(id objID, hint string, how search) {
	name, e, i, held := s.locate(id, hint, how, func(e *entry) int { return e.del(id) })
	s.dropDelegation(id, name, e, i, held)
}

// putPersist holds the persist slot id (kindPersist) of a Delegation of namespace ns at
// target, its persistPlacement, moving it from where persisted says it was; "" drops it.
func (s *store) putPersist(id objID, ns, target string) {
	old, held := s.persisted[id]
	if held && old == target {
		return
	}
	if held {
		if e := s.shards[shardOf(old)][old]; e != nil {
			if i := e.del(id); i >= 0 {
				s.dropDelegation(id, old, e, i, true)
			}
		}
		delete(s.persisted, id)
	}
	if target == "" {
		return
	}
	e := s.edit(target, true)
	e.dels = append(e.dels, delSlot{id: id, ns: s.nsOf(ns)})
	s.persisted[id] = target
}

// dropDelegation takes the Delegation (or persist slot) id out of where locate found it.
func (s *store) dropDelegation(id objID, name string, e *entry, i int, held bool) {
	switch {
	case e != nil:
		delete(s.persisted, id) // a persist slot's record of where it is
		e = s.edit(name, false)
		e.dels = slices.Delete(e.dels, i, i+1)
		if len(e.dels) == 0 {
			e.dels = nil
		}
	case held:
		delete(s.placeless, id)
	}
}

// edit returns the entry at the canonical name for the writer to change, marked for the next
// publish: the entry itself when it is dirty (no reader has seen it), else a copy put in its
// place, in a shard the writer owns. When there is none, it creates one if create is set and
// returns nil otherwise.
func (s *store) edit(name string, create bool) *entry {
	i := shardOf(name)
	e := s.shards[i][name]
	if e != nil && e.dirty {
		return e
	}
	if e == nil && !create {
		return nil
	}
	if !s.owned[i] {
		s.shards[i] = maps.Clone(s.shards[i])
		if s.shards[i] == nil {
			s.shards[i] = map[string]*entry{}
		}
		s.owned[i] = true
	}
	if e == nil {
		e = &entry{}
	} else {
		c := *e
		c.recs = slices.Clone(e.recs)
		c.dels = slices.Clone(e.dels)
		e = &c
	}
	e.dirty = true
	s.dirty = append(s.dirty, dirtyEntry{name, e})
	s.shards[i][name] = e
	return e
}

// nsOf returns the index of a namespace, adding it: a few namespaces own thousands of objects.
func (s *store) nsOf(ns string) uint32 {
	i, ok := s.nsIndex[ns]
	if !ok {
		i = uint32(len(s.nsNames))
		ns = strings.Clone(ns)
		s.nsNames = append(s.nsNames, ns)
		s.nsIndex[ns] = i
	}
	return i
}

// goLive publishes the first snapshot (built from everything seen so far) and makes every later
// change publish at once. Called when the reflectors have synced.
func (s *store) goLive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = true
	s.publish()
}

func (s *store) publishIfLive() {
	if s.live {
		s.publish()
	}
}

// publish rebuilds the changed entries (and the empty non-terminals above names whose
// existence changed) and hands the writer's maps to readers as the next snapshot.
func (s *store) publish() {
	last := s.snap.Load()
	if len(s.dirty) == 0 && last != nil && last.static == s.static {
		return
	}
	now := time.Now()
	// Ancestors whose descendants come or go join the list as it is walked.
	for i := 0; i < len(s.dirty); i++ {
		name, e := s.dirty[i].name, s.dirty[i].e
		self := s.build(name, e, now)
		if self == e.self {
			continue
		}
		e.self = self
		zone := s.zoneOf(name)
		for a := parent(name); a != "" && len(a) > len(zone); a = parent(a) {
			if self {
				s.desc[a]++
			} else if s.desc[a]--; s.desc[a] <= 0 {
				delete(s.desc, a)
			}
			s.edit(a, true)
		}
	}
	var changed []string // the names whose records may have changed, for the journal
	if s.journal != nil {
		changed = make([]string, 0, len(s.dirty))
	}
	for _, d := range s.dirty {
		if changed != nil {
			changed = append(changed, d.name)
		}
		e := d.e
		e.dirty = false
		e.exists = e.self || s.desc[d.name] > 0 || s.soaTmpl[d.name].Hdr.Name != ""
		if !e.exists && e.recs == nil && e.dels == nil {
			delete(s.shards[shardOf(d.name)], d.name) // edit made this shard the writer's
		}
	}
	if cap(s.dirty) > 1024 {
		s.dirty = nil // after the initial sync the list would keep one slot per name
	} else {
		clear(s.dirty)
		s.dirty = s.dirty[:0]
	}

	from := s.serial
	s.serial = s.nextSerial(now)
	next := &snapshot{shards: s.shards, static: s.static, soa: make(map[string]*dns.SOA, len(s.soaTmpl))}
	for z, tmpl := range s.soaTmpl {
		soa := tmpl
		soa.Serial = s.serial
		next.soa[z] = &soa
	}
	if s.journal != nil {
		next.journal = s.journal.record(last, next, changed, from, s.serial)
	}
	s.owned = [shardCount]bool{}
	s.snap.Store(next)
	if s.published != nil {
		s.published()
	}
	snapshotRebuilds.Inc()
	recordsGauge.WithLabelValues("challenge").Set(float64(s.nserved))
	recordsGauge.WithLabelValues("static").Set(float64(s.static.nstatic))
}
