// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// SecondaryIP is where the stack's secondary name server of acme.example.com listens (port 53).
const SecondaryIP = "127.0.53.5"

// TSIGKey is a TSIG key shared by acmezone's CoreDNS and its secondary.
type TSIGKey struct {
	Name   string // canonical
	Secret string // base64
}

// NewTSIGKey makes a random HMAC-SHA256 key called name.
func NewTSIGKey(name string) (TSIGKey, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return TSIGKey{}, err
	}
	return TSIGKey{Name: dns.CanonicalName(name), Secret: base64.StdEncoding.EncodeToString(b)}, nil
}

// HiddenPrimary is c for a hidden primary of the stack's secondary: the zone's NS record is
// ns2.example.com (the secondary at SecondaryIP), the SOA refresh an hour, transfers only to
// the secondary and only signed with key (the transfer and tsig plugins), and every change
// NOTIFYed to it, signed with key.
func (c AcmezoneConfig) HiddenPrimary(key TSIGKey) AcmezoneConfig {
	c.NameServer = "ns2.example.com " + SecondaryIP
	c.SOA = "hostmaster.example.com 3600 600 604800 2"
	c.Plugins = append(slices.Clone(c.Plugins),
		fmt.Sprintf("transfer {\n        to %s:53\n    }", SecondaryIP),
		fmt.Sprintf("tsig {\n        secret %s %s\n        require AXFR IXFR\n    }", key.Name, key.Secret))
	c.Options = append(slices.Clone(c.Options), "notify "+SecondaryIP+":53", "notify_key "+key.Name)
	return c
}

// Secondary is Knot DNS (Debian's knot), a standard secondary of acme.example.com: it
// transfers the zone from acmezone's CoreDNS, signed with a TSIG key, and refreshes when a
// NOTIFY signed with that key arrives.
type Secondary struct {
	*Process
	Addr string // HOST:PORT
}

// Knotd is Debian's knotd, or an error saying how to install it.
func Knotd() (string, error) {
	for _, p := range []string{"knotd", "/usr/sbin/knotd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("knotd is not installed: apt-get install knot (.ci/run does)")
}

// StartSecondary runs knotd on SecondaryIP:53 as a secondary of acme.example.com, whose primary
// is acmezone's CoreDNS at primary (HOST:PORT), and waits until it has transferred the zone.
func StartSecondary(ctx context.Context, dir, knotd, primary string, key TSIGKey) (*Secondary, error) {
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		return nil, fmt.Errorf("primary address %q: %w", primary, err)
	}
	kdir := filepath.Join(dir, "knot")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return nil, err
	}
	// The zone lives in Knot's journal only (no zone file). NOTIFY is accepted only signed
	// with the key, from any address: in a cluster it comes from a pod's address, which
	// changes. Every transfer is signed with the key too, and asked from SecondaryIP (via),
	// the address the primary's transfer plugin allows. block-notify-after-transfer: Knot
	// 3.2 otherwise plans a NOTIFY of its own secondaries a second after every transfer, and
	// a refresh that a NOTIFY asks for in that same second waits for it (its zone events are
	// timed in whole seconds): up to a second late.
	conf := fmt.Sprintf(`server:
    rundir: %[1]q
    listen: %[2]s@53
log:
  - target: stderr
    any: info
database:
    storage: %[1]q
key:
  - id: %[3]s
    algorithm: hmac-sha256
    secret: %[4]s
remote:
  - id: acmezone
    address: %[5]s@%[6]s
    via: %[2]s
    key: %[3]s
    block-notify-after-transfer: on
acl:
  - id: notify-from-acmezone
    key: %[3]s
    action: notify
template:
  - id: default
    storage: %[1]q
    zonefile-load: none
    zonefile-sync: -1
    journal-content: all
zone:
  - domain: acme.example.com.
    master: acmezone
    acl: notify-from-acmezone
`, kdir, SecondaryIP, key.Name, key.Secret, host, port)
	confPath := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	proc, err := Start(dir, "knot-secondary", knotd, "-c", confPath)
	if err != nil {
		return nil, err
	}
	s := &Secondary{Process: proc, Addr: SecondaryIP + ":53"}
	if err := WaitDNS(ctx, proc, s.Addr, "acme.example.com.", dns.TypeSOA); err != nil {
		proc.Stop()
		return nil, err
	}
	for {
		_, err := s.Serial()
		if err == nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			proc.Stop()
			return nil, fmt.Errorf("the secondary has not transferred acme.example.com: %v\n%s", err, tail(proc.Logs(), 40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Serial is the SOA serial the secondary serves for acme.example.com.
func (s *Secondary) Serial() (uint32, error) {
	return SOASerial(s.Addr)
}

// SOASerial asks server (HOST:PORT) for acme.example.com's SOA serial.
func SOASerial(server string) (uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion("acme.example.com.", dns.TypeSOA)
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return 0, err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return 0, fmt.Errorf("%s: SOA of acme.example.com: %s, %d answers", server, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	soa, ok := r.Answer[0].(*dns.SOA)
	if !ok {
		return 0, fmt.Errorf("%s: SOA of acme.example.com: answer is %s", server, r.Answer[0])
	}
	return soa.Serial, nil
}

// Transfers are the lines of the secondary's log about finished incoming transfers ("AXFR,
// incoming, ... finished", "IXFR, incoming, ... finished"), in order.
func (s *Secondary) Transfers() []string {
	var out []string
	for _, l := range strings.Split(s.Logs(), "\n") {
		if strings.Contains(l, "XFR, incoming") && strings.Contains(l, "finished") {
			out = append(out, l)
		}
	}
	return out
}
