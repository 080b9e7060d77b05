// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package cluster_test checks the manifests `make cluster-e2e` installs into its cluster
// besides acmezone's deploy/: cert-manager (cert-manager/) and the cluster DNS (kube-dns/).
package cluster_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/acmezone/acmezone/internal/kubetest"
)

// repoRoot is the repository, seen from this package's folder.
const repoRoot = "../.."

// The images `make cluster-images` builds (build/images specs, -registry acmezone.test -tag
// cluster) and the Deployments e2e/cluster waits for.
const (
	controllerImage = "acmezone.test/cert-manager-controller:cluster"
	cainjectorImage = "acmezone.test/cert-manager-cainjector:cluster"
	corednsImage    = "acmezone.test/cluster-dns:cluster"
	clusterDNSIP    = "10.96.0.10"
	hostResolver    = "10.88.0.1:53"
)

// kubectl returns the kubectl `make testbin` builds, or skips the test.
func kubectl(t *testing.T) string {
	t.Helper()
	for _, p := range []string{
		os.Getenv("TEST_ASSET_KUBECTL"),
		filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"),
		filepath.Join(repoRoot, "bin", "kubectl"),
	} {
		if p == "" || p == "kubectl" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			abs, err := filepath.Abs(p)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	t.Skip("needs bin/kubectl (its kustomize renders the manifests): `make testbin` builds it")
	return ""
}

// manifests are the objects of one kustomization, by kind and namespace/name.
type manifests map[string]runtime.Object

func key(kind, namespace, name string) string { return kind + " " + namespace + "/" + name }

// render runs kubectl kustomize on dir and decodes every object.
func render(t *testing.T, dir string) manifests {
	t.Helper()
	out, err := exec.Command(kubectl(t), "kustomize", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return decode(t, dir, out)
}

// decode reads every object of a multi-document YAML stream with the built-in kinds' scheme.
func decode(t *testing.T, where string, b []byte) manifests {
	t.Helper()
	m := manifests{}
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", where, err, doc)
		}
		o, err := meta.Accessor(obj)
		if err != nil {
			t.Fatalf("%s: %s: %v", where, gvk, err)
		}
		k := key(gvk.Kind, o.GetNamespace(), o.GetName())
		if _, dup := m[k]; dup {
			t.Errorf("%s: %s twice", where, k)
		}
		m[k] = obj
	}
	return m
}

// get returns the object kind namespace/name as a T, failing the test when it is missing.
func get[T runtime.Object](t *testing.T, m manifests, kind, namespace, name string) T {
	t.Helper()
	obj, ok := m[key(kind, namespace, name)].(T)
	if !ok {
		t.Fatalf("no %s in the manifests (have %v)", key(kind, namespace, name), m.keys())
	}
	return obj
}

