// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A ConfigMap over a limit is not served at all: over the data size before it is parsed, over
// the static records of its zone as a whole, in the order of namespace and name whatever order
// the ConfigMaps arrive in.
func TestConfigMapLimits(t *testing.T) {
	a := newTestPlugin(t, strings.Replace(testCorefile, "ttl 10", "ttl 10\n\tconfigmap_limits 100 3", 1))
	a.store.goLive()
	served := func(name string) bool {
		return query(t, a, name+".acme.example.com.", dns.TypeA).Rcode == dns.RcodeSuccess
	}
	refused := func(limit string) float64 { return testutil.ToFloat64(configMapsRefused.WithLabelValues(limit)) }

	bytes0 := refused("bytes")
	if set := setConfigMap(a, "acmezone", "big", "acme.example.com", "a IN A 192.0.2.1\n; "+strings.Repeat("x", 100)+"\n"); set != nil {
		t.Errorf("a ConfigMap over 100 bytes was parsed: %+v", set)
	}
	if served("a") || refused("bytes")-bytes0 != 1 {
		t.Errorf("over the size limit: served %v, refusals counted %v", served("a"), refused("bytes")-bytes0)
	}

	records0 := refused("records")
	setConfigMap(a, "acmezone", "second", "acme.example.com", "c IN A 192.0.2.3\nd IN A 192.0.2.4\n")
	setConfigMap(a, "acmezone", "first", "acme.example.com", "a IN A 192.0.2.1\nb IN A 192.0.2.2\n")
	setConfigMap(a, "acmezone", "third", "acme.example.com", "e IN A 192.0.2.5\n")
	// first (2 records) fits, second (2) would make 4 > 3: not served, none of it; third fits.
	for name, want := range map[string]bool{"a": true, "b": true, "c": false, "d": false, "e": true} {
		if served(name) != want {
			t.Errorf("%s served %v, want %v", name, !want, want)
		}
	}
	if n := refused("records") - records0; n != 1 {
		t.Errorf("record-limit refusals counted %v, want 1", n)
	}
	if n := a.store.load().static.nstatic; n != 3 {
		t.Errorf("nstatic %d, want 3", n)
	}
	a.store.setStatic("", nn("acmezone", "first"), nil)
	for name, want := range map[string]bool{"a": false, "c": true, "d": true, "e": true} {
		if served(name) != want {
			t.Errorf("after first is gone: %s served %v, want %v", name, !want, want)
		}
	}
}

// Building the static layer is linear in its records: the time per record with 32,000 records
// is not 32 times that with 1,000, as it was when building from a ConfigMap was quadratic (each
// name read every record of it). The bound is wide, 12 times: a linear build's time per record
// still grows with the maps outgrowing the CPU's caches, and more so on a loaded machine (6
// times was seen), while a quadratic one's grows 32 times.
func TestConfigMapRebuildIsLinear(t *testing.T) {
	if raceEnabled {
		t.Skip("a timing test: the race detector's overhead is not the code's (the plain run has it)")
	}
	a := newTestPlugin(t, strings.Replace(testCorefile, "ttl 10", "ttl 10\n\tconfigmap_limits 10000000 100000", 1))
	s := a.store
	perRecord := func(n int) time.Duration {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "name-%d.a%d IN A 192.0.2.%d\n", i, i%100, i%250+1)
		}
		set := a.configMapRecords(&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: "zone", Labels: map[string]string{ZoneLabel: "acme.example.com"}},
			Data:       map[string]string{"records": b.String()},
		})
		best := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			l := newStaticLayer(s.zones, s.fixed, []*staticSet{set})
			best = min(best, time.Since(start)/time.Duration(n))
			if e := l.entries["name-7.a7.acme.example.com."]; e == nil || e.fixed.get(dns.TypeA) == nil {
				t.Fatalf("%d records: name-7.a7 has no A record", n)
			}
			if e := l.entries["a7.acme.example.com."]; e == nil || !e.exists || e.fixed != nil {
				t.Fatalf("%d records: a7 is not an empty non-terminal: %+v", n, e)
			}
		}
		return best
	}
	small, large := perRecord(1000), perRecord(32000)
	if large > 12*small {
		t.Errorf("building the static layer took %v per record with 32,000 records, %v with 1,000: %.0f times, want far less than 32 (linear)", large, small, float64(large)/float64(small))
	}
}

// The static layer is built outside the store's lock, which is taken only to swap it in: a
// ConfigMap being indexed does not keep ChallengeRecords waiting.
func TestStaticLayerBuiltOutsideTheLock(t *testing.T) {
	a := newTestPlugin(t, strings.Replace(testCorefile, "ttl 10", "ttl 10\n\tconfigmap_limits 10000000 100000", 1))
	s := a.store
	s.goLive()
	target := targetOf("shop", "example.com")
	s.addDelegation("", nn("shop", "d"), deleg("example.com"))

	built := make(chan struct{})
	s.staticBuilt = func() { close(built) }
	s.mu.Lock() // a writer holding the lock: the layer must be built all the same
	done := make(chan struct{})
	go func() {
		defer close(done)
		setConfigMap(a, "acmezone", "zone", "acme.example.com", "www IN A 192.0.2.7\n")
	}()
	select {
	case <-built:
	case <-time.After(10 * time.Second):
		s.mu.Unlock()
		t.Fatal("the static layer was not built while the store's lock was held")
	}
	// The ChallengeRecord written while the layer waits to be swapped in is served with it.
	s.putRecord(idOf(kindRecord, nn("shop", "r")), "shop", &recordIn{fqdn: target, value: "v"}, target, atHint)
	s.mu.Unlock()
	<-done
	s.staticBuilt = nil
	if got := txtValues(s.load(), target); got != "v" {
		t.Errorf("%s serves %q, want \"v\"", target, got)
	}
	if resp := query(t, a, "www.acme.example.com.", dns.TypeA); len(resp.Answer) != 1 {
		t.Errorf("www after the swap: %v", resp.Answer)
	}
}

// TestConcurrentStaticChanges: readers see one static layer at a time. A ConfigMap is
// rewritten (alternately set and relisted) with generation g's values at every one of its
// names; every answer at a static name, and every static name of one snapshot, must be one
// generation's, never an older one after a newer (see readWhileWriting).
func TestConcurrentStaticChanges(t *testing.T) {
	const names = 6
	a := newTestPlugin(t, testCorefile)
	s := a.store
	var static []string
	for i := range names {
		static = append(static, fmt.Sprintf("s%d.sub.acme.example.com.", i))
	}
	cm := func(g int) *corev1.ConfigMap {
		var b strings.Builder
		for i := range names {
			for _, v := range genValues(g) {
				fmt.Fprintf(&b, "s%d.sub IN TXT %q\n", i, v)
			}
		}
		return &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: "zone", Labels: map[string]string{ZoneLabel: "acme.example.com"}},
			Data:       map[string]string{"records": b.String()},
		}
	}
	write := func(g int) {
		set := a.configMapRecords(cm(g))
		if g%2 == 0 {
			s.setStatic("", nn("acmezone", "zone"), set)
		} else {
			s.replaceStatic("", "acmezone", map[typesNN]*staticSet{nn("acmezone", "zone"): set})
		}
	}
	write(0)
	s.goLive()
	last := readWhileWriting(t, a, static, write)
	if n, want := s.load().static.nstatic, names*len(genValues(last)); n != want {
		t.Errorf("nstatic %d after the last generation, want %d", n, want)
	}
}
