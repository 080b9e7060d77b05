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
