// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package acmezone is a CoreDNS plugin that serves an authoritative ACME challenge zone from
// Kubernetes: TXT records from ChallengeRecords at the targets of Delegations in the same
// namespace, and static records from labelled ConfigMaps.
package acmezone

import (
	"context"
	"strings"
	"sync"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// maxCNAMEChain bounds how many in-zone CNAMEs one answer follows.
const maxCNAMEChain = 8

// maxUDPSize is the largest answer written over UDP, whatever buffer size the client's EDNS0
// announces: the size of DNS flag day 2020, which needs no IP fragmentation. A larger answer
// is truncated with TC set and comes whole over TCP, so a query over UDP is amplified at most
// about 25 times.
const maxUDPSize = 1232

// ACMEZone is the plugin handler.
type ACMEZone struct {
	Next plugin.Handler

	cfg      *config
	store    *store
	transfer bool // the transfer plugin is in this server block
	signed   bool // the dnssec plugin is in this server block (set on startup)

	mu       sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{}
	notifier *notifier // NOTIFY rounds (notify.go); nil without the transfer plugin
}

// New returns the plugin for a parsed configuration; Start connects it to Kubernetes.
func New(cfg *config) (*ACMEZone, error) {
	return &ACMEZone{cfg: cfg, store: newStore(cfg, observePropagation)}, nil
}

// Name implements plugin.Handler.
func (a *ACMEZone) Name() string { return pluginName }

// ServeDNS implements plugin.Handler. It answers every in-zone question itself, from the
// current snapshot, and never recurses.
func (a *ACMEZone) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	server := metrics.WithServer(ctx)
	if len(r.Question) != 1 {
		return a.fail(server, w, r, dns.RcodeFormatError, "formerr") // RFC 9619
	}
	// The name as asked and in lower case. miekg/dns unpacked it in presentation form already:
	// request.Request's QName and Name would print it again, twice, which is most of the
	// work of a hit.
	qname := r.Question[0].Name
	lname := strings.ToLower(qname)
	qtype := r.Question[0].Qtype

	zone := a.store.zoneOf(lname)
	if zone == "" {
		if a.cfg.fall.Through(qname) {
			return plugin.NextOrFailure(a.Name(), a.Next, ctx, w, r)
		}
		return a.fail(server, w, r, dns.RcodeRefused, "refused")
	}
	if r.Opcode != dns.OpcodeQuery {
		return a.fail(server, w, r, dns.RcodeNotImplemented, "notimp")
	}
	switch qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		if a.transfer {
			return plugin.NextOrFailure(a.Name(), a.Next, ctx, w, r)
		}
		return a.fail(server, w, r, dns.RcodeRefused, "refused")
	}
	snap := a.store.load()
	if snap == nil {
		return a.fail(server, w, r, dns.RcodeServerFailure, "servfail")
	}

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	// The query's spelling of the zone, so the SOA's owner keeps the question's case.
	apex := qname[len(qname)-len(zone):]
	soa := func() []dns.RR {
		rr := *snap.soa[zone]
		rr.Hdr.Name = apex
		return []dns.RR{&rr}
	}

	name := qname
	result := "answer"
	if qtype == dns.TypeSOA && lname == zone {
		m.Answer = soa()
		lname = "" // answered
	}
	for i := 0; lname != ""; i++ {
		n := snap.lookup(lname)
		if n == nil {
			if i == 0 && a.cfg.fall.Through(qname) {
				return plugin.NextOrFailure(a.Name(), a.Next, ctx, w, r)
			}
			m.Rcode = dns.RcodeNameError // RFC 6604: the rcode of the last name in the chain
			m.Ns = soa()
			result = "nxdomain"
			break
		}
		if qtype == dns.TypeANY {
			// RFC 8482 section 4.2: one synthesized HINFO instead of everything at the name.
			m.Answer = append(m.Answer, &dns.HINFO{
				Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: a.cfg.ttl},
				Cpu: "RFC8482",
			})
			break
		}
		if answer, ok := n.answer(m.Answer, qtype, name); ok {
			m.Answer = answer
			if qtype == dns.TypeNS && lname == zone {
				m.Extra = a.glue(snap, n.fixed.get(dns.TypeNS))
			}
			break
		}
		cname := n.fixed.get(dns.TypeCNAME)
		if cname == nil || i == maxCNAMEChain {
			if len(m.Answer) == 0 {
				result = "nodata"
			}
			m.Ns = soa()
			break
		}
		m.Answer = appendRenamed(m.Answer, cname, name)
		name = cname[0].(*dns.CNAME).Target
		lname = strings.ToLower(name)
		if !dns.IsSubDomain(zone, lname) {
			break // out of zone: the resolver follows it
		}
	}
	// The dnssec plugin proves a denial only in an answer without records: a signed chain
	// that ends in NXDOMAIN or NODATA would reach a validator without the proof of its end,
	// and be bogus. So a DNSSEC client gets the chain up to its last CNAME, and asks for
	// the target itself, which is then denied with proof.
	if a.signed && len(m.Answer) > 0 && len(m.Ns) > 0 {
		if opt := r.IsEdns0(); opt != nil && opt.Do() {
			m.Rcode = dns.RcodeSuccess
			m.Ns = nil
			result = "answer"
		}
	}
	if err := write(w, r, m); err != nil {
		return dns.RcodeServerFailure, plugin.Error(pluginName, err)
	}
	countResponse(server, zone, result)
	return dns.RcodeSuccess, nil
}

