package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// profileResult summarises one CPU profile taken during a dnsperf run.
type profileResult struct {
	server, workload string
	qps              float64
	top              string             // go tool pprof -top
	shares           map[string]float64 // part of the process's CPU time, by category
}

// categories are the parts of a query's life in CoreDNS that a CPU profile is cut into: each
// is the cumulative share of the first (outermost) function that matches. The plugin's own work
// is measured apart, without the reply's writing, which the plugin calls but which is the same
// code for every plugin.
var categories = []struct {
	name string
	re   *regexp.Regexp
}{
	{"CoreDNS server chain (dnsserver ServeDNS: the plugin, writing the reply)", regexp.MustCompile(`^github\.com/coredns/coredns/core/dnsserver\.\(\*Server\)\.ServeDNS$`)},
	{"writing the reply (WriteMsg: pack, sendmsg)", regexp.MustCompile(`^github\.com/(coredns/coredns/request\.\(\*ScrubWriter\)|miekg/dns\.\(\*response\))\.WriteMsg$`)},
	{"reading queries (readUDP: recvmsg)", regexp.MustCompile(`^github\.com/miekg/dns\.\(\*Server\)\.readUDP$`)},
	{"unpacking queries (Msg.Unpack)", regexp.MustCompile(`^github\.com/miekg/dns\.\(\*Msg\)\.unpack$`)},
	{"system calls (all)", regexp.MustCompile(`^(internal/runtime/syscall(/linux)?\.Syscall6|syscall\.RawSyscall6)$`)},
	{"goroutine stack growth (runtime.newstack)", regexp.MustCompile(`^runtime\.newstack$`)},
	{"garbage collector (background mark)", regexp.MustCompile(`^runtime\.gcBgMarkWorker$`)},
	{"memory allocation (mallocgc)", regexp.MustCompile(`^runtime\.mallocgc$`)},
}

// pluginServeDNS matches the ServeDNS of both plugins under test.
const pluginServeDNS = `^github\.com/(acmezone/acmezone/plugin/acmezone\.\(\*ACMEZone\)|coredns/coredns/plugin/file\.File)\.ServeDNS$`

// pluginShare is the name of the plugin's own share in profileResult.shares.
const pluginShare = "the plugin's own work (its ServeDNS without writing the reply)"

var topLine = regexp.MustCompile(`^\s*[0-9.]+\w*\s+[0-9.]+%\s+[0-9.]+%\s+[0-9.]+\w*\s+([0-9.]+)%\s+(\S+)`)

// profileRun runs dnsperf against s once more, with a CPU profile of the middle of the run.
func profileRun(ctx context.Context, dir string, set perfSettings, s *server, w workload) (profileResult, error) {
	res := profileResult{server: s.label, workload: w.name}
	seconds := max(set.seconds-3, 1)
	path := filepath.Join(dir, fmt.Sprintf("cpu-%s-%s.pb.gz", s.label, w.name))
	type done struct {
		run perfRun
		err error
	}
	perf := make(chan done, 1)
	go func() {
		run, _, err := runDNSPerf(ctx, set, s, w)
		perf <- done{run, err}
	}()
	time.Sleep(time.Second)
	profErr := s.cpuProfile(ctx, seconds, path)
	d := <-perf
	if d.err != nil {
		return res, d.err
	}
	if profErr != nil {
		return res, profErr
	}
	res.qps = d.run.qps
	var err error
	if res.top, err = pprofTop(path, "-nodecount=15"); err != nil {
		return res, err
	}
	cum, err := pprofTop(path, "-cum", "-nodecount=400")
	if err != nil {
		return res, err
	}
	res.shares = map[string]float64{}
	for _, line := range strings.Split(cum, "\n") {
		m := topLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pct, _ := strconv.ParseFloat(m[1], 64)
		for _, c := range categories {
			if _, seen := res.shares[c.name]; !seen && c.re.MatchString(m[2]) {
				res.shares[c.name] = pct
			}
		}
	}
	// The plugin's own work: samples under its ServeDNS that are not writing the reply
	// (percentages stay relative to the whole profile).
	own, err := pprofTop(path, "-cum", "-nodecount=400", "-focus="+pluginServeDNS, "-ignore=WriteMsg")
	if err != nil {
		return res, err
	}
	re := regexp.MustCompile(pluginServeDNS)
	for _, line := range strings.Split(own, "\n") {
		if m := topLine.FindStringSubmatch(line); m != nil && re.MatchString(m[2]) {
			res.shares[pluginShare], _ = strconv.ParseFloat(m[1], 64)
			break
		}
	}
	res.top = trimTop(res.top)
	return res, nil
}

// trimTop drops pprof's header lines about the file and build.
func trimTop(top string) string {
	var keep []string
	for _, l := range strings.Split(top, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}
