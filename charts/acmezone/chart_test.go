// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/util/diff"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/acmezone/acmezone/internal/kubetest"
)

// The Kubernetes version the chart is rendered for: the one the tests run (README, "Supported
// versions"); Chart.yaml's kubeVersion must admit it.
var kubeVersion = chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}

// object is one rendered Kubernetes object, as parsed YAML.
type object = map[string]any

// key names an object as kubectl does: group/version, kind, namespace and name.
type key struct{ apiVersion, kind, namespace, name string }

func (k key) String() string {
	if k.namespace == "" {
		return fmt.Sprintf("%s %s %s", k.apiVersion, k.kind, k.name)
	}
	return fmt.Sprintf("%s %s %s/%s", k.apiVersion, k.kind, k.namespace, k.name)
}

func keyOf(o object) key {
	return key{str(o, "apiVersion"), str(o, "kind"), str(o, "metadata", "namespace"), str(o, "metadata", "name")}
}

// rendered is what `helm install` would apply: the CRDs of crds/ and the templates' objects.
type rendered struct {
	objects map[key]object
	// templated are the keys of the templates' objects (not the CRDs, which Helm applies as
	// they are).
	templated []key
	notes     string
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(".")
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	return c
}

// render renders the chart as `helm install acmezone . -n namespace` with values would: schema
// validation, then the templates in strict mode (a reference to a value that does not exist
// is an error, not an empty string).
func render(t *testing.T, values map[string]any, namespace string) (*rendered, error) {
	t.Helper()
	c := loadChart(t)
	if !chartutil.IsCompatibleRange(c.Metadata.KubeVersion, kubeVersion.Version) {
		t.Fatalf("Chart.yaml's kubeVersion %q does not admit %s, the version the tests run", c.Metadata.KubeVersion, kubeVersion.Version)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = kubeVersion
	opts := chartutil.ReleaseOptions{Name: "acmezone", Namespace: namespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValuesWithSchemaValidation(c, values, opts, caps, false)
	if err != nil {
		return nil, err
	}
	files, err := engine.Engine{Strict: true}.Render(c, vals)
	if err != nil {
		return nil, err
	}
	r := &rendered{objects: map[key]object{}}
	for _, crd := range c.CRDObjects() {
		if err := r.add(crd.Name, crd.File.Data, false); err != nil {
			t.Fatal(err)
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if path.Base(name) == "NOTES.txt" {
			r.notes = files[name]
			continue
		}
		if err := r.add(name, []byte(files[name]), true); err != nil {
			t.Fatal(err)
		}
	}
	return r, nil
}

// mustRender is render for values that must render.
func mustRender(t *testing.T, values map[string]any, namespace string) *rendered {
	t.Helper()
	r, err := render(t, values, namespace)
	if err != nil {
		t.Fatalf("render the chart: %v", err)
	}
	return r
}

// add parses the YAML documents of one file.
func (r *rendered) add(name string, data []byte, templated bool) error {
	objs, err := parseObjects(data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, o := range objs {
		k := keyOf(o)
		if _, dup := r.objects[k]; dup {
			return fmt.Errorf("%s: %s rendered twice", name, k)
		}
		r.objects[k] = o
		if templated {
			r.templated = append(r.templated, k)
		}
	}
	return nil
}

// parseObjects parses a multi-document YAML stream as kubectl does (sigs.k8s.io/yaml: YAML 1.1
// scalars such as defaultMode: 0440 are numbers), skipping empty documents.
func parseObjects(data []byte) ([]object, error) {
	var out []object
	rd := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, fmt.Errorf("%w in\n%s", err, doc)
		}
		if len(o) == 0 {
			continue
		}
		if str(o, "kind") == "" || str(o, "metadata", "name") == "" {
			return nil, fmt.Errorf("an object without kind or name:\n%s", doc)
		}
		out = append(out, o)
	}
}

// get walks nested maps; nil where a step is missing.
func get(o any, path ...string) any {
	for _, p := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[p]
	}
	return o
}

func str(o any, path ...string) string {
	s, _ := get(o, path...).(string)
	return s
}

func list(o any, path ...string) []any {
	l, _ := get(o, path...).([]any)
	return l
}

// kubectl is the kubectl `make testbin` builds (KUBEBUILDER_ASSETS under make test, else bin/ of
// this repository), or the one on PATH.
func kubectl(t *testing.T) string {
	t.Helper()
	var candidates []string
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		candidates = append(candidates, filepath.Join(d, "kubectl"))
	}
	candidates = append(candidates, filepath.Join("..", "..", "bin", "kubectl"))
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			abs, err := filepath.Abs(c)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	t.Skip("needs kubectl to render deploy/ with kustomize: `make testbin` builds it into bin/ (make test does)")
	return ""
}

