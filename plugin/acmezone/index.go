package acmezone

import (
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/types"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// shardCount is the number of maps a snapshot is split into. An update copies only the shards
// of the names it touches, so with 100,000 names one write copies about 400 map entries instead
// of all of them, and the query path stays a single map lookup.
const shardCount = 256

var shardSeed = maphash.MakeSeed()

func shardOf(name string) int {
	return int(maphash.String(shardSeed, name) % shardCount)
}

// objID names a ChallengeRecord or a Delegation inside the store: a 128-bit keyed hash of its
// kind, namespace and name. The store keeps ids, not names: an id is 16 bytes, a name a string
// header and its bytes, and a server holds 200,000 of them at 100,000 records. Two objects get
// the same id with a probability of about 2^-128 per pair (as two random UUIDs would), and the
// seeds are random per process, so no one can choose names that collide.
type objID [2]uint64

// The kinds an objID is computed for.
const (
	kindRecord     = 'r'
	kindDelegation = 'd'
)

var idSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// idOf returns the id of the object of kind at key.
func idOf(kind byte, key types.NamespacedName) objID {
	var id objID
	for i := range id {
		var h maphash.Hash
		h.SetSeed(idSeeds[i])
		h.WriteByte(kind)
		h.WriteString(key.Namespace)
		h.WriteByte('/') // neither a namespace nor a name can hold a slash
		h.WriteString(key.Name)
		id[i] = h.Sum64()
	}
	return id
}

// recSlot is how the store keeps a ChallengeRecord, in the entry of its name: 48 bytes.
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
// takes part in the tenancy rule (see tenantOf).
type delSlot struct {
	id objID
	ns uint32
}

// entry is everything the store holds at one canonical name and what is served there: 80
// bytes. An entry in a published snapshot is immutable: the writer changes a copy (see
// store.edit). The snapshot is the index: there is no second map of names, and no map of
// objects either (see store.locate).
type entry struct {
	name  string
	recs  []recSlot // sorted by value once published
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
	// dirty says the entry is the writer's: changed since the last publish, which rebuilds it.
	dirty bool
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
			continue // not served, or a duplicate (build sorts served records first in a value)
		}
		dst = append(dst, &dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: e.ttl},
			Txt: r.txt[:],
		})
	}
	return dst
}

