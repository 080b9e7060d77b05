// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package solver

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// testEnv is a real kube-apiserver and etcd with the acmezone CRDs: c reads it uncached (to
// see what it holds), cached is the client a Solver initialized on it reads with.
type testEnv struct {
	c, cached client.Client
}

// startAPIServer starts the API server and a Solver's cache of it (Initialize without a
// client, as cert-manager's webhook server calls it).
func startAPIServer(t *testing.T) *testEnv {
	t.Helper()
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds")}, "shop", "blog", "mallory")
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	s := &Solver{Options: testOptions}
	if err := s.Initialize(env.Config, stop); err != nil {
		t.Fatal(err)
	}
	return &testEnv{c: env.Client, cached: s.Client}
}

// solver is a Solver with opts that reads through e's cache.
func (e *testEnv) solver(opts *controller.Options) *Solver {
	return &Solver{Client: e.cached, Options: opts}
}

func delegation(ns, name, domain, specTarget, statusTarget string) *v1alpha1.Delegation {
	return &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.DelegationSpec{Domain: domain, Target: specTarget},
		Status:     v1alpha1.DelegationStatus{Target: statusTarget},
	}
}

var testOptions = func() *controller.Options {
	k, err := v1alpha1.NewTargetKey([]byte("solver-tests-0123456789abcdef0123456789"))
	if err != nil {
		panic(err)
	}
	return &controller.Options{Zone: "acme.example.com.", TargetKey: k}
}()

// own is the target of namespace for domain.
func own(ns, domain string) string {
	t, err := testOptions.Target(delegation(ns, "", domain, "", ""))
	if err != nil {
		panic(err)
	}
	return t
}

