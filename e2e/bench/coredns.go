// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/e2e/stack"
)

// server is one bin/coredns process under test, on its own loopback address.
type server struct {
	label     string // as the tables show it
	ip        string
	port      int
	readyPort int
	pprofPort int
	corefile  string
	keyFile   string // target_key of an acmezone server (stack.WriteTargetKey writes one)
	proc      *stack.Process
	syncTime  time.Duration // process start to the first correct answer
	readyTime time.Duration // process start to /ready answering 200
	afterSync memory
	records   int // ChallengeRecords it serves
	hitName   string
	hitValue  string
	afterLoad memory
	heap      heapStats

	// syncProfile, when set, is where a CPU profile of the first syncProfileSeconds after the
	// start goes: what the initial sync spends its time on.
	syncProfile        string
	syncProfileSeconds int
	syncCPU            time.Duration // CPU time the process used until the first correct answer
}

func (s *server) addr() string { return net.JoinHostPort(s.ip, strconv.Itoa(s.port)) }

// newServer picks the ports of a server on ip.
func newServer(label, ip string) (*server, error) {
	s := &server{label: label, ip: ip}
	for _, p := range []*int{&s.port, &s.readyPort, &s.pprofPort} {
		port, err := freePort(ip)
		if err != nil {
			return nil, err
		}
		*p = port
	}
	return s, nil
}

// common is the part of every Corefile: the zone on the server's own address, readiness, and
// pprof (an HTTP listener only; it is not in the query path).
func (s *server) common() string {
	return fmt.Sprintf("%s:%d {\n    bind %s\n    ready %s:%d\n    pprof %s:%d\n",
		zone, s.port, s.ip, s.ip, s.readyPort, s.ip, s.pprofPort)
}

// acmezoneCorefile serves the zone with the acmezone plugin from the API server, with the
// target key in s.keyFile (Delegations are placed at the targets it derives); namespaces empty
// means all of them.
func (s *server) acmezoneCorefile(kubeconfig string, namespaces ...string) {
	extra := ""
	if s.keyFile != "" {
		extra += "        target_key " + s.keyFile + "\n"
	}
	if len(namespaces) > 0 {
		extra += "        namespaces " + strings.Join(namespaces, " ") + "\n"
	}
	s.corefile = s.common() + fmt.Sprintf(`    acmezone {
        nameserver ns.example.com 127.0.0.1
        ttl 10
        soa hostmaster.example.com 60 30 86400 5
        kubeconfig %s
%s    }
}
`, kubeconfig, extra)
}

// fileCorefile serves the zone with the stock file plugin from zonePath.
func (s *server) fileCorefile(zonePath string) {
	s.corefile = s.common() + fmt.Sprintf("    file %s\n}\n", zonePath)
}

// zoneFile is the file plugin's copy of what acmezone serves: the same SOA and NS, and the same
// TXT record at the same name.
func zoneFile(hitName, hitValue string) string {
	return fmt.Sprintf(`$ORIGIN %s
@	5	IN	SOA	ns.example.com. hostmaster.example.com. 1 60 30 86400 5
@	3600	IN	NS	ns.example.com.
%s	10	IN	TXT	"%s"
`, zone, hitName, hitValue)
}

// start runs bin/coredns with the server's Corefile and waits for the first correct answer to
// the TXT hit (how long that took is the initial sync time) and for /ready.
func (s *server) start(ctx context.Context, dir, binary string) error {
	path := filepath.Join(dir, "Corefile."+s.label)
	if err := os.WriteFile(path, []byte(s.corefile), 0o644); err != nil {
		return err
	}
	p, err := stack.Start(dir, "coredns-"+s.label, binary, "-conf", path)
	if err != nil {
		return err
	}
	s.proc = p
	readyc := make(chan time.Duration, 1)
	go func() { readyc <- s.waitReady(ctx) }()
	profc := make(chan error, 1)
	if s.syncProfile != "" {
		go func() { profc <- s.cpuProfile(ctx, s.syncProfileSeconds, s.syncProfile) }()
	} else {
		profc <- nil
	}

	deadline := time.Now().Add(5 * time.Minute)
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("coredns %s exited (%v):\n%s", s.label, err, p.Tail(30))
		}
		if ans, err := query(s.addr(), s.hitName, dns.TypeTXT, 250*time.Millisecond); err == nil && ans.is(dns.RcodeSuccess, s.hitValue) {
			s.syncTime = time.Since(p.Started)
			s.syncCPU, _ = cpuTimeOf(p)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("coredns %s gives no correct answer for %s TXT after %s:\n%s",
				s.label, s.hitName, time.Since(p.Started).Round(time.Second), p.Tail(30))
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case s.readyTime = <-readyc:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("coredns %s answers but /ready does not report ready:\n%s", s.label, p.Tail(30))
	}
	if err := <-profc; err != nil {
		return fmt.Errorf("CPU profile of the initial sync: %w", err)
	}
	// Let the garbage collector run once the start-up garbage is gone, then read the RSS.
	time.Sleep(3 * time.Second)
	s.afterSync, err = memoryOf(p)
	return err
}

