// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/acmezone/acmezone/controller/records/recordstest"
)

// TestVerifyPersist: the CNAME and the TXT lookup of dns-persist-01, each way they fail; a
// CNAME to another target of the zone is never named (it may be another namespace's).
func TestVerifyPersist(t *testing.T) {
	const pt = "0a1b2c3d-0000-8000-8000-000000000001.acme.example.com."
	const other = "0a1b2c3d-0000-8000-8000-000000000002.acme.example.com."
	const v1, v2 = "letsencrypt.org; accounturi=https://ca.example/acct/1", "pebble.letsencrypt.org; accounturi=https://ca.example/acct/1"
	srv := recordstest.NewServer(t)
	resolver := &Resolver{Servers: []string{srv.Addr}, Timeout: 2 * time.Second}
	cname := "_validation-persist.example.com. 300 IN CNAME "
	for _, tc := range []struct {
		name        string
		rrs         []string
		reasons     [2]string // "" for OK
		problem     string    // in the problems
		mustNotName string
	}{
		{name: "in place", rrs: []string{cname + pt, pt + ` 10 IN TXT "` + v1 + `"`, pt + ` 10 IN TXT "` + v2 + `"`}},
		{name: "no CNAME", rrs: []string{pt + ` 10 IN TXT "` + v1 + `"`}, reasons: [2]string{ReasonCNAMEMissing, ReasonTXTLookupFailed},
			problem: "_validation-persist.example.com has no CNAME; add: _validation-persist.example.com CNAME " + strings.TrimSuffix(pt, ".")},
		{name: "a value missing", rrs: []string{cname + pt, pt + ` 10 IN TXT "` + v1 + `"`}, reasons: [2]string{"", ReasonPersistValueMissing},
			problem: `does not answer "` + v2 + `" yet`},
		{name: "another target", rrs: []string{cname + other, other + ` 10 IN TXT "` + v1 + `"`, other + ` 10 IN TXT "` + v2 + `"`},
			reasons: [2]string{ReasonCNAMEWrongTarget, ReasonTXTLookupFailed}, problem: "is a CNAME to another target in acme.example.com, not to", mustNotName: "000000000002"},
	} {
		srv.Set(t, tc.rrs...)
		checks := VerifyPersist(context.Background(), resolver, seedOptions(), "Example.com", pt, []string{v1, v2})
		var problems []string
		for i, c := range checks {
			if got := c.Reason; c.OK != (tc.reasons[i] == "") || got != tc.reasons[i] {
				t.Errorf("%s: check %d (%s %s): OK %v reason %q, want reason %q (%s)", tc.name, i, c.Record.Type, c.Record.Name, c.OK, got, tc.reasons[i], c.Problem)
			}
			problems = append(problems, c.Problem, c.Found)
		}
		all := strings.Join(problems, " | ")
		if tc.problem != "" && !strings.Contains(all, tc.problem) {
			t.Errorf("%s: problems %q do not contain %q", tc.name, all, tc.problem)
		}
		if tc.mustNotName != "" && strings.Contains(all, tc.mustNotName) {
			t.Errorf("%s: problems %q name the other target", tc.name, all)
		}
	}
}
