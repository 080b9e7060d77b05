// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Command bench measures acmezone's CoreDNS (bin/coredns) the way DNS people do, and writes the
// results to a Markdown file (`make bench` writes docs/benchmarks.md):
//
//   - dnsperf over loopback against three bin/coredns processes, interleaved round by round:
//     the stock file plugin serving one TXT record, and the acmezone plugin serving the same
//     record from a real API server (envtest with bin/kube-apiserver and bin/etcd) with 10 and
//     with 100,000 ChallengeRecords and their Delegations;
//   - propagation: records created through the API one by one, each polled over UDP until
//     every acmezone server answers it;
//   - secondary: the same for a standard secondary (Knot, Debian's knot) of a hidden acmezone
//     primary, kept current by NOTIFY and IXFR (-secondary-only runs just that);
//   - scale: initial sync time and RSS of the acmezone servers at 10 and 100,000 records;
//   - CPU and heap profiles (the pprof plugin) of a run, to say where the time goes;
//   - the Go benchmarks of ServeDNS (go test -bench output, given with -gobench);
//   - ConfigMap churn: propagation while a 1 MiB ConfigMap of zone data is rewritten in a loop,
//     with the default configmap_limits and with raised ones (-configmap-only runs just that);
//   - the lean build of cmd/coredns against the full one (-tags coredns_full), both compiled
//     here as `make images` compiles them: binary and image size, idle RSS, RSS and QPS under
//     dnsperf (-lean-only runs just that).
//
// The report holds tables, figures and commands only; docs/benchmarks-method.md explains them.
// Run it from the repository root after `make build testbin`; every process it starts is
// stopped when it ends, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/e2e/stack"
)

// Loopback addresses of the servers under test; ports are picked free at start.
const (
	fileIP      = "127.0.77.1"
	acmezone10  = "127.0.77.2"
	acmezoneBig = "127.0.77.3"
)

type options struct {
	out, bin, crds, gobench string
	gostore                 string
	small, records, prop    int
	rounds, workers         int
	perf                    perfSettings
	maxLoad                 float64
	loadWait                time.Duration
	syncProfile             int
	keep                    bool
	scaleOnly               bool
	churnBytes, churnRecs   int
	churnProfile            int
	churnOnly               bool
	leanOnly                bool
	secondary               int
	secondaryOnly           bool
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown file to write")
	flag.StringVar(&o.bin, "bin", "bin", "folder with coredns, kube-apiserver and etcd (make build testbin)")
	flag.StringVar(&o.crds, "crds", "deploy/crds", "folder with the acmezone CRDs")
	flag.StringVar(&o.gobench, "gobench", "", "raw `go test -bench` output of BenchmarkServeDNS to summarise (optional)")
	flag.StringVar(&o.gostore, "gostore", "", "raw `go test -bench` output of BenchmarkStoreMemory to quote (optional)")
	flag.IntVar(&o.small, "small", 10, "records of the small acmezone server")
	flag.IntVar(&o.records, "records", 100_000, "records of the large acmezone server")
	flag.IntVar(&o.prop, "propagation", 200, "records created one by one to time propagation")
	flag.IntVar(&o.rounds, "rounds", 5, "dnsperf rounds; each round runs every server once per query kind")
	flag.IntVar(&o.workers, "workers", 32, "parallel creates against the API server")
	flag.IntVar(&o.perf.seconds, "l", 10, "dnsperf -l: seconds per run")
	flag.IntVar(&o.perf.clients, "c", 4, "dnsperf -c: clients")
	flag.IntVar(&o.perf.threads, "T", 1, "dnsperf -T: threads")
	flag.IntVar(&o.perf.outstanding, "q", 100, "dnsperf -q: queries outstanding")
	flag.Float64Var(&o.maxLoad, "max-load", 1.5, "wait for a one-minute load average below this before measuring")
	flag.DurationVar(&o.loadWait, "load-wait", 20*time.Minute, "longest total wait for a quiet machine (0: do not wait)")
	flag.IntVar(&o.syncProfile, "sync-profile", 20, "seconds of CPU profile from the start of the large server (covers its initial sync)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder (logs, Corefiles, profiles)")
	flag.BoolVar(&o.scaleOnly, "scale-only", false, "measure only the large server's initial sync and memory, print them and a heap profile, and write no report (for working on them)")
	flag.IntVar(&o.churnBytes, "configmap-bytes", 1<<20, "ConfigMap churn: bytes of zone data (key and value) of the rewritten ConfigMap; 1 MiB is the API server's limit")
	flag.IntVar(&o.churnRecs, "configmap-records", 300, "ConfigMap churn: ChallengeRecords created one by one in each run")
	flag.IntVar(&o.churnProfile, "configmap-profile", 10, "ConfigMap churn: seconds of CPU profile from the start of each run's measurement")
	flag.BoolVar(&o.churnOnly, "configmap-only", false, "measure only the ConfigMap churn, print its report section, and write no report (needs no dnsperf)")
	flag.BoolVar(&o.leanOnly, "lean-only", false, "measure only the lean build against the full build (-tags coredns_full), print the report section, and write no report")
	flag.IntVar(&o.secondary, "secondary", 100, "records created one by one to time a secondary (Knot) of a hidden acmezone primary")
	flag.BoolVar(&o.secondaryOnly, "secondary-only", false, "measure only the secondary, print its report section, and write no report (needs no dnsperf)")
	flag.Parse()
	// envtest logs through controller-runtime's logger; without one it prints a warning with a
	// stack trace. The harness says what it does itself.
	ctrllog.SetLogger(logr.Discard())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	if err := run(ctx, o); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted; every process it started is stopped (%w)", err)
		}
		log.Printf("bench: %v", err)
		stop()
		os.Exit(1)
	}
	out := o.out
	if o.churnOnly {
		out = "no report written (-configmap-only)"
	}
	if o.leanOnly {
		out = "no report written (-lean-only)"
	}
	if o.secondaryOnly {
		out = "no report written (-secondary-only)"
	}
	logf("done in %s: %s", time.Since(start).Round(time.Second), out)
}

