// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// TestServerDryRun applies every kustomization with kubectl --dry-run=server: the API server
// validates each object against its schema (ours, cert-manager's, and the built-in kinds).
func TestServerDryRun(t *testing.T) {
	// Namespaced objects need their namespace to exist even in a dry run.
	env := kubetest.Start(t, []string{"crds", kubetest.MustCertManagerCRDs(t)}, "acmezone", "cert-manager")
	kubeconfig, assets := env.Kubeconfig, os.Getenv("KUBEBUILDER_ASSETS")

	for _, dir := range []string{"default", "overlays/example", "overlays/example-dnssec", "overlays/example-rfc2136", "examples/issuers"} {
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

// TestPrinterColumns: `kubectl get dlg` shows whether a Delegation is ready and, if not, why
// (the Ready condition's message), and `kubectl get acr` which domain a record answers.
func TestPrinterColumns(t *testing.T) {
	env := kubetest.Start(t, []string{"crds"}, "shop")
	ctx := context.Background()
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example-com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	const why = "The records at the DNS provider are not all in place: _acme-challenge.example.com has no CNAME"
	d.Status.Target = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "NotVerified", Message: why})
	meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionVerified, Status: metav1.ConditionFalse, Reason: "CNAMEMissing", Message: why})
	if err := env.Client.Status().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	rec := v1alpha1.NewChallengeRecord("shop", d.Status.Target, "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
	rec.Annotations = map[string]string{v1alpha1.DomainAnnotation: "example.com"}
	if err := env.Client.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	meta.SetStatusCondition(&rec.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionServed, Status: metav1.ConditionTrue, Reason: "OwnTarget",
		Message: d.Status.Target + " is the target of Delegation example-com (domain example.com): acmezone's CoreDNS serves this value there."})
	if err := env.Client.Status().Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) []string {
		t.Helper()
		out, err := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), append([]string{"--kubeconfig", env.Kubeconfig, "-n", "shop", "get"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl get %v: %v\n%s", args, err, out)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	for _, tc := range []struct {
		args       []string
		header     []string
		rowHas     []string
		rowHasNone []string
	}{
		{[]string{"dlg"}, []string{"NAME", "DOMAIN", "READY", "STATUS", "AGE"}, []string{"example-com", "example.com", "False", why}, []string{d.Status.Target}},
		{[]string{"dlg", "-o", "wide"}, []string{"NAME", "DOMAIN", "READY", "STATUS", "TARGET", "VERIFIED", "SERVED", "AGE"}, []string{d.Status.Target, why}, nil},
		{[]string{"acr"}, []string{"NAME", "DOMAIN", "FQDN", "VALUE", "SERVED", "AGE"}, []string{rec.Name, "example.com", d.Status.Target, rec.Spec.Value, "True"}, []string{"OwnTarget"}},
		{[]string{"acr", "-o", "wide"}, []string{"NAME", "DOMAIN", "FQDN", "VALUE", "SERVED", "STATUS", "AGE"}, []string{"is the target of Delegation example-com"}, nil},
	} {
		lines := kubectl(tc.args...)
		if len(lines) != 2 {
			t.Fatalf("kubectl get %v: %q, want a header and one row", tc.args, lines)
		}
		if got := strings.Fields(lines[0]); !slices.Equal(got, tc.header) {
			t.Errorf("kubectl get %v columns %q, want %q", tc.args, got, tc.header)
		}
		for _, s := range tc.rowHas {
			if !strings.Contains(lines[1], s) {
				t.Errorf("kubectl get %v row %q does not show %q", tc.args, lines[1], s)
			}
		}
		for _, s := range tc.rowHasNone {
			if strings.Contains(lines[1], s) {
				t.Errorf("kubectl get %v row %q shows %q, which belongs in -o wide", tc.args, lines[1], s)
			}
		}
	}
}
