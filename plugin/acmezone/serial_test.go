// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSerialFollowsResourceVersion: the serial is the highest resourceVersion applied, or
// one more than the last serial when that is not higher (a lagging watch), in RFC 1982
// arithmetic; a resourceVersion that is not a number turns it to the clock.
func TestSerialFollowsResourceVersion(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	s := a.store
	serial := func() uint32 { return s.load().soa["acme.example.com."].Serial }
	tgt := targetOf("ns", "d.example")
	s.replace("1000", "ns", objects{delegations: map[typesNN]*delegationIn{nn("ns", "d"): deleg("d.example")}})
	s.goLive()
	if got := serial(); got != 1000 {
		t.Fatalf("after the initial list at resourceVersion 1000: serial %d, want 1000", got)
	}
	steps := []struct {
		rv   string
		want uint32
	}{
		{"1005", 1005}, // a watch event
		{"1003", 1006}, // another kind's watch lags: one more
		{"1004", 1007},
		{"2000", 2000},
		{"", 2001},                 // no version known
		{"2147485000", 2147485000}, // serial arithmetic moves less than 2^31 at a time
		{"4294967000", 4294967000},
		{fmt.Sprint(1<<32 + 7), 7}, // past 2^32: 7 is newer than 4294967000 in serial arithmetic
		{fmt.Sprint(1<<32 + 7), 8}, // the same version again: one more
		{fmt.Sprint(1<<32 + 1000), 1000},
	}
	for i, st := range steps {
		s.addRecord(st.rv, nn("ns", fmt.Sprintf("r%d", i)), &recordIn{fqdn: tgt, value: fmt.Sprintf("v%d", i)})
		if got := serial(); got != st.want {
			t.Errorf("Test %d: resourceVersion %q: serial %d, want %d", i, st.rv, got, st.want)
		}
	}
	before := time.Now().Unix()
	s.addRecord("opaque-version", nn("ns", "opaque"), &recordIn{fqdn: tgt, value: "opaque"})
	if got := serial(); int64(got) < before {
		t.Errorf("after an opaque resourceVersion: serial %d, want the clock (%d or later)", got, before)
	}
	last := serial()
	big := uint64(999999999999)
	s.addRecord(fmt.Sprint(big), nn("ns", "after-opaque"), &recordIn{fqdn: tgt, value: "after-opaque"})
	if got := serial(); !serialNewer(got, last) {
		t.Errorf("after an opaque resourceVersion the serial went from %d to %d", last, got)
	}
	if got := serial(); got == uint32(big) {
		t.Errorf("after an opaque resourceVersion the serial follows resourceVersions again (%d)", got)
	}
}

// TestSerialAgreesAcrossReplicas: two stores that applied the same changes, one event at a
// time and as one relist, serve the same serial; a store started later (a relist at a later
// resourceVersion) never serves a lower serial for newer content.
func TestSerialAgreesAcrossReplicas(t *testing.T) {
	one, two := newTestPlugin(t, testCorefile).store, newTestPlugin(t, testCorefile).store
	tgt := targetOf("ns", "d.example")
	del := map[typesNN]*delegationIn{nn("ns", "d"): deleg("d.example")}
	one.replace("10", "ns", objects{delegations: del})
	one.goLive()
	recs := map[typesNN]*recordIn{}
	for i := range 50 {
		rec := &recordIn{fqdn: tgt, value: fmt.Sprintf("v%d", i)}
		recs[nn("ns", fmt.Sprintf("r%d", i))] = rec
		one.addRecord(fmt.Sprint(11+i), nn("ns", fmt.Sprintf("r%d", i)), rec)
	}
	// A replica started now lists everything at once, at the last resourceVersion.
	two.replace("60", "ns", objects{delegations: del})
	two.replace("60", "ns", objects{records: recs})
	two.goLive()
	s1, s2 := one.load().soa["acme.example.com."].Serial, two.load().soa["acme.example.com."].Serial
	if s1 != s2 || s1 != 60 {
		t.Errorf("the same content: serial %d on the first replica, %d on the second; want 60 on both", s1, s2)
	}
	one.deleteRecord("61", nn("ns", "r0"), nil)
	two.deleteRecord("61", nn("ns", "r0"), nil)
	n1, n2 := one.load().soa["acme.example.com."].Serial, two.load().soa["acme.example.com."].Serial
	if n1 != n2 || !serialNewer(n1, s1) {
		t.Errorf("after one more change: serials %d and %d, want equal and newer than %d", n1, n2, s1)
	}
}

// ixfrResult applies an IXFR answer to the zone at the old serial (records without the SOA,
// in text form) and returns the zone it describes, sorted, and whether it was incremental.
func ixfrResult(t testing.TB, old []string, rrs []dns.RR) (zone []string, incremental bool) {
	t.Helper()
	if len(rrs) == 0 || rrs[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("IXFR answer does not start with the SOA: %v", rrs)
	}
	if len(rrs) == 1 {
		return old, false
	}
	if rrs[1].Header().Rrtype != dns.TypeSOA { // the whole zone
		for _, rr := range rrs[1 : len(rrs)-1] {
			zone = append(zone, rr.String())
		}
		slices.Sort(zone)
		return zone, false
	}
	have := map[string]bool{}
	for _, rr := range old {
		have[rr] = true
	}
	adding := true // the next SOA starts deletions
	for _, rr := range rrs[1 : len(rrs)-1] {
		if rr.Header().Rrtype == dns.TypeSOA {
			adding = !adding
			continue
		}
		if !adding && !have[rr.String()] {
			t.Errorf("IXFR deletes %s, which the old zone does not hold", rr)
		}
		if adding && have[rr.String()] {
			t.Errorf("IXFR adds %s, which the old zone holds already", rr)
		}
		have[rr.String()] = adding
	}
	for rr, ok := range have {
		if ok {
			zone = append(zone, rr)
		}
	}
	slices.Sort(zone)
	return zone, true
}

