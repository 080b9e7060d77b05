// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"testing"

	"github.com/miekg/dns"
)

// TestInZoneAgreesWithMiekg checks the allocation-free zone match against dns.IsSubDomain.
func TestInZoneAgreesWithMiekg(t *testing.T) {
	zones := []string{".", "com.", "example.com.", "acme.example.com."}
	names := []string{
		".", "com.", "example.com.", "acme.example.com.", "x.acme.example.com.", "a.b.acme.example.com.",
		"xacme.example.com.", "cme.example.com.", "example.org.", "acme.example.com.evil.",
		`a\.acme.example.com.`, `a\\.acme.example.com.`, `a\\\.acme.example.com.`, `acme\.example.com.`,
		`x.acme\.example.com.`, "e.", "m.",
	}
	for _, z := range zones {
		for _, n := range names {
			if got, want := inZone(z, n), dns.IsSubDomain(z, n); got != want {
				t.Errorf("inZone(%q, %q) = %v, dns.IsSubDomain says %v", z, n, got, want)
			}
		}
	}
}
