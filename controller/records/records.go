// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package records computes the DNS records a user adds at their DNS provider to delegate a
// domain's DNS-01 challenges to acmezone, checks them through recursive resolvers, and prints
// them as the table of `acmezone-controller records DOMAIN`.
package records

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// TargetPlaceholder stands for the target in the records of a Delegation whose target is not
// known, as when the records command runs without access to the cluster.
const TargetPlaceholder = "<target of the Delegation>"

// Record types in the records a user adds, and of the final lookup check.
const (
	TypeA     = "A"
	TypeAAAA  = "AAAA"
	TypeNS    = "NS"
	TypeCNAME = "CNAME"
	TypeTXT   = "TXT"
	TypeDS    = "DS"
	// TypeDNSKEY is the type of the checks that each name server serves the zone's keys,
	// asked directly: not a record to add.
	TypeDNSKEY = "DNSKEY"
)

// ChallengeName returns the canonical name the CA looks up for domain's DNS-01 challenges:
// "_acme-challenge." and the domain in lower case, without a leading "*.", with a trailing dot.
func ChallengeName(domain string) string {
	return "_acme-challenge." + v1alpha1.DomainKey(domain) + "."
}

// For returns the records the user must add at their DNS provider for domain's challenges to
// be answered at target, in the order of the seed's tables, with names and contents as a user
// types them (no trailing dots):
//
//   - A (and AAAA) for every name server of opts.Zone that has addresses. A name server inside
//     the zone needs them too: they are the glue without which no resolver finds it.
//   - NS, delegating opts.Zone to each name server.
//   - DS for opts.Zone, one per key of opts.DS, when the zone is signed: the parent's link
//     to the zone's key.
//   - CNAME from "_acme-challenge.<domain>" to target. When target is that name itself, as when
//     acmezone is authoritative for the user's own zone (spec.target
//     "_acme-challenge.example.com."), there is nothing to alias and no CNAME row.
//
// An empty target (not known yet) gives the CNAME row the content TargetPlaceholder.
func For(opts controller.Options, domain, target string) []v1alpha1.DNSRecord {
	var out []v1alpha1.DNSRecord
	for _, ns := range opts.NameServers {
		for _, ip := range ns.Addrs {
			typ := TypeAAAA
			if ip.To4() != nil {
				typ = TypeA
			}
			out = append(out, v1alpha1.DNSRecord{Type: typ, Name: bare(ns.Name), Content: ip.String()})
		}
	}
	for _, ns := range opts.NameServers {
		out = append(out, v1alpha1.DNSRecord{Type: TypeNS, Name: bare(opts.Zone), Content: bare(ns.Name)})
	}
	for _, ds := range opts.DS {
		out = append(out, v1alpha1.DNSRecord{Type: TypeDS, Name: bare(opts.Zone), Content: controller.DSContent(ds)})
	}
	challenge := ChallengeName(domain)
	switch {
	case target == "":
		out = append(out, v1alpha1.DNSRecord{Type: TypeCNAME, Name: bare(challenge), Content: TargetPlaceholder})
	case canonical(target) != challenge:
		out = append(out, v1alpha1.DNSRecord{Type: TypeCNAME, Name: bare(challenge), Content: bare(target)})
	}
	return out
}

// canonical returns name in lower case with one trailing dot.
func canonical(name string) string {
	return dns.CanonicalName(strings.TrimSpace(name))
}

// bare returns name in lower case without the trailing dot.
func bare(name string) string {
	return strings.TrimSuffix(canonical(name), ".")
}
