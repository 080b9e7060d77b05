// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// A signed zone is whole only when both links of the chain hold: the parent's DS names a key
// (verifyDS), and every name server serves that key, signing the DNSKEY records with it
// (checkDNSKEY). A validating resolver (Let's Encrypt's is one) that finds a DS but no
// matching, signed key treats every answer of the zone as bogus and fails the challenge.

// verifyDS looks up the zone's DS through the resolvers: the parent must have one of
// opts.DS (any of them: during a rollover the parent may still hold the old one too).
func verifyDS(ctx context.Context, r *Resolver, opts controller.Options, rec v1alpha1.DNSRecord) Check {
	c := Check{Record: rec, Reason: ReasonDSMissing}
	resp, err := r.Query(ctx, opts.Zone, dns.TypeDS)
	if failed := failure(resp, err); failed != "" {
		c.Found = failed
		c.Problem = fmt.Sprintf("the DS lookup of %s fails: %s; add this record if it is missing: %s", rec.Name, failed, line(rec))
		return c
	}
	var found []string
	for _, rr := range resp.Answer {
		ds, ok := rr.(*dns.DS)
		if !ok || canonical(ds.Hdr.Name) != opts.Zone {
			continue
		}
		found = append(found, controller.DSContent(ds))
		c.OK = c.OK || matchesDS(ds, opts.DS)
	}
	c.Found = strings.Join(found, ", ")
	switch {
	case c.OK:
		c.Reason = ""
	case len(found) == 0:
		c.Problem = fmt.Sprintf("%s has no DS record at its parent zone, so validating resolvers treat it as unsigned; add this record: %s", rec.Name, line(rec))
	default:
		c.Reason = ReasonDSMismatch
		c.Problem = fmt.Sprintf("the DS of %s at its parent zone is %s, which matches no key acmezone's CoreDNS signs with (want %s): validating resolvers reject every answer of the zone; replace it with this record: %s",
			rec.Name, c.Found, wantDS(opts.DS), line(rec))
	}
	return c
}

// checkDNSKEY asks every address of the name server ns directly (no recursion, DO bit set)
// for the zone's DNSKEY records: each key of opts.DS must be among them, and the records
// must carry a valid signature by it.
func checkDNSKEY(ctx context.Context, r *Resolver, opts controller.Options, ns controller.NameServer) Check {
	rec := v1alpha1.DNSRecord{Type: TypeDNSKEY, Name: bare(opts.Zone), Content: bare(ns.Name)}
	c := Check{Record: rec, Reason: ReasonDNSKEYNotServed}
	addrs, err := nameServerAddrs(ctx, r, ns)
	if err != nil {
		c.Problem = fmt.Sprintf("the DNSKEY records of %s cannot be asked for at the name server %s: %v", rec.Name, rec.Content, err)
		return c
	}
	port := strconv.Itoa(r.NameServerPort)
	if r.NameServerPort == 0 {
		port = "53"
	}
	var tags []string
	for _, ds := range opts.DS {
		tags = append(tags, strconv.Itoa(int(ds.KeyTag)))
	}
	for _, a := range addrs {
		server := net.JoinHostPort(a, port)
		if problem := askDNSKEY(ctx, r, opts, rec.Content, server); problem != "" {
			c.Found, c.Problem = "", problem
			return c
		}
	}
	c.OK, c.Reason = true, ""
	c.Found = fmt.Sprintf("key %s, signed, at %s", strings.Join(tags, ", "), strings.Join(addrs, ", "))
	return c
}

