// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package records

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records/recordstest"
)

func TestWriteTable(t *testing.T) {
	checks := []Check{
		{Record: v1alpha1.DNSRecord{Type: "A", Name: "ns.example.com", Content: "34.84.45.1"}, OK: true},
		{Record: v1alpha1.DNSRecord{Type: "NS", Name: "acme.example.com", Content: "ns.example.com"}, OK: true},
		{Record: v1alpha1.DNSRecord{Type: "CNAME", Name: "_acme-challenge.example.com", Content: "t.acme.example.com"},
			Problem: "_acme-challenge.example.com has no CNAME; add: _acme-challenge.example.com CNAME t.acme.example.com"},
		{Record: v1alpha1.DNSRecord{Type: "TXT", Name: "_acme-challenge.example.com", Content: "t.acme.example.com"},
			Problem: "a | in a problem"},
	}
	want := `| Type  | Name                        | Content                                               | Status                                                                                              |
| ----- | --------------------------- | ----------------------------------------------------- | --------------------------------------------------------------------------------------------------- |
| A     | ns.example.com              | 34.84.45.1                                            | ✓                                                                                                   |
| NS    | acme.example.com            | ns.example.com                                        | ✓                                                                                                   |
| CNAME | _acme-challenge.example.com | t.acme.example.com                                    | _acme-challenge.example.com has no CNAME; add: _acme-challenge.example.com CNAME t.acme.example.com |
| TXT   | _acme-challenge.example.com | (lookup through the CNAME) ends at t.acme.example.com | a \| in a problem                                                                                   |
`
	var b bytes.Buffer
	if err := WriteTable(&b, checks); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("WriteTable wrote\n%s\nwant\n%s", b.String(), want)
	}
}

func TestRun(t *testing.T) {
	srv := recordstest.NewServer(t, correct...)
	opts := seedOptions()
	opts.Resolvers = []string{srv.Addr}

	var b bytes.Buffer
	ok, err := Run(context.Background(), &b, opts, "example.com", seedTarget)
	if err != nil || !ok {
		t.Errorf("Run = %v, %v; want true, nil\n%s", ok, err, b.String())
	}
	want := `| Type  | Name                        | Content                                                                                  | Status |
| ----- | --------------------------- | ---------------------------------------------------------------------------------------- | ------ |
| A     | ns.example.com              | 34.84.45.1                                                                               | ✓      |
| NS    | acme.example.com            | ns.example.com                                                                           | ✓      |
| CNAME | _acme-challenge.example.com | b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com                                    | ✓      |
| TXT   | _acme-challenge.example.com | (lookup through the CNAME) ends at b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com | ✓      |
`
	if b.String() != want {
		t.Errorf("Run wrote\n%s\nwant\n%s", b.String(), want)
	}

	// Without the target: the placeholder, and a line that says where to find it.
	srv.Set(t, without(correct, "_acme-challenge.")...)
	b.Reset()
	ok, err = Run(context.Background(), &b, opts, "example.com", "")
	if err != nil || ok {
		t.Errorf("Run = %v, %v; want false, nil", ok, err)
	}
	for _, s := range []string{
		"| CNAME | _acme-challenge.example.com | <target of the Delegation> ",
		"_acme-challenge.example.com has no CNAME; add: _acme-challenge.example.com CNAME <target of the Delegation>",
		"\n<target of the Delegation> is status.target of the Delegation of example.com",
	} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("Run wrote\n%s\nwithout %q", b.String(), s)
		}
	}
}
