package stack

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	ctrlProc, err := cp.StartController(dir, filepath.Join(root, "bin", "acmezone-controller"), keyFile)
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
}
