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

// node is everything served at one name. It is immutable once published.
type node struct {
	// rrsets holds one RRset per type, owner names as stored (not the query's case).
	rrsets []rrset
}

type rrset struct {
	qtype uint16
	rrs   []dns.RR
}

// get returns the RRset of type qtype, or nil.
func (n *node) get(qtype uint16) []dns.RR {
	for i := range n.rrsets {
		if n.rrsets[i].qtype == qtype {
			return n.rrsets[i].rrs
		}
	}
	return nil
}

// snapshot is an immutable view of all served names, swapped atomically as a whole.
type snapshot struct {
	shards [shardCount]map[string]*node
	// soa holds the SOA record of each zone, keyed by canonical zone name.
	soa map[string]*dns.SOA
}

func shardOf(name string) int {
	return int(maphash.String(shardSeed, name) % shardCount)
}

// lookup returns the node at the lower-case name, or nil when the name does not exist.
func (s *snapshot) lookup(name string) *node {
	return s.shards[shardOf(name)][name]
}

// recordIn is one ChallengeRecord as the store needs it.
type recordIn struct {
	fqdn    string // canonical
	value   string
	ttl     uint32 // 0: the plugin's default
	created time.Time
}

// recordEntry is how the store keeps a ChallengeRecord: fqdn shares its bytes with the name's
// key in byName, created is in Unix nanoseconds, served says whether the last published
// snapshot answers it. Kept small: a server holds one per record, 100,000 of them or more.
type recordEntry struct {
	fqdn    string
	value   string
	created int64
	ttl     uint32
	served  bool
}

// delegationEntry is how the store keeps a Delegation: its claim without the namespace and
// name, which are the map key, and the creation time in Unix nanoseconds.
type delegationEntry struct {
	target    string // shares its bytes with the name's key in byName
	created   int64
	confirmed bool
}

