// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package challenge

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// TestServed: a ChallengeRecord's Served condition follows the Delegations of its namespace,
// both ways, and a record at another namespace's target is not served and is told nothing
// about that namespace.
func TestServed(t *testing.T) {
	c, ctx := startServed(t)

	shopTarget := own("shop", "example.com")
	mine := v1alpha1.NewChallengeRecord("shop", shopTarget, "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
	theirs := v1alpha1.NewChallengeRecord("blog", shopTarget, "Zk3vcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX1")
	for _, r := range []*v1alpha1.ChallengeRecord{mine, theirs} {
		if err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	served := func(r *v1alpha1.ChallengeRecord, status metav1.ConditionStatus, reason string) func() bool {
		return servedIs(ctx, c, r, status, reason)
	}
	waitFor(t, "shop's record Served=False before its Delegation exists", served(mine, metav1.ConditionFalse, ReasonNotOwnTarget))
	waitFor(t, "blog's record Served=False", served(theirs, metav1.ConditionFalse, ReasonNotOwnTarget))

	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example-com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "shop's record Served=True once the Delegation exists", served(mine, metav1.ConditionTrue, ReasonOwnTarget))
	if msg := meta.FindStatusCondition(mine.Status.Conditions, v1alpha1.ConditionServed).Message; !strings.Contains(msg, "Delegation example-com (domain example.com)") {
		t.Errorf("Served message %q does not name the Delegation", msg)
	}
	// blog's record at shop's target stays unserved, and its status names nothing of shop.
	blogsView := *theirs
	waitFor(t, "blog's record still Served=False", served(theirs, metav1.ConditionFalse, ReasonNotOwnTarget))
	if theirs.ResourceVersion != blogsView.ResourceVersion {
		t.Errorf("blog's record was rewritten (%s, was %s) when shop's Delegation came", theirs.ResourceVersion, blogsView.ResourceVersion)
	}
	if msg := meta.FindStatusCondition(theirs.Status.Conditions, v1alpha1.ConditionServed).Message; strings.Contains(msg, "shop") || strings.Contains(msg, "example-com") {
		t.Errorf("blog's record's status tells of shop: %q", msg)
	}
	// Written after shop's Delegation exists, blog's record at shop's target is not served
	// either: only blog's own Delegations count.
	late := v1alpha1.NewChallengeRecord("blog", shopTarget, "Yk3vcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX2")
	if err := c.Create(ctx, late); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "blog's later record at shop's target Served=False", served(late, metav1.ConditionFalse, ReasonNotOwnTarget))

	if err := c.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "shop's record Served=False after the Delegation's deletion", served(mine, metav1.ConditionFalse, ReasonNotOwnTarget))
}

// startServed starts an API server with namespaces shop and blog and the ServedReconciler.
func startServed(t *testing.T) (client.Client, context.Context) {
	t.Helper()
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds")}, "shop", "blog")
	mgr := newManager(t, env)
	if err := (&ServedReconciler{Client: mgr.GetClient(), Options: testOptions}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	runManager(t, mgr)
	return env.Client, context.Background()
}

// servedIs reports whether r's Served condition has status and reason now, and then updates
// *r to what the API server holds.
func servedIs(ctx context.Context, c client.Client, r *v1alpha1.ChallengeRecord, status metav1.ConditionStatus, reason string) func() bool {
	return func() bool {
		var got v1alpha1.ChallengeRecord
		if err := c.Get(ctx, client.ObjectKeyFromObject(r), &got); err != nil {
			return false
		}
		cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionServed)
		if cond == nil || cond.Status != status || cond.Reason != reason {
			return false
		}
		*r = got
		return true
	}
}

// newManager is a manager on env's API server, without a metrics server, whose controllers may
// share names with other tests' (each test runs its own).
func newManager(t *testing.T, env *kubetest.Env) ctrl.Manager {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: kubetest.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

// runManager starts mgr until the test ends.
func runManager(t *testing.T, mgr ctrl.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// TestServedPersist: a record at the persist target of a Delegation of its namespace with
// persistentAuthorization is served (OwnPersistTarget); without persistentAuthorization, or
// in another namespace, it is not.
func TestServedPersist(t *testing.T) {
	c, ctx := startServed(t)

	pt, err := testOptions.TargetKey.PersistTarget(v1alpha1.TargetClaim{Namespace: "shop", Domain: "example.com"}, testOptions.Zone)
	if err != nil {
		t.Fatal(err)
	}
	mine := v1alpha1.NewChallengeRecord("shop", pt, "letsencrypt.org; accounturi=https://ca.example/acct/1")
	theirs := v1alpha1.NewChallengeRecord("blog", pt, "letsencrypt.org; accounturi=https://ca.example/acct/2")
	for _, r := range []*v1alpha1.ChallengeRecord{mine, theirs} {
		if err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	served := func(r *v1alpha1.ChallengeRecord, status metav1.ConditionStatus, reason string) func() bool {
		return servedIs(ctx, c, r, status, reason)
	}
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example-com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no persistentAuthorization: Served=False", served(mine, metav1.ConditionFalse, ReasonNotOwnTarget))
	d.Spec.PersistentAuthorization = &v1alpha1.PersistentAuthorization{IssuerDomainNames: []string{"letsencrypt.org"}, AccountURI: "https://ca.example/acct/1"}
	if err := c.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "with persistentAuthorization: Served=True", served(mine, metav1.ConditionTrue, ReasonOwnPersistTarget))
	waitFor(t, "blog's record at shop's persist target: Served=False", served(theirs, metav1.ConditionFalse, ReasonNotOwnTarget))
	d.Spec.PersistentAuthorization = nil
	if err := c.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "persistentAuthorization removed: Served=False", served(mine, metav1.ConditionFalse, ReasonNotOwnTarget))
}
