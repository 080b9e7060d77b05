// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
)

// txtValues returns the TXT values a snapshot serves at name, "NXDOMAIN" when the name does
// not exist.
func txtValues(s *snapshot, name string) string {
	e := s.lookup(name)
	if e == nil {
		return "NXDOMAIN"
	}
	var vs []string
	for _, rr := range e.get(dns.TypeTXT, name) {
		vs = append(vs, strings.Join(rr.(*dns.TXT).Txt, " "))
	}
	return strings.Join(vs, ",")
}

// TestPublishedSnapshotsNeverChange checks the copy-on-write rule: a snapshot a reader holds
// answers the same however the store changes afterwards, while the new snapshot shows the
// changes.
func TestPublishedSnapshotsNeverChange(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	tgt := func(i int) string { return targetOf("ns", fmt.Sprintf("d%d.example", i)) }
	for i := range 50 {
		a.store.updateDelegation("", nn("ns", fmt.Sprintf("d%d", i)), deleg(fmt.Sprintf("d%d.example", i)))
		a.store.updateRecord("", nn("ns", fmt.Sprintf("r%d", i)), &recordIn{fqdn: tgt(i), value: fmt.Sprintf("v%d", i)})
	}
	a.store.goLive()
	first := a.store.load()
	want := map[string]string{}
	for i := range 51 {
		want[tgt(i)] = txtValues(first, tgt(i))
	}
	if want[tgt(7)] != "v7" || want[tgt(50)] != "NXDOMAIN" {
		t.Fatalf("before the changes: t7 %q, t50 %q", want[tgt(7)], want[tgt(50)])
	}

	// Every kind of change: a second value, a removed record, a removed Delegation, a new
	// name, a record moved to another name, another namespace's Delegation placed at a target
	// by a proof signed by mistake, a relist.
	a.store.updateRecord("", nn("ns", "r7b"), &recordIn{fqdn: tgt(7), value: "a7"})
	a.store.deleteRecord("", nn("ns", "r8"), nil)
	a.store.deleteDelegation("", nn("ns", "d9"), nil)
	a.store.updateDelegation("", nn("ns", "d50"), deleg("d50.example"))
	a.store.updateRecord("", nn("ns", "r50"), &recordIn{fqdn: tgt(50), value: "v50"})
	a.store.updateRecord("", nn("ns", "r11"), &recordIn{fqdn: tgt(12), value: "v11"})
	a.store.updateDelegation("", nn("other", "d13"), pinned("x.example", tgt(13), testKey.Proof("other", "x.example", tgt(13))))
	a.store.replace("", "ns", objects{records: map[typesNN]*recordIn{}}) // a relist: no records left in ns

	for name, w := range want {
		if got := txtValues(first, name); got != w {
			t.Errorf("the first snapshot changed at %s: %q, was %q", name, got, w)
		}
	}
	now := a.store.load()
	for name, w := range map[string]string{
		tgt(7):  "",         // delegated, its records gone with the relist
		tgt(9):  "NXDOMAIN", // Delegation gone
		tgt(50): "",
		tgt(13): "", // two namespaces placed there: nobody's records
	} {
		if got := txtValues(now, name); got != w {
			t.Errorf("the new snapshot at %s: %q, want %q", name, got, w)
		}
	}
}

// typesNN shortens objects' key type in the tests.
type typesNN = types.NamespacedName

