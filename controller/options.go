// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package controller

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// NameServer is a name server of the challenge zone: its name and the addresses the user's A
// (and AAAA) records must give it.
type NameServer struct {
	Name  string   // canonical, with the trailing dot
	Addrs []net.IP // may be empty when the name's address records exist already
}

// Options say what this installation serves. The controller's flags fill them.
type Options struct {
	// Zone is the challenge zone served by acmezone's CoreDNS, canonical (acme.example.com.).
	Zone string
	// NameServers are the NS names of Zone, as in the plugin's `nameserver` lines.
	NameServers []NameServer
	// Resolvers are the DNS servers (host:port) used to verify delegations; empty means the
	// system's resolvers from /etc/resolv.conf.
	Resolvers []string
	// AutoDelegate lets the controller create a Delegation for a Challenge that has none.
	AutoDelegate bool
	// TargetKey derives and proves targets (v1alpha1.TargetKey); the same key as the CoreDNS
	// plugin's target_key.
	TargetKey v1alpha1.TargetKey
	// LegacyBefore is when targets started to be derived: a Delegation created before it may
	// keep the target the controller gave it then (see delegation.Reconciler). Zero: none.
	LegacyBefore time.Time
	// DS are the DS records (SHA-256) of the keys Zone is signed with, from --dnssec-key:
	// each is one more record to add at the provider, and verification wants the parent to
	// have one of them and every name server to serve their keys. Empty: the zone is not
	// signed, and nothing about DNSSEC is listed or checked.
	DS []*dns.DS
}

// ParseNameServer parses "NAME[=ADDR[,ADDR...]]", the --nameserver flag's value.
func ParseNameServer(s string) (NameServer, error) {
	name, addrs, _ := strings.Cut(s, "=")
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return NameServer{}, fmt.Errorf("--nameserver %q: %q is not a domain name; write NAME or NAME=ADDRESS[,ADDRESS]", s, name)
	}
	ns := NameServer{Name: dns.CanonicalName(name)}
	if addrs == "" {
		return ns, nil
	}
	for _, a := range strings.Split(addrs, ",") {
		ip := net.ParseIP(strings.TrimSpace(a))
		if ip == nil {
			return NameServer{}, fmt.Errorf("--nameserver %q: %q is not an IPv4 or IPv6 address", s, a)
		}
		ns.Addrs = append(ns.Addrs, ip)
	}
	return ns, nil
}

// Validate checks the options and says what to fix.
func (o *Options) Validate() error {
	if o.Zone == "" {
		return fmt.Errorf("--zone is required: the challenge zone acmezone's CoreDNS serves, e.g. --zone acme.example.com")
	}
	if _, ok := dns.IsDomainName(o.Zone); !ok {
		return fmt.Errorf("--zone %q is not a domain name", o.Zone)
	}
	o.Zone = dns.CanonicalName(o.Zone)
	if len(o.NameServers) == 0 {
		return fmt.Errorf("--nameserver is required at least once: the NS name of %s, e.g. --nameserver ns.example.com=34.84.45.1", o.Zone)
	}
	return nil
}
