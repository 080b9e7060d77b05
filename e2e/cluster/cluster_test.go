// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build cluster

// The seed's flow on a real single-node cluster: cert-manager and acmezone run as pods from
// their images, acmezone installed from deploy/ through the README's overlay; then the faults
// an operator meets. `make cluster-e2e` runs it as root; it takes minutes (cert-manager waits
// 60 s after each passing DNS-01 self-check, and one stage stops kube-apiserver for 60 s).
package cluster_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/e2e/cluster"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/kubetest"
)

func init() { ctrllog.SetLogger(logr.Discard()) }

// The host's parts, on the bridge address where pods reach them: the DNS provider (its port 53
// is unbound's), the public resolver, Pebble.
const (
	providerAddr = cluster.NodeIP + ":5353"
	resolverAddr = cluster.NodeIP + ":53"
	// The zone and name server the overlay sets; the name server's address is the Service's
	// load-balancer address.
	zone       = "acme.example.com"
	nameserver = "ns.example.com"
)

// env is the running cluster and the host's parts around it.
type env struct {
	c        *cluster.Cluster
	client   client.Client
	provider *stack.Provider
	pebble   *stack.Pebble
	procs    []*stack.Process
}

func TestCluster(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the cluster needs root: run `make cluster-e2e` as root")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	// In bin/ (git-ignored), not a temporary directory: the logs stay after a failure, and
	// the next run cleans it up first.
	dir := filepath.Join(root, "bin", "cluster-run")
	ctx := context.Background()
	start := time.Now()
	c, err := cluster.Up(ctx, root, dir, t.Logf)
	if err != nil {
		t.Fatalf("%v (logs in %s)", err, dir)
	}
	e := &env{c: c, client: c.Client}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pods:\n%s", c.PodStates(context.Background(), "acmezone", "cert-manager", "kube-system"))
			if out, err := c.Kubectl(context.Background(), "get", "events", "-A", "--sort-by=.lastTimestamp"); err == nil {
				t.Logf("events:\n%s", lastLines(out, 60))
			}
			e.dumpPodLogs(t)
		}
		for i := len(e.procs) - 1; i >= 0; i-- {
			e.procs[i].Stop()
		}
		c.Down(context.Background())
		if t.Failed() {
			for _, p := range append(c.Processes(), e.procs...) {
				t.Logf("===== %s (%s) =====\n%s", p.Name, p.LogPath, lastLines(p.Logs(), 40))
			}
			t.Logf("every log is kept in %s", dir)
		}
	})
	e.hostParts(t, ctx, root, dir)
	e.install(t, ctx, root, dir)
	t.Logf("cluster up and acmezone installed in %s", time.Since(start).Round(time.Second))

	if !t.Run("webhook solver: apex and wildcard", e.webhookFlow) {
		return
	}
	t.Run("acmeDNS solver through the cluster DNS", e.acmeDNSFlow)
	t.Run("a tenant with only edit", e.tenantWithEdit)
	t.Run("CoreDNS pod and controller leader deleted mid-challenge", e.podsDeletedMidChallenge)
	t.Run("CoreDNS rolled under a query loop", e.rollUnderQueries)
	t.Run("kube-apiserver stopped for 60 s", e.apiServerOutage)
	t.Run("etcd killed and restarted", e.etcdKilled)
	t.Run("metrics scraped from the pods, memory within requests and limits", e.metricsAndMemory)
	t.Run("reinstalled from the Helm chart", e.reinstallWithChart)
}

