// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmedns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	cmacmedns "github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/acmedns"
	"github.com/google/uuid"
	"github.com/nrdcg/goacmedns"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// native is one test's set-up for Kubernetes-native accounts: the API in its own namespace,
// served over HTTP, and a manager running the AccountReconciler with that server's URL.
type native struct {
	f    *fixture
	s    *Server
	url  string
	r    *AccountReconciler
	user string // the users' namespace
}

func (f *fixture) native(t *testing.T) *native {
	t.Helper()
	s := f.server(t, Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	n := &native{f: f, s: s, url: srv.URL, user: s.opts.Namespace + "-team"}
	for _, ns := range []string{n.user, n.user + "-other"} {
		if err := f.k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	// A short resync: the reconciler looks at every annotated Delegation again and again.
	n.r = &AccountReconciler{Namespace: s.opts.Namespace, ServerURL: srv.URL, Resync: 200 * time.Millisecond, TargetKey: f.key, Zone: zone}
	return n
}

// start runs a copy of n.r in a manager that sees only n's namespaces, so tests do not meet.
// The returned function stops it; the test's end does too.
func (n *native) start(t *testing.T) (stop func()) {
	t.Helper()
	skip := true // one manager per subtest, same controller name
	mgr, err := ctrl.NewManager(n.f.cfg, ctrl.Options{
		Scheme: n.f.k8s.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{n.user: {}, n.user + "-other": {}}},
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &AccountReconciler{Namespace: n.r.Namespace, ServerURL: n.r.ServerURL, Resync: n.r.Resync, TargetKey: n.r.TargetKey, Zone: n.r.Zone}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("caches never synced")
	}
	return stop
}

// delegation creates a Delegation for domain in the users' namespace, with the annotation
// asking for secret unless it is empty, and returns it with its target by the tenancy rule
// (derived: no spec.target). No status is written: the account must not need one.
func (n *native) delegation(t *testing.T, name, domain, secret string) (*v1alpha1.Delegation, string) {
	t.Helper()
	return n.create(t, n.user, name, v1alpha1.DelegationSpec{Domain: domain}, secret, "")
}

// create creates a Delegation in namespace with spec, the annotations asking for secret and
// holding proof (each unless empty), and returns it with its target by the tenancy rule (""
// when the rule gives it none).
func (n *native) create(t *testing.T, namespace, name string, spec v1alpha1.DelegationSpec, secret, proof string) (*v1alpha1.Delegation, string) {
	t.Helper()
	d := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: map[string]string{}}, Spec: spec}
	if secret != "" {
		d.Annotations[v1alpha1.ACMEDNSSecretAnnotation] = secret
	}
	if proof != "" {
		d.Annotations[v1alpha1.TargetProofAnnotation] = proof
	}
	if err := n.f.k8s.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	target, _ := n.f.key.Target(v1alpha1.ClaimOf(d), zone)
	return d, target
}

// annotate sets the annotation asking for secret, or removes it when secret is empty.
func (n *native) annotate(t *testing.T, d *v1alpha1.Delegation, secret string) {
	t.Helper()
	n.setAnnotation(t, d, v1alpha1.ACMEDNSSecretAnnotation, secret)
}

