// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
)

// ConfigMap churn (issue 12, property 7): while one ConfigMap of about 1 MiB of zone data (the
// API server's limit) is rewritten in a loop, ChallengeRecords must still be served within
// churnTarget of their creation. Two runs, each its own bin/coredns reading ConfigMaps from
// nsZones only: with the default configmap_limits (the ConfigMap is over the byte limit and
// refused before it is parsed: what is left is reading and decoding it) and with limits raised
// so that the whole ConfigMap is parsed, indexed and served at every rewrite.

// Loopback addresses of the two churn servers.
const (
	churnDefaultIP = "127.0.77.4"
	churnRaisedIP  = "127.0.77.5"
)

const (
	nsZones        = "zones"            // the ConfigMap's namespace, the servers' `configmaps`
	churnCMName    = "acme-zone"        // the ConfigMap
	churnCMKey     = "acme.example.com" // its one data key
	churnLineBytes = 22                 // len(`r00000 TXT "0001abcd"` + "\n")
	churnTimeout   = 2 * time.Minute    // per ChallengeRecord; past it the run stops and says so
	churnCatchUp   = 10 * time.Minute   // longest wait for the raised server to serve the last rewrite
	// raised limits: room for the whole ConfigMap (the defaults are 262144 bytes, 5000 records)
	churnRaisedBytes   = 2 << 20
	churnRaisedRecords = 100_000
)

// churnResult is both runs.
type churnResult struct {
	bytes, lines int // the ConfigMap's data (key and value) and its TXT records
	runs         []*churnRun
}

// churnRun is one bin/coredns measured while the ConfigMap is rewritten.
type churnRun struct {
	label      string // the server's label
	ns         string // its ChallengeRecords' and Delegations' namespace
	raised     bool   // configmap_limits raised so that the ConfigMap is served
	corefile   string
	logPath    string
	refusal    string          // default limits: the plugin's warning about the ConfigMap
	create     []time.Duration // the Create call alone
	answers    []time.Duration // Create call start to the first correct answer
	base       []time.Duration // answers of the same measurement before the rewrites start
	baseCreate []time.Duration
	failed     string          // a record not served within churnTimeout (the run stopped there)
	rewrites   int             // ConfigMap rewrites completed during the measurement
	writeTime  []time.Duration // every rewrite's Update call during the run
	elapsed    time.Duration   // of the measurement: first Create to last answer
	cpu        time.Duration   // CPU time of bin/coredns during the measurement
	behind     int             // raised: rewrites written but not yet served when the last record was
	catchUp    time.Duration   // raised: from the last rewrite's end to serving it
	load       string
	top        string             // CPU profile of the measurement, go tool pprof -top
	shares     map[string]float64 // the same cut into churnCategories
}

// churnCategories cut the CPU profile of a churn run.
var churnCategories = []category{
	{name: "reading and decoding watch events (StreamWatcher.receive)", re: regexp.MustCompile(`^k8s\.io/apimachinery/pkg/watch\.\(\*StreamWatcher\)\.receive$`)},
	{name: "parsing zone data (configMapRecords)", re: regexp.MustCompile(`^github\.com/acmezone/acmezone/plugin/acmezone\.\(\*ACMEZone\)\.configMapRecords$`)},
	{name: "the store taking a ConfigMap (store.setStatic: index and publish)", re: regexp.MustCompile(`^github\.com/acmezone/acmezone/plugin/acmezone\.\(\*store\)\.setStatic$`)},
	{name: "publishing snapshots (store.publish, every change)", re: regexp.MustCompile(`^github\.com/acmezone/acmezone/plugin/acmezone\.\(\*store\)\.publish$`)},
	{name: "answering queries (dnsserver ServeDNS)", re: regexp.MustCompile(`^github\.com/coredns/coredns/core/dnsserver\.\(\*Server\)\.ServeDNS$`)},
	{name: "garbage collector (background mark)", re: regexp.MustCompile(`^runtime\.gcBgMarkWorker$`)},
	{name: "memory allocation (mallocgc)", re: regexp.MustCompile(`^runtime\.mallocgc$`)},
}

