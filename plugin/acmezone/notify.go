// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// Secondaries: the IXFR journal and NOTIFY (RFC 1996), set up when the server starts.
//
// Every published change (publish calls store.published, under the store's lock, without
// blocking) wakes one goroutine per zone, which sends a round of NOTIFYs: through the
// transfer plugin's Notify (to its `to` addresses, unsigned), or, with `notify` lines, to
// those addresses itself, TSIG-signed with `notify_key`, the zone's current SOA in the
// answer. Nothing is sent from the query path, and nothing before the initial sync (the
// first publish is the sync's; it notifies, as a primary does when it loads a zone).
//
// Coalescing: a zone has at most one round in flight. A change during a round leaves one
// wake-up pending (a channel of one), so any number of changes during a round cause exactly
// one more round after it, which reads the newest SOA: bursts of writes do not flood the
// secondaries, and the last change is always notified.

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin/pkg/rcode"
	"github.com/coredns/coredns/plugin/transfer"
	"github.com/miekg/dns"
)

// notifyTimeout bounds one NOTIFY exchange; notifyTries is how often one is sent before the
// secondary counts as failed (as the transfer plugin does).
const (
	notifyTimeout = 2 * time.Second
	notifyTries   = 3
)

// secondaries sets up what serves secondaries, once the server block's plugins exist: the
// journal and NOTIFY when the transfer plugin tr is there (nil: it is not), the key of
// notify_key from the tsig plugin's secrets. Called from OnStartup, before Start.
func (a *ACMEZone) secondaries(tr *transfer.Transfer, tsigSecrets map[string]string) error {
	a.transfer = tr != nil
	if tr == nil {
		if len(a.cfg.notify) > 0 {
			return errors.New("'notify' needs the transfer plugin in the same server block: secondaries fetch the zone with AXFR/IXFR; add 'transfer { to ADDRESS... }'")
		}
		return nil
	}
	var secret string
	if a.cfg.notifyKey != "" {
		var ok bool
		if secret, ok = tsigSecrets[a.cfg.notifyKey]; !ok {
			return fmt.Errorf("notify_key %s: the server block's tsig plugin has no such key; add 'tsig { secret %s BASE64 }' with the secondary's key", a.cfg.notifyKey, a.cfg.notifyKey)
		}
	}
	if a.cfg.journalSteps > 0 {
		a.store.journal = newJournal(a.cfg.journalSteps)
	}
	round := func(zone string) {
		err := tr.Notify(zone)
		if err != nil {
			log.Warningf("NOTIFY for %s through the transfer plugin: %v", zone, err)
		}
		countNotify(zone, err)
	}
	if len(a.cfg.notify) > 0 {
		round = func(zone string) { a.notifyRound(zone, secret) }
	}
	n := &notifier{stop: make(chan struct{})}
	for _, z := range a.cfg.zones {
		wake := make(chan struct{}, 1)
		n.wake = append(n.wake, wake)
		n.wg.Go(func() {
			for {
				select {
				case <-n.stop:
					return
				case <-wake:
					round(z)
				}
			}
		})
	}
	a.mu.Lock()
	a.notifier = n
	a.mu.Unlock()
	a.store.published = n.changed
	return nil
}

// notifier wakes one round of NOTIFYs per zone after a change (see above).
type notifier struct {
	wake []chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// changed wakes every zone's round, or leaves it pending when one is in flight. It never
// blocks.
func (n *notifier) changed() {
	for _, w := range n.wake {
		select {
		case w <- struct{}{}:
		default: // a round is pending already
		}
	}
}

// close stops the rounds; one in flight finishes on its own.
func (n *notifier) close() { close(n.stop) }

// notifyRound sends a NOTIFY for zone, with its current SOA, to every `notify` address at
// once, signed with the notify_key's secret when there is one, and waits for them.
func (a *ACMEZone) notifyRound(zone, secret string) {
	snap := a.store.load()
	if snap == nil || snap.soa[zone] == nil {
		return
	}
	m := new(dns.Msg)
	m.SetNotify(zone)
	m.Answer = []dns.RR{snap.soa[zone]}
	var wg sync.WaitGroup
	for _, addr := range a.cfg.notify {
		wg.Go(func() {
			msg := m.Copy() // signing writes the message
			c := &dns.Client{Net: "udp", Timeout: notifyTimeout}
			if a.cfg.notifyKey != "" {
				c.TsigSecret = map[string]string{a.cfg.notifyKey: secret}
				msg.SetTsig(a.cfg.notifyKey, dns.HmacSHA256, 300, time.Now().Unix())
			}
			err := sendNotify(c, msg, addr)
			if err != nil {
				log.Warningf("NOTIFY for %s (serial %d): %v", zone, snap.soa[zone].Serial, err)
			}
			countNotify(zone, err)
		})
	}
	wg.Wait()
}

// sendNotify sends m to addr until it is answered NOERROR, notifyTries times at most.
func sendNotify(c *dns.Client, m *dns.Msg, addr string) error {
	var err error
	for range notifyTries {
		var resp *dns.Msg
		resp, _, err = c.Exchange(m, addr)
		if err == nil && resp.Rcode == dns.RcodeSuccess {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("rcode %s", rcode.ToString(resp.Rcode))
		}
	}
	return fmt.Errorf("not accepted by %s: %w", addr, err)
}
