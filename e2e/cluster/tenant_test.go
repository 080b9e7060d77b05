// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build cluster

package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// tenantWithEdit: a user with nothing but Kubernetes' own ClusterRole edit in one namespace
// uses acmezone through the ClusterRoles deploy/ aggregates into edit and view
// (deploy/controller/tenant-roles.yaml): creates a Delegation and reads its status and
// ChallengeRecords there, and can neither read another namespace's nor write what the
// controller writes (status, ChallengeRecords). kube-controller-manager's
// clusterrole-aggregation controller does the aggregating, as in any cluster.
func (e *env) tenantWithEdit(t *testing.T) {
	ctx := context.Background()
	const ns, user = "tenant-alice", "alice"
	if err := e.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-edit"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	if err := e.client.Create(ctx, rb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(e.c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	alice, err := client.New(cfg, client.Options{Scheme: kubetest.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	// The aggregation controller adds acmezone's rules to edit within seconds of the install.
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice.example"},
		Spec:       v1alpha1.DelegationSpec{Domain: "alice.example"},
	}
	eventually(t, time.Minute, "alice (edit in "+ns+") creates a Delegation", func() (bool, string) {
		err := alice.Create(ctx, d)
		return err == nil || apierrors.IsAlreadyExists(err), fmt.Sprint(err)
	})
	eventually(t, time.Minute, "alice reads her Delegation's target", func() (bool, string) {
		err := alice.Get(ctx, client.ObjectKeyFromObject(d), d)
		return err == nil && d.Status.Target != "", fmt.Sprint(err, " target ", d.Status.Target)
	})
	var own v1alpha1.ChallengeRecordList
	if err := alice.List(ctx, &own, client.InNamespace(ns)); err != nil {
		t.Errorf("alice lists the ChallengeRecords of %s: %v", ns, err)
	}
	d.Spec.Target = "" // an update of her own Delegation
	if err := alice.Update(ctx, d); err != nil {
		t.Errorf("alice updates her Delegation: %v", err)
	}

	// What she must not do, each refused by the API server as Forbidden.
	other := stack.ClusterResourceNamespace
	forbidden := map[string]error{
		"list Delegations in " + other:      alice.List(ctx, &v1alpha1.DelegationList{}, client.InNamespace(other)),
		"list ChallengeRecords in " + other: alice.List(ctx, &v1alpha1.ChallengeRecordList{}, client.InNamespace(other)),
		"list Delegations cluster-wide":     alice.List(ctx, &v1alpha1.DelegationList{}),
		"create a Delegation in " + other:   alice.Create(ctx, &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "alice.example"}, Spec: v1alpha1.DelegationSpec{Domain: "alice.example"}}),
		"create a ChallengeRecord in " + ns: alice.Create(ctx, v1alpha1.NewChallengeRecord(ns, d.Status.Target, "alice-writes-her-own-value")),
		"update her Delegation's status":    alice.Status().Update(ctx, d),
		"read the target key Secret":        alice.Get(ctx, client.ObjectKey{Namespace: "acmezone", Name: "acmezone-target-key"}, &corev1.Secret{}),
	}
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("alice could %s: %v, want Forbidden", what, err)
		}
	}
	if err := e.client.Delete(ctx, d); err != nil {
		t.Error(err)
	}
}
