// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package stack starts the real parts of acmezone's end-to-end set-up as processes on loopback:
// the "DNS provider" (stock CoreDNS with the file plugin), a recursive resolver (unbound) that
// plays the public DNS, and acmezone's CoreDNS. Every process logs to a file in the stack's
// directory, kept for a failed run.
package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Loopback addresses of the DNS parts, each on port 53 (so the provider's A record can point
// at acmezone as a real one would). CI runs as root.
const (
	ResolverIP = "127.0.53.1"
	ProviderIP = "127.0.53.2"
	AcmezoneIP = "127.0.53.3"
)

// Process is one started program.
type Process struct {
	Name    string
	LogPath string
	Started time.Time
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	err     error
}

// Start runs name with args, logging to dir/<name>.log.
func Start(dir, name, path string, args ...string) (*Process, error) {
	return StartEnv(dir, name, path, nil, args...)
}

// StartEnv is Start with extra environment variables (KEY=VALUE) for the process.
func StartEnv(dir, name, path string, env []string, args ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// The child gets SIGKILL if the harness dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, path, err)
	}
	p := &Process{Name: name, LogPath: logPath, Started: started, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after a few seconds.
func (p *Process) Stop() {
	if done, _ := p.Exited(); done {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() error {
	if done, _ := p.Exited(); done {
		return fmt.Errorf("%s has already exited", p.Name)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	<-p.done
	return nil
}

// PID is the process's ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Logs returns the process's log, for failure messages.
func (p *Process) Logs() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string { return tail(p.Logs(), n) }

// WaitDNS waits until a DNS server at addr (HOST:PORT, or HOST for port 53) answers a question
// over TCP (Pebble asks over TCP only), failing early when the process exits.
func WaitDNS(ctx context.Context, p *Process, addr, name string, qtype uint16) error {
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "53")
	}
	var last error
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, err, tail(p.Logs(), 40))
		}
		if _, _, err := c.Exchange(m, addr); err == nil {
			return nil
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not answer on %s: %v\n%s", p.Name, addr, last, tail(p.Logs(), 40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
