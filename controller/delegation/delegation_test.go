// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records/recordstest"
)

func TestTargetDerivedAndStable(t *testing.T) {
	ns := newNamespace(t, "stable")
	srv := recordstest.NewServer(t, delegated...) // the zone is delegated, the CNAME not there yet
	target := derived(t, ns, "example.com")

	// Two controllers at once: both show the same target, the rule's.
	stop1 := startController(t, srv.Addr, ns)
	stop2 := startController(t, srv.Addr, ns)
	d := createDelegation(t, ns, "example-com", "example.com", "")
	d = waitFor(t, ns, "example-com", "Verified=False CNAMEMissing", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionFalse, "CNAMEMissing"))
	if d.Status.Target != target {
		t.Errorf("target %q, want the derived %q", d.Status.Target, target)
	}
	wantRecords := []v1alpha1.DNSRecord{
		{Type: "A", Name: "ns.example.com", Content: "34.84.45.1"},
		{Type: "NS", Name: "acme.example.com", Content: "ns.example.com"},
		{Type: "CNAME", Name: "_acme-challenge.example.com", Content: bare(target)},
	}
	if !slices.Equal(d.Status.Records, wantRecords) {
		t.Errorf("status.records %v, want %v", d.Status.Records, wantRecords)
	}
	wantMsg := "_acme-challenge.example.com has no CNAME; add: _acme-challenge.example.com CNAME " + bare(target) +
		". the TXT lookup of _acme-challenge.example.com fails: NXDOMAIN (_acme-challenge.example.com does not exist)."
	if c := condition(t, d, v1alpha1.ConditionVerified); c.Message != wantMsg {
		t.Errorf("Verified message %q, want %q", c.Message, wantMsg)
	}
	if c := condition(t, d, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != ReasonNotVerified {
		t.Errorf("Ready %s %s, want False %s", c.Status, c.Reason, ReasonNotVerified)
	}
	if d.Status.ObservedGeneration != d.Generation {
		t.Errorf("observedGeneration %d, want %d", d.Status.ObservedGeneration, d.Generation)
	}
	waitForEvent(t, d, "Warning", "NotVerified", "add: _acme-challenge.example.com CNAME "+bare(target))

	// Both controllers keep checking (with backoff); Events are posted on changes only.
	time.Sleep(1500 * time.Millisecond)
	if n := countEvents(t, d, "NotVerified"); n != 1 {
		t.Errorf("%d NotVerified Events, want 1: Events are posted on changes only", n)
	}

	// A spec.target that is not this namespace's own: no target at all, and Ready says why.
	stop1()
	stop2()
	startController(t, srv.Addr, ns)
	d.Spec.Target = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	if err := k8s.Update(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, ns, "example-com", "Ready=False InvalidTarget", hasCondition(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonInvalidTarget))
	if d.Status.Target != "" || len(d.Status.Records) != 0 {
		t.Errorf("target %q, records %v for a spec.target that is not the namespace's own", d.Status.Target, d.Status.Records)
	}
	if msg := condition(t, d, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "spec.target is not this namespace's own target") || !strings.Contains(msg, "remove spec.target") {
		t.Errorf("Ready message %q does not say what is wrong and what to do", msg)
	}
	waitForEvent(t, d, "Warning", ReasonInvalidTarget, "not this namespace's own")

	// Removing it, or deleting and re-creating the Delegation, gives the same target back.
	d.Spec.Target = ""
	if err := k8s.Update(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, ns, "example-com", "the target back", func(d *v1alpha1.Delegation) (bool, string) {
		return d.Status.ObservedGeneration == 3 && d.Status.Target == target, "target " + d.Status.Target
	})
	if err := k8s.Delete(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	createDelegation(t, ns, "example", "EXAMPLE.com.", "")
	waitFor(t, ns, "example", "the same target after re-creation", func(d *v1alpha1.Delegation) (bool, string) {
		return d.Status.Target == target, "target " + d.Status.Target
	})

	// The user adds the CNAME: the next check (after backoff, no spec change) verifies it.
	srv.Set(t, correct("example.com", target)...)
	d = waitFor(t, ns, "example", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	wantMsg = "_acme-challenge.example.com points to " + bare(target) + ", and acme.example.com is delegated to ns.example.com."
	if c := condition(t, d, v1alpha1.ConditionVerified); c.Message != wantMsg {
		t.Errorf("Verified message %q, want %q", c.Message, wantMsg)
	}
	if c := condition(t, d, v1alpha1.ConditionReady); c.Status != metav1.ConditionTrue || c.Reason != ReasonVerified {
		t.Errorf("Ready %s %s, want True %s", c.Status, c.Reason, ReasonVerified)
	}
	waitForEvent(t, d, "Normal", "Verified", wantMsg)
}

func TestSpecTarget(t *testing.T) {
	ns := newNamespace(t, "spec-target")
	own := derived(t, ns, "example.com")
	const legacy = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	srv := recordstest.NewServer(t, append(correct("example.com", own), correct("example.net", legacy)[2:]...)...)
	startController(t, srv.Addr, ns)

	// The namespace's own target, spelt differently, is honoured in canonical form.
	createDelegation(t, ns, "example-com", "Example.COM", strings.ToUpper(own))
	d := waitFor(t, ns, "example-com", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	if d.Status.Target != own {
		t.Errorf("target %q, want %q", d.Status.Target, own)
	}

	// A target of another kind (acme-dns's, an earlier version's) with its proof is honoured.
	p := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "example-net", Annotations: map[string]string{
			v1alpha1.TargetProofAnnotation: testOptions.TargetKey.Proof(ns, "example.net", legacy)}},
		Spec: v1alpha1.DelegationSpec{Domain: "example.net", Target: legacy},
	}
	if err := k8s.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, ns, "example-net", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	if d.Status.Target != legacy {
		t.Errorf("target %q, want the proved %q", d.Status.Target, legacy)
	}

	// Names that are not targets are refused by the API server (the CRD's pattern) or, when
	// the pattern lets them through, by the rule.
	for _, target := range []string{"_acme-challenge.acme.example.com.", "ACME.example.com.", "ns.example.com.", "_acme-challenge.shop.example."} {
		d := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "bad-"}, Spec: v1alpha1.DelegationSpec{Domain: "shop.example", Target: target}}
		if err := k8s.Create(context.Background(), d); err == nil || !strings.Contains(err.Error(), "spec.target") {
			t.Errorf("spec.target %q: created (%v), want refused by the CRD's validation", target, err)
		}
	}
	createDelegation(t, ns, "other-zone", "shop.example", "b6e4682c-5109-4a34-ac99-d5097d5b2b68.example.org.")
	d = waitFor(t, ns, "other-zone", "InvalidTarget", hasCondition(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonInvalidTarget))
	if d.Status.Target != "" || !strings.Contains(condition(t, d, v1alpha1.ConditionReady).Message, "<uuid>.<zone>") {
		t.Errorf("target %q, Ready %q; want none and the form explained", d.Status.Target, condition(t, d, v1alpha1.ConditionReady).Message)
	}
}

