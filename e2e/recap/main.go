// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Command recap passes `go test -json` output through as the plain `go test -v` text, and ends
// it with the failed tests' own lines again: an end-to-end run's logs are long (its cluster's
// processes and pods are dumped after a failure), and what failed must not scroll out of sight.
// It exits 1 when a test or package failed.
//
//	set -o pipefail; go test -json ./e2e/cluster/ | go run ./e2e/recap
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is the part of a test2json event (go doc test2json) recap reads.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// maxLines bounds the lines repeated per failed test: its last ones, where it failed.
const maxLines = 40

func main() {
	failed, err := run(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "recap:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// run copies the events' output to w and returns whether anything failed.
func run(r io.Reader, w io.Writer) (failed bool, err error) {
	type key struct{ pkg, test string }
	output := map[key][]string{}
	var fails []key
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			// Not an event (a build error, say): as it came.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		k := key{ev.Package, ev.Test}
		switch ev.Action {
		case "output":
			io.WriteString(w, ev.Output)
			output[k] = append(output[k], ev.Output)
		case "fail":
			failed = true
			fails = append(fails, k)
		}
	}
	if err := sc.Err(); err != nil {
		return failed, err
	}
	// A test whose subtest failed failed too: repeat only the innermost, the stages that
	// failed; a package's own lines when no test of it failed (a panic, a timeout).
	var leaves []key
	for _, f := range fails {
		inner := false
		for _, g := range fails {
			if g.pkg == f.pkg && g != f && (f.test == "" || strings.HasPrefix(g.test, f.test+"/")) {
				inner = true
			}
		}
		if !inner {
			leaves = append(leaves, f)
		}
	}
	if len(leaves) == 0 {
		return failed, nil
	}
	fmt.Fprintf(w, "\n===== recap: %d failed =====\n", len(leaves))
	for _, f := range leaves {
		lines := output[f]
		fmt.Fprintf(w, "--- %s %s (its last %d of %d lines)\n", f.pkg, f.test, min(len(lines), maxLines), len(lines))
		for _, l := range lines[max(0, len(lines)-maxLines):] {
			io.WriteString(w, l)
		}
	}
	return failed, nil
}
