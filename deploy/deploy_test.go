package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestServerDryRun applies every kustomization with kubectl --dry-run=server: the API server
// validates each object against its schema (ours, cert-manager's, and the built-in kinds).
func TestServerDryRun(t *testing.T) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver, etcd and kubectl into bin/")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("find the cert-manager module: %v", err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:       []string{"crds", filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")},
		ErrorIfCRDPathMissing:   true,
		ControlPlaneStopTimeout: 5 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start API server: %v", err)
	}
	defer func() { _ = env.Stop() }()

	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Namespaced objects need their namespace to exist even in a dry run.
	for _, ns := range []string{"acmezone", "cert-manager"} {
		if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	for _, dir := range []string{"default", "examples/issuers"} {
		cmd := exec.Command(filepath.Join(assets, "kubectl"), "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-k", dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("kubectl apply --dry-run=server -k deploy/%s: %v\n%s", dir, err, out)
			continue
		}
		// Every object is reported; count them against what kustomize renders.
		rendered, err := exec.Command(filepath.Join(assets, "kubectl"), "kustomize", dir).Output()
		if err != nil {
			t.Fatal(err)
		}
		objects := strings.Count("\n"+string(rendered), "\nkind: ")
		applied := strings.Count(string(out), "(server dry run)")
		if objects == 0 || applied != objects {
			t.Errorf("deploy/%s: %d objects rendered, %d accepted by the server:\n%s", dir, objects, applied, out)
		}
	}
}
