// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// perfSettings are the dnsperf options every run uses, so that runs compare.
type perfSettings struct {
	clients, threads, outstanding int
	seconds                       int
}

func (p perfSettings) args(s *server, queryFile string) []string {
	return []string{
		"-s", s.ip, "-p", strconv.Itoa(s.port), "-d", queryFile,
		"-c", strconv.Itoa(p.clients), "-T", strconv.Itoa(p.threads),
		"-q", strconv.Itoa(p.outstanding), "-l", strconv.Itoa(p.seconds),
	}
}

// workload is one kind of query: a query file per server and the rcode every answer must have.
type workload struct {
	name      string // hit, nxdomain, hit-spread
	files     map[*server]string
	wantRcode string // as dnsperf prints it
}

// perfRun is one dnsperf run.
type perfRun struct {
	round    int
	server   string
	workload string
	qps      float64
	latency  float64 // average, seconds
	lostPct  float64
	rcodes   string // dnsperf's "Response codes" line
	load1    float64
	cmd      string // the command, with the query file's base name
}

var (
	reQPS     = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reLost    = regexp.MustCompile(`Queries lost:\s+\d+ \(([0-9.]+)%\)`)
	reLatency = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	reRcodes  = regexp.MustCompile(`Response codes:\s+(.*)`)
)

// runDNSPerf runs dnsperf once against s and checks that the answers had the expected rcode.
func runDNSPerf(ctx context.Context, set perfSettings, s *server, w workload) (perfRun, string, error) {
	run := perfRun{server: s.label, workload: w.name, load1: load1()}
	args := set.args(s, w.files[s])
	shown := set.args(s, filepath.Base(w.files[s]))
	run.cmd = "dnsperf " + strings.Join(shown, " ")
	cmd := exec.CommandContext(ctx, "dnsperf", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return run, "", fmt.Errorf("dnsperf %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	text := out.String()
	m := reQPS.FindStringSubmatch(text)
	if m == nil {
		return run, "", fmt.Errorf("dnsperf printed no \"Queries per second\":\n%s", text)
	}
	run.qps, _ = strconv.ParseFloat(m[1], 64)
	if m := reLost.FindStringSubmatch(text); m != nil {
		run.lostPct, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reLatency.FindStringSubmatch(text); m != nil {
		run.latency, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reRcodes.FindStringSubmatch(text); m != nil {
		run.rcodes = strings.TrimSpace(m[1])
	}
	// Every answer must be the one the workload is named after: all of them with one rcode.
	if !strings.HasPrefix(run.rcodes, w.wantRcode+" ") || !strings.Contains(run.rcodes, "(100.00%)") {
		return run, text, fmt.Errorf("dnsperf against %s (%s): response codes %q, want only %s\n%s", s.label, w.name, run.rcodes, w.wantRcode, text)
	}
	return run, text, nil
}

// writeQueryFile writes dnsperf's input: one "NAME TYPE" per line.
func writeQueryFile(path string, names []string, qtype string) error {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", n, qtype)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// dnsperfVersion is the version line dnsperf prints with -h.
func dnsperfVersion() string {
	out, _ := exec.Command("dnsperf", "-h").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Version ") {
			return strings.TrimPrefix(l, "Version ")
		}
	}
	return "unknown"
}

// load1 is the one-minute load average.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// waitForQuiet polls the load average every 30 s until the one-minute figure is below max or
// the deadline passes; it reports whether the machine got quiet.
func waitForQuiet(ctx context.Context, max float64, deadline time.Time, what string) bool {
	for {
		l := load1()
		if l < max {
			return true
		}
		if !time.Now().Before(deadline) {
			logf("load average %.2f is still above %.2f; measuring %s anyway (the A/B interleaving keeps ratios fair)", l, max, what)
			return false
		}
		logf("load average %.2f ≥ %.2f: waiting for a quieter machine before %s (until %s)", l, max, what, deadline.Format("15:04:05"))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(min(30*time.Second, time.Until(deadline)+time.Second)):
		}
	}
}
