// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
)

// TestSecondary is issue 14's replication: acmezone's CoreDNS is a hidden primary, and the
// provider delegates acme.example.com to Knot (Debian's knot) alone, a standard secondary that
// transfers the zone with TSIG and refreshes on acmezone's signed NOTIFY (its SOA refresh is
// an hour). A wildcard certificate is issued with Pebble and cert-manager asking only the
// secondary: no TXT question reaches acmezone's CoreDNS, and every change reached Knot by an
// incremental transfer.
func TestSecondary(t *testing.T) {
	s := upWith(t, stack.Options{Secondary: true})
	ctx := context.Background()
	ci, d := delegated(t, s)

	// A value written at the target is answered by Knot within seconds: its SOA refresh is an
	// hour, so only acmezone's NOTIFY explains it.
	probe := v1alpha1.NewChallengeRecord(stack.ClusterResourceNamespace, d.Status.Target, "secondary-probe-"+time.Now().Format("150405.000"))
	start := time.Now()
	if err := s.Client.Create(ctx, probe); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the value answered by the secondary", func() (bool, string) {
		txt, err := stack.TXT(s.Secondary.Addr, d.Status.Target, "udp")
		return err == nil && slices.Contains(txt, probe.Spec.Value), fmt.Sprintf("%q %v", txt, err)
	})
	t.Logf("answered by the secondary %v after the ChallengeRecord's creation", time.Since(start).Round(time.Millisecond))
	if err := s.Client.Delete(ctx, probe); err != nil {
		t.Fatal(err)
	}
	before := len(s.Secondary.Transfers())

	crt := wildcardOnly(t, s, ci, "secondary")
	checkSecret(t, s, "shop", crt.Spec.SecretName, "*.example.com")

	// Every TXT question went to the secondary: acmezone's query log has none.
	for _, l := range strings.Split(s.Acmezone.Logs(), "\n") {
		if strings.Contains(l, `"TXT IN `) {
			t.Errorf("acmezone's CoreDNS was asked a TXT question: %s", l)
		}
	}
	// The challenge's record came and went by NOTIFY and IXFR.
	xfrs := s.Secondary.Transfers()[before:]
	var ixfrs int
	for _, l := range xfrs {
		if strings.Contains(l, "IXFR") && !strings.Contains(l, "fallback") {
			ixfrs++
		}
	}
	if ixfrs < 2 {
		t.Errorf("the secondary's transfers during issuance: %q, want at least two incremental ones (the record added, then removed)", xfrs)
	}
	t.Logf("the secondary's transfers during issuance:\n%s", strings.Join(xfrs, "\n"))
}
