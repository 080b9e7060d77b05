// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/transfer"
)

func TestParse(t *testing.T) {
	tests := []struct {
		input     string
		shouldErr bool
		errSub    string // part of the error message, when shouldErr
		check     func(*config) string
	}{
		{input: `acmezone acme.example.com {
			nameserver ns.example.com 34.84.45.1
		}`, check: func(c *config) string {
			if c.ttl != defaultTTL || c.minimum != defaultMinimum || c.startupTimeout != defaultStartupTimeout {
				return "defaults not applied"
			}
			if len(c.zones) != 1 || c.zones[0] != "acme.example.com." {
				return "zones: " + strings.Join(c.zones, ",")
			}
			if c.kubeconfig != "" || len(c.namespaces) != 0 || len(c.configmaps) != 0 {
				return "kubeconfig/namespaces/configmaps set without being asked"
			}
			if c.maxBytes != 262144 || c.maxRecords != 5000 || c.maxValues != 16 {
				return fmt.Sprintf("limits %d %d %d, want the defaults 262144 5000 16", c.maxBytes, c.maxRecords, c.maxValues)
			}
			if c.expire != 604800 || c.refresh != 60 || c.retry != 30 {
				return fmt.Sprintf("SOA timers %d %d %d, want the defaults 60 30 604800", c.refresh, c.retry, c.expire)
			}
			if len(c.notify) != 0 || c.notifyKey != "" || c.journalSteps != 100 {
				return fmt.Sprintf("notify %v key %q journal %d, want none and the default journal", c.notify, c.notifyKey, c.journalSteps)
			}
			if c.targetKey.Label("shop", "example.com") != testKey.Label("shop", "example.com") {
				return "the target key is not the file's"
			}
			return ""
		}},
		{input: `acmezone ACME.Example.com. other.org {
			nameserver ns1.acme.example.com 192.0.2.1 2001:db8::1
			nameserver ns2.example.net
			ttl 30s
			soa hostmaster.example.com 120 60 604800 10
			kubeconfig /etc/kube.conf prod
			namespaces shop blog
			namespaces more
			configmaps acmezone
			configmaps kube-system
			configmap_limits 1000 10
			max_values 3
			startup_timeout 2s
			fallthrough other.org
			notify 127.0.0.60 [2001:db8::54]:5353
			notify 192.0.2.54:20053
			notify_key Xfr.Acme.Example.com
			ixfr_journal 5
		}`, check: func(c *config) string {
			switch {
			case strings.Join(c.notify, ",") != "127.0.0.60:53,[2001:db8::54]:5353,192.0.2.54:20053":
				return "notify " + strings.Join(c.notify, ",")
			case c.notifyKey != "xfr.acme.example.com.":
				return "notify_key " + c.notifyKey
			case c.journalSteps != 5:
				return "ixfr_journal"
			case strings.Join(c.zones, ",") != "acme.example.com.,other.org.":
				return "zones " + strings.Join(c.zones, ",")
			case len(c.nameservers) != 2 || len(c.nameservers[0].addrs) != 2:
				return "nameservers"
			case c.ttl != 30 || c.refresh != 120 || c.retry != 60 || c.expire != 604800 || c.minimum != 10:
				return "ttl/soa timers"
			case c.mbox != "hostmaster.example.com.":
				return "mbox " + c.mbox
			case c.kubeconfig != "/etc/kube.conf" || c.kubecontext != "prod":
				return "kubeconfig"
			case strings.Join(c.namespaces, ",") != "shop,blog,more":
				return "namespaces"
			case strings.Join(c.configmaps, ",") != "acmezone,kube-system":
				return "configmaps"
			case c.maxBytes != 1000 || c.maxRecords != 10 || c.maxValues != 3:
				return "configmap_limits/max_values"
			case c.startupTimeout != 2*time.Second:
				return "startup_timeout"
			case !c.fall.Through("x.other.org.") || c.fall.Through("x.acme.example.com."):
				return "fallthrough zones"
			}
			return ""
		}},
		{input: `acmezone acme.example.com {
			nameserver ns.example.com
		}`, check: func(c *config) string {
			soa := c.soaFor("acme.example.com.")
			if soa.Ns != "ns.example.com." || soa.Mbox != "hostmaster.acme.example.com." || soa.Hdr.Ttl != defaultMinimum {
				return "default SOA: " + soa.String()
			}
			return ""
		}},
		// Errors name the line and say what is wrong.
		{input: "acmezone acme.example.com", shouldErr: true, errSub: "at least one 'nameserver"},
		{input: "acmezone acme.example.com {\n nameserver ns.acme.example.com\n}", shouldErr: true, errSub: "needs an address"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com 1.2.3.4\n bogus 1\n}", shouldErr: true, errSub: `Testfile:3 - Error during parsing: unknown property "bogus"`},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com 1.2.3\n}", shouldErr: true, errSub: `"1.2.3" is not an IPv4 or IPv6 address`},
		{input: "acmezone acme.example.com {\n nameserver\n}", shouldErr: true, errSub: "Testfile:2"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n ttl 0\n}", shouldErr: true, errSub: "out of range"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n ttl ten\n}", shouldErr: true, errSub: "not a number of seconds"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n ttl 1 2\n}", shouldErr: true, errSub: "Wrong argument count"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n soa a b c\n}", shouldErr: true, errSub: "soa takes MBOX"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n soa h.example.com 1 1 1 999999\n}", shouldErr: true, errSub: "negative-caching TTL"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n kubeconfig\n}", shouldErr: true, errSub: "Wrong argument count"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n namespaces\n}", shouldErr: true, errSub: "Wrong argument count"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n startup_timeout soon\n}", shouldErr: true, errSub: "not a duration"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n}\nacmezone other.org {\n nameserver ns.example.com\n}", shouldErr: true, errSub: "can only be used once"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n configmaps\n}", shouldErr: true, errSub: "Wrong argument count"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n configmap_limits 1000\n}", shouldErr: true, errSub: "Wrong argument count"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n configmap_limits 1k 10\n}", shouldErr: true, errSub: "not a positive number"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n configmap_limits 1000 0\n}", shouldErr: true, errSub: "not a positive number"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n max_values 0\n}", shouldErr: true, errSub: "not a number from 1 to 1000"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n max_values\n}", shouldErr: true, errSub: "Wrong argument count"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n notify_key xfr.example.com.\n}", shouldErr: true, errSub: "notify_key xfr.example.com. needs 'notify ADDRESS...'"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n notify secondary.example.net\n}", shouldErr: true, errSub: `notify "secondary.example.net" is not an IP address or IP:port`},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n notify 127.0.0.1:x\n}", shouldErr: true, errSub: "Testfile:3"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n notify\n}", shouldErr: true, errSub: "Wrong argument count"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n notify 127.0.0.1\n notify_key a b\n}", shouldErr: true, errSub: "Wrong argument count"},
		{input: "acmezone acme.example.com {\n nameserver ns.example.com\n ixfr_journal -1\n}", shouldErr: true, errSub: "not a number from 0"},
	}
	for i, tc := range tests {
		cfg, err := parse(caddy.NewTestController("dns", withKey(t, tc.input)))
		if tc.shouldErr {
			if err == nil {
				t.Errorf("Test %d: expected error, got none for:\n%s", i, tc.input)
			} else if !strings.Contains(err.Error(), tc.errSub) {
				t.Errorf("Test %d: error %q does not contain %q", i, err, tc.errSub)
			}
			continue
		}
		if err != nil {
			t.Errorf("Test %d: expected no error, got %v", i, err)
			continue
		}
		if msg := tc.check(cfg); msg != "" {
			t.Errorf("Test %d: %s", i, msg)
		}
	}
}

