// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// Reasons a Check fails. They are also the reasons of a Delegation's Verified condition.
const (
	ReasonNameServerAddress = "NameServerAddress"
	ReasonNSNotDelegated    = "NSNotDelegated"
	ReasonCNAMEMissing      = "CNAMEMissing"
	ReasonCNAMEWrongTarget  = "CNAMEWrongTarget"
	ReasonTXTLookupFailed   = "TXTLookupFailed"
	ReasonDSMissing         = "DSMissing"       // signed zone: the parent has no DS for it
	ReasonDSMismatch        = "DSMismatch"      // the parent's DS matches no key of --dnssec-key
	ReasonDNSKEYNotServed   = "DNSKEYNotServed" // a name server does not serve (or sign) the key
)

// Check is what a lookup of one record found.
type Check struct {
	// Record is the record looked up. The last Check of Verify is not a record to add: it has
	// Type TXT, the challenge name, and as Content the target the lookup must end at.
	Record v1alpha1.DNSRecord
	// OK is true when the record resolves as it must.
	OK bool
	// Found is what the lookup returned: addresses, names, or the response code.
	Found string
	// Problem says what is wrong and what to do, in words for the user; empty when OK.
	Problem string
	// Reason is one of the Reason constants when not OK.
	Reason string
}

// Verify looks every record of For(opts, domain, target) up through resolver, then looks up
// TXT at the challenge name as the CA does, through the CNAME: that lookup must end at target
// (inside opts.Zone when target is empty) with an answer or NODATA. When the zone is signed
// (opts.DS), each name server is then asked directly for the zone's keys (checkDNSKEY). The
// checks come back in the order of For, then the TXT lookup, then one DNSKEY check per name
// server. The lookups run concurrently.
func Verify(ctx context.Context, resolver *Resolver, opts controller.Options, domain, target string) []Check {
	var wg sync.WaitGroup
	recs := For(opts, domain, target)
	checks := make([]Check, len(recs)+1, len(recs)+1+len(opts.NameServers))
	if len(opts.DS) > 0 {
		checks = checks[:cap(checks)]
		for i, ns := range opts.NameServers {
			wg.Go(func() { checks[len(recs)+1+i] = checkDNSKEY(ctx, resolver, opts, ns) })
		}
	}
	for i, rec := range recs {
		wg.Go(func() {
			switch rec.Type {
			case TypeA, TypeAAAA:
				checks[i] = verifyAddress(ctx, resolver, rec)
			case TypeNS:
				checks[i] = verifyNS(ctx, resolver, rec)
			case TypeCNAME:
				checks[i] = verifyCNAME(ctx, resolver, opts.Zone, rec, target)
			case TypeDS:
				checks[i] = verifyDS(ctx, resolver, opts, rec)
			}
		})
	}
	wg.Go(func() { checks[len(recs)] = verifyLookup(ctx, resolver, opts.Zone, domain, target) })
	wg.Wait()
	return checks
}

// AllOK reports whether every check passed.
func AllOK(checks []Check) bool {
	for _, c := range checks {
		if !c.OK {
			return false
		}
	}
	return true
}

func verifyAddress(ctx context.Context, r *Resolver, rec v1alpha1.DNSRecord) Check {
	c := Check{Record: rec, Reason: ReasonNameServerAddress}
	qtype := dns.TypeA
	if rec.Type == TypeAAAA {
		qtype = dns.TypeAAAA
	}
	resp, err := r.Query(ctx, rec.Name, qtype)
	if failed := failure(resp, err); failed != "" {
		c.Found = failed
		c.Problem = fmt.Sprintf("the %s lookup of %s fails: %s", rec.Type, rec.Name, failed)
		return c
	}
	want := net.ParseIP(rec.Content)
	var found []string
	for _, rr := range resp.Answer {
		var ip net.IP
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A
		case *dns.AAAA:
			ip = v.AAAA
		default:
			continue
		}
		found = append(found, ip.String())
		c.OK = c.OK || ip.Equal(want)
	}
	c.Found = strings.Join(found, ", ")
	switch {
	case c.OK:
		c.Reason = ""
	case len(found) == 0:
		c.Problem = fmt.Sprintf("%s has no %s record; add: %s", rec.Name, rec.Type, line(rec))
	default:
		c.Problem = fmt.Sprintf("%s resolves to %s, not %s; change it", rec.Name, c.Found, rec.Content)
	}
	return c
}

