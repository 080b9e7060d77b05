// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// The API server every test of this package uses: etcd and kube-apiserver from
// KUBEBUILDER_ASSETS with the acmezone CRDs, started once. Under plain `go test` there is none:
// the tests that need it skip (needAPIServer), the others run.
var (
	restConfig *rest.Config
	k8s        client.Client // uncached, to see what the API server holds
	scheme     = k8sruntime.NewScheme()
)

func TestMain(m *testing.M) {
	// ACMEZONE_TEST_LOG=1 shows the controller's logs.
	if os.Getenv("ACMEZONE_TEST_LOG") != "" {
		logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	} else {
		logf.SetLogger(logr.Discard())
	}
	_ = corev1.AddToScheme(scheme)
	_ = eventsv1.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	_ = cmapi.AddToScheme(scheme)
	if !kubetest.HaveControlPlane() {
		os.Exit(m.Run())
	}
	cmCRDs, err := kubetest.CertManagerCRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	env, err := kubetest.StartEnv(kubetest.Options{CRDDirs: []string{filepath.Join("..", "..", "deploy", "crds"), cmCRDs}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	restConfig = env.Config
	if k8s, err = client.New(restConfig, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// needAPIServer skips the test under plain `go test`, saying that `make test` runs it.
func needAPIServer(t *testing.T) {
	t.Helper()
	if k8s == nil {
		t.Skip(kubetest.NoControlPlane)
	}
}

// testOptions are the seed's installation: zone acme.example.com, name server ns.example.com
// at 34.84.45.1.
var testOptions = controller.Options{
	Zone:        "acme.example.com.",
	NameServers: []controller.NameServer{{Name: "ns.example.com.", Addrs: []net.IP{net.ParseIP("34.84.45.1")}}},
	TargetKey:   mustKey("0123456789abcdef0123456789abcdef-delegation-tests"),
}

func mustKey(s string) v1alpha1.TargetKey {
	k, err := v1alpha1.NewTargetKey([]byte(s))
	if err != nil {
		panic(err)
	}
	return k
}

// derived is the target the rule gives namespace for domain.
func derived(t *testing.T, namespace, domain string) string {
	t.Helper()
	target, err := testOptions.TargetKey.Target(v1alpha1.TargetClaim{Namespace: namespace, Domain: domain}, testOptions.Zone)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// delegated are the records that make the zone reachable.
var delegated = []string{
	"ns.example.com. 300 IN A 34.84.45.1",
	"acme.example.com. 300 IN NS ns.example.com.",
}

// correct returns the records public DNS serves once the user added them for domain and
// target, with a challenge value at the target.
func correct(domain, target string) []string {
	return append(slices.Clone(delegated),
		"_acme-challenge."+domain+". 300 IN CNAME "+target,
		target+` 10 IN TXT "key-one"`)
}

// newNamespace creates a namespace named after prefix.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	needAPIServer(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// startController runs a manager with the Reconciler, asking the DNS server at dnsAddr, and
// watching only namespaces (so the tests do not see each other's Delegations). The returned
// function stops it; the test's end stops it too.
func startController(t *testing.T, dnsAddr string, namespaces ...string) (stop func()) {
	t.Helper()
	return startControllerWith(t, testOptions, dnsAddr, namespaces...)
}

// startControllerWith is startController with other Options.
func startControllerWith(t *testing.T, opts controller.Options, dnsAddr string, namespaces ...string) (stop func()) {
	t.Helper()
	return startReconciler(t, opts, dnsAddr, nil, namespaces...)
}

// startReconciler is startControllerWith; tweak, when set, changes the Reconciler first.
func startReconciler(t *testing.T, opts controller.Options, dnsAddr string, tweak func(*Reconciler), namespaces ...string) (stop func()) {
	t.Helper()
	needAPIServer(t)
	caches := map[string]cache.Config{}
	for _, ns := range namespaces {
		caches[ns] = cache.Config{}
	}
	skipNameValidation := true // several managers in one process
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: caches},
		Controller: config.Controller{SkipNameValidation: &skipNameValidation},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{
		Options:  opts,
		Resolver: &records.Resolver{Servers: []string{dnsAddr}, Timeout: time.Second},
		RetryMin: 100 * time.Millisecond,
		RetryMax: 400 * time.Millisecond,
		Recheck:  time.Second,
	}
	if tweak != nil {
		tweak(r)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func createDelegation(t *testing.T, ns, name, domain, target string) *v1alpha1.Delegation {
	t.Helper()
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.DelegationSpec{Domain: domain, Target: target},
	}
	if err := k8s.Create(context.Background(), d); err != nil {
		t.Fatalf("create Delegation %s/%s: %v", ns, name, err)
	}
	return d
}

// createProved creates a Delegation whose spec.target is proved by the annotation.
func createProved(t *testing.T, ns, name, domain, target string) *v1alpha1.Delegation {
	t.Helper()
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{
			v1alpha1.TargetProofAnnotation: testOptions.TargetKey.Proof(ns, domain, target)}},
		Spec: v1alpha1.DelegationSpec{Domain: domain, Target: target},
	}
	if err := k8s.Create(context.Background(), d); err != nil {
		t.Fatalf("create Delegation %s/%s: %v", ns, name, err)
	}
	return d
}

// waitFor gets the Delegation until cond holds and returns it; cond says what it saw when it
// does not hold.
func waitFor(t *testing.T, ns, name, what string, cond func(d *v1alpha1.Delegation) (bool, string)) *v1alpha1.Delegation {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		var d v1alpha1.Delegation
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &d)
		if err == nil {
			ok, seen := cond(&d)
			if ok {
				return &d
			}
			last = seen
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("Delegation %s/%s: waited 30s for %s; last saw %s", ns, name, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hasCondition is a waitFor condition: typ has status and reason.
func hasCondition(typ string, status metav1.ConditionStatus, reason string) func(*v1alpha1.Delegation) (bool, string) {
	return func(d *v1alpha1.Delegation) (bool, string) {
		c := meta.FindStatusCondition(d.Status.Conditions, typ)
		if c == nil {
			return false, "no " + typ + " condition"
		}
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%s=%s reason %s: %s", typ, c.Status, c.Reason, c.Message)
	}
}

// condition returns the condition typ of d, failing the test when it is missing.
func condition(t *testing.T, d *v1alpha1.Delegation, typ string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(d.Status.Conditions, typ)
	if c == nil {
		t.Fatalf("Delegation %s/%s has no %s condition: %+v", d.Namespace, d.Name, typ, d.Status.Conditions)
	}
	return *c
}

// waitForEvent waits for an Event about the Delegation with eventtype and reason whose note
// contains note, and returns the note.
func waitForEvent(t *testing.T, d *v1alpha1.Delegation, eventtype, reason, note string) string {
	t.Helper()
	return waitForEventAbout(t, d, "Delegation", eventtype, reason, note)
}

// waitForEventAbout is waitForEvent for an object d of kind.
func waitForEventAbout(t *testing.T, d client.Object, kind, eventtype, reason, note string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list eventsv1.EventList
		if err := k8s.List(context.Background(), &list, client.InNamespace(d.GetNamespace())); err != nil {
			t.Fatal(err)
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name != d.GetName() || e.Regarding.Kind != kind {
				continue
			}
			if e.Type == eventtype && e.Reason == reason && strings.Contains(e.Note, note) {
				if e.ReportingController != RecorderName {
					t.Errorf("Event %s from %q, want %q", e.Reason, e.ReportingController, RecorderName)
				}
				return e.Note
			}
			seen = append(seen, fmt.Sprintf("%s %s: %s", e.Type, e.Reason, e.Note))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s Event %s about %s/%s with %q; saw %q", eventtype, reason, d.GetNamespace(), d.GetName(), note, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countEvents returns how many Events about d have reason.
func countEvents(t *testing.T, d *v1alpha1.Delegation, reason string) int {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(d.Namespace)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Regarding.Name == d.Name && e.Reason == reason {
			n++
		}
	}
	return n
}

// bare drops the trailing dot, as the records table writes names.
func bare(name string) string { return strings.TrimSuffix(name, ".") }
