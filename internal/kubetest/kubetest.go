// Package kubetest starts a real kube-apiserver and etcd for tests: controller-runtime's envtest
// with the binaries `make testbin` builds into bin/ (KUBEBUILDER_ASSETS). It also writes
// kubeconfigs for the processes under test and finds cert-manager's CRDs in its module.
package kubetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	Config     *rest.Config
	Client     client.Client
	Kubeconfig string
}

// Scheme knows the built-in kinds, acmezone's and cert-manager's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, cmacme.AddToScheme, cmapi.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// RequireAssets fails the test with what to do when the control-plane binaries are not set up.
func RequireAssets(t testing.TB) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kube-apiserver, kubectl and etcd into bin/ (`make testbin`) and points KUBEBUILDER_ASSETS at it")
	}
}

// Start starts etcd and kube-apiserver with the CRDs in crdDirs installed, creates namespaces,
// and stops everything when the test ends.
func Start(t testing.TB, crdDirs []string, namespaces ...string) *Env {
	t.Helper()
	RequireAssets(t)
	env := &envtest.Environment{
		CRDDirectoryPaths:     crdDirs,
		ErrorIfCRDPathMissing: true,
		// kube-apiserver drains open watches on SIGTERM; tests gain nothing from waiting.
		ControlPlaneStopTimeout: 5 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver and etcd from %s: %v", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig, err := WriteKubeconfig(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Environment: env, Config: cfg, Client: c, Kubeconfig: kubeconfig}
}

// WriteKubeconfig writes cfg as dir/kubeconfig, for processes under test.
func WriteKubeconfig(dir string, cfg *rest.Config) (string, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	kc.CurrentContext = "test"
	path := filepath.Join(dir, "kubeconfig")
	return path, clientcmd.WriteToFile(*kc, path)
}

// CertManagerCRDs returns deploy/crds of the cert-manager module this module requires.
func CertManagerCRDs() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		return "", fmt.Errorf("find the cert-manager module (go list -m): %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds"), nil
}

// MustCertManagerCRDs is CertManagerCRDs for tests.
func MustCertManagerCRDs(t testing.TB) string {
	t.Helper()
	dir, err := CertManagerCRDs()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