func TestVerificationFailures(t *testing.T) {
	const target = "0c8e2a1d-6f3b-4c57-9a0e-2b7d4f1e8c93.acme.example.com."
	const bt = "0c8e2a1d-6f3b-4c57-9a0e-2b7d4f1e8c93.acme.example.com"
	without := func(prefix string) []string {
		var out []string
		for _, rr := range correct("example.com", target) {
			if !strings.HasPrefix(rr, prefix) {
				out = append(out, rr)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		rrs    []string
		rcodes map[string]int
		reason string
		msg    string
	}{
		{
			name:   "wrong target",
			rrs:    append(without("_acme-challenge."), "_acme-challenge.example.com. 300 IN CNAME old.acme-dns.example.net."),
			reason: "CNAMEWrongTarget",
			msg: "_acme-challenge.example.com is a CNAME to old.acme-dns.example.net, not to " + bt + "; change it. " +
				"the TXT lookup of _acme-challenge.example.com fails: NXDOMAIN (old.acme-dns.example.net does not exist).",
		},
		{
			name:   "missing CNAME",
			rrs:    without("_acme-challenge."),
			reason: "CNAMEMissing",
			msg: "_acme-challenge.example.com has no CNAME; add: _acme-challenge.example.com CNAME " + bt + ". " +
				"the TXT lookup of _acme-challenge.example.com fails: NXDOMAIN (_acme-challenge.example.com does not exist).",
		},
		{
			name:   "missing NS",
			rrs:    without("acme.example.com.")[:2], // the A record and the CNAME, nothing in the zone
			reason: "NSNotDelegated",
			msg: "acme.example.com is not delegated to ns.example.com (NS lookup returned NXDOMAIN); add: acme.example.com NS ns.example.com. " +
				"the TXT lookup of _acme-challenge.example.com fails: NXDOMAIN (" + bt + " does not exist).",
		},
		{
			name:   "wrong name-server address",
			rrs:    append(without("ns.example.com."), "ns.example.com. 300 IN A 192.0.2.7"),
			reason: "NameServerAddress",
			msg:    "ns.example.com resolves to 192.0.2.7, not 34.84.45.1; change it.",
		},
		{
			name:   "TXT lookup SERVFAIL",
			rrs:    correct("example.com", target),
			rcodes: map[string]int{target: dns.RcodeServerFailure},
			reason: "TXTLookupFailed",
			msg:    "the TXT lookup of _acme-challenge.example.com fails: SERVFAIL.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t, "failure")
			srv := recordstest.NewServer(t, tc.rrs...)
			for name, rcode := range tc.rcodes {
				srv.SetRcode(name, rcode)
			}
			startController(t, srv.Addr, ns)
			failed := testutil.ToFloat64(checks.WithLabelValues(tc.reason))
			createProved(t, ns, "example-com", "example.com", target)

			d := waitFor(t, ns, "example-com", "Verified=False "+tc.reason, hasCondition(v1alpha1.ConditionVerified, metav1.ConditionFalse, tc.reason))
			if got := testutil.ToFloat64(checks.WithLabelValues(tc.reason)); got <= failed {
				t.Errorf("acmezone_delegation_checks_total{reason=%q} stayed at %v after the failed check", tc.reason, got)
			}
			if got := verifiedSeries(t, ns); got["example-com/example.com"] != 0 || len(got) != 1 {
				t.Errorf("acmezone_delegation_verified in %s: %v, want example-com/example.com 0", ns, got)
			}
			if c := condition(t, d, v1alpha1.ConditionVerified); c.Message != tc.msg {
				t.Errorf("Verified message\n%q, want\n%q", c.Message, tc.msg)
			}
			if c := condition(t, d, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || !strings.HasSuffix(c.Message, tc.msg) {
				t.Errorf("Ready %s: %q; want False and the problems", c.Status, c.Message)
			}
			waitForEvent(t, d, "Warning", "NotVerified", tc.msg)

			// The user fixes the records; the backoff's next check sees it.
			srv.Set(t, correct("example.com", target)...)
			d = waitFor(t, ns, "example-com", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
			if c := condition(t, d, v1alpha1.ConditionReady); c.Status != metav1.ConditionTrue {
				t.Errorf("Ready %s, want True once verified", c.Status)
			}
			waitForEvent(t, d, "Normal", "Verified", "_acme-challenge.example.com points to "+bt)
			if got := verifiedSeries(t, ns); got["example-com/example.com"] != 1 {
				t.Errorf("acmezone_delegation_verified in %s: %v once verified, want 1", ns, got)
			}
			// A deleted Delegation leaves no series behind.
			if err := k8s.Delete(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
				return len(verifiedSeries(t, ns)) == 0, nil
			}); err != nil {
				t.Errorf("acmezone_delegation_verified in %s after the delete: %v, want no series", ns, verifiedSeries(t, ns))
			}
		})
	}
}

// verifiedSeries reads acmezone_delegation_verified for namespace ns: "name/domain" to value.
func verifiedSeries(t *testing.T, ns string) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	verified.Collect(ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		l := map[string]string{}
		for _, p := range pb.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["namespace"] == ns {
			out[l["name"]+"/"+l["domain"]] = pb.GetGauge().GetValue()
		}
	}
	return out
}

// TestPublicDNSDecides: Delegations of several namespaces for one domain each get their own
// target; the one the public CNAME points at is Verified, the other learns only that it is
// not its own, never the other's namespace or target.
func TestPublicDNSDecides(t *testing.T) {
	nsA, nsB, nsC := newNamespace(t, "dns-a"), newNamespace(t, "dns-b"), newNamespace(t, "dns-c")
	targetA, targetB := derived(t, nsA, "example.com"), derived(t, nsB, "example.com")
	if targetA == targetB {
		t.Fatalf("two namespaces got one target %s", targetA)
	}
	srv := recordstest.NewServer(t, correct("example.com", targetA)...)
	startController(t, srv.Addr, nsA, nsB, nsC)

	createDelegation(t, nsA, "example-com", "example.com", "")
	waitFor(t, nsA, "example-com", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	createDelegation(t, nsB, "mine", "Example.com.", "")
	b := waitFor(t, nsB, "mine", "Verified=False CNAMEWrongTarget", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionFalse, "CNAMEWrongTarget"))
	if b.Status.Target != targetB {
		t.Errorf("target %q, want its own %q", b.Status.Target, targetB)
	}
	msg := condition(t, b, v1alpha1.ConditionVerified).Message
	if want := "is a CNAME to another target in acme.example.com, not to " + bare(targetB) + "; change it"; !strings.Contains(msg, want) {
		t.Errorf("Verified message %q does not say %q", msg, want)
	}
	// A steals nothing from A either: a spec.target naming A's target gives C no target.
	createDelegation(t, nsC, "steal", "other.example", targetA)
	c := waitFor(t, nsC, "steal", "InvalidTarget", hasCondition(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonInvalidTarget))
	for _, d := range []*v1alpha1.Delegation{b, c} {
		for _, cond := range d.Status.Conditions {
			if strings.Contains(cond.Message, nsA) || strings.Contains(cond.Message, bare(targetA)) {
				t.Errorf("%s/%s: condition %s discloses namespace %s or its target: %q", d.Namespace, d.Name, cond.Type, nsA, cond.Message)
			}
		}
	}
	var events eventsv1.EventList
	if err := k8s.List(context.Background(), &events); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.Regarding.Namespace != nsA && (strings.Contains(e.Note, nsA) || strings.Contains(e.Note, bare(targetA))) {
			t.Errorf("Event %s about %s/%s discloses namespace %s or its target: %q", e.Reason, e.Regarding.Namespace, e.Regarding.Name, nsA, e.Note)
		}
	}

	// A's Delegation goes: B keeps its own target and is still not what the CNAME names.
	if err := k8s.Delete(context.Background(), &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "example-com"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	b = waitFor(t, nsB, "mine", "Verified=False", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionFalse, "CNAMEWrongTarget"))
	if b.Status.Target != targetB {
		t.Errorf("target %q after the other namespace's Delegation went, want %q", b.Status.Target, targetB)
	}
}

