// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Provider is the user's DNS provider: stock CoreDNS (the same bin/coredns, file plugin with
// reload) authoritative for example.com, holding the seed's records.
type Provider struct {
	*Process
	zonePath    string
	self        string       // the address of ns1.example.com, the provider itself
	nameServers []NameServer // acme.example.com's name servers
	mu          sync.Mutex
	serial      int
	extra       []string
}

// NameServer is a name server of acme.example.com as the provider delegates to it: the label
// of its name in example.com ("ns" is ns.example.com) and its address.
type NameServer struct {
	Label string
	IP    string
}

// ProviderConfig says where the provider listens and what it serves besides its own records.
type ProviderConfig struct {
	Listen string // HOST:PORT
	// NameServers are acme.example.com's NS records at the provider, with their A records:
	// by default ns.example.com at AcmezoneIP.
	NameServers []NameServer
	// Key signs example.com online (CoreDNS's dnssec plugin); nil leaves it unsigned.
	Key *SigningKey
	// Records are zone-file lines served from the start, as AddRecord adds them.
	Records []string
}

// StartProvider serves example.com on ProviderIP:53 with the records the seed's user adds once:
// the A record of ns.example.com (acmezone's CoreDNS, at AcmezoneIP) and the NS delegation of
// acme.example.com.
func StartProvider(ctx context.Context, dir, coredns string) (*Provider, error) {
	return StartProviderAt(ctx, dir, coredns, ProviderIP+":53", AcmezoneIP)
}

// StartProviderAt is StartProvider listening on listen (HOST:PORT), with ns.example.com's A
// record at nameserver.
func StartProviderAt(ctx context.Context, dir, coredns, listen, nameserver string) (*Provider, error) {
	return StartProviderWith(ctx, dir, coredns, ProviderConfig{Listen: listen, NameServers: []NameServer{{Label: "ns", IP: nameserver}}})
}

// StartProviderWith is StartProvider as cfg says.
func StartProviderWith(ctx context.Context, dir, coredns string, cfg ProviderConfig) (*Provider, error) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("provider address %q: %w", cfg.Listen, err)
	}
	if len(cfg.NameServers) == 0 {
		cfg.NameServers = []NameServer{{Label: "ns", IP: AcmezoneIP}}
	}
	p := &Provider{zonePath: filepath.Join(dir, "example.com.zone"), self: host, nameServers: cfg.NameServers, extra: slices.Clone(cfg.Records)}
	if err := p.write(); err != nil {
		return nil, err
	}
	signing := ""
	if cfg.Key != nil {
		signing = "\n    " + cfg.Key.Corefile()
	}
	corefile := filepath.Join(dir, "Corefile.provider")
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(`example.com:%s {
    bind %s
    file %s {
        reload 200ms
    }%s
    log
    errors
}
`, port, host, p.zonePath, signing)), 0o644); err != nil {
		return nil, err
	}
	proc, err := Start(dir, "provider-coredns", coredns, "-conf", corefile)
	if err != nil {
		return nil, err
	}
	p.Process = proc
	if err := WaitDNS(ctx, proc, cfg.Listen, "example.com.", 6); err != nil {
		proc.Stop()
		return nil, err
	}
	return p, nil
}

// AddRecord adds a zone-file line (like "_acme-challenge CNAME x.acme.example.com.") and waits
// until the provider serves the new serial.
func (p *Provider) AddRecord(line string) error {
	return p.change(func() error {
		p.extra = append(p.extra, line)
		return nil
	})
}

// RemoveRecord removes a line AddRecord added, as a user tidying their DNS provider would, and
// waits until the provider serves the new serial.
func (p *Provider) RemoveRecord(line string) error {
	return p.change(func() error {
		n := len(p.extra)
		if p.extra = slices.DeleteFunc(p.extra, func(l string) bool { return l == line }); len(p.extra) == n {
			return fmt.Errorf("the provider has no record %q", line)
		}
		return nil
	})
}

