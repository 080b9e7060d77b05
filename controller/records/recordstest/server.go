// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package recordstest runs a DNS server on 127.0.0.1 that answers as a recursive resolver
// would for a small, settable set of records, for tests of the records checks.
package recordstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server answers queries over UDP and TCP on one loopback port from its records: it follows
// CNAMEs (except for CNAME queries), answers NXDOMAIN for a name with nothing at or below it,
// NODATA otherwise, and sets RA. Per-name overrides give SERVFAIL and the like, or make a name
// exist without records (NODATA for every type).
type Server struct {
	// Addr is the server's address, 127.0.0.1:PORT, for UDP and TCP.
	Addr string

	mu        sync.Mutex
	rrs       []dns.RR
	rcodes    map[string]int
	truncated map[string]bool
	queries   []string
}

// NewServer starts a Server with the records rrs (zone-file lines with absolute names) and
// stops it when the test ends.
func NewServer(t testing.TB, rrs ...string) *Server {
	t.Helper()
	s := &Server{}
	s.Set(t, rrs...)
	var pc net.PacketConn
	var l net.Listener
	for range 20 { // the UDP port may be taken for TCP
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatalf("listen UDP: %v", err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no loopback port free for both UDP and TCP")
	}
	s.Addr = pc.LocalAddr().String()
	serve(t, pc, l, s)
	return s
}

// serve answers with h on pc (UDP) and l (TCP) until the test ends.
func serve(t testing.TB, pc net.PacketConn, l net.Listener, h dns.Handler) {
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: l, Handler: h}
	for _, srv := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
}

// Set replaces the records, and clears the overrides of SetRcode and Truncate.
func (s *Server) Set(t testing.TB, rrs ...string) {
	t.Helper()
	var parsed []dns.RR
	for _, line := range rrs {
		rr, err := dns.NewRR(line)
		if err != nil || rr == nil {
			t.Fatalf("record %q: %v", line, err)
		}
		parsed = append(parsed, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rrs = parsed
	s.rcodes = map[string]int{}
	s.truncated = map[string]bool{}
}

// SetRcode makes queries that reach name answer rcode. dns.RcodeSuccess makes the name exist
// without records of its own: NODATA for every type it has no record of.
func (s *Server) SetRcode(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcodes[dns.CanonicalName(name)] = rcode
}

// Truncate makes UDP answers for queries of name empty and truncated, so that the client has
// to ask again over TCP.
func (s *Server) Truncate(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncated[dns.CanonicalName(name)] = true
}

// Queries returns the queries so far as "NETWORK NAME TYPE", in order.
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	network := w.RemoteAddr().Network()

	s.mu.Lock()
	s.queries = append(s.queries, fmt.Sprintf("%s %s %s", network, name, dns.TypeToString[q.Qtype]))
	if s.truncated[name] && network == "udp" {
		s.mu.Unlock()
		m.Truncated = true
		_ = w.WriteMsg(m)
		return
	}
	m.Answer, m.Rcode = s.resolve(name, q.Qtype)
	if m.Rcode == dns.RcodeNameError {
		end := name // the name denied: the end of the CNAME chain
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok {
				end = dns.CanonicalName(c.Target)
			}
		}
		m.Ns = s.soaOf(end)
	}
	s.mu.Unlock()
	_ = w.WriteMsg(m)
}

// soaOf is the SOA record among the records of the closest zone holding name, for the
// authority section of a denial, as a resolver passes it on; nil when there is none. s.mu is
// held.
func (s *Server) soaOf(name string) []dns.RR {
	var best dns.RR
	for _, rr := range s.rrs {
		if _, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(dns.CanonicalName(rr.Header().Name), name) &&
			(best == nil || len(rr.Header().Name) > len(best.Header().Name)) {
			best = rr
		}
	}
	if best == nil {
		return nil
	}
	return []dns.RR{dns.Copy(best)}
}

// resolve answers name and qtype from the records, following CNAMEs. s.mu is held.
func (s *Server) resolve(name string, qtype uint16) ([]dns.RR, int) {
	var answer []dns.RR
	for range 8 {
		if rcode, ok := s.rcodes[name]; ok && rcode != dns.RcodeSuccess {
			return nil, rcode
		}
		var cname *dns.CNAME
		exists := false
		for _, rr := range s.rrs {
			owner := dns.CanonicalName(rr.Header().Name)
			if owner == name || strings.HasSuffix(owner, "."+name) {
				exists = true
			}
			if owner != name {
				continue
			}
			if rr.Header().Rrtype == qtype {
				answer = append(answer, dns.Copy(rr))
			} else if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if _, ok := s.rcodes[name]; ok {
			exists = true
		}
		switch {
		case !exists:
			return answer, dns.RcodeNameError
		case cname == nil || qtype == dns.TypeCNAME || len(answer) > 0:
			return answer, dns.RcodeSuccess
		}
		answer = append(answer, dns.Copy(cname))
		name = dns.CanonicalName(cname.Target)
	}
	return nil, dns.RcodeServerFailure
}
