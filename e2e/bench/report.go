// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

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
	store             storeBytes // BenchmarkStoreMemory's; runs 0 when not run
	heapShares        map[string]float64
	syncTop           string
	syncShares        map[string]float64
	gobench           []*goBench
	benchstat         string
	churn             *churnResult // ConfigMap churn; nil when not run
	lean              *leanResult
	secondary         *secondaryResult // nil when not run
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

// targets evaluates the targets (targets.go) against the results.
func (r *results) targets() []goal {
	file, small, large := r.file(), r.small(), r.large()
	var ts []goal
	for _, w := range []struct{ name, what string }{{"hit", "TXT hit"}, {"nxdomain", "NXDOMAIN"}} {
		rs, rl := r.ratio(small.label, file.label, w.name), r.ratio(large.label, file.label, w.name)
		worst := min(rs, rl)
		t := goal{
			what:     fmt.Sprintf("%s QPS ≥ %.2f× the stock `file` plugin, same run", w.what, targetVsFile),
			measured: fmt.Sprintf("%.2f× (%s records), %.2f× (%s records)", rs, count(small.records), rl, count(large.records)),
			met:      worst >= targetVsFile,
		}
		if !t.met {
			t.miss = fmt.Sprintf("%.2f× at worst", worst)
		}
		ts = append(ts, t)
	}
	rss := max(large.afterSync.RSS, large.afterLoad.RSS)
	t := goal{
		what:     fmt.Sprintf("%s records: RSS ≤ %s", count(large.records), mb(targetRSSLarge)),
		measured: fmt.Sprintf("%s after sync, %s after the dnsperf runs (peak %s)", mb(large.afterSync.RSS), mb(large.afterLoad.RSS), mb(large.afterLoad.HWM)),
		met:      rss <= targetRSSLarge,
	}
	if !t.met {
		t.miss = fmt.Sprintf("%s over", mb(rss-targetRSSLarge))
	}
	ts = append(ts, t)
	t = goal{
		what:     fmt.Sprintf("%s records: initial sync ≤ %s", count(large.records), ms(targetSyncLarge)),
		measured: fmt.Sprintf("%s to the first correct answer (%s to ready)", ms(large.syncTime), ms(large.readyTime)),
		met:      large.syncTime <= targetSyncLarge,
	}
	if !t.met {
		t.miss = fmt.Sprintf("%s over", ms(large.syncTime-targetSyncLarge))
	}
	ts = append(ts, t)
	for _, w := range []struct{ name, what string }{{"hit", "TXT hit"}, {"nxdomain", "NXDOMAIN"}} {
		q10, qBig := median(r.qps(small.label, w.name)), median(r.qps(large.label, w.name))
		ratio := r.ratio(large.label, small.label, w.name)
		t := goal{
			what:     fmt.Sprintf("%s records: %s QPS ≥ %.2f× the %d-record figure", count(large.records), w.what, targetScaleQPS, small.records),
			measured: fmt.Sprintf("%.2f× (medians %.0f vs %.0f qps)", ratio, qBig, q10),
			met:      ratio >= targetScaleQPS,
		}
		if !t.met {
			t.miss = fmt.Sprintf("%.2f×", ratio)
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
		what:     fmt.Sprintf("Propagation p99 ≤ %s from the API write to the answer", ms(targetPropagation)),
		measured: strings.Join(parts, ", "),
		met:      worst <= targetPropagation,
	}
	if !t.met {
		t.miss = fmt.Sprintf("%s over", ms(worst-targetPropagation))
	}
	ts = append(ts, t)
	t = goal{what: "The hit path's allocations do not grow with the number of records"}
	a, b := findBench(r.gobench, fmt.Sprintf("BenchmarkServeDNS/hit/records=%d", 10)), findBench(r.gobench, fmt.Sprintf("BenchmarkServeDNS/hit/records=%d", 100000))
	if a == nil || b == nil {
		t.measured = "not measured (no -gobench)"
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
	if r.secondary != nil {
		ts = append(ts, r.secondary.goals()...)
	}
	if r.churn != nil {
		ts = append(ts, r.churn.goals()...)
	}
	if r.lean != nil {
		ts = append(ts, r.lean.goals()...)
	}
	return ts
}

// writeReport writes the Markdown report to path: tables, figures and the commands, nothing
// else. What they mean is written by hand in docs/benchmarks-method.md.
func writeReport(path string, r *results) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.opts
	file, small, large := r.file(), r.small(), r.large()
	workdir := func(s string) string { return strings.ReplaceAll(s, filepath.Dir(file.proc.LogPath)+"/", "WORKDIR/") }

	p("# Benchmarks\n\n")
	p("Generated by `make bench` ([`e2e/bench`](../e2e/bench)) on %s UTC in %s; do not edit, run it again.\n", r.started.Format("2006-01-02 15:04"), r.finished.Sub(r.started).Round(time.Second))
	p("How it measures and how to read it: [benchmarks-method.md](benchmarks-method.md).\n\n")

	p("## Targets\n\n")
	p("| Target | Measured | Met |\n| ------ | -------- | --- |\n")
	for _, t := range r.targets() {
		met := yes(t.met)
		if !t.met {
			met += ": " + t.miss
		}
		p("| %s | %s | %s |\n", t.what, t.measured, met)
	}
	p("\n")

	p("## Machine\n\n")
	p("| | |\n| - | - |\n")
	p("| CPU | %s, `nproc` %s |\n", r.machine.cpu, r.machine.nproc)
	p("| Memory | %s |\n", r.machine.memory())
	p("| Kernel | %s |\n", r.machine.kernel)
	p("| Go | %s |\n", r.machine.goVersion)
	p("| CoreDNS | `%s` (`bin/coredns -version`) |\n", r.machine.coredns)
	p("| dnsperf | %s |\n", r.machine.dnsperf)
	p("| API server | %s, etcd %s |\n", r.machine.kubeAPIServer, strings.TrimPrefix(r.machine.etcd, "etcd Version: "))
	p("| Load average (1, 5, 15 min) | %s at the start; %s at the %s-record sync; %s before the dnsperf runs, %s after |\n",
		r.machine.startLoad, r.loadAtSync, count(large.records), r.loadBefore, r.loadAfter)
	p("| Quiet machine | one-minute load average below %.1f, waited for up to %s in all |\n\n", o.maxLoad, o.loadWait)

	p("## Set-up\n\n")
	p("| Records created | Parallel creates | Time | Objects/s |\n| ---: | ---: | ---: | ---: |\n")
	p("| %s | %d | %s | %.0f |\n\n", count(o.records), o.workers, r.createTime.Round(time.Second), float64(2*o.records)/r.createTime.Seconds())
	p("| Server | Address | Plugin | Namespaces | Records |\n| ------ | ------- | ------ | ---------- | ------: |\n")
	p("| `%s` | %s | file | — | 1 |\n", file.label, file.addr())
	p("| `%s` | %s | acmezone | `%s`, `%s` | %s |\n", small.label, small.addr(), nsSmall, nsProp, count(small.records))
	p("| `%s` | %s | acmezone | all | %s |\n\n", large.label, large.addr(), count(large.records))
	p("| Query | Name (TXT) | Servers | Answer |\n| ----- | ---------- | ------- | ------ |\n")
	p("| hit | `%s` | `%s`, `%s` | NOERROR, one TXT |\n", small.hitName, file.label, small.label)
	p("| hit | `%s` | `%s` | NOERROR, one TXT |\n", large.hitName, large.label)
	p("| nxdomain | `%s` | all | NXDOMAIN, SOA |\n", nxName())
	p("| hit-spread | all %s targets, shuffled | `%s` | NOERROR, one TXT |\n\n", count(o.records), large.label)
	for _, s := range []*server{file, small} {
		p("~~~ corefile\n%s~~~\n\n", workdir(s.corefile))
	}

	p("## Commands\n\n")
	p("~~~ sh\n%s\n%s\n%s\n~~~\n\n", goBenchCommand, storeBenchCommand, harnessCommand)
	p("~~~ sh\n")
	seen := map[string]bool{}
	for _, run := range r.runs {
		if k := run.server + run.workload; !seen[k] {
			seen[k] = true
			p("%s   # %s, %s\n", run.cmd, run.server, run.workload)
		}
	}
	p("~~~\n\n")
	p("| Rounds | Server order |\n| -----: | ------------ |\n| %d | rotating |\n\n", o.rounds)

	p("## Throughput (dnsperf)\n\n")
	p("| Server | Records | Query | Median QPS | QPS of each round | vs `file` | … in each round | vs `%s` hit | Median latency | Lost |\n", large.label)
	p("| ------ | ------: | ----- | ---------: | ----------------- | --------: | --------------- | ---: | -------------: | ---: |\n")
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
			vsHit := "—"
			if s == large && w != "hit" {
				vsHit = fmt.Sprintf("%.2f×", median(r.ratios(large.label, w, large.label, "hit")))
			}
			recs := count(s.records)
			if s == file {
				recs = "1"
			}
			p("| `%s` | %s | %s | %.0f | %s | %s | %s | %s | %.3f ms | %.2f%% |\n", s.label, recs, w, median(v), strings.Join(each, ", "), vs, vsEach, vsHit,
				r.medianOf(s.label, w, func(x perfRun) float64 { return x.latency * 1000 }),
				r.medianOf(s.label, w, func(x perfRun) float64 { return x.lostPct }))
		}
	}
	p("\n")

	p("## Scale\n\n")
	p("| Server | Records | Initial sync | CPU time to the first answer | Ready | RSS after sync | RSS after dnsperf | Peak RSS | Go heap in use | Go runtime Sys | Hit QPS vs %d records |\n", small.records)
	p("| ------ | ------: | -----------: | ---: | ----: | -------------: | ----------------: | -------: | -------------: | -------------: | ---: |\n")
	for _, s := range []*server{small, large} {
		heap, sys := "—", "—"
		if s.heap.ok {
			heap, sys = mb(s.heap.HeapInuse), mb(s.heap.Sys)
		}
		p("| `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f× |\n", s.label, count(s.records), ms(s.syncTime), ms(s.syncCPU), ms(s.readyTime),
			mb(s.afterSync.RSS), mb(s.afterLoad.RSS), mb(s.afterLoad.HWM), heap, sys,
			r.ratio(s.label, small.label, "hit"))
	}
	p("| `%s` | 1 | %s | %s | %s | %s | %s | %s | — | — | — |\n\n", file.label, ms(file.syncTime), ms(file.syncCPU), ms(file.readyTime), mb(file.afterSync.RSS), mb(file.afterLoad.RSS), mb(file.afterLoad.HWM))
	p("CPU profile of `%s`, the first %d s from its start:\n\n", large.label, o.syncProfile)
	p("| Part | Share of the profile |\n| ---- | ---: |\n")
	for _, c := range syncCategories {
		p("| %s | %.1f%% |\n", c.name, r.syncShares[c.name])
	}
	p("\n~~~ txt\n%s\n~~~\n\n", r.syncTop)

	p("## Propagation\n\n")
	p("| Server | Records | Created one by one | p50 | p99 | max |\n| ------ | ------: | ---: | --: | --: | --: |\n")
	for _, s := range []*server{small, large} {
		d := r.prop.answers[s.label]
		p("| `%s` | %s | %d | %s | %s | %s |\n", s.label, count(s.records), len(d), ms(percentile(d, 50)), ms(percentile(d, 99)), ms(percentile(d, 100)))
	}
	p("| the Create call alone | | %d | %s | %s | %s |\n\n", len(r.prop.create), ms(percentile(r.prop.create, 50)), ms(percentile(r.prop.create, 99)), ms(percentile(r.prop.create, 100)))

	if r.secondary != nil {
		p("%s", r.secondary.section())
	}
	if r.churn != nil {
		p("%s", r.churn.section(o.churnRecs, o.churnProfile))
	}
	if r.lean != nil {
		p("%s", r.lean.section())
	}

	p("## Go benchmarks\n\n")
	if len(r.gobench) == 0 {
		p("Not run (no `-gobench`).\n\n")
	} else {
		p("[`plugin/acmezone/bench_test.go`](../plugin/acmezone/bench_test.go), medians of %d runs; raw output [`bench-go.txt`](bench-go.txt).\n\n", len(r.gobench[0].nsOp))
		p("| Benchmark | ns/op | B/op | allocs/op |\n| --------- | ----: | ---: | --------: |\n")
		for _, g := range r.gobench {
			p("| `%s` | %.0f | %.0f | %.0f |\n", g.name, median(g.nsOp), median(g.bytesOp), median(g.allocOp))
		}
		p("\n")
		if r.store.runs > 0 {
			p("| `BenchmarkStoreMemory`, bytes per record and its Delegation | live heap | heap in use |\n| - | -: | -: |\n")
			p("| median of %d runs, [`bench-store.txt`](bench-store.txt) | %.0f | %.0f |\n\n", r.store.runs, r.store.live, r.store.inuse)
		}
		if r.benchstat != "" {
			p("`go run %s docs/bench-go.txt`:\n\n~~~ txt\n%s\n~~~\n\n", benchstatPkg, r.benchstat)
		}
	}

	p("## Where the time goes\n\n")
	p("CPU profiles, %d s of an extra dnsperf run each (not counted above); cumulative shares of the process's CPU time.\n\n", max(o.perf.seconds-3, 1))
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
	p("| Query | *file*'s own work | acmezone's own work | (1 − acmezone's) / (1 − file's) | Measured ratio (`%s`) | 1 / (1 − file's) |\n", large.label)
	p("| ----- | ----------------: | ------------------: | --------------: | ------------------: | ---------------: |\n")
	for _, w := range []string{"hit", "nxdomain"} {
		f, a := r.ownShare(file.label, w), r.ownShare(large.label, w)
		p("| %s | %.1f%% | %.1f%% | %.2f× | %.2f× | %.2f× |\n", w, 100*f, 100*a, (1-a)/(1-f), r.ratio(large.label, file.label, w), 1/(1-f))
	}
	p("\n")
	for _, pr := range r.profiles {
		p("`go tool pprof -top` of `%s`, %s:\n\n~~~ txt\n%s\n~~~\n\n", pr.server, pr.workload, pr.top)
	}

	p("## Where the memory goes\n\n")
	p("Heap profile (in-use space after a forced collection) of `%s` after the dnsperf runs.\n\n", large.label)
	p("| Live heap | Records | Bytes per record and its Delegation |\n| ---: | ---: | ---: |\n")
	p("| %s | %s | %.0f |\n\n", mb(r.heapLive), count(large.records), float64(r.heapLive)/float64(large.records))
	p("| Held by | Share | Size |\n| ------- | ----: | ---: |\n")
	rest := 100.0
	for _, c := range heapCategories {
		v := r.heapShares[c.name]
		rest -= v
		p("| %s | %.0f%% | %s |\n", c.name, v, mb(int64(v/100*float64(r.heapLive))))
	}
	p("| everything else | %.0f%% | %s |\n\n", rest, mb(int64(rest/100*float64(r.heapLive))))
	p("~~~ txt\n%s\n~~~\n\n", r.heapTop)

	p("## All runs\n\n")
	p("| Round | Server | Query | QPS | Avg latency | Lost | Response codes | Load (1 min) |\n")
	p("| ----: | ------ | ----- | --: | ----------: | ---: | -------------- | -----------: |\n")
	runs := r.runs
	if r.lean != nil {
		runs = append(slices.Clone(runs), r.lean.runs...)
	}
	for _, run := range runs {
		p("| %d | `%s` | %s | %.0f | %.3f ms | %.2f%% | %s | %.2f |\n", run.round, run.server, run.workload, run.qps, run.latency*1000, run.lostPct, run.rcodes, run.load1)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// ownShare is the plugin's own share (0 to 1) of the CPU profile of server under workload.
func (r *results) ownShare(server, workload string) float64 {
	for _, pr := range r.profiles {
		if pr.server == server && pr.workload == workload {
			return pr.shares[pluginShare] / 100
		}
	}
	return math.NaN()
}

// The commands `make bench` runs; the Makefile's bench target has the same three lines.
const (
	goBenchCommand    = "go test -run '^$' -bench '^BenchmarkServeDNS$' -benchmem -count 10 ./plugin/acmezone | tee docs/bench-go.txt"
	storeBenchCommand = "go test -run '^$' -bench '^BenchmarkStoreMemory$' -benchtime 1x -count 3 ./plugin/acmezone | tee docs/bench-store.txt"
	harnessCommand    = "go run ./e2e/bench -out docs/benchmarks.md -gobench docs/bench-go.txt -gostore docs/bench-store.txt"
)
