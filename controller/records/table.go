// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// WriteTable prints checks as the seed's markdown table, with a Status column that holds ✓ or
// the problem. The TXT lookup check is a row of its own whose Content says where the lookup
// must end, so that nobody mistakes it for a record to add; so are the DNSKEY checks of a
// signed zone, one per name server.
func WriteTable(w io.Writer, checks []Check) error {
	rows := [][]string{{"Type", "Name", "Content", "Status"}}
	for _, c := range checks {
		content := c.Record.Content
		switch c.Record.Type {
		case TypeTXT:
			content = "(lookup through the CNAME) ends at " + content
		case TypeDNSKEY:
			content = "(asked directly) served and signed by " + content
		}
		status := "✓"
		if !c.OK {
			status = c.Problem
		}
		rows = append(rows, []string{c.Record.Type, c.Record.Name, content, status})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			row[i] = strings.ReplaceAll(cell, "|", `\|`)
			width[i] = max(width[i], utf8.RuneCountInString(row[i]))
		}
	}
	var b strings.Builder
	writeRow := func(cells []string) {
		for i, cell := range cells {
			fmt.Fprintf(&b, "| %s%s ", cell, strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell)))
		}
		b.WriteString("|\n")
	}
	writeRow(rows[0])
	rule := make([]string, len(width))
	for i, n := range width {
		rule[i] = strings.Repeat("-", n)
	}
	writeRow(rule)
	for _, row := range rows[1:] {
		writeRow(row)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Run is `acmezone-controller records DOMAIN`: it checks the records for domain through
// opts.Resolvers (or /etc/resolv.conf) and prints the table to out. target is the Delegation's
// status.target; a caller without access to the cluster passes "" and the CNAME shows
// TargetPlaceholder (then any CNAME into opts.Zone passes). allOK is true when every record
// resolves as it must.
func Run(ctx context.Context, out io.Writer, opts controller.Options, domain, target string) (allOK bool, err error) {
	resolver, err := NewResolver(opts.Resolvers)
	if err != nil {
		return false, err
	}
	checks := Verify(ctx, resolver, opts, domain, target)
	if err := WriteTable(out, checks); err != nil {
		return false, err
	}
	if target == "" {
		if _, err := fmt.Fprintf(out, "\n%s is status.target of the Delegation of %s (kubectl get delegations --all-namespaces).\n", TargetPlaceholder, v1alpha1.DomainKey(domain)); err != nil {
			return false, err
		}
	}
	return AllOK(checks), nil
}

// RunPersist prints the dns-persist-01 checks of a Delegation with a persistent authorization
// (its status.persistTarget): the CNAME _validation-persist.<domain> and the TXT lookup through
// it, as `acmezone-controller records DOMAIN` shows them under the delegation's table. allOK is
// true when both pass.
func RunPersist(ctx context.Context, out io.Writer, opts controller.Options, domain, persistTarget string) (allOK bool, err error) {
	resolver, err := NewResolver(opts.Resolvers)
	if err != nil {
		return false, err
	}
	checks := VerifyPersist(ctx, resolver, opts, domain, persistTarget, nil)
	if _, err := fmt.Fprintf(out, "\ndns-persist-01 (spec.persistentAuthorization):\n"); err != nil {
		return false, err
	}
	if err := WriteTable(out, checks); err != nil {
		return false, err
	}
	return AllOK(checks), nil
}
