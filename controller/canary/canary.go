// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package canary tests a Delegation the way a CA's DNS-01 check reads it: it publishes a fresh
// random TXT value at the Delegation's target through the store the solver writes to (a
// ChallengeRecord), asks every name server of the zone for it directly, over UDP with a small
// EDNS buffer and over TCP, resolves the challenge name through the resolvers until the value
// appears or a deadline passes, and removes the value again. A failure comes with the reason a
// user can act on: the CNAME gone or pointing elsewhere, the NS delegation changed, a name
// server unreachable over UDP or TCP, or answers without the value (stale data).
package canary

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records"
)

// Reasons a canary fails: the reason of a Delegation's Served condition when False, and the
// label of acmezone_canary_failures_total. The record check's reasons (records.Reason*) name
// what changed at the DNS provider when the resolvers do not return the value.
const (
	ReasonAnswered         = "CanaryAnswered"           // Served True
	ReasonUnreachableUDP   = "NameServerUnreachableUDP" // a name server does not answer over UDP
	ReasonUnreachableTCP   = "NameServerUnreachableTCP" // a name server does not answer over TCP
	ReasonStaleNameServer  = "NameServerStale"          // a name server answers without the value
	ReasonStaleResolver    = "ResolverStale"            // the records resolve, the value does not come back
	ReasonWriteFailed      = "CanaryWriteFailed"        // the API server refused the test value
	ReasonChallengePending = "ChallengePending"         // skipped: a real challenge is being answered at the target
)

// smallUDPSize is the EDNS buffer of the direct UDP queries: small, as some resolvers ask, so
// that an answer that only fits a large buffer shows up as truncated.
const smallUDPSize = 512

// Prober runs canaries. Client writes and deletes the test values; Resolver resolves as the
// CA's resolver does; Options gives the zone and its name servers.
type Prober struct {
	Client   client.Client
	Resolver *records.Resolver
	Options  *controller.Options
	// Deadline bounds how long a value may take to come back; Poll is the wait between
	// tries. The plugin's negative TTL (SOA minimum, 5 s by default) must be well inside it.
	Deadline, Poll time.Duration
	// Port is the name servers' DNS port: 53 unless a test sets it.
	Port int
	// lookup resolves a name server's name when the installation gave no address.
	lookup func(ctx context.Context, host string) ([]string, error)
}

// Result is what one canary found.
type Result struct {
	OK bool
	// Skipped: a real challenge's value is at the target, and the canary leaves it alone.
	Skipped bool
	Reason  string
	// Message says what was seen and, when it failed, what to restore.
	Message string
	// Latency is how long the value took to come back through the resolvers.
	Latency time.Duration
	// Started is when the value was written.
	Started time.Time
}

// Probe runs one canary for d at target (its own target, v1alpha1.TargetKey's rule).
func (p *Prober) Probe(ctx context.Context, d *v1alpha1.Delegation, target string) Result {
	target = v1alpha1.CanonicalName(target)
	var recs v1alpha1.ChallengeRecordList
	if err := p.Client.List(ctx, &recs, client.InNamespace(d.Namespace)); err != nil {
		return Result{Reason: ReasonWriteFailed, Message: fmt.Sprintf("list the ChallengeRecords of namespace %s: %v", d.Namespace, err)}
	}
	for i := range recs.Items {
		rec := &recs.Items[i]
		if v1alpha1.CanonicalName(rec.Spec.FQDN) != target {
			continue
		}
		if rec.Labels[v1alpha1.CanaryLabel] == "" {
			return Result{Skipped: true, Reason: ReasonChallengePending, Message: "a challenge is being answered at " + bare(target) + ": the canary waits"}
		}
		// A canary's value left behind by a controller that stopped mid-probe.
		_ = p.Client.Delete(ctx, rec)
	}

	value := newValue()
	rec := v1alpha1.NewChallengeRecord(d.Namespace, target, value)
	rec.Labels = map[string]string{v1alpha1.CanaryLabel: "true"}
	rec.Annotations = map[string]string{
		v1alpha1.CreatedAtAnnotation: time.Now().UTC().Format(time.RFC3339Nano),
		v1alpha1.DomainAnnotation:    d.Spec.Domain,
	}
	ttl := int32(v1alpha1.MinRecordTTL) // no resolver keeps a test value
	rec.Spec.TTL = &ttl
	res := Result{Started: time.Now()}
	if err := p.Client.Create(ctx, rec); err != nil && !apierrors.IsAlreadyExists(err) {
		res.Reason, res.Message = ReasonWriteFailed, fmt.Sprintf("write the test value at %s: %v", bare(target), err)
		return res
	}
	defer func() {
		// Never lingers: removed whatever happened, even when ctx is done.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = p.Client.Delete(dctx, rec)
	}()

	ctx, cancel := context.WithTimeout(ctx, p.deadline())
	defer cancel()
	// The name servers first, concurrently: each over UDP and over TCP.
	if r := p.nameServers(ctx, target, value); !r.OK {
		r.Started = res.Started
		return r
	}
	// Then the CA's view: the challenge name through the resolvers, following the CNAME.
	challenge := records.ChallengeName(d.Spec.Domain)
	last := ""
	for {
		resp, err := p.Resolver.Query(ctx, challenge, dns.TypeTXT)
		switch {
		case err == nil && hasValue(resp, value):
			res.OK, res.Reason = true, ReasonAnswered
			res.Latency = time.Since(res.Started)
			res.Message = fmt.Sprintf("A test value written at %s came back for %s through the resolvers in %.1f s, and from every name server of %s over UDP and TCP.",
				bare(target), bare(challenge), res.Latency.Seconds(), bare(p.Options.Zone))
			return res
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("%s with %d TXT values, none the test value", dns.RcodeToString[resp.Rcode], countTXT(resp))
		}
		if !sleep(ctx, p.poll()) {
			break
		}
	}
	return p.explain(context.WithoutCancel(ctx), d, target, challenge, last, res)
}