// kustomize renders a kustomization of deploy/ as `kubectl apply -k` would apply it.
func kustomize(t *testing.T, dir string) map[key]object {
	t.Helper()
	cmd := exec.Command(kubectl(t), "kustomize", filepath.Join("..", "..", "deploy", dir))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/%s: %v\n%s", dir, err, stderr.String())
	}
	objs, err := parseObjects(out)
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/%s: %v", dir, err)
	}
	m := map[key]object{}
	for _, o := range objs {
		m[keyOf(o)] = o
	}
	return m
}

// kustomizeHashed is the name kustomize's configMapGenerator gives acmezone-settings: the name,
// a dash and ten characters of the hash of its data.
var kustomizeHashed = regexp.MustCompile(`^acmezone-settings-[a-z0-9]{10}$`)

// TestDefaultsRenderDeployExample is the drift test: the chart with its default values,
// installed in namespace acmezone, renders exactly the objects of
// `kubectl kustomize deploy/overlays/example`, object by object, field by field.
//
// Two differences are by design, and the test normalises exactly these:
//
//  1. The settings ConfigMap. deploy/ names it acmezone-settings-<hash of its data> (kustomize's
//     configMapGenerator), so that a change of the zone or the name servers renames it and rolls
//     both Deployments. The chart names it acmezone-settings and rolls the Deployments through
//     the annotation checksum/settings on their pod templates (the sha256 of the ConfigMap's
//     data), as Helm charts do: a stable name, and no ConfigMap left behind per change. The test
//     renames deploy/'s ConfigMap and every reference to it to acmezone-settings, checks the
//     chart's annotation against the ConfigMap's data, and removes it.
//  2. The Namespace. deploy/ creates the namespace acmezone; with Helm the namespace is the
//     release's (`helm install -n acmezone --create-namespace`), and a chart that rendered it too
//     would fail on an existing one. The test checks that deploy/'s one Namespace is acmezone and
//     leaves it out.
//
// Everything else, the CRDs of crds/ included, must be equal.
func TestDefaultsRenderDeployExample(t *testing.T) {
	compareWithDeploy(t, "overlays/example", nil)
}

// compareWithDeploy renders the chart with values into namespace acmezone and compares it
// with `kubectl kustomize deploy/<dir>`, with TestDefaultsRenderDeployExample's two
// normalisations; it returns the chart's objects.
func compareWithDeploy(t *testing.T, dir string, values map[string]any) map[key]object {
	t.Helper()
	want := kustomize(t, dir)
	got := mustRender(t, values, "acmezone")

	// 1. deploy/'s hashed settings ConfigMap and its references.
	var hashed []string
	for k := range want {
		if k.kind == "ConfigMap" && kustomizeHashed.MatchString(k.name) {
			hashed = append(hashed, k.name)
		}
	}
	if len(hashed) != 1 {
		t.Fatalf("deploy/%s: want one ConfigMap acmezone-settings-<hash>, found %q", dir, hashed)
	}
	renamed := map[key]object{}
	for _, o := range want {
		o = replaceStrings(o, hashed[0], "acmezone-settings").(object)
		renamed[keyOf(o)] = o
	}
	want = renamed
	settings := got.objects[key{"v1", "ConfigMap", "acmezone", "acmezone-settings"}]
	if settings == nil {
		t.Fatal("the chart renders no ConfigMap acmezone/acmezone-settings")
	}
	sum := settingsChecksum(t, settings)
	for _, name := range []string{"acmezone-controller", "acmezone-coredns"} {
		d := got.objects[key{"apps/v1", "Deployment", "acmezone", name}]
		if d == nil {
			t.Fatalf("the chart renders no Deployment acmezone/%s", name)
		}
		annotations, _ := get(d, "spec", "template", "metadata", "annotations").(map[string]any)
		if annotations["checksum/settings"] != sum {
			t.Errorf("Deployment %s: checksum/settings is %v, want %s (the sha256 of acmezone-settings' data, so that a change rolls the pods)", name, annotations["checksum/settings"], sum)
		}
		delete(annotations, "checksum/settings")
		if len(annotations) == 0 {
			delete(get(d, "spec", "template", "metadata").(map[string]any), "annotations")
		}
	}

	// 2. The Namespace.
	var namespaces []key
	for k := range want {
		if k.kind == "Namespace" {
			namespaces = append(namespaces, k)
			delete(want, k)
		}
	}
	if len(namespaces) != 1 || namespaces[0].name != "acmezone" {
		t.Errorf("deploy/%s: want one Namespace, acmezone, found %v", dir, namespaces)
	}

	compareObjects(t, "deploy/"+dir+" (kustomize)", want, "the chart", got.objects)
	return got.objects
}

