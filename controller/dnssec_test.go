// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestReadDNSKEY(t *testing.T) {
	const zone = "acme.example.com."
	key, public, private, err := NewDNSKEY(zone)
	if err != nil {
		t.Fatal(err)
	}
	if key.Flags != 257 || key.Algorithm != dns.ECDSAP256SHA256 || key.Protocol != 3 {
		t.Errorf("NewDNSKEY: flags %d algorithm %d protocol %d, want 257 13 3", key.Flags, key.Algorithm, key.Protocol)
	}
	zsk := strings.Replace(key.String(), "DNSKEY\t257", "DNSKEY\t256", 1)
	rsamd5 := strings.Replace(key.String(), "DNSKEY\t257 3 13", "DNSKEY\t257 3 1", 1)
	dir := t.TempDir()
	tests := []struct {
		content string
		zone    string
		errHas  string // "" for success
	}{
		{public, zone, ""},
		{public, "other.example.com.", "is a key for acme.example.com., not for --zone other.example.com."},
		{private, zone, "is a private key: give the public key"},
		{zsk, zone, "flags 256, not a key-signing key"},
		{rsamd5, zone, "algorithm 1 (RSAMD5), which CoreDNS's dnssec plugin does not sign with"},
		{"acme.example.com. 3600 IN TXT \"no key\"\n", zone, "holds no DNSKEY record"},
		{"garbage here\n", zone, "want the DNSKEY record of the zone"},
	}
	for i, tc := range tests {
		path := filepath.Join(dir, "k")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadDNSKEY(path, tc.zone)
		switch {
		case tc.errHas == "" && err != nil:
			t.Errorf("Test %d: %v", i, err)
		case tc.errHas == "" && got.ToDS(dns.SHA256).Digest != key.ToDS(dns.SHA256).Digest:
			t.Errorf("Test %d: read a key whose DS differs from the written one's", i)
		case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
			t.Errorf("Test %d: error %v, want one saying %q", i, err, tc.errHas)
		}
	}
	if _, err := ReadDNSKEY(filepath.Join(dir, "missing.key"), zone); err == nil || !strings.Contains(err.Error(), "--dnssec-key") {
		t.Errorf("missing file: %v, want an error naming --dnssec-key", err)
	}
}
