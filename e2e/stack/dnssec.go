// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/controller"
)

// SigningKey is a DNSSEC key of one zone (ECDSA P-256, flags 257: one key signs everything),
// written as dnssec-keygen writes it, for CoreDNS's dnssec plugin: `key file <Base>` reads
// Base.key and Base.private.
type SigningKey struct {
	Zone   string
	Base   string
	DNSKEY *dns.DNSKEY
}

// GenerateSigningKey makes a key for zone as `acmezone-controller dnssec-key` does
// (controller.NewDNSKEY) and writes its two files into dir.
func GenerateSigningKey(dir, zone string) (*SigningKey, error) {
	zone = dns.CanonicalName(zone)
	k, public, private, err := controller.NewDNSKEY(zone)
	if err != nil {
		return nil, fmt.Errorf("DNSSEC key for %s: %w", zone, err)
	}
	base := filepath.Join(dir, fmt.Sprintf("K%s+%03d+%05d", zone, k.Algorithm, k.KeyTag()))
	if err := os.WriteFile(base+".key", []byte(public), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".private", []byte(private), 0o600); err != nil {
		return nil, err
	}
	return &SigningKey{Zone: zone, Base: base, DNSKEY: k}, nil
}

// DS is the key's DS record (SHA-256), what the parent zone publishes.
func (k *SigningKey) DS() *dns.DS { return k.DNSKEY.ToDS(dns.SHA256) }

// DSLine is the DS record as a zone-file line of the parent.
func (k *SigningKey) DSLine() string {
	return fmt.Sprintf("%s IN DS %s", k.Zone, controller.DSContent(k.DS()))
}

// TrustAnchor is the key as unbound's trust-anchor option takes it (a DS record).
func (k *SigningKey) TrustAnchor() string {
	ds := k.DS()
	return fmt.Sprintf("%s DS %d %d %d %s", ds.Hdr.Name, ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
}

// Corefile is the dnssec plugin's block signing with this key.
func (k *SigningKey) Corefile() string {
	return fmt.Sprintf("dnssec {\n        key file %s\n    }", k.Base)
}
