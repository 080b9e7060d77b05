// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"slices"

	"github.com/coredns/coredns/plugin/transfer"
	"github.com/miekg/dns"
)

// Transfer implements transfer.Transferer, so AXFR and IXFR work when the transfer plugin is
// in the server block. An IXFR from the current serial (or a newer one: another replica's) gets
// the SOA alone; from a serial the journal reaches back to, the difference in RFC 1995's
// form, condensed into one step; from any other, the whole zone as for AXFR.
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
		if serial != 0 {
			if del, add, ok := snap.difference(zone, serial, a.store.zoneOf); ok {
				old := *soa
				old.Serial = serial
				ch <- []dns.RR{soa}
				ch <- append([]dns.RR{&old}, del...)
				ch <- append([]dns.RR{soa}, add...)
				ch <- []dns.RR{soa}
				return
			}
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
