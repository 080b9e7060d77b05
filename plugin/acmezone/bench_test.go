package acmezone

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

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
		a.store.addDelegation(nn("bench", fmt.Sprintf("d%d", i)), deleg(benchDomain(i)))
		a.store.addRecord(nn("bench", fmt.Sprintf("r%d", i)), &recordIn{fqdn: target, value: fmt.Sprintf("key-%043d", i), created: old})
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

// BenchmarkStoreMemory reports the live heap the store keeps per Delegation and its
// ChallengeRecord (live-B/pair), filled through the reflectors' path (sink.Replace with listed
// items whose strings are fresh, as decoded), after a garbage collection. The snapshot is
// included: it is what the server holds.
func BenchmarkStoreMemory(b *testing.B) {
	const n = 100_000
	targets := make([]string, n)
	for i := range targets {
		targets[i] = targetOf("large", benchDomain(i))
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a := newTestPlugin(b, testCorefile)
		old := time.Now().Add(-time.Hour)
		records := make([]any, n)
		delegations := make([]any, n)
		for i := range n {
			target := strings.Clone(targets[i])
			records[i] = &item{key: nn(fmt.Sprint("large"), fmt.Sprintf("txt-%040x", i)), record: &recordIn{fqdn: target, value: fmt.Sprintf("key-%039d", i), created: old}}
			delegations[i] = &item{key: nn(fmt.Sprint("large"), fmt.Sprintf("d-%07d", i)), delegation: &delegationIn{claim: v1alpha1.TargetClaim{Namespace: "large", Domain: benchDomain(i)}}}
		}
		for _, k := range []struct {
			resource string
			list     []any
		}{{"delegations", delegations}, {"challengerecords", records}} {
			s := &sink{a: a, lw: &lister{resource: k.resource}, synced: func() {}}
			if err := s.Replace(k.list, "1"); err != nil {
				b.Fatal(err)
			}
		}
		records, delegations = nil, nil
		a.store.goLive()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := len(a.store.load().lookup(targets[n/2]).get(dns.TypeTXT)); got != 1 {
			b.Fatalf("%d TXT records at a target, want 1", got)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "live-B/pair")
		runtime.KeepAlive(a)
	}
}
