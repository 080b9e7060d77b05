package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/acmezone/acmezone/controller/records/recordstest"
)

// TestRecordsCommand runs `acmezone-controller records` against a local resolver: once with
// the user's records in place, once without the CNAME.
func TestRecordsCommand(t *testing.T) {
	const target = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	dns := recordstest.NewServer(t,
		"ns.example.com. 60 IN A 34.84.45.1",
		"acme.example.com. 60 IN NS ns.example.com.",
		"_acme-challenge.example.com. 60 IN CNAME "+target,
		target+" 60 IN TXT \"key\"",
	)
	run := func() (string, error) {
		var out bytes.Buffer
		cmd := recordsCommand(&flags{})
		cmd.SetArgs([]string{"example.com", "--target", target, "--zone", "acme.example.com",
			"--nameserver", "ns.example.com=34.84.45.1", "--resolver", dns.Addr})
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run()
	if err != nil {
		t.Fatalf("records with every record in place: %v\n%s", err, out)
	}
	for _, want := range []string{"ns.example.com", "34.84.45.1", "acme.example.com", "_acme-challenge.example.com", strings.TrimSuffix(target, ".")} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	dns.Set(t,
		"ns.example.com. 60 IN A 34.84.45.1",
		"acme.example.com. 60 IN NS ns.example.com.",
	)
	out, err = run()
	if err == nil {
		t.Fatalf("records without the CNAME succeeded:\n%s", out)
	}
	if !strings.Contains(out, "has no CNAME") {
		t.Errorf("output does not say the CNAME is missing:\n%s", out)
	}
}
