package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmezone/acmezone/internal/kubetest"
)

// TestServerDryRun applies every kustomization with kubectl --dry-run=server: the API server
// validates each object against its schema (ours, cert-manager's, and the built-in kinds).
func TestServerDryRun(t *testing.T) {
	// Namespaced objects need their namespace to exist even in a dry run.
	env := kubetest.Start(t, []string{"crds", kubetest.MustCertManagerCRDs(t)}, "acmezone", "cert-manager")
	kubeconfig, assets := env.Kubeconfig, os.Getenv("KUBEBUILDER_ASSETS")

	for _, dir := range []string{"default", "overlays/example", "examples/issuers"} {
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
