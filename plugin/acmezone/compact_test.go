// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCompactionIsInvisible checks that compacting what the initial sync built (compact.go)
// changes no answer, and that the compacted entries stay copy-on-write, their slots sharing
// one array: every entry gets a record added and one removed, and the snapshots published
// before still answer as before while the new one answers as a store that never compacted.
func TestCompactionIsInvisible(t *testing.T) {
	const n = 40
	tgt := func(i int) string { return targetOf("ns", fmt.Sprintf("d%d.example", i)) }
	var names []string
	for i := range n + 1 {
		names = append(names, tgt(i), "_acme-challenge.sub"+fmt.Sprint(i)+".acme.example.com.")
	}
	fill := func(a *ACMEZone) {
		for i := range n {
			a.store.addDelegation("", nn("ns", fmt.Sprintf("d%d", i)), deleg(fmt.Sprintf("d%d.example", i)))
			for k := range 1 + i%3 {
				a.store.addRecord("", nn("ns", fmt.Sprintf("r%d-%d", i, k)), &recordIn{fqdn: tgt(i), value: fmt.Sprintf("v%d-%d", i, k)})
			}
			// Not delegated: held, not served; its name exists only as an ancestor.
			a.store.addRecord("", nn("ns", fmt.Sprintf("u%d", i)), &recordIn{fqdn: names[2*i+1], value: "unserved"})
		}
		a.store.addRecord("", nn("ns", "outside"), &recordIn{fqdn: "example.org.", value: "placeless"})
	}
	change := func(a *ACMEZone) {
		for i := range n {
			a.store.addRecord("", nn("ns", fmt.Sprintf("r%d-new", i)), &recordIn{fqdn: tgt(i), value: fmt.Sprintf("w%d", i)})
			a.store.deleteRecord("", nn("ns", fmt.Sprintf("r%d-0", i)), nil)
		}
		a.store.addDelegation("", nn("ns", "late"), deleg("d40.example"))
		a.store.addRecord("", nn("ns", "late"), &recordIn{fqdn: tgt(n), value: "late"})
	}
	answers := func(s *snapshot) map[string]string {
		m := map[string]string{}
		for _, name := range names {
			m[name] = txtValues(s, name)
		}
		return m
	}

	plain := newTestPlugin(t, testCorefile) // live from the start: nothing to compact
	plain.store.goLive()
	fill(plain)
	compacted := newTestPlugin(t, testCorefile)
	fill(compacted)
	compacted.store.goLive()
	before := compacted.store.load()
	if !compacted.store.compact() {
		t.Fatal("compact did not swap the copies in")
	}
	first := compacted.store.load()
	if first == before {
		t.Fatal("compact published no snapshot")
	}
	if first.soa["acme.example.com."].Serial != before.soa["acme.example.com."].Serial {
		t.Error("compact changed the SOA serial; the zone's content is the same")
	}

	want := answers(plain.store.load())
	if want[tgt(1)] != "v1-0,v1-1" {
		t.Fatalf("the store without compaction serves %q at %s, want \"v1-0,v1-1\"", want[tgt(1)], tgt(1))
	}
	for _, snap := range []*snapshot{before, first} {
		for name, got := range answers(snap) {
			if got != want[name] {
				t.Errorf("compacted: %s serves %q, want %q", name, got, want[name])
			}
		}
	}

	change(plain)
	change(compacted)
	for _, snap := range []*snapshot{before, first} {
		for name, got := range answers(snap) {
			if got != want[name] {
				t.Errorf("a snapshot changed at %s: %q, was %q", name, got, want[name])
			}
		}
	}
	want = answers(plain.store.load())
	if want[tgt(1)] != "v1-1,w1" {
		t.Fatalf("after the changes the store without compaction serves %q at %s, want \"v1-1,w1\"", want[tgt(1)], tgt(1))
	}
	for name, got := range answers(compacted.store.load()) {
		if got != want[name] {
			t.Errorf("after the changes: %s serves %q, want %q", name, got, want[name])
		}
	}
	if p, c := plain.store.nserved, compacted.store.nserved; p != c {
		t.Errorf("%d records served after compaction, %d without", c, p)
	}
}

// TestCompactionKeepsConcurrentChanges checks that a change published while compact copies
// the entries is not lost: compact copies again, and the swapped-in copies hold the change.
func TestCompactionKeepsConcurrentChanges(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	tgt := targetOf("ns", "d.example")
	a.store.addDelegation("", nn("ns", "d"), deleg("d.example"))
	a.store.addRecord("", nn("ns", "r1"), &recordIn{fqdn: tgt, value: "v1"})
	a.store.goLive()
	copies := 0
	a.store.compactCopied = func() {
		if copies++; copies == 1 {
			a.store.addRecord("", nn("ns", "r2"), &recordIn{fqdn: tgt, value: "v2"})
		}
	}
	if !a.store.compact() {
		t.Fatal("compact did not swap the copies in")
	}
	if copies != 2 {
		t.Errorf("compact copied %d times, want 2: once before the change, once after", copies)
	}
	if got := txtValues(a.store.load(), tgt); got != "v1,v2" {
		t.Errorf("after compact: %q, want \"v1,v2\"", got)
	}
	a.store.addRecord("", nn("ns", "r3"), &recordIn{fqdn: tgt, value: "v3"})
	if got := txtValues(a.store.load(), tgt); got != "v1,v2,v3" {
		t.Errorf("a change after compact: %q, want \"v1,v2,v3\"", got)
	}
}

// TestCompactionWhileReadingAndWriting runs compact over and over while the writer changes the
// store and readers read it (readWhileWriting): no answer may come from a state that was never
// published or go back to an older one, as a swap of copies made before a change would. Run
// with -race (make test does): compact copies the entries without the lock.
func TestCompactionWhileReadingAndWriting(t *testing.T) {
	const names = 8
	a := newTestPlugin(t, testCorefile)
	s := a.store
	targets := delegateTargets(s, names)
	write := func(g int) {
		recs := map[typesNN]*recordIn{}
		for i, target := range targets {
			for k, v := range genValues(g) {
				recs[nn("ns", fmt.Sprintf("r%d-%d", i, k))] = &recordIn{fqdn: target, value: v}
			}
		}
		s.replace("", "ns", objects{records: recs})
	}
	write(0)
	s.goLive()
	var (
		wg    sync.WaitGroup
		stop  = make(chan struct{})
		swaps atomic.Int32
	)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if s.compact() {
				swaps.Add(1)
			}
		}
	})
	last := readWhileWriting(t, a, targets, write)
	close(stop)
	wg.Wait()
	if swaps.Load() == 0 {
		t.Error("compact never swapped its copies in while the writer wrote: the test checked nothing")
	}
	if want := names * len(genValues(last)); s.nserved != want {
		t.Errorf("nserved %d after the last generation, want %d", s.nserved, want)
	}
	for _, target := range targets {
		if got, want := txtValues(s.load(), target), strings.Join(genValues(last), ","); got != want {
			t.Errorf("at %s after the last generation: %q, want %q", target, got, want)
		}
	}
}
