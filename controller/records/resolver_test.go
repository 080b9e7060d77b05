// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/controller/records/recordstest"
)

func TestResolverRetriesOverTCP(t *testing.T) {
	srv := recordstest.NewServer(t, "ns.example.com. 300 IN A 34.84.45.1")
	srv.Truncate("ns.example.com.")
	r := &Resolver{Servers: []string{srv.Addr}}
	resp, err := r.Query(context.Background(), "ns.example.com", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Answer) != 1 || resp.Truncated {
		t.Errorf("answer %v (truncated %v), want the A record over TCP", resp.Answer, resp.Truncated)
	}
	want := []string{"udp ns.example.com. A", "tcp ns.example.com. A"}
	if got := srv.Queries(); !slices.Equal(got, want) {
		t.Errorf("queries %q, want %q", got, want)
	}
}

func TestResolverAsksRecursively(t *testing.T) {
	srv := recordstest.NewServer(t, "ns.example.com. 300 IN A 34.84.45.1")
	r := &Resolver{Servers: []string{srv.Addr}}
	resp, err := r.Query(context.Background(), "ns.example.com", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.RecursionDesired {
		t.Errorf("RD not set in the query (the reply copies it)")
	}
}

func TestResolverNextServer(t *testing.T) {
	// A loopback port nobody listens on: the query fails at once (ICMP port unreachable).
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()

	failing := recordstest.NewServer(t)
	failing.SetRcode("ns.example.com.", dns.RcodeServerFailure)
	good := recordstest.NewServer(t, "ns.example.com. 300 IN A 34.84.45.1")

	r := &Resolver{Servers: []string{dead, failing.Addr, good.Addr}, Timeout: time.Second}
	resp, err := r.Query(context.Background(), "ns.example.com.", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("got %s with %d answers, want the good server's answer", dns.RcodeToString[resp.Rcode], len(resp.Answer))
	}

	// When every server fails, the last answer comes back.
	r.Servers = []string{dead, failing.Addr}
	resp, err = r.Query(context.Background(), "ns.example.com.", dns.TypeA)
	if err != nil || resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("got %v, %v; want SERVFAIL", resp, err)
	}

	// When no server answers, the error.
	r.Servers = []string{dead}
	if _, err := r.Query(context.Background(), "ns.example.com.", dns.TypeA); err == nil {
		t.Errorf("no error from a server that does not answer")
	}
}

func TestResolverTimeout(t *testing.T) {
	// A server that reads queries and never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	r := &Resolver{Servers: []string{pc.LocalAddr().String()}, Timeout: 200 * time.Millisecond}
	start := time.Now()
	if _, err := r.Query(context.Background(), "ns.example.com.", dns.TypeA); err == nil {
		t.Errorf("no error from a server that never answers")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("query took %v with a timeout of 200ms", d)
	}
}

func TestNewResolver(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("search example.com\nnameserver 127.0.0.53\nnameserver ::1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		servers   []string
		conf      string
		want      []string
		shouldErr bool
	}{
		{servers: nil, conf: conf, want: []string{"127.0.0.53:53", "[::1]:53"}},
		{servers: []string{"127.0.0.1:5353", "127.0.0.2", "::1", "[::1]:53"}, conf: conf, want: []string{"127.0.0.1:5353", "127.0.0.2:53", "[::1]:53", "[::1]:53"}},
		{servers: nil, conf: filepath.Join(t.TempDir(), "missing"), shouldErr: true},
		{servers: []string{""}, conf: conf, shouldErr: true},
		{servers: []string{"a:b:c"}, conf: conf, shouldErr: true},
	}
	for i, tc := range tests {
		r, err := newResolver(tc.servers, tc.conf)
		if tc.shouldErr {
			if err == nil {
				t.Errorf("Test %d: no error, want one", i)
			}
			continue
		}
		if err != nil {
			t.Errorf("Test %d: %v", i, err)
			continue
		}
		if !slices.Equal(r.Servers, tc.want) || r.Timeout != DefaultTimeout {
			t.Errorf("Test %d: servers %q timeout %v, want %q and %v", i, r.Servers, r.Timeout, tc.want, DefaultTimeout)
		}
	}
}