// claim returns the entry's v1alpha1.Claim.
func (e delegationEntry) claim(key types.NamespacedName) v1alpha1.Claim {
	c := v1alpha1.Claim{Confirmed: e.confirmed, Namespace: key.Namespace, Name: key.Name}
	if e.created != noTime {
		c.Created = time.Unix(0, e.created)
	}
	return c
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

// delegationIn is one Delegation as the store needs it.
type delegationIn struct {
	target string // canonical, "" when none
	claim  v1alpha1.Claim
}

// store turns the objects seen by the informers into snapshots. Writers (informer callbacks)
// serialise on mu; readers only load the published snapshot.
type store struct {
	zones      []string // canonical zone names, longest first
	defaultTTL uint32
	soaTmpl    map[string]dns.SOA  // per zone, serial filled in on publish
	fixed      map[string][]dns.RR // NS at the apex and in-zone glue, from the Corefile
	observe    func(delay time.Duration)

	mu          sync.Mutex
	records     map[types.NamespacedName]recordEntry
	delegations map[types.NamespacedName]delegationEntry
	statics     map[types.NamespacedName][]dns.RR // ConfigMap → its valid records
	byName      map[string]*nameRefs              // canonical name → what contributes to it
	self        map[string]bool                   // name has data or is a delegated target
	desc        map[string]int                    // number of self names strictly below
	namespaces  map[string]string                 // interned namespace names
	dirty       map[string]struct{}
	live        bool      // publish on every change (after the initial sync)
	since       time.Time // records created before this are not timed
	serial      uint32
	nstatic     int // records held from ConfigMaps
	nserved     int // ChallengeRecords the published snapshot answers

	snap atomic.Pointer[snapshot]
}

// nameRefs indexes the objects that contribute to one name. Slices, not maps: a name almost
// always has one Delegation and a record or two, and a map costs hundreds of bytes even empty.
type nameRefs struct {
	name        string // the canonical name; entries share these bytes
	records     []types.NamespacedName
	delegations []types.NamespacedName
	statics     *[]types.NamespacedName // a pointer: few names have ConfigMap records
}

// add appends key to *keys unless it is there already.
func add(keys *[]types.NamespacedName, key types.NamespacedName) {
	if !slices.Contains(*keys, key) {
		*keys = append(*keys, key)
	}
}

// remove deletes key from *keys, releasing the array when it is the last one.
func remove(keys *[]types.NamespacedName, key types.NamespacedName) {
	if i := slices.Index(*keys, key); i >= 0 {
		last := len(*keys) - 1
		(*keys)[i] = (*keys)[last]
		(*keys)[last] = types.NamespacedName{}
		*keys = (*keys)[:last]
		if last == 0 {
			*keys = nil
		}
	}
}

func (r *nameRefs) empty() bool {
	return len(r.records) == 0 && len(r.delegations) == 0 && r.statics == nil
}

func newStore(cfg *config, observe func(time.Duration)) *store {
	s := &store{
		zones:       slices.Clone(cfg.zones),
		defaultTTL:  cfg.ttl,
		soaTmpl:     map[string]dns.SOA{},
		fixed:       map[string][]dns.RR{},
		observe:     observe,
		records:     map[types.NamespacedName]recordEntry{},
		delegations: map[types.NamespacedName]delegationEntry{},
		statics:     map[types.NamespacedName][]dns.RR{},
		byName:      map[string]*nameRefs{},
		self:        map[string]bool{},
		desc:        map[string]int{},
		namespaces:  map[string]string{},
		dirty:       map[string]struct{}{},
		since:       time.Now(),
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
		s.dirty[z] = struct{}{}
	}
	for name := range s.fixed {
		s.dirty[name] = struct{}{}
	}
	return s
}

// zoneOf returns the most specific served zone that holds the canonical name, or "".
func (s *store) zoneOf(name string) string {
	for _, z := range s.zones {
		if dns.IsSubDomain(z, name) {
			return z
		}
	}
	return ""
}

// load returns the published snapshot, nil before the first sync.
func (s *store) load() *snapshot { return s.snap.Load() }

// synced reports whether a snapshot has been published.
func (s *store) synced() bool { return s.snap.Load() != nil }

func (s *store) refs(name string) *nameRefs {
	r := s.byName[name]
	if r == nil {
		r = &nameRefs{name: name}
		s.byName[name] = r
	}
	return r
}

// key returns key with its namespace interned: thousands of objects share a few namespaces.
func (s *store) key(key types.NamespacedName) types.NamespacedName {
	ns, ok := s.namespaces[key.Namespace]
	if !ok {
		ns = strings.Clone(key.Namespace)
		s.namespaces[ns] = ns
	}
	key.Namespace = ns
	return key
}

func (s *store) unref(name string, drop func(*nameRefs)) {
	if r := s.byName[name]; r != nil {
		drop(r)
		if r.empty() {
			delete(s.byName, name)
		}
	}
	s.dirty[name] = struct{}{}
}

// setRecord adds, replaces (rec != nil) or removes (rec == nil) a ChallengeRecord.
func (s *store) setRecord(key types.NamespacedName, rec *recordIn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putRecord(key, rec)
	s.publishIfLive()
}

// setDelegation adds, replaces or removes a Delegation.
func (s *store) setDelegation(key types.NamespacedName, d *delegationIn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putDelegation(key, d)
	s.publishIfLive()
}

// setStatic replaces the records of one ConfigMap (nil or empty removes them).
func (s *store) setStatic(key types.NamespacedName, rrs []dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putStatic(key, rrs)
	s.publishIfLive()
}

// objects is the content of one list of one kind: what the store replaces on a (re)list.
type objects struct {
	records     map[types.NamespacedName]*recordIn
	delegations map[types.NamespacedName]*delegationIn
	statics     map[types.NamespacedName][]dns.RR
}

// replace makes the store's objects of one kind in namespace ("" for all) what list holds,
// as one change: a relist after a lost watch publishes once, not once per object.
func (s *store) replace(namespace string, list objects) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inScope := func(key types.NamespacedName) bool { return namespace == "" || key.Namespace == namespace }
	if list.records != nil {
		for key := range s.records {
			if _, ok := list.records[key]; !ok && inScope(key) {
				s.putRecord(key, nil)
			}
		}
		for key, rec := range list.records {
			s.putRecord(key, rec)
		}
	}
	if list.delegations != nil {
		for key := range s.delegations {
			if _, ok := list.delegations[key]; !ok && inScope(key) {
				s.putDelegation(key, nil)
			}
		}
		for key, d := range list.delegations {
			s.putDelegation(key, d)
		}
	}
	if list.statics != nil {
		for key := range s.statics {
			if _, ok := list.statics[key]; !ok && inScope(key) {
				s.putStatic(key, nil)
			}
		}
		for key, rrs := range list.statics {
			s.putStatic(key, rrs)
		}
	}
	s.publishIfLive()
}