// change edits the extra records with edit and writes the zone with a new serial.
func (p *Provider) change(edit func() error) error {
	p.mu.Lock()
	err := edit()
	if err == nil {
		err = p.write()
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	// The file plugin reloads when the SOA serial changes; wait a few reload periods.
	time.Sleep(time.Second)
	return nil
}

func (p *Provider) write() error {
	p.serial++
	var delegation []string
	for _, ns := range p.nameServers {
		delegation = append(delegation, fmt.Sprintf("%-8s IN A    %s", ns.Label, ns.IP), fmt.Sprintf("acme     IN NS   %s.example.com.", ns.Label))
	}
	zone := fmt.Sprintf(`$ORIGIN example.com.
$TTL 5
@        IN SOA  ns1.example.com. hostmaster.example.com. %d 60 30 604800 5
@        IN NS   ns1.example.com.
ns1      IN A    %s
; The seed's records: our name server, and the delegation of the challenge zone to it.
%s
%s
`, p.serial, p.self, strings.Join(delegation, "\n"), strings.Join(p.extra, "\n"))
	tmp := p.zonePath + ".tmp"
	if err := os.WriteFile(tmp, []byte(zone), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p.zonePath)
}

// Resolver says where the stack's recursive resolver listens, whom it serves, and where it
// finds example.com.
type Resolver struct {
	Listen   string // HOST:PORT
	Allow    string // a CIDR allowed to ask
	Provider string // HOST:PORT of the provider, example.com's stub
	// TrustAnchor turns validation on (unbound's validator module) with this trust anchor
	// for example.com, as a DS record (SigningKey.TrustAnchor); empty: no validation.
	TrustAnchor string
}

// StartResolver runs unbound on ResolverIP:53 as the public DNS: it knows example.com only
// through a stub zone at the provider, and finds acmezone by following the provider's NS
// delegation of acme.example.com, as Let's Encrypt's resolver would. Caching is capped at a few
// seconds so that a record the test adds is seen quickly.
func StartResolver(ctx context.Context, dir, unbound string) (*Process, error) {
	return StartResolverAt(ctx, dir, unbound, Resolver{Listen: ResolverIP + ":53", Allow: "127.0.0.0/8", Provider: ProviderIP + ":53"})
}

// StartResolverAt is StartResolver on r's addresses.
func StartResolverAt(ctx context.Context, dir, unbound string, r Resolver) (*Process, error) {
	host, port, err := net.SplitHostPort(r.Listen)
	if err != nil {
		return nil, fmt.Errorf("resolver address %q: %w", r.Listen, err)
	}
	phost, pport, err := net.SplitHostPort(r.Provider)
	if err != nil {
		return nil, fmt.Errorf("provider address %q: %w", r.Provider, err)
	}
	// Without a trust anchor unbound only iterates; with one it validates everything below
	// example.com, answers what validates with the AD bit, and what does not with SERVFAIL.
	modules, anchor := "iterator", ""
	if r.TrustAnchor != "" {
		modules = "validator iterator"
		anchor = fmt.Sprintf("    trust-anchor: %q\n    val-log-level: 2\n", r.TrustAnchor)
	}
	conf := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`server:
    interface: %s@%s
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: %s allow
    do-not-query-localhost: no
    username: ""
    chroot: ""
    directory: "%s"
    pidfile: "%s"
    use-syslog: no
    logfile: ""
    verbosity: 1
    log-queries: yes
    module-config: "%s"
    qname-minimisation: no
    cache-max-ttl: 5
    cache-max-negative-ttl: 2
    infra-host-ttl: 5
%s
stub-zone:
    name: "example.com"
    stub-addr: %s@%s
`, host, port, r.Allow, dir, filepath.Join(dir, "unbound.pid"), modules, anchor, phost, pport)), 0o644); err != nil {
		return nil, err
	}
	proc, err := Start(dir, "unbound", unbound, "-d", "-c", conf)
	if err != nil {
		return nil, err
	}
	if err := WaitDNS(ctx, proc, r.Listen, "example.com.", 6); err != nil {
		proc.Stop()
		return nil, err
	}
	return proc, nil
}

// StartAcmezone runs acmezone's CoreDNS on AcmezoneIP:53, authoritative for acme.example.com,
// reading the API server through kubeconfig, with the target key in keyFile (WriteTargetKey;
// the controller's key).
func StartAcmezone(ctx context.Context, dir, coredns, kubeconfig, keyFile string) (*Process, error) {
	return StartAcmezoneWith(ctx, dir, coredns, kubeconfig, keyFile, AcmezoneConfig{})
}

// AcmezoneConfig is what a stage changes in acmezone's Corefile.
type AcmezoneConfig struct {
	// NameServer is the zone's NS record and its glue, "NAME ADDRESS": by default
	// "ns.example.com AcmezoneIP".
	NameServer string
	// SOA is the acmezone plugin's soa line's values: by default a refresh of 60 s.
	SOA string
	// Plugins are more plugins of the server block (dnssec, transfer, tsig), Corefile text.
	Plugins []string
	// Options are more lines of the acmezone block (notify).
	Options []string
}

// StartAcmezoneWith is StartAcmezone with cfg's changes.
func StartAcmezoneWith(ctx context.Context, dir, coredns, kubeconfig, keyFile string, cfg AcmezoneConfig) (*Process, error) {
	ns := cmp.Or(cfg.NameServer, "ns.example.com "+AcmezoneIP)
	soa := cmp.Or(cfg.SOA, "hostmaster.example.com 60 30 604800 2")
	indent := func(lines []string, by string) string {
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(by + l + "\n")
		}
		return b.String()
	}
	corefile := filepath.Join(dir, "Corefile.acmezone")
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(`acme.example.com:53 {
    bind %s
    errors
    log
    bufsize 1232
%s    acmezone {
        nameserver %s
        kubeconfig %s
        target_key %s
        ttl 5
        soa %s
%s    }
}
`, AcmezoneIP, indent(cfg.Plugins, "    "), ns, kubeconfig, keyFile, soa, indent(cfg.Options, "        "))), 0o644); err != nil {
		return nil, err
	}
	proc, err := Start(dir, "acmezone-coredns", coredns, "-conf", corefile)
	if err != nil {
		return nil, err
	}
	if err := WaitDNS(ctx, proc, AcmezoneIP, "acme.example.com.", 6); err != nil {
		proc.Stop()
		return nil, err
	}
	return proc, nil
}
