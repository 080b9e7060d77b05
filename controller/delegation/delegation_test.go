package delegation

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/miekg/dns"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records/recordstest"
)

func TestTargetAssignedAndStable(t *testing.T) {
	ns := newNamespace(t, "stable")
	srv := recordstest.NewServer(t, delegated...) // the zone is delegated, the CNAME not there yet

	// Two controllers at once: only one target may win.
	stop1 := startController(t, srv.Addr, ns)
	stop2 := startController(t, srv.Addr, ns)
	createDelegation(t, ns, "example-com", "example.com", "")
	d := waitFor(t, ns, "example-com", "a target", func(d *v1alpha1.Delegation) (bool, string) {
		return d.Status.Target != "", "no target"
	})
	target := d.Status.Target
	id, err := uuid.Parse(strings.TrimSuffix(target, ".acme.example.com."))
	if err != nil || id.Version() != 4 || target != id.String()+".acme.example.com." {
		t.Errorf("target %q, want <lower-case uuid v4>.acme.example.com.", target)
	}

	d = waitFor(t, ns, "example-com", "Verified=False CNAMEMissing", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionFalse, "CNAMEMissing"))
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
	if c := condition(t, d, v1alpha1.ConditionConflict); c.Status != metav1.ConditionFalse {
		t.Errorf("Conflict %s, want False", c.Status)
	}
	if d.Status.ObservedGeneration != d.Generation {
		t.Errorf("observedGeneration %d, want %d", d.Status.ObservedGeneration, d.Generation)
	}
	waitForEvent(t, d, "Warning", "NotVerified", "add: _acme-challenge.example.com CNAME "+bare(target))

	// Both controllers keep checking (with backoff); the target stays.
	time.Sleep(1500 * time.Millisecond)
	if d = waitFor(t, ns, "example-com", "", func(*v1alpha1.Delegation) (bool, string) { return true, "" }); d.Status.Target != target {
		t.Errorf("target changed from %q to %q while two controllers ran", target, d.Status.Target)
	}
	if n := countEvents(t, d, "NotVerified"); n != 1 {
		t.Errorf("%d NotVerified Events, want 1: Events are posted on changes only", n)
	}

	// A restarted controller keeps the target, even when spec.target asks for another one.
	stop1()
	stop2()
	startController(t, srv.Addr, ns)
	d.Spec.Target = "Other.ACME.example.com."
	if err := k8s.Update(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, ns, "example-com", "TargetFixed", hasCondition(ConditionTargetFixed, metav1.ConditionTrue, ReasonSpecTargetIgnored))
	if d.Status.Target != target {
		t.Errorf("target changed from %q to %q after spec.target changed", target, d.Status.Target)
	}
	if d.Status.ObservedGeneration != d.Generation || d.Generation != 2 {
		t.Errorf("observedGeneration %d, generation %d; want both 2", d.Status.ObservedGeneration, d.Generation)
	}
	msg := condition(t, d, ConditionTargetFixed).Message
	for _, s := range []string{"spec.target is other.acme.example.com.", "the target stays " + target, "because the CNAME _acme-challenge.example.com"} {
		if !strings.Contains(msg, s) {
			t.Errorf("TargetFixed message %q does not say %q", msg, s)
		}
	}
	waitForEvent(t, d, "Warning", "TargetFixed", "the target stays "+target)

	d.Spec.Target = ""
	if err := k8s.Update(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, ns, "example-com", "no TargetFixed", func(d *v1alpha1.Delegation) (bool, string) {
		return d.Status.ObservedGeneration == 3 && meta.FindStatusCondition(d.Status.Conditions, ConditionTargetFixed) == nil, "TargetFixed still there"
	})
	if d.Status.Target != target {
		t.Errorf("target changed from %q to %q after spec.target was removed", target, d.Status.Target)
	}

	// The user adds the CNAME: the next check (after backoff, no spec change) verifies it.
	srv.Set(t, correct("example.com", target)...)
	d = waitFor(t, ns, "example-com", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
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
	const target = "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	srv := recordstest.NewServer(t, append(correct("example.com", target), `_acme-challenge.shop.example. 10 IN TXT "key"`)...)
	startController(t, srv.Addr, ns)

	// spec.target is honoured, in canonical form.
	createDelegation(t, ns, "example-com", "Example.COM", strings.ToUpper(target))
	d := waitFor(t, ns, "example-com", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	if d.Status.Target != target {
		t.Errorf("target %q, want %q", d.Status.Target, target)
	}
	wantRecords := []v1alpha1.DNSRecord{
		{Type: "A", Name: "ns.example.com", Content: "34.84.45.1"},
		{Type: "NS", Name: "acme.example.com", Content: "ns.example.com"},
		{Type: "CNAME", Name: "_acme-challenge.example.com", Content: "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com"},
	}
	if !slices.Equal(d.Status.Records, wantRecords) {
		t.Errorf("status.records %v, want %v", d.Status.Records, wantRecords)
	}
	if c := meta.FindStatusCondition(d.Status.Conditions, ConditionTargetFixed); c != nil {
		t.Errorf("TargetFixed %+v for a spec.target that only differs in case", c)
	}

	// acmezone serves the user's own zone: no CNAME to add.
	createDelegation(t, ns, "shop-example", "shop.example", "_acme-challenge.shop.example.")
	d = waitFor(t, ns, "shop-example", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	if !slices.Equal(d.Status.Records, wantRecords[:2]) {
		t.Errorf("status.records %v, want %v", d.Status.Records, wantRecords[:2])
	}
	want := "the TXT lookup of _acme-challenge.shop.example is answered at _acme-challenge.shop.example, and acme.example.com is delegated to ns.example.com."
	if c := condition(t, d, v1alpha1.ConditionVerified); c.Message != want {
		t.Errorf("Verified message %q, want %q", c.Message, want)
	}

	// The zone's apex and its name server's name are not a namespace's to write TXT records at.
	for name, target := range map[string]string{"apex": "ACME.example.com.", "nameserver": "ns.example.com."} {
		createDelegation(t, ns, name, name+".example.org", target)
		d = waitFor(t, ns, name, "InvalidTarget", hasCondition(v1alpha1.ConditionConflict, metav1.ConditionTrue, ReasonInvalidTarget))
		if d.Status.Target != "" {
			t.Errorf("%s: target %q assigned, want none", name, d.Status.Target)
		}
		if msg := condition(t, d, v1alpha1.ConditionConflict).Message; !strings.Contains(msg, "spec.target "+v1alpha1.CanonicalName(target)) || !strings.Contains(msg, "Remove spec.target") {
			t.Errorf("%s: Conflict message %q does not name the target and the way out", name, msg)
		}
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
			createDelegation(t, ns, "example-com", "example.com", target)

			d := waitFor(t, ns, "example-com", "Verified=False "+tc.reason, hasCondition(v1alpha1.ConditionVerified, metav1.ConditionFalse, tc.reason))
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
		})
	}
}