// TestDuplicateValuesAnswerOnce checks that two ChallengeRecords with one value give one TXT
// record, and that a record of a namespace that does not own the name neither shows up nor
// hides the owner's record of the same value.
func TestDuplicateValuesAnswerOnce(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	target := targetOf("owner", "dup.example")
	a.store.updateDelegation("", nn("owner", "d"), deleg("dup.example"))
	a.store.updateDelegation("", nn("late", "d"), pinned("dup.example", target, ""))
	a.store.updateRecord("", nn("late", "r"), &recordIn{fqdn: target, value: "same", ttl: 1})
	a.store.updateRecord("", nn("owner", "r1"), &recordIn{fqdn: target, value: "same", ttl: 300})
	a.store.updateRecord("", nn("owner", "r2"), &recordIn{fqdn: target, value: "same", ttl: 200})
	a.store.updateRecord("", nn("owner", "r3"), &recordIn{fqdn: target, value: "other", ttl: 400})
	a.store.goLive()
	ans := query(t, a, target, dns.TypeTXT).Answer
	var got []string
	for _, rr := range ans {
		got = append(got, fmt.Sprintf("%s/%d", rr.(*dns.TXT).Txt[0], rr.Header().Ttl))
	}
	// One RRset, one TTL: the smallest of the owner's records (RFC 2181 section 5.2).
	if want := []string{"other/200", "same/200"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	a.store.deleteRecord("", nn("owner", "r1"), nil)
	a.store.deleteRecord("", nn("owner", "r2"), nil)
	if got := txtValues(a.store.load(), target); got != "other" {
		t.Errorf("after deleting the owner's duplicates: %q, want \"other\"", got)
	}
}

// delegateTargets delegates n domains (c0.example, c1.example, ...) in namespace "ns" and
// returns their targets, in order: the names the concurrency tests write and read.
func delegateTargets(s *store, n int) []string {
	targets := make([]string, n)
	for i := range targets {
		domain := fmt.Sprintf("c%d.example", i)
		targets[i] = targetOf("ns", domain)
		s.addDelegation("", nn("ns", fmt.Sprintf("d%d", i)), deleg(domain))
	}
	return targets
}

// TestConcurrentReadsAndWrites checks what readers are promised while the store changes: every
// answer comes from exactly one published state, and a reader never goes back to an older
// one (see readWhileWriting). Generation g serves genValues(g) at every target, written as
// one change: alternately a relist and a batch of puts and removes, which move values between
// slots, grow and shrink entries. Run with -race (make test does) to also catch
// unsynchronised access the answers do not show.
func TestConcurrentReadsAndWrites(t *testing.T) {
	const names = 8
	a := newTestPlugin(t, testCorefile)
	s := a.store
	targets := delegateTargets(s, names)
	recKey := func(i, k int) typesNN { return nn("ns", fmt.Sprintf("r%d-%d", i, k)) }
	write := func(g int) {
		if g%2 == 0 {
			recs := map[typesNN]*recordIn{}
			for i, target := range targets {
				for k, v := range genValues(g) {
					recs[recKey(i, k)] = &recordIn{fqdn: target, value: v}
				}
			}
			s.replace("", "ns", objects{records: recs})
			return
		}
		s.change("", func() {
			for i, target := range targets {
				vs := genValues(g)
				for k := range 3 {
					id := idOf(kindRecord, recKey(i, k))
					if k < len(vs) {
						s.putRecord(id, "ns", &recordIn{fqdn: target, value: vs[k]}, target, everywhere)
					} else {
						s.removeRecord(id, target, everywhere)
					}
				}
			}
		})
	}
	write(0)
	s.goLive()
	last := readWhileWriting(t, a, targets, write)
	if want := names * len(genValues(last)); s.nserved != want {
		t.Errorf("nserved %d after the last generation, want %d", s.nserved, want)
	}
}

// genValues are the TXT values generation g of a concurrency test serves at each of its
// names: one to three, each naming g.
func genValues(g int) []string {
	var vs []string
	for k := range g%3 + 1 {
		vs = append(vs, fmt.Sprintf("g%06d-%d", g, k))
	}
	return vs
}

// generationOf returns the generation whose values vals (one name's TXT values, as served)
// are, or an error when they are no generation's.
func generationOf(vals []string) (int, error) {
	var g int
	if len(vals) == 0 {
		return 0, fmt.Errorf("no values")
	}
	if _, err := fmt.Sscanf(vals[0], "g%d-", &g); err != nil {
		return 0, fmt.Errorf("%q is no value the writer wrote", vals[0])
	}
	if want := genValues(g); !slices.Equal(vals, want) {
		return 0, fmt.Errorf("%q is no published state (generation %d serves %q)", vals, g, want)
	}
	return g, nil
}

// readWhileWriting calls write(g) for g = 1, 2, ... (the caller wrote generation 0 and made
// the store live) while three readers check what readers are promised: reader 0 that one
// snapshot serves one generation at every one of names, the others that every answer
// (through ServeDNS) at one name is exactly one generation's values; and no reader ever sees
// an older generation after a newer one. It writes until every reader has seen 10
// generations, and at least 200, and returns the last generation written.
func readWhileWriting(t *testing.T, a *ACMEZone, names []string, write func(g int)) int {
	t.Helper()
	const readers = 3
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		started sync.WaitGroup
		seen    [readers]atomic.Int32 // generations each reader saw
	)
	txt := func(rrs []dns.RR) []string {
		var vals []string
		for _, rr := range rrs {
			if t, ok := rr.(*dns.TXT); ok {
				vals = append(vals, t.Txt[0])
			}
		}
		return vals
	}
	started.Add(readers)
	for r := range readers {
		wg.Go(func() {
			last := -1
			// check checks that g, read at what, is a published state no older than the last
			// one this reader saw.
			check := func(g int, err error, what string) bool {
				if err == nil && g < last {
					err = fmt.Errorf("generation %d after %d", g, last)
				}
				if err != nil {
					t.Errorf("reader %d, %s: %v", r, what, err)
					return false
				}
				if g != last {
					seen[r].Add(1)
				}
				last = g
				return true
			}
			for i := 0; ; i++ {
				if i == 1 {
					started.Done()
				}
				select {
				case <-stop:
					return
				default:
				}
				if r == 0 {
					// One snapshot, every name: one generation throughout.
					snap := a.store.load()
					gens := map[int][]string{}
					var err error
					for _, name := range names {
						var vals []string
						if e := snap.lookup(name); e != nil {
							vals = txt(e.get(dns.TypeTXT, name))
						}
						g, gerr := generationOf(vals)
						if gerr != nil {
							err = fmt.Errorf("at %s: %w", name, gerr)
							break
						}
						gens[g] = append(gens[g], name)
					}
					if err == nil && len(gens) > 1 {
						err = fmt.Errorf("generations %v in one snapshot", gens)
					}
					g := -1
					for k := range gens {
						g = k // the one generation, unless err says otherwise
					}
					if !check(g, err, "one snapshot") {
						return
					}
					continue
				}
				name := names[i%len(names)]
				g, err := generationOf(txt(query(t, a, name, dns.TypeTXT).Answer))
				if !check(g, err, "answer at "+name) {
					return
				}
			}
		})
	}
	started.Wait()
	// Write until every reader has seen several generations: the test must watch changes
	// being published, however the scheduler runs it.
	enough := func() bool {
		for r := range readers {
			if seen[r].Load() < 10 {
				return false
			}
		}
		return true
	}
	g := 1
	for ; g <= 200 || (!enough() && g <= 100_000 && !t.Failed()); g++ {
		write(g)
	}
	close(stop)
	wg.Wait()
	for r := range readers {
		if n := seen[r].Load(); n < 10 {
			t.Errorf("reader %d saw %d generations of %d, want at least 10", r, n, g)
		}
	}
	return g - 1
}

