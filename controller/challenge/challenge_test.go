// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package challenge

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/solver"
	"github.com/acmezone/acmezone/internal/kubetest"
)

func start(t *testing.T, autoDelegate bool) client.Client {
	t.Helper()
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds"), kubetest.MustCertManagerCRDs(t)}, "shop", "cert-manager")
	cfg, scheme := env.Config, kubetest.Scheme()
	skip := true // each test runs its own manager with the same controller names
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := *testOptions
	opts.AutoDelegate = autoDelegate
	if err := (&Reconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("acmezone-controller"),
		Options: &opts, ClusterResourceNamespace: "cert-manager", Recheck: time.Second,
	}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	if err := (&OrphanReconciler{Client: mgr.GetClient(), Grace: 2 * time.Second, Resync: 2 * time.Second}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })

	return env.Client
}

var testOptions = func() *controller.Options {
	k, err := v1alpha1.NewTargetKey([]byte("challenge-tests-0123456789abcdef0123456789"))
	if err != nil {
		panic(err)
	}
	return &controller.Options{Zone: "acme.example.com.", TargetKey: k}
}()

// own is the target of namespace for domain.
func own(ns, domain string) string {
	t, err := testOptions.TargetKey.Target(v1alpha1.TargetClaim{Namespace: ns, Domain: domain}, testOptions.Zone)
	if err != nil {
		panic(err)
	}
	return t
}

func newChallenge(ns, name, domain, issuerKind string) *cmacme.Challenge {
	return &cmacme.Challenge{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmacme.ChallengeSpec{
			URL: "https://pebble.test/chal/1", AuthorizationURL: "https://pebble.test/authz/1",
			DNSName: domain, Type: cmacme.ACMEChallengeTypeDNS01, Token: "token", Key: "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
			Solver: cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{
				Webhook: &cmacme.ACMEIssuerDNS01ProviderWebhook{GroupName: solver.GroupName, SolverName: solver.SolverName},
			}},
			IssuerRef: cmmeta.IssuerReference{Name: "acmezone", Kind: issuerKind, Group: "cert-manager.io"},
		},
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventNotes returns the notes of the Events about obj.
func eventNotes(t *testing.T, c client.Client, obj client.Object) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := c.List(context.Background(), &list, client.InNamespace(obj.GetNamespace())); err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.UID == obj.GetUID() {
			notes = append(notes, e.Type+" "+e.Reason+": "+e.Note)
		}
	}
	return notes
}

func TestWatcher(t *testing.T) {
	c := start(t, true)
	ctx := context.Background()

	ch := newChallenge("shop", "example-com-1", "example.com", cmapi.IssuerKind)
	if err := c.Create(ctx, ch); err != nil {
		t.Fatal(err)
	}

	// Auto-delegation: a Delegation for the domain appears in the Challenge's namespace.
	d := &v1alpha1.Delegation{}
	waitFor(t, "the auto-created Delegation", func() bool {
		return c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "example.com"}, d) == nil
	})
	if d.Spec.Domain != "example.com" {
		t.Errorf("auto-created Delegation has domain %q", d.Spec.Domain)
	}

	// While it is not verified, the Challenge gets the seed's warning with the exact CNAME: the
	// namespace's own target, whatever status says.
	d.Status.Target = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	if err := c.Status().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	want := "please add a CNAME record with your DNS provider: _acme-challenge.example.com CNAME " + strings.TrimSuffix(own("shop", "example.com"), ".")
	waitFor(t, "the CNAME warning on the Challenge", func() bool {
		for _, n := range eventNotes(t, c, ch) {
			if strings.HasPrefix(n, "Warning CNAMEMissing: "+want) {
				return true
			}
		}
		return false
	})

	// Adoption: the solver's record for this Challenge gets the Challenge as owner.
	rec := v1alpha1.NewChallengeRecord("shop", own("shop", "example.com"), ch.Spec.Key)
	rec.Labels = map[string]string{solver.ChallengeUIDLabel: string(ch.UID)}
	if err := c.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the owner reference on the ChallengeRecord", func() bool {
		var got v1alpha1.ChallengeRecord
		if err := c.Get(ctx, client.ObjectKeyFromObject(rec), &got); err != nil {
			return false
		}
		return hasOwner(&got, ch)
	})

	// A ClusterIssuer's Challenge: Delegation and records live in the cluster resource namespace.
	cch := newChallenge("shop", "wild-example-org", "example.org", cmapi.ClusterIssuerKind)
	if err := c.Create(ctx, cch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Delegation in the cluster resource namespace", func() bool {
		return c.Get(ctx, client.ObjectKey{Namespace: "cert-manager", Name: "example.org"}, &v1alpha1.Delegation{}) == nil
	})
	crec := v1alpha1.NewChallengeRecord("cert-manager", "x.acme.example.com.", cch.Spec.Key)
	crec.Labels = map[string]string{solver.ChallengeUIDLabel: string(cch.UID)}
	if err := c.Create(ctx, crec); err != nil {
		t.Fatal(err)
	}

	orphaned := testutil.ToFloat64(reaped.WithLabelValues(ReapedOrphaned))
	// Orphans: a record whose Challenge never existed, and records whose Challenge is deleted.
	orphan := v1alpha1.NewChallengeRecord("cert-manager", "y.acme.example.com.", "orphan-value")
	orphan.Labels = map[string]string{solver.ChallengeUIDLabel: "00000000-0000-0000-0000-000000000000"}
	hand := v1alpha1.NewChallengeRecord("cert-manager", "z.acme.example.com.", "written-by-hand")
	for _, r := range []*v1alpha1.ChallengeRecord{orphan, hand} {
		if err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(r *v1alpha1.ChallengeRecord) func() bool {
		return func() bool {
			return c.Get(ctx, client.ObjectKeyFromObject(r), &v1alpha1.ChallengeRecord{}) != nil
		}
	}
	waitFor(t, "the orphan to be deleted", gone(orphan))
	if gone(crec)() {
		t.Fatal("the record of a live Challenge was deleted")
	}
	if err := c.Delete(ctx, cch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the record of the deleted ClusterIssuer Challenge to be deleted", gone(crec))
	if err := c.Delete(ctx, ch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the record of the deleted Issuer Challenge to be deleted", gone(rec))
	time.Sleep(3 * time.Second) // past the grace period and a resync
	if gone(hand)() {
		t.Error("a record without the Challenge UID label was deleted; only the solver's records are reaped")
	}
	// Three records reaped: the orphan and the records of the two deleted Challenges.
	if got := testutil.ToFloat64(reaped.WithLabelValues(ReapedOrphaned)) - orphaned; got != 3 {
		t.Errorf("acmezone_challengerecords_reaped_total{reason=orphaned} rose by %v, want 3", got)
	}
}

func TestNoAutoDelegation(t *testing.T) {
	c := start(t, false)
	ctx := context.Background()
	ch := newChallenge("shop", "example-com-1", "example.com", cmapi.IssuerKind)
	if err := c.Create(ctx, ch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the NoDelegation warning", func() bool {
		for _, n := range eventNotes(t, c, ch) {
			if strings.Contains(n, "NoDelegation: no Delegation for example.com in namespace shop") {
				return true
			}
		}
		return false
	})
	var list v1alpha1.DelegationList
	if err := c.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("with auto-delegation off, %d Delegations were created", len(list.Items))
	}
	// A Challenge for another solver is left alone.
	other := newChallenge("shop", "other", "other.example", cmapi.IssuerKind)
	other.Spec.Solver.DNS01.Webhook.SolverName = "someone-else"
	if err := c.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if notes := eventNotes(t, c, other); len(notes) != 0 {
		t.Errorf("Events on a Challenge of another solver: %v", notes)
	}
}