// create creates d (and writes its status) and waits until the solvers' cache has it.
func create(t *testing.T, e *testEnv, d *v1alpha1.Delegation) {
	t.Helper()
	ctx := context.Background()
	status := d.Status
	if err := e.c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if status.Target != "" {
		d.Status = status
		if err := e.c.Status().Update(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var got v1alpha1.Delegation
		err := e.cached.Get(ctx, client.ObjectKeyFromObject(d), &got)
		if err == nil && got.ResourceVersion == d.ResourceVersion {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the solver's cache does not have Delegation %s/%s at resourceVersion %s after 10 s (%v)", d.Namespace, d.Name, d.ResourceVersion, err)
		}
	}
}

func records(t *testing.T, c client.Client) []string {
	t.Helper()
	var list v1alpha1.ChallengeRecordList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range list.Items {
		out = append(out, r.Namespace+"/"+r.Spec.FQDN+"="+r.Spec.Value)
	}
	return out
}

var shopTarget = own("shop", "example.com")

const (
	keyApex = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	keyWild = "Zk3vcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX1"
)

func TestPresentCleanUp(t *testing.T) {
	e := startAPIServer(t)
	c, s := e.c, e.solver(testOptions)
	// cert-manager's requests carry no Challenge UID; the solver looks the Challenge up by key
	// (challenge.UIDByKey on the manager's cache in the controller).
	s.ChallengeUID = func(_ context.Context, key, dnsName string) (types.UID, error) {
		if dnsName != "example.com" {
			return "", nil
		}
		return map[string]types.UID{keyApex: "uid-apex", keyWild: "uid-wild"}[key], nil
	}
	// status.target is only shown: the solver computes the target, whatever status says.
	create(t, e, delegation("shop", "example-com", "example.com", "", "0f6bd0c2-7e8e-4a4e-a0a5-2b7d1f1b9c11.acme.example.com."))

	// cert-manager's default cnameStrategy None: the resolved name is _acme-challenge.<domain>,
	// found by domain; the record goes to the Delegation's target.
	apex := &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", ResolvedFQDN: "_acme-challenge.example.com.", Key: keyApex}
	// cnameStrategy Follow: the resolved name is the target itself.
	wild := &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", ResolvedFQDN: strings.ToUpper(shopTarget), Key: keyWild}
	presented := testutil.ToFloat64(requests.WithLabelValues("present", ResultSuccess))
	cleaned := testutil.ToFloat64(requests.WithLabelValues("cleanup", ResultSuccess))
	timed := histogramCount(t, "present")
	for _, ch := range []*whapi.ChallengeRequest{apex, apex, wild} {
		if err := s.Present(ch); err != nil {
			t.Fatalf("Present(%s): %v", ch.Key, err)
		}
	}
	got := records(t, c)
	if len(got) != 2 || !slices.Contains(got, "shop/"+shopTarget+"="+keyApex) || !slices.Contains(got, "shop/"+shopTarget+"="+keyWild) {
		t.Fatalf("after three Presents (one repeated): %v, want exactly the two keys at shop's target", got)
	}
	var rec v1alpha1.ChallengeRecord
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: v1alpha1.ChallengeRecordName(shopTarget, keyApex)}, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Labels[ChallengeUIDLabel] != "uid-apex" || rec.Annotations[v1alpha1.CreatedAtAnnotation] == "" || rec.Annotations[v1alpha1.DomainAnnotation] != "example.com" {
		t.Errorf("record labels %v annotations %v: want the UID of the Challenge with its key, the creation time and the domain", rec.Labels, rec.Annotations)
	}

	// CleanUp of one key keeps the other (apex and wildcard share the name).
	if err := s.CleanUp(wild); err != nil {
		t.Fatal(err)
	}
	if got := records(t, c); len(got) != 1 || got[0] != "shop/"+shopTarget+"="+keyApex {
		t.Errorf("after CleanUp of the wildcard key: %v, want only the apex key", got)
	}
	// CleanUp twice is fine.
	for range 2 {
		if err := s.CleanUp(apex); err != nil {
			t.Fatal(err)
		}
	}
	if got := records(t, c); len(got) != 0 {
		t.Errorf("after CleanUp of both: %v, want none", got)
	}
	// The metrics: three successful Presents (a repeat succeeds), three CleanUps, each timed.
	if got := testutil.ToFloat64(requests.WithLabelValues("present", ResultSuccess)) - presented; got != 3 {
		t.Errorf("acmezone_solver_requests_total{action=present,result=success} rose by %v, want 3", got)
	}
	if got := testutil.ToFloat64(requests.WithLabelValues("cleanup", ResultSuccess)) - cleaned; got != 3 {
		t.Errorf("acmezone_solver_requests_total{action=cleanup,result=success} rose by %v, want 3", got)
	}
	if got := histogramCount(t, "present") - timed; got != 3 {
		t.Errorf("acmezone_solver_request_duration_seconds{action=present} counted %d calls, want 3", got)
	}
}