// TestObjectsAreFoundWhereTheyAre checks how the store finds objects without a map of them:
// at the name their state gives, among the placeless ones, and by a walk only when one moved.
func TestObjectsAreFoundWhereTheyAre(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	s := a.store
	s.goLive()
	t1, t2 := targetOf("ns", "one.example"), targetOf("ns", "two.example")
	walks := func(step string, want int) {
		t.Helper()
		if s.walks != want {
			t.Fatalf("%s: %d walks over all entries, want %d", step, s.walks, want)
		}
	}
	serves := func(step, name, want string) {
		t.Helper()
		if got := txtValues(s.load(), name); got != want {
			t.Fatalf("%s: %s serves %q, want %q", step, name, got, want)
		}
	}

	// A Delegation whose spec.target is not its own is held, placeless; it is placed when an
	// update removes spec.target.
	s.addDelegation("", nn("ns", "d1"), pinned("one.example", t2, ""))
	s.updateDelegation("", nn("ns", "d1"), pinned("one.example", t2, "")) // a status change
	s.updateDelegation("", nn("ns", "d1"), deleg("one.example"))
	s.addDelegation("", nn("ns", "d2"), deleg("two.example"))
	s.updateDelegation("", nn("ns", "d2"), deleg("Two.Example.")) // the same target: in place
	s.addRecord("", nn("ns", "r"), &recordIn{fqdn: t1, value: "v"})
	s.updateRecord("", nn("ns", "r"), &recordIn{fqdn: t1, value: "v2"}) // in place
	s.addRecord("", nn("ns", "far"), &recordIn{fqdn: "x.other.example.", value: "far"})
	s.updateRecord("", nn("ns", "far"), &recordIn{fqdn: "x.other.example.", value: "far2"})
	walks("adds and in-place updates", 0)
	serves("after the adds", t1, "v2")
	if len(s.placeless) != 1 {
		t.Fatalf("%d placeless objects, want 1 (the record outside the zones)", len(s.placeless))
	}

	// A record moved to another name: found by a walk, served at the new name only.
	s.updateRecord("", nn("ns", "r"), &recordIn{fqdn: t2, value: "v2"})
	walks("a moved record", 1)
	serves("after the move", t1, "")
	serves("after the move", t2, "v2")

	// The record outside the zones moves in; a delete whose last state is stale still finds
	// its object.
	s.updateRecord("", nn("ns", "far"), &recordIn{fqdn: t1, value: "far"})
	walks("a placeless record placed", 1)
	serves("after placing", t1, "far")
	s.deleteRecord("", nn("ns", "far"), &recordIn{fqdn: t2})
	walks("a delete with a stale state", 2)
	serves("after the delete", t1, "")
	s.deleteRecord("", nn("ns", "r"), &recordIn{fqdn: t2})
	s.deleteDelegation("", nn("ns", "d2"), deleg("two.example"))
	walks("deletes with the right state", 2)
	serves("after the deletes", t2, "NXDOMAIN")
	if len(s.placeless) != 0 {
		t.Errorf("%d placeless objects left, want 0", len(s.placeless))
	}
}

