// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
)

// nsSecondary holds the Delegations and ChallengeRecords of the secondary measurement; only the
// hidden primary's server watches it (the large server watches every namespace and sees them too).
const nsSecondary = "secondary"

// secondaryTimeout is how long a record may take to reach the secondary before the measurement
// stops: far below the SOA refresh (an hour), so only a NOTIFY explains an answer within it.
const secondaryTimeout = 30 * time.Second

// secondaryLate is where the report starts counting records as late at the secondary: they
// make its tail.
const secondaryLate = 500 * time.Millisecond

// secondaryResult is the time from a ChallengeRecord's creation to the answer of a standard
// secondary (Knot) of a hidden acmezone primary, and the transfers that brought it there.
type secondaryResult struct {
	delegations int
	create      []time.Duration // the Create call alone
	primary     []time.Duration // Create call start to the hidden primary's first correct answer
	secondary   []time.Duration // Create call start to the secondary's first correct answer
	lag         []time.Duration // the secondary's answer after the primary's, record by record
	// Knot's incoming transfers while the records were created: incremental ones, and whole
	// zones (AXFR, or an IXFR the primary answered with the whole zone).
	ixfr, axfr, notifies int
	initial              string // the transfers before the measurement, as Knot logs them
	failed               string // why the measurement stopped early; empty when it did not
	load                 string
	knot                 string // knotd --version
	primaryAddr          string
	corefile             string // the hidden primary's, the TSIG secret left out
}

// checkSecondaryPorts fails early, and says why, when port 53 of the hidden primary's or the
// secondary's address is taken (an e2e stack of another run uses the same addresses).
func checkSecondaryPorts() error {
	for _, ip := range []string{stack.AcmezoneIP, stack.SecondaryIP} {
		addr := net.JoinHostPort(ip, "53")
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("the secondary measurement needs %s (TCP and UDP), which is taken (an e2e stack running?): %w", addr, err)
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			return fmt.Errorf("the secondary measurement needs %s (TCP and UDP), which is taken (an e2e stack running?): %w", addr, err)
		}
		u.Close()
	}
	return nil
}

// hiddenPrimaryCorefile serves the zone with acmezone from the API server (namespace
// nsSecondary only) as the hidden primary of stack.StartSecondary's Knot: the stack's
// HiddenPrimary lines (transfer to the secondary only, TSIG required, signed NOTIFY on every
// change, the secondary as the zone's name server).
func (s *server) hiddenPrimaryCorefile(kubeconfig string, key stack.TSIGKey) {
	hp := stack.AcmezoneConfig{}.HiddenPrimary(key)
	var b strings.Builder
	b.WriteString(s.common())
	for _, l := range hp.Plugins {
		b.WriteString("    " + l + "\n")
	}
	fmt.Fprintf(&b, `    acmezone {
        nameserver %s
        ttl 10
        soa %s
        kubeconfig %s
        target_key %s
        namespaces %s
`, hp.NameServer, hp.SOA, kubeconfig, s.keyFile, nsSecondary)
	for _, l := range hp.Options {
		b.WriteString("        " + l + "\n")
	}
	b.WriteString("    }\n}\n")
	s.corefile = b.String()
}

