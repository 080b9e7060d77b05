// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func events(evs ...event) string {
	var b strings.Builder
	for _, ev := range evs {
		j, _ := json.Marshal(ev)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestRecapRepeatsTheInnermostFailures(t *testing.T) {
	in := "# a build line\n" + events(
		event{Action: "output", Package: "p", Test: "TestA", Output: "=== RUN   TestA\n"},
		event{Action: "output", Package: "p", Test: "TestA/ok", Output: "    a_test.go:1: fine\n"},
		event{Action: "pass", Package: "p", Test: "TestA/ok"},
		event{Action: "output", Package: "p", Test: "TestA/bad", Output: "    a_test.go:2: the real error\n"},
		event{Action: "fail", Package: "p", Test: "TestA/bad"},
		event{Action: "output", Package: "p", Test: "TestA", Output: "    a_test.go:3: a long dump\n"},
		event{Action: "fail", Package: "p", Test: "TestA"},
		event{Action: "fail", Package: "p"},
	)
	var out strings.Builder
	failed, err := run(strings.NewReader(in), &out)
	if err != nil || !failed {
		t.Fatalf("run = %v, %v; want failed", failed, err)
	}
	got := out.String()
	recap := got[strings.Index(got, "===== recap"):]
	for _, want := range []string{"# a build line\n", "a long dump", "===== recap: 1 failed", "p TestA/bad", "the real error"} {
		if !strings.Contains(got, want) {
			t.Errorf("output has no %q:\n%s", want, got)
		}
	}
	if strings.Contains(recap, "a long dump") || strings.Contains(recap, "fine") {
		t.Errorf("the recap repeats more than the failed stage:\n%s", recap)
	}
}

func TestRecapPassing(t *testing.T) {
	var out strings.Builder
	failed, err := run(strings.NewReader(events(
		event{Action: "output", Package: "p", Test: "TestA", Output: "ok\n"},
		event{Action: "pass", Package: "p", Test: "TestA"},
		event{Action: "pass", Package: "p"},
	)), &out)
	if err != nil || failed || out.String() != "ok\n" {
		t.Errorf("run = %v, %v, %q; want no failure and the output as it came", failed, err, out.String())
	}
}
