// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// benchSizes are the numbers of delegated targets (each with one ChallengeRecord) the
// benchmarks serve: the hit path must cost the same at both.
var benchSizes = []int{10, 100_000}

var (
	benchMu      sync.Mutex
	benchPlugins = map[int]*ACMEZone{}
)

// benchDomain is the domain of the i-th Delegation of a benchmark store, benchTarget its
// target.
func benchDomain(i int) string { return fmt.Sprintf("d%d.example.com", i) }
func benchTarget(i int) string { return targetOf("bench", benchDomain(i)) }

// benchPlugin returns a plugin whose store holds n Delegations and n ChallengeRecords, filled
// the way the reflectors fill it at start (everything, then one publish). Built once per size:
// sub-benchmarks run their function several times.
func benchPlugin(b *testing.B, n int) *ACMEZone {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if a := benchPlugins[n]; a != nil {
		return a
	}
	a := newTestPlugin(b, testCorefile)
	old := time.Now().Add(-time.Hour)
	for i := range n {
		target := benchTarget(i)
		a.store.addDelegation("", nn("bench", fmt.Sprintf("d%d", i)), deleg(benchDomain(i)))
		a.store.addRecord("", nn("bench", fmt.Sprintf("r%d", i)), &recordIn{fqdn: target, value: fmt.Sprintf("key-%043d", i), created: old})
	}
	a.store.goLive()
	benchPlugins[n] = a
	return a
}

// benchWriter is test.ResponseWriter with its client's address made once, as the server's
// writer has it (test.ResponseWriter makes it on every call, which the plugin does once per
// answer to tell UDP from TCP).
type benchWriter struct {
	test.ResponseWriter
	remote net.Addr
}

func (w *benchWriter) RemoteAddr() net.Addr { return w.remote }

// BenchmarkServeDNS measures one answer from the snapshot: a TXT hit, a NODATA (A at a target
// that has only TXT) and an NXDOMAIN, each with 10 and 100,000 records in the store. Compare
// runs with benchstat; `make bench` keeps its raw output in docs/bench-go.txt.
func BenchmarkServeDNS(b *testing.B) {
	for _, kind := range []struct {
		name  string
		qname func(n int) string
		qtype uint16
		rcode int
		ans   int
	}{
		{"hit", func(n int) string { return benchTarget(n / 2) }, dns.TypeTXT, dns.RcodeSuccess, 1},
		{"nodata", func(n int) string { return benchTarget(n / 2) }, dns.TypeA, dns.RcodeSuccess, 0},
		{"nxdomain", func(int) string { return "nosuch.acme.example.com." }, dns.TypeTXT, dns.RcodeNameError, 0},
	} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/records=%d", kind.name, n), func(b *testing.B) {
				a := benchPlugin(b, n)
				r := new(dns.Msg)
				r.SetQuestion(kind.qname(n), kind.qtype)
				// The answer must be the one this benchmark is named after.
				got := query(b, a, r.Question[0].Name, kind.qtype)
				if got.Rcode != kind.rcode || len(got.Answer) != kind.ans {
					b.Fatalf("%s %s: got rcode %s with %d answers, want %s with %d",
						r.Question[0].Name, dns.TypeToString[kind.qtype], dns.RcodeToString[got.Rcode],
						len(got.Answer), dns.RcodeToString[kind.rcode], kind.ans)
				}
				// The writer drops the reply: this measures the plugin, not the packing and
				// sending of the message.
				w := &benchWriter{remote: (&test.ResponseWriter{}).RemoteAddr()}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := a.ServeDNS(ctx, w, r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkStoreMemory reports what the store keeps per Delegation and its ChallengeRecord,
// filled as the reflectors fill it at start: a list of 100,000 of each, as the API server
// sends it, decoded by decodeList and handed to sink.Replace, then goLive, and listsDropped
// (compact.go) once the lists are gone. The snapshot is included: it is what the server
// holds. After a garbage collection, live-B/pair is the live heap and inuse-B/pair the heap
// in use (the spans that hold it), what the process keeps: more than the live heap when the
// store's objects sit in spans among the sync's dead ones.
func BenchmarkStoreMemory(b *testing.B) {
	const n = 100_000
	const ns = "large"
	targets := make([]string, n)
	for i := range targets {
		targets[i] = targetOf(ns, benchDomain(i))
	}
	bodies := benchLists(b, ns, targets)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC() // twice: a sync.Pool (json.Marshal's buffers) keeps its contents one more cycle
		debug.FreeOSMemory()
		runtime.ReadMemStats(&before)
		a := newTestPlugin(b, testCorefile)
		benchSync(b, a, bodies)
		a.store.listsDropped() // as the reflectors do when they have dropped the lists
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := len(a.store.load().lookup(targets[n/2]).get(dns.TypeTXT, targets[n/2])); got != 1 {
			b.Fatalf("%d TXT records at a target, want 1", got)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "live-B/pair")
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "inuse-B/pair")
		runtime.KeepAlive(a)
		runtime.KeepAlive(bodies) // allocated before, not counted
	}
}

// benchSync fills the store as the reflectors do at start: each list decoded by decodeList
// and handed to a sink, then goLive.
func benchSync(b *testing.B, a *ACMEZone, bodies map[string][]byte) {
	b.Helper()
	for _, resource := range []string{"delegations", "challengerecords"} {
		list, err := decodeList(bytes.NewReader(bodies[resource]), resource)
		if err != nil {
			b.Fatal(err)
		}
		items := make([]any, len(list.Items))
		for i := range list.Items {
			items[i] = &list.Items[i]
		}
		s := &sink{a: a, lw: &lister{resource: resource}, synced: func() {}}
		if err := s.Replace(items, list.ResourceVersion); err != nil {
			b.Fatal(err)
		}
	}
	a.store.goLive()
}

// benchLists returns the JSON list bodies ("delegations", "challengerecords") the API server
// sends for a Delegation in namespace ns at each of targets (a derived target of
// benchDomain(i)) and a ChallengeRecord there, with the metadata it adds.
func benchLists(b *testing.B, ns string, targets []string) map[string][]byte {
	b.Helper()
	created := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	meta := func(name string, i int) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Namespace: ns, Name: name, CreationTimestamp: created,
			UID: types.UID(fmt.Sprintf("6b1f2f5e-2a4c-4f4e-9d3a-%012x", i)), ResourceVersion: fmt.Sprint(1000 + i), Generation: 1,
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "acmezone-controller", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: v1alpha1.GroupVersion.String(),
				Time: &created, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{".":{},"f:fqdn":{},"f:value":{}}}`)},
			}},
		}
	}
	records := &v1alpha1.ChallengeRecordList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
	delegations := &v1alpha1.DelegationList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
	for i, target := range targets {
		value := fmt.Sprintf("key-%039d", i)
		records.Items = append(records.Items, v1alpha1.ChallengeRecord{
			ObjectMeta: meta(v1alpha1.ChallengeRecordName(target, value), i),
			Spec:       v1alpha1.ChallengeRecordSpec{FQDN: target, Value: value},
		})
		delegations.Items = append(delegations.Items, v1alpha1.Delegation{
			ObjectMeta: meta(fmt.Sprintf("d-%07d", i), i),
			Spec:       v1alpha1.DelegationSpec{Domain: benchDomain(i)},
		})
	}
	bodies := map[string][]byte{}
	for resource, list := range map[string]any{"challengerecords": records, "delegations": delegations} {
		body, err := json.Marshal(list)
		if err != nil {
			b.Fatal(err)
		}
		bodies[resource] = body
	}
	return bodies
}