// askDNSKEY asks one address of the name server named name; it returns the problem, or "".
func askDNSKEY(ctx context.Context, r *Resolver, opts controller.Options, name, server string) string {
	m := new(dns.Msg)
	m.SetQuestion(opts.Zone, dns.TypeDNSKEY)
	m.RecursionDesired = false
	m.SetEdns0(1232, true)
	resp, err := r.exchange(ctx, m, server)
	if err != nil {
		return fmt.Sprintf("the name server %s (%s) does not answer the DNSKEY query for %s (%v): make sure it answers on port 53 over UDP and TCP", name, server, bare(opts.Zone), err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return fmt.Sprintf("the name server %s (%s) answers the DNSKEY query for %s with %s", name, server, bare(opts.Zone), dns.RcodeToString[resp.Rcode])
	}
	var keys []dns.RR
	var served []string
	for _, rr := range resp.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok && canonical(k.Hdr.Name) == opts.Zone {
			keys = append(keys, k)
			served = append(served, strconv.Itoa(int(k.KeyTag())))
		}
	}
	for _, ds := range opts.DS {
		key := keyOf(keys, ds)
		if key == nil {
			has := "none"
			if len(served) > 0 {
				has = "key tag " + strings.Join(served, ", ")
			}
			return fmt.Sprintf("the name server %s (%s) serves no DNSKEY of %s with key tag %d (it serves %s), although the DS %s names it: give its CoreDNS the key in a dnssec block (the Secret acmezone-dnssec in deploy/'s dnssec component, or the chart's dnssec.enabled)",
				name, server, bare(opts.Zone), ds.KeyTag, has, controller.DSContent(ds))
		}
		if !signedBy(resp.Answer, keys, key, time.Now()) {
			return fmt.Sprintf("the name server %s (%s) serves the DNSKEY of %s with key tag %d but no valid signature by it over the DNSKEY records: does its CoreDNS sign with that key's private part?",
				name, server, bare(opts.Zone), ds.KeyTag)
		}
	}
	return ""
}

// nameServerAddrs are the addresses of ns: the installation's, or else its A and AAAA
// records through the resolvers.
func nameServerAddrs(ctx context.Context, r *Resolver, ns controller.NameServer) ([]string, error) {
	var addrs []string
	for _, ip := range ns.Addrs {
		addrs = append(addrs, ip.String())
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, err := r.Query(ctx, ns.Name, qtype)
		if err != nil {
			return nil, err
		}
		for _, rr := range resp.Answer {
			switch v := rr.(type) {
			case *dns.A:
				addrs = append(addrs, v.A.String())
			case *dns.AAAA:
				addrs = append(addrs, v.AAAA.String())
			}
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s has no address", bare(ns.Name))
	}
	return addrs, nil
}

// keyOf returns the key of keys whose DS is ds, or nil.
func keyOf(keys []dns.RR, ds *dns.DS) *dns.DNSKEY {
	for _, rr := range keys {
		k := rr.(*dns.DNSKEY)
		if got := k.ToDS(ds.DigestType); got != nil && sameDS(got, ds) {
			return k
		}
	}
	return nil
}

// signedBy reports whether answer holds a signature by key over keys valid at now.
func signedBy(answer, keys []dns.RR, key *dns.DNSKEY, now time.Time) bool {
	for _, rr := range answer {
		sig, ok := rr.(*dns.RRSIG)
		if !ok || sig.TypeCovered != dns.TypeDNSKEY || sig.KeyTag != key.KeyTag() || sig.Algorithm != key.Algorithm {
			continue
		}
		if sig.Verify(key, keys) == nil && sig.ValidityPeriod(now) {
			return true
		}
	}
	return false
}

// matchesDS reports whether ds is one of want.
func matchesDS(ds *dns.DS, want []*dns.DS) bool {
	for _, w := range want {
		if sameDS(ds, w) {
			return true
		}
	}
	return false
}

func sameDS(a, b *dns.DS) bool {
	return a.KeyTag == b.KeyTag && a.Algorithm == b.Algorithm && a.DigestType == b.DigestType && strings.EqualFold(a.Digest, b.Digest)
}

// wantDS lists the DS records of the configured keys.
func wantDS(dss []*dns.DS) string {
	var out []string
	for _, ds := range dss {
		out = append(out, controller.DSContent(ds))
	}
	return strings.Join(out, " or ")
}