// TestRelistMovesAndRemoves checks a relist of one namespace: moved, new, unchanged and gone
// objects, placeless ones included, and nothing of another namespace touched.
func TestRelistMovesAndRemoves(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	s := a.store
	elsewhere := targetOf("x", "elsewhere.example")
	for _, ns := range []string{"a", "b"} {
		target := targetOf(ns, "d.example")
		s.addDelegation("", nn(ns, "d"), deleg("d.example"))
		s.addDelegation("", nn(ns, "pending"), pinned("p.example", elsewhere, "")) // not its own: placeless
		s.addRecord("", nn(ns, "stay"), &recordIn{fqdn: target, value: ns + "-stay"})
		s.addRecord("", nn(ns, "move"), &recordIn{fqdn: elsewhere, value: ns + "-move"})
		s.addRecord("", nn(ns, "gone"), &recordIn{fqdn: target, value: ns + "-gone"})
		s.addRecord("", nn(ns, "far"), &recordIn{fqdn: "x.other.example.", value: ns + "-far"})
	}
	s.goLive()
	aTarget, bTarget := targetOf("a", "d.example"), targetOf("b", "d.example")
	s.replace("", "a", objects{records: map[typesNN]*recordIn{
		nn("a", "stay"): {fqdn: aTarget, value: "a-stay"},
		nn("a", "move"): {fqdn: aTarget, value: "a-move"},
		nn("a", "new"):  {fqdn: aTarget, value: "a-new"},
	}})
	s.replace("", "a", objects{delegations: map[typesNN]*delegationIn{
		nn("a", "d"): deleg("d.example"),
	}})
	if s.walks != 0 {
		t.Errorf("the relists walked all entries %d times, want 0", s.walks)
	}
	for name, want := range map[string]string{
		aTarget: "a-move,a-new,a-stay",
		bTarget: "b-gone,b-stay",
	} {
		if got := txtValues(s.load(), name); got != want {
			t.Errorf("%s serves %q, want %q", name, got, want)
		}
	}
	// b's record outside the zones and b's pending Delegation are all that is placeless.
	var kinds []string
	for _, p := range s.placeless {
		kinds = append(kinds, fmt.Sprintf("%s/%c", s.nsNames[p.ns], p.kind))
	}
	slices.Sort(kinds)
	if want := []string{"b/d", "b/r"}; !slices.Equal(kinds, want) {
		t.Errorf("placeless after the relists: %v, want %v", kinds, want)
	}
	if e := s.shards[shardOf(elsewhere)][elsewhere]; e == nil || len(e.recs) != 1 {
		t.Errorf("%s should hold only b's moved record, holds %+v", elsewhere, e)
	}
}