// setStatusTarget writes status.target of d, as the Delegation reconciler (or an earlier
// version of it) would.
func (n *native) setStatusTarget(t *testing.T, d *v1alpha1.Delegation, target string) {
	t.Helper()
	patch := fmt.Sprintf(`{"status":{"target":%q}}`, target)
	if err := n.f.k8s.Status().Patch(context.Background(), d.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// setAnnotation sets the annotation key of d to value, or removes it when value is empty.
func (n *native) setAnnotation(t *testing.T, d *v1alpha1.Delegation, key, value string) {
	t.Helper()
	v := "null"
	if value != "" {
		v = fmt.Sprintf("%q", value)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%s}}}`, key, v)
	if err := n.f.k8s.Patch(context.Background(), d, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// secret waits for the Secret name in the users' namespace to satisfy cond.
func (n *native) secret(t *testing.T, name, what string, cond func(*corev1.Secret, error) bool) *corev1.Secret {
	t.Helper()
	var sec corev1.Secret
	deadline := time.Now().Add(20 * time.Second)
	for {
		sec = corev1.Secret{}
		err := n.f.k8s.Get(context.Background(), types.NamespacedName{Namespace: n.user, Name: name}, &sec)
		if cond(&sec, err) {
			return &sec
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for Secret %s/%s: %s (last: %v)", n.user, name, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func exists(_ *corev1.Secret, err error) bool { return err == nil }

// accounts returns the native account Secrets in the API's namespace.
func (n *native) accounts(t *testing.T) []corev1.Secret {
	t.Helper()
	var list corev1.SecretList
	if err := n.f.k8s.List(context.Background(), &list, client.InNamespace(n.s.opts.Namespace), client.HasLabels{DelegationUIDLabel}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// secretAccount parses the acmedns.json of sec and returns the one account in it, under domain.
func secretAccount(t *testing.T, sec *corev1.Secret, domain string) goacmedns.Account {
	t.Helper()
	var m map[string]goacmedns.Account
	if err := json.Unmarshal(sec.Data[SecretKey], &m); err != nil {
		t.Fatalf("Secret %s: %s is not JSON: %v", sec.Name, SecretKey, err)
	}
	a, ok := m[domain]
	if len(m) != 1 || !ok {
		t.Fatalf("Secret %s: accounts for %v, want one for %s", sec.Name, keys(m), domain)
	}
	return a
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// warnings returns the reasons of the Warning Events about d.
func (n *native) warnings(t *testing.T, d *v1alpha1.Delegation) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := n.f.k8s.List(context.Background(), &list, client.InNamespace(d.Namespace)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.UID == d.UID && e.Type == corev1.EventTypeWarning {
			out = append(out, e.Reason+": "+e.Note)
		}
	}
	return out
}

func (n *native) waitWarning(t *testing.T, d *v1alpha1.Delegation, reason string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, w := range n.warnings(t, d) {
			if strings.HasPrefix(w, reason+": ") {
				return w
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Warning %s on Delegation %s; have %q", reason, d.Name, n.warnings(t, d))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testNativeAccount: the Secret cert-manager reads, exactly; cert-manager's own acmeDNS
// provider updating through it; the record in the Delegation's namespace at its target; the
// hash, not the password, in the API's namespace; no churn; repair; cleanup.
func (f *fixture) testNativeAccount(t *testing.T) {
	ctx := context.Background()
	n := f.native(t)
	stop := n.start(t)
	d, target := n.delegation(t, "example-com", "Example.COM.", "acme-dns-example")

	sec := n.secret(t, "acme-dns-example", "written", exists)
	if len(sec.Data) != 1 || sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("Secret type %s keys %v, want Opaque with only %s", sec.Type, keys(sec.Data), SecretKey)
	}
	// cert-manager looks accounts up by the Challenge's spec.dnsName: "example.com" for both
	// example.com and *.example.com; goacmedns's field names.
	re := regexp.MustCompile(`^\{"example\.com":\{"fulldomain":"([^"]+)","subdomain":"([^"]+)","username":"([^"]+)","password":"([^"]+)","server_url":"([^"]+)"\}\}$`)
	m := re.FindStringSubmatch(string(sec.Data[SecretKey]))
	if m == nil {
		t.Fatalf("%s = %s", SecretKey, sec.Data[SecretKey])
	}
	bare := strings.TrimSuffix(target, ".")
	if m[1] != bare || m[2] != strings.Split(bare, ".")[0] || m[5] != n.url || !passwordRE.MatchString(m[4]) {
		t.Errorf("account %q, want fulldomain %s, its first label, server_url %s, a 40-character password", m[1:], bare, n.url)
	}
	if _, err := uuid.Parse(m[3]); err != nil {
		t.Errorf("username %q: %v", m[3], err)
	}
	if ref := metav1.GetControllerOf(sec); ref == nil || ref.UID != d.UID || ref.Kind != "Delegation" {
		t.Errorf("Secret owner %+v, want the Delegation", sec.OwnerReferences)
	}
	acct := secretAccount(t, sec, "example.com")

	// The hash lives in the API's namespace; the password nowhere but the user's Secret.
	accts := n.accounts(t)
	if len(accts) != 1 || accts[0].Name != AccountName(acct.Username) || accts[0].Type != SecretType {
		t.Fatalf("account Secrets %d, want one named %s", len(accts), AccountName(acct.Username))
	}
	for k, v := range accts[0].Data {
		if strings.Contains(string(v), acct.Password) {
			t.Errorf("account Secret key %s holds the password", k)
		}
	}
	if err := bcrypt.CompareHashAndPassword(accts[0].Data[keyPasswordHash], []byte(acct.Password)); err != nil {
		t.Errorf("account hash: %v", err)
	}

	// cert-manager's acmeDNS provider, fed the Secret's bytes as cert-manager feeds them.
	p, err := cmacmedns.NewDNSProviderHostBytes(n.url, sec.Data[SecretKey], nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Present(ctx, "example.com", "_acme-challenge.example.com.", txt1); err != nil {
		t.Fatalf("cert-manager's Present: %v", err)
	}
	if err := p.Present(ctx, "*.example.com", "_acme-challenge.example.com.", txt2); err == nil {
		t.Error("Present found an account under *.example.com; cert-manager never asks for that key")
	}
	var recs v1alpha1.ChallengeRecordList
	if err := f.k8s.List(ctx, &recs, client.MatchingLabels{AccountLabel: acct.Username}); err != nil {
		t.Fatal(err)
	}
	if len(recs.Items) != 1 || recs.Items[0].Namespace != n.user || recs.Items[0].Spec.FQDN != target || recs.Items[0].Spec.Value != txt1 {
		t.Fatalf("records %+v, want %s at %s in %s", recs.Items, txt1, target, n.user)
	}

	// Reconciling again and again changes nothing: same password, same objects; nor does a
	// status.target that says something else (status is never the binding: the account waits).
	n.setStatusTarget(t, d, uuid.NewString()+"."+zone)
	time.Sleep(10 * n.r.Resync)
	again := n.secret(t, "acme-dns-example", "still there", exists)
	if again.ResourceVersion != sec.ResourceVersion {
		t.Errorf("Secret rewritten by idle reconciles:\n%s\n%s", sec.Data[SecretKey], again.Data[SecretKey])
	}
	if a := n.accounts(t); len(a) != 1 || a[0].ResourceVersion != accts[0].ResourceVersion {
		t.Errorf("account Secret changed by idle reconciles")
	}
	if err := p.Present(ctx, "example.com", "_acme-challenge.example.com.", txt3); err != nil {
		t.Errorf("Present with a decoy status.target: %v", err)
	}
	recs = v1alpha1.ChallengeRecordList{}
	if err := f.k8s.List(ctx, &recs, client.InNamespace(n.user)); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs.Items {
		if r.Spec.FQDN != target {
			t.Errorf("record at %s, want every one at %s, none at the decoy", r.Spec.FQDN, target)
		}
	}

	// The controller restarted with a new server URL writes it with the same password (the
	// status shows the target again, as the Delegation reconciler writes it).
	n.setStatusTarget(t, d, target)
	stop()
	n.r.ServerURL = "https://acme-dns.example.net"
	n.start(t)
	sec = n.secret(t, "acme-dns-example", "moved", func(s *corev1.Secret, err error) bool {
		return err == nil && strings.Contains(string(s.Data[SecretKey]), n.r.ServerURL)
	})
	if a := secretAccount(t, sec, "example.com"); a.ServerURL != n.r.ServerURL || a.Password != acct.Password || a.Username != acct.Username {
		t.Errorf("after the server URL changed: %+v, want the same account at %s", a, n.r.ServerURL)
	}

	// The user deletes the Secret: it comes back with a new password; the old one is dead.
	if err := f.k8s.Delete(ctx, sec); err != nil {
		t.Fatal(err)
	}
	sec = n.secret(t, "acme-dns-example", "rewritten", func(s *corev1.Secret, err error) bool { return err == nil && s.UID != sec.UID })
	fresh := secretAccount(t, sec, "example.com")
	if fresh.Password == acct.Password || fresh.Username != acct.Username || fresh.ServerURL != n.r.ServerURL {
		t.Errorf("rewritten account %+v, want the same username with a new password at %s", fresh, n.r.ServerURL)
	}
	c, err := goacmedns.NewClient(n.url)
	if err != nil {
		t.Fatal(err)
	}
	var ce *goacmedns.ClientError
	if err := c.UpdateTXTRecord(ctx, acct, txt2); !errors.As(err, &ce) || ce.HTTPStatus != 401 {
		t.Errorf("update with the old password: %v, want 401", err)
	}
	if err := c.UpdateTXTRecord(ctx, fresh, txt2); err != nil {
		t.Errorf("update with the new password: %v", err)
	}

	// Removing the annotation removes the account and the Secret; the credentials stop working.
	n.annotate(t, d, "")
	n.secret(t, "acme-dns-example", "deleted", notFound)
	waitUntil(t, "the account Secret deleted", func() bool { return len(n.accounts(t)) == 0 })
	if err := c.UpdateTXTRecord(ctx, fresh, txt3); !errors.As(err, &ce) || ce.HTTPStatus != 401 {
		t.Errorf("update after the annotation was removed: %v, want 401", err)
	}
}

// testNativeCleanup: deleting the Delegation removes the account; an account left by a
// Delegation deleted while no controller ran is removed when one starts.
func (f *fixture) testNativeCleanup(t *testing.T) {
	ctx := context.Background()
	n := f.native(t)
	// A stale account Secret, its Delegation gone while no controller ran, goes at start.
	stale := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: n.s.opts.Namespace, Name: AccountName(uuid.NewString()),
			Labels:      map[string]string{AccountLabel: "x", DelegationUIDLabel: uuid.NewString()},
			Annotations: map[string]string{delegationAnnotation: n.user + "/gone", v1alpha1.ACMEDNSSecretAnnotation: "gone"},
		},
		Type: SecretType,
	}
	if err := f.k8s.Create(ctx, stale); err != nil {
		t.Fatal(err)
	}
	n.start(t)
	waitUntil(t, "the stale account Secret deleted", func() bool { return len(n.accounts(t)) == 0 })

	d, _ := n.delegation(t, "shop", "shop.example", "acme-dns")
	sec := n.secret(t, "acme-dns", "written", exists)
	acct := secretAccount(t, sec, "shop.example")
	if len(n.accounts(t)) != 1 {
		t.Fatalf("%d account Secrets, want 1", len(n.accounts(t)))
	}
	if err := f.k8s.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the account Secret deleted", func() bool { return len(n.accounts(t)) == 0 })
	// envtest runs no garbage collector; the reconciler deletes the Secret it wrote itself.
	n.secret(t, "acme-dns", "deleted", notFound)
	c, err := goacmedns.NewClient(n.url)
	if err != nil {
		t.Fatal(err)
	}
	var ce *goacmedns.ClientError
	if err := c.UpdateTXTRecord(ctx, acct, txt1); !errors.As(err, &ce) || ce.HTTPStatus != 401 {
		t.Errorf("update after the Delegation was deleted: %v, want 401", err)
	}
}

