// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone_test

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// opaque are the values whose contents are Kubernetes' own (a container's resources): the
// README lists them whole, not key by key.
var opaque = map[string]bool{"controller.resources": true, "coredns.resources": true}

// leaves flattens values.yaml to the paths the README lists: a map with keys is walked into
// (unless opaque), anything else (a scalar, a list, an empty map) is one value.
func leaves(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 || opaque[prefix] {
		out[prefix] = v
		return
	}
	for k, e := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		leaves(p, e, out)
	}
}

func readValues(t *testing.T) (map[string]any, string) {
	t.Helper()
	b, err := os.ReadFile("values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	return values, string(b)
}

// readmeRow is a row of README.md's values table: | `path` | `default` | description |.
var readmeRow = regexp.MustCompile("^\\| `([^`]+)` \\| `([^`]*)` \\| (.+) \\|$")

// TestReadmeListsEveryValue keeps README.md's values table true: one row per value of
// values.yaml, none for a value that does not exist, and each row's default equal to
// values.yaml's (the cell is parsed as YAML).
func TestReadmeListsEveryValue(t *testing.T) {
	values, _ := readValues(t)
	want := map[string]any{}
	leaves("", values, want)

	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		m := readmeRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		path, cell := m[1], m[2]
		if listed[path] {
			t.Errorf("README.md lists %s twice", path)
		}
		listed[path] = true
		w, ok := want[path]
		if !ok {
			t.Errorf("README.md lists %s, which values.yaml does not have", path)
			continue
		}
		var got any
		if err := yaml.Unmarshal([]byte(cell), &got); err != nil {
			t.Errorf("README.md's default of %s, `%s`, is not YAML: %v", path, cell, err)
			continue
		}
		if got == nil && cell == `""` {
			got = ""
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("README.md's default of %s is `%s`; values.yaml's is %#v", path, cell, w)
		}
	}
	var missing []string
	for path := range want {
		if !listed[path] {
			missing = append(missing, path)
		}
	}
	sort.Strings(missing)
	for _, p := range missing {
		t.Errorf("README.md's values table has no row for %s", p)
	}
}

// TestEveryValueHasAComment: each key of values.yaml is preceded by a comment saying what it
// does (as cert-manager's chart has), so values.yaml reads as the chart's manual. The keys
// inside a value (a list's items, a container's resources) are the value's content, not values.
func TestEveryValueHasAComment(t *testing.T) {
	values, text := readValues(t)
	isValue := map[string]any{}
	leaves("", values, isValue)
	key := regexp.MustCompile(`^(\s*)(- )?([A-Za-z][A-Za-z0-9]*):`)
	type level struct {
		indent int
		path   string
		inside bool // in a value's content
	}
	var stack []level
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		m := key.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		indent := len(m[1]) + len(m[2])
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		path := m[3]
		inside := false
		if len(stack) > 0 {
			parent := stack[len(stack)-1].path
			path = parent + "." + m[3]
			_, leaf := isValue[parent]
			inside = stack[len(stack)-1].inside || leaf || m[2] != ""
		}
		stack = append(stack, level{indent, path, inside})
		if inside {
			continue
		}
		prev := ""
		if i > 0 {
			prev = strings.TrimSpace(lines[i-1])
		}
		if !strings.HasPrefix(prev, "#") {
			t.Errorf("values.yaml:%d: %s has no comment above it", i+1, path)
		}
	}
}
