// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package rfc2136

import (
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// testKnsupdate: Knot's knsupdate (Debian's knot-dnsutils, `make knot`), a real client, gets
// each answer and the store is what it asked for or unchanged.
func (f *fixture) testKnsupdate(t *testing.T) {
	bin, err := exec.LookPath("knsupdate")
	if err != nil {
		t.Fatal("knsupdate not found: install Debian's knot-dnsutils (make knot does)")
	}
	host, port, _ := net.SplitHostPort(f.addr)
	run := func(k tsigKey, script string) (string, error) {
		alg := strings.TrimSuffix(k.algorithm, ".")
		if k.algorithm == hmacMD5 {
			alg = "hmac-md5"
		}
		full := "server " + host + " " + port + "\nzone " + zone + "\nkey " + alg + ":" + k.name() + " " + k.material + "\n" + script + "\nsend\nanswer\nquit\n"
		cmd := exec.Command(bin, "-d", "-t", "5", "-r", "0")
		cmd.Stdin = strings.NewReader(full)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	wrong := f.keyA
	wrong.material = randomKey(t)
	for _, tc := range []struct {
		name   string
		key    tsigKey
		script string
		ok     bool   // knsupdate succeeds
		says   string // in its output
		after  []string
	}{
		{"Add", f.keyA, `update add ` + f.targetA + ` 60 TXT "` + txt1 + `"`, true, "NOERROR",
			[]string{"team-a " + f.targetA + " " + txt1}},
		{"AddMD5", f.keyMD5, `update add ` + f.targetA + ` 60 TXT "` + txt2 + `"`, true, "NOERROR",
			[]string{"team-a " + f.targetA + " " + txt1, "team-a " + f.targetA + " " + txt2}},
		{"AnotherNamespacesTarget", f.keyA, `update add ` + f.targetBA + ` 60 TXT "` + txt1 + `"`, false, "REFUSED", nil},
		{"WrongSecret", wrong, `update add ` + f.targetA + ` 60 TXT "x"`, false, "BADSIG", nil},
		{"UnknownKey", tsigKey{"team-a", "nope", dns.HmacSHA256, f.keyA.material}, `update add ` + f.targetA + ` 60 TXT "x"`, false, "BADKEY", nil},
		{"OtherZone", f.keyA, "zone example.com.\nupdate add _acme-challenge.example.com. 60 TXT \"x\"", false, "NOTAUTH", nil},
		{"NotZone", f.keyA, `update add _acme-challenge.example.com. 60 TXT "x"`, false, "NOTZONE", nil},
		{"PrereqNXRRset", f.keyA, "prereq nxrrset " + f.targetA + " TXT\nupdate add " + f.targetA + ` 60 TXT "x"`, false, "YXRRSET", nil},
		{"PrereqYXDomain", f.keyA, "prereq yxdomain " + f.targetA + "\nupdate delete " + f.targetA + ` TXT "` + txt1 + `"`, true, "NOERROR",
			[]string{"team-a " + f.targetA + " " + txt2}},
		{"DeleteRRset", f.keyA, "update delete " + f.targetA + " TXT", true, "NOERROR", []string{}},
	} {
		before := f.stored(t)
		out, err := run(tc.key, tc.script)
		if (err == nil) != tc.ok || !strings.Contains(out, tc.says) {
			t.Errorf("%s: knsupdate: %v\n%s\nwant success %v and %q in the output", tc.name, err, out, tc.ok, tc.says)
		}
		want := tc.after
		if want == nil {
			want = before
		}
		if got := f.stored(t); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: stored %q, want %q", tc.name, got, want)
		}
	}
}