func logf(format string, args ...any) { log.Printf(format, args...) }

// preflight fails early, and says what to do, when a part is missing.
func preflight(o options) error {
	for _, name := range []string{"coredns", "kube-apiserver", "etcd"} {
		path := filepath.Join(o.bin, name)
		if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			how := "make testbin"
			if name == "coredns" {
				how = "make build"
			}
			return fmt.Errorf("%s is missing or not executable: run `%s` (or `make bench`, which does)", path, how)
		}
	}
	if o.churnBytes < 1000 || o.churnRecs < 1 || o.churnProfile < 1 {
		return errors.New("need -configmap-bytes of at least 1000, and at least one ChallengeRecord and one second of profile for the ConfigMap churn")
	}
	if _, err := exec.LookPath("dnsperf"); err != nil && !o.churnOnly && !o.secondaryOnly {
		return errors.New("dnsperf is not installed: apt-get install dnsperf (Debian's package)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		return errors.New("go is not in PATH: it builds the lean and the full CoreDNS, and `go tool pprof` summarises the profiles")
	}
	if runtime.GOOS != "linux" {
		return errors.New("the benchmark runs on Linux only: it reads /proc and runs linux/" + runtime.GOARCH + " builds")
	}
	if fi, err := os.Stat(o.crds); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s not found: run the benchmark from the repository root", o.crds)
	}
	if o.gobench != "" {
		if _, err := os.Stat(o.gobench); err != nil {
			return fmt.Errorf("-gobench %s: %w; run the Go benchmarks first (make bench does)", o.gobench, err)
		}
	}
	if o.rounds < 3 || o.small < 1 || o.records < 1 || o.prop < 1 || o.secondary < 1 {
		return errors.New("need at least 3 rounds and at least one record of each kind")
	}
	if !o.churnOnly && !o.leanOnly && !o.scaleOnly {
		if _, err := stack.Knotd(); err != nil {
			return fmt.Errorf("%w: the secondary measurement runs Knot", err)
		}
		if err := checkSecondaryPorts(); err != nil {
			return err
		}
	}
	return nil
}