// compareObjects reports every object only one side has and every object that differs, with a
// unified diff (- want, + got).
func compareObjects(t *testing.T, wantName string, want map[key]object, gotName string, got map[key]object) {
	t.Helper()
	var keys []key
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		w, inWant := want[k]
		g, inGot := got[k]
		switch {
		case !inGot:
			t.Errorf("%s: only %s has it; add it to the chart's templates", k, wantName)
		case !inWant:
			t.Errorf("%s: only %s has it; default values must not render it (put it behind a value that is off by default) or add it to deploy/", k, gotName)
		case !reflect.DeepEqual(w, g):
			t.Errorf("%s differs (- %s, + %s):\n%s", k, wantName, gotName, diff.Diff(w, g))
		}
	}
}

// replaceStrings returns v with every string equal to old replaced by new.
func replaceStrings(v any, old, new string) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = replaceStrings(e, old, new)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = replaceStrings(e, old, new)
		}
		return l
	case string:
		if v == old {
			return new
		}
	}
	return v
}

// settingsChecksum is what checksum/settings must be: the sha256 of the ConfigMap's data as the
// chart's helper acmezone.settings writes it (KEY: "value" lines in the order the chart lists
// them); recomputed here from the parsed data, so a change in the helper's output shows.
func settingsChecksum(t *testing.T, cm object) string {
	t.Helper()
	data, _ := get(cm, "data").(map[string]any)
	order := []string{"ACMEZONE_ZONE"}
	for i := 1; ; i++ {
		s := ""
		if i > 1 {
			s = fmt.Sprintf("_%d", i)
		}
		if _, ok := data["ACMEZONE_NAMESERVER"+s]; !ok {
			break
		}
		order = append(order, "ACMEZONE_NAMESERVER"+s, "ACMEZONE_NAMESERVER_ADDRESS"+s)
	}
	if len(order) != len(data) {
		t.Fatalf("acmezone-settings has keys %v; the chart writes %v", mapKeys(data), order)
	}
	var b strings.Builder
	for i, k := range order {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s: %q", k, data[k])
	}
	h := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(h[:])
}

func mapKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestCRDsAreDeploys: crds/ holds exactly deploy/crds' CRDs, byte for byte (`make generate`
// writes both; `make check-generated` fails when either is stale).
func TestCRDsAreDeploys(t *testing.T) {
	deployed, err := filepath.Glob(filepath.Join("..", "..", "deploy", "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for _, f := range deployed {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		if want[filepath.Base(f)], err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	charted, err := filepath.Glob(filepath.Join("crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, f := range charted {
		if got[filepath.Base(f)], err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) == 0 {
		t.Fatal("deploy/crds holds no CRD")
	}
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("charts/acmezone/crds/%s is missing: run make generate", name)
		case !bytes.Equal(g, w):
			t.Errorf("charts/acmezone/crds/%s differs from deploy/crds/%s: run make generate", name, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("charts/acmezone/crds/%s is not in deploy/crds: run make generate", name)
		}
	}
}

// TestLint runs Helm's linter (helm lint) with the default values and with every optional
// feature on; any error or warning fails.
func TestLint(t *testing.T) {
	for name, values := range map[string]map[string]any{"defaults": nil, "everything on": everythingOn()} {
		t.Run(name, func(t *testing.T) {
			kv := kubeVersion
			linter := lint.AllWithKubeVersion(".", values, "acmezone", &kv)
			for _, m := range linter.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}

// everythingOn sets a value of its own for what a user changes and turns every optional
// feature on. Its zone, name servers, images and replicas differ from the defaults, so that a
// value that does not land where it must shows.
func everythingOn() map[string]any {
	return map[string]any{
		"zone": "challenges.example.org",
		"nameservers": []any{
			map[string]any{"name": "ns1.example.org", "address": "192.0.2.53"},
			map[string]any{"name": "ns2.challenges.example.org", "address": "2001:db8::53"},
		},
		"commonLabels":     map[string]any{"team": "dns"},
		"imagePullSecrets": []any{map[string]any{"name": "registry-creds"}},
		"clusterDomain":    "corp.internal",
		"certManager":      map[string]any{"namespace": "certs", "serviceAccountName": "cm"},
		"tenancy":          map[string]any{"autoDelegate": false, "clusterResourceNamespace": "issuers"},
		"controller": map[string]any{
			"image":               map[string]any{"repository": "registry.example.org/acmezone/controller", "tag": "v9.8.7"},
			"replicas":            3,
			"extraArgs":           []any{"--resolver=192.0.2.1:53"},
			"podDisruptionBudget": map[string]any{"maxUnavailable": 1},
			"extraTopologySpreadConstraints": []any{map[string]any{
				"maxSkew": 2, "topologyKey": "example.org/rack", "whenUnsatisfiable": "DoNotSchedule",
			}},
			"podLabels":         map[string]any{"tier": "control"},
			"podAnnotations":    map[string]any{"example.org/owner": "dns"},
			"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
			"priorityClassName": "system-cluster-critical",
		},
		"coredns": map[string]any{
			"image": map[string]any{
				"repository": "registry.example.org/acmezone/coredns", "tag": "v9.8.7",
				"digest": "sha256:" + strings.Repeat("ab", 32), "pullPolicy": "Always",
			},
			"replicas":       5,
			"hostmaster":     "dns-admin.example.org",
			"resources":      map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "128Mi"}, "limits": map[string]any{"memory": "512Mi"}},
			"service":        map[string]any{"loadBalancerIP": "192.0.2.53", "externalTrafficPolicy": "Cluster", "annotations": map[string]any{"example.org/lb": "dns"}},
			"topologySpread": map[string]any{"whenUnsatisfiable": "DoNotSchedule"},
			"tolerations":    []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "dns", "effect": "NoSchedule"}},
		},
		"acmeDNS": map[string]any{
			"enabled": true, "registration": "10.0.0.0/8", "recordMaxAge": "2h",
			"trustedHeader": "X-Forwarded-For", "trustedProxies": []any{"10.1.0.0/16", "10.2.0.0/16"},
			"tls":             map[string]any{"secretName": "acme-dns-tls"},
			"externalService": map[string]any{"enabled": true, "loadBalancerSourceRanges": []any{"198.51.100.0/24"}},
		},
		"metrics": map[string]any{"serviceMonitor": map[string]any{
			"enabled": true, "labels": map[string]any{"release": "prometheus"},
			"prometheusServiceAccount": map[string]any{"name": "prometheus", "namespace": "monitoring"},
		}},
		"networkPolicy": map[string]any{"enabled": true},
	}
}