// churnLines is how many records fit in bytes of ConfigMap data (key and value).
func churnLines(bytes int) int { return min((bytes-len(churnCMKey))/churnLineBytes, 100_000) }

// churnData is rewrite gen of the zone data: lines TXT records r00000, r00001, …, each value
// naming the rewrite (4 hex digits) and the record (4 more), so every rewrite is a different
// record set of the same size.
func churnData(gen, lines int) string {
	var b strings.Builder
	b.Grow(lines * churnLineBytes)
	for i := range lines {
		fmt.Fprintf(&b, "r%05d TXT \"%04x%04x\"\n", i, gen&0xffff, i&0xffff)
	}
	return b.String()
}

// churnProbe is the static name the servers are asked to learn which rewrite they serve.
func churnProbe() string { return "r00000." + zone }

// churnGen reads the rewrite (modulo 65536) from the probe's TXT value.
func churnGen(txt string) (int, bool) {
	if len(txt) != 8 {
		return 0, false
	}
	g, err := strconv.ParseUint(txt[:4], 16, 16)
	return int(g), err == nil
}

func churnConfigMap(gen, lines int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsZones, Name: churnCMName,
			Labels: map[string]string{"acmezone.io/zone": strings.TrimSuffix(zone, ".")}},
		Data: map[string]string{churnCMKey: churnData(gen, lines)},
	}
}

// rewriter rewrites the ConfigMap back to back, each time with the next rewrite's data.
type rewriter struct {
	c      *cluster
	lines  int
	gen    atomic.Int64 // the newest rewrite written
	writes atomic.Int64 // rewrites completed
	stop   atomic.Bool  // ends the loop after the rewrite in flight
	mu     sync.Mutex
	took   []time.Duration
	err    error
}

// loop rewrites until stop is set (the rewrite in flight is let finish, rather than cancelled
// half-sent) or ctx ends.
func (w *rewriter) loop(ctx context.Context) {
	for !w.stop.Load() && ctx.Err() == nil {
		g := w.gen.Load() + 1
		cm := churnConfigMap(int(g), w.lines) // no resourceVersion: an unconditional update
		start := time.Now()
		err := w.c.client.Update(ctx, cm)
		if err != nil {
			if ctx.Err() == nil {
				w.mu.Lock()
				w.err = fmt.Errorf("rewrite %d of ConfigMap %s/%s: %w", g, nsZones, churnCMName, err)
				w.mu.Unlock()
			}
			return
		}
		w.mu.Lock()
		w.took = append(w.took, time.Since(start))
		w.mu.Unlock()
		w.gen.Store(g)
		w.writes.Add(1)
	}
}

func (w *rewriter) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// churnCorefile serves the zone from the ChallengeRecords and Delegations of namespace and the
// ConfigMaps of nsZones; limits is "" or a configmap_limits line.
func (s *server) churnCorefile(kubeconfig, keyFile, namespace, limits string) {
	s.corefile = s.common() + fmt.Sprintf(`    acmezone {
        nameserver ns.example.com 127.0.0.1
        ttl 10
        soa hostmaster.example.com 60 30 86400 5
        kubeconfig %s
        target_key %s
        namespaces %s
        configmaps %s
%s    }
}
`, kubeconfig, keyFile, namespace, nsZones, limits)
}

