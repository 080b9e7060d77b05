// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records/recordstest"
)

// persistRecords returns "fqdn value" of the persist records in ns, sorted, failing the test
// when one is not labelled and owned by the Delegation named owner.
func persistRecords(t *testing.T, ns, owner string) []string {
	t.Helper()
	var list v1alpha1.ChallengeRecordList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns), client.HasLabels{v1alpha1.PersistLabel}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range list.Items {
		if !r.DeletionTimestamp.IsZero() {
			continue
		}
		if !ownsPersist(&r, owner) || r.Labels[v1alpha1.PersistLabel] != owner {
			t.Errorf("persist record %s: labels %v, owners %v; want label and owner %s", r.Name, r.Labels, r.OwnerReferences, owner)
		}
		out = append(out, r.Spec.FQDN+" "+r.Spec.Value)
	}
	slices.Sort(out)
	return out
}

// waitPersistRecords waits until the persist records in ns are want.
func waitPersistRecords(t *testing.T, ns, owner, what string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := persistRecords(t, ns, owner)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: persist records %q, want %q", what, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func persistTarget(t *testing.T, ns, domain string) string {
	t.Helper()
	pt, err := testOptions.TargetKey.PersistTarget(v1alpha1.TargetClaim{Namespace: ns, Domain: domain}, testOptions.Zone)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

// TestPersistAccountURI: a Delegation with persistentAuthorization and an accountURI gets its
// persist target, the CNAME among its records, one ChallengeRecord per issuer domain name
// there (owned and labelled), PersistVerified False naming the missing CNAME, then True once
// public DNS has it; removing persistentAuthorization removes the records, and so does
// deleting the Delegation.
func TestPersistAccountURI(t *testing.T) {
	ns := newNamespace(t, "persist")
	target, pt := derived(t, ns, "example.com"), persistTarget(t, ns, "example.com")
	srv := recordstest.NewServer(t, correct("example.com", target)...)
	startController(t, srv.Addr, ns)

	until := metav1.NewTime(time.Unix(1900000000, 0))
	const acct = "https://ca.example/acme/acct/1"
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "example.com"},
		Spec: v1alpha1.DelegationSpec{Domain: "example.com", PersistentAuthorization: &v1alpha1.PersistentAuthorization{
			IssuerDomainNames: []string{"letsencrypt.org", "Pebble.LetsEncrypt.org"}, AccountURI: acct, Wildcard: true, PersistUntil: &until,
		}},
	}
	if err := k8s.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	v1 := "letsencrypt.org; accounturi=" + acct + "; policy=wildcard; persistUntil=1900000000"
	v2 := "pebble.letsencrypt.org; accounturi=" + acct + "; policy=wildcard; persistUntil=1900000000"
	waitPersistRecords(t, ns, d.Name, "written", pt+" "+v1, pt+" "+v2)

	d = waitFor(t, ns, d.Name, "PersistVerified=False CNAMEMissing", hasCondition(v1alpha1.ConditionPersistVerified, metav1.ConditionFalse, "CNAMEMissing"))
	if d.Status.PersistTarget != pt || pt == target {
		t.Errorf("status.persistTarget %q, want %q (not the target %q)", d.Status.PersistTarget, pt, target)
	}
	row := v1alpha1.DNSRecord{Type: "CNAME", Name: "_validation-persist.example.com", Content: bare(pt)}
	if !slices.Contains(d.Status.Records, row) {
		t.Errorf("status.records %v lack %v", d.Status.Records, row)
	}
	if msg := condition(t, d, v1alpha1.ConditionPersistVerified).Message; !strings.Contains(msg, "_validation-persist.example.com has no CNAME; add: _validation-persist.example.com CNAME "+bare(pt)) {
		t.Errorf("PersistVerified message %q does not name the CNAME to add", msg)
	}
	if c := condition(t, d, v1alpha1.ConditionVerified); c.Status != metav1.ConditionTrue {
		t.Errorf("Verified %s %s: the DNS-01 records are in place, persist must not change it", c.Status, c.Message)
	}
	waitForEvent(t, d, "Warning", "PersistNotVerified", "_validation-persist.example.com CNAME "+bare(pt))

	// The CNAME alone is not enough: the values must be answered at the persist target.
	withCNAME := append(correct("example.com", target), "_validation-persist.example.com. 300 IN CNAME "+pt)
	srv.Set(t, append(withCNAME, pt+` 10 IN TXT "`+v1+`"`)...)
	d = waitFor(t, ns, d.Name, "PersistVerified=False PersistValueMissing", hasCondition(v1alpha1.ConditionPersistVerified, metav1.ConditionFalse, "PersistValueMissing"))
	if msg := condition(t, d, v1alpha1.ConditionPersistVerified).Message; !strings.Contains(msg, v2) || strings.Contains(msg, `"`+v1+`"`) {
		t.Errorf("PersistVerified message %q: want the missing value %q named, not the served one", msg, v2)
	}
	srv.Set(t, append(withCNAME, pt+` 10 IN TXT "`+v1+`"`, pt+` 10 IN TXT "`+v2+`"`)...)
	d = waitFor(t, ns, d.Name, "PersistVerified=True", hasCondition(v1alpha1.ConditionPersistVerified, metav1.ConditionTrue, ReasonPersistResolves))
	if msg := condition(t, d, v1alpha1.ConditionPersistVerified).Message; !strings.Contains(msg, "_validation-persist.example.com points to "+bare(pt)) {
		t.Errorf("PersistVerified message %q", msg)
	}

	// A record deleted by someone else is written again.
	var list v1alpha1.ChallengeRecordList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns), client.HasLabels{v1alpha1.PersistLabel}); err != nil || len(list.Items) == 0 {
		t.Fatalf("list: %v, %d records", err, len(list.Items))
	}
	if err := k8s.Delete(context.Background(), &list.Items[0]); err != nil {
		t.Fatal(err)
	}
	waitPersistRecords(t, ns, d.Name, "written again after a delete", pt+" "+v1, pt+" "+v2)

	// Removing persistentAuthorization removes the records, the row and the condition.
	d.Spec.PersistentAuthorization = nil
	if err := k8s.Update(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	waitPersistRecords(t, ns, d.Name, "persistentAuthorization removed")
	d = waitFor(t, ns, d.Name, "no persist status", func(d *v1alpha1.Delegation) (bool, string) {
		return d.Status.PersistTarget == "" && !slices.Contains(d.Status.Records, row) && condition0(d, v1alpha1.ConditionPersistVerified) == nil,
			fmt.Sprintf("persistTarget %q, records %v, conditions %v", d.Status.PersistTarget, d.Status.Records, d.Status.Conditions)
	})

	// Back, then the Delegation deleted: the records go with it (no garbage collector here).
	d.Spec.PersistentAuthorization = &v1alpha1.PersistentAuthorization{IssuerDomainNames: []string{"letsencrypt.org"}, AccountURI: acct}
	if err := k8s.Update(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	waitPersistRecords(t, ns, d.Name, "persistentAuthorization back", pt+" letsencrypt.org; accounturi="+acct)
	if err := k8s.Delete(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	waitPersistRecords(t, ns, d.Name, "Delegation deleted")
}

func condition0(d *v1alpha1.Delegation, typ string) *metav1.Condition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == typ {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// TestPersistIssuerRef: the account URL is read from an Issuer's status.acme.uri; a new
// account rotates the value (the old record deleted); an Issuer without an account, or none,
// gives AccountUnknown and withdraws nothing; a value over 255 bytes gives PersistInvalid and
// serves nothing.
func TestPersistIssuerRef(t *testing.T) {
	ns := newNamespace(t, "persist-issuer")
	target, pt := derived(t, ns, "example.org"), persistTarget(t, ns, "example.org")
	srv := recordstest.NewServer(t, correct("example.org", target)...)
	startController(t, srv.Addr, ns)
	ctx := context.Background()

	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "org"},
		Spec: v1alpha1.DelegationSpec{Domain: "example.org", PersistentAuthorization: &v1alpha1.PersistentAuthorization{
			IssuerDomainNames: []string{"letsencrypt.org"}, IssuerRef: &v1alpha1.PersistIssuerRef{Name: "le"},
		}},
	}
	if err := k8s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, ns, d.Name, "AccountUnknown (no Issuer)", hasCondition(v1alpha1.ConditionPersistVerified, metav1.ConditionFalse, ReasonAccountUnknown))
	if msg := condition(t, d, v1alpha1.ConditionPersistVerified).Message; !strings.Contains(msg, "Issuer "+ns+"/le") || !strings.Contains(msg, "does not exist") {
		t.Errorf("AccountUnknown message %q", msg)
	}
	waitPersistRecords(t, ns, d.Name, "no account")

	issuer := &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "le"},
		Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{ACME: &cmacme.ACMEIssuer{
			Server: "https://ca.example/dir", PrivateKey: cmmeta.SecretKeySelector{LocalObjectReference: cmmeta.LocalObjectReference{Name: "le-key"}},
		}}},
	}
	if err := k8s.Create(ctx, issuer); err != nil {
		t.Fatal(err)
	}
	setURI := func(uri string) {
		t.Helper()
		issuer.Status.ACME = &cmacme.ACMEIssuerStatus{URI: uri}
		if err := k8s.Status().Update(ctx, issuer); err != nil {
			t.Fatal(err)
		}
	}
	setURI("https://ca.example/acme/acct/1")
	waitPersistRecords(t, ns, d.Name, "the Issuer's account", pt+" letsencrypt.org; accounturi=https://ca.example/acme/acct/1")

	// A new account rotates the value: the new record is written, the old one deleted.
	setURI("https://ca.example/acme/acct/2")
	waitPersistRecords(t, ns, d.Name, "rotated", pt+" letsencrypt.org; accounturi=https://ca.example/acme/acct/2")

	// The Issuer losing its account (being registered again) withdraws nothing.
	setURI("")
	waitFor(t, ns, d.Name, "AccountUnknown (not registered)", hasCondition(v1alpha1.ConditionPersistVerified, metav1.ConditionFalse, ReasonAccountUnknown))
	if got := persistRecords(t, ns, d.Name); len(got) != 1 {
		t.Errorf("persist records %q while the account is unknown, want the last one kept", got)
	}

	// Too long for one TXT string: a clear condition, nothing served.
	long := "https://ca.example/acme/acct/" + strings.Repeat("9", 200)
	d = waitFor(t, ns, d.Name, "fresh", func(*v1alpha1.Delegation) (bool, string) { return true, "" })
	d.Spec.PersistentAuthorization = &v1alpha1.PersistentAuthorization{IssuerDomainNames: []string{"pebble.letsencrypt.org"}, AccountURI: long}
	if err := k8s.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, ns, d.Name, "PersistInvalid", hasCondition(v1alpha1.ConditionPersistVerified, metav1.ConditionFalse, ReasonPersistInvalid))
	if msg := condition(t, d, v1alpha1.ConditionPersistVerified).Message; !strings.Contains(msg, "at most 255") || !strings.Contains(msg, "pebble.letsencrypt.org") {
		t.Errorf("PersistInvalid message %q does not say the value is too long", msg)
	}
	waitPersistRecords(t, ns, d.Name, "value too long")
}

// TestPersistValidation: the CRD takes exactly one of accountURI and issuerRef.
func TestPersistValidation(t *testing.T) {
	ns := newNamespace(t, "persist-crd")
	for i, pa := range []*v1alpha1.PersistentAuthorization{
		{IssuerDomainNames: []string{"letsencrypt.org"}},
		{IssuerDomainNames: []string{"letsencrypt.org"}, AccountURI: "https://ca.example/acct/1", IssuerRef: &v1alpha1.PersistIssuerRef{Name: "le"}},
	} {
		d := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("d%d", i)},
			Spec: v1alpha1.DelegationSpec{Domain: "example.com", PersistentAuthorization: pa}}
		err := k8s.Create(context.Background(), d)
		if err == nil || !strings.Contains(err.Error(), "set exactly one of accountURI") {
			t.Errorf("%d: create: %v; want the CRD's message", i, err)
		}
	}
}
