// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DefaultTimeout bounds one query to one server.
const DefaultTimeout = 3 * time.Second

// resolvConf is where NewResolver finds the system's resolvers.
const resolvConf = "/etc/resolv.conf"

// Resolver sends recursive queries to a list of resolvers, as the CA's resolver would see the
// user's records. It asks over UDP and again over TCP when the answer is truncated, and moves
// on to the next server when one fails to answer or answers SERVFAIL or REFUSED.
type Resolver struct {
	// Servers are the resolvers to ask, as host:port, in order.
	Servers []string
	// Timeout bounds one query to one server; DefaultTimeout when zero.
	Timeout time.Duration
	// NameServerPort is the port the zone's own name servers are asked on directly (the
	// DNSKEY check of a signed zone): 53 unless a test sets it.
	NameServerPort int
}

// NewResolver returns a Resolver for servers (host:port; a host alone means port 53). An
// empty list means the servers of /etc/resolv.conf.
func NewResolver(servers []string) (*Resolver, error) {
	return newResolver(servers, resolvConf)
}

func newResolver(servers []string, conf string) (*Resolver, error) {
	if len(servers) == 0 {
		cc, err := dns.ClientConfigFromFile(conf)
		if err != nil {
			return nil, fmt.Errorf("read resolvers from %s: %w", conf, err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("%s names no nameserver: give the resolvers to use explicitly", conf)
		}
	}
	r := &Resolver{Timeout: DefaultTimeout}
	for _, s := range servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			if s == "" || (strings.Contains(s, ":") && net.ParseIP(s) == nil) {
				return nil, fmt.Errorf("resolver %q is not host:port", s)
			}
			s = net.JoinHostPort(s, "53")
		}
		r.Servers = append(r.Servers, s)
	}
	return r, nil
}

// Query asks the servers, in order, for name and qtype with recursion desired. It returns the
// first answer that is neither SERVFAIL nor REFUSED; when every server fails it returns the last
// answer, or the last error when no server answered at all.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)

	var last *dns.Msg
	err := errors.New("no resolver configured")
	for _, server := range r.Servers {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		resp, qerr := r.exchange(ctx, m, server)
		if qerr != nil {
			err = fmt.Errorf("%s: %w", server, qerr)
			continue
		}
		if resp.Rcode != dns.RcodeServerFailure && resp.Rcode != dns.RcodeRefused {
			return resp, nil
		}
		last = resp
	}
	if last != nil {
		return last, nil
	}
	return nil, err
}

// exchange asks one server over UDP, and over TCP when the UDP answer is truncated.
func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	resp, err := exchangeOver(ctx, "udp", m, server, timeout)
	if err == nil && resp.Truncated {
		resp, err = exchangeOver(ctx, "tcp", m, server, timeout)
	}
	return resp, err
}

func exchangeOver(ctx context.Context, network string, m *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: timeout}
	resp, _, err := c.ExchangeContext(ctx, m.Copy(), server)
	return resp, err
}
