// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"slices"

	"github.com/coredns/coredns/plugin/transfer"
	"github.com/miekg/dns"
)

// Transfer implements transfer.Transferer, so AXFR and IXFR work when the transfer plugin is
// in the server block. IXFR is answered as AXFR unless the client is current.
func (a *ACMEZone) Transfer(zone string, serial uint32) (<-chan []dns.RR, error) {
	zone = canonical(zone)
	snap := a.store.load()
	if snap == nil || snap.soa[zone] == nil {
		return nil, transfer.ErrNotAuthoritative
	}
	soa := snap.soa[zone]
	ch := make(chan []dns.RR)
	go func() {
		defer close(ch)
		if serial != 0 && !serialNewer(soa.Serial, serial) {
			ch <- []dns.RR{soa}
			return
		}
		ch <- []dns.RR{soa}
		var names []string
		snap.names(func(name string) {
			// Names of a more specific served zone belong to that zone's transfer.
			if a.store.zoneOf(name) == zone {
				names = append(names, name)
			}
		})
		slices.Sort(names)
		for _, name := range names {
			for _, set := range snap.lookup(name).sets(name) {
				ch <- set
			}
		}
		ch <- []dns.RR{soa}
	}()
	return ch, nil
}

// serialNewer reports whether serial a is newer than b in RFC 1982 arithmetic.
func serialNewer(a, b uint32) bool { return a != b && int32(a-b) > 0 }
