// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// TestWebhookThroughAggregator calls the solver the way cert-manager does: a ChallengePayload
// POSTed to kube-apiserver, proxied by the aggregation layer to bin/acmezone-controller.
func TestWebhookThroughAggregator(t *testing.T) {
	kubetest.NeedControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cmCRDs, err := kubetest.CertManagerCRDs()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := StartControlPlane(dir, filepath.Join(root, "deploy", "crds"), cmCRDs)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()

	keyFile, targetKey, err := WriteTargetKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Verbose JSON logs (the reconcilers' V(1) lines through the webhook library's klog) and
	// the metrics served as deploy/ serves them: HTTPS, authenticated and authorized.
	metricsAddr := cp.WebhookIP + ":9402"
	ctrlProc, err := cp.StartController(dir, filepath.Join(root, "bin", "acmezone-controller"), keyFile,
		"-v=1", "--logging-format=json", "--metrics-bind-address="+metricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctrlProc.Stop()
		if t.Failed() {
			t.Logf("acmezone-controller log:\n%s", tail(ctrlProc.Logs(), 80))
		}
	}()
	if err := cp.RegisterWebhook(ctx); err != nil {
		t.Fatal(err)
	}

	scheme := k8sruntime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	target, err := targetKey.Target(v1alpha1.TargetClaim{Namespace: "shop", Domain: "example.com"}, "acme.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	// The solver reads Delegations from the controller's cache. A Present sent before the cache
	// holds the new Delegation is refused ("no Delegation"), and cert-manager would retry it;
	// this test calls once, so it waits until the reconciler has given the Delegation its
	// target: the cache has seen it by then.
	if got := WaitDelegation(t, c, "shop", "example.com"); got.Status.Target != target {
		t.Fatalf("Delegation's target %q, want %q", got.Status.Target, target)
	}

	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	call := func(action whapi.ChallengeAction, ns, key string) *whapi.ChallengeResponse {
		t.Helper()
		body, _ := json.Marshal(&whapi.ChallengePayload{
			// cert-manager sends its own webhook API version whatever the solver group is.
			TypeMeta: metav1.TypeMeta{APIVersion: "webhook.acme.cert-manager.io/v1alpha1", Kind: "ChallengePayload"},
			Request: &whapi.ChallengeRequest{
				UID: "uid-1", Action: action, Type: "dns-01", DNSName: "example.com", Key: key,
				ResourceNamespace: ns, ResolvedFQDN: "_acme-challenge.example.com.", ResolvedZone: "example.com.",
			},
		})
		raw, err := cs.CoreV1().RESTClient().Post().AbsPath("/apis/solver.acmezone.io/v1alpha1/acmezone").
			SetHeader("Content-Type", "application/json").Body(body).DoRaw(ctx)
		if err != nil {
			t.Fatalf("POST ChallengePayload through the aggregator: %v\n%s", err, raw)
		}
		var resp whapi.ChallengePayload
		if err := json.Unmarshal(raw, &resp); err != nil || resp.Response == nil {
			t.Fatalf("response %s: %v", raw, err)
		}
		return resp.Response
	}

	key := "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	if r := call(whapi.ChallengeActionPresent, "shop", key); !r.Success {
		t.Fatalf("Present failed: %+v", r.Result)
	}
	var rec v1alpha1.ChallengeRecord
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: v1alpha1.ChallengeRecordName(target, key)}, &rec); err != nil {
		t.Fatalf("the record Present should have written: %v", err)
	}
	Eventually(t, 30*time.Second, "the record's status Served=True", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(&rec), &rec); err != nil {
			return false, err.Error()
		}
		cond := meta.FindStatusCondition(rec.Status.Conditions, v1alpha1.ConditionServed)
		return cond != nil && cond.Status == metav1.ConditionTrue, fmt.Sprint(cond)
	})
	// Another namespace is refused, with the reason cert-manager shows in the Challenge.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mallory"}}); err != nil {
		t.Fatal(err)
	}
	if r := call(whapi.ChallengeActionPresent, "mallory", "Zk3vcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX1"); r.Success || r.Result == nil {
		t.Errorf("Present from namespace mallory succeeded: %+v", r)
	} else {
		t.Logf("refusal shown to cert-manager: %s", r.Result.Message)
	}
	if r := call(whapi.ChallengeActionCleanUp, "shop", key); !r.Success {
		t.Fatalf("CleanUp failed: %+v", r.Result)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(&rec), &rec); err == nil {
		t.Error("the record is still there after CleanUp")
	}

	// One logging system: controller-runtime's reconcilers log through klog, so -v=1 shows the
	// Delegation reconciler's V(1) line, in the --logging-format asked for.
	if !slices.ContainsFunc(strings.Split(ctrlProc.Logs(), "\n"), func(l string) bool {
		var line struct{ Msg, Domain string }
		return json.Unmarshal([]byte(l), &line) == nil && line.Msg == "checked" && line.Domain == "example.com"
	}) {
		t.Error(`no JSON log line {"msg":"checked","domain":"example.com"} from the Delegation reconciler at -v=1`)
	}
	metricsServed(t, ctx, cs, metricsAddr)
}

// metricsServed scrapes acmezone-controller's metrics at addr as Prometheus would: refused
// without a token and with one the API server does not authorize, served with one bound to
// deploy/'s ClusterRole acmezone:metrics-reader, and showing the Present and CleanUp made.
func metricsServed(t *testing.T, ctx context.Context, cs kubernetes.Interface, addr string) {
	t.Helper()
	var reader rbacv1.ClusterRole
	for doc := range strings.SplitSeq(readFile(t, filepath.Join(root, "deploy", "controller", "rbac.yaml")), "\n---\n") {
		var o rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &o); err == nil && o.Kind == "ClusterRole" && o.Name == "acmezone:metrics-reader" {
			reader = o
		}
	}
	if reader.Name == "" {
		t.Fatal("deploy/controller/rbac.yaml has no ClusterRole acmezone:metrics-reader")
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &reader, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func(name string) string {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	// Two service accounts: the filter caches a refusal for 30 s, so the one refused is not
	// the one bound afterwards.
	stranger, prometheus := token("stranger"), token("prometheus")
	// The serving certificate is self-signed (no --metrics-cert-dir).
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET https://%s/metrics: %v", addr, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("metrics without a token: %d, want 401", code)
	}
	if code, _ := get(stranger); code != http.StatusForbidden {
		t.Errorf("metrics with the token of a service account without acmezone:metrics-reader: %d, want 403", code)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-acmezone"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "default", Name: "prometheus"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var code int
	var body string
	Eventually(t, 30*time.Second, "metrics served to the service account bound to acmezone:metrics-reader", func() (bool, string) {
		code, body = get(prometheus)
		return code == http.StatusOK, fmt.Sprint(code)
	})
	for _, series := range []string{
		`acmezone_solver_requests_total{action="present",result="success"} 1`,
		`acmezone_solver_requests_total{action="present",result="no_delegation"} 1`,
		`acmezone_solver_requests_total{action="cleanup",result="success"} 1`,
		`acmezone_solver_request_duration_seconds_count{action="present"} 2`,
		`acmezone_delegation_checks_total{reason=`,
		`acmezone_delegation_verified{domain="example.com",name="example.com",namespace="shop"} `,
		`controller_runtime_reconcile_total{controller="delegation"`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("the metrics have no %s", series)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
