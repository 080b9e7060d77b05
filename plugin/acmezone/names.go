// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// Domain names as the plugin handles them.
//
// A canonical name is lower-case and absolute (ends with a dot), in miekg/dns's presentation
// form: the store's keys, the zones, fqdns and targets are all canonical, so that one map
// lookup with the lower-cased question finds a name however a resolver spells it. Names in
// answers keep the question's spelling (see appendRenamed).

import (
	"strings"

	"github.com/miekg/dns"
)

// canonical lower-cases a name and makes it absolute.
func canonical(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}

// parent returns the canonical parent of a canonical name, "" for the root.
func parent(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[i:]
}

// inZone reports whether the canonical name is the canonical zone or below it. It is
// dns.IsSubDomain without its allocations (it splits both names into labels) for names without
// escapes, which is every name a resolver asks about here: it runs once per query.
func inZone(zone, name string) bool {
	switch {
	case strings.IndexByte(name, '\\') >= 0:
		return dns.IsSubDomain(zone, name) // an escaped dot is no label boundary
	case zone == ".":
		return true
	case len(name) <= len(zone):
		return name == zone
	}
	return strings.HasSuffix(name, zone) && name[len(name)-len(zone)-1] == '.'
}

// zoneOf returns the first of zones (canonical, longest first: the most specific) that holds
// the canonical name, or "".
func zoneOf(zones []string, name string) string {
	for _, z := range zones {
		if inZone(z, name) {
			return z
		}
	}
	return ""
}

// wireName spells an owner name the way a query for it arrives (miekg/dns's unpacked
// form), so that an escape (\098 for b) cannot make a name look like another to the checks
// and the index while it is the same on the wire.
func wireName(name string) string {
	if strings.IndexByte(name, '\\') < 0 {
		return name
	}
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return name // the parser accepted it; the checks see it as written
	}
	out, _, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil {
		return name
	}
	return out
}
