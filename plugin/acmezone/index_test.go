package acmezone

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
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
	for _, rr := range e.get(dns.TypeTXT) {
		vs = append(vs, strings.Join(rr.(*dns.TXT).Txt, " "))
	}
	return strings.Join(vs, ",")
}

// TestPublishedSnapshotsNeverChange checks the copy-on-write rule: a snapshot a reader holds
// answers the same however the store changes afterwards, while the new snapshot shows the
// changes.
func TestPublishedSnapshotsNeverChange(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	old := time.Now().Add(-time.Hour)
	for i := range 50 {
		target := fmt.Sprintf("t%d.acme.example.com.", i)
		a.store.setDelegation(nn("ns", fmt.Sprintf("d%d", i)), &delegationIn{target: target, claim: claim(old)})
		a.store.setRecord(nn("ns", fmt.Sprintf("r%d", i)), &recordIn{fqdn: target, value: fmt.Sprintf("v%d", i)})
	}
	a.store.goLive()
	first := a.store.load()
	want := map[string]string{}
	for i := range 51 {
		name := fmt.Sprintf("t%d.acme.example.com.", i)
		want[name] = txtValues(first, name)
	}
	if want["t7.acme.example.com."] != "v7" || want["t50.acme.example.com."] != "NXDOMAIN" {
		t.Fatalf("before the changes: t7 %q, t50 %q", want["t7.acme.example.com."], want["t50.acme.example.com."])
	}

	// Every kind of change: a second value, a removed record, a removed Delegation, a new
	// name, a record moved to another name, an older claim from another namespace.
	a.store.setRecord(nn("ns", "r7b"), &recordIn{fqdn: "t7.acme.example.com.", value: "a7"})
	a.store.setRecord(nn("ns", "r8"), nil)
	a.store.setDelegation(nn("ns", "d9"), nil)
	a.store.setDelegation(nn("ns", "d50"), &delegationIn{target: "t50.acme.example.com.", claim: claim(old)})
	a.store.setRecord(nn("ns", "r50"), &recordIn{fqdn: "t50.acme.example.com.", value: "v50"})
	a.store.setRecord(nn("ns", "r11"), &recordIn{fqdn: "t12.acme.example.com.", value: "v11"})
	a.store.setDelegation(nn("other", "d13"), &delegationIn{target: "t13.acme.example.com.", claim: claim(old.Add(-time.Hour))})
	a.store.replace("ns", objects{records: map[typesNN]*recordIn{}}) // a relist: no records left in ns

	for name, w := range want {
		if got := txtValues(first, name); got != w {
			t.Errorf("the first snapshot changed at %s: %q, was %q", name, got, w)
		}
	}
	now := a.store.load()
	for name, w := range map[string]string{
		"t7.acme.example.com.":  "",         // delegated, its records gone with the relist
		"t9.acme.example.com.":  "NXDOMAIN", // Delegation gone
		"t50.acme.example.com.": "",
		"t13.acme.example.com.": "", // owned by "other" now, which has no records
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
	target := "dup.acme.example.com."
	a.store.setDelegation(nn("owner", "d"), &delegationIn{target: target, claim: claim(time.Now().Add(-time.Hour))})
	a.store.setDelegation(nn("late", "d"), &delegationIn{target: target, claim: claim(time.Now())})
	a.store.setRecord(nn("late", "r"), &recordIn{fqdn: target, value: "same", ttl: 1})
	a.store.setRecord(nn("owner", "r1"), &recordIn{fqdn: target, value: "same", ttl: 300})
	a.store.setRecord(nn("owner", "r2"), &recordIn{fqdn: target, value: "same", ttl: 200})
	a.store.setRecord(nn("owner", "r3"), &recordIn{fqdn: target, value: "other", ttl: 400})
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
	a.store.setRecord(nn("owner", "r1"), nil)
	a.store.setRecord(nn("owner", "r2"), nil)
	if got := txtValues(a.store.load(), target); got != "other" {
		t.Errorf("after deleting the owner's duplicates: %q, want \"other\"", got)
	}
}

// TestConcurrentReadsAndWrites runs queries while the store changes; run with -race.
func TestConcurrentReadsAndWrites(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	for i := range 20 {
		a.store.setDelegation(nn("ns", fmt.Sprintf("d%d", i)), &delegationIn{target: fmt.Sprintf("c%d.acme.example.com.", i)})
	}
	a.store.goLive()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := query(t, a, fmt.Sprintf("c%d.acme.example.com.", i%20), dns.TypeTXT)
				for _, rr := range m.Answer {
					if v := rr.(*dns.TXT).Txt[0]; !strings.HasPrefix(v, "v") {
						t.Errorf("served %q", v)
					}
				}
			}
		})
	}
	for i := range 2000 {
		key := nn("ns", fmt.Sprintf("r%d", i%50))
		if i%3 == 2 {
			a.store.setRecord(key, nil)
		} else {
			a.store.setRecord(key, &recordIn{fqdn: fmt.Sprintf("c%d.acme.example.com.", i%20), value: fmt.Sprintf("v%d", i)})
		}
	}
	close(stop)
	wg.Wait()
}

