// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package controller

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// ReadDNSKEY reads the public key of the zone from path: a ".key" file as dnssec-keygen and
// `acmezone-controller dnssec-key` write it (the DNSKEY record in zone-file form, comments
// allowed). It must be a key-signing key (flags 257), the one whose DS goes to the parent,
// for zone (canonical). The private key is refused: the controller never needs it.
func ReadDNSKEY(path, zone string) (*dns.DNSKEY, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--dnssec-key: %w", err)
	}
	if bytes.Contains(raw, []byte("Private-key-format")) {
		return nil, fmt.Errorf("--dnssec-key %s is a private key: give the public key (the .key file, Secret key zone.key); acmezone-controller never needs the private key, which stays with CoreDNS", path)
	}
	rr, err := dns.ReadRR(bytes.NewReader(raw), path)
	if err != nil {
		return nil, fmt.Errorf("--dnssec-key %s: %w; want the DNSKEY record of the zone, as `acmezone-controller dnssec-key` writes it", path, err)
	}
	key, ok := rr.(*dns.DNSKEY)
	if !ok {
		return nil, fmt.Errorf("--dnssec-key %s holds no DNSKEY record; want the zone's public key, as `acmezone-controller dnssec-key` writes it", path)
	}
	if owner := dns.CanonicalName(key.Hdr.Name); owner != zone {
		return nil, fmt.Errorf("--dnssec-key %s is a key for %s, not for --zone %s: make a key for the zone with `acmezone-controller dnssec-key %s`", path, owner, zone, zone)
	}
	if key.Flags&dns.ZONE == 0 || key.Flags&dns.SEP == 0 {
		return nil, fmt.Errorf("--dnssec-key %s has flags %d, not a key-signing key (257): give the key whose DS goes to the parent zone (a zone-signing key, flags 256, needs no DS)", path, key.Flags)
	}
	if key.Protocol != 3 {
		return nil, fmt.Errorf("--dnssec-key %s has protocol %d; a DNSKEY's is always 3", path, key.Protocol)
	}
	switch key.Algorithm {
	case dns.RSASHA256, dns.RSASHA512, dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519:
	default:
		return nil, fmt.Errorf("--dnssec-key %s uses algorithm %d (%s), which CoreDNS's dnssec plugin does not sign with; make an ECDSAP256SHA256 key with `acmezone-controller dnssec-key %s`", path, key.Algorithm, dns.AlgorithmToString[key.Algorithm], zone)
	}
	if key.PublicKey == "" || key.ToDS(dns.SHA256) == nil {
		return nil, fmt.Errorf("--dnssec-key %s: the public key cannot be read", path)
	}
	return key, nil
}

// DSContent is ds's data as a user types it at their DNS provider: "KEYTAG ALGORITHM
// DIGESTTYPE DIGEST", the digest in upper case.
func DSContent(ds *dns.DS) string {
	return fmt.Sprintf("%d %d %d %s", ds.KeyTag, ds.Algorithm, ds.DigestType, strings.ToUpper(ds.Digest))
}

// DNSKEYTTL is the TTL of the DNSKEY records NewDNSKEY writes, and of the signatures CoreDNS's
// dnssec plugin makes over them.
const DNSKEYTTL = 3600

// NewDNSKEY makes a signing key for zone (canonical): ECDSAP256SHA256 (algorithm 13), flags
// 257, one key that signs everything and whose DS goes to the parent. It returns the key and
// the two files CoreDNS's dnssec plugin reads (`key file BASE` reads BASE.key and
// BASE.private): the DNSKEY record in zone-file form, and the private key in BIND's format.
func NewDNSKEY(zone string) (key *dns.DNSKEY, public, private string, err error) {
	key = &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: DNSKEYTTL},
		Flags:     dns.ZONE | dns.SEP,
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := key.Generate(256)
	if err != nil {
		return nil, "", "", fmt.Errorf("generate a DNSSEC key: %w", err)
	}
	public = fmt.Sprintf("; This is a key-signing key, keyid %d, for %s\n; DS to add at the parent: %s DS %s\n%s\n",
		key.KeyTag(), zone, zone, DSContent(key.ToDS(dns.SHA256)), key.String())
	return key, public, key.PrivateKeyString(priv), nil
}
