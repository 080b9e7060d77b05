// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// Compaction of what the initial sync built: store.compact, called once per start when every
// reflector has dropped its first list (listsDropped, from reflectors.go).
//
// Go's collector never moves an object: it stays in the span (a run of pages holding objects
// of one size) it was allocated in, and a span is freed, and its pages returned to the OS, only
// when every object in it is dead. The initial sync allocates the store's objects (an entry,
// its slots, a name, a value: a few per record) among many more short-lived objects of the
// same sizes (the decoded lists and their items, the target derivation's hashing), so when
// those die the store's objects keep the spans they shared in use: after the sync the heap in
// use is far above the live heap, and under load the collector's headroom comes on top of
// that. compact copies the entries, with their slots, names and values, into five allocations
// (entries, record slots, Delegation slots, names, values) and into shard maps made at their
// size, and publishes the copies; the spans of the originals then die whole.
//
// The copies are entries like any other: compact is a change that changes no answer.
//
//   - It copies the published snapshot, which nothing writes, without the lock, and takes
//     the lock only to swap the copies in when that snapshot is still the last published
//     one: then the writer's shards are the snapshot's (live, every change publishes).
//   - It publishes the copies as a new snapshot, with the last one's SOA records (the zone's
//     content, and so its serial, is the same); readers of the last snapshot keep its entries.
//   - Each entry's slots are a part of an array shared with other entries. The first change
//     to a copy copies it and its slots (store.edit), as for any published entry; and the
//     part's capacity ends at the entry's last slot (carve), so that even an append to it
//     would reallocate rather than write the next entry's slots.
//   - A name (a shard's key) and a value are substrings of one string each; strings are never
//     written. desc's keys are copied too.
//   - An allocation lives while any part of it is reachable: the names while any name of the
//     initial sync is held, the values while any of its records is held unchanged. At worst
//     the store keeps what the initial sync built next to what replaced it, as large as the
//     store was then; it never grows beyond that.

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// listsDropped is called once per start, when every reflector has dropped its first list.
// Everything the lists decoded and the store did not keep is garbage then: at 100,000 records
// more than the store itself. It is collected first, so that the store's copies take its
// place rather than new memory; what is left, the lists' and the originals' spans, goes back
// to the OS at once: the collector would not free it before its next cycle (its goal still
// counts the lists as live), and the scavenger then only at its own pace. Two collections,
// once per start.
func (s *store) listsDropped() {
	runtime.GC()
	s.compact()
	debug.FreeOSMemory()
}

// compact replaces the published entries by copies in a few large allocations and publishes
// them. It copies from the published snapshot, which nothing writes, outside the lock, and
// takes the lock only to swap the copies in, if nothing was published meanwhile; else it
// tries again, a few times (changes are rare right after the sync, and compacting is only
// an optimisation). It reports whether it swapped.
func (s *store) compact() bool {
	for range 3 {
		last := s.snap.Load()
		if last == nil {
			return false
		}
		shards := compactShards(&last.shards)
		if s.compactCopied != nil {
			s.compactCopied()
		}
		s.mu.Lock()
		// Live, every change publishes at once, so an unchanged snapshot means the writer's
		// shards are still the published ones, unowned, and nothing is dirty.
		if s.live && s.snap.Load() == last && len(s.dirty) == 0 {
			s.shards = shards
			// desc's keys are substrings of the originals' names: copies release them.
			desc := make(map[string]int, len(s.desc))
			for name, n := range s.desc {
				desc[strings.Clone(name)] = n
			}
			s.desc = desc
			next := *last // the same static layer and SOA records: the same content
			next.shards = shards
			s.snap.Store(&next)
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
	}
	return false
}

// compactShards copies every entry of the shards, with its slots, name and values, into a
// few large allocations, and returns new shard maps holding the copies.
func compactShards(from *[shardCount]map[string]*entry) (shards [shardCount]map[string]*entry) {
	var nentries, nrecs, ndels, nnames, nvalues int
	for _, shard := range from {
		for name, e := range shard {
			nentries++
			nrecs += len(e.recs)
			ndels += len(e.dels)
			nnames += len(name)
			for i := range e.recs {
				nvalues += len(e.recs[i].txt[0])
			}
		}
	}
	entries := make([]entry, 0, nentries)
	recs := make([]recSlot, 0, nrecs)
	dels := make([]delSlot, 0, ndels)
	names, values := newStringPack(nnames), newStringPack(nvalues)
	for i, shard := range from {
		if shard == nil {
			continue
		}
		shards[i] = make(map[string]*entry, len(shard))
		for name, old := range shard {
			entries = append(entries, *old)
			e := &entries[len(entries)-1]
			e.recs = carve(&recs, old.recs)
			for j := range e.recs {
				e.recs[j].txt[0] = values.add(e.recs[j].txt[0])
			}
			e.dels = carve(&dels, old.dels)
			shards[i][names.add(name)] = e
		}
	}
	return shards
}

// carve appends src to *array and returns the appended part, its capacity ending at its last
// element, or nil for an empty src. *array is made with room for all its parts, so it is never
// reallocated (if it were, the parts carved before would keep the old array: still correct).
func carve[T any](array *[]T, src []T) []T {
	if len(src) == 0 {
		return nil
	}
	n := len(*array)
	*array = append(*array, src...)
	return (*array)[n:len(*array):len(*array)]
}

// stringPack copies strings into one allocation and returns each copy as a substring of it.
type stringPack struct{ b strings.Builder }

// newStringPack returns a pack with room for size bytes of strings.
func newStringPack(size int) *stringPack {
	p := &stringPack{}
	p.b.Grow(size)
	return p
}

// add copies v into the pack. A Builder never changes the bytes it has written, and String
// shares them without copying, so the substring stays v's copy whatever is added after it
// (past the room it was made with, the Builder reallocates: still correct, only not packed).
func (p *stringPack) add(v string) string {
	n := p.b.Len()
	p.b.WriteString(v)
	return p.b.String()[n:]
}