func (m manifests) keys() []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestCertManager renders build/cluster/cert-manager and checks what the cluster and acmezone
// rely on: the controller's ServiceAccount that acmezone's solver binding names, the images
// and their pull policy, flags that the mains really have, Lease names that the mains really
// use, bindings to subjects and roles that exist, and no webhook or CRD.
func TestCertManager(t *testing.T) {
	m := render(t, "cert-manager")
	get[*corev1.Namespace](t, m, "Namespace", "", "cert-manager")

	ctrl := get[*appsv1.Deployment](t, m, "Deployment", "cert-manager", "cert-manager")
	inj := get[*appsv1.Deployment](t, m, "Deployment", "cert-manager", "cert-manager-cainjector")

	// acmezone's deploy/controller/rbac.yaml lets exactly cert-manager/cert-manager call the
	// solver: the controller must run as that ServiceAccount.
	solver := solverSubject(t)
	if ctrl.Namespace != solver.Namespace || ctrl.Spec.Template.Spec.ServiceAccountName != solver.Name {
		t.Errorf("cert-manager's controller runs as %s/%s; deploy/controller/rbac.yaml binds the solver to %s/%s",
			ctrl.Namespace, ctrl.Spec.Template.Spec.ServiceAccountName, solver.Namespace, solver.Name)
	}

	mains := map[string]string{
		controllerImage: filepath.Join(repoRoot, "build/e2ebin/cmd/cert-manager-controller/main.go"),
		cainjectorImage: filepath.Join(repoRoot, "build/e2ebin/cmd/cert-manager-cainjector/main.go"),
	}
	wantArgs := map[string][]string{
		controllerImage: {
			"--cluster-resource-namespace=cert-manager", "--leader-elect", "--leader-election-namespace=cert-manager",
			"--dns01-recursive-nameservers=" + hostResolver, "--dns01-recursive-nameservers-only",
		},
		cainjectorImage: {"--leader-elect", "--leader-election-namespace=cert-manager"},
	}
	for _, d := range []*appsv1.Deployment{ctrl, inj} {
		c := onlyContainer(t, d)
		if c.Image != controllerImage && c.Image != cainjectorImage || c.Image == controllerImage && d != ctrl || c.Image == cainjectorImage && d != inj {
			t.Errorf("%s runs %s", d.Name, c.Image)
			continue
		}
		if !slices.Equal(c.Args, wantArgs[c.Image]) {
			t.Errorf("%s: args %q, want %q", d.Name, c.Args, wantArgs[c.Image])
		}
		src := readFile(t, mains[c.Image])
		for _, a := range c.Args {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !strings.Contains(src, `"`+name+`"`) {
				t.Errorf("%s: %s is not a flag of %s", d.Name, a, mains[c.Image])
			}
		}
	}

	// The Leases the Roles allow are the ones the mains take.
	for _, want := range []struct{ role, lease, main string }{
		{"cert-manager-controller:leader-election", "cert-manager-controller", mains[controllerImage]},
		{"cert-manager-cainjector:leader-election", "cert-manager-cainjector-leader-election", mains[cainjectorImage]},
	} {
		role := get[*rbacv1.Role](t, m, "Role", "cert-manager", want.role)
		if !grants(role.Rules, "coordination.k8s.io", "leases", want.lease, "update") || !grants(role.Rules, "coordination.k8s.io", "leases", "", "create") {
			t.Errorf("Role %s does not let the Lease %s be created and renewed", want.role, want.lease)
		}
		if !strings.Contains(readFile(t, want.main), `"`+want.lease+`"`) {
			t.Errorf("%s does not take the Lease %s", want.main, want.lease)
		}
	}

	// A few rights each main cannot work without; the rest of the RBAC is checked against a
	// running cert-manager by make cluster-e2e.
	cm := boundRules(t, m, "cert-manager", "cert-manager")
	for _, r := range [][3]string{
		{"cert-manager.io", "certificaterequests", "create"}, // requestmanager (no ingress-shim role grants it here)
		{"cert-manager.io", "certificates/status", "update"},
		{"acme.cert-manager.io", "challenges", "create"},
		{"", "secrets", "create"},
		{"", "events", "create"},
	} {
		if !grants(cm, r[0], r[1], "", r[2]) {
			t.Errorf("cert-manager's controller may not %s %s", r[2], resource(r[0], r[1]))
		}
	}
	ci := boundRules(t, m, "cert-manager", "cert-manager-cainjector")
	for _, r := range [][3]string{
		{"apiregistration.k8s.io", "apiservices", "patch"},
		{"cert-manager.io", "certificates", "watch"},
		{"", "secrets", "get"},
	} {
		if !grants(ci, r[0], r[1], "", r[2]) {
			t.Errorf("cert-manager's cainjector may not %s %s", r[2], resource(r[0], r[1]))
		}
	}

	for k := range m {
		kind, _, _ := strings.Cut(k, " ")
		switch kind {
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "CustomResourceDefinition":
			t.Errorf("%s: no cert-manager webhook runs and the CRDs are applied separately", k)
		}
	}
	checkBindings(t, m)
	checkPods(t, m)
}