// expandArgs expands $(VAR) in a container's args from a ConfigMap's data, as the kubelet does
// for variables from envFrom; an unknown variable stays as it is (and fails the caller's check).
func expandArgs(args []any, data map[string]any) []string {
	re := regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`)
	var out []string
	for _, a := range args {
		out = append(out, re.ReplaceAllStringFunc(a.(string), func(m string) string {
			if v, ok := data[m[2:len(m)-1]].(string); ok {
				return v
			}
			return m
		}))
	}
	return out
}

// expandCorefile replaces {$VAR} as CoreDNS does with the pod's environment.
func expandCorefile(corefile string, data map[string]any) string {
	re := regexp.MustCompile(`\{\$([A-Z0-9_]+)\}`)
	return re.ReplaceAllStringFunc(corefile, func(m string) string {
		if v, ok := data[m[2:len(m)-1]].(string); ok {
			return v
		}
		return m
	})
}

func container(d object) object {
	cs := list(d, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		return nil
	}
	return cs[0].(object)
}

func hasAll(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("%s: %q missing from %q", what, w, got)
		}
	}
}

func hasNone(t *testing.T, what string, got []string, prefix string) {
	t.Helper()
	for _, g := range got {
		if strings.HasPrefix(g, prefix) {
			t.Errorf("%s: %q present, want no %s...", what, g, prefix)
		}
	}
}

// TestValuesLand renders everythingOn() into another namespace and checks that each value
// arrives where it takes effect: the zone and both name servers in the controller's expanded
// arguments and CoreDNS's expanded Corefile, images, replicas, tenancy flags, the acme-dns API
// over HTTPS with its external Service, ServiceMonitors, NetworkPolicies, PodDisruptionBudget
// and topology spread, labels and the namespace everywhere.
func TestValuesLand(t *testing.T) {
	const ns = "dns-system"
	r := mustRender(t, everythingOn(), ns)
	obj := func(apiVersion, kind, namespace, name string) object {
		t.Helper()
		o := r.objects[key{apiVersion, kind, namespace, name}]
		if o == nil {
			t.Fatalf("no %s %s/%s rendered", kind, namespace, name)
		}
		return o
	}

	settings := obj("v1", "ConfigMap", ns, "acmezone-settings")
	data, _ := get(settings, "data").(map[string]any)
	wantData := map[string]any{
		"ACMEZONE_ZONE":                 "challenges.example.org",
		"ACMEZONE_NAMESERVER":           "ns1.example.org",
		"ACMEZONE_NAMESERVER_ADDRESS":   "192.0.2.53",
		"ACMEZONE_NAMESERVER_2":         "ns2.challenges.example.org",
		"ACMEZONE_NAMESERVER_ADDRESS_2": "2001:db8::53",
	}
	if !reflect.DeepEqual(data, wantData) {
		t.Errorf("acmezone-settings data:\n%s", diff.Diff(wantData, data))
	}
	defaults := mustRender(t, nil, ns)
	sum := settingsChecksum(t, settings)
	if sum == settingsChecksum(t, defaults.objects[key{"v1", "ConfigMap", ns, "acmezone-settings"}]) {
		t.Error("checksum/settings does not change with the zone and name servers: the pods would not roll")
	}

	ctl := obj("apps/v1", "Deployment", ns, "acmezone-controller")
	dns := obj("apps/v1", "Deployment", ns, "acmezone-coredns")
	for _, d := range []object{ctl, dns} {
		name := str(d, "metadata", "name")
		if got := str(d, "spec", "template", "metadata", "annotations", "checksum/settings"); got != sum {
			t.Errorf("%s: checksum/settings %q, want %q", name, got, sum)
		}
		if env := list(container(d), "envFrom"); len(env) != 1 || str(env[0], "configMapRef", "name") != "acmezone-settings" {
			t.Errorf("%s: envFrom %v, want the ConfigMap acmezone-settings", name, get(container(d), "envFrom"))
		}
		if got := str(d, "metadata", "labels", "team"); got != "dns" {
			t.Errorf("%s: commonLabels not on the Deployment (team=%q)", name, got)
		}
		if got := list(d, "spec", "template", "spec", "imagePullSecrets"); len(got) != 1 || str(got[0], "name") != "registry-creds" {
			t.Errorf("%s: imagePullSecrets %v", name, got)
		}
	}

	// acmezone-controller: its arguments as the kubelet expands them.
	if got := get(ctl, "spec", "replicas"); got != float64(3) {
		t.Errorf("controller replicas %v, want 3", got)
	}
	if got := str(container(ctl), "image"); got != "registry.example.org/acmezone/controller:v9.8.7" {
		t.Errorf("controller image %q", got)
	}
	if got := get(container(ctl), "imagePullPolicy"); got != nil {
		t.Errorf("controller imagePullPolicy %v, want none (pullPolicy unset)", got)
	}
	args := expandArgs(list(container(ctl), "args"), data)
	hasAll(t, "controller args", args,
		"--zone=challenges.example.org",
		"--nameserver=ns1.example.org=192.0.2.53",
		"--nameserver=ns2.challenges.example.org=2001:db8::53",
		"--target-key-secret=dns-system/acmezone-target-key",
		"--leader-election-namespace=dns-system",
		"--auto-delegate=false",
		"--cluster-resource-namespace=issuers",
		"--acme-dns-listen=:8053",
		"--acme-dns-namespace=dns-system",
		"--acme-dns-registration=10.0.0.0/8",
		"--acme-dns-record-max-age=2h",
		"--acme-dns-server-url=https://acmezone-controller.dns-system.svc:8053",
		"--acme-dns-trusted-header=X-Forwarded-For",
		"--acme-dns-trusted-proxies=10.1.0.0/16,10.2.0.0/16",
		"--acme-dns-tls-cert=/acme-dns-tls/tls.crt",
		"--acme-dns-tls-key=/acme-dns-tls/tls.key",
		"--resolver=192.0.2.1:53",
	)
	for _, a := range args {
		if strings.Contains(a, "$(") {
			t.Errorf("controller arg %q names a variable acmezone-settings does not have", a)
		}
	}
	if got := str(ctl, "spec", "template", "metadata", "labels", "tier"); got != "control" {
		t.Errorf("controller podLabels: tier=%q", got)
	}
	if got := str(ctl, "spec", "template", "metadata", "annotations", "example.org/owner"); got != "dns" {
		t.Errorf("controller podAnnotations: example.org/owner=%q", got)
	}
	if got := str(ctl, "spec", "template", "spec", "nodeSelector", "kubernetes.io/os"); got != "linux" {
		t.Errorf("controller nodeSelector: %v", get(ctl, "spec", "template", "spec", "nodeSelector"))
	}
	if got := str(ctl, "spec", "template", "spec", "priorityClassName"); got != "system-cluster-critical" {
		t.Errorf("controller priorityClassName %q", got)
	}
	tsc := list(ctl, "spec", "template", "spec", "topologySpreadConstraints")
	if len(tsc) != 3 || str(tsc[2], "topologyKey") != "example.org/rack" ||
		str(tsc[2], "labelSelector", "matchLabels", "app.kubernetes.io/name") != "acmezone-controller" {
		t.Errorf("controller topologySpreadConstraints: want deploy/'s two and the extra one with the pods' labelSelector, got %v", tsc)
	}
	var mounted bool
	for _, v := range list(ctl, "spec", "template", "spec", "volumes") {
		mounted = mounted || str(v, "secret", "secretName") == "acme-dns-tls"
	}
	if !mounted {
		t.Error("controller: the Secret acmeDNS.tls.secretName is not a volume")
	}
	pdb := obj("policy/v1", "PodDisruptionBudget", ns, "acmezone-controller")
	if get(pdb, "spec", "maxUnavailable") != float64(1) || get(pdb, "spec", "minAvailable") != nil {
		t.Errorf("controller PodDisruptionBudget spec %v, want maxUnavailable 1 alone", get(pdb, "spec"))
	}

	// acmezone's CoreDNS: its Corefile as CoreDNS expands it.
	if got := get(dns, "spec", "replicas"); got != float64(5) {
		t.Errorf("coredns replicas %v, want 5", got)
	}
	if got := str(container(dns), "image"); got != "registry.example.org/acmezone/coredns:v9.8.7@sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("coredns image %q", got)
	}
	if got := str(container(dns), "imagePullPolicy"); got != "Always" {
		t.Errorf("coredns imagePullPolicy %q", got)
	}
	if got := str(container(dns), "resources", "limits", "memory"); got != "512Mi" {
		t.Errorf("coredns memory limit %q", got)
	}
	if got := list(dns, "spec", "template", "spec", "tolerations"); len(got) != 1 || str(got[0], "key") != "dedicated" {
		t.Errorf("coredns tolerations %v", got)
	}
	tsc = list(dns, "spec", "template", "spec", "topologySpreadConstraints")
	if len(tsc) != 2 || str(tsc[0], "whenUnsatisfiable") != "DoNotSchedule" || str(tsc[1], "whenUnsatisfiable") != "DoNotSchedule" {
		t.Errorf("coredns topologySpreadConstraints: want two with DoNotSchedule, got %v", tsc)
	}
	corefile := expandCorefile(str(obj("v1", "ConfigMap", ns, "acmezone-corefile"), "data", "Corefile"), data)
	for _, want := range []string{
		"challenges.example.org:53 {",
		"nameserver ns1.example.org 192.0.2.53\n",
		"nameserver ns2.challenges.example.org 2001:db8::53\n",
		"soa dns-admin.example.org 60 30 604800 5",
		"configmaps dns-system\n",
	} {
		if !strings.Contains(corefile, want) {
			t.Errorf("Corefile has no %q:\n%s", want, corefile)
		}
	}
	if strings.Contains(corefile, "{$") {
		t.Errorf("Corefile names a variable acmezone-settings does not have:\n%s", corefile)
	}
	svc := obj("v1", "Service", ns, "acmezone-coredns")
	if str(svc, "spec", "loadBalancerIP") != "192.0.2.53" || str(svc, "spec", "externalTrafficPolicy") != "Cluster" || str(svc, "metadata", "annotations", "example.org/lb") != "dns" {
		t.Errorf("Service acmezone-coredns: loadBalancerIP, externalTrafficPolicy or annotations not set: %v", svc)
	}

	// Cluster-wide objects and the webhook's PKI follow the namespace.
	if got := str(obj("apiregistration.k8s.io/v1", "APIService", "", "v1alpha1.solver.acmezone.io"), "metadata", "annotations", "cert-manager.io/inject-ca-from"); got != "dns-system/acmezone-webhook-tls" {
		t.Errorf("APIService inject-ca-from %q", got)
	}
	if got := list(obj("cert-manager.io/v1", "Certificate", ns, "acmezone-webhook-tls"), "spec", "dnsNames"); !reflect.DeepEqual(got, []any{"acmezone-controller.dns-system.svc", "acmezone-controller.dns-system.svc.corp.internal"}) {
		t.Errorf("webhook certificate dnsNames %v", got)
	}
	solver := list(obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "acmezone:solver"), "subjects")
	if len(solver) != 1 || str(solver[0], "name") != "cm" || str(solver[0], "namespace") != "certs" {
		t.Errorf("acmezone:solver subjects %v, want cert-manager's service account certs/cm", solver)
	}
	obj("rbac.authorization.k8s.io/v1", "Role", ns, "acmezone-controller:acme-dns")

	// The acme-dns API outside the cluster: HTTPS on 443.
	ext := obj("v1", "Service", ns, "acmezone-acme-dns")
	if p := list(ext, "spec", "ports"); str(ext, "spec", "type") != "LoadBalancer" || len(p) != 1 || get(p[0], "port") != float64(443) || str(p[0], "targetPort") != "acme-dns" {
		t.Errorf("Service acmezone-acme-dns: %v", get(ext, "spec"))
	}

	// Metrics: a ServiceMonitor per Deployment, selecting a Service whose port reaches the
	// container's metrics port.
	for _, d := range []object{ctl, dns} {
		name := str(d, "metadata", "name")
		sm := obj("monitoring.coreos.com/v1", "ServiceMonitor", ns, name)
		if got := str(sm, "metadata", "labels", "release"); got != "prometheus" {
			t.Errorf("ServiceMonitor %s: labels %v, want release=prometheus", name, get(sm, "metadata", "labels"))
		}
		ms := obj("v1", "Service", ns, name+"-metrics")
		for k, v := range get(sm, "spec", "selector", "matchLabels").(map[string]any) {
			if str(ms, "metadata", "labels", k) != v {
				t.Errorf("ServiceMonitor %s selects %s=%v; Service %s-metrics has %v", name, k, v, name, get(ms, "metadata", "labels"))
			}
		}
		if !reflect.DeepEqual(get(ms, "spec", "selector"), get(d, "spec", "selector", "matchLabels")) {
			t.Errorf("Service %s-metrics selects %v, not the Deployment's pods", name, get(ms, "spec", "selector"))
		}
		target := str(list(ms, "spec", "ports")[0], "targetPort")
		var found bool
		for _, p := range list(container(d), "ports") {
			found = found || str(p, "name") == target
		}
		if !found || str(list(get(sm, "spec", "endpoints"))[0], "port") != str(list(ms, "spec", "ports")[0], "name") {
			t.Errorf("ServiceMonitor %s does not reach a container port named %q", name, target)
		}
	}

	// The controller serves its metrics over HTTPS to clients the API server authorizes:
	// Prometheus scrapes with its token and is bound to acmezone:metrics-reader.
	ep := list(get(obj("monitoring.coreos.com/v1", "ServiceMonitor", ns, "acmezone-controller"), "spec", "endpoints"))[0]
	if str(ep, "scheme") != "https" || str(ep, "bearerTokenFile") == "" {
		t.Errorf("ServiceMonitor acmezone-controller scrapes %v; want https with the service account's token", ep)
	}
	hasAll(t, "controller args", args, "--metrics-secure=true")
	reader := list(obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "acmezone:metrics-reader"), "subjects")
	if len(reader) != 1 || str(reader[0], "name") != "prometheus" || str(reader[0], "namespace") != "monitoring" {
		t.Errorf("acmezone:metrics-reader subjects %v, want monitoring/prometheus", reader)
	}

	// NetworkPolicies: DNS and the webhook from anywhere, the acme-dns API from anywhere too
	// (it has an external Service).
	for name, ports := range map[string][]string{
		"acmezone-coredns":    {"UDP/53", "TCP/53", "TCP/9153"},
		"acmezone-controller": {"TCP/8443", "TCP/9402", "TCP/8053"},
	} {
		np := obj("networking.k8s.io/v1", "NetworkPolicy", ns, name)
		if got := str(np, "spec", "podSelector", "matchLabels", "app.kubernetes.io/name"); got != name {
			t.Errorf("NetworkPolicy %s selects %q", name, got)
		}
		admitted := map[string]bool{}
		anywhere := map[string]bool{}
		for _, rule := range list(np, "spec", "ingress") {
			for _, p := range list(rule, "ports") {
				k := fmt.Sprintf("%s/%v", str(p, "protocol"), get(p, "port"))
				admitted[k] = true
				anywhere[k] = get(rule, "from") == nil
			}
		}
		for _, p := range ports {
			if !admitted[p] {
				t.Errorf("NetworkPolicy %s does not admit %s", name, p)
			}
		}
		for _, p := range []string{"UDP/53", "TCP/53", "TCP/8443", "TCP/8053"} {
			if admitted[p] && !anywhere[p] {
				t.Errorf("NetworkPolicy %s admits %s from some peers only; want anywhere", name, p)
			}
		}
	}

	// Every templated object: commonLabels, and the release's namespace (or none, or
	// kube-system for the one RoleBinding deploy/ puts there).
	for _, k := range r.templated {
		o := r.objects[k]
		if str(o, "metadata", "labels", "team") != "dns" {
			t.Errorf("%s: no commonLabels", k)
		}
		if k.namespace != "" && k.namespace != ns && k != (key{"rbac.authorization.k8s.io/v1", "RoleBinding", "kube-system", "acmezone-controller:auth-reader"}) {
			t.Errorf("%s: namespace %q, want %q", k, k.namespace, ns)
		}
	}

	// NOTES.txt: the records to add, and how to print a domain's.
	for _, want := range []string{
		"ns1.example.org.  A   192.0.2.53",
		"ns2.challenges.example.org.  AAAA   2001:db8::53",
		"challenges.example.org.  NS  ns1.example.org.",
		"challenges.example.org.  NS  ns2.challenges.example.org.",
		"/acmezone-controller records DOMAIN",
		"--zone challenges.example.org --nameserver ns1.example.org=192.0.2.53 --nameserver ns2.challenges.example.org=2001:db8::53",
	} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("NOTES.txt has no %q:\n%s", want, r.notes)
		}
	}
	if strings.Contains(r.notes, "WARNING") {
		t.Errorf("NOTES.txt warns of example values that are not set:\n%s", r.notes)
	}
	if !strings.Contains(defaults.notes, "WARNING: zone and nameservers are still the example's") {
		t.Errorf("NOTES.txt does not warn that the default zone is the example's:\n%s", defaults.notes)
	}
}

// TestACMEDNSOff: without the acme-dns API nothing of it is rendered: no flag, no port, and no
// Secret rights outside the namespace (deploy/controller/acme-dns left out).
func TestACMEDNSOff(t *testing.T) {
	const ns = "acmezone"
	on := mustRender(t, nil, ns)
	off := mustRender(t, map[string]any{"acmeDNS": map[string]any{"enabled": false}}, ns)
	gone := map[key]bool{}
	for k := range on.objects {
		if _, ok := off.objects[k]; !ok {
			gone[k] = true
		}
	}
	wantGone := map[key]bool{
		{"rbac.authorization.k8s.io/v1", "ClusterRole", "", "acmezone-controller:acme-dns-secrets"}:        true,
		{"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "acmezone-controller:acme-dns-secrets"}: true,
		{"rbac.authorization.k8s.io/v1", "Role", ns, "acmezone-controller:acme-dns"}:                       true,
		{"rbac.authorization.k8s.io/v1", "RoleBinding", ns, "acmezone-controller:acme-dns"}:                true,
	}
	if !reflect.DeepEqual(gone, wantGone) {
		t.Errorf("objects gone with acmeDNS.enabled=false: %v, want the acme-dns RBAC: %v", gone, wantGone)
	}
	for _, k := range off.templated {
		for _, rule := range list(off.objects[k], "rules") {
			for _, res := range list(rule, "resources") {
				if res == "secrets" && k.kind == "ClusterRole" {
					t.Errorf("%s grants Secrets cluster-wide without the acme-dns API", k)
				}
			}
		}
	}
	ctl := container(off.objects[key{"apps/v1", "Deployment", ns, "acmezone-controller"}])
	var args []string
	for _, a := range list(ctl, "args") {
		args = append(args, a.(string))
	}
	hasNone(t, "controller args", args, "--acme-dns")
	for _, p := range list(ctl, "ports") {
		if str(p, "name") == "acme-dns" {
			t.Error("controller: port acme-dns without the API")
		}
	}
	for _, p := range list(off.objects[key{"v1", "Service", ns, "acmezone-controller"}], "spec", "ports") {
		if str(p, "name") == "acme-dns" {
			t.Error("Service acmezone-controller: port acme-dns without the API")
		}
	}
}

// TestBadValues: values that cannot work stop the render with a message naming the value to
// set (values.schema.json, or the chart's acmezone.validate where a rule spans two values).
func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   []string
	}{
		// --set zone=null, as a user who forgot it would have.
		{"no zone", map[string]any{"zone": nil}, []string{"missing property 'zone'"}},
		{"zone not a DNS name", map[string]any{"zone": "acme example"}, []string{"/zone", "'acme example' is not valid hostname"}},
		{"name server without address", map[string]any{"nameservers": []any{map[string]any{"name": "ns.example.com"}}},
			[]string{"/nameservers/0", "missing property 'address'"}},
		{"name server address not an IP", map[string]any{"nameservers": []any{map[string]any{"name": "ns.example.com", "address": "ns.example.net"}}},
			[]string{"/nameservers/0/address", "is not valid ipv4", "is not valid ipv6"}},
		{"no name server", map[string]any{"nameservers": []any{}}, []string{"/nameservers", "minItems"}},
		{"a typo", map[string]any{"zones": "acme.example.com"}, []string{"additional properties 'zones' not allowed"}},
		{"plain HTTP outside the cluster", map[string]any{"acmeDNS": map[string]any{"externalService": map[string]any{"enabled": true}}},
			[]string{"acmeDNS.tls.secretName is empty", "Set acmeDNS.tls.secretName"}},
		{"name server twice", map[string]any{"nameservers": []any{
			map[string]any{"name": "ns.example.com", "address": "192.0.2.1"},
			map[string]any{"name": "NS.example.com", "address": "192.0.2.2"},
		}}, []string{"nameservers[1].name \"NS.example.com\" is listed twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values, "acmezone")
			if err == nil {
				t.Fatal("rendered; want an error")
			}
			t.Logf("the error, as helm template would print it:\n%v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestServerDryRun applies the chart's objects, with the default values and with everything on
// (but the ServiceMonitors, whose CRD the test's API server does not have), with
// `kubectl apply --dry-run=server` to a real API server, as deploy/'s TestServerDryRun does for
// the kustomizations: it validates each object against its schema.
func TestServerDryRun(t *testing.T) {
	env := kubetest.Start(t, []string{"crds", kubetest.MustCertManagerCRDs(t)}, "acmezone", "dns-system", "cert-manager")
	for _, tc := range []struct {
		name, namespace string
		values          map[string]any
	}{
		{"defaults", "acmezone", nil},
		{"everything on", "dns-system", everythingOn()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values, tc.namespace)
			var manifest bytes.Buffer
			n := 0
			for _, k := range sortedKeys(r.objects) {
				if k.kind == "ServiceMonitor" {
					continue
				}
				b, err := yaml.Marshal(r.objects[k])
				if err != nil {
					t.Fatal(err)
				}
				manifest.WriteString("---\n")
				manifest.Write(b)
				n++
			}
			file := filepath.Join(t.TempDir(), "chart.yaml")
			if err := os.WriteFile(file, manifest.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(kubectl(t), "--kubeconfig", env.Kubeconfig, "apply", "--dry-run=server", "-f", file).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, out)
			}
			if applied := strings.Count(string(out), "(server dry run)"); applied != n {
				t.Errorf("%d objects rendered, %d accepted by the server:\n%s", n, applied, out)
			}
		})
	}
}

func sortedKeys(m map[key]object) []key {
	var ks []key
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].String() < ks[j].String() })
	return ks
}