// waitReady polls the ready plugin; the result is counted from the process start.
func (s *server) waitReady(ctx context.Context) time.Duration {
	c := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://%s:%d/ready", s.ip, s.readyPort)
	for ctx.Err() == nil {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(s.proc.Started)
			}
		}
		if done, _ := s.proc.Exited(); done {
			return 0
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0
}

func (s *server) stop() {
	if s.proc != nil {
		s.proc.Stop()
	}
}

// answer is the part of a DNS reply the benchmark checks.
type answer struct {
	rcode int
	txt   []string
}

func (a answer) is(rcode int, txt string) bool {
	if a.rcode != rcode {
		return false
	}
	if txt == "" {
		return len(a.txt) == 0
	}
	return len(a.txt) == 1 && a.txt[0] == txt
}

// query asks addr over UDP.
func query(addr, name string, qtype uint16, timeout time.Duration) (answer, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		return answer{}, err
	}
	a := answer{rcode: resp.Rcode}
	for _, rr := range resp.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			a.txt = append(a.txt, strings.Join(t.Txt, ""))
		}
	}
	return a, nil
}

// cpuProfile fetches a CPU profile of seconds from the server's pprof listener into path.
func (s *server) cpuProfile(ctx context.Context, seconds int, path string) error {
	return s.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), path, time.Duration(seconds+30)*time.Second)
}

func (s *server) fetch(ctx context.Context, urlPath, dst string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d%s", s.ip, s.pprofPort, urlPath), nil)
	if err != nil {
		return err
	}
	var resp *http.Response
	for {
		// Right after the start the listener may not be up yet.
		resp, err = http.DefaultClient.Do(req)
		if err == nil || ctx.Err() != nil || time.Since(s.proc.Started) > 10*time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("pprof of %s: %w", s.label, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof of %s %s: %s: %s", s.label, urlPath, resp.Status, b)
	}
	return os.WriteFile(dst, b, 0o644)
}

// heapStats are the Go runtime's own memory figures (runtime.MemStats), in bytes.
type heapStats struct {
	HeapInuse, HeapIdle, HeapReleased, Sys int64
	ok                                     bool
}

var memStatLine = regexp.MustCompile(`(?m)^# (HeapInuse|HeapIdle|HeapReleased|Sys) = (\d+)$`)

// heapProfile saves the heap profile into dir and reads the runtime's memory statistics.
func (s *server) heapProfile(ctx context.Context, dir string) (string, error) {
	textPath := filepath.Join(dir, "heap-"+s.label+".txt")
	if err := s.fetch(ctx, "/debug/pprof/heap?gc=1&debug=1", textPath, 30*time.Second); err != nil {
		return "", err
	}
	b, err := os.ReadFile(textPath)
	if err != nil {
		return "", err
	}
	for _, m := range memStatLine.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseInt(m[2], 10, 64)
		switch m[1] {
		case "HeapInuse":
			s.heap.HeapInuse = v
		case "HeapIdle":
			s.heap.HeapIdle = v
		case "HeapReleased":
			s.heap.HeapReleased = v
		case "Sys":
			s.heap.Sys = v
		}
	}
	s.heap.ok = s.heap.HeapInuse > 0
	protoPath := filepath.Join(dir, "heap-"+s.label+".pb.gz")
	if err := s.fetch(ctx, "/debug/pprof/heap?gc=1", protoPath, 30*time.Second); err != nil {
		return "", err
	}
	return protoPath, nil
}

// pprofTop summarises a profile with `go tool pprof -top`.
func pprofTop(profile string, args ...string) (string, error) {
	cmd := exec.Command("go", append(append([]string{"tool", "pprof", "-top"}, args...), profile)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go tool pprof -top %s: %w\n%s", profile, err, errb.String())
	}
	return strings.TrimRight(out.String(), "\n"), nil
}