func run(ctx context.Context, o options) (err error) {
	if err := preflight(o); err != nil {
		return err
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		abs, err := filepath.Abs(o.bin)
		if err != nil {
			return err
		}
		os.Setenv("KUBEBUILDER_ASSETS", abs)
	}
	coredns := filepath.Join(o.bin, "coredns")
	dir, err := os.MkdirTemp("", "acmezone-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil || o.keep {
			logf("logs, Corefiles and profiles kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()

	res := &results{opts: o, started: time.Now().UTC(), machine: machineInfo(coredns)}
	if o.gostore != "" {
		if res.store, err = storeMemory(o.gostore); err != nil {
			return err
		}
	}
	var lean, full *coreBuild
	if !o.churnOnly && !o.secondaryOnly {
		// Both builds compiled alike, before anything is measured: the full one takes minutes
		// when the build cache is cold.
		logf("building the lean and the full (-tags coredns_full) CoreDNS and their images")
		if lean, err = buildCoreDNS(ctx, dir, "lean", ""); err != nil {
			return err
		}
		if full, err = buildCoreDNS(ctx, dir, "full", "coredns_full"); err != nil {
			return err
		}
		logf("  binaries %s and %s, images %s and %s compressed", mb(lean.binSize), mb(full.binSize), mb(lean.imageGz), mb(full.imageGz))
	}
	loadDeadline := time.Now().Add(o.loadWait)
	waitForQuiet(ctx, o.maxLoad, loadDeadline, "starting")

	logf("starting kube-apiserver and etcd (envtest, %s)", os.Getenv("KUBEBUILDER_ASSETS"))
	c, err := startCluster(dir, o.crds)
	if err != nil {
		return err
	}
	defer c.stop()
	if o.churnOnly {
		churn, err := measureChurn(ctx, c, dir, coredns, o.churnBytes, o.churnRecs, o.workers, o.churnProfile)
		if err != nil {
			return err
		}
		fmt.Print(churn.section(o.churnRecs, o.churnProfile))
		for _, t := range churn.goals() {
			logf("%s: %s: %s", t.what, t.measured, yes(t.met)+" "+t.miss)
		}
		return nil
	}
	if o.secondaryOnly {
		waitForQuiet(ctx, o.maxLoad, loadDeadline, "the secondary")
		sr, err := measureSecondary(ctx, c, dir, coredns, o.secondary, o.workers)
		if err != nil {
			return err
		}
		fmt.Print(sr.section())
		for _, t := range sr.goals() {
			logf("%s: %s: %s", t.what, t.measured, yes(t.met)+" "+t.miss)
		}
		return nil
	}
	if err := c.createNamespaces(ctx, nsSmall, nsLarge, nsProp); err != nil {
		return err
	}
	if o.leanOnly {
		for ns, n := range map[string]int{nsSmall: o.small, nsLarge: o.records} {
			logf("creating %d Delegations and ChallengeRecords in namespace %s", n, ns)
			if _, err := c.createRecords(ctx, ns, n, o.workers); err != nil {
				return err
			}
		}
		waitForQuiet(ctx, o.maxLoad, loadDeadline, "the lean and full builds")
		lr, err := measureLean(ctx, c, dir, o, lean, full, 0)
		if err != nil {
			return err
		}
		fmt.Print(lr.section())
		for _, t := range lr.goals() {
			logf("%s: %s: %s", t.what, t.measured, yes(t.met)+" "+t.miss)
		}
		return nil
	}

	// 10 records, the file plugin with the same TXT record, and the small acmezone server.
	logf("creating %d Delegations and ChallengeRecords in namespace %s", o.small, nsSmall)
	if _, err := c.createRecords(ctx, nsSmall, o.small, o.workers); err != nil {
		return err
	}
	hitName, hitValue := target(nsSmall, 0), keyValue(nsSmall, 0)
	file, err := newServer("file", fileIP)
	if err != nil {
		return err
	}
	file.hitName, file.hitValue = hitName, hitValue
	zonePath := filepath.Join(dir, "acme.example.com.zone")
	if err := os.WriteFile(zonePath, []byte(zoneFile(hitName, hitValue)), 0o644); err != nil {
		return err
	}
	file.fileCorefile(zonePath)
	small, err := newServer("acmezone-10", acmezone10)
	if err != nil {
		return err
	}
	small.hitName, small.hitValue, small.records, small.keyFile = hitName, hitValue, o.small, c.keyFile
	small.acmezoneCorefile(c.kubeconfig, nsSmall, nsProp)
	for _, s := range []*server{file, small} {
		logf("starting bin/coredns %s on %s", s.label, s.addr())
		defer s.stop()
		if err := s.start(ctx, dir, coredns); err != nil {
			return err
		}
		logf("  first correct answer after %s, ready after %s, RSS %s", ms(s.syncTime), ms(s.readyTime), mb(s.afterSync.RSS))
	}

	// 100,000 records and the large acmezone server, which watches every namespace.
	logf("creating %d Delegations and ChallengeRecords in namespace %s (%d parallel creates)", o.records, nsLarge, o.workers)
	if res.createTime, err = c.createRecords(ctx, nsLarge, o.records, o.workers); err != nil {
		return err
	}
	logf("  created in %s", res.createTime.Round(time.Second))
	waitForQuiet(ctx, o.maxLoad, loadDeadline, "the initial sync of the large server")
	label := fmt.Sprintf("acmezone-%d", o.records)
	if o.records%1000 == 0 {
		label = fmt.Sprintf("acmezone-%dk", o.records/1000)
	}
	large, err := newServer(label, acmezoneBig)
	if err != nil {
		return err
	}
	large.hitName, large.hitValue, large.records, large.keyFile = target(nsLarge, o.records/2), keyValue(nsLarge, o.records/2), o.records+o.small, c.keyFile
	large.acmezoneCorefile(c.kubeconfig)
	large.syncProfile, large.syncProfileSeconds = filepath.Join(dir, "cpu-sync.pb.gz"), o.syncProfile
	logf("starting bin/coredns %s on %s", large.label, large.addr())
	defer large.stop()
	res.loadAtSync = loadavg()
	if err := large.start(ctx, dir, coredns); err != nil {
		return err
	}
	logf("  first correct answer after %s, ready after %s, RSS %s", ms(large.syncTime), ms(large.readyTime), mb(large.afterSync.RSS))
	if res.syncTop, res.syncShares, err = syncProfileResult(large.syncProfile); err != nil {
		return err
	}
	if o.scaleOnly {
		heap, err := large.heapProfile(ctx, dir)
		if err != nil {
			return err
		}
		top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", "-sample_index=inuse_space", heap).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof: %v: %s", err, top)
		}
		logf("-scale-only: sync %s, RSS %s (peak %s), Go heap in use %s, runtime Sys %s\n%s\nCPU during the sync:\n%s",
			ms(large.syncTime), mb(large.afterSync.RSS), mb(large.afterSync.HWM), mb(large.heap.HeapInuse), mb(large.heap.Sys), top, res.syncTop)
		// The memory that counts is the serving one: RSS after dnsperf, as in the report.
		workloads, err := writeWorkloads(dir, o, file, small, large)
		if err != nil {
			return err
		}
		for _, w := range workloads {
			if w.name == "hit" || w.name == "hit-spread" {
				run, _, err := runDNSPerf(ctx, o.perf, large, w)
				if err != nil {
					return err
				}
				logf("  %s: %.0f qps", w.name, run.qps)
			}
		}
		after, err := memoryOf(large.proc)
		if err != nil {
			return err
		}
		logf("-scale-only: RSS %s after dnsperf (peak %s)", mb(after.RSS), mb(after.HWM))
		return nil
	}
	res.servers = []*server{file, small, large}

	// Propagation, seen by both acmezone servers.
	logf("propagation: %d records created one by one", o.prop)
	if res.prop, err = measurePropagation(ctx, c, []*server{small, large}, o.prop, o.workers); err != nil {
		return err
	}

	// The same through a standard secondary of a hidden primary, each with its own process;
	// both are stopped before the dnsperf runs.
	waitForQuiet(ctx, o.maxLoad, loadDeadline, "the secondary")
	logf("secondary: %d records created one by one, answered by Knot through NOTIFY and IXFR", o.secondary)
	if res.secondary, err = measureSecondary(ctx, c, dir, coredns, o.secondary, o.workers); err != nil {
		return err
	}

	// Throughput: every server once per query kind in every round, the order rotating.
	workloads, err := writeWorkloads(dir, o, file, small, large)
	if err != nil {
		return err
	}
	waitForQuiet(ctx, o.maxLoad, loadDeadline, "the dnsperf runs")
	res.loadBefore = loadavg()
	logf("dnsperf: %d rounds, load average %s", o.rounds, res.loadBefore)
	servers := []*server{file, small, large}
	for r := range o.rounds {
		for _, w := range workloads[:2] {
			for k := range servers {
				s := servers[(k+r)%len(servers)]
				run, _, err := runDNSPerf(ctx, o.perf, s, w)
				if err != nil {
					return err
				}
				run.round = r + 1
				res.runs = append(res.runs, run)
				logf("  round %d %-14s %-9s %8.0f qps (load %.2f)", run.round, s.label, w.name, run.qps, run.load1)
			}
		}
		run, _, err := runDNSPerf(ctx, o.perf, large, workloads[2])
		if err != nil {
			return err
		}
		run.round = r + 1
		res.runs = append(res.runs, run)
		logf("  round %d %-14s %-9s %8.0f qps (load %.2f)", run.round, large.label, workloads[2].name, run.qps, run.load1)
	}
	res.loadAfter = loadavg()
	for _, s := range servers {
		if s.afterLoad, err = memoryOf(s.proc); err != nil {
			return err
		}
	}

	// Where the time and the memory go.
	logf("profiling (pprof plugin) during extra runs that are not counted above")
	for _, p := range []struct {
		s *server
		w workload
	}{{large, workloads[0]}, {file, workloads[0]}, {large, workloads[1]}, {file, workloads[1]}} {
		pr, err := profileRun(ctx, dir, o.perf, p.s, p.w)
		if err != nil {
			return err
		}
		res.profiles = append(res.profiles, pr)
	}
	for _, s := range []*server{small, large} {
		path, err := s.heapProfile(ctx, dir)
		if err != nil {
			return err
		}
		if s == large {
			if res.heapTop, res.heapLive, res.heapShares, err = heapResult(path); err != nil {
				return err
			}
		}
	}

	// The lean build against the full one, with their own servers; the others are idle by now.
	waitForQuiet(ctx, o.maxLoad, loadDeadline, "the lean and full builds")
	if res.lean, err = measureLean(ctx, c, dir, o, lean, full, o.prop); err != nil {
		return err
	}

	// ConfigMap churn, with its own servers; the others are idle by now.
	waitForQuiet(ctx, o.maxLoad, loadDeadline, "the ConfigMap churn")
	if res.churn, err = measureChurn(ctx, c, dir, coredns, o.churnBytes, o.churnRecs, o.workers, o.churnProfile); err != nil {
		return err
	}

	if o.gobench != "" {
		if res.gobench, err = readGoBench(o.gobench); err != nil {
			return err
		}
		if res.benchstat, err = runBenchstat(ctx, o.gobench); err != nil {
			logf("no benchstat summary: %v", err)
		}
	}
	res.finished = time.Now().UTC()
	if err := writeReport(o.out, res); err != nil {
		return err
	}
	return ctx.Err()
}