// TestKubeDNS renders build/cluster/kube-dns: the Service at the kubelet's clusterDNS, the
// full CoreDNS image, and a Corefile that serves cluster.local from the API, forwards the rest
// to the host's resolver, and serves the ports the probes ask.
func TestKubeDNS(t *testing.T) {
	m := render(t, "kube-dns")
	svc := get[*corev1.Service](t, m, "Service", "kube-system", "kube-dns")
	if svc.Spec.ClusterIP != clusterDNSIP {
		t.Errorf("Service kube-dns at %q, want %s (the kubelet's clusterDNS)", svc.Spec.ClusterIP, clusterDNSIP)
	}
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == 53 && p.Protocol == proto }) {
			t.Errorf("Service kube-dns has no port 53/%s", proto)
		}
	}
	d := get[*appsv1.Deployment](t, m, "Deployment", "kube-system", "coredns")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("coredns: replicas %v, want 1", d.Spec.Replicas)
	}
	sel := d.Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if sel[k] != v {
			t.Errorf("Service kube-dns selects %s=%s, the pods are labelled %v", k, v, sel)
		}
	}
	if d.Spec.Template.Spec.DNSPolicy != corev1.DNSDefault {
		t.Errorf("coredns: dnsPolicy %q, want Default (not itself)", d.Spec.Template.Spec.DNSPolicy)
	}
	c := onlyContainer(t, d)
	if c.Image != corednsImage {
		t.Errorf("coredns runs %s, want %s", c.Image, corednsImage)
	}
	probe := c.ReadinessProbe
	if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != "/ready" || probe.HTTPGet.Port.IntValue() != 8181 {
		t.Errorf("coredns: readiness probe %+v, want GET /ready on 8181", probe)
	}

	cm := get[*corev1.ConfigMap](t, m, "ConfigMap", "kube-system", "coredns")
	if !slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name
	}) || !slices.Contains(c.Args, "/etc/coredns/Corefile") {
		t.Errorf("coredns does not read the ConfigMap %s's Corefile (args %q)", cm.Name, c.Args)
	}
	checkCorefile(t, cm.Data["Corefile"])

	rules := boundRules(t, m, "kube-system", "coredns")
	for _, r := range [][2]string{{"", "services"}, {"", "namespaces"}, {"discovery.k8s.io", "endpointslices"}} {
		if !grants(rules, r[0], r[1], "", "list") || !grants(rules, r[0], r[1], "", "watch") {
			t.Errorf("CoreDNS may not list and watch %s", resource(r[0], r[1]))
		}
	}
	checkBindings(t, m)
	checkPods(t, m)
}

