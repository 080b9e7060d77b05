// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package kubetest starts a real kube-apiserver and etcd: controller-runtime's envtest with the
// binaries `make testbin` builds into bin/ (KUBEBUILDER_ASSETS). Every test and tool of this
// module that needs a control plane starts it here (Start in a test, StartEnv elsewhere). It
// also writes kubeconfigs for the processes under test and finds cert-manager's CRDs in its
// module.
//
// The tests come in two tiers: plain `go test ./...` runs every test that needs no control
// plane and skips the others, saying so (NeedControlPlane); `make test` sets KUBEBUILDER_ASSETS
// and runs them all.
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
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	// Client is uncached, with Scheme, to see what the API server holds.
	Client     client.Client
	Kubeconfig string
	// LogPath is kube-apiserver's log file ("" when Options.Dir was not set: the log is dropped).
	LogPath string
}

// Options say what control plane StartEnv starts.
type Options struct {
	// CRDDirs are installed before StartEnv returns.
	CRDDirs []string
	// Namespaces are created.
	Namespaces []string
	// Dir receives the kubeconfig and kube-apiserver.log; "" writes the kubeconfig to a new
	// temporary directory and drops the log.
	Dir string
	// APIServerArgs are set on kube-apiserver's command line (name without the dashes).
	APIServerArgs map[string]string
	// StopTimeout bounds Stop; 5 s when zero: kube-apiserver drains open watches on SIGTERM,
	// and nothing here gains from waiting.
	StopTimeout time.Duration
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

// NoControlPlane is why a test that needs a control plane does not run under plain `go test`.
const NoControlPlane = "needs a real kube-apiserver and etcd: `make test` runs it (it builds them into bin/ with `make testbin` and sets KUBEBUILDER_ASSETS=bin)"

// HaveControlPlane says whether KUBEBUILDER_ASSETS names the control plane's binaries.
func HaveControlPlane() bool { return os.Getenv("KUBEBUILDER_ASSETS") != "" }

// NeedControlPlane skips the test, saying how to run it, when KUBEBUILDER_ASSETS is not set.
func NeedControlPlane(t testing.TB) {
	t.Helper()
	if !HaveControlPlane() {
		t.Skip(NoControlPlane)
	}
}

// StartEnv starts etcd and kube-apiserver as o says. Stop the Env when done.
func StartEnv(o Options) (_ *Env, err error) {
	if !HaveControlPlane() {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: build kube-apiserver, kubectl and etcd with `make testbin` and set KUBEBUILDER_ASSETS to bin/")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:       o.CRDDirs,
		ErrorIfCRDPathMissing:   true,
		ControlPlaneStopTimeout: o.StopTimeout,
	}
	if env.ControlPlaneStopTimeout == 0 {
		env.ControlPlaneStopTimeout = 5 * time.Second
	}
	e := &Env{Environment: env}
	if o.Dir != "" {
		log, err := os.Create(filepath.Join(o.Dir, "kube-apiserver.log"))
		if err != nil {
			return nil, err
		}
		defer log.Close() // the process has its own copy of the descriptor
		env.ControlPlane.GetAPIServer().Out = log
		env.ControlPlane.GetAPIServer().Err = log
		e.LogPath = log.Name()
	}
	if len(o.APIServerArgs) > 0 {
		args := env.ControlPlane.GetAPIServer().Configure()
		for k, v := range o.APIServerArgs {
			args.Set(k, v)
		}
	}
	if e.Config, err = env.Start(); err != nil {
		return nil, fmt.Errorf("start kube-apiserver and etcd from %s: %w", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	defer func() {
		if err != nil {
			_ = env.Stop()
		}
	}()
	if e.Client, err = client.New(e.Config, client.Options{Scheme: Scheme()}); err != nil {
		return nil, err
	}
	for _, ns := range o.Namespaces {
		if err := e.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kubetest-"); err != nil {
			return nil, err
		}
	}
	if e.Kubeconfig, err = WriteKubeconfig(dir, e.Config); err != nil {
		return nil, err
	}
	return e, nil
}

// Stop stops kube-apiserver and etcd.
func (e *Env) Stop() error { return e.Environment.Stop() }

// Start is StartEnv for a test: it skips the test under plain `go test` (NeedControlPlane),
// installs the CRDs in crdDirs, creates namespaces, and stops everything when the test ends.
func Start(t testing.TB, crdDirs []string, namespaces ...string) *Env {
	t.Helper()
	NeedControlPlane(t)
	env, err := StartEnv(Options{CRDDirs: crdDirs, Namespaces: namespaces, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return env
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

// BuilderIndexer registers field indexes on a fake client's builder, so that an index
// function of the code under test (controller.Options.IndexDelegations) is itself what the
// fake client's field selectors use.
type BuilderIndexer struct{ B *fake.ClientBuilder }

// IndexField implements client.FieldIndexer.
func (i BuilderIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	i.B.WithIndex(obj, field, fn)
	return nil
}