// writeWorkloads writes the query files: a TXT hit (file and the small server answer the same
// name; the large one a name of the same length in the middle of its records), an NXDOMAIN (the
// same name everywhere), and TXT hits spread over every record of the large server in random
// order. It checks every answer once with a DNS client before anything is measured.
func writeWorkloads(dir string, o options, file, small, large *server) ([]workload, error) {
	hitSmall, hitLarge := filepath.Join(dir, "q-hit-small.txt"), filepath.Join(dir, "q-hit-large.txt")
	nxFile, spreadFile := filepath.Join(dir, "q-nxdomain.txt"), filepath.Join(dir, "q-hit-spread.txt")
	hit := workload{name: "hit", wantRcode: "NOERROR", files: map[*server]string{file: hitSmall, small: hitSmall, large: hitLarge}}
	nx := workload{name: "nxdomain", wantRcode: "NXDOMAIN", files: map[*server]string{file: nxFile, small: nxFile, large: nxFile}}
	spread := workload{name: "hit-spread", wantRcode: "NOERROR", files: map[*server]string{large: spreadFile}}

	names := make([]string, o.records)
	for i := range names {
		names[i] = target(nsLarge, i)
	}
	rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for path, names := range map[string][]string{
		hitSmall: {small.hitName}, hitLarge: {large.hitName}, nxFile: {nxName()}, spreadFile: names,
	} {
		if err := writeQueryFile(path, names, "TXT"); err != nil {
			return nil, err
		}
	}
	for _, s := range []*server{file, small, large} {
		if a, err := query(s.addr(), s.hitName, dns.TypeTXT, time.Second); err != nil || !a.is(dns.RcodeSuccess, s.hitValue) {
			return nil, fmt.Errorf("%s answers %s TXT with %+v (%v), want %q", s.label, s.hitName, a, err, s.hitValue)
		}
		if a, err := query(s.addr(), nxName(), dns.TypeTXT, time.Second); err != nil || !a.is(dns.RcodeNameError, "") {
			return nil, fmt.Errorf("%s answers %s TXT with %+v (%v), want NXDOMAIN", s.label, nxName(), a, err)
		}
	}
	return []workload{hit, nx, spread}, nil
}
