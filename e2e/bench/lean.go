// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/miekg/dns"
)

// Loopback addresses of the lean/full comparison's servers (the ConfigMap churn uses .4 and .5).
const (
	leanIdleIP   = "127.0.77.6"
	fullIdleIP   = "127.0.77.7"
	leanLoadedIP = "127.0.77.8"
	fullLoadedIP = "127.0.77.9"
)

// coreBuild is one build of cmd/coredns, compiled as `make images` compiles it, and its image.
type coreBuild struct {
	name, tags string
	binary     string
	plugins    int // lines of `coredns -plugins`
	binSize    int64
	imageGz    int64 // manifest, config and the gzipped layer: what a registry stores and a pull fetches
	imageTar   int64 // the layer uncompressed: what the node's disk holds
}

// leanResult is the side-by-side measurement of the lean and the full build.
type leanResult struct {
	lean, full             *coreBuild
	leanIdle, fullIdle     *server // the small server's Corefile and records
	leanLoaded, fullLoaded *server // the large server's Corefile and records
	loadedRSS              map[*server]int64
	runs                   []perfRun
	rounds                 int
}

// buildCoreDNS compiles cmd/coredns with tags into dir/build-<name>/linux_<arch>/coredns and
// builds its coredns image with build/images.
func buildCoreDNS(ctx context.Context, dir, name, tags string) (*coreBuild, error) {
	b := &coreBuild{name: name, tags: tags}
	binDir := filepath.Join(dir, "build-"+name)
	b.binary = filepath.Join(binDir, "linux_"+runtime.GOARCH, "coredns")
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", b.binary}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/coredns")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	fi, err := os.Stat(b.binary)
	if err != nil {
		return nil, err
	}
	b.binSize = fi.Size()
	out, err := exec.CommandContext(ctx, b.binary, "-plugins").Output()
	if err != nil {
		return nil, fmt.Errorf("%s -plugins: %w", b.binary, err)
	}
	b.plugins = len(strings.Fields(string(out))) // one name a line
	imgDir := filepath.Join(binDir, "images")
	img := exec.CommandContext(ctx, "go", "run", "./build/images", "-bin", binDir, "-out", imgDir,
		"-images", "coredns", "-platforms", "linux/"+runtime.GOARCH, "-epoch", "0")
	if out, err := img.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go run ./build/images: %w\n%s", err, out)
	}
	if b.imageGz, b.imageTar, err = imageSizes(filepath.Join(imgDir, "coredns")); err != nil {
		return nil, fmt.Errorf("image of the %s build: %w", name, err)
	}
	return b, nil
}

// imageSizes reads the first image of the OCI layout's image index (build/images writes an
// index of indexes) and returns its compressed size (manifest, config, layers) and the
// uncompressed size of its layers.
func imageSizes(path string) (compressed, uncompressed int64, err error) {
	p, err := layout.FromPath(path)
	if err != nil {
		return 0, 0, err
	}
	top, err := p.ImageIndex()
	if err != nil {
		return 0, 0, err
	}
	tm, err := top.IndexManifest()
	if err != nil || len(tm.Manifests) == 0 {
		return 0, 0, fmt.Errorf("empty layout (%v)", err)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		return 0, 0, err
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) == 0 {
		return 0, 0, fmt.Errorf("empty image index (%v)", err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return 0, 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, 0, err
	}
	compressed = int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		compressed += l.Size
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, 0, err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, 0, err
		}
		uncompressed += n
	}
	return compressed, uncompressed, nil
}

