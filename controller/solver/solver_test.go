package solver

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// startAPIServer runs a real kube-apiserver and etcd with the acmezone CRDs.
func startAPIServer(t *testing.T) client.Client {
	t.Helper()
	return kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds")}, "shop", "blog", "mallory").Client
}

func delegation(ns, name, domain, specTarget, statusTarget string) *v1alpha1.Delegation {
	return &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.DelegationSpec{Domain: domain, Target: specTarget},
		Status:     v1alpha1.DelegationStatus{Target: statusTarget},
	}
}

func create(t *testing.T, c client.Client, d *v1alpha1.Delegation) {
	t.Helper()
	ctx := context.Background()
	status := d.Status
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if status.Target != "" {
		d.Status = status
		if err := c.Status().Update(ctx, d); err != nil {
			t.Fatal(err)
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

const (
	shopTarget = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	blogTarget = "0f6bd0c2-7e8e-4a4e-a0a5-2b7d1f1b9c11.acme.example.com."
	keyApex    = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	keyWild    = "Zk3vYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX1"
)

func TestPresentCleanUp(t *testing.T) {
	c := startAPIServer(t)
	s := &Solver{Client: c}
	create(t, c, delegation("shop", "example-com", "example.com", "", shopTarget))

	// cert-manager's default cnameStrategy None: the resolved name is _acme-challenge.<domain>,
	// found by domain; the record goes to the Delegation's target.
	apex := &whapi.ChallengeRequest{UID: "uid-apex", ResourceNamespace: "shop", DNSName: "example.com", ResolvedFQDN: "_acme-challenge.example.com.", Key: keyApex}
	// cnameStrategy Follow: the resolved name is the target itself.
	wild := &whapi.ChallengeRequest{UID: "uid-wild", ResourceNamespace: "shop", DNSName: "example.com", ResolvedFQDN: strings.ToUpper(shopTarget), Key: keyWild}
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
	if rec.Labels[ChallengeUIDLabel] != "uid-apex" || rec.Annotations[v1alpha1.CreatedAtAnnotation] == "" {
		t.Errorf("record labels %v annotations %v: want the challenge UID and the creation time", rec.Labels, rec.Annotations)
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
}

func TestRefusals(t *testing.T) {
	c := startAPIServer(t)
	create(t, c, delegation("shop", "example-com", "example.com", "", shopTarget))
	time.Sleep(1100 * time.Millisecond) // whole-second creation timestamps: make the next ones younger
	create(t, c, delegation("blog", "blog-example", "blog.example", "", blogTarget))
	// mallory claims shop's target in spec only, and example.com itself.
	create(t, c, delegation("mallory", "steal", "example.com", shopTarget, ""))
	// blog's second Delegation is the newer one for a domain delegated elsewhere.
	dup := delegation("blog", "dup", "dup.example", "", "5a1f2c3d-0000-4000-8000-000000000001.acme.example.com.")
	create(t, c, dup)
	meta.SetStatusCondition(&dup.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionConflict, Status: metav1.ConditionTrue,
		Reason: "DomainDelegated", Message: "dup.example is delegated in namespace shop"})
	if err := c.Status().Update(context.Background(), dup); err != nil {
		t.Fatal(err)
	}

	for i, tc := range []struct {
		auto    bool
		ch      *whapi.ChallengeRequest
		errWant string
	}{
		// Namespace B (blog) asks for namespace A's (shop's) target: no Delegation of its own.
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "blog", DNSName: "example.com", ResolvedFQDN: shopTarget, Key: keyApex},
			errWant: "no Delegation for example.com in namespace blog; example.com is delegated in namespace shop (Delegation shop/example-com)"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "blog", DNSName: "new.example", ResolvedFQDN: "_acme-challenge.new.example.", Key: keyApex},
			errWant: "no Delegation for new.example in namespace blog; create one"},
		{auto: true, ch: &whapi.ChallengeRequest{ResourceNamespace: "blog", DNSName: "new.example", ResolvedFQDN: "_acme-challenge.new.example.", Key: keyApex},
			errWant: "auto-delegation is on"},
		// mallory has a Delegation naming shop's target, but shop's claim is confirmed.
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "mallory", DNSName: "example.com", ResolvedFQDN: shopTarget, Key: keyApex},
			errWant: "belongs to Delegation shop/example-com, not to namespace mallory"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "mallory", DNSName: "example.com", ResolvedFQDN: "_acme-challenge.example.com.", Key: keyApex},
			errWant: "belongs to Delegation shop/example-com"},
		// A Delegation in conflict is not written for.
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "blog", DNSName: "dup.example", ResolvedFQDN: "_acme-challenge.dup.example.", Key: keyApex},
			errWant: "is in conflict: dup.example is delegated in namespace shop"},
		// Unknown domain.
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "unknown.example", ResolvedFQDN: "_acme-challenge.unknown.example.", Key: keyApex},
			errWant: "no Delegation for unknown.example in namespace shop"},
		// Malformed payloads and invalid keys.
		{ch: nil, errWant: "empty challenge request"},
		{ch: &whapi.ChallengeRequest{DNSName: "example.com", Key: keyApex}, errWant: "no resourceNamespace"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", Key: keyApex}, errWant: "names no domain"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: ""}, errWant: "printable ASCII"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: "line\nbreak"}, errWant: "printable ASCII"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: strings.Repeat("k", 256)}, errWant: "printable ASCII"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "exa mple..com", Key: keyApex}, errWant: "is not a domain name"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: keyApex, Config: &apiextensionsv1.JSON{Raw: []byte(`{"zone":"x"}`)}}, errWant: "takes no config"},
		{ch: &whapi.ChallengeRequest{ResourceNamespace: "shop", DNSName: "example.com", Key: keyApex, Config: &apiextensionsv1.JSON{Raw: []byte(`[1,`)}}, errWant: "not a JSON object"},
	} {
		s := &Solver{Client: c, AutoDelegate: tc.auto}
		for _, op := range []func(*whapi.ChallengeRequest) error{s.Present, s.CleanUp} {
			err := op(tc.ch)
			if err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Errorf("Test %d: error %v, want one containing %q", i, err, tc.errWant)
			}
		}
		if got := records(t, c); len(got) != 0 {
			t.Fatalf("Test %d: a refused request wrote %v", i, got)
		}
	}
}