// explain says why the resolvers did not return the value: what changed at the DNS provider
// (the record check), or, when every record is still in place, that the answers are stale.
func (p *Prober) explain(ctx context.Context, d *v1alpha1.Delegation, target, challenge, last string, res Result) Result {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, c := range records.Verify(ctx, p.Resolver, *p.Options, d.Spec.Domain, target) {
		if !c.OK {
			res.Reason = c.Reason
			res.Message = fmt.Sprintf("A test value written at %s did not come back for %s through the resolvers within %s: %s.",
				bare(target), bare(challenge), p.deadline(), c.Problem)
			return res
		}
	}
	res.Reason = ReasonStaleResolver
	res.Message = fmt.Sprintf("A test value written at %s did not come back for %s through the resolvers within %s although every record is in place (last answer: %s); a resolver may be serving stale data.",
		bare(target), bare(challenge), p.deadline(), last)
	return res
}

// nameServers asks each of the zone's name servers for the value at target, over UDP (a
// small EDNS buffer) and over TCP, until it appears or ctx is done.
func (p *Prober) nameServers(ctx context.Context, target, value string) Result {
	type probe struct{ name, addr, network string }
	var probes []probe
	for _, ns := range p.Options.NameServers {
		addrs := make([]string, 0, len(ns.Addrs))
		for _, ip := range ns.Addrs {
			addrs = append(addrs, ip.String())
		}
		if len(addrs) == 0 {
			lookup := p.lookup
			if lookup == nil {
				lookup = net.DefaultResolver.LookupHost
			}
			found, err := lookup(ctx, strings.TrimSuffix(ns.Name, "."))
			if err != nil || len(found) == 0 {
				return Result{Reason: records.ReasonNameServerAddress, Message: fmt.Sprintf("the name server %s has no address: %v", bare(ns.Name), err)}
			}
			addrs = found
		}
		for _, a := range addrs {
			for _, network := range []string{"udp", "tcp"} {
				probes = append(probes, probe{bare(ns.Name), net.JoinHostPort(a, fmt.Sprint(p.port())), network})
			}
		}
	}
	results := make([]Result, len(probes))
	var wg sync.WaitGroup
	for i, pr := range probes {
		wg.Go(func() {
			results[i] = p.askDirect(ctx, pr.name, pr.addr, pr.network, target, value)
		})
	}
	wg.Wait()
	for _, r := range results {
		if !r.OK {
			return r
		}
	}
	return Result{OK: true}
}

// askDirect asks one name server at addr over network until it answers with value.
func (p *Prober) askDirect(ctx context.Context, name, addr, network, target, value string) Result {
	m := new(dns.Msg)
	m.SetQuestion(target, dns.TypeTXT)
	m.RecursionDesired = false
	m.SetEdns0(smallUDPSize, false)
	c := &dns.Client{Net: network, Timeout: 3 * time.Second, UDPSize: smallUDPSize}
	answered, last := false, ""
	for {
		resp, _, err := c.ExchangeContext(ctx, m, addr)
		switch {
		case err == nil && hasValue(resp, value):
			return Result{OK: true}
		case err == nil && resp.Truncated && network == "udp":
			// Too large for a small buffer: a resolver retries over TCP, which the TCP probe
			// of this name server tests.
			return Result{OK: true}
		case err == nil:
			answered = true
			last = fmt.Sprintf("%s with %d TXT values, none the test value", dns.RcodeToString[resp.Rcode], countTXT(resp))
		default:
			last = err.Error()
		}
		if !sleep(ctx, p.poll()) {
			break
		}
	}
	proto := strings.ToUpper(network)
	if !answered {
		reason := ReasonUnreachableUDP
		if network == "tcp" {
			reason = ReasonUnreachableTCP
		}
		return Result{Reason: reason, Message: fmt.Sprintf("The name server %s (%s) does not answer over %s (%s): make sure it is reachable on port %d over UDP and TCP from the Internet (a firewall, the load balancer's protocols).",
			name, addr, proto, last, p.port())}
	}
	return Result{Reason: ReasonStaleNameServer, Message: fmt.Sprintf("The name server %s (%s) answers over %s without a test value written at %s %s ago (%s): its data is stale; does acmezone's CoreDNS reach the API server (coredns_acmezone_stale_seconds)?",
		name, addr, proto, bare(target), p.deadline(), last)}
}

func (p *Prober) deadline() time.Duration {
	if p.Deadline > 0 {
		return p.Deadline
	}
	return time.Minute
}

func (p *Prober) poll() time.Duration {
	if p.Poll > 0 {
		return p.Poll
	}
	return 2 * time.Second
}

func (p *Prober) port() int {
	if p.Port > 0 {
		return p.Port
	}
	return 53
}

// hasValue reports whether resp holds value in a TXT record.
func hasValue(resp *dns.Msg, value string) bool {
	for _, rr := range resp.Answer {
		if txt, ok := rr.(*dns.TXT); ok && slices.Contains(txt.Txt, value) {
			return true
		}
	}
	return false
}

func countTXT(resp *dns.Msg) int {
	n := 0
	for _, rr := range resp.Answer {
		if _, ok := rr.(*dns.TXT); ok {
			n++
		}
	}
	return n
}

// newValue is a random value shaped like an ACME key authorization digest (43 characters of
// base64url), so that nothing that checks values treats it differently.
func newValue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func bare(name string) string { return strings.TrimSuffix(name, ".") }
