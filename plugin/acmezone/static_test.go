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
	if a.store.nstatic != 3 {
		t.Errorf("nstatic %d, want 3", a.store.nstatic)
	}
	a.store.setStatic(nn("acmezone", "first"), nil)
	for name, want := range map[string]bool{"a": false, "c": true, "d": true, "e": true} {
		if served(name) != want {
			t.Errorf("after first is gone: %s served %v, want %v", name, !want, want)
		}
	}
}

// Building the snapshot from a ConfigMap is linear in its records: building one name reads
// the records at that name only, however large the ConfigMap (it read every record of it,
// which made a rebuild quadratic).
func TestConfigMapRebuildIsLinear(t *testing.T) {
	if raceEnabled {
		t.Skip("a timing test: the race detector's overhead is not the code's (the plain run has it)")
	}
	a := newTestPlugin(t, strings.Replace(testCorefile, "ttl 10", "ttl 10\n\tconfigmap_limits 10000000 100000", 1))
	a.store.goLive()
	s := a.store
	const name = "name-7.acme.example.com."
	perBuild := func(n int) time.Duration {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "name-%d IN A 192.0.2.%d\n", i, i%250+1)
		}
		s.setStatic(nn("acmezone", "zone"), a.configMapRecords(&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: "zone", Labels: map[string]string{ZoneLabel: "acme.example.com"}},
			Data:       map[string]string{"records": b.String()},
		}))
		s.mu.Lock()
		defer s.mu.Unlock()
		e := s.edit(name, false)
		best := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			for range 200 {
				s.build(e, start)
			}
			best = min(best, time.Since(start)/200)
		}
		if e.fixed.get(dns.TypeA) == nil {
			t.Fatalf("%s has no A record", name)
		}
		s.publish()
		return best
	}
	small, large := perBuild(1000), perBuild(32000)
	if large > 4*small {
		t.Errorf("building one name took %v with 32,000 static records, %v with 1,000: %.0f times, want about the same", large, small, float64(large)/float64(small))
	}
}
