// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	corednsparse "github.com/coredns/coredns/plugin/pkg/parse"
	"github.com/coredns/coredns/plugin/pkg/transport"
	"github.com/coredns/coredns/plugin/transfer"
	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// pluginName is the one name of this plugin: directive, logs, errors and metrics subsystem.
const pluginName = "acmezone"

var log = clog.NewWithPlugin(pluginName)

func init() { plugin.Register(pluginName, setup) }

// Defaults. Challenge records change within minutes, and a resolver must never cache a missing
// record for long (RFC 2308), so every TTL is seconds, not hours.
const (
	defaultTTL            = 10
	defaultNSTTL          = 3600
	defaultRefresh        = 60
	defaultRetry          = 30
	defaultExpire         = 604800 // a week, what zone checkers ask for: secondaries keep answering through a long outage
	defaultMinimum        = 5
	defaultStartupTimeout = 10 * time.Second
	maxTTL                = 86400
	// One ConfigMap's data, checked before it is parsed, and the static records of one zone:
	// zone data is a few records, and parsing and indexing it must stay cheap.
	defaultMaxConfigMapBytes = 256 << 10
	defaultMaxStaticRecords  = 5000
	// A name has two values while a certificate for a name and its wildcard is issued, a few
	// more when several are issued at once: 16 is plenty, and bounds what one name answers.
	defaultMaxValues = 16
	maxMaxValues     = 1000
)

// targetKeyHelp says what the target key is and where it comes from, for the errors about it.
const targetKeyHelp = "the file holds the key every Delegation's target is derived from, the same key as acmezone-controller's; " +
	"in a cluster, mount the Secret acmezone-target-key that acmezone-controller creates, " +
	"elsewhere create one with: head -c 32 /dev/urandom | base64 > FILE"

// nameserver is one `nameserver` line: an NS name and, for in-zone names, its glue.
type nameserver struct {
	name  string
	addrs []net.IP
}

// config is the parsed `acmezone` block.
type config struct {
	zones          []string
	nameservers    []nameserver
	ttl            uint32
	nsTTL          uint32
	mbox           string // "" means hostmaster.<zone>
	refresh        uint32
	retry          uint32
	expire         uint32
	minimum        uint32
	kubeconfig     string
	kubecontext    string
	namespaces     []string // ChallengeRecords and Delegations are read from these; none: all
	configmaps     []string // ConfigMaps are read from these only; none: no ConfigMap is read
	targetKey      v1alpha1.TargetKey
	maxBytes       int // of one ConfigMap's data
	maxRecords     int // static records of one zone
	maxValues      int // TXT values served at one name
	startupTimeout time.Duration
	fall           fall.F
	notify         []string // secondaries acmezone sends NOTIFY to itself, host:port
	notifyKey      string   // the tsig plugin's key NOTIFYs are signed with, "" for none
	journalSteps   int      // serials the IXFR journal keeps, 0 for none
}

// soaFor returns the SOA template of zone; the serial is set when a snapshot is published.
func (c *config) soaFor(zone string) dns.SOA {
	mbox := c.mbox
	if mbox == "" {
		mbox = "hostmaster." + zone
	}
	ns := "ns." + zone
	if len(c.nameservers) > 0 {
		ns = c.nameservers[0].name
	}
	return dns.SOA{
		// The SOA's own TTL is the minimum too: the negative TTL is min(SOA TTL, MINIMUM).
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: c.minimum},
		Ns:      ns,
		Mbox:    mbox,
		Refresh: c.refresh,
		Retry:   c.retry,
		Expire:  c.expire,
		Minttl:  c.minimum,
	}
}

func setup(c *caddy.Controller) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	a, err := New(cfg)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	c.OnStartup(func() error {
		// The other plugins of the block exist now; tsig's setup has filled TsigSecret.
		config := dnsserver.GetConfig(c)
		tr, _ := config.Handler("transfer").(*transfer.Transfer)
		a.signed = config.Handler("dnssec") != nil
		if err := a.secondaries(tr, config.TsigSecret); err != nil {
			return plugin.Error(pluginName, err)
		}
		return a.Start()
	})
	c.OnShutdown(a.Stop)
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		a.Next = next
		return a
	})
	return nil
}