// measureLean starts the lean and the full build with the small server's Corefile (idle
// RSS) and then with the large one's (RSS under dnsperf, and throughput in interleaved rounds).
// extra is the records both kinds serve beyond -small and -records (those of the propagation test).
func measureLean(ctx context.Context, c *cluster, dir string, o options, lean, full *coreBuild, extra int) (*leanResult, error) {
	r := &leanResult{lean: lean, full: full, loadedRSS: map[*server]int64{}, rounds: o.rounds}
	var err error
	pair := func(kind, leanIP, fullIP string, records int, hitName, hitValue string, namespaces ...string) (*server, *server, error) {
		var ss [2]*server
		for i, b := range []*coreBuild{lean, full} {
			s, err := newServer(b.name+"-"+kind, []string{leanIP, fullIP}[i])
			if err != nil {
				return nil, nil, err
			}
			s.hitName, s.hitValue, s.records, s.keyFile = hitName, hitValue, records, c.keyFile
			s.acmezoneCorefile(c.kubeconfig, namespaces...)
			logf("starting the %s build %s on %s", b.name, s.label, s.addr())
			if err := s.start(ctx, dir, b.binary); err != nil {
				s.stop()
				if i == 1 {
					ss[0].stop()
				}
				return nil, nil, err
			}
			logf("  first correct answer after %s, RSS %s", ms(s.syncTime), mb(s.afterSync.RSS))
			ss[i] = s
		}
		return ss[0], ss[1], nil
	}

	// Idle: synced, no queries.
	if r.leanIdle, r.fullIdle, err = pair(recordsLabel(o.small), leanIdleIP, fullIdleIP, o.small+extra,
		target(nsSmall, 0), keyValue(nsSmall, 0), nsSmall, nsProp); err != nil {
		return nil, err
	}
	// Read both again side by side, after the later one has settled too.
	for _, s := range []*server{r.leanIdle, r.fullIdle} {
		s.afterSync, err = memoryOf(s.proc)
		if err != nil {
			break
		}
	}
	r.leanIdle.stop()
	r.fullIdle.stop()
	if err != nil {
		return nil, err
	}

	// Loaded: the large server's records, every namespace.
	if r.leanLoaded, r.fullLoaded, err = pair(recordsLabel(o.records), leanLoadedIP, fullLoadedIP, o.records+o.small+extra,
		target(nsLarge, o.records/2), keyValue(nsLarge, o.records/2)); err != nil {
		return nil, err
	}
	defer r.leanLoaded.stop()
	defer r.fullLoaded.stop()
	pairs := []*server{r.leanLoaded, r.fullLoaded}
	hitFile, nxFile := filepath.Join(dir, "q-lean-hit.txt"), filepath.Join(dir, "q-lean-nxdomain.txt")
	spreadFile := filepath.Join(dir, "q-lean-hit-spread.txt")
	names := make([]string, o.records)
	for i, j := range rand.Perm(o.records) {
		names[i] = target(nsLarge, j)
	}
	for path, names := range map[string][]string{hitFile: {r.leanLoaded.hitName}, nxFile: {nxName()}, spreadFile: names} {
		if err := writeQueryFile(path, names, "TXT"); err != nil {
			return nil, err
		}
	}
	files := map[*server]string{}
	nxFiles := map[*server]string{}
	spreadFiles := map[*server]string{}
	for _, s := range pairs {
		files[s], nxFiles[s], spreadFiles[s] = hitFile, nxFile, spreadFile
		if a, err := query(s.addr(), nxName(), dns.TypeTXT, time.Second); err != nil || !a.is(dns.RcodeNameError, "") {
			return nil, fmt.Errorf("%s answers %s TXT with %+v (%v), want NXDOMAIN", s.label, nxName(), a, err)
		}
	}
	workloads := []workload{
		{name: "hit", wantRcode: "NOERROR", files: files},
		{name: "nxdomain", wantRcode: "NXDOMAIN", files: nxFiles},
		{name: "hit-spread", wantRcode: "NOERROR", files: spreadFiles},
	}
	logf("dnsperf, lean against full build: %d rounds", o.rounds)
	for round := range o.rounds {
		for _, w := range workloads {
			for k := range pairs {
				s := pairs[(k+round)%len(pairs)]
				run, peak, err := runSampled(ctx, o.perf, s, w)
				if err != nil {
					return nil, err
				}
				run.round = round + 1
				r.runs = append(r.runs, run)
				r.loadedRSS[s] = max(r.loadedRSS[s], peak)
				logf("  round %d %-16s %-10s %8.0f qps, RSS up to %s", run.round, s.label, w.name, run.qps, mb(peak))
			}
		}
	}
	for _, s := range pairs {
		if s.afterLoad, err = memoryOf(s.proc); err != nil {
			return nil, err
		}
		r.loadedRSS[s] = max(r.loadedRSS[s], s.afterLoad.RSS)
	}
	return r, nil
}

// runSampled runs dnsperf against s and reads the server's RSS every 250 ms meanwhile; it
// returns the highest reading.
func runSampled(ctx context.Context, set perfSettings, s *server, w workload) (perfRun, int64, error) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var peak int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := memoryOf(s.proc); err == nil {
				peak = max(peak, m.RSS)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	run, _, err := runDNSPerf(ctx, set, s, w)
	close(done)
	wg.Wait()
	return run, peak, err
}

// recordsLabel is a record count as a server label: 10, 100k.
func recordsLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// ratios are the per-round QPS ratios of the lean to the full build for one query.
func (r *leanResult) ratios(workload string) []float64 {
	full := map[int]float64{}
	for _, run := range r.runs {
		if run.server == r.fullLoaded.label && run.workload == workload {
			full[run.round] = run.qps
		}
	}
	var v []float64
	for _, run := range r.runs {
		if f := full[run.round]; run.server == r.leanLoaded.label && run.workload == workload && f > 0 {
			v = append(v, run.qps/f)
		}
	}
	return v
}

func (r *leanResult) qps(s *server, workload string) []float64 {
	var v []float64
	for _, run := range r.runs {
		if run.server == s.label && run.workload == workload {
			v = append(v, run.qps)
		}
	}
	return v
}