// TestMaxValues: at most max_values values at one name, the newest kept (a value is as new as
// its newest record), each capping logged and counted; below the cap everything is served.
func TestMaxValues(t *testing.T) {
	a := newTestPlugin(t, strings.Replace(testCorefile, "ttl 10", "ttl 10\n\tmax_values 3", 1))
	s := a.store
	target := targetOf("shop", "example.com")
	s.updateDelegation("", nn("shop", "d"), deleg("example.com"))
	base := time.Now().Add(-time.Hour)
	add := func(name, value string, age int) {
		s.updateRecord("", nn("shop", name), &recordIn{fqdn: target, value: value, created: base.Add(-time.Duration(age) * time.Minute)})
	}
	add("a", "v-oldest", 50)
	add("b", "v-old", 40)
	add("c", "v-new", 10)
	s.goLive()
	if got := txtValues(s.load(), target); got != "v-new,v-old,v-oldest" {
		t.Fatalf("three values under a cap of 3: %q", got)
	}
	before := testutil.ToFloat64(valuesCapped)
	add("d", "v-newest", 1)
	if got := txtValues(s.load(), target); got != "v-new,v-newest,v-old" {
		t.Errorf("four values: %q, want the three newest", got)
	}
	// An old value with one new record is new; a record of another namespace counts for nothing.
	add("e", "v-oldest", 0)
	s.updateRecord("", nn("blog", "x"), &recordIn{fqdn: target, value: "v-blog", created: base})
	if got := txtValues(s.load(), target); got != "v-new,v-newest,v-oldest" {
		t.Errorf("after a new record of v-oldest: %q", got)
	}
	if n := testutil.ToFloat64(valuesCapped) - before; n < 2 {
		t.Errorf("cappings counted: %v, want one per rebuild that capped (2)", n)
	}
	if e := s.load().lookup(target); e.ttl == 0 {
		t.Error("the TXT RRset has no TTL")
	}
	// The served count follows the cap.
	if s.nserved != 4 {
		t.Errorf("nserved %d, want 4 (two records of v-oldest, v-new, v-newest)", s.nserved)
	}
}

// TestChallengeValuesAreChecked: values that are not 1 to 255 bytes of printable ASCII are
// never served, whatever wrote them; a backslash reaches the wire as a backslash.
func TestChallengeValuesAreChecked(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	s := a.store
	target := targetOf("shop", "example.com")
	s.updateDelegation("", nn("shop", "d"), deleg("example.com"))
	for i, v := range []string{"", "bell\x07", "line\nbreak", "del\x7f", "é", strings.Repeat("x", 256)} {
		s.updateRecord("", nn("shop", fmt.Sprint("bad", i)), &recordIn{fqdn: target, value: v})
	}
	s.updateRecord("", nn("shop", "escape"), &recordIn{fqdn: target, value: `\007`})
	s.updateRecord("", nn("shop", "max"), &recordIn{fqdn: target, value: strings.Repeat("x", 255)})
	s.goLive()
	resp := query(t, a, target, dns.TypeTXT)
	wire, err := resp.Pack()
	if err != nil {
		t.Fatal(err)
	}
	back := new(dns.Msg)
	if err := back.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rr := range back.Answer {
		got = append(got, rr.(*dns.TXT).Txt[0])
	}
	// Unpacked, a backslash is shown escaped (\\) and any other byte that is not printable
	// as \DDD: the wire held the four bytes \007, and no BEL.
	if want := []string{`\\007`, strings.Repeat("x", 255)}; !slices.Equal(got, want) {
		t.Errorf("served %q, want %q", got, want)
	}
	// A bad value later corrected is served: it was held, placeless.
	s.updateRecord("", nn("shop", "bad1"), &recordIn{fqdn: target, value: "bell"})
	if got := txtValues(s.load(), target); !strings.Contains(got, "bell") {
		t.Errorf("after the correction: %q", got)
	}
}