// measureSecondary creates n Delegations in nsSecondary, starts acmezone's CoreDNS on
// stack.AcmezoneIP:53 as a hidden primary and Knot (stack.StartSecondary) as its secondary, then
// creates one ChallengeRecord at a time and polls both over UDP (every millisecond) until each
// answers with the new value. Knot learns of each change only through the primary's NOTIFY:
// the SOA refresh is an hour.
func measureSecondary(ctx context.Context, c *cluster, dir, coredns string, n, workers int) (*secondaryResult, error) {
	knotd, err := stack.Knotd()
	if err != nil {
		return nil, err
	}
	if err := checkSecondaryPorts(); err != nil {
		return nil, err
	}
	r := &secondaryResult{delegations: n, knot: firstLine(knotd, "--version")}
	if err := c.createNamespaces(ctx, nsSecondary); err != nil {
		return nil, err
	}
	if _, err := c.createDelegations(ctx, nsSecondary, n, workers); err != nil {
		return nil, err
	}

	key, err := stack.NewTSIGKey("xfr." + zone)
	if err != nil {
		return nil, err
	}
	primary := &server{label: "hidden-primary", ip: stack.AcmezoneIP, port: 53, keyFile: c.keyFile}
	for _, p := range []*int{&primary.readyPort, &primary.pprofPort} {
		if *p, err = freePort(primary.ip); err != nil {
			return nil, err
		}
	}
	// The first target is known once the initial sync is done: NODATA, no TXT yet.
	primary.hitName, primary.hitValue = target(nsSecondary, 0), ""
	primary.hiddenPrimaryCorefile(c.kubeconfig, key)
	r.primaryAddr = primary.addr()
	r.corefile = strings.ReplaceAll(strings.ReplaceAll(primary.corefile, key.Secret, "SECRET"), dir+"/", "WORKDIR/")
	logf("starting bin/coredns %s on %s", primary.label, primary.addr())
	defer primary.stop()
	if err := primary.start(ctx, dir, coredns); err != nil {
		return nil, err
	}
	logf("starting Knot (%s) as its secondary on %s:53", r.knot, stack.SecondaryIP)
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	sec, err := stack.StartSecondary(startCtx, dir, knotd, primary.addr(), key)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("the secondary: %w", err)
	}
	defer sec.Stop()
	knot := &server{label: "knot", ip: stack.SecondaryIP, port: 53}

	// Knot has the zone as the primary serves it before the first record is created. (A
	// Delegation's target without records is no name in the zone's data: the primary answers
	// NODATA there, Knot NXDOMAIN.)
	if err := sameSerial(ctx, primary.addr(), sec.Addr); err != nil {
		return nil, err
	}
	before := sec.Transfers()
	r.initial = strings.Join(before, "\n")
	notifiesBefore := strings.Count(sec.Logs(), "notify, incoming")
	r.load = loadavg()

	for i := range n {
		name, value := target(nsSecondary, i), keyValue(nsSecondary, i)
		rec := v1alpha1.NewChallengeRecord(nsSecondary, name, value)
		start := time.Now()
		rec.Annotations = map[string]string{v1alpha1.CreatedAtAnnotation: start.UTC().Format(time.RFC3339Nano)}
		if err := c.client.Create(ctx, rec); err != nil {
			return nil, fmt.Errorf("create ChallengeRecord %s: %w", rec.Name, err)
		}
		r.create = append(r.create, time.Since(start))
		var wg sync.WaitGroup
		var took [2]time.Duration
		var errs [2]error
		for k, s := range []*server{primary, knot} {
			wg.Go(func() {
				errs[k] = waitAnswer(ctx, s, name, dns.RcodeSuccess, value, secondaryTimeout)
				took[k] = time.Since(start)
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errs[0] != nil {
			return nil, errs[0]
		}
		if errs[1] != nil {
			// Without a NOTIFY accepted, Knot would wait for the SOA refresh. CoreDNS and
			// Knot bind with SO_REUSEPORT: a second stack started on the same addresses
			// meanwhile takes part of the traffic, and Knot's TSIG checks fail.
			r.failed = fmt.Sprintf("record %d of %d not at the secondary %s after its creation (Knot's log says why: a refused NOTIFY, or another server on the same address)", i+1, n, secondaryTimeout)
			logf("secondary: %s: %v\nKnot's log:\n%s\nthe primary's log:\n%s", r.failed, errs[1], sec.Tail(20), primary.proc.Tail(20))
			break
		}
		r.primary = append(r.primary, took[0])
		r.secondary = append(r.secondary, took[1])
		r.lag = append(r.lag, took[1]-took[0])
	}
	all := sec.Transfers()
	r.axfr, r.ixfr = countTransfers(all[len(before):])
	r.notifies = strings.Count(sec.Logs(), "notify, incoming") - notifiesBefore
	if r.failed == "" {
		if err := sameSerial(ctx, primary.addr(), sec.Addr); err != nil {
			return nil, err
		}
	}
	logf("  the secondary: p50 %s, p99 %s, max %s; the primary: p50 %s, p99 %s; %d IXFR, %d AXFR",
		ms(percentile(r.secondary, 50)), ms(percentile(r.secondary, 99)), ms(percentile(r.secondary, 100)),
		ms(percentile(r.primary, 50)), ms(percentile(r.primary, 99)), r.ixfr, r.axfr)
	return r, nil
}

// sameSerial waits until the secondary serves the primary's SOA serial.
func sameSerial(ctx context.Context, primary, secondary string) error {
	deadline := time.Now().Add(secondaryTimeout)
	for {
		p, perr := stack.SOASerial(primary)
		s, serr := stack.SOASerial(secondary)
		if perr == nil && serr == nil && p == s {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the secondary serves serial %d (%v), the primary %d (%v), after %s", s, serr, p, perr, secondaryTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countTransfers counts the transfers in Knot's log lines (stack.Secondary.Transfers): one
// "finished" line each; an IXFR the primary answered with the whole zone ("AXFR-style IXFR")
// counts as an AXFR.
func countTransfers(lines []string) (axfr, ixfr int) {
	axfrStyle := 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, "AXFR-style"):
			axfrStyle++
		case !strings.Contains(l, "finished"):
		case strings.Contains(l, "IXFR, incoming"):
			ixfr++
		case strings.Contains(l, "AXFR, incoming"):
			axfr++
		}
	}
	return axfr + axfrStyle, ixfr - axfrStyle
}

// firstLine is the first line a command prints, or "unknown".
func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

// goals is the targets-table row of issue 14's secondary.
func (r *secondaryResult) goals() []goal {
	p99 := percentile(r.secondary, 99)
	t := goal{
		what: fmt.Sprintf("Secondary (issue 14): p99 ≤ %s from ChallengeRecord creation to the secondary's answer", seconds(targetSecondary)),
		measured: fmt.Sprintf("p99 %s, max %s over %d records (the hidden primary: p99 %s); %d IXFR, %d AXFR",
			ms(p99), ms(percentile(r.secondary, 100)), len(r.secondary), ms(percentile(r.primary, 99)), r.ixfr, r.axfr),
		met: r.failed == "" && len(r.secondary) > 0 && p99 <= targetSecondary,
	}
	switch {
	case r.failed != "":
		t.miss = r.failed
	case !t.met:
		t.miss = fmt.Sprintf("%s over", ms(p99-targetSecondary))
	}
	return []goal{t}
}

// section is the report's "Secondary" section (also printed by -secondary-only).
func (r *secondaryResult) section() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Secondary\n\n")
	p("| Hidden primary | Secondary | Delegations | Load average |\n| -------------- | --------- | ----------: | ------------ |\n")
	p("| `hidden-primary`, acmezone on %s, namespace `%s` | %s on %s:53 | %s | %s |\n\n", r.primaryAddr, nsSecondary, r.knot, stack.SecondaryIP, count(r.delegations), r.load)
	p("| Answered by | Created one by one | p50 | p99 | max |\n| ----------- | ---: | --: | --: | --: |\n")
	row := func(what string, d []time.Duration) {
		p("| %s | %d | %s | %s | %s |\n", what, len(d), ms(percentile(d, 50)), ms(percentile(d, 99)), ms(percentile(d, 100)))
	}
	row("**the secondary (Knot)**", r.secondary)
	row("the hidden primary (acmezone)", r.primary)
	row("the secondary after the primary", r.lag)
	row("the Create call alone", r.create)
	p("\n")
	if r.failed != "" {
		p("Stopped early: %s.\n\n", r.failed)
	}
	late := 0
	for _, d := range r.lag {
		if d > secondaryLate {
			late++
		}
	}
	p("| Knot's incoming transfers while the records were created | IXFR | AXFR | NOTIFYs received | Records at the secondary > %s after the primary |\n| --- | ---: | ---: | ---: | ---: |\n", seconds(secondaryLate))
	p("| %d | %d | %d | %d | %d |\n\n", r.ixfr+r.axfr, r.ixfr, r.axfr, r.notifies, late)
	p("Before the measurement:\n\n~~~ txt\n%s\n~~~\n\n", r.initial)
	p("The hidden primary's Corefile:\n\n~~~ corefile\n%s~~~\n\n", r.corefile)
	return b.String()
}