// hostParts starts the DNS provider, unbound and Pebble on the bridge address.
func (e *env) hostParts(t *testing.T, ctx context.Context, root, dir string) {
	unbound, err := exec.LookPath("unbound")
	if err != nil {
		t.Fatal("unbound is not installed (make unbound)")
	}
	hostDir := filepath.Join(dir, "host")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if e.provider, err = stack.StartProviderAt(ctx, hostDir, filepath.Join(root, "bin", "coredns"), providerAddr, cluster.LoadBalancerIP); err != nil {
		t.Fatal(err)
	}
	e.procs = append(e.procs, e.provider.Process)
	res, err := stack.StartResolverAt(ctx, hostDir, unbound, stack.Resolver{Listen: resolverAddr, Allow: cluster.BridgeCIDR, Provider: providerAddr})
	if err != nil {
		t.Fatal(err)
	}
	e.procs = append(e.procs, res)
	ca, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	e.pebble, err = stack.StartPebbleAt(ctx, hostDir, filepath.Join(root, "bin", "pebble"), stack.PebbleConfig{
		Host:      cluster.NodeIP,
		CertFile:  filepath.Join(dir, "pki", "pebble.crt"),
		KeyFile:   filepath.Join(dir, "pki", "pebble.key"),
		CABundle:  ca,
		DNSServer: resolverAddr,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.procs = append(e.procs, e.pebble.Process)
}

// install installs cert-manager (CRDs, controller, cainjector), the cluster DNS, and acmezone
// the README's way: a copy of deploy/overlays/example with the zone, the name server and the
// images set, applied with kubectl apply -k.
func (e *env) install(t *testing.T, ctx context.Context, root, dir string) {
	c := e.c
	crds, err := kubetest.CertManagerCRDs()
	if err != nil {
		t.Fatal(err)
	}
	step := func(what string, fn func() error) {
		t.Helper()
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%-50s %6.1fs", what, time.Since(start).Seconds())
	}
	step("cert-manager CRDs, controller, cainjector; cluster DNS", func() error {
		if _, err := c.Kubectl(ctx, "apply", "--server-side", "-f", crds); err != nil {
			return err
		}
		for _, k := range []string{"cert-manager", "kube-dns"} {
			if _, err := c.Kubectl(ctx, "apply", "-k", filepath.Join(root, "build", "cluster", k)); err != nil {
				return err
			}
		}
		for _, d := range [][2]string{{"cert-manager", "cert-manager"}, {"cert-manager", "cert-manager-cainjector"}, {"kube-system", "coredns"}} {
			if err := c.WaitDeployment(ctx, d[0], d[1], 3*time.Minute); err != nil {
				return err
			}
		}
		return nil
	})
	overlay := filepath.Join(dir, "overlay")
	step("acmezone: kubectl apply -k of the README's overlay", func() error {
		if err := cluster.WriteOverlay(root, overlay, cluster.Install{
			Zone: zone, NameServer: nameserver, NameServerAddress: cluster.LoadBalancerIP,
			Images: map[string]string{
				"ghcr.io/acmezone/coredns":             cluster.Image("coredns"),
				"ghcr.io/acmezone/acmezone-controller": cluster.Image("acmezone-controller"),
			},
		}); err != nil {
			return err
		}
		_, err := c.Kubectl(ctx, "apply", "-k", overlay)
		return err
	})
	step("the load balancer's address "+cluster.LoadBalancerIP+" on acmezone-coredns", func() error {
		return e.retry(ctx, time.Minute, func() error {
			return c.SetLoadBalancerIP(ctx, "acmezone", "acmezone-coredns", cluster.LoadBalancerIP)
		})
	})
	step("acmezone-controller and CoreDNS rolled out, APIService available", func() error {
		for _, d := range []string{"acmezone-controller", "acmezone-coredns"} {
			if err := c.WaitDeployment(ctx, "acmezone", d, 4*time.Minute); err != nil {
				return err
			}
		}
		return e.retry(ctx, 2*time.Minute, e.apiServiceAvailable)
	})
	step("acmezone's CoreDNS answers at the load balancer's address", func() error {
		return e.retry(ctx, time.Minute, func() error {
			_, err := soa(cluster.LoadBalancerIP + ":53")
			return err
		})
	})
}

// apiServiceAvailable checks that the aggregator reaches acmezone-controller's webhook: the
// APIService got its CA from cert-manager's cainjector and is Available.
func (e *env) apiServiceAvailable() error {
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIServiceList"})
	if err := e.client.List(context.Background(), &list); err != nil {
		return err
	}
	for _, a := range list.Items {
		if !strings.HasSuffix(a.GetName(), ".solver.acmezone.io") {
			continue
		}
		if ca, _, _ := unstructured.NestedString(a.Object, "spec", "caBundle"); ca == "" {
			return fmt.Errorf("APIService %s has no caBundle yet (cert-manager's cainjector)", a.GetName())
		}
		conds, _, _ := unstructured.NestedSlice(a.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Available" {
				if m["status"] == "True" {
					return nil
				}
				return fmt.Errorf("APIService %s: %v: %v", a.GetName(), m["reason"], m["message"])
			}
		}
		return fmt.Errorf("APIService %s has no Available condition", a.GetName())
	}
	return fmt.Errorf("no APIService for solver.acmezone.io")
}

// retry calls fn every second until it succeeds or timeout passes.
func (e *env) retry(ctx context.Context, timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// checkSecret checks an issued certificate: its names, and a chain to Pebble's root.
func (e *env) checkSecret(t *testing.T, ns, name string, dnsNames ...string) *x509.Certificate {
	t.Helper()
	ctx := context.Background()
	var sec corev1.Secret
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sec); err != nil {
		t.Fatal(err)
	}
	rootPEM, err := e.pebble.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := stack.VerifyIssued(sec.Data[corev1.TLSCertKey], rootPEM, dnsNames...)
	if err != nil {
		t.Fatalf("secret %s/%s: %v", ns, name, err)
	}
	t.Logf("issued: %v, serial %s", leaf.DNSNames, leaf.SerialNumber)
	return leaf
}

// dumpPodLogs logs the end of every container's log (the kubelet keeps them under the
// cluster's directory).
func (e *env) dumpPodLogs(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(e.c.Dir, "pod-logs", "*", "*", "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		t.Logf("===== %s =====\n%s", strings.TrimPrefix(f, e.c.Dir+"/"), lastLines(string(b), 30))
	}
}

// eventually and ready are the stack's Eventually and Ready.
var (
	eventually = stack.Eventually
	ready      = stack.Ready
)

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
