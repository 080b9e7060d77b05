// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package controller

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

func testOptions(t *testing.T) *Options {
	t.Helper()
	k, err := v1alpha1.NewTargetKey([]byte("tenancy-tests-0123456789abcdef0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	return &Options{Zone: "acme.example.com.", TargetKey: k}
}

func del(ns, name, domain, specTarget string) *v1alpha1.Delegation {
	return &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.DelegationSpec{Domain: domain, Target: specTarget},
	}
}

// TestFindDelegation: lookups see the asking namespace only, match the resolved name by the
// rule's target (never by spec.target or status), fall back to the domain in its one
// canonical form, and skip Delegations being deleted.
func TestFindDelegation(t *testing.T) {
	o := testOptions(t)
	target := func(ns, domain string) string {
		t.Helper()
		tg, err := o.Target(del(ns, "", domain, ""))
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	shopT := target("shop", "example.com")
	squat := del("mallory", "squat", "example.com", shopT) // names shop's target: not its own
	squat.Status.Target = shopT
	gone := del("shop", "a-gone", "example.com", "")
	now := metav1.Now()
	gone.DeletionTimestamp = &now
	gone.Finalizers = []string{"test"}
	objs := []client.Object{
		del("shop", "z-example", "Example.COM.", ""),
		del("shop", "m-example", "example.com", ""),
		gone,
		del("shop", "other", "other.example", ""),
		squat,
		del("blog", "example", "example.com", ""),
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...)
	ctx := context.Background()
	if err := o.IndexDelegations(ctx, kubetest.BuilderIndexer{B: b}); err != nil {
		t.Fatal(err)
	}
	c := b.Build()

	for _, tc := range []struct {
		ns, domain, resolved string
		wantName, wantTarget string
		wantErr              bool
	}{
		// By domain: the first by name that is not being deleted, whatever its case or dot.
		{ns: "shop", domain: "EXAMPLE.com.", wantName: "m-example", wantTarget: shopT},
		// By the resolved name (cnameStrategy Follow), case-insensitive.
		{ns: "shop", domain: "example.com", resolved: strings.ToUpper(target("shop", "other.example")), wantName: "other", wantTarget: target("shop", "other.example")},
		// A resolved name that is no target of the namespace: the domain answers.
		{ns: "shop", domain: "example.com", resolved: "_acme-challenge.example.com.", wantName: "m-example", wantTarget: shopT},
		// blog asks with shop's target: not found there; its own Delegation for the domain is.
		{ns: "blog", domain: "example.com", resolved: shopT, wantName: "example", wantTarget: target("blog", "example.com")},
		// mallory's spec.target names shop's: found by domain, with the rule's error, never at shopT.
		{ns: "mallory", domain: "example.com", resolved: shopT, wantName: "squat", wantErr: true},
		// A namespace with nothing.
		{ns: "empty", domain: "example.com", resolved: shopT},
	} {
		d, got, err := o.FindDelegation(ctx, c, tc.ns, tc.domain, tc.resolved)
		name := ""
		if d != nil {
			name = d.Name
			if d.Namespace != tc.ns {
				t.Errorf("FindDelegation(%s, %s, %s) returned %s/%s from another namespace", tc.ns, tc.domain, tc.resolved, d.Namespace, d.Name)
			}
		}
		if name != tc.wantName || got != tc.wantTarget || (err != nil) != tc.wantErr {
			t.Errorf("FindDelegation(%s, %s, %s) = %q, %q, %v; want %q, %q, error %v", tc.ns, tc.domain, tc.resolved, name, got, err, tc.wantName, tc.wantTarget, tc.wantErr)
		}
	}

	if d, err := o.DelegationAt(ctx, c, "shop", shopT); err != nil || d == nil || d.Name != "m-example" {
		t.Errorf("DelegationAt(shop, shop's target) = %v, %v; want shop/m-example", d, err)
	}
	if d, err := o.DelegationAt(ctx, c, "mallory", shopT); err != nil || d != nil {
		t.Errorf("DelegationAt(mallory, shop's target) = %v, %v; want none: mallory's spec.target is not its own", d, err)
	}
	// A second registration on the same indexer is a no-op, not controller-runtime's conflict.
	if err := o.IndexDelegations(ctx, kubetest.BuilderIndexer{B: b}); err != nil {
		t.Errorf("second IndexDelegations: %v", err)
	}
}