func notFound(_ *corev1.Secret, err error) bool { return apierrors.IsNotFound(err) }

// testNativeRefusals: a Secret the controller did not write is left alone; a bad name, a
// missing --acme-dns-server-url and a target owned elsewhere write nothing; each says why.
func (f *fixture) testNativeRefusals(t *testing.T) {
	ctx := context.Background()
	n := f.native(t)
	n.start(t)

	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: n.user, Name: "mine"},
		StringData: map[string]string{SecretKey: `{"example.org": {}}`},
	}
	if err := f.k8s.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	d, _ := n.delegation(t, "example-org", "example.org", "mine")
	if w := n.waitWarning(t, d, ReasonSecretNotOurs); !strings.Contains(w, n.user+"/mine") {
		t.Errorf("warning %q does not name the Secret", w)
	}
	got := n.secret(t, "mine", "there", exists)
	if got.ResourceVersion != foreign.ResourceVersion || string(got.Data[SecretKey]) != `{"example.org": {}}` || len(got.OwnerReferences) != 0 {
		t.Errorf("foreign Secret changed: %+v", got)
	}

	bad, _ := n.delegation(t, "bad-name", "bad.example", "Not_A_Name")
	n.waitWarning(t, bad, ReasonInvalidSecretName)

	// Squatters: annotated Delegations in another namespace whose spec.target is an account's
	// target, a native account's and a /register account's, bare or with the owner's proof
	// copied. None gets an account, and what they are told names no other namespace or target.
	owner, target := n.delegation(t, "owner", "owner.example", "owner")
	ownerAcct := secretAccount(t, n.secret(t, "owner", "written", exists), "owner.example")
	reg := f.register(t, n.s, "192.0.2.1:1", "")
	regTarget := reg.Subdomain + "." + zone
	var regD v1alpha1.Delegation
	if err := f.k8s.Get(ctx, types.NamespacedName{Namespace: n.s.opts.Namespace, Name: AccountName(reg.Username)}, &regD); err != nil {
		t.Fatal(err)
	}
	other := n.user + "-other"
	squatters := []struct {
		name, domain, target, proof string
	}{
		{"squat-native", "owner.example", target, ""},
		{"squat-native-proof", "owner.example", target, f.key.Proof(owner.Namespace, "owner.example", target)},
		{"squat-register", reg.Fulldomain, regTarget, ""},
		{"squat-register-proof", reg.Fulldomain, regTarget, regD.Annotations[v1alpha1.TargetProofAnnotation]},
	}
	for _, sq := range squatters {
		d, got := n.create(t, other, sq.name, v1alpha1.DelegationSpec{Domain: sq.domain, Target: sq.target}, sq.name, sq.proof)
		if got != "" {
			t.Fatalf("%s: the tenancy rule gives it %s", sq.name, got)
		}
		w := n.waitWarning(t, d, ReasonTargetNotOwned)
		if label, _, _ := strings.Cut(sq.target, "."); strings.Contains(w, n.s.opts.Namespace) || strings.Contains(w, label) {
			t.Errorf("%s: warning %q names a namespace or the target", sq.name, w)
		}
	}
	time.Sleep(5 * n.r.Resync)
	for _, sq := range squatters {
		if err := f.k8s.Get(ctx, types.NamespacedName{Namespace: other, Name: sq.name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Errorf("Secret %s/%s: %v, want not found", other, sq.name, err)
		}
	}
	if a := n.accounts(t); len(a) != 1 || a[0].Annotations[delegationAnnotation] != n.user+"/owner" {
		t.Errorf("%d account Secrets, want only the owner's", len(a))
	}
	// The accounts squatted on still work, at their own targets.
	c, err := goacmedns.NewClient(n.url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateTXTRecord(ctx, ownerAcct, txt1); err != nil {
		t.Errorf("the owner's account: %v", err)
	}
	if code, out := call(n.s, "POST", "/update", "192.0.2.1:1", creds(reg), updateBody(reg.Subdomain, txt1)); code != 200 {
		t.Errorf("the /register account: %d %s", code, out)
	}

	for _, name := range []string{"Not_A_Name"} {
		if err := f.k8s.Get(ctx, types.NamespacedName{Namespace: n.user, Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Errorf("Secret %s: %v, want not found", name, err)
		}
	}
}

// testNativeProof: an account for a Delegation whose spec.target is proved (a target migrated
// from acme-dns, say) works while the proof holds. Once the proof is changed or removed,
// /update refuses at once, before the reconciler has removed the account; then the reconciler
// removes it and says why.
func (f *fixture) testNativeProof(t *testing.T) {
	ctx := context.Background()
	n := f.native(t)
	stop := n.start(t)
	legacy := uuid.NewString() + "." + zone
	proof := f.key.Proof(n.user, "legacy.example", legacy)
	d, target := n.create(t, n.user, "legacy", v1alpha1.DelegationSpec{Domain: "legacy.example", Target: legacy}, "acme-dns", proof)
	if target != legacy {
		t.Fatalf("the tenancy rule gives %q, want the proved %s", target, legacy)
	}
	acct := secretAccount(t, n.secret(t, "acme-dns", "written", exists), "legacy.example")
	if acct.FullDomain+"." != legacy {
		t.Fatalf("account fulldomain %s, want %s", acct.FullDomain, legacy)
	}
	c, err := goacmedns.NewClient(n.url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateTXTRecord(ctx, acct, txt1); err != nil {
		t.Fatal(err)
	}

	stop() // /update alone must refuse
	var ce *goacmedns.ClientError
	for i, p := range []string{f.key.Proof(n.user+"-other", "legacy.example", legacy), f.key.Proof(n.user, "other.example", legacy), ""} {
		n.setAnnotation(t, d, v1alpha1.TargetProofAnnotation, p)
		if err := c.UpdateTXTRecord(ctx, acct, txt2); !errors.As(err, &ce) || ce.HTTPStatus != 401 {
			t.Errorf("Test %d: update with proof %q: %v, want 401", i, p, err)
		}
	}
	n.setAnnotation(t, d, v1alpha1.TargetProofAnnotation, proof)
	if err := c.UpdateTXTRecord(ctx, acct, txt3); err != nil {
		t.Errorf("update with the proof back: %v", err)
	}

	n.start(t)
	n.setAnnotation(t, d, v1alpha1.TargetProofAnnotation, "")
	n.secret(t, "acme-dns", "deleted", notFound)
	waitUntil(t, "the account Secret deleted", func() bool { return len(n.accounts(t)) == 0 })
	if w := n.waitWarning(t, d, ReasonTargetNotOwned); !strings.Contains(w, "remove spec.target") {
		t.Errorf("warning %q does not say what to do", w)
	}
	var recs v1alpha1.ChallengeRecordList
	if err := f.k8s.List(ctx, &recs, client.InNamespace(n.user)); err != nil {
		t.Fatal(err)
	}
	if len(recs.Items) != 2 {
		t.Errorf("%d records, want the two written while the proof held", len(recs.Items))
	}
}

// testNativeMigration: an account an earlier version made, bound to the target it gave the
// Delegation (status.target), survives the upgrade untouched. Before the Delegation reconciler
// keeps that target with spec.target and the proof, the rule gives the derived target: the
// account is neither removed nor moved (the user's Secret and password stay), only refused;
// after, it works again. A Delegation whose status shows another target gets no new account
// until the status agrees with the rule.
func (f *fixture) testNativeMigration(t *testing.T) {
	ctx := context.Background()
	n := f.native(t)
	n.start(t)
	legacy := uuid.NewString() + "." + zone
	proof := f.key.Proof(n.user, "old.example", legacy)
	// The account at legacy, made here through a proved spec.target; then the state before the
	// migration: legacy in status only, no spec.target, no proof.
	d, derived := n.create(t, n.user, "old", v1alpha1.DelegationSpec{Domain: "old.example", Target: legacy}, "acme-dns", proof)
	sec := n.secret(t, "acme-dns", "written", exists)
	acct := secretAccount(t, sec, "old.example")
	n.setStatusTarget(t, d, legacy)
	unmigrated := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}},"spec":{"target":null}}`, v1alpha1.TargetProofAnnotation)
	if err := f.k8s.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(unmigrated))); err != nil {
		t.Fatal(err)
	}
	if derived, _ = f.key.Target(v1alpha1.ClaimOf(d), zone); derived == legacy || derived == "" {
		t.Fatalf("derived target %q", derived)
	}
	time.Sleep(10 * n.r.Resync)
	if again := n.secret(t, "acme-dns", "kept", exists); again.ResourceVersion != sec.ResourceVersion {
		t.Errorf("the account was rewritten before the migration:\n%s\n%s", sec.Data[SecretKey], again.Data[SecretKey])
	}
	if a := n.accounts(t); len(a) != 1 || a[0].Name != AccountName(acct.Username) {
		t.Errorf("%d account Secrets, want the one made at %s", len(a), legacy)
	}
	c, err := goacmedns.NewClient(n.url)
	if err != nil {
		t.Fatal(err)
	}
	var ce *goacmedns.ClientError
	if err := c.UpdateTXTRecord(ctx, acct, txt1); !errors.As(err, &ce) || ce.HTTPStatus != 401 {
		t.Errorf("update before the migration: %v, want 401 (the rule gives %s)", err, derived)
	}
	// The Delegation reconciler keeps legacy: spec.target and the proof.
	migrated := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}},"spec":{"target":%q}}`, v1alpha1.TargetProofAnnotation, proof, legacy)
	if err := f.k8s.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(migrated))); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateTXTRecord(ctx, acct, txt2); err != nil {
		t.Errorf("update after the migration: %v", err)
	}
	time.Sleep(5 * n.r.Resync)
	if again := n.secret(t, "acme-dns", "kept", exists); again.ResourceVersion != sec.ResourceVersion {
		t.Errorf("the account was rewritten by the migration")
	}

	// A new Delegation whose status shows another target waits for the status to agree.
	fresh, target := n.create(t, n.user, "new", v1alpha1.DelegationSpec{Domain: "new.example"}, "", "")
	n.setStatusTarget(t, fresh, uuid.NewString()+"."+zone)
	n.annotate(t, fresh, "acme-dns-new")
	time.Sleep(5 * n.r.Resync)
	if err := f.k8s.Get(ctx, types.NamespacedName{Namespace: n.user, Name: "acme-dns-new"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret acme-dns-new while the status shows another target: %v, want not found", err)
	}
	n.setStatusTarget(t, fresh, target)
	if a := secretAccount(t, n.secret(t, "acme-dns-new", "written", exists), "new.example"); a.FullDomain+"." != target {
		t.Errorf("account at %s, want %s", a.FullDomain, target)
	}
}

// testNativeNoServerURL: without --acme-dns-server-url nothing is written, and the
// Delegation says which flag is missing.
func (f *fixture) testNativeNoServerURL(t *testing.T) {
	n := f.native(t)
	n.r.ServerURL = ""
	n.start(t)
	d, _ := n.delegation(t, "example-net", "example.net", "acme-dns")
	if w := n.waitWarning(t, d, ReasonNoServerURL); !strings.Contains(w, "--acme-dns-server-url") || !strings.Contains(w, n.user+"/acme-dns") {
		t.Errorf("warning %q does not name the flag and the Secret", w)
	}
	if err := f.k8s.Get(context.Background(), types.NamespacedName{Namespace: n.user, Name: "acme-dns"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret: %v, want not found", err)
	}
	if a := n.accounts(t); len(a) != 0 {
		t.Errorf("%d account Secrets written", len(a))
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