func TestConflict(t *testing.T) {
	const target = "7d1f0c52-3a8e-4b96-8f21-c4e05a9b3d17.acme.example.com."
	nsA, nsB, nsC := newNamespace(t, "conflict-a"), newNamespace(t, "conflict-b"), newNamespace(t, "conflict-c")
	srv := recordstest.NewServer(t, correct("example.com", target)...)
	startController(t, srv.Addr, nsA, nsB, nsC)

	a := createDelegation(t, nsA, "example-com", "example.com", target)
	waitFor(t, nsA, "example-com", "Verified", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve))
	// Creation timestamps have whole seconds: make the next claim visibly younger.
	time.Sleep(time.Until(a.CreationTimestamp.Add(1100 * time.Millisecond)))

	// The same domain (written differently) in another namespace: the newer one is in conflict.
	createDelegation(t, nsB, "mine", "Example.com.", "")
	b := waitFor(t, nsB, "mine", "Conflict", hasCondition(v1alpha1.ConditionConflict, metav1.ConditionTrue, ReasonDomainDelegated))
	msg := condition(t, b, v1alpha1.ConditionConflict).Message
	for _, s := range []string{"Delegation " + nsA + "/example-com is older and already delegates example.com", "records at its target " + target + " are served only for namespace " + nsA} {
		if !strings.Contains(msg, s) {
			t.Errorf("Conflict message %q does not say %q", msg, s)
		}
	}
	if c := condition(t, b, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != ReasonInConflict {
		t.Errorf("Ready %s %s, want False %s", c.Status, c.Reason, ReasonInConflict)
	}
	if c := condition(t, b, v1alpha1.ConditionVerified); c.Status != metav1.ConditionUnknown {
		t.Errorf("Verified %s, want Unknown while in conflict", c.Status)
	}
	if b.Status.Target == "" || b.Status.Target == target {
		t.Errorf("target %q, want a target of its own", b.Status.Target)
	}
	waitForEvent(t, b, "Warning", "Conflict", "Delegation "+nsA+"/example-com is older")
	if a := waitFor(t, nsA, "example-com", "", func(*v1alpha1.Delegation) (bool, string) { return true, "" }); condition(t, a, v1alpha1.ConditionConflict).Status != metav1.ConditionFalse {
		t.Errorf("the older Delegation has Conflict %s, want False", condition(t, a, v1alpha1.ConditionConflict).Status)
	}

	// Another domain, but spec.target names the older Delegation's target: not assigned.
	createDelegation(t, nsC, "steal", "other.example", target)
	c := waitFor(t, nsC, "steal", "Conflict", hasCondition(v1alpha1.ConditionConflict, metav1.ConditionTrue, ReasonTargetInUse))
	if c.Status.Target != "" || len(c.Status.Records) != 0 {
		t.Errorf("target %q and records %v given to a Delegation whose spec.target is taken", c.Status.Target, c.Status.Records)
	}
	if msg := condition(t, c, v1alpha1.ConditionConflict).Message; !strings.Contains(msg, "is the target of Delegation "+nsA+"/example-com") {
		t.Errorf("Conflict message %q does not name the holder", msg)
	}

	// The older Delegation goes: the newer one owns the domain now, and is checked (its CNAME
	// still points at the old target); the target is free for the other domain.
	if err := k8s.Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	b = waitFor(t, nsB, "mine", "no Conflict", hasCondition(v1alpha1.ConditionConflict, metav1.ConditionFalse, ReasonNoConflict))
	waitForEvent(t, b, "Normal", "ConflictResolved", "example.com")
	b = waitFor(t, nsB, "mine", "Verified=False CNAMEWrongTarget", hasCondition(v1alpha1.ConditionVerified, metav1.ConditionFalse, "CNAMEWrongTarget"))
	if msg := condition(t, b, v1alpha1.ConditionVerified).Message; !strings.Contains(msg, "is a CNAME to "+bare(target)+", not to "+bare(b.Status.Target)+"; change it") {
		t.Errorf("Verified message %q", msg)
	}
	c = waitFor(t, nsC, "steal", "no Conflict", hasCondition(v1alpha1.ConditionConflict, metav1.ConditionFalse, ReasonNoConflict))
	if c.Status.Target != target {
		t.Errorf("target %q, want %q once free", c.Status.Target, target)
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
