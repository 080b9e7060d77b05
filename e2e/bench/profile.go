// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

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
var categories = []category{
	{name: "CoreDNS server chain (dnsserver ServeDNS: the plugin, writing the reply)", re: regexp.MustCompile(`^github\.com/coredns/coredns/core/dnsserver\.\(\*Server\)\.ServeDNS$`)},
	{name: "writing the reply (WriteMsg: pack, sendmsg)", re: regexp.MustCompile(`^github\.com/(coredns/coredns/request\.\(\*ScrubWriter\)|miekg/dns\.\(\*response\))\.WriteMsg$`)},
	{name: "reading queries (readUDP: recvmsg)", re: regexp.MustCompile(`^github\.com/miekg/dns\.\(\*Server\)\.readUDP$`)},
	{name: "unpacking queries (Msg.Unpack)", re: regexp.MustCompile(`^github\.com/miekg/dns\.\(\*Msg\)\.unpack$`)},
	{name: "system calls (all)", re: regexp.MustCompile(`^(internal/runtime/syscall(/linux)?\.Syscall6|syscall\.RawSyscall6)$`)},
	{name: "goroutine stack growth (runtime.newstack)", re: regexp.MustCompile(`^runtime\.newstack$`)},
	{name: "garbage collector (background mark)", re: regexp.MustCompile(`^runtime\.gcBgMarkWorker$`)},
	{name: "memory allocation (mallocgc)", re: regexp.MustCompile(`^runtime\.mallocgc$`)},
}

// category is one part of a profile: the cumulative share of the first (outermost) function
// that matches, or with sum the shares of every matching function (for functions that never
// call each other).
type category struct {
	name string
	re   *regexp.Regexp
	sum  bool
}

// syncCategories cut a profile of the initial sync.
var syncCategories = []category{
	{name: "reading the responses (TLS, gzip)", re: regexp.MustCompile(`^(crypto/tls\.\(\*Conn\)\.Read|compress/gzip\.\(\*Reader\)\.Read)$`), sum: true},
	{name: "decoding the objects, item by item (JSON)", re: regexp.MustCompile(`^github\.com/acmezone/acmezone/plugin/acmezone\.(decodeList)$`), sum: true},
	{name: "acmezone's store taking the lists (sink.Replace)", re: regexp.MustCompile(`^github\.com/acmezone/acmezone/plugin/acmezone\.\(\*sink\)\.Replace$`), sum: true},
	{name: "publishing snapshots (store.publish)", re: regexp.MustCompile(`^github\.com/acmezone/acmezone/plugin/acmezone\.\(\*store\)\.publish$`)},
	{name: "garbage collector (background mark)", re: regexp.MustCompile(`^runtime\.gcBgMarkWorker$`)},
	{name: "memory allocation (mallocgc)", re: regexp.MustCompile(`^runtime\.mallocgc$`)},
}

// heapCategories cut a heap profile (in-use space) of an acmezone server.
var heapCategories = []category{
	{name: "strings decoded from the API server and kept (fqdns and targets, TXT values)", re: regexp.MustCompile(`^github\.com/acmezone/acmezone/plugin/acmezone\.(decodeList)$`), sum: true},
	// put* and publish are disjoint callers of store.edit, which allocates entries and maps.
	{name: "acmezone's index (entries, record and Delegation slots, shard maps)", re: regexp.MustCompile(`^github\.com/acmezone/acmezone/plugin/acmezone\.\(\*store\)\.(put(Record|Delegation|Static)|publish)$`), sum: true},
}

var profileTotal = regexp.MustCompile(`of ([0-9.]+)(B|kB|MB|GB) total`)

// heapResult cuts the heap profile into heapCategories; live is the heap in use at the last
// garbage collection, in bytes.
func heapResult(path string) (top string, live int64, parts map[string]float64, err error) {
	if top, err = pprofTop(path, "-sample_index=inuse_space", "-nodecount=15"); err != nil {
		return "", 0, nil, err
	}
	cum, err := pprofTop(path, "-cum", "-sample_index=inuse_space", "-nodecount=600")
	if err != nil {
		return "", 0, nil, err
	}
	if m := profileTotal.FindStringSubmatch(cum); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		live = int64(v * map[string]float64{"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m[2]])
	}
	return trimTop(top), live, shares(cum, heapCategories), nil
}

// shares cuts a `go tool pprof -top -cum` listing into categories, in percent of the profile.
func shares(cum string, cats []category) map[string]float64 {
	out := map[string]float64{}
	seen := map[string]bool{}
	for _, line := range strings.Split(cum, "\n") {
		m := topLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pct, _ := strconv.ParseFloat(m[1], 64)
		for _, c := range cats {
			if !c.re.MatchString(m[2]) || (seen[c.name] && !c.sum) {
				continue
			}
			seen[c.name] = true
			out[c.name] += pct
		}
	}
	return out
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
	res.shares = shares(cum, categories)
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

// syncProfileResult summarises the CPU profile of the large server's initial sync.
func syncProfileResult(path string) (top string, parts map[string]float64, err error) {
	if top, err = pprofTop(path, "-nodecount=15"); err != nil {
		return "", nil, err
	}
	cum, err := pprofTop(path, "-cum", "-nodecount=600")
	if err != nil {
		return "", nil, err
	}
	return trimTop(top), shares(cum, syncCategories), nil
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