// TestObjectsAreFoundWhereTheyAre checks how the store finds objects without a map of them:
// at the name their state gives, among the placeless ones, and by a walk only when one moved.
func TestObjectsAreFoundWhereTheyAre(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	s := a.store
	s.goLive()
	old := time.Now().Add(-time.Hour)
	t1, t2 := "one.acme.example.com.", "two.acme.example.com."
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

	// A Delegation without a target yet is held, placeless; its target comes with an update.
	s.addDelegation(nn("ns", "d1"), &delegationIn{target: "", claim: claim(old)})
	s.setDelegation(nn("ns", "d1"), &delegationIn{target: "", claim: confirmed(claim(old))}) // a status change
	s.setDelegation(nn("ns", "d1"), &delegationIn{target: t1, claim: confirmed(claim(old))})
	s.addDelegation(nn("ns", "d2"), &delegationIn{target: t2, claim: claim(old)})
	s.addRecord(nn("ns", "r"), &recordIn{fqdn: t1, value: "v"})
	s.setRecord(nn("ns", "r"), &recordIn{fqdn: t1, value: "v2"}) // in place
	s.addRecord(nn("ns", "far"), &recordIn{fqdn: "x.other.example.", value: "far"})
	s.setRecord(nn("ns", "far"), &recordIn{fqdn: "x.other.example.", value: "far2"})
	walks("adds and in-place updates", 0)
	serves("after the adds", t1, "v2")
	if len(s.placeless) != 1 {
		t.Fatalf("%d placeless objects, want 1 (the record outside the zones)", len(s.placeless))
	}

	// A record moved to another name: found by a walk, served at the new name only.
	s.setRecord(nn("ns", "r"), &recordIn{fqdn: t2, value: "v2"})
	walks("a moved record", 1)
	serves("after the move", t1, "")
	serves("after the move", t2, "v2")

	// The record outside the zones moves in; a delete whose last state is stale still finds
	// its object.
	s.setRecord(nn("ns", "far"), &recordIn{fqdn: t1, value: "far"})
	walks("a placeless record placed", 1)
	serves("after placing", t1, "far")
	s.deleteRecord(nn("ns", "far"), &recordIn{fqdn: t2})
	walks("a delete with a stale state", 2)
	serves("after the delete", t1, "")
	s.deleteRecord(nn("ns", "r"), &recordIn{fqdn: t2})
	s.deleteDelegation(nn("ns", "d2"), &delegationIn{target: t2})
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
	old := time.Now().Add(-time.Hour)
	for _, ns := range []string{"a", "b"} {
		s.addDelegation(nn(ns, "d"), &delegationIn{target: ns + ".acme.example.com.", claim: claim(old)})
		s.addDelegation(nn(ns, "pending"), &delegationIn{claim: claim(old)})
		s.addRecord(nn(ns, "stay"), &recordIn{fqdn: ns + ".acme.example.com.", value: ns + "-stay"})
		s.addRecord(nn(ns, "move"), &recordIn{fqdn: "elsewhere.acme.example.com.", value: ns + "-move"})
		s.addRecord(nn(ns, "gone"), &recordIn{fqdn: ns + ".acme.example.com.", value: ns + "-gone"})
		s.addRecord(nn(ns, "far"), &recordIn{fqdn: "x.other.example.", value: ns + "-far"})
	}
	s.goLive()
	s.replace("a", objects{records: map[typesNN]*recordIn{
		nn("a", "stay"): {fqdn: "a.acme.example.com.", value: "a-stay"},
		nn("a", "move"): {fqdn: "a.acme.example.com.", value: "a-move"},
		nn("a", "new"):  {fqdn: "a.acme.example.com.", value: "a-new"},
	}})
	s.replace("a", objects{delegations: map[typesNN]*delegationIn{
		nn("a", "d"): {target: "a.acme.example.com.", claim: claim(old)},
	}})
	if s.walks != 0 {
		t.Errorf("the relists walked all entries %d times, want 0", s.walks)
	}
	for name, want := range map[string]string{
		"a.acme.example.com.": "a-move,a-new,a-stay",
		"b.acme.example.com.": "b-gone,b-stay",
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
	if e := s.shards[shardOf("elsewhere.acme.example.com.")]["elsewhere.acme.example.com."]; e == nil || len(e.recs) != 1 {
		t.Errorf("elsewhere.acme.example.com. should hold only b's moved record, holds %+v", e)
	}
}

// TestInZoneAgreesWithMiekg checks the allocation-free zone match against dns.IsSubDomain.
func TestInZoneAgreesWithMiekg(t *testing.T) {
	zones := []string{".", "com.", "example.com.", "acme.example.com."}
	names := []string{
		".", "com.", "example.com.", "acme.example.com.", "x.acme.example.com.", "a.b.acme.example.com.",
		"xacme.example.com.", "cme.example.com.", "example.org.", "acme.example.com.evil.",
		`a\.acme.example.com.`, `a\\.acme.example.com.`, `a\\\.acme.example.com.`, `acme\.example.com.`,
		`x.acme\.example.com.`, "e.", "m.",
	}
	for _, z := range zones {
		for _, n := range names {
			if got, want := inZone(z, n), dns.IsSubDomain(z, n); got != want {
				t.Errorf("inZone(%q, %q) = %v, dns.IsSubDomain says %v", z, n, got, want)
			}
		}
	}
}
