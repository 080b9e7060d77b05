// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
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
	zonePath string
	self     string // the address of ns1.example.com, the provider itself
	acmezone string // the address of ns.example.com, acmezone's name server
	mu       sync.Mutex
	serial   int
	extra    []string
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
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("provider address %q: %w", listen, err)
	}
	p := &Provider{zonePath: filepath.Join(dir, "example.com.zone"), self: host, acmezone: nameserver}
	if err := p.write(); err != nil {
		return nil, err
	}
	corefile := filepath.Join(dir, "Corefile.provider")
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(`example.com:%s {
    bind %s
    file %s {
        reload 200ms
    }
    log
    errors
}
`, port, host, p.zonePath)), 0o644); err != nil {
		return nil, err
	}
	proc, err := Start(dir, "provider-coredns", coredns, "-conf", corefile)
	if err != nil {
		return nil, err
	}
	p.Process = proc
	if err := WaitDNS(ctx, proc, listen, "example.com.", 6); err != nil {
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
	zone := fmt.Sprintf(`$ORIGIN example.com.
$TTL 5
@        IN SOA  ns1.example.com. hostmaster.example.com. %d 60 30 86400 5
@        IN NS   ns1.example.com.
ns1      IN A    %s
; The seed's records: our name server, and the delegation of the challenge zone to it.
ns       IN A    %s
acme     IN NS   ns.example.com.
%s
`, p.serial, p.self, p.acmezone, strings.Join(p.extra, "\n"))
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
    module-config: "iterator"
    qname-minimisation: no
    cache-max-ttl: 5
    cache-max-negative-ttl: 2
    infra-host-ttl: 5

stub-zone:
    name: "example.com"
    stub-addr: %s@%s
`, host, port, r.Allow, dir, filepath.Join(dir, "unbound.pid"), phost, pport)), 0o644); err != nil {
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
	corefile := filepath.Join(dir, "Corefile.acmezone")
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(`acme.example.com:53 {
    bind %s
    errors
    log
    bufsize 1232
    acmezone {
        nameserver ns.example.com %s
        kubeconfig %s
        target_key %s
        ttl 5
        soa hostmaster.example.com 60 30 86400 2
    }
}
`, AcmezoneIP, AcmezoneIP, kubeconfig, keyFile)), 0o644); err != nil {
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