// transferred runs a.Transfer and returns the records it sends.
func transferred(t testing.TB, a *ACMEZone, serial uint32) []dns.RR {
	t.Helper()
	ch, err := a.Transfer("acme.example.com.", serial)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for set := range ch {
		rrs = append(rrs, set...)
	}
	return rrs
}

// axfrZone is the zone of a full transfer: its records but the SOA, in text form, sorted.
func axfrZone(t testing.TB, a *ACMEZone) (serial uint32, zone []string) {
	t.Helper()
	rrs := transferred(t, a, 0)
	for _, rr := range rrs[1 : len(rrs)-1] {
		zone = append(zone, rr.String())
	}
	slices.Sort(zone)
	return rrs[0].(*dns.SOA).Serial, zone
}

// TestIXFR: an IXFR from a serial the journal holds is the difference, which applied to the
// zone at that serial gives the zone now; from an older serial it is the whole zone.
func TestIXFR(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	a.store.journal = newJournal(defaultJournalSteps)
	fill(t, a)
	s := a.store
	s0, z0 := axfrZone(t, a)
	// Every kind of change: records come and go, a Delegation goes, a TTL changes, static
	// data changes, a record is added and removed again.
	s.addRecord("", nn("shop", "k3"), &recordIn{fqdn: shopTarget, value: "third-key"})
	s.deleteRecord("", nn("shop", "k2"), nil)
	s1, z1 := axfrZone(t, a)
	s.addRecord("", nn("shop", "short"), &recordIn{fqdn: shopTarget, value: "short-ttl", ttl: 3})
	s.deleteDelegation("", nn("shop", "migrated"), nil)
	setConfigMap(a, "kube-system", "static", "acme.example.com", "www 300 IN A 192.0.2.11\nnew 300 IN A 192.0.2.12\n")
	s.addRecord("", nn("shop", "brief"), &recordIn{fqdn: shopTarget, value: "brief"})
	s.deleteRecord("", nn("shop", "brief"), nil)
	s2, z2 := axfrZone(t, a)
	if slices.Equal(z0, z2) || slices.Equal(z1, z2) {
		t.Fatal("the changes changed nothing")
	}
	for i, from := range []struct {
		serial uint32
		zone   []string
	}{{s0, z0}, {s1, z1}} {
		got, incremental := ixfrResult(t, from.zone, transferred(t, a, from.serial))
		if !incremental {
			t.Errorf("Test %d: IXFR from %d (now %d) is not incremental", i, from.serial, s2)
		}
		if !slices.Equal(got, z2) {
			t.Errorf("Test %d: IXFR from %d applied gives\n%v\nwant\n%v", i, from.serial, got, z2)
		}
	}
	if rrs := transferred(t, a, s2); len(rrs) != 1 {
		t.Errorf("IXFR from the current serial: %d records, want the SOA", len(rrs))
	}
	if rrs := transferred(t, a, s2+5); len(rrs) != 1 {
		t.Errorf("IXFR from a newer serial (another replica's): %d records, want the SOA", len(rrs))
	}
	got, incremental := ixfrResult(t, nil, transferred(t, a, s0-1))
	if incremental || !slices.Equal(got, z2) {
		t.Errorf("IXFR from a serial the journal does not hold: incremental %v, zone %v; want the whole zone %v", incremental, got, z2)
	}
}

// TestJournalIsBounded: the journal keeps its last steps, and no more records than its bound.
func TestJournalIsBounded(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	a.store.journal = newJournal(3)
	fill(t, a)
	s := a.store
	var serials []uint32
	for i := range 5 {
		serials = append(serials, s.load().soa["acme.example.com."].Serial)
		s.addRecord("", nn("shop", fmt.Sprintf("n%d", i)), &recordIn{fqdn: shopTarget, value: fmt.Sprintf("new-%d", i)})
	}
	for i, serial := range serials {
		_, incremental := ixfrResult(t, nil, transferred(t, a, serial))
		if want := i >= 2; incremental != want {
			t.Errorf("Test %d: IXFR from %d, %d changes back: incremental %v, want %v", i, serial, 5-i, incremental, want)
		}
	}
	// At most maxRRs records: the oldest steps go first; a step larger alone empties it.
	s.journal.maxRRs, s.journal.maxSteps = 3, 100
	s.addRecord("", nn("shop", "n5"), &recordIn{fqdn: shopTarget, value: "new-5"}) // 1 record
	s.addRecord("", nn("shop", "n6"), &recordIn{fqdn: shopTarget, value: "new-6", ttl: 3})
	// a smaller TTL: every TXT record of the name deleted and added with it
	if n := len(s.load().journal); n != 0 || s.journal.rrs != 0 {
		t.Errorf("a step over the record bound: journal has %d steps, %d records; want none", n, s.journal.rrs)
	}
	for i := 7; i < 11; i++ { // a record each
		s.addRecord("", nn("shop", fmt.Sprintf("n%d", i)), &recordIn{fqdn: emptyTarget, value: fmt.Sprintf("new-%d", i)})
	}
	if n := len(s.load().journal); n != 3 || s.journal.rrs != 3 {
		t.Errorf("journal bounded at 3 records: %d steps, %d records; want the last 3 steps", n, s.journal.rrs)
	}
}