// The target key is required, and a missing or short one is an error that says how to make one.
func TestParseTargetKey(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		property string
		errSub   string
	}{
		{"", "'target_key FILE' is required"},
		{"", "head -c 32 /dev/urandom | base64 > FILE"},
		{"target_key " + filepath.Join(dir, "missing"), "no such file"},
		{"target_key " + filepath.Join(dir, "missing"), "head -c 32 /dev/urandom | base64 > FILE"},
		{"target_key " + short, "want at least 32"},
		{"target_key", "Wrong argument count"},
		{"target_key a b", "Wrong argument count"},
	} {
		_, err := parse(caddy.NewTestController("dns", "acmezone acme.example.com {\n nameserver ns.example.com\n "+tc.property+"\n}"))
		if err == nil || !strings.Contains(err.Error(), tc.errSub) {
			t.Errorf("Test %d (%q): error %v, want one containing %q", i, tc.property, err, tc.errSub)
		}
	}
}

func TestSetupRegistersPlugin(t *testing.T) {
	c := caddy.NewTestController("dns", withKey(t, "acmezone acme.example.com {\n nameserver ns.example.com 192.0.2.1\n kubeconfig /nonexistent\n}"))
	if err := setup(c); err != nil {
		t.Fatalf("setup: %v", err)
	}
	// setup only parses and registers; with a kubeconfig that does not exist it still succeeds,
	// because connecting happens in OnStartup.
	if n := len(dnsserver.GetConfig(c).Plugin); n != 1 {
		t.Errorf("setup added %d plugins, want 1", n)
	}
}

// TestSecondariesErrors: what the server block must hold for notify and notify_key is checked
// when the server starts (the other plugins exist only then), with errors that say what to add.
func TestSecondariesErrors(t *testing.T) {
	const block = "acmezone acme.example.com {\n nameserver ns.example.com\n%s}"
	tests := []struct {
		lines    string
		transfer bool
		secrets  map[string]string
		errSub   string // "" for none
	}{
		{lines: " notify 127.0.0.1\n", errSub: "'notify' needs the transfer plugin"},
		{lines: " notify 127.0.0.1\n notify_key xfr.example.com.\n", transfer: true, secrets: map[string]string{"other.": "c2VjcmV0"}, errSub: "notify_key xfr.example.com.: the server block's tsig plugin has no such key"},
		{lines: " notify 127.0.0.1\n notify_key XFR.example.com\n", transfer: true, secrets: map[string]string{"xfr.example.com.": "c2VjcmV0"}},
		{lines: "", transfer: true},
		{lines: ""},
	}
	for i, tc := range tests {
		a := newTestPlugin(t, fmt.Sprintf(block, tc.lines))
		var tr *transfer.Transfer
		if tc.transfer {
			tr = &transfer.Transfer{}
		}
		err := a.secondaries(tr, tc.secrets)
		switch {
		case tc.errSub == "" && err != nil:
			t.Errorf("Test %d: %v, want no error", i, err)
		case tc.errSub != "" && (err == nil || !strings.Contains(err.Error(), tc.errSub)):
			t.Errorf("Test %d: error %v, want one that says %q", i, err, tc.errSub)
		case err == nil && (a.store.journal != nil) != tc.transfer:
			t.Errorf("Test %d: journal kept %v, want it exactly with the transfer plugin", i, a.store.journal != nil)
		}
		_ = a.Stop()
	}
}