func (s *store) putRecord(key types.NamespacedName, rec *recordIn) {
	if old, ok := s.records[key]; ok {
		if rec != nil && rec.fqdn == old.fqdn && rec.value == old.value && rec.ttl == old.ttl {
			return // a resync or a metadata change: nothing served changes
		}
		delete(s.records, key)
		if old.served {
			s.nserved--
		}
		s.unref(old.fqdn, func(r *nameRefs) { remove(&r.records, key) })
	}
	if rec != nil && s.zoneOf(rec.fqdn) != "" {
		key = s.key(key)
		r := s.refs(rec.fqdn)
		s.records[key] = recordEntry{fqdn: r.name, value: rec.value, ttl: rec.ttl, created: unixNano(rec.created)}
		add(&r.records, key)
		s.dirty[r.name] = struct{}{}
	}
}

func (s *store) putDelegation(key types.NamespacedName, d *delegationIn) {
	if old, ok := s.delegations[key]; ok {
		if d != nil && d.target == old.target && d.claim.Confirmed == old.confirmed && unixNano(d.claim.Created) == old.created {
			return
		}
		delete(s.delegations, key)
		s.unref(old.target, func(r *nameRefs) { remove(&r.delegations, key) })
	}
	if d != nil && d.target != "" && s.zoneOf(d.target) != "" {
		key = s.key(key)
		r := s.refs(d.target)
		s.delegations[key] = delegationEntry{target: r.name, created: unixNano(d.claim.Created), confirmed: d.claim.Confirmed}
		add(&r.delegations, key)
		s.dirty[r.name] = struct{}{}
	}
}

func (s *store) putStatic(key types.NamespacedName, rrs []dns.RR) {
	s.nstatic -= len(s.statics[key])
	for _, rr := range s.statics[key] {
		s.unref(canonical(rr.Header().Name), func(r *nameRefs) {
			if r.statics != nil {
				if remove(r.statics, key); len(*r.statics) == 0 {
					r.statics = nil
				}
			}
		})
	}
	delete(s.statics, key)
	var kept []dns.RR
	for _, rr := range rrs {
		name := canonical(rr.Header().Name)
		if s.zoneOf(name) == "" {
			continue
		}
		kept = append(kept, rr)
		r := s.refs(name)
		if r.statics == nil {
			r.statics = new([]types.NamespacedName)
		}
		add(r.statics, key)
		s.dirty[name] = struct{}{}
	}
	if len(kept) > 0 {
		s.statics[key] = kept
		s.nstatic += len(kept)
	}
}

// goLive publishes the first snapshot (built from everything seen so far) and makes every later
// change publish at once. Called when the informers have synced.
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

// owner returns the namespace that owns a target, by v1alpha1.Claim's rule; ok is false when
// no Delegation names the target.
func (s *store) owner(refs *nameRefs) (ns string, ok bool) {
	var best v1alpha1.Claim
	for _, key := range refs.delegations {
		if c := s.delegations[key].claim(key); !ok || c.Before(best) {
			best, ok = c, true
		}
	}
	return best.Namespace, ok
}

