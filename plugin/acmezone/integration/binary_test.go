// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// binary is bin/coredns, built by `make build` (a dependency of `make test`).
var binary = filepath.Join("..", "..", "..", "bin", "coredns")

// runBinary runs bin/coredns with corefile until the test ends; the test's log gets its output
// when the test failed.
func runBinary(t *testing.T, corefile string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(binary, "-conf", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("coredns output:\n%s", logs.String())
		}
	})
}

func needBinary(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(binary); err != nil {
		t.Fatalf("%s: %v; run `make build` (or `make test`, which builds it)", binary, err)
	}
}

func TestBinaryNamesAcmezone(t *testing.T) {
	needBinary(t)
	out, err := exec.Command(binary, "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "+acmezone-") {
		t.Errorf("coredns -version: %v\n%s\nwant the version line to name acmezone", err, out)
	}
	out, err = exec.Command(binary, "-plugins").CombinedOutput()
	if err != nil || !slices.Contains(strings.Fields(string(out)), "acmezone") {
		t.Errorf("coredns -plugins: %v\n%s\nwant acmezone listed", err, out)
	}
}

// TestCorefileExample runs bin/coredns with the shipped Corefile.example (ports moved to free
// loopback ones, a kubeconfig and a target key file of the test's) against a real API server.
func TestCorefileExample(t *testing.T) {
	needBinary(t)
	_, c, kubeconfig := startAPIServer(t)
	ctx := context.Background()
	keyFile, key := writeKey(t)

	example, err := os.ReadFile(filepath.Join("..", "..", "..", "Corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	dnsPort, promPort, readyPort, healthPort := freePort(t), freePort(t), freePort(t), freePort(t)
	corefile := strings.NewReplacer(
		"acme.example.com:53 {", fmt.Sprintf("acme.example.com:%d {\n    bind 127.0.0.1", dnsPort),
		"prometheus :9153", fmt.Sprintf("prometheus 127.0.0.1:%d", promPort),
		"ready :8181", fmt.Sprintf("ready 127.0.0.1:%d", readyPort),
		"health :8080", fmt.Sprintf("health 127.0.0.1:%d", healthPort),
		"# kubeconfig /root/.kube/config", "kubeconfig "+kubeconfig,
		"target_key /etc/acmezone/target-key/key", "target_key "+keyFile,
	).Replace(string(example))
	if !strings.Contains(corefile, "kubeconfig "+kubeconfig) || !strings.Contains(corefile, "bind 127.0.0.1") || !strings.Contains(corefile, "target_key "+keyFile) {
		t.Fatalf("Corefile.example no longer has the lines this test rewrites:\n%s", corefile)
	}
	runBinary(t, corefile)

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example-com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	target := targetOf(t, key, d)
	value := "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	if err := c.Create(ctx, v1alpha1.NewChallengeRecord("shop", target, value)); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	both := []resolver{{"udp", addr}, {"tcp", addr}}
	eventually(t, both, target, dns.TypeTXT, answer{values: []string{value}})
	eventually(t, both, "acme.example.com.", dns.TypeNS, answer{values: []string{"acme.example.com.\t3600\tIN\tNS\tns.example.com."}})
	eventually(t, both, "nosuch.acme.example.com.", dns.TypeTXT, answer{rcode: dns.RcodeNameError})

	// The plugin's metrics are exported.
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort))
		// Each metric the README names has moved: the record is counted, its propagation
		// timed, the snapshot rebuilt, the answers above counted, no reflector stale.
		if err == nil && strings.Contains(body, `coredns_acmezone_records{source="challenge"} 1`) &&
			regexp.MustCompile(`(?m)^coredns_acmezone_responses_total\{[^}]*result="answer"[^}]*\} [1-9]`).MatchString(body) &&
			regexp.MustCompile(`(?m)^coredns_acmezone_responses_total\{[^}]*result="nxdomain"[^}]*\} [1-9]`).MatchString(body) &&
			regexp.MustCompile(`(?m)^coredns_acmezone_propagation_seconds_count [1-9]`).MatchString(body) &&
			regexp.MustCompile(`(?m)^coredns_acmezone_snapshot_rebuilds_total [1-9]`).MatchString(body) &&
			strings.Contains(body, "coredns_acmezone_stale_reflectors 0") &&
			strings.Contains(body, "coredns_acmezone_stale_seconds 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack the acmezone series (err %v):\n%s", err, grepLines(body, "acmezone"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