// TestIsolation: a Challenge whose issuer uses namespace blog, for a domain shop has a
// Delegation for, gets blog's own Delegation (its own target, used only if the public CNAME
// ever points there), and nothing it is told names shop.
func TestIsolation(t *testing.T) {
	c := start(t, true)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "blog"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com"},
	}); err != nil {
		t.Fatal(err)
	}
	ch := newChallenge("blog", "example-com-1", "example.com", cmapi.IssuerKind)
	if err := c.Create(ctx, ch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "blog's CNAME warning", func() bool {
		for _, n := range eventNotes(t, c, ch) {
			if strings.Contains(n, "CNAMEMissing: please add a CNAME record with your DNS provider: _acme-challenge.example.com CNAME "+strings.TrimSuffix(own("blog", "example.com"), ".")) {
				return true
			}
		}
		return false
	})
	for _, n := range eventNotes(t, c, ch) {
		if strings.Contains(n, "shop") || strings.Contains(n, strings.TrimSuffix(own("shop", "example.com"), ".")) {
			t.Errorf("an Event in blog names shop or its target: %s", n)
		}
	}
}

func TestDelegationName(t *testing.T) {
	for _, tc := range []struct{ domain, want string }{
		{"example.com", "example.com"},
		{"_under.example.com", "under.example.com-"},
	} {
		got := DelegationName(tc.domain)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("DelegationName(%q) = %q, want prefix %q", tc.domain, got, tc.want)
		}
	}
	if a, b := DelegationName("_a.example.com"), DelegationName("-a.example.com"); a == b {
		t.Errorf("two domains share the name %q", a)
	}
}

// TestWarningReachesCertificate follows Challenge → Order → Certificate and posts the CNAME
// warning on the Certificate too, where `kubectl describe certificate` shows it.
func TestWarningReachesCertificate(t *testing.T) {
	c := start(t, true)
	ctx := context.Background()
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "wildcard"},
		Spec: cmapi.CertificateSpec{
			SecretName: "wildcard-tls", DNSNames: []string{"example.com", "*.example.com"},
			IssuerRef: cmmeta.IssuerReference{Name: "acmezone", Kind: cmapi.IssuerKind},
		},
	}
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	order := &cmacme.Order{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "wildcard-1-1",
			Annotations: map[string]string{cmapi.CertificateNameKey: crt.Name}},
		Spec: cmacme.OrderSpec{Request: []byte("csr"), DNSNames: crt.Spec.DNSNames,
			IssuerRef: cmmeta.IssuerReference{Name: "acmezone", Kind: cmapi.IssuerKind}},
	}
	if err := c.Create(ctx, order); err != nil {
		t.Fatal(err)
	}
	ch := newChallenge("shop", "wildcard-1-1-1", "example.com", cmapi.IssuerKind)
	ch.OwnerReferences = []metav1.OwnerReference{{APIVersion: "acme.cert-manager.io/v1", Kind: "Order", Name: order.Name, UID: order.UID}}
	if err := c.Create(ctx, ch); err != nil {
		t.Fatal(err)
	}
	d := &v1alpha1.Delegation{}
	waitFor(t, "the auto-created Delegation", func() bool {
		return c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "example.com"}, d) == nil
	})
	waitFor(t, "the CNAME warning on the Certificate", func() bool {
		for _, n := range eventNotes(t, c, crt) {
			if strings.Contains(n, "_acme-challenge.example.com CNAME "+strings.TrimSuffix(own("shop", "example.com"), ".")) {
				return true
			}
		}
		return false
	})
}