// TestLegacyTargetKept: a target an earlier version gave (a random UUID in status.target) is
// kept by the Delegation the earlier rule served, with a proof, so the user's CNAME keeps
// working; a younger Delegation with the same status in another namespace, and any Delegation
// created after the key, are not.
func TestLegacyTargetKept(t *testing.T) {
	nsA, nsB := newNamespace(t, "legacy-a"), newNamespace(t, "legacy-b")
	const legacy = "5e0c1d2a-7b3f-4e8d-9a6c-0f1e2d3c4b5a.acme.example.com."
	srv := recordstest.NewServer(t, correct("example.com", legacy)...)
	withStatus := func(ns, name string) *v1alpha1.Delegation {
		d := createDelegation(t, ns, name, "example.com", "")
		d.Status.Target = legacy
		if err := k8s.Status().Update(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a := withStatus(nsA, "example-com")
	time.Sleep(time.Until(a.CreationTimestamp.Add(1100 * time.Millisecond)))
	withStatus(nsB, "hijack") // what the earlier version let happen
	time.Sleep(1100 * time.Millisecond)
	opts := testOptions
	opts.LegacyBefore = time.Now()
	time.Sleep(1100 * time.Millisecond)
	withStatus(nsB, "after") // created after the key: a status a tenant may have forged
	startControllerWith(t, opts, srv.Addr, nsA, nsB)

	d := waitFor(t, nsA, "example-com", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	if d.Status.Target != legacy || d.Spec.Target != legacy || d.Annotations[v1alpha1.TargetProofAnnotation] == "" {
		t.Errorf("target %q, spec.target %q, proof %q: want the earlier target kept with a proof", d.Status.Target, d.Spec.Target, d.Annotations[v1alpha1.TargetProofAnnotation])
	}
	waitForEvent(t, d, "Normal", ReasonTargetKept, "keeps its target "+bare(legacy))
	for _, name := range []string{"hijack", "after"} {
		o := waitFor(t, nsB, name, "its own target", func(d *v1alpha1.Delegation) (bool, string) {
			return d.Status.Target == derived(t, nsB, "example.com"), "target " + d.Status.Target
		})
		if o.Spec.Target != "" || o.Annotations[v1alpha1.TargetProofAnnotation] != "" {
			t.Errorf("%s/%s got spec.target %q and proof %q", nsB, name, o.Spec.Target, o.Annotations[v1alpha1.TargetProofAnnotation])
		}
	}
}

// TestACMEDNSAccountLeftAlone: the Delegation of an acme-dns account (labelled
// v1alpha1.ACMEDNSAccountLabel) has no known domain, so the reconciler writes nothing to it,
// while an ordinary Delegation created after it in the same namespace is reconciled.
func TestACMEDNSAccountLeftAlone(t *testing.T) {
	ns := newNamespace(t, "acme-dns")
	const target = "c0ffee00-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	srv := recordstest.NewServer(t, delegated...)
	startController(t, srv.Addr, ns)

	account := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-dns-account", Labels: map[string]string{v1alpha1.ACMEDNSAccountLabel: "c0ffee00"}},
		Spec:       v1alpha1.DelegationSpec{Domain: strings.TrimSuffix(target, "."), Target: target},
	}
	if err := k8s.Create(context.Background(), account); err != nil {
		t.Fatal(err)
	}
	createDelegation(t, ns, "example-com", "example.com", "")
	// Once the later Delegation has its conditions, the reconciler has seen the account's.
	waitFor(t, ns, "example-com", "Verified=False", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionFalse, "CNAMEMissing"))
	time.Sleep(500 * time.Millisecond)
	d := waitFor(t, ns, "acme-dns-account", "the account Delegation", func(*v1alpha1.Delegation) (bool, string) { return true, "" })
	if d.Status.Target != "" || len(d.Status.Records) != 0 || len(d.Status.Conditions) != 0 || d.Status.ObservedGeneration != 0 {
		t.Errorf("account Delegation's status written: %+v", d.Status)
	}
	var events eventsv1.EventList
	if err := k8s.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.Regarding.Name == d.Name {
			t.Errorf("Event about the account Delegation: %s %s", e.Reason, e.Note)
		}
	}
}
