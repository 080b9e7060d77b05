// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// ReasonPersistValueMissing: the dns-persist-01 lookup ends at the persist target, but not
// every value acmezone should serve there is answered yet.
const ReasonPersistValueMissing = "PersistValueMissing"

// PersistName returns the canonical name a CA looks up for domain's dns-persist-01
// authorization (draft-ietf-acme-dns-persist): "_validation-persist." and the domain.
func PersistName(domain string) string {
	return "_validation-persist." + v1alpha1.DomainKey(domain) + "."
}

// PersistRecord is the record the user adds for dns-persist-01: the CNAME from
// "_validation-persist.<domain>" to the Delegation's persist target.
func PersistRecord(domain, persistTarget string) v1alpha1.DNSRecord {
	return v1alpha1.DNSRecord{Type: TypeCNAME, Name: bare(PersistName(domain)), Content: bare(persistTarget)}
}

// VerifyPersist looks up the dns-persist-01 records of domain through resolver: the CNAME of
// PersistRecord, and TXT at the persist name as a CA does, following the CNAME, which must end
// at persistTarget and answer every one of values there. Two checks, in that order.
func VerifyPersist(ctx context.Context, resolver *Resolver, opts controller.Options, domain, persistTarget string, values []string) []Check {
	rec := PersistRecord(domain, persistTarget)
	checks := make([]Check, 2)
	var wg sync.WaitGroup
	wg.Go(func() { checks[0] = verifyCNAME(ctx, resolver, opts.Zone, rec, persistTarget) })
	wg.Go(func() { checks[1] = verifyPersistTXT(ctx, resolver, opts.Zone, domain, persistTarget, values) })
	wg.Wait()
	return checks
}

// verifyPersistTXT asks for TXT at the persist name and follows the CNAMEs in the answer: the
// lookup must end at target with every value among the TXT strings there.
func verifyPersistTXT(ctx context.Context, r *Resolver, zone, domain, target string, values []string) Check {
	name := PersistName(domain)
	rec := v1alpha1.DNSRecord{Type: TypeTXT, Name: bare(name), Content: bare(target)}
	c := Check{Record: rec, Reason: ReasonTXTLookupFailed}
	resp, err := r.Query(ctx, name, dns.TypeTXT)
	if failed := failure(resp, err); failed != "" {
		c.Found = failed
		c.Problem = fmt.Sprintf("the TXT lookup of %s fails: %s", rec.Name, failed)
		return c
	}
	end := chainEnd(resp, name)
	if !reaches(end, zone, target) {
		c.Found = redact(bare(end), zone)
		c.Problem = fmt.Sprintf("the TXT lookup of %s ends at %s, not at %s", rec.Name, c.Found, rec.Content)
		return c
	}
	var found []string
	for _, rr := range resp.Answer {
		if txt, ok := rr.(*dns.TXT); ok && canonical(txt.Hdr.Name) == end {
			found = append(found, strings.Join(txt.Txt, ""))
		}
	}
	c.Found = fmt.Sprintf("%d TXT records at %s", len(found), bare(end))
	var missing []string
	for _, v := range values {
		if !slices.Contains(found, v) {
			missing = append(missing, fmt.Sprintf("%q", v))
		}
	}
	if len(missing) > 0 {
		c.Reason = ReasonPersistValueMissing
		c.Problem = fmt.Sprintf("the TXT lookup of %s reaches %s but does not answer %s yet (acmezone serves it within seconds of writing it; a resolver may still hold an earlier answer)",
			rec.Name, rec.Content, strings.Join(missing, " and "))
		return c
	}
	c.OK, c.Reason = true, ""
	return c
}
