// Package conformance runs cert-manager's own DNS-01 webhook conformance suite, strict, against
// acmezone's solver, a real kube-apiserver and etcd (from `make testbin`), and bin/coredns with
// the acmezone plugin serving the zone the suite queries.
//
// cert-manager's test/acme panics at package init unless TEST_ASSET_KUBE_APISERVER,
// TEST_ASSET_ETCD and TEST_ASSET_KUBECTL (or the binaries on PATH) are set, which is why this
// suite lives in its own package; `make test` sets them.
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
	host, port, _ := net.SplitHostPort(w.dnsAddr)
	corefile := fmt.Sprintf(`acme.example.com:%s {
    bind %s
    errors
    acmezone {
        nameserver ns.acme.example.com %s
        kubeconfig %s
        ttl 1
    }
}
`, port, host, host, kubeconfig)
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

func fixture(t *testing.T) interface {
	RunBasic(*testing.T)
	RunExtended(*testing.T)
} {
	if _, err := os.Stat(filepath.Join(root, "bin", "coredns")); err != nil {
		t.Fatalf("bin/coredns is missing: run `make build` (make test does)")
	}
	addr := freeAddr(t)
	s := &withCoreDNS{Solver: &solver.Solver{}, t: t, dnsAddr: addr}
	return acmetest.NewFixture(s,
		acmetest.SetResolvedZone("acme.example.com."),
		acmetest.SetResolvedFQDN("cert-manager-dns01-tests.acme.example.com."),
		acmetest.SetDNSName("example.com"),
		acmetest.SetAllowAmbientCredentials(false),
		acmetest.SetManifestPath("testdata/manifests"),
		acmetest.SetDNSServer(addr),
		acmetest.SetUseAuthoritative(false),
		acmetest.SetStrict(true),
		acmetest.SetPollInterval(250*time.Millisecond),
		acmetest.SetPropagationLimit(30*time.Second),
	)
}

// The suite's RunConformance starts the fixture twice; Basic and Extended run separately.
func TestConformanceBasic(t *testing.T) { fixture(t).RunBasic(t) }

func TestConformanceExtended(t *testing.T) { fixture(t).RunExtended(t) }
