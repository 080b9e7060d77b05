package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// results is everything one run of the harness measured.
type results struct {
	opts              options
	started, finished time.Time
	machine           machine
	createTime        time.Duration
	loadAtSync        string
	loadBefore        string
	loadAfter         string
	servers           []*server // file, small, large
	prop              *propagation
	runs              []perfRun
	profiles          []profileResult
	heapTop           string
	heapLive          int64
	storeBytes        float64 // BenchmarkStoreMemory's live-B/pair, median; 0 when not run
	storeRuns         int
	heapShares        map[string]float64
	syncTop           string
	syncShares        map[string]float64
	gobench           []*goBench
	benchstat         string
	churn             *churnResult // ConfigMap churn; nil when not run
}

type machine struct {
	nproc, cpu, memTotal, kernel   string
	goVersion, coredns, dnsperf    string
	kubeAPIServer, etcd, startLoad string
}

func machineInfo(coredns string) machine {
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	m := machine{
		nproc:         first("nproc"),
		goVersion:     first("go", "version"),
		coredns:       first(coredns, "-version"),
		dnsperf:       dnsperfVersion(),
		kubeAPIServer: first(filepath.Join(filepath.Dir(coredns), "kube-apiserver"), "--version"),
		etcd:          first(filepath.Join(filepath.Dir(coredns), "etcd"), "--version"),
		cpu:           procField("/proc/cpuinfo", "model name"),
		memTotal:      procField("/proc/meminfo", "MemTotal"),
		startLoad:     loadavg(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

func (m machine) memory() string {
	var kb int64
	if _, err := fmt.Sscanf(m.memTotal, "%d kB", &kb); err != nil {
		return m.memTotal
	}
	return fmt.Sprintf("%.1f GB", float64(kb)/1e6*1.024)
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile is the nearest-rank percentile p (0 < p ≤ 100).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// count writes n with thousands separators: 100,010.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

// qps returns the QPS of every run of server and workload, in run order.
func (r *results) qps(server, workload string) []float64 {
	var v []float64
	for _, run := range r.runs {
		if run.server == server && run.workload == workload {
			v = append(v, run.qps)
		}
	}
	return v
}

func (r *results) medianOf(server, workload string, f func(perfRun) float64) float64 {
	var v []float64
	for _, run := range r.runs {
		if run.server == server && run.workload == workload {
			v = append(v, f(run))
		}
	}
	return median(v)
}

// ratios returns, round by round, the QPS of (server, workload) over the QPS of (base,
// baseWorkload) in the same round. Runs of one round are at most a few minutes apart, so a
// change in the machine's load cancels out of the ratio.
func (r *results) ratios(server, workload, base, baseWorkload string) []float64 {
	byRound := map[int]float64{}
	for _, run := range r.runs {
		if run.server == base && run.workload == baseWorkload {
			byRound[run.round] = run.qps
		}
	}
	var v []float64
	for _, run := range r.runs {
		if b := byRound[run.round]; run.server == server && run.workload == workload && b > 0 {
			v = append(v, run.qps/b)
		}
	}
	return v
}

// ratio is the median of the per-round ratios of server to base for one workload.
func (r *results) ratio(server, base, workload string) float64 {
	return median(r.ratios(server, workload, base, workload))
}

func (r *results) file() *server  { return r.servers[0] }
func (r *results) small() *server { return r.servers[1] }
func (r *results) large() *server { return r.servers[2] }

// goal is one line of the targets table.
type goal struct {
	what, measured string
	met            bool
	miss           string // by how much, when missed
}

func yes(met bool) string {
	if met {
		return "yes"
	}
	return "**no**"
}

// targets evaluates the targets against the results.
func (r *results) targets() []goal {
	file, small, large := r.file(), r.small(), r.large()
	var ts []goal
	for _, w := range []struct{ name, what string }{{"hit", "TXT hit"}, {"nxdomain", "NXDOMAIN"}} {
		rs, rl := r.ratio(small.label, file.label, w.name), r.ratio(large.label, file.label, w.name)
		worst := min(rs, rl)
		t := goal{
			what:     fmt.Sprintf("%s QPS ≥ 1.2× the stock `file` plugin, same run", w.what),
			measured: fmt.Sprintf("%.2f× (%s records), %.2f× (%s records)", rs, count(small.records), rl, count(large.records)),
			met:      worst >= 1.2,
		}
		if !t.met {
			t.miss = fmt.Sprintf("%.0f%% short of 1.2× (%.2f× at worst)", (1-worst/1.2)*100, worst)
		}
		ts = append(ts, t)
	}
	rss := max(large.afterSync.RSS, large.afterLoad.RSS)
	t := goal{
		what:     fmt.Sprintf("%s records: RSS ≤ 150 MB", count(large.records)),
		measured: fmt.Sprintf("%s after sync, %s after the dnsperf runs (peak %s during the initial list)", mb(large.afterSync.RSS), mb(large.afterLoad.RSS), mb(large.afterLoad.HWM)),
		met:      rss <= 150e6,
	}
	if !t.met {
		t.miss = fmt.Sprintf("%s over (%.1f× the target)", mb(rss-150e6), float64(rss)/150e6)
	}
	ts = append(ts, t)
	t = goal{
		what:     fmt.Sprintf("%s records: initial sync ≤ 10 s", count(large.records)),
		measured: fmt.Sprintf("%s to the first correct answer (%s to ready)", ms(large.syncTime), ms(large.readyTime)),
		met:      large.syncTime <= 10*time.Second,
	}
	if !t.met {
		t.miss = fmt.Sprintf("%s over", ms(large.syncTime-10*time.Second))
	}
	ts = append(ts, t)
	for _, w := range []struct{ name, what string }{{"hit", "TXT hit"}, {"nxdomain", "NXDOMAIN"}} {
		q10, qBig := median(r.qps(small.label, w.name)), median(r.qps(large.label, w.name))
		ratio := r.ratio(large.label, small.label, w.name)
		t := goal{
			what:     fmt.Sprintf("%s records: %s QPS within 10%% of the %d-record figure", count(large.records), w.what, small.records),
			measured: fmt.Sprintf("%+.1f%% (medians %.0f vs %.0f qps)", (ratio-1)*100, qBig, q10),
			met:      ratio >= 0.9,
		}
		if !t.met {
			t.miss = fmt.Sprintf("%.1f%% below, %.1f points past the 10%% allowed", (1-ratio)*100, (0.9-ratio)*100)
		}
		ts = append(ts, t)
	}
	var worst time.Duration
	var parts []string
	for _, s := range []*server{small, large} {
		p99 := percentile(r.prop.answers[s.label], 99)
		worst = max(worst, p99)
		parts = append(parts, fmt.Sprintf("%s (%s records)", ms(p99), count(s.records)))
	}
	t = goal{
		what:     "Propagation p99 ≤ 100 ms from the API write to the answer",
		measured: strings.Join(parts, ", "),
		met:      worst <= 100*time.Millisecond,
	}
	if !t.met {
		t.miss = fmt.Sprintf("%s over", ms(worst-100*time.Millisecond))
	}
	ts = append(ts, t)
	t = goal{what: "The hit path's allocations do not grow with the number of records"}
	a, b := findBench(r.gobench, fmt.Sprintf("BenchmarkServeDNS/hit/records=%d", 10)), findBench(r.gobench, fmt.Sprintf("BenchmarkServeDNS/hit/records=%d", 100000))
	if a == nil || b == nil {
		t.measured = "not measured: run the Go benchmarks and pass their output with -gobench (make bench does)"
		t.miss = "not measured"
	} else {
		t.measured = fmt.Sprintf("%.0f allocs/op, %.0f B/op (10 records); %.0f allocs/op, %.0f B/op (100,000 records)",
			median(a.allocOp), median(a.bytesOp), median(b.allocOp), median(b.bytesOp))
		t.met = median(b.allocOp) <= median(a.allocOp) && median(b.bytesOp) <= median(a.bytesOp)
		if !t.met {
			t.miss = fmt.Sprintf("%.0f more allocations per query", median(b.allocOp)-median(a.allocOp))
		}
	}
	ts = append(ts, t)
	if r.churn != nil {
		ts = append(ts, r.churn.goals()...)
	}
	return ts
}

// writeReport writes the Markdown report to path.
func writeReport(path string, r *results) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.opts
	file, small, large := r.file(), r.small(), r.large()

	p("# Benchmarks\n\n")
	p("Generated by `make bench` (the harness in [`e2e/bench`](../e2e/bench)) on %s UTC in %s. Do not edit by\n", r.started.Format("2006-01-02 15:04"), r.finished.Sub(r.started).Round(time.Second))
	p("hand: run `make bench` again. The machine is small and shared (see [Machine](#machine)), so the\n")
	p("absolute figures say little; the ratios, measured side by side in the same run, are the result.\n\n")

	p("## Targets\n\n")
	p("The targets of issue 5, with what this run measured.\n\n")
	p("| Target | Measured | Met |\n| ------ | -------- | --- |\n")
	ts := r.targets()
	for _, t := range ts {
		met := yes(t.met)
		if !t.met {
			met += ": " + t.miss
		}
		p("| %s | %s | %s |\n", t.what, t.measured, met)
	}
	p("\n")
	if slices.ContainsFunc(ts, func(t goal) bool { return !t.met }) {
		p("What bounds the missed targets is in [What bounds it](#what-bounds-it).\n\n")
	}

	p("## Machine\n\n")
	p("| | |\n| - | - |\n")
	p("| CPU | %s, `nproc` %s |\n", r.machine.cpu, r.machine.nproc)
	p("| Memory | %s |\n", r.machine.memory())
	p("| Kernel | %s |\n", r.machine.kernel)
	p("| Go | %s |\n", r.machine.goVersion)
	p("| CoreDNS | `%s` (`bin/coredns -version`) |\n", r.machine.coredns)
	p("| dnsperf | %s (Debian package) |\n", r.machine.dnsperf)
	p("| API server | %s, etcd %s (`make testbin`, envtest) |\n", r.machine.kubeAPIServer, strings.TrimPrefix(r.machine.etcd, "etcd Version: "))
	p("| Load average (1, 5, 15 min) | %s at the start; %s at the %s-record sync; %s before the dnsperf runs, %s after |\n\n",
		r.machine.startLoad, r.loadAtSync, count(large.records), r.loadBefore, r.loadAfter)
	p("dnsperf, the three CoreDNS processes, kube-apiserver and etcd share these cores with each\n")
	p("other (and with whatever else the machine runs): every figure is a lower bound of what a\n")
	p("dedicated server does. The harness waits (up to %s in all) for a one-minute load average\n", o.loadWait)
	p("below %.1f before it measures.\n\n", o.maxLoad)

	p("## Set-up\n\n")
	p("One kube-apiserver and etcd (envtest) with the acmezone CRDs; Delegations and ChallengeRecords\n")
	p("created through the API with %d parallel creates (the %s-record set took %s, %.0f objects/s).\n",
		o.workers, count(o.records), r.createTime.Round(time.Second), float64(2*o.records)/r.createTime.Seconds())
	p("Three `bin/coredns` processes, each on its own loopback address, each a single server block\n")
	p("with only `bind`, `ready`, `pprof` (an HTTP listener, not in the query path) and the plugin:\n\n")
	p("| Server | Address | Serves |\n| ------ | ------- | ------ |\n")
	p("| `%s` | %s | the stock *file* plugin, a zone file with the SOA, the NS and the one TXT record |\n", file.label, file.addr())
	p("| `%s` | %s | *acmezone*, namespaces `%s` and `%s`: %d ChallengeRecords and Delegations |\n", small.label, small.addr(), nsSmall, nsProp, small.records)
	p("| `%s` | %s | *acmezone*, every namespace (the default): %s ChallengeRecords and Delegations |\n\n", large.label, large.addr(), count(large.records))
	p("Both acmezone servers also serve the %d records of the propagation test from then on.\n\n", o.prop)
	p("Queries (each dnsperf query file holds one name, except `hit-spread`):\n\n")
	p("* `hit`: `%s TXT` on `%s` and `%s` (the same record); on `%s` a name of the same length in the\n  middle of its records, `%s TXT`. Answer: one TXT record, NOERROR.\n", small.hitName, file.label, small.label, large.label, large.hitName)
	p("* `nxdomain`: `%s TXT` everywhere. Answer: NXDOMAIN with the SOA.\n", nxName())
	p("* `hit-spread` (only `%s`): all %s targets in random order, so that the lookups miss the CPU caches.\n\n", large.label, count(o.records))
	p("The *file* plugin also puts the zone's NS record into the authority section of a positive\n")
	p("answer, so its TXT answers are a few dozen bytes longer than acmezone's. dnsperf checks that\n")
	p("every answer of a run has the expected rcode (the harness fails otherwise), and the harness\n")
	p("checks the TXT value of each server with a DNS client before measuring.\n\n")
	p("The Corefiles (the kubeconfig path shortened):\n\n")
	for _, s := range []*server{file, small} {
		p("~~~ corefile\n%s~~~\n\n", strings.ReplaceAll(s.corefile, filepath.Dir(s.proc.LogPath)+"/", "WORKDIR/"))
	}

	p("## Commands\n\n")
	p("`make bench` (after `make build testbin`) runs\n\n")
	p("~~~ sh\n%s\n%s\n%s\n~~~\n\n", goBenchCommand, storeBenchCommand, harnessCommand)
	p("and the harness runs dnsperf with the same settings against every server, for example\n\n~~~ sh\n")
	seen := map[string]bool{}
	for _, run := range r.runs {
		if k := run.server + run.workload; !seen[k] {
			seen[k] = true
			p("%s   # %s, %s\n", run.cmd, run.server, run.workload)
		}
	}
	p("~~~\n\n")
	p("in %d rounds; each round runs every server once per query kind, one after the other, the\n", o.rounds)
	p("order of the servers rotating from round to round (A B C, B C A, C A B, …), so that a change in\n")
	p("the machine's load hits every server alike. The tables give the median QPS over the rounds;\n")
	p("every ratio is the median of the per-round ratios (the servers of one round ran within a\n")
	p("minute or two of each other, so a change in the machine's load cancels out of the ratio).\n\n")

	p("## Throughput (dnsperf)\n\n")
	p("| Server | Records | Query | Median QPS | QPS of each round | vs `file` | … in each round | Median latency | Lost |\n")
	p("| ------ | ------: | ----- | ---------: | ----------------- | --------: | --------------- | -------------: | ---: |\n")
	for _, w := range []string{"hit", "nxdomain", "hit-spread"} {
		for _, s := range r.servers {
			v := r.qps(s.label, w)
			if len(v) == 0 {
				continue
			}
			var each []string
			for _, q := range v {
				each = append(each, fmt.Sprintf("%.0f", q))
			}
			vs, vsEach := "—", "—"
			if rs := r.ratios(s.label, w, file.label, w); s != file && len(rs) > 0 {
				vs = fmt.Sprintf("%.2f×", median(rs))
				var e []string
				for _, x := range rs {
					e = append(e, fmt.Sprintf("%.2f", x))
				}
				vsEach = strings.Join(e, ", ")
			}
			recs := count(s.records)
			if s == file {
				recs = "1"
			}
			p("| `%s` | %s | %s | %.0f | %s | %s | %s | %.3f ms | %.2f%% |\n", s.label, recs, w, median(v), strings.Join(each, ", "), vs, vsEach,
				r.medianOf(s.label, w, func(x perfRun) float64 { return x.latency * 1000 }),
				r.medianOf(s.label, w, func(x perfRun) float64 { return x.lostPct }))
		}
	}
	p("\n")
	if hs := median(r.ratios(large.label, "hit-spread", large.label, "hit")); !math.IsNaN(hs) {
		p("`hit-spread` against `hit` on `%s`: %.2f× (a different name each query instead of one hot name).\n\n", large.label, hs)
	}

	p("## Scale\n\n")
	p("Initial sync is the time from starting `bin/coredns` to its first correct answer for a\n")
	p("record (polled over UDP every 10 ms); until every reflector has delivered the initial state, the server does not\n")
	p("answer (for up to `startup_timeout`). RSS is VmRSS from `/proc/PID/status` 3 s after the\n")
	p("first answer and again after all dnsperf runs; the peak is VmHWM; the Go heap figures come\n")
	p("from the pprof plugin's `runtime.MemStats` at the end.\n\n")
	p("| Server | Records | Initial sync | Ready | RSS after sync | RSS after dnsperf | Peak RSS | Go heap in use | Go runtime Sys | Hit QPS vs %d records |\n", small.records)
	p("| ------ | ------: | -----------: | ----: | -------------: | ----------------: | -------: | -------------: | -------------: | ---: |\n")
	for _, s := range []*server{small, large} {
		heap, sys := "—", "—"
		if s.heap.ok {
			heap, sys = mb(s.heap.HeapInuse), mb(s.heap.Sys)
		}
		p("| `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %.2f× |\n", s.label, count(s.records), ms(s.syncTime), ms(s.readyTime),
			mb(s.afterSync.RSS), mb(s.afterLoad.RSS), mb(s.afterLoad.HWM), heap, sys,
			r.ratio(s.label, small.label, "hit"))
	}
	p("| `%s` | 1 | %s | %s | %s | %s | %s | — | — | — |\n\n", file.label, ms(file.syncTime), ms(file.readyTime), mb(file.afterSync.RSS), mb(file.afterLoad.RSS), mb(file.afterLoad.HWM))
	p("Until its first correct answer, `%s` used %s of CPU time in %s (%.0f%% of one core, %.0f%% of\n", large.label, ms(large.syncCPU), ms(large.syncTime),
		100*large.syncCPU.Seconds()/large.syncTime.Seconds(), 100*large.syncCPU.Seconds()/large.syncTime.Seconds()/2)
	p("both); the rest of the time it waited for kube-apiserver, which lists the objects (and shares\n")
	p("the cores). A CPU profile of its first %d s (pprof plugin, from the start of the process):\n\n", o.syncProfile)
	p("| Part | Share of the profile |\n| ---- | ---: |\n")
	for _, c := range syncCategories {
		p("| %s | %.1f%% |\n", c.name, r.syncShares[c.name])
	}
	p("\n~~~ txt\n%s\n~~~\n\n", r.syncTop)

	p("## Propagation\n\n")
	p("%d Delegations are created first and every acmezone server is polled until it knows their\n", o.prop)
	p("targets (NODATA). Then, one at a time, a ChallengeRecord is created through the API and both\n")
	p("servers are polled over UDP every millisecond until they answer with its value. The time runs\n")
	p("from the start of the Create call (so it includes the API server's write to etcd) to the first\n")
	p("correct answer.\n\n")
	p("| Server | Records | p50 | p99 | max |\n| ------ | ------: | --: | --: | --: |\n")
	for _, s := range []*server{small, large} {
		d := r.prop.answers[s.label]
		p("| `%s` | %s | %s | %s | %s |\n", s.label, count(s.records), ms(percentile(d, 50)), ms(percentile(d, 99)), ms(percentile(d, 100)))
	}
	p("| the Create call alone | | %s | %s | %s |\n\n", ms(percentile(r.prop.create, 50)), ms(percentile(r.prop.create, 99)), ms(percentile(r.prop.create, 100)))

	if r.churn != nil {
		p("%s", r.churn.section(o.churnRecs, o.churnProfile))
	}

	p("## Go benchmarks\n\n")
	if len(r.gobench) == 0 {
		p("Not run: pass `go test -bench` output with `-gobench` (`make bench` does).\n\n")
	} else {
		p("`BenchmarkServeDNS` in [`plugin/acmezone/bench_test.go`](../plugin/acmezone/bench_test.go): the\n")
		p("handler alone (the reply is dropped, not packed), with 10 and 100,000 delegated targets in the\n")
		p("store. Medians of %d runs; the raw output is [`bench-go.txt`](bench-go.txt), for\n", len(r.gobench[0].nsOp))
		p("`benchstat docs/bench-go.txt` or to compare two runs with benchstat.\n\n")
		p("| Benchmark | ns/op | B/op | allocs/op |\n| --------- | ----: | ---: | --------: |\n")
		for _, g := range r.gobench {
			p("| `%s` | %.0f | %.0f | %.0f |\n", g.name, median(g.nsOp), median(g.bytesOp), median(g.allocOp))
		}
		p("\n")
		if r.benchstat != "" {
			p("`go run %s docs/bench-go.txt`:\n\n~~~ txt\n%s\n~~~\n\n", benchstatPkg, r.benchstat)
		}
	}

	p("## Where the time goes\n\n")
	p("CPU profiles from the pprof plugin, %d s in the middle of an extra dnsperf run (not counted\n", max(o.perf.seconds-3, 1))
	p("above). Each figure is the cumulative share of the process's CPU time spent in (and below)\n")
	p("that part; the parts overlap (the plugin is inside the server chain, system calls are inside\n")
	p("reading and writing).\n\n")
	p("| Part |")
	for _, pr := range r.profiles {
		p(" `%s` %s |", pr.server, pr.workload)
	}
	p("\n| ---- |")
	for range r.profiles {
		p(" ---: |")
	}
	p("\n")
	p("| %s |", pluginShare)
	for _, pr := range r.profiles {
		p(" **%.1f%%** |", pr.shares[pluginShare])
	}
	p("\n")
	for _, c := range categories {
		p("| %s |", c.name)
		for _, pr := range r.profiles {
			p(" %.1f%% |", pr.shares[c.name])
		}
		p("\n")
	}
	p("| QPS of the profiled run |")
	for _, pr := range r.profiles {
		p(" %.0f |", pr.qps)
	}
	p("\n\n")
	for _, pr := range r.profiles {
		p("`go tool pprof -top` of `%s`, %s:\n\n~~~ txt\n%s\n~~~\n\n", pr.server, pr.workload, pr.top)
	}

	p("## Where the memory goes\n\n")
	p("Heap profile (in-use space, taken right after a forced garbage collection: the live heap) of `%s`\n", large.label)
	p("after the dnsperf runs: **%s live** for %s ChallengeRecords and as many Delegations, %.0f bytes per\n", mb(r.heapLive), count(large.records), float64(r.heapLive)/float64(large.records))
	p("record and its Delegation.\n\n")
	p("| Held by | Share | Size |\n| ------- | ----: | ---: |\n")
	rest := 100.0
	for _, c := range heapCategories {
		v := r.heapShares[c.name]
		rest -= v
		p("| %s | %.0f%% | %s |\n", c.name, v, mb(int64(v/100*float64(r.heapLive))))
	}
	p("| everything else (the binary's packages, buffers) | %.0f%% | %s |\n\n", rest, mb(int64(rest/100*float64(r.heapLive))))
	p("The index is the snapshot: one map entry per served name in one of 256 shard maps, pointing\n")
	p("to an 80-byte entry that holds the name, a 48-byte slot per ChallengeRecord (a 128-bit id\n")
	p("instead of its namespace and name, the TXT value, TTL, creation time) and a 32-byte slot per\n")
	p("Delegation. There is no informer cache and no map of objects: a watch event names the object's\n")
	p("place (its fqdn or target), and a change copies only the entry and the shard map it touches.\n")
	p("An answer makes its TXT records from the slots, one allocation per record, as copying a\n")
	p("ready-made record would. Names and values are the strings decoded from the API server, kept\n")
	p("as they are.")
	if r.storeBytes > 0 {
		p(" `BenchmarkStoreMemory` measures the store alone at **%.0f bytes per record and its\n", r.storeBytes)
		p("Delegation** (median of %d runs, [bench-store.txt](bench-store.txt)).", r.storeRuns)
	}
	p("\n\nThe RSS is more than the live heap. This binary (every stock plugin) starts at about %s,\n", mb(r.file().afterSync.RSS))
	p("as the `file` server shows, and with Go's default GOGC=100 the heap grows to about twice the\n")
	p("live heap between two collections. The peak is the initial list being decoded; right after\n")
	p("the first sync the plugin hands that garbage back to the OS (`debug.FreeOSMemory`, once).\n\n")
	p("~~~ txt\n%s\n~~~\n\n", r.heapTop)

	p("## What bounds it\n\n")
	p("%s\n", r.analysis(ts))

	p("## All runs\n\n")
	p("| Round | Server | Query | QPS | Avg latency | Lost | Response codes | Load (1 min) |\n")
	p("| ----: | ------ | ----- | --: | ----------: | ---: | -------------- | -----------: |\n")
	for _, run := range r.runs {
		p("| %d | `%s` | %s | %.0f | %.3f ms | %.2f%% | %s | %.2f |\n", run.round, run.server, run.workload, run.qps, run.latency*1000, run.lostPct, run.rcodes, run.load1)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// The commands `make bench` runs; the Makefile's bench target has the same three lines.
const (
	goBenchCommand    = "go test -run '^$' -bench '^BenchmarkServeDNS$' -benchmem -count 10 ./plugin/acmezone | tee docs/bench-go.txt"
	storeBenchCommand = "go test -run '^$' -bench '^BenchmarkStoreMemory$' -benchtime 1x -count 3 ./plugin/acmezone | tee docs/bench-store.txt"
	harnessCommand    = "go run ./e2e/bench -out docs/benchmarks.md -gobench docs/bench-go.txt -gostore docs/bench-store.txt"
)

// analysis explains, from the profiles, what limits the figures; it always describes the
// throughput bound and adds a paragraph for each missed target.
func (r *results) analysis(ts []goal) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	own := func(server, workload string) float64 {
		for _, pr := range r.profiles {
			if pr.server == server && pr.workload == workload {
				return pr.shares[pluginShare] / 100
			}
		}
		return math.NaN()
	}
	large, file := r.large().label, r.file().label
	p("**Throughput.** Both plugins run inside the same CoreDNS server loop: miekg/dns reads each\n")
	p("query with one `recvmsg` system call and unpacks it, CoreDNS runs the plugin chain, and the\n")
	p("plugin's reply is packed and sent with one `sendmsg`. Only the plugin's own work differs.\n")
	p("When CoreDNS's CPU is what limits the rate, the rest costs the same per query for both, so\n")
	p("the profiles predict the ratio as (1 − acmezone's own share) / (1 − file's own share):\n\n")
	p("| Query | *file*'s own work | acmezone's own work | Predicted ratio | Measured ratio (`%s`) | Ceiling (a plugin that costs nothing) |\n", large)
	p("| ----- | ----------------: | ------------------: | --------------: | ------------------: | ---------------: |\n")
	for _, w := range []string{"hit", "nxdomain"} {
		f, a := own(file, w), own(large, w)
		p("| %s | %.1f%% | %.1f%% | %.2f× | %.2f× | %.2f× |\n", w, 100*f, 100*a, (1-a)/(1-f),
			r.ratio(large, file, w), 1/(1-f))
	}
	p("\nThe ceiling is the point: whatever the plugin does, the server's common path (the kernel's UDP\n")
	p("path, unpacking and packing messages, goroutine stacks, the Go runtime; see the table in\n")
	p("[Where the time goes](#where-the-time-goes)) stays, and dnsperf takes its share of the same two\n")
	p("cores. Profiles of a few seconds are noisy (a garbage collection that falls into one shifts\n")
	p("the shares), so the prediction is a check on the measured ratio, not a second measurement.\n\n")
	gc := func(server string) float64 {
		for _, pr := range r.profiles {
			if pr.server == server && pr.workload == "hit" {
				return pr.shares["garbage collector (background mark)"]
			}
		}
		return math.NaN()
	}
	p("What the prediction leaves out is the garbage collector, which the profiles count in the\n")
	p("common path: it takes %.1f%% of `%s`'s CPU time against %.1f%% of `%s`'s. Every query leaves\n", gc(large), large, gc(file), file)
	p("garbage in the server (the message, buffers, the goroutine), and every collection marks the\n")
	p("whole live heap again, which with %s records is %s (see\n", count(r.large().records), mb(r.heapLive))
	p("[Where the memory goes](#where-the-memory-goes)): a smaller live heap would also buy throughput.\n\n")
	hitF, nxF := own(file, "hit"), own(file, "nxdomain")
	for _, t := range ts {
		if t.met {
			continue
		}
		switch {
		case strings.HasPrefix(t.what, "ConfigMap churn") && r.churn != nil:
			p("%s", r.churn.analysis(t))
		case strings.Contains(t.what, "1.2×"):
			f := hitF
			if strings.Contains(t.what, "NXDOMAIN") {
				f = nxF
			}
			p("**%s** — missed, %s. Even a plugin that cost nothing would reach only 1 / (1 − %.3f) =\n", t.what, t.miss, f)
			p("%.2f× here: *file*'s own work is %.1f%% of its CPU time, the rest is the common path above,\n", 1/(1-f), 100*f)
			p("so that path bounds the ratio, not the lookup.\n\n")
		case strings.Contains(t.what, "RSS"):
			l := r.large()
			p("**%s** — missed, %s. The live heap alone is %s ([Where the memory goes](#where-the-memory-goes)),\n", t.what, t.miss, mb(r.heapLive))
			p("%.0f bytes per record and its Delegation; with Go's default GOGC=100 the heap grows to about\n", float64(r.heapLive)/float64(l.records))
			p("twice the live heap between collections, which is most of the rest of the RSS (a stock CoreDNS\n")
			p("with this binary starts at about %s). No collector setting brings the RSS below the live\n", mb(r.file().afterSync.RSS))
			p("heap, so the target needs a smaller live heap: about %.0f bytes per record at GOGC=100, against\n", float64(150e6-r.file().afterSync.RSS)/2/float64(l.records))
			p("%.0f now. What the store keeps is described in [Where the memory goes](#where-the-memory-goes).\n\n", float64(r.heapLive)/float64(l.records))
		case strings.Contains(t.what, "initial sync"):
			l := r.large()
			p("**%s** — missed, %s. The sync lists every ChallengeRecord and Delegation from the API\n", t.what, t.miss)
			p("server and decodes them before the first snapshot is published. CoreDNS itself was busy for\n")
			p("%s of the %s (see [Scale](#scale)); by its CPU profile:", ms(l.syncCPU), ms(l.syncTime))
			for i, c := range syncCategories {
				sep := ","
				if i == len(syncCategories)-1 {
					sep = "."
				}
				p(" %s %.0f%%%s", c.name, r.syncShares[c.name], sep)
			}
			p("\nThe rest of the wall time is kube-apiserver encoding (and compressing) %s objects on the\n", count(2*l.records))
			p("same two cores.\n\n")
		case strings.Contains(t.what, "within 10%"):
			p("**%s** — missed, %s. The lookup is one map access in one of 256 shards either way.\n", t.what, t.miss)
			p("What differs is the heap: with %s records every garbage collection marks %s\n", count(r.large().records), mb(r.heapLive))
			p("(%.1f%% of `%s`'s CPU time in its profile, against %.1f%% for `%s`), and the\n", gc(large), large, gc(file), file)
			p("maps and records no longer fit in the CPU caches (`hit-spread` above). The per-round ratios\n")
			p("in the throughput table show how much of the difference is the machine's noise.\n\n")
		case strings.Contains(t.what, "Propagation"):
			p("**%s** — missed, %s. The time includes the Create call (see the table) and the watch\n", t.what, t.miss)
			p("event's way from etcd through kube-apiserver to the reflector.\n\n")
		default:
			p("**%s** — missed: %s.\n\n", t.what, t.miss)
		}
	}
	return b.String()
}
