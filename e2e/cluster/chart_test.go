// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build cluster

package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/e2e/cluster"
	"github.com/acmezone/acmezone/e2e/stack"
)

// chartNamespace is where the chart installs acmezone: not deploy/'s, so that every object the
// chart renders is seen to follow the release's namespace.
const chartNamespace = "dns-system"

// reinstallWithChart moves the installation from deploy/ to the Helm chart, as a platform
// engineer would: the target key goes along (docs/SECURITY.md: without it every target
// changes), the CRDs and so every Delegation and ChallengeRecord stay, everything else of the
// kustomize install is deleted, and `helm template --include-crds` of charts/acmezone into
// namespace dns-system (the way Argo CD and Flux install charts) is applied. Then the old
// targets are served by the new pods at the same address, and a certificate is issued
// through the chart's webhook. It runs last: the other stages expect namespace acmezone.
func (e *env) reinstallWithChart(t *testing.T) {
	ctx := context.Background()
	c := e.client
	target, probe := e.probeRecord(t)

	// The target key, copied to the new namespace before the old one goes.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chartNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var key corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "acmezone", Name: "acmezone-target-key"}, &key); err != nil {
		t.Fatal(err)
	}
	moved := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: chartNamespace, Name: key.Name}, Type: key.Type, Data: key.Data}
	if err := c.Create(ctx, moved); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	// The kustomize install without its CRDs, deleted.
	rendered, err := e.c.Kubectl(ctx, "kustomize", filepath.Join(e.c.Dir, "overlay"))
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for doc := range strings.SplitSeq(rendered, "\n---\n") {
		if !strings.Contains(doc, "\nkind: CustomResourceDefinition\n") && !strings.HasPrefix(doc, "apiVersion: apiextensions.k8s.io/") {
			keep = append(keep, doc)
		}
	}
	old := filepath.Join(e.c.Dir, "kustomize-install-without-crds.yaml")
	if err := os.WriteFile(old, []byte(strings.Join(keep, "\n---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	step(t, "the kustomize install deleted (CRDs kept)", func() error {
		_, err := e.c.Kubectl(ctx, "delete", "--wait", "--ignore-not-found", "--timeout=3m", "-f", old)
		return err
	})

	// The chart, with what a user sets: the zone, its name server, the images.
	manifest, err := cluster.RenderChart(e.c.Root, chartNamespace, map[string]any{
		"zone":        zone,
		"nameservers": []any{map[string]any{"name": nameserver, "address": cluster.LoadBalancerIP}},
		"controller":  map[string]any{"image": imageValues(cluster.Image("acmezone-controller"))},
		"coredns":     map[string]any{"image": imageValues(cluster.Image("coredns"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	chartFile := filepath.Join(e.c.Dir, "chart.yaml")
	if err := os.WriteFile(chartFile, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	step(t, "helm template of charts/acmezone applied in "+chartNamespace, func() error {
		_, err := e.c.Kubectl(ctx, "apply", "-f", chartFile)
		return err
	})
	step(t, "the load balancer's address on "+chartNamespace+"/acmezone-coredns", func() error {
		return e.retry(ctx, time.Minute, func() error {
			return e.c.SetLoadBalancerIP(ctx, chartNamespace, "acmezone-coredns", cluster.LoadBalancerIP)
		})
	})
	step(t, "the chart's pods rolled out, APIService available", func() error {
		for _, d := range []string{"acmezone-controller", "acmezone-coredns"} {
			if err := e.c.WaitDeployment(ctx, chartNamespace, d, 4*time.Minute); err != nil {
				return err
			}
		}
		return e.retry(ctx, 2*time.Minute, e.apiServiceAvailable)
	})
	// The same target, served by the chart's CoreDNS: the key moved with the installation.
	eventually(t, 2*time.Minute, "the probe record served at its old target by the chart's CoreDNS", func() (bool, string) {
		vals, err := stack.TXT(cluster.LoadBalancerIP+":53", target, "udp")
		return err == nil && slices.Contains(vals, probe), fmt.Sprint(vals, err)
	})

	// A certificate through the chart's webhook solver, for a domain new to acmezone.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	ci := e.pebble.ClusterIssuer("acmezone", stack.AcmezoneSolver())
	if err := c.Create(ctx, ci); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	e.issuerReady(t, ci)
	const domain = "chart.example.com"
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "chart"},
		Spec: cmapi.CertificateSpec{
			SecretName: "chart-tls",
			DNSNames:   []string{domain},
			IssuerRef:  cmmeta.IssuerReference{Name: ci.Name, Kind: cmapi.ClusterIssuerKind},
		},
	}
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	d := stack.WaitDelegation(t, c, stack.ClusterResourceNamespace, domain)
	if err := e.provider.AddRecord("_acme-challenge.chart IN CNAME " + d.Status.Target); err != nil {
		t.Fatal(err)
	}
	stack.RecheckVerified(t, c, &d, "the new Delegation verified by the chart's controller")
	e.waitReady(t, crt)
	e.checkSecret(t, "shop", "chart-tls", domain)
}

// imageValues are a chart image's repository and tag for ref (REPOSITORY:TAG).
func imageValues(ref string) map[string]any {
	i := strings.LastIndex(ref, ":")
	return map[string]any{"repository": ref[:i], "tag": ref[i+1:]}
}

// step runs fn as one timed step of a stage.
func step(t *testing.T, what string, fn func() error) {
	t.Helper()
	start := time.Now()
	if err := fn(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%-55s %6.1fs", what, time.Since(start).Seconds())
}