// build computes the node at a canonical name from the stored objects. self reports whether
// the name exists on its own (it has data or is a delegated target).
func (s *store) build(name string, now time.Time) (n *node, self bool) {
	var rrs []dns.RR
	rrs = append(rrs, s.fixed[name]...)
	refs := s.byName[name]
	if refs != nil {
		var statics []types.NamespacedName
		if refs.statics != nil {
			statics = *refs.statics
		}
		for _, key := range statics {
			for _, rr := range s.statics[key] {
				if canonical(rr.Header().Name) == name {
					rrs = append(rrs, rr)
				}
			}
		}
		owner, delegated := s.owner(refs)
		self = delegated
		if len(statics) > 0 || len(s.fixed[name]) > 0 || s.soaTmpl[name].Hdr.Name != "" {
			// The zone's own names (its apex, its name servers, names with ConfigMap
			// records) are nobody's target: TXT records a namespace wrote there would speak
			// for the zone. The controller refuses such a spec.target too.
			delegated = false
		}
		for _, key := range refs.records {
			rec := s.records[key]
			serve := delegated && key.Namespace == owner
			if serve {
				ttl := rec.ttl
				if ttl == 0 {
					ttl = s.defaultTTL
				}
				rrs = append(rrs, &dns.TXT{
					Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
					Txt: []string{rec.value},
				})
				if !rec.served && rec.created > s.since.UnixNano() && s.observe != nil {
					s.observe(now.Sub(time.Unix(0, rec.created)))
				}
			}
			if serve != rec.served {
				rec.served = serve
				s.records[key] = rec
				if serve {
					s.nserved++
				} else {
					s.nserved--
				}
			}
		}
	}
	if len(rrs) == 0 {
		return &node{}, self
	}
	return &node{rrsets: groupRRsets(rrs)}, true
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

// publish rebuilds the nodes of the dirty names (and of their ancestors whose existence
// changed) into copies of the affected shards and swaps the snapshot in.
func (s *store) publish() {
	if len(s.dirty) == 0 && s.snap.Load() != nil {
		return
	}
	now := time.Now()
	old := s.snap.Load()
	next := &snapshot{soa: map[string]*dns.SOA{}}
	if old != nil {
		next.shards = old.shards
	}
	var cloned [shardCount]bool

	// Names whose own existence flips change the empty non-terminals above them.
	touched := map[string]struct{}{}
	built := map[string]*node{}
	for name := range s.dirty {
		touched[name] = struct{}{}
		n, self := s.build(name, now)
		built[name] = n
		if self == s.self[name] {
			continue
		}
		if self {
			s.self[name] = true
		} else {
			delete(s.self, name)
		}
		zone := s.zoneOf(name)
		for a := parent(name); a != "" && len(a) > len(zone); a = parent(a) {
			if self {
				s.desc[a]++
			} else if s.desc[a]--; s.desc[a] <= 0 {
				delete(s.desc, a)
			}
			touched[a] = struct{}{}
		}
	}
	for name := range touched {
		n, ok := built[name]
		if !ok {
			n, _ = s.build(name, now)
		}
		exists := len(n.rrsets) > 0 || s.self[name] || s.desc[name] > 0 || s.soaTmpl[name].Hdr.Name != ""
		i := shardOf(name)
		if !cloned[i] {
			next.shards[i] = maps.Clone(next.shards[i])
			if next.shards[i] == nil {
				next.shards[i] = map[string]*node{}
			}
			cloned[i] = true
		}
		if exists {
			next.shards[i][name] = n
		} else {
			delete(next.shards[i], name)
		}
	}
	if len(s.dirty) > 1024 {
		// clear keeps a map's table: after the initial sync that would be one slot per name.
		s.dirty = map[string]struct{}{}
	} else {
		clear(s.dirty)
	}

	s.serial = max(s.serial+1, uint32(now.Unix()))
	for z, tmpl := range s.soaTmpl {
		soa := tmpl
		soa.Serial = s.serial
		next.soa[z] = &soa
	}
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
