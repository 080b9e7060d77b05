// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// A relist replaces the objects of its kind in its namespace, and nothing else, in one change.
func TestSinkReplace(t *testing.T) {
	a := newTestPlugin(t, testCorefile)
	a.store.goLive()
	aTarget, bTarget := targetOf("a", "d.example"), targetOf("b", "d.example")
	for _, ns := range []string{"a", "b"} {
		a.store.updateDelegation("", nn(ns, "d"), deleg("d.example"))
		a.store.updateRecord("", nn(ns, "keep"), &recordIn{fqdn: targetOf(ns, "d.example"), value: ns + "-keep"})
		a.store.updateRecord("", nn(ns, "gone"), &recordIn{fqdn: targetOf(ns, "d.example"), value: ns + "-gone"})
	}
	txt := func(name string) []string {
		var out []string
		for _, rr := range a.store.load().lookup(name).get(dns.TypeTXT, name) {
			out = append(out, rr.(*dns.TXT).Txt[0])
		}
		return out
	}
	if got := txt(aTarget); len(got) != 2 {
		t.Fatalf("before the relist: %v", got)
	}
	rebuilds := func() float64 { return testutil.ToFloat64(snapshotRebuilds) }
	before := rebuilds()

	k := &sink{a: a, namespace: "a", lw: &lister{resource: "challengerecords"}, synced: func() {}}
	list := []any{
		&item{key: nn("a", "keep"), record: &recordIn{fqdn: aTarget, value: "a-keep"}},
		&item{key: nn("a", "new"), record: &recordIn{fqdn: aTarget, value: "a-new"}},
	}
	if err := k.Replace(list, "7"); err != nil {
		t.Fatal(err)
	}
	if got, want := txt(aTarget), []string{"a-keep", "a-new"}; !reflect.DeepEqual(got, want) {
		t.Errorf("namespace a after the relist: %v, want %v", got, want)
	}
	if got, want := txt(bTarget), []string{"b-gone", "b-keep"}; !reflect.DeepEqual(got, want) {
		t.Errorf("namespace b (out of the sink's scope) after the relist: %v, want %v", got, want)
	}
	if n := rebuilds() - before; n != 1 {
		t.Errorf("the relist published %v snapshots, want 1", n)
	}
	if err := k.Replace([]any{&corev1.Pod{}}, "8"); err == nil {
		t.Error("Replace with a Pod: no error")
	}

	// A watch event carries the typed object.
	cr := v1alpha1.NewChallengeRecord("b", bTarget, "b-event")
	if err := k.Add(cr); err != nil {
		t.Fatal(err)
	}
	if got := txt(bTarget); len(got) != 3 {
		t.Errorf("after a watch event: %v, want 3 values", got)
	}
	if err := k.Delete(cr); err != nil {
		t.Fatal(err)
	}
	if got := txt(bTarget); len(got) != 2 {
		t.Errorf("after the delete event: %v, want 2 values", got)
	}
}

// ConfigMaps are read only from the namespaces of `configmaps`: none by default.
func TestConfigMapsOnlyFromConfiguredNamespaces(t *testing.T) {
	for i, tc := range []struct {
		properties string
		want       []string // resource/namespace of every reflector
	}{
		{"", []string{"challengerecords/", "delegations/"}},
		{"namespaces shop blog", []string{"challengerecords/shop", "delegations/shop", "challengerecords/blog", "delegations/blog"}},
		{"configmaps acmezone", []string{"challengerecords/", "delegations/", "configmaps/acmezone"}},
		{"namespaces shop\n\tconfigmaps acmezone kube-system", []string{"challengerecords/shop", "delegations/shop", "configmaps/acmezone", "configmaps/kube-system"}},
	} {
		a := newTestPlugin(t, strings.Replace(testCorefile, "ttl 10", "ttl 10\n\t"+tc.properties, 1))
		var got []string
		for _, k := range a.sinks(nil, nil, nil, "") {
			got = append(got, k.lw.resource+"/"+k.lw.namespace)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Test %d (%q): reflectors %v, want %v", i, tc.properties, got, tc.want)
		}
	}
}
