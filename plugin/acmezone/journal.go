// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// The IXFR journal: the differences between the last published serials, so that a secondary
// close enough behind fetches only what changed (RFC 1995).
//
// It is kept only when the server block has the transfer plugin (store.journal is nil
// otherwise, and publish does no work for it). Each publish records one step, from the
// serial before it to the new one, computed from the names that publish rebuilt (the dirty
// entries) and, when the static layer was swapped, the names of the old and the new layer:
// never from a walk over the whole zone.
//
// Invariants:
//
//   - The steps are consecutive: steps[i].to == steps[i+1].from, and the last step's to is
//     the published snapshot's serial. A snapshot carries the steps as of its publish (a
//     slice the writer only appends to past its end, or cuts at its front), so a transfer
//     reads the journal and the snapshot of one moment.
//   - A step's del holds the records of the names it looked at that the older snapshot
//     served and the newer does not; add the reverse (a changed TTL is both). Records are
//     compared by their text form. The SOA is in no step.
//   - At most maxSteps steps and maxRRs records in all are kept, the oldest dropped first; a
//     step larger than maxRRs alone leaves it empty (then only a current secondary gets less
//     than the whole zone).

import (
	"slices"

	"github.com/miekg/dns"
)

// Journal bounds: the last defaultJournalSteps serials, and never more than maxJournalRRs
// records in all.
const (
	defaultJournalSteps = 100
	maxJournalSteps     = 10000
	maxJournalRRs       = 10000
)

// journal is the store's IXFR journal (under store.mu).
type journal struct {
	maxSteps int
	maxRRs   int
	steps    []journalStep
	rrs      int // records in steps
}

// journalStep is the difference from serial from to serial to, over every zone of the store
// (the zone of a record is that of its owner name).
type journalStep struct {
	from, to uint32
	del, add []dns.RR
}

func newJournal(steps int) *journal {
	return &journal{maxSteps: steps, maxRRs: maxJournalRRs}
}

// record adds the step from serial from (the last snapshot, nil at the first publish, which
// starts the journal afresh) to serial to (next), looking at the names changed and, when the
// static layer changed, at its names. It returns the steps for next to carry.
func (j *journal) record(last, next *snapshot, changed []string, from, to uint32) []journalStep {
	if last == nil {
		j.steps, j.rrs = nil, 0
		return nil
	}
	step := journalStep{from: from, to: to}
	seen := map[string]bool{}
	look := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		del, add := diffRRs(recordsAt(last, name), recordsAt(next, name))
		step.del = append(step.del, del...)
		step.add = append(step.add, add...)
	}
	for _, name := range changed {
		look(name)
	}
	if last.static != next.static {
		for name := range last.static.entries {
			look(name)
		}
		for name := range next.static.entries {
			look(name)
		}
	}
	j.steps = append(j.steps, step)
	j.rrs += len(step.del) + len(step.add)
	drop := 0
	for len(j.steps)-drop > j.maxSteps || j.rrs > j.maxRRs {
		j.rrs -= len(j.steps[drop].del) + len(j.steps[drop].add)
		drop++
	}
	// Not cleared: snapshots still being transferred may hold them. The array is
	// reallocated, without them, once appends reach its end.
	j.steps = j.steps[drop:]
	return j.steps[:len(j.steps):len(j.steps)]
}

// recordsAt is every record the snapshot serves at the canonical name, as a transfer sends them.
func recordsAt(snap *snapshot, name string) []dns.RR {
	e := snap.lookup(name)
	if e == nil {
		return nil
	}
	var rrs []dns.RR
	for _, set := range e.sets(name) {
		rrs = append(rrs, set...)
	}
	return rrs
}

// diffRRs returns the records of old that new lacks and those of new that old lacks.
func diffRRs(old, new []dns.RR) (del, add []dns.RR) {
	if len(old) == 0 && len(new) == 0 {
		return nil, nil
	}
	oldKeys := make(map[string]bool, len(old))
	for _, rr := range old {
		oldKeys[rr.String()] = true
	}
	newKeys := make(map[string]bool, len(new))
	for _, rr := range new {
		k := rr.String()
		newKeys[k] = true
		if !oldKeys[k] {
			add = append(add, rr)
		}
	}
	for _, rr := range old {
		if !newKeys[rr.String()] {
			del = append(del, rr)
		}
	}
	return del, add
}

// difference condenses the steps from serial to the snapshot's into one difference of zone
// (records deleted, records added, each in text order); ok is false when the journal does not
// reach back to serial.
func (s *snapshot) difference(zone string, serial uint32, zoneOf func(string) string) (del, add []dns.RR, ok bool) {
	i := slices.IndexFunc(s.journal, func(st journalStep) bool { return st.from == serial })
	if i < 0 {
		return nil, nil, false
	}
	dels, adds := map[string]dns.RR{}, map[string]dns.RR{}
	// note records rrs of zone in these, unless the opposite holds them since serial (added
	// and deleted again, or deleted and added back): then they cancel out.
	note := func(rrs []dns.RR, these, opposite map[string]dns.RR) {
		for _, rr := range rrs {
			if zoneOf(rr.Header().Name) != zone {
				continue
			}
			k := rr.String()
			if _, ok := opposite[k]; ok {
				delete(opposite, k)
			} else {
				these[k] = rr
			}
		}
	}
	for _, st := range s.journal[i:] {
		note(st.del, dels, adds)
		note(st.add, adds, dels)
	}
	return sortedRRs(dels), sortedRRs(adds), true
}

func sortedRRs(m map[string]dns.RR) []dns.RR {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	rrs := make([]dns.RR, len(keys))
	for i, k := range keys {
		rrs[i] = m[k]
	}
	return rrs
}