// write writes the reply m to the query r, over UDP truncated to the client's buffer and at
// most maxUDPSize bytes. CoreDNS's server wraps w in a request.ScrubWriter, which truncates to
// the size the request announces when it writes; the plugin lowers that size in the request
// (as the bufsize plugin does) and truncates the reply itself too, with the OPT record
// included, so that the bound holds whatever writer or plugin chain is in front of it. A reply
// truncated with compression stays compressed: the ScrubWriter, seeing a request of at most
// maxUDPSize bytes, finds that it fits and leaves it as it is.
func write(w dns.ResponseWriter, r, m *dns.Msg) error {
	state := request.Request{W: w, Req: r}
	udp := state.Proto() == "udp"
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		if udp && opt.UDPSize() > maxUDPSize {
			opt.SetUDPSize(maxUDPSize)
		}
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
		state.SizeAndDo(m) // the OPT record, so that Truncate counts it
	}
	if udp {
		m.Truncate(min(size, maxUDPSize))
	}
	return w.WriteMsg(m)
}

// glue returns the in-zone address records of the name servers in nsRRs.
func (a *ACMEZone) glue(snap *snapshot, nsRRs []dns.RR) []dns.RR {
	var extra []dns.RR
	for _, rr := range nsRRs {
		if n := snap.lookup(rr.(*dns.NS).Ns); n != nil {
			extra = append(extra, n.fixed.get(dns.TypeA)...)
			extra = append(extra, n.fixed.get(dns.TypeAAAA)...)
		}
	}
	return extra
}

// fail writes an empty reply with rcode; the answer is ours, so the error plugin has nothing
// to log.
func (a *ACMEZone) fail(server string, w dns.ResponseWriter, r *dns.Msg, rcode int, result string) (int, error) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	if err := write(w, r, m); err != nil {
		return dns.RcodeServerFailure, plugin.Error(pluginName, err)
	}
	countResponse(server, "", result)
	return dns.RcodeSuccess, nil
}

// appendRenamed appends copies of rrs owned by name (the question's spelling). Published
// records are shared by all queries, so they are never modified in place.
func appendRenamed(dst, rrs []dns.RR, name string) []dns.RR {
	for _, rr := range rrs {
		var c dns.RR
		if t, ok := rr.(*dns.TXT); ok {
			// Shallow copy: the strings are never written, only the header is.
			cp := *t
			c = &cp
		} else {
			c = dns.Copy(rr)
		}
		c.Header().Name = name
		dst = append(dst, c)
	}
	return dst
}