// measureChurn creates the ConfigMap and runs both servers one after the other, each with n
// ChallengeRecords; profileSeconds of CPU profile are taken from the start of each measurement.
func measureChurn(ctx context.Context, c *cluster, dir, coredns string, bytes, n, workers, profileSeconds int) (*churnResult, error) {
	res := &churnResult{bytes: bytes, lines: churnLines(bytes)}
	// A key of their own, in a folder of their own: the churn servers share nothing with the others.
	keyDir := filepath.Join(dir, "churn")
	if err := os.MkdirAll(keyDir, 0o755); err != nil {
		return nil, err
	}
	keyFile, key, err := stack.WriteTargetKey(keyDir)
	if err != nil {
		return nil, err
	}
	if err := c.createNamespaces(ctx, nsZones, "cm-default", "cm-raised"); err != nil {
		return nil, err
	}
	cm := churnConfigMap(0, res.lines)
	size := len(churnCMKey) + len(cm.Data[churnCMKey])
	logf("ConfigMap churn: ConfigMap %s/%s with %s bytes of zone data, %s TXT records", nsZones, churnCMName, count(size), count(res.lines))
	if err := c.create(ctx, cm); err != nil {
		return nil, err
	}
	res.bytes = size
	w := &rewriter{c: c, lines: res.lines}
	for _, r := range []*churnRun{
		{label: "acmezone-cm-default", ns: "cm-default"},
		{label: "acmezone-cm-raised", ns: "cm-raised", raised: true},
	} {
		if err := r.measure(ctx, c, w, dir, coredns, keyFile, key, n, workers, profileSeconds); err != nil {
			return nil, fmt.Errorf("ConfigMap churn, %s: %w", r.label, err)
		}
		res.runs = append(res.runs, r)
	}
	return res, nil
}

// churnDelegation is the i-th Delegation of ns: no spec.target, so it is placed at the target
// the tenancy rule derives for its namespace and domain.
func churnDelegation(ns string, i int) *v1alpha1.Delegation {
	return &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("d-%07d", i)},
		Spec:       v1alpha1.DelegationSpec{Domain: fmt.Sprintf("d%07d.%s.example.net", i, ns)},
	}
}