// goals evaluates the lean build's targets.
func (r *leanResult) goals() []goal {
	var ts []goal
	ratioGoal := func(what string, lean, full int64, most float64) goal {
		x := float64(lean) / float64(full)
		t := goal{what: what, measured: fmt.Sprintf("%s lean, %s full: %.2f×", mb(lean), mb(full), x), met: x <= most}
		if !t.met {
			t.miss = fmt.Sprintf("%s over", mb(lean-int64(most*float64(full))))
		}
		return t
	}
	ts = append(ts, ratioGoal(fmt.Sprintf("Lean build: idle RSS (%s records, synced) ≤ %.2f× the full build's", count(r.leanIdle.records), leanIdleRSSMax),
		r.leanIdle.afterSync.RSS, r.fullIdle.afterSync.RSS, leanIdleRSSMax))
	ts = append(ts, ratioGoal(fmt.Sprintf("Lean build: coredns image (compressed, linux/%s) ≤ %.2f× the full build's", runtime.GOARCH, leanImageMax),
		r.lean.imageGz, r.full.imageGz, leanImageMax))
	rss := r.loadedRSS[r.leanLoaded]
	t := goal{
		what:     fmt.Sprintf("Lean build: RSS under dnsperf at %s records ≤ %s", count(r.leanLoaded.records), mb(leanLoadedRSSMax)),
		measured: fmt.Sprintf("%s lean (%s full)", mb(rss), mb(r.loadedRSS[r.fullLoaded])),
		met:      rss <= leanLoadedRSSMax,
	}
	if !t.met {
		t.miss = fmt.Sprintf("%s over", mb(rss-leanLoadedRSSMax))
	}
	ts = append(ts, t)
	var parts []string
	worst := 2.0
	for _, w := range []string{"hit", "nxdomain", "hit-spread"} {
		x := median(r.ratios(w))
		worst = min(worst, x)
		parts = append(parts, fmt.Sprintf("%s %.2f×", w, x))
	}
	t = goal{
		what:     fmt.Sprintf("Lean build: QPS ≥ %.2f× the full build's at %s records, same run", leanQPSMin, count(r.leanLoaded.records)),
		measured: strings.Join(parts, ", "),
		met:      worst >= leanQPSMin,
	}
	if !t.met {
		t.miss = fmt.Sprintf("%.2f× at worst", worst)
	}
	return append(ts, t)
}

// section is the report's tables of the comparison.
func (r *leanResult) section() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Lean and full build\n\n")
	p("| Build | `go build` tags | Plugins | Binary | Image, compressed | Image, uncompressed | Idle RSS, %s records | RSS under dnsperf, %s records | Peak RSS, %s records | Initial sync, %s records |\n",
		count(r.leanIdle.records), count(r.leanLoaded.records), count(r.leanLoaded.records), count(r.leanLoaded.records))
	p("| ----- | ------ | ------: | -----: | ----------------: | ------------------: | ------------------: | ------------------------: | ---------: | ---------: |\n")
	for _, x := range []struct {
		b            *coreBuild
		idle, loaded *server
	}{{r.lean, r.leanIdle, r.leanLoaded}, {r.full, r.fullIdle, r.fullLoaded}} {
		tags := "—"
		if x.b.tags != "" {
			tags = "`" + x.b.tags + "`"
		}
		p("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", x.b.name, tags, x.b.plugins, mb(x.b.binSize), mb(x.b.imageGz), mb(x.b.imageTar),
			mb(x.idle.afterSync.RSS), mb(r.loadedRSS[x.loaded]), mb(x.loaded.afterLoad.HWM), ms(x.loaded.syncTime))
	}
	p("| lean / full | | | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× | |\n\n",
		float64(r.lean.binSize)/float64(r.full.binSize), float64(r.lean.imageGz)/float64(r.full.imageGz), float64(r.lean.imageTar)/float64(r.full.imageTar),
		float64(r.leanIdle.afterSync.RSS)/float64(r.fullIdle.afterSync.RSS), float64(r.loadedRSS[r.leanLoaded])/float64(r.loadedRSS[r.fullLoaded]),
		float64(r.leanLoaded.afterLoad.HWM)/float64(r.fullLoaded.afterLoad.HWM))
	p("| Query | Lean, median QPS | Full, median QPS | Lean / full, median | … in each round |\n")
	p("| ----- | ---------------: | ---------------: | ------------------: | --------------- |\n")
	for _, w := range []string{"hit", "nxdomain", "hit-spread"} {
		var each []string
		for _, x := range r.ratios(w) {
			each = append(each, fmt.Sprintf("%.2f", x))
		}
		p("| %s | %.0f | %.0f | %.2f× | %s |\n", w, median(r.qps(r.leanLoaded, w)), median(r.qps(r.fullLoaded, w)), median(r.ratios(w)), strings.Join(each, ", "))
	}
	p("\n")
	return b.String()
}