// checkCorefile parses the Corefile as CoreDNS does and checks its server blocks.
func checkCorefile(t *testing.T, text string) {
	t.Helper()
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(text), dnsserver.Directives)
	if err != nil {
		t.Fatalf("Corefile: %v", err)
	}
	args := func(sb caddyfile.ServerBlock, dir string) []string {
		var a []string
		for _, tok := range sb.Tokens[dir] {
			a = append(a, tok.Text)
		}
		return a
	}
	var cluster, root *caddyfile.ServerBlock
	for i, sb := range blocks {
		switch {
		case slices.Contains(sb.Keys, "cluster.local:53"):
			cluster = &blocks[i]
		case slices.Contains(sb.Keys, ".:53"):
			root = &blocks[i]
		}
	}
	if cluster == nil || root == nil {
		t.Fatalf("Corefile: want the server blocks cluster.local:53 and .:53, have %v", blocks)
	}
	for _, k := range []string{"in-addr.arpa:53", "ip6.arpa:53"} {
		if !slices.Contains(cluster.Keys, k) {
			t.Errorf("Corefile: reverse zone %s is not in the cluster.local block %v: PTR queries never reach kubernetes", k, cluster.Keys)
		}
	}
	if a := args(*cluster, "kubernetes"); len(a) < 4 || !slices.Equal(a[1:4], []string{"cluster.local", "in-addr.arpa", "ip6.arpa"}) {
		t.Errorf("Corefile: kubernetes %q, want the zones cluster.local in-addr.arpa ip6.arpa", a)
	}
	for _, sb := range []*caddyfile.ServerBlock{cluster, root} {
		if a := args(*sb, "forward"); len(a) < 3 || a[1] != "." || a[2] != hostResolver {
			t.Errorf("Corefile %v: forward %q, want forward . %s", sb.Keys, a, hostResolver)
		}
	}
	if a := args(*cluster, "ready"); !slices.Equal(a, []string{"ready", ":8181"}) {
		t.Errorf("Corefile: ready %q, want ready :8181 (the readiness probe's port)", a)
	}
	if a := args(*cluster, "health"); len(a) < 2 || a[1] != ":8080" {
		t.Errorf("Corefile: health %q, want health :8080 (the liveness probe's port)", a)
	}
}

// TestServerDryRun applies both kustomizations with kubectl --dry-run=server: the API server
// validates every object against its schema, the Service's address against a service range
// like the cluster's, and the RBAC objects (escalation included).
func TestServerDryRun(t *testing.T) {
	kubetest.NeedControlPlane(t)
	env, err := kubetest.StartEnv(kubetest.Options{
		// kube-dns' clusterIP must be inside the range, as in the cluster (e2e/cluster).
		APIServerArgs: map[string]string{"service-cluster-ip-range": "10.96.0.0/16"},
		// Namespaced objects need their namespace even in a dry run.
		Namespaces: []string{"cert-manager"},
		Dir:        t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kc := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	for _, dir := range []string{"cert-manager", "kube-dns"} {
		out, err := exec.Command(kc, "--kubeconfig", env.Kubeconfig, "apply", "--dry-run=server", "-k", dir).CombinedOutput()
		if err != nil {
			t.Errorf("kubectl apply --dry-run=server -k build/cluster/%s: %v\n%s", dir, err, out)
			continue
		}
		objects := len(render(t, dir))
		applied := strings.Count(string(out), "(server dry run)")
		if objects == 0 || applied != objects {
			t.Errorf("build/cluster/%s: %d objects rendered, %d accepted by the server:\n%s", dir, objects, applied, out)
		}
	}
}

// checkPods checks every Deployment's pods: a ServiceAccount of the manifests, images from
// `make cluster-images` never pulled, non-root with RuntimeDefault seccomp, a read-only root
// file system without privileges, and resource requests.
func checkPods(t *testing.T, m manifests) {
	t.Helper()
	for k, obj := range m {
		d, ok := obj.(*appsv1.Deployment)
		if !ok {
			continue
		}
		ps := d.Spec.Template.Spec
		if _, ok := m[key("ServiceAccount", d.Namespace, ps.ServiceAccountName)]; !ok {
			t.Errorf("%s: ServiceAccount %q is not in the manifests", k, ps.ServiceAccountName)
		}
		if sc := ps.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod securityContext %+v, want runAsNonRoot and seccomp RuntimeDefault", k, sc)
		}
		for _, c := range ps.Containers {
			if !strings.HasPrefix(c.Image, "acmezone.test/") || !strings.HasSuffix(c.Image, ":cluster") || c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("%s: image %s pulled %q, want acmezone.test/<name>:cluster IfNotPresent (imported, no registry)", k, c.Image, c.ImagePullPolicy)
			}
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: container %s securityContext %+v, want a read-only root, no privilege escalation, all capabilities dropped", k, c.Name, sc)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("%s: container %s requests %v, want CPU and memory", k, c.Name, c.Resources.Requests)
			}
		}
	}
}

