// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// repoRoot is where the Corefiles are, seen from this package's folder.
const repoRoot = "../.."

// corefile is one Corefile found in the repository.
type corefile struct {
	where, text string
}

// corefileFence is a Markdown code block marked as a Corefile, as CoreDNS's READMEs write them.
var corefileFence = regexp.MustCompile("(?ms)^(?:~~~|```) ?corefile\n(.*?)^(?:~~~|```)$")

// repoCorefiles returns Corefile.example, the Corefile of every ConfigMap under deploy/ and the
// Corefile blocks of every Markdown file (the plugin's README, docs/benchmarks.md with the
// Corefiles make bench runs).
func repoCorefiles(t *testing.T) []corefile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	cfs := []corefile{{"Corefile.example", string(b)}}
	err = filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() {
			if rel == "bin" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(path, ".md"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for i, m := range corefileFence.FindAllStringSubmatch(string(b), -1) {
				cfs = append(cfs, corefile{fmt.Sprintf("%s block %d", rel, i+1), m[1]})
			}
		case strings.HasPrefix(rel, "deploy"+string(filepath.Separator)) && strings.HasSuffix(path, ".yaml"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			d := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
			for {
				var cm corev1.ConfigMap
				if d.Decode(&cm) != nil {
					break
				}
				if c, ok := cm.Data["Corefile"]; ok && cm.Kind == "ConfigMap" {
					cfs = append(cfs, corefile{rel + " ConfigMap " + cm.Name, c})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfs
}

// TestCorefileDirectivesCompiledIn fails when a Corefile in the repository uses a directive
// whose plugin this build does not link: bin/coredns would refuse to start with it.
func TestCorefileDirectivesCompiledIn(t *testing.T) {
	registered := map[string]bool{}
	for _, p := range caddy.ListPlugins()["others"] {
		if name, ok := strings.CutPrefix(p, "dns."); ok {
			registered[name] = true
		}
	}
	cfs := repoCorefiles(t)
	var found []string
	for _, cf := range cfs {
		if strings.Contains(cf.where, "ConfigMap") {
			found = append(found, cf.where)
		}
		// The known directives are CoreDNS's order list with acmezone inserted (main's init):
		// an unknown one is a parse error, which the test reports too.
		blocks, err := caddyfile.Parse(cf.where, strings.NewReader(cf.text), dnsserver.Directives)
		if err != nil {
			t.Errorf("%s: %v", cf.where, err)
			continue
		}
		var dirs []string
		for _, sb := range blocks {
			for dir := range sb.Tokens {
				dirs = append(dirs, dir)
				if !registered[dir] {
					t.Errorf("%s: directive %q is not compiled in: import its plugin in cmd/coredns/plugins.go", cf.where, dir)
				}
			}
		}
		slices.Sort(dirs)
		t.Logf("%s: %s", cf.where, strings.Join(slices.Compact(dirs), " "))
	}
	// The test must see the Corefiles it is about.
	if len(found) == 0 {
		t.Errorf("no ConfigMap with a Corefile under deploy/; found only %d Corefiles", len(cfs))
	}
	if !slices.ContainsFunc(cfs, func(cf corefile) bool {
		return strings.HasPrefix(cf.where, filepath.Join("plugin", "acmezone", "README.md"))
	}) {
		t.Error("no Corefile block in plugin/acmezone/README.md")
	}
}

// TestLeanLinksNoCloudSDK fails when the lean build links a cloud or tracing SDK through a new
// path, the reason for the lean build. The one exception is written down: CoreDNS's dnssec
// plugin can read its keys from AWS Secrets Manager and imports AWS's SDK for that.
func TestLeanLinksNoCloudSDK(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not in PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", `{{$p := .ImportPath}}{{range .Imports}}{{$p}} {{.}}{{"\n"}}{{end}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	sdks := []string{"github.com/aws/", "github.com/Azure/", "cloud.google.com/", "google.golang.org/api/", "github.com/DataDog/", "gopkg.in/DataDog/", "github.com/openzipkin/"}
	isSDK := func(pkg string) bool {
		return slices.ContainsFunc(sdks, func(sdk string) bool { return strings.HasPrefix(pkg, sdk) })
	}
	allowed := map[string]bool{"github.com/coredns/coredns/plugin/dnssec": true}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		from, to, _ := strings.Cut(line, " ")
		if isSDK(to) && !isSDK(from) && !allowed[from] {
			t.Errorf("%s imports %s: the lean build links that SDK again", from, to)
		}
	}
}
