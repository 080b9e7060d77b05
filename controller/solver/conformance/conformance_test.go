// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build conformance

// Package conformance runs cert-manager's own DNS-01 webhook conformance suite, strict, against
// acmezone's solver, a real kube-apiserver and etcd (from `make testbin`), and bin/coredns with
// the acmezone plugin serving the zone the suite queries.
//
// cert-manager's test/acme panics at package init unless TEST_ASSET_KUBE_APISERVER,
// TEST_ASSET_ETCD and TEST_ASSET_KUBECTL (or the binaries on PATH) are set, which is why this
// suite lives in its own package and builds only with the tag `conformance`: `make test` sets
// both. Plain `go test ./...` builds skip_test.go instead.
package conformance

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	acmetest "github.com/cert-manager/cert-manager/test/acme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/solver"
	"github.com/acmezone/acmezone/internal/kubetest"
)

var root = filepath.Join("..", "..", "..")

// withCoreDNS is the real solver, plus what a cluster would already have when cert-manager
// calls it: the acmezone CRDs, and acmezone's CoreDNS watching the same API server.
type withCoreDNS struct {
	*solver.Solver
	t       *testing.T
	dnsAddr string
}

func (w *withCoreDNS) Initialize(cfg *rest.Config, stopCh <-chan struct{}) error {
	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(root, "deploy", "crds")},
		ErrorIfPathMissing: true,
	}); err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	if err := w.startCoreDNS(cfg, stopCh); err != nil {
		return err
	}
	w.Solver.Client = nil // a fresh client for this fixture's API server
	return w.Solver.Initialize(cfg, stopCh)
}

func (w *withCoreDNS) startCoreDNS(cfg *rest.Config, stopCh <-chan struct{}) error {
	dir := w.t.TempDir()
	kubeconfig, err := kubetest.WriteKubeconfig(dir, cfg)
	if err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "target-key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(w.dnsAddr)
	corefile := fmt.Sprintf(`acme.example.com:%s {
    bind %s
    errors
    acmezone {
        nameserver ns.acme.example.com %s
        kubeconfig %s
        target_key %s
        ttl 1
    }
}
`, port, host, host, kubeconfig, keyFile)
	path := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o600); err != nil {
		return err
	}
	var logs strings.Builder
	cmd := exec.Command(filepath.Join(root, "bin", "coredns"), "-conf", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start bin/coredns (run `make build`): %w", err)
	}
	go func() {
		<-stopCh
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if w.t.Failed() {
			w.t.Logf("bin/coredns output:\n%s", logs.String())
		}
	}()
	return nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testKey is the target key of the fixture's solver and CoreDNS.
const testKey = "conformance-0123456789abcdef0123456789abcdef"

// fixture runs the suite against namespace, the one the suite creates for the test (its
// names are fixed): the suite's resolved name is that namespace's target for example.com,
// and its Delegation (testdata/manifests) has no spec.target.
func fixture(t *testing.T, namespace string) interface{ RunBasic(*testing.T) } {
	if _, err := os.Stat(filepath.Join(root, "bin", "coredns")); err != nil {
		t.Fatalf("bin/coredns is missing: run `make build` (make test does)")
	}
	key, err := v1alpha1.NewTargetKey([]byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	opts := &controller.Options{Zone: "acme.example.com.", TargetKey: key}
	target, err := key.Target(v1alpha1.TargetClaim{Namespace: namespace, Domain: "example.com"}, opts.Zone)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s := &withCoreDNS{Solver: &solver.Solver{Options: opts}, t: t, dnsAddr: addr}
	return acmetest.NewFixture(s,
		acmetest.SetResolvedZone("acme.example.com."),
		acmetest.SetResolvedFQDN(target),
		acmetest.SetDNSName("example.com"),
		// The suite's default key, "123d==", is no ACME value: the solver writes only 43
		// characters of base64url (docs/SECURITY.md, rule 9).
		acmetest.SetDNSChallengeKey("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"),
		acmetest.SetAllowAmbientCredentials(false),
		acmetest.SetManifestPath("testdata/manifests"),
		acmetest.SetDNSServer(addr),
		acmetest.SetUseAuthoritative(false),
		acmetest.SetStrict(true),
		acmetest.SetPollInterval(250*time.Millisecond),
		acmetest.SetPropagationLimit(30*time.Second),
	)
}

// The suite's RunConformance starts the fixture twice; Basic runs on its own. The extended
// test (DeletingOneRecordRetainsOthers) writes a second value "anothertestingkey", which the
// solver refuses as no ACME value (docs/SECURITY.md, rule 9: only 43 characters of base64url
// are ever written), so it cannot pass here; what it checks, that CleanUp of one of two values
// at a name keeps the other, is TestPresentCleanUp in controller/solver, with real digests.
func TestConformanceBasic(t *testing.T) { fixture(t, "basic-present-record").RunBasic(t) }