func parse(c *caddy.Controller) (*config, error) {
	cfg := &config{
		ttl:            defaultTTL,
		nsTTL:          defaultNSTTL,
		refresh:        defaultRefresh,
		retry:          defaultRetry,
		expire:         defaultExpire,
		minimum:        defaultMinimum,
		maxBytes:       defaultMaxConfigMapBytes,
		maxRecords:     defaultMaxStaticRecords,
		maxValues:      defaultMaxValues,
		startupTimeout: defaultStartupTimeout,
		journalSteps:   defaultJournalSteps,
	}
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++
		cfg.zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		for j, z := range cfg.zones {
			cfg.zones[j] = canonical(z)
		}
		for c.NextBlock() {
			if err := parseProperty(c, cfg); err != nil {
				return nil, err
			}
		}
	}
	if len(cfg.nameservers) == 0 {
		return nil, c.Err("at least one 'nameserver NAME [ADDRESS...]' is required: it is the NS record at the zone apex")
	}
	if cfg.notifyKey != "" && len(cfg.notify) == 0 {
		return nil, c.Errf("notify_key %s needs 'notify ADDRESS...': the addresses of the secondaries to send signed NOTIFYs to", cfg.notifyKey)
	}
	if !cfg.targetKey.Valid() {
		return nil, c.Err("'target_key FILE' is required: " + targetKeyHelp)
	}
	for _, ns := range cfg.nameservers {
		inZone := plugin.Zones(cfg.zones).Matches(ns.name) != ""
		if inZone && len(ns.addrs) == 0 {
			return nil, c.Errf("nameserver %s is inside the zone and needs an address (its glue record): 'nameserver %s ADDRESS...'", ns.name, ns.name)
		}
	}
	return cfg, nil
}