func verifyNS(ctx context.Context, r *Resolver, rec v1alpha1.DNSRecord) Check {
	c := Check{Record: rec, Reason: ReasonNSNotDelegated}
	resp, err := r.Query(ctx, rec.Name, dns.TypeNS)
	if failed := failure(resp, err); failed != "" {
		c.Found = failed
		c.Problem = fmt.Sprintf("%s is not delegated to %s (NS lookup returned %s); add: %s, and make sure %s answers DNS on port 53 over UDP and TCP",
			rec.Name, rec.Content, failed, line(rec), rec.Content)
		return c
	}
	var found []string
	for _, rr := range resp.Answer {
		if ns, ok := rr.(*dns.NS); ok && canonical(ns.Hdr.Name) == canonical(rec.Name) {
			found = append(found, bare(ns.Ns))
			c.OK = c.OK || canonical(ns.Ns) == canonical(rec.Content)
		}
	}
	c.Found = strings.Join(found, ", ")
	returned := c.Found
	switch {
	case c.OK:
		c.Reason = ""
		return c
	case resp.Rcode == dns.RcodeNameError:
		returned = "NXDOMAIN"
	case len(found) == 0:
		returned = "no NS records"
	}
	c.Problem = fmt.Sprintf("%s is not delegated to %s (NS lookup returned %s); add: %s", rec.Name, rec.Content, returned, line(rec))
	return c
}

func verifyCNAME(ctx context.Context, r *Resolver, zone string, rec v1alpha1.DNSRecord, target string) Check {
	c := Check{Record: rec, Reason: ReasonCNAMEMissing}
	resp, err := r.Query(ctx, rec.Name, dns.TypeCNAME)
	if failed := failure(resp, err); failed != "" {
		c.Found = failed
		c.Problem = fmt.Sprintf("the CNAME lookup of %s fails: %s", rec.Name, failed)
		return c
	}
	for _, rr := range resp.Answer {
		if cn, ok := rr.(*dns.CNAME); ok && canonical(cn.Hdr.Name) == canonical(rec.Name) {
			c.Found = bare(cn.Target)
			break
		}
	}
	switch {
	case c.Found == "":
		c.Problem = fmt.Sprintf("%s has no CNAME; add: %s", rec.Name, line(rec))
	case reaches(c.Found, zone, target):
		c.OK, c.Reason = true, ""
	case target == "":
		c.Reason = ReasonCNAMEWrongTarget
		c.Problem = fmt.Sprintf("%s is a CNAME to %s, which is not inside %s; change it to the Delegation's target", rec.Name, c.Found, bare(zone))
	default:
		c.Reason = ReasonCNAMEWrongTarget
		c.Found = redact(c.Found, zone)
		c.Problem = fmt.Sprintf("%s is a CNAME to %s, not to %s; change it", rec.Name, c.Found, rec.Content)
	}
	return c
}

// redact hides a name inside the challenge zone that is not the Delegation's own target: it
// is another Delegation's target (maybe another namespace's), which no status or Event may
// disclose, although anyone can look the CNAME up.
func redact(name, zone string) string {
	if dns.IsSubDomain(canonical(zone), canonical(name)) {
		return "another target in " + bare(zone)
	}
	return name
}