// get returns the RRset of type qtype at the entry, nil for none. Shared records for the
// Corefile's and ConfigMaps' data, new ones for ChallengeRecords.
func (e *entry) get(qtype uint16) []dns.RR {
	if qtype == dns.TypeTXT {
		if rrs := e.appendTXT(nil, e.name); rrs != nil {
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

// sets returns every RRset at the entry, in type order.
func (e *entry) sets() [][]dns.RR {
	var out [][]dns.RR
	if e.fixed != nil {
		for _, set := range e.fixed.rrsets {
			out = append(out, set.rrs)
		}
	}
	// A name with fixed records never serves ChallengeRecords (see store.build).
	if txt := e.appendTXT(nil, e.name); txt != nil {
		out = append(out, txt)
	}
	return out
}

// snapshot is an immutable view of all served names, swapped atomically as a whole.
type snapshot struct {
	shards [shardCount]map[string]*entry
	// soa holds the SOA record of each zone, keyed by canonical zone name.
	soa map[string]*dns.SOA
}

// lookup returns the entry at the lower-case name, or nil when the name does not exist.
func (s *snapshot) lookup(name string) *entry {
	if e := s.shards[shardOf(name)][name]; e != nil && e.exists {
		return e
	}
	return nil
}

// recordIn is one ChallengeRecord as the store needs it.
type recordIn struct {
	fqdn    string // canonical
	value   string
	ttl     uint32 // 0: the plugin's default
	created time.Time
}

// servableValue reports whether a ChallengeRecord's value may be served: one TXT string of 1
// to 255 bytes of printable ASCII, as the CRD requires. The plugin checks it again so that
// nothing else reaches the wire, whatever wrote the object.
func servableValue(v string) bool {
	if len(v) == 0 || len(v) > 255 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// txtString is the dns.TXT string of the value v: miekg/dns reads a backslash as the start of
// an escape when it packs a TXT string (\007 would be a BEL), so backslashes are doubled and
// the wire carries v exactly as written.
func txtString(v string) string {
	if strings.IndexByte(v, '\\') < 0 {
		return v
	}
	return strings.ReplaceAll(v, `\`, `\\`)
}

// delegationIn is one Delegation as the store needs it: what the tenancy rule reads of it.
// The store places it at claim's target (TargetKey.Target) with the Delegation's namespace as
// the store knows it; the claim's own Namespace is not read.
type delegationIn struct {
	claim v1alpha1.TargetClaim
}

// noTime stands for the zero time.Time, which Unix nanoseconds cannot hold; it sorts first,
// as the zero time does.
const noTime = math.MinInt64

// unixNano is t in Unix nanoseconds, noTime for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return t.UnixNano()
}

// store turns the objects seen by the reflectors into snapshots. Writers (reflector callbacks)
// serialise on mu; readers only load the published snapshot.
//
// The writer works on the published maps and entries copy-on-write: the first change to a
// shard after a publish copies its map, the first change to an entry copies the entry, and
// publish hands the copies to readers as the next snapshot. Between two publishes the writer
// changes its copies in place, so the initial sync and a relist copy nothing.
//
// An object is found where its last known state puts it: a ChallengeRecord at its fqdn, a
// Delegation at its target (the reflectors hand over the old object on a delete), and the
// objects without a place here in placeless. Only an update that moves an object needs a walk
// over all entries; a Delegation's target moves only when its spec.target or proof does.
//
// Invariants, between two changes (mu not held) and in every published snapshot:
//
//   - A held object is in exactly one place. A ChallengeRecord is a recSlot in the entry of
//     its fqdn when that name is in a zone and its value may be served (servableValue), else
//     in placeless. A Delegation is a delSlot in the entry of key.Target(claim, order...),
//     else (the rule gives no target) in placeless.
//   - An entry or shard map a reader may hold is never written: edit copies it first, marks
//     the copy dirty and lists it in dirty; owned[i] says shards[i] is the writer's copy.
//   - What a published entry serves follows from the held objects alone, by build: a recSlot
//     is served iff tenantOf gives its namespace for the entry, and its value is among the
//     maxValues newest values served there. Nothing else (age, status, order of arrival)
//     takes part.
//   - A ConfigMap's records are indexed by name (statics, staticsAt), so building an entry
//     reads only the records at its name and a rebuild is linear in the data. A ConfigMap is
//     served whole or not at all (staticSet.served): in each zone they are admitted in key
//     order while the zone stays within maxRecords.
//   - desc[name] counts the names below name (within its zone) that exist on their own;
//     entry.exists is self, or desc > 0, or the apex.
//   - nserved counts the served recSlots, nstatic the records of served ConfigMaps.
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

	mu        sync.Mutex
	shards    [shardCount]map[string]*entry // the next snapshot's maps
	owned     [shardCount]bool              // shards[i] is a copy no reader has seen
	placeless map[objID]placeless           // objects held that no name serves
	statics   map[types.NamespacedName]*staticSet
	staticsAt map[string][]types.NamespacedName // name → ConfigMaps with records there
	desc      map[string]int                    // number of self names strictly below
	nsNames   []string                          // namespaces, by the index slots hold
	nsIndex   map[string]uint32
	dirty     []*entry
	live      bool      // publish on every change (after the initial sync)
	since     time.Time // records created before this are not timed
	serial    uint32
	nstatic   int // records served from ConfigMaps
	nserved   int // ChallengeRecords the published snapshot answers
	walks     int // searches through every entry (locate)

	snap atomic.Pointer[snapshot]
}

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
		statics:    map[types.NamespacedName]*staticSet{},
		staticsAt:  map[string][]types.NamespacedName{},
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
		s.edit(z, true)
	}
	for name := range s.fixed {
		s.edit(name, true)
	}
	return s
}

// target is where the Delegation d of namespace ns is served: TargetKey.Target, the tenancy
// rule, with the zones in Corefile order; "" for nowhere.
func (s *store) target(ns string, d *delegationIn) string {
	if d == nil {
		return ""
	}
	c := d.claim
	c.Namespace = ns
	t, err := s.key.Target(c, s.order...)
	if err != nil || s.zoneOf(t) == "" {
		return ""
	}
	return t
}

// zoneOf returns the most specific served zone that holds the canonical name, or "".
func (s *store) zoneOf(name string) string {
	for _, z := range s.zones {
		if inZone(z, name) {
			return z
		}
	}
	return ""
}

// inZone reports whether the canonical name is the canonical zone or below it. It is
// dns.IsSubDomain without its allocations (it splits both names into labels) for names without
// escapes, which is every name a resolver asks about here: it runs once per query.
func inZone(zone, name string) bool {
	switch {
	case strings.IndexByte(name, '\\') >= 0:
		return dns.IsSubDomain(zone, name) // an escaped dot is no label boundary
	case zone == ".":
		return true
	case len(name) <= len(zone):
		return name == zone
	}
	return strings.HasSuffix(name, zone) && name[len(name)-len(zone)-1] == '.'
}

// load returns the published snapshot, nil before the first sync.
func (s *store) load() *snapshot { return s.snap.Load() }

// synced reports whether a snapshot has been published.
func (s *store) synced() bool { return s.snap.Load() != nil }

// placeless is what the store keeps of an object that no name serves.
type placeless struct {
	ns   uint32
	kind byte
}

// edit returns the entry at the canonical name for the writer to change, marked for the next
// publish: the entry itself when no reader has seen it, else a copy put in its place. When
// there is none, it creates one if create is set and returns nil otherwise.
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
		e = &entry{name: name}
	} else {
		c := *e
		c.recs = slices.Clone(e.recs)
		c.dels = slices.Clone(e.dels)
		e = &c
	}
	e.dirty = true
	s.dirty = append(s.dirty, e)
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

// The ways the store finds an object it may hold (see store.locate).
const (
	isNew    = iota // an add: the object is not held, unless at its own name
	anywhere        // an update, which may move it, or a delete whose last state may be stale
)

// change makes one change to the store under its lock, published at once when live.
func (s *store) change(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	s.publishIfLive()
}

// record adds or replaces (rec != nil) or removes (rec == nil) a ChallengeRecord, as one
// change; how says where it may be held, last is its last known state on a delete (nil:
// unknown).
func (s *store) record(key types.NamespacedName, rec *recordIn, how int, last *recordIn) {
	s.change(func() { s.putRecord(idOf(kindRecord, key), key.Namespace, rec, how, last) })
}

// delegation adds, replaces or removes a Delegation, as record does a ChallengeRecord.
func (s *store) delegation(key types.NamespacedName, d *delegationIn, how int, last *delegationIn) {
	if last == nil {
		last = d
	}
	hint := s.target(key.Namespace, last) // a keyed hash: outside the lock
	s.change(func() { s.putDelegation(idOf(kindDelegation, key), key.Namespace, d, how, hint) })
}

// setStatic replaces the records of one ConfigMap (nil removes them).
func (s *store) setStatic(key types.NamespacedName, set *staticSet) {
	s.change(func() { s.putStatic(key, set) })
}

// objects is the content of one list of one kind: what the store replaces on a (re)list.
type objects struct {
	records     map[types.NamespacedName]*recordIn
	delegations map[types.NamespacedName]*delegationIn
	statics     map[types.NamespacedName]*staticSet
}

// replace makes the store's objects of one kind in namespace ("" for all) what list holds,
// as one change: a relist after a lost watch publishes once, not once per object.
func (s *store) replace(namespace string, list objects) {
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
		for key, rec := range list.records {
			id := idOf(kindRecord, key)
			s.putRecord(id, key.Namespace, rec, isNew, &recordIn{fqdn: held[id]})
			delete(held, id)
		}
		for key, d := range list.delegations {
			id := idOf(kindDelegation, key)
			s.putDelegation(id, key.Namespace, d, isNew, held[id])
			delete(held, id)
		}
		for id, name := range held { // not listed: deleted while the watch was down
			if list.records != nil {
				s.putRecord(id, "", nil, isNew, &recordIn{fqdn: name})
			} else {
				s.putDelegation(id, "", nil, isNew, name)
			}
		}
	}
	if list.statics != nil {
		for key := range s.statics {
			if _, ok := list.statics[key]; !ok && (namespace == "" || key.Namespace == namespace) {
				s.putStatic(key, nil)
			}
		}
		for key, set := range list.statics {
			s.putStatic(key, set)
		}
	}
	s.publishIfLive()
}

// rec returns the index of the ChallengeRecord id in e.recs, -1 for none.
func (e *entry) rec(id objID) int {
	return slices.IndexFunc(e.recs, func(r recSlot) bool { return r.id == id })
}

// del returns the index of the Delegation id in e.dels, -1 for none.
func (e *entry) del(id objID) int {
	return slices.IndexFunc(e.dels, func(d delSlot) bool { return d.id == id })
}

// locate finds a held object: at the name its state gives (hint), among the placeless, and
// then, unless how is isNew, in every entry. index finds it in an entry. It returns the entry
// and the index there, or e == nil and held telling whether it is placeless.
func (s *store) locate(id objID, hint string, how int, index func(*entry) int) (e *entry, i int, held bool) {
	if hint != "" {
		if e := s.shards[shardOf(hint)][hint]; e != nil {
			if i := index(e); i >= 0 {
				return e, i, true
			}
		}
	}
	if _, ok := s.placeless[id]; ok {
		return nil, -1, true
	}
	if how == isNew {
		return nil, -1, false
	}
	// A moved object, or a delete of an object whose old state was not what the store holds:
	// rare, and a walk over every entry (about a millisecond at 100,000 names).
	s.walks++
	for _, shard := range s.shards {
		for _, e := range shard {
			if i := index(e); i >= 0 {
				return e, i, true
			}
		}
	}
	return nil, -1, false
}

// putRecord adds, replaces (rec != nil) or removes a ChallengeRecord; last is its last known
// state, nil for rec itself.
func (s *store) putRecord(id objID, ns string, rec *recordIn, how int, last *recordIn) {
	if last == nil {
		last = rec
	}
	hint := ""
	if last != nil {
		hint = last.fqdn
	}
	// A value that is not one TXT string of printable ASCII is never served (the CRD refuses
	// it too); a backslash is escaped, so that the wire carries the value as written.
	inZone := rec != nil && s.zoneOf(rec.fqdn) != "" && servableValue(rec.value)
	var txt string
	if inZone {
		txt = txtString(rec.value)
	}
	e, i, held := s.locate(id, hint, how, func(e *entry) int { return e.rec(id) })
	switch {
	case e != nil:
		old := &e.recs[i]
		if inZone && rec.fqdn == e.name && txt == old.txt[0] && rec.ttl == old.ttl {
			return // a resync or a metadata change: nothing served changes
		}
		served := old.served()
		e = s.edit(e.name, false)
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
	switch {
	case inZone:
		e := s.edit(rec.fqdn, true)
		e.recs = append(e.recs, recSlot{
			id: id, txt: [1]string{txt}, created: unixNano(rec.created), ttl: rec.ttl, nsFlags: s.nsOf(ns),
		})
	case rec != nil:
		s.placeless[id] = placeless{ns: s.nsOf(ns), kind: kindRecord} // outside the zones, or not servable
	}
}

// putDelegation adds, replaces (d != nil) or removes a Delegation; hint is the target of its
// last known state.
func (s *store) putDelegation(id objID, ns string, d *delegationIn, how int, hint string) {
	target := s.target(ns, d)
	e, i, held := s.locate(id, hint, how, func(e *entry) int { return e.del(id) })
	switch {
	case e != nil:
		if target == e.name {
			return // a status or metadata change: the Delegation stays where it is
		}
		e = s.edit(e.name, false)
		e.dels = slices.Delete(e.dels, i, i+1)
		if len(e.dels) == 0 {
			e.dels = nil
		}
	case held:
		if d != nil && target == "" {
			return // still placeless
		}
		delete(s.placeless, id)
	}
	switch {
	case target != "":
		e := s.edit(target, true)
		e.dels = append(e.dels, delSlot{id: id, ns: s.nsOf(ns)})
	case d != nil:
		s.placeless[id] = placeless{ns: s.nsOf(ns), kind: kindDelegation} // the rule gives no target
	}
}

// putStatic replaces the records of one ConfigMap (set nil: removes them) and admits the
// ConfigMaps of the zones concerned again.
func (s *store) putStatic(key types.NamespacedName, set *staticSet) {
	var zones []string
	if old := s.statics[key]; old != nil {
		zones = append(zones, old.zone)
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

// tenantOf is the tenancy rule at one name: the namespace whose ChallengeRecords the name
// serves, given the Delegations placed there (each at the one target TargetKey.Target gives
// it) and whether the name is one of the zone's own (its apex, an in-zone name server, a name
// with static records). Records are served iff a Delegation of their namespace is placed at
// the name and every Delegation placed there is of that namespace. A derived target is one
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

// build recomputes what the entry serves from the stored objects, and reports whether the
// name exists on its own (it has data or is a delegated target).
func (s *store) build(e *entry, now time.Time) (self bool) {
	name := e.name
	var rrs []dns.RR
	rrs = append(rrs, s.fixed[name]...)
	for _, key := range s.staticsAt[name] {
		if set := s.statics[key]; set.served {
			rrs = append(rrs, set.names[name]...)
		}
	}
	e.fixed = nil
	if len(rrs) > 0 {
		e.fixed = &fixedSets{rrsets: groupRRsets(rrs)}
	}
	self = len(e.dels) > 0 || len(rrs) > 0
	// The zone's own names are nobody's target: TXT records a namespace wrote there would
	// speak for the zone. (Targets have the form <uuid>.<zone>, which static data may not use,
	// so this only matters for a name server named like one.)
	owner, delegated, conflict := tenantOf(e.dels, len(rrs) > 0 || s.soaTmpl[name].Hdr.Name != "")
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
	// Candidates first within a value, so appendTXT skips only duplicates of a served one.
	slices.SortFunc(e.recs, func(a, b recSlot) int {
		if c := strings.Compare(a.txt[0], b.txt[0]); c != 0 {
			return c
		}
		return boolOrder(candidate(&b), candidate(&a))
	})
	kept := s.newestValues(e, candidate)
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
func (s *store) newestValues(e *entry, candidate func(*recSlot) bool) map[string]bool {
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
		e.name, len(values), s.maxValues, s.maxValues, len(values)-s.maxValues)
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

// publish rebuilds the changed entries (and the empty non-terminals above names whose
// existence changed) and hands the writer's maps to readers as the next snapshot.
func (s *store) publish() {
	if len(s.dirty) == 0 && s.snap.Load() != nil {
		return
	}
	now := time.Now()
	// Ancestors whose descendants come or go join the list as it is walked.
	for i := 0; i < len(s.dirty); i++ {
		e := s.dirty[i]
		self := s.build(e, now)
		if self == e.self {
			continue
		}
		e.self = self
		zone := s.zoneOf(e.name)
		for a := parent(e.name); a != "" && len(a) > len(zone); a = parent(a) {
			if self {
				s.desc[a]++
			} else if s.desc[a]--; s.desc[a] <= 0 {
				delete(s.desc, a)
			}
			s.edit(a, true)
		}
	}
	for _, e := range s.dirty {
		e.dirty = false
		e.exists = e.self || s.desc[e.name] > 0 || s.soaTmpl[e.name].Hdr.Name != ""
		if !e.exists && e.recs == nil && e.dels == nil {
			delete(s.shards[shardOf(e.name)], e.name) // edit made this shard the writer's
		}
	}
	if cap(s.dirty) > 1024 {
		s.dirty = nil // after the initial sync the list would keep one slot per name
	} else {
		clear(s.dirty)
		s.dirty = s.dirty[:0]
	}

	s.serial = max(s.serial+1, uint32(now.Unix()))
	next := &snapshot{shards: s.shards, soa: make(map[string]*dns.SOA, len(s.soaTmpl))}
	for z, tmpl := range s.soaTmpl {
		soa := tmpl
		soa.Serial = s.serial
		next.soa[z] = &soa
	}
	s.owned = [shardCount]bool{}
	s.snap.Store(next)
	snapshotRebuilds.Inc()
	recordsGauge.WithLabelValues("challenge").Set(float64(s.nserved))
	recordsGauge.WithLabelValues("static").Set(float64(s.nstatic))
}

// parent returns the canonical parent of a canonical name, "" for the root.
func parent(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[i:]
}

// canonical lower-cases a name and makes it absolute.
func canonical(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}