func parseProperty(c *caddy.Controller, cfg *config) error {
	switch c.Val() {
	case "nameserver":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		if _, ok := dns.IsDomainName(args[0]); !ok {
			return c.Errf("nameserver %q is not a domain name", args[0])
		}
		ns := nameserver{name: canonical(args[0])}
		for _, a := range args[1:] {
			ip := net.ParseIP(a)
			if ip == nil {
				return c.Errf("nameserver %s: %q is not an IPv4 or IPv6 address", args[0], a)
			}
			ns.addrs = append(ns.addrs, ip)
		}
		cfg.nameservers = append(cfg.nameservers, ns)
	case "ttl":
		v, err := oneSeconds(c, 1, maxTTL)
		if err != nil {
			return err
		}
		cfg.ttl = v
	case "soa":
		args := c.RemainingArgs()
		if len(args) != 1 && len(args) != 5 {
			return c.Errf("soa takes MBOX or MBOX REFRESH RETRY EXPIRE MINIMUM, got %d arguments", len(args))
		}
		if _, ok := dns.IsDomainName(args[0]); !ok {
			return c.Errf("soa mailbox %q is not a domain name (write hostmaster@example.com as hostmaster.example.com)", args[0])
		}
		cfg.mbox = dns.Fqdn(args[0])
		if len(args) == 5 {
			dst := []*uint32{&cfg.refresh, &cfg.retry, &cfg.expire, &cfg.minimum}
			for k, a := range args[1:] {
				v, err := seconds(c, a, 1, 1<<31-1)
				if err != nil {
					return err
				}
				*dst[k] = v
			}
			if cfg.minimum > maxTTL {
				return c.Errf("soa minimum %d is the negative-caching TTL and must be at most %d seconds", cfg.minimum, maxTTL)
			}
		}
	case "kubeconfig":
		args := c.RemainingArgs()
		if len(args) != 1 && len(args) != 2 {
			return c.ArgErr()
		}
		cfg.kubeconfig = args[0]
		if len(args) == 2 {
			cfg.kubecontext = args[1]
		}
	case "namespaces":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		cfg.namespaces = append(cfg.namespaces, args...)
	case "configmaps":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		cfg.configmaps = append(cfg.configmaps, args...)
	case "target_key":
		args := c.RemainingArgs()
		if len(args) != 1 {
			return c.ArgErr()
		}
		key, err := v1alpha1.LoadTargetKey(args[0])
		if err != nil {
			return c.Errf("target_key: %v; %s", err, targetKeyHelp)
		}
		cfg.targetKey = key
	case "configmap_limits":
		args := c.RemainingArgs()
		if len(args) != 2 {
			return c.ArgErr()
		}
		for k, dst := range []*int{&cfg.maxBytes, &cfg.maxRecords} {
			v, err := strconv.Atoi(args[k])
			if err != nil || v < 1 {
				return c.Errf("configmap_limits %s: %q is not a positive number (MAXBYTES of one ConfigMap's data, MAXRECORDS static records of one zone)", strings.Join(args, " "), args[k])
			}
			*dst = v
		}
	case "max_values":
		args := c.RemainingArgs()
		if len(args) != 1 {
			return c.ArgErr()
		}
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 || v > maxMaxValues {
			return c.Errf("max_values %q is not a number from 1 to %d", args[0], maxMaxValues)
		}
		cfg.maxValues = v
	case "startup_timeout":
		args := c.RemainingArgs()
		if len(args) != 1 {
			return c.ArgErr()
		}
		d, err := time.ParseDuration(args[0])
		if err != nil || d < 0 {
			return c.Errf("startup_timeout %q is not a duration like 10s", args[0])
		}
		cfg.startupTimeout = d
	case "notify":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, a := range args {
			addr, err := corednsparse.HostPort(a, transport.Port)
			if err == nil {
				_, port, _ := net.SplitHostPort(addr)
				if n, perr := strconv.ParseUint(port, 10, 16); perr != nil || n == 0 {
					err = perr
					if err == nil {
						err = fmt.Errorf("port 0")
					}
				}
			}
			if err != nil {
				return c.Errf("notify %q is not an IP address or IP:port (a secondary's address; port 53 by default)", a)
			}
			cfg.notify = append(cfg.notify, addr)
		}
	case "notify_key":
		args := c.RemainingArgs()
		if len(args) != 1 {
			return c.ArgErr()
		}
		if _, ok := dns.IsDomainName(args[0]); !ok {
			return c.Errf("notify_key %q is not a key name like xfr.example.com. (the name of a key of the tsig plugin)", args[0])
		}
		cfg.notifyKey = plugin.Name(args[0]).Normalize()
	case "ixfr_journal":
		args := c.RemainingArgs()
		if len(args) != 1 {
			return c.ArgErr()
		}
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 0 || v > maxJournalSteps {
			return c.Errf("ixfr_journal %q is not a number from 0 (no journal: IXFR sends the whole zone) to %d", args[0], maxJournalSteps)
		}
		cfg.journalSteps = v
	case "fallthrough":
		cfg.fall.SetZonesFromArgs(c.RemainingArgs())
	default:
		return c.Errf("unknown property %q", c.Val())
	}
	return nil
}

// oneSeconds reads the single argument of the current property as seconds.
func oneSeconds(c *caddy.Controller, lo, hi uint32) (uint32, error) {
	args := c.RemainingArgs()
	if len(args) != 1 {
		return 0, c.ArgErr()
	}
	return seconds(c, args[0], lo, hi)
}

// seconds parses "30" or "30s"/"5m"/"1h" into seconds within [lo, hi].
func seconds(c *caddy.Controller, s string, lo, hi uint32) (uint32, error) {
	var v int64
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		v = n
	} else if d, err := time.ParseDuration(s); err == nil && d%time.Second == 0 {
		v = int64(d / time.Second)
	} else {
		return 0, c.Errf("%s: %q is not a number of seconds or a duration like 30s", c.Val(), s)
	}
	if v < int64(lo) || v > int64(hi) {
		return 0, c.Errf("%s: %s is out of range, want %d to %d seconds", c.Val(), s, lo, hi)
	}
	return uint32(v), nil
}

// String renders the zones for log lines.
func (c *config) String() string {
	return fmt.Sprintf("zones=%s", strings.Join(c.zones, ","))
}

// InsertDirective puts acmezone into CoreDNS's plugin order right after tls, where upstream
// keeps tls: after dnssec, so dnssec can sign acmezone's answers, and before transfer, which
// acmezone hands zone transfers to. A custom CoreDNS main calls it once, before coremain.Run.
func InsertDirective() {
	if slices.Contains(dnsserver.Directives, pluginName) {
		return
	}
	i := slices.Index(dnsserver.Directives, "tls")
	dnsserver.Directives = slices.Insert(dnsserver.Directives, i+1, pluginName)
}