func (r *churnRun) measure(ctx context.Context, c *cluster, w *rewriter, dir, coredns, keyFile string, key v1alpha1.TargetKey, n, workers, profileSeconds int) error {
	// 2n+1 Delegations (the first one's record tells the start-up that the server has synced)
	// and their targets.
	targets := make([]string, 2*n+1)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	errs := make([]error, len(targets))
	for i := range targets {
		d := churnDelegation(r.ns, i)
		t, err := key.Target(v1alpha1.ClaimOf(d), zone)
		if err != nil {
			return err
		}
		targets[i] = t
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = c.create(ctx, d)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if err := c.create(ctx, v1alpha1.NewChallengeRecord(r.ns, targets[0], keyValue(r.ns, 0))); err != nil {
		return err
	}

	ip, limits := churnDefaultIP, ""
	if r.raised {
		ip, limits = churnRaisedIP, fmt.Sprintf("        configmap_limits %d %d\n", churnRaisedBytes, churnRaisedRecords)
	}
	s, err := newServer(r.label, ip)
	if err != nil {
		return err
	}
	s.hitName, s.hitValue, s.records, s.keyFile = targets[0], keyValue(r.ns, 0), 1, keyFile
	s.churnCorefile(c.kubeconfig, keyFile, r.ns, limits)
	r.corefile = s.corefile
	logf("starting bin/coredns %s on %s", s.label, s.addr())
	defer s.stop()
	if err := s.start(ctx, dir, coredns); err != nil {
		return err
	}
	r.logPath = s.proc.LogPath
	// Delegations 1 to n are for the records measured without rewrites, n+1 to 2n with.
	for _, t := range targets[1:] {
		if err := waitAnswer(ctx, s, t, dns.RcodeSuccess, "", 60*time.Second); err != nil {
			return fmt.Errorf("delegated target before the measurement: %w", err)
		}
	}
	if err := r.checkConfigMap(ctx, s); err != nil {
		return err
	}

	// The same measurement without rewrites first: what this machine gives at the time.
	logf("%s: %d ChallengeRecords created one by one, no rewrites", r.label, n)
	if r.baseCreate, r.base, r.failed, err = propagate(ctx, c, s, r.ns, targets, 1, n+1); err != nil {
		return err
	}
	if r.failed != "" {
		return fmt.Errorf("without rewrites, %s", r.failed)
	}

	// The rewrites run for the whole measurement; the first two are let through first.
	w.stop.Store(false)
	w.mu.Lock()
	writesBefore := len(w.took)
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.loop(ctx); close(done) }()
	stopWrites := sync.OnceFunc(func() { w.stop.Store(true); <-done })
	defer stopWrites()
	for w0 := w.writes.Load(); w.writes.Load() < w0+2; time.Sleep(10 * time.Millisecond) {
		if err := w.failure(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	profile := filepath.Join(dir, "cpu-"+r.label+".pb.gz")
	profc := make(chan error, 1)
	go func() { profc <- s.cpuProfile(ctx, profileSeconds, profile) }()

	r.load = loadavg()
	logf("%s: %d ChallengeRecords created one by one while ConfigMap %s/%s is rewritten in a loop", r.label, n, nsZones, churnCMName)
	cpu0, _ := cpuTimeOf(s.proc)
	writes0 := w.writes.Load()
	start := time.Now()
	r.create, r.answers, r.failed, err = propagate(ctx, c, s, r.ns, targets, n+1, 2*n+1)
	if err != nil {
		return err
	}
	r.elapsed = time.Since(start)
	r.rewrites = int(w.writes.Load() - writes0)
	cpu1, _ := cpuTimeOf(s.proc)
	r.cpu = cpu1 - cpu0
	if err := w.failure(); err != nil {
		return err
	}

	if r.raised {
		// How far behind the rewrites the server was when the last record was served, and how
		// long it takes to serve the last rewrite once they stop.
		if a, err := query(s.addr(), churnProbe(), dns.TypeTXT, time.Second); err == nil && len(a.txt) == 1 {
			if g, ok := churnGen(a.txt[0]); ok {
				r.behind = (int(w.gen.Load()) - g) & 0xffff
			}
		}
	}
	stopWrites()
	end := time.Now()
	if r.raised {
		last := int(w.gen.Load())
		if err := waitAnswer(ctx, s, churnProbe(), dns.RcodeSuccess, fmt.Sprintf("%04x%04x", last&0xffff, 0), churnCatchUp); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.catchUp = -1 // not within churnCatchUp
		} else {
			r.catchUp = time.Since(end)
		}
	}
	w.mu.Lock()
	r.writeTime = append([]time.Duration(nil), w.took[writesBefore:]...)
	w.mu.Unlock()
	if err := <-profc; err != nil {
		return fmt.Errorf("CPU profile: %w", err)
	}
	if r.top, err = pprofTop(profile, "-nodecount=15"); err != nil {
		return err
	}
	r.top = trimTop(r.top)
	cum, err := pprofTop(profile, "-cum", "-nodecount=600")
	if err != nil {
		return err
	}
	r.shares = shares(cum, churnCategories)
	logf("  %s", r.summary())
	return nil
}

// propagate creates a ChallengeRecord at each of targets[from:to], one at a time, and polls s
// until it answers with the record's value: the Create call's time and the time from its start
// to the first correct answer, as measurePropagation does. A record not served within
// churnTimeout ends it, with failed saying so.
func propagate(ctx context.Context, c *cluster, s *server, ns string, targets []string, from, to int) (create, answers []time.Duration, failed string, err error) {
	for i := from; i < to; i++ {
		name, value := targets[i], keyValue(ns, i)
		rec := v1alpha1.NewChallengeRecord(ns, name, value)
		t0 := time.Now()
		rec.Annotations = map[string]string{v1alpha1.CreatedAtAnnotation: t0.UTC().Format(time.RFC3339Nano)}
		if err := c.client.Create(ctx, rec); err != nil {
			return nil, nil, "", fmt.Errorf("create ChallengeRecord %s: %w", rec.Name, err)
		}
		create = append(create, time.Since(t0))
		err := waitAnswer(ctx, s, name, dns.RcodeSuccess, value, churnTimeout)
		if ctx.Err() != nil {
			return nil, nil, "", ctx.Err()
		}
		if err != nil {
			failed = fmt.Sprintf("record %d of %d was not served within %s; the run stopped there", i-from+1, to-from, churnTimeout)
			logf("  %s", failed)
			break
		}
		answers = append(answers, time.Since(t0))
	}
	return create, answers, failed, nil
}

// afterCreate is, record by record, the time from the Create call's return to the answer: the
// watch event's way to the server and the server's own work.
func (r *churnRun) afterCreate() []time.Duration {
	d := make([]time.Duration, len(r.answers))
	for i := range d {
		d[i] = r.answers[i] - r.create[i]
	}
	return d
}

// checkConfigMap makes sure the server does with the ConfigMap what the run is about: serve it
// (raised limits), or refuse it with a warning (default limits).
func (r *churnRun) checkConfigMap(ctx context.Context, s *server) error {
	if r.raised {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			a, err := query(s.addr(), churnProbe(), dns.TypeTXT, time.Second)
			if err == nil && a.rcode == dns.RcodeSuccess && len(a.txt) == 1 {
				if _, ok := churnGen(a.txt[0]); ok {
					return nil
				}
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("with raised limits the ConfigMap's records are not served: %s TXT gives %+v (%v):\n%s",
					churnProbe(), a, err, s.proc.Tail(20))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := waitAnswer(ctx, s, churnProbe(), dns.RcodeNameError, "", 10*time.Second); err != nil {
		return fmt.Errorf("with the default limits the 1 MiB ConfigMap must not be served: %w", err)
	}
	for _, l := range strings.Split(s.proc.Logs(), "\n") {
		if strings.Contains(l, churnCMName) && strings.Contains(l, "not served") {
			r.refusal = strings.TrimSpace(l)
			break
		}
	}
	return nil
}

func (r *churnRun) met() bool {
	return r.failed == "" && len(r.answers) > 0 && percentile(r.answers, 100) <= churnTarget
}

func (r *churnRun) what() string {
	if r.raised {
		return "raised limits, the ConfigMap parsed and served at every rewrite"
	}
	return "default limits, the ConfigMap refused before parsing"
}

func (r *churnRun) summary() string {
	return fmt.Sprintf("%d records: p50 %s, p99 %s, max %s (after the Create call: p99 %s, max %s; without rewrites: p99 %s, max %s); %d rewrites in %s; CoreDNS CPU %s",
		len(r.answers), ms(percentile(r.answers, 50)), ms(percentile(r.answers, 99)), ms(percentile(r.answers, 100)),
		ms(percentile(r.afterCreate(), 99)), ms(percentile(r.afterCreate(), 100)), ms(percentile(r.base, 99)), ms(percentile(r.base, 100)),
		r.rewrites, r.elapsed.Round(100*time.Millisecond), ms(r.cpu))
}

// goals are the targets-table rows, one per run.
func (ch *churnResult) goals() []goal {
	var ts []goal
	for _, r := range ch.runs {
		t := goal{
			what: fmt.Sprintf("ConfigMap churn (issue 12), %s: every ChallengeRecord served ≤ %s after its creation", r.what(), ms(churnTarget)),
			measured: fmt.Sprintf("max %s, p99 %s over %d records, during %d rewrites of a %s-byte ConfigMap",
				ms(percentile(r.answers, 100)), ms(percentile(r.answers, 99)), len(r.answers), r.rewrites, count(ch.bytes)),
			met: r.met(),
		}
		switch {
		case r.failed != "":
			t.miss = r.failed
		case !t.met:
			worst := percentile(r.answers, 100)
			t.miss = fmt.Sprintf("%s over (%.1f× the target)", ms(worst-churnTarget), float64(worst)/float64(churnTarget))
		}
		ts = append(ts, t)
	}
	return ts
}

// section is the report's "ConfigMap churn" section (also printed by -configmap-only).
func (ch *churnResult) section(n, profileSeconds int) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## ConfigMap churn\n\n")
	p("| ConfigMap | Zone data (key and value) | TXT records | ChallengeRecords per run | Delegations per run |\n| --------- | ---: | ---: | ---: | ---: |\n")
	p("| `%s/%s` | %s bytes | %s | %d, and %d before the rewrites start | %d |\n\n", nsZones, churnCMName, count(ch.bytes), count(ch.lines), n, n, 2*n+1)
	p("| Run | `configmap_limits` | The ConfigMap | Rewrites during the measurement | Records | p50 | p99 | **max** (target ≤ %s) | Met | After the Create call returned: p99 / max | The Create call: p50 / max | Without rewrites: p50 / p99 / max |\n", ms(churnTarget))
	p("| --- | ------------------ | ------------- | ------------------------------: | ------: | --: | --: | ------: | --- | -----------------: | -----------: | -------------: |\n")
	for _, r := range ch.runs {
		limits, cm := "default", "refused, not parsed"
		if r.raised {
			limits, cm = fmt.Sprintf("`%d %d`", churnRaisedBytes, churnRaisedRecords), "parsed and served"
		}
		met := yes(r.met())
		if r.failed != "" {
			met += ": " + r.failed
		}
		after := r.afterCreate()
		p("| `%s` | %s | %s | %d in %s (%.1f/s) | %d | %s | %s | **%s** | %s | %s / %s | %s / %s | %s / %s / %s |\n", r.label, limits, cm, r.rewrites,
			r.elapsed.Round(100*time.Millisecond), float64(r.rewrites)/r.elapsed.Seconds(), len(r.answers),
			ms(percentile(r.answers, 50)), ms(percentile(r.answers, 99)), ms(percentile(r.answers, 100)), met,
			ms(percentile(after, 99)), ms(percentile(after, 100)),
			ms(percentile(r.create, 50)), ms(percentile(r.create, 100)),
			ms(percentile(r.base, 50)), ms(percentile(r.base, 99)), ms(percentile(r.base, 100)))
	}
	p("\n| Run | CoreDNS CPU time | Share of one core | Update call: median / max | Rewrites behind at the last record | Last rewrite served after | Load average | The plugin's warning |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, r := range ch.runs {
		behind, catchUp, warning := "—", "—", "—"
		if r.raised {
			behind, catchUp = fmt.Sprint(r.behind), ms(r.catchUp)
			if r.catchUp < 0 {
				catchUp = "not within " + churnCatchUp.String()
			}
		} else if r.refusal != "" {
			warning = "`" + shortenLog(r.refusal) + "`"
		}
		p("| `%s` | %s | %.0f%% | %s / %s | %s | %s | %s | %s |\n", r.label, ms(r.cpu), 100*r.cpu.Seconds()/r.elapsed.Seconds(),
			ms(percentile(r.writeTime, 50)), ms(percentile(r.writeTime, 100)), behind, catchUp, r.load, warning)
	}
	p("\nCPU profile of each run's first %d s, cumulative shares:\n\n| Part |", profileSeconds)
	for _, r := range ch.runs {
		p(" `%s` |", r.label)
	}
	p("\n| ---- |")
	for range ch.runs {
		p(" ---: |")
	}
	p("\n")
	for _, c := range churnCategories {
		p("| %s |", c.name)
		for _, r := range ch.runs {
			p(" %.1f%% |", r.shares[c.name])
		}
		p("\n")
	}
	p("\n")
	for _, r := range ch.runs {
		p("`go tool pprof -top` of `%s`:\n\n~~~ txt\n%s\n~~~\n\n", r.label, r.top)
	}
	if len(ch.runs) > 0 {
		r := ch.runs[len(ch.runs)-1]
		p("The Corefile of `%s`:\n\n~~~ corefile\n%s~~~\n\n", r.label, strings.ReplaceAll(r.corefile, filepath.Dir(r.logPath)+"/", "WORKDIR/"))
	}
	return b.String()
}

// shortenLog keeps a log line's message readable in a table: at most 300 bytes, no backquotes.
func shortenLog(l string) string {
	l = strings.ReplaceAll(l, "`", "'")
	if len(l) > 300 {
		l = l[:300] + "…"
	}
	return l
}