// histogramCount is how many calls of action acmezone_solver_request_duration_seconds has timed.
func histogramCount(t *testing.T, action string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := duration.WithLabelValues(action).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestRefusals: the solver writes only at the requesting namespace's own target, and its
// refusals say nothing about other namespaces.
func TestRefusals(t *testing.T) {
	e := startAPIServer(t)
	c := e.c
	create(t, e, delegation("shop", "example-com", "example.com", "", ""))
	// mallory names shop's target in spec.target, even with shop's status.
	create(t, e, delegation("mallory", "steal", "steal.example", shopTarget, shopTarget))
	// mallory copies shop's proof of a proved target: bound to shop.
	legacy := "5e0c1d2a-7b3f-4e8d-9a6c-0f1e2d3c4b5a.acme.example.com."
	copied := delegation("mallory", "copied", "example.com", legacy, "")
	copied.Annotations = map[string]string{v1alpha1.TargetProofAnnotation: testOptions.TargetKey.Proof("shop", "example.com", legacy)}
	create(t, e, copied)

	for i, tc := range []struct {
		auto    bool
		ch      *whapi.ChallengeRequest
		errWant string
		result  string // the metrics' result label; ResultInvalid when empty
	}{
		// blog asks for shop's target: it has no Delegation of its own, and learns nothing of shop.
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "blog", DNSName: "example.com", ResolvedFQDN: shopTarget, Key: keyApex},
			errWant: "no Delegation for example.com in namespace blog; create one", result: ResultNoDelegation},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "blog", DNSName: "new.example", ResolvedFQDN: "_acme-challenge.new.example.", Key: keyApex},
			errWant: "no Delegation for new.example in namespace blog; create one", result: ResultNoDelegation},
		{auto: true, ch: &whapi.ChallengeRequest{ResourceNamespace: "blog", DNSName: "new.example", ResolvedFQDN: "_acme-challenge.new.example.", Key: keyApex},
			errWant: "auto-delegation is on", result: ResultNoDelegation},
		// mallory's spec.target names shop's target: no target at all.
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "mallory", DNSName: "steal.example", ResolvedFQDN: shopTarget, Key: keyApex},
			errWant: "Delegation mallory/steal for steal.example has no target: spec.target is not this namespace's own", result: ResultNotReady},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "mallory", DNSName: "example.com", ResolvedFQDN: "_acme-challenge.example.com.", Key: keyApex},
			errWant: "Delegation mallory/copied for example.com has no target: spec.target is not this namespace's own", result: ResultNotReady},
		// Unknown domain.
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "unknown.example", ResolvedFQDN: "_acme-challenge.unknown.example.", Key: keyApex},
			errWant: "no Delegation for unknown.example in namespace shop", result: ResultNoDelegation},
		// Malformed payloads and invalid keys.
		{ch: nil, errWant: "empty challenge request"},
		{ch: &whapi.ChallengeRequest{DNSName: "example.com", Key: keyApex}, errWant: "no resourceNamespace"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", Key: keyApex}, errWant: "names no domain"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: ""}, errWant: "43 characters of base64url"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: keyApex[:42] + "\n"}, errWant: "43 characters of base64url"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: keyApex + "A"}, errWant: "43 characters of base64url"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: keyApex[:42] + "="}, errWant: "43 characters of base64url"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "exa mple..com", Key: keyApex}, errWant: "is not a domain name"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: keyApex, Config: &apiextensionsv1.JSON{Raw: []byte(`{"zone":"x"}`)}}, errWant: "takes no config"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: keyApex, Config: &apiextensionsv1.JSON{Raw: []byte(`[1,`)}}, errWant: "not a JSON object"},
	} {
		opts := *testOptions
		opts.AutoDelegate = tc.auto
		s := e.solver(&opts)
		result := cmp.Or(tc.result, ResultInvalid)
		for action, op := range map[string]func(*whapi.ChallengeRequest) error{"present": s.Present, "cleanup": s.CleanUp} {
			before := testutil.ToFloat64(requests.WithLabelValues(action, result))
			err := op(tc.ch)
			if got := testutil.ToFloat64(requests.WithLabelValues(action, result)) - before; got != 1 {
				t.Errorf("Test %d: %s counted %v times as %s, want once", i, action, got, result)
			}
			if err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Errorf("Test %d: error %v, want one containing %q", i, err, tc.errWant)
			}
			if err != nil && strings.Contains(err.Error(), "shop") && tc.ch != nil && tc.ch.ResourceNamespace != "shop" {
				t.Errorf("Test %d: the refusal names namespace shop: %v", i, err)
			}
		}
		if got := records(t, c); len(got) != 0 {
			t.Fatalf("Test %d: a refused request wrote %v", i, got)
		}
	}

	// A squatter's own Delegation for shop's domain is served at its own target only.
	create(t, e, delegation("blog", "example-com", "example.com", "", shopTarget))
	s := e.solver(testOptions)
	if err := s.Present(&whapi.ChallengeRequest{ResourceNamespace: "blog", DNSName: "example.com", ResolvedFQDN: "_acme-challenge.example.com.", Key: keyApex}); err != nil {
		t.Fatal(err)
	}
	if got, want := records(t, c), []string{"blog/" + own("blog", "example.com") + "=" + keyApex}; !slices.Equal(got, want) {
		t.Errorf("blog's Present wrote %v, want %v (never shop's %s)", got, want, shopTarget)
	}
}