// checkBindings checks that every binding names a role and ServiceAccounts of the manifests.
func checkBindings(t *testing.T, m manifests) {
	t.Helper()
	check := func(k, bindingNS string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		if _, ok := m[roleKey(ref, bindingNS)]; !ok {
			t.Errorf("%s: %s %s is not in the manifests", k, ref.Kind, ref.Name)
		}
		for _, s := range subjects {
			if _, ok := m[key("ServiceAccount", s.Namespace, s.Name)]; s.Kind != rbacv1.ServiceAccountKind || !ok {
				t.Errorf("%s: subject %s %s/%s is not a ServiceAccount of the manifests", k, s.Kind, s.Namespace, s.Name)
			}
		}
	}
	for k, obj := range m {
		switch b := obj.(type) {
		case *rbacv1.ClusterRoleBinding:
			check(k, "", b.RoleRef, b.Subjects)
		case *rbacv1.RoleBinding:
			check(k, b.Namespace, b.RoleRef, b.Subjects)
		}
	}
}

// roleKey is the key of the role a binding in bindingNS (empty: a ClusterRoleBinding) refers to.
func roleKey(ref rbacv1.RoleRef, bindingNS string) string {
	if ref.Kind == "ClusterRole" {
		return key(ref.Kind, "", ref.Name)
	}
	return key(ref.Kind, bindingNS, ref.Name)
}

// boundRules returns the rules of every role bound to the ServiceAccount namespace/name.
func boundRules(t *testing.T, m manifests, namespace, name string) []rbacv1.PolicyRule {
	t.Helper()
	var rules []rbacv1.PolicyRule
	add := func(ref rbacv1.RoleRef, bindingNS string, subjects []rbacv1.Subject) {
		if !slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Namespace == namespace && s.Name == name
		}) {
			return
		}
		switch r := m[roleKey(ref, bindingNS)].(type) {
		case *rbacv1.ClusterRole:
			rules = append(rules, r.Rules...)
		case *rbacv1.Role:
			rules = append(rules, r.Rules...)
		}
	}
	for _, obj := range m {
		switch b := obj.(type) {
		case *rbacv1.ClusterRoleBinding:
			add(b.RoleRef, "", b.Subjects)
		case *rbacv1.RoleBinding:
			add(b.RoleRef, b.Namespace, b.Subjects)
		}
	}
	return rules
}

// grants says whether one of rules allows verb on resource of group (named name, when given:
// a rule limited to other names does not count; a rule for any name does).
func grants(rules []rbacv1.PolicyRule, group, resource, name, verb string) bool {
	has := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	for _, r := range rules {
		if has(r.APIGroups, group) && has(r.Resources, resource) && has(r.Verbs, verb) &&
			(len(r.ResourceNames) == 0 || name != "" && slices.Contains(r.ResourceNames, name)) {
			return true
		}
	}
	return false
}

// resource names a resource as kubectl does: resource.group, or resource for the core group.
func resource(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}

// solverSubject is the ServiceAccount deploy/controller/rbac.yaml lets call acmezone's solver.
func solverSubject(t *testing.T) rbacv1.Subject {
	t.Helper()
	m := decode(t, "deploy/controller/rbac.yaml", []byte(readFile(t, filepath.Join(repoRoot, "deploy/controller/rbac.yaml"))))
	b := get[*rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding", "", "acmezone:solver")
	if len(b.Subjects) != 1 {
		t.Fatalf("deploy/controller/rbac.yaml: acmezone:solver binds %v, want cert-manager's ServiceAccount alone", b.Subjects)
	}
	return b.Subjects[0]
}

func onlyContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	if cs := d.Spec.Template.Spec.Containers; len(cs) == 1 {
		return cs[0]
	}
	t.Fatalf("Deployment %s: %d containers, want 1", d.Name, len(d.Spec.Template.Spec.Containers))
	return corev1.Container{}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
