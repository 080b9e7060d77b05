// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// benchstatPkg is benchstat at a fixed version, run from the Go module proxy with `go run`; it
// is not a dependency of this module.
const benchstatPkg = "golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

// runBenchstat summarises the raw Go benchmark output with benchstat; without the module proxy
// it returns an error and the report goes without.
func runBenchstat(ctx context.Context, path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", benchstatPkg, abs)
	cmd.Dir = os.TempDir() // outside this module: its go.mod is not touched
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go run %s: %w\n%s", benchstatPkg, err, errb.String())
	}
	return strings.TrimRight(out.String(), "\n"), nil
}

// goBench is one Go benchmark over its runs (go test -count).
type goBench struct {
	name                   string
	nsOp, bytesOp, allocOp []float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+)\s+\d+\s+(.*)$`)

// readGoBench reads `go test -bench -benchmem` output, keeping the order of first appearance.
func readGoBench(path string) ([]*goBench, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*goBench
	byName := map[string]*goBench{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		b := byName[m[1]]
		if b == nil {
			b = &goBench{name: m[1]}
			byName[m[1]] = b
			out = append(out, b)
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.nsOp = append(b.nsOp, v)
			case "B/op":
				b.bytesOp = append(b.bytesOp, v)
			case "allocs/op":
				b.allocOp = append(b.allocOp, v)
			}
		}
	}
	return out, sc.Err()
}

// find returns the benchmark whose name, without the -GOMAXPROCS suffix, is name.
func findBench(all []*goBench, name string) *goBench {
	for _, b := range all {
		if b.name == name || strings.HasPrefix(b.name, name+"-") {
			return b
		}
	}
	return nil
}

// storeBytes is what BenchmarkStoreMemory reports per ChallengeRecord and its Delegation.
type storeBytes struct {
	live  float64 // live-B/pair, median: the live heap
	inuse float64 // inuse-B/pair, median: the heap in use, the spans that hold the live heap
	runs  int
}

// storeMemory reads BenchmarkStoreMemory's live-B/pair and inuse-B/pair metrics from raw
// `go test -bench` output and returns their medians and the number of runs.
func storeMemory(path string) (storeBytes, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return storeBytes{}, err
	}
	vals := map[string][]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[0], "BenchmarkStoreMemory") {
			continue
		}
		for i := 1; i < len(f); i++ {
			if unit := f[i]; unit == "live-B/pair" || unit == "inuse-B/pair" {
				v, err := strconv.ParseFloat(f[i-1], 64)
				if err != nil {
					return storeBytes{}, fmt.Errorf("%s: %q: %w", path, line, err)
				}
				vals[unit] = append(vals[unit], v)
			}
		}
	}
	live, inuse := vals["live-B/pair"], vals["inuse-B/pair"]
	if len(live) == 0 || len(live) != len(inuse) {
		return storeBytes{}, fmt.Errorf("%s: no BenchmarkStoreMemory result with live-B/pair and inuse-B/pair", path)
	}
	return storeBytes{live: median(live), inuse: median(inuse), runs: len(live)}, nil
}