// verifyLookup asks for TXT at the challenge name, as the CA does, and follows the CNAMEs in
// the answer: the lookup must end at the target with an answer or NODATA.
func verifyLookup(ctx context.Context, r *Resolver, zone, domain, target string) Check {
	challenge := ChallengeName(domain)
	rec := v1alpha1.DNSRecord{Type: TypeTXT, Name: bare(challenge), Content: TargetPlaceholder}
	if target != "" {
		rec.Content = bare(target)
	}
	c := Check{Record: rec, Reason: ReasonTXTLookupFailed}
	resp, err := r.Query(ctx, challenge, dns.TypeTXT)
	if err != nil {
		c.Problem = fmt.Sprintf("the TXT lookup of %s fails: %v", rec.Name, err)
		return c
	}
	end := chainEnd(resp, challenge)
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		c.Found = "NXDOMAIN"
		// The target without a value, as a secondary of the zone answers it: a name that
		// exists without records cannot be transferred, so where acmezone answers NODATA
		// its secondaries answer NXDOMAIN. It counts only when the zone itself says so (its
		// SOA in the authority section), not its parent (the zone is not delegated).
		if target != "" && reaches(end, zone, target) && deniedBy(resp, zone) {
			c.Found = fmt.Sprintf("NXDOMAIN at %s from %s (no value yet)", bare(end), bare(zone))
			c.OK, c.Reason = true, ""
			return c
		}
		if !reaches(end, zone, target) {
			end = redact(bare(end), zone)
		}
		c.Problem = fmt.Sprintf("the TXT lookup of %s fails: NXDOMAIN (%s does not exist)", rec.Name, bare(end))
		return c
	default:
		c.Found = dns.RcodeToString[resp.Rcode]
		c.Problem = fmt.Sprintf("the TXT lookup of %s fails: %s", rec.Name, c.Found)
		return c
	}
	n := 0
	for _, rr := range resp.Answer {
		if _, ok := rr.(*dns.TXT); ok && canonical(rr.Header().Name) == end {
			n++
		}
	}
	c.Found = fmt.Sprintf("%d TXT records at %s", n, bare(end))
	if !reaches(end, zone, target) {
		c.Found = fmt.Sprintf("%d TXT records at %s", n, redact(bare(end), zone))
		where := rec.Content
		if target == "" {
			where = "a name inside " + bare(zone)
		}
		c.Problem = fmt.Sprintf("the TXT lookup of %s ends at %s, not at %s", rec.Name, redact(bare(end), zone), where)
		return c
	}
	c.OK, c.Reason = true, ""
	return c
}

// deniedBy reports whether resp's authority section holds zone's SOA: zone gave the answer.
func deniedBy(resp *dns.Msg, zone string) bool {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok && canonical(soa.Hdr.Name) == canonical(zone) {
			return true
		}
	}
	return false
}

// reaches reports whether name is the target, or, with no target known, a name inside zone.
func reaches(name, zone, target string) bool {
	if target == "" {
		return dns.IsSubDomain(canonical(zone), canonical(name)) && canonical(name) != canonical(zone)
	}
	return canonical(name) == canonical(target)
}

// failure says why a lookup has no usable answer: the error, or a response code other than
// NOERROR and NXDOMAIN; "" when the answer can be used.
func failure(resp *dns.Msg, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError:
		return dns.RcodeToString[resp.Rcode]
	}
	return ""
}

// line writes rec as the user adds it: "NAME TYPE CONTENT".
func line(rec v1alpha1.DNSRecord) string {
	return rec.Name + " " + rec.Type + " " + rec.Content
}

// chainEnd follows the CNAMEs in resp's answer from name (canonical) and returns the name the
// chain ends at: name itself without one. A chain longer than 8 is broken anyway.
func chainEnd(resp *dns.Msg, name string) string {
	end := name
	for range 8 {
		next := ""
		for _, rr := range resp.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && canonical(cn.Hdr.Name) == end {
				next = canonical(cn.Target)
			}
		}
		if next == "" {
			break
		}
		end = next
	}
	return end
}
