// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// The page decoders keep only some fields; what they keep must be exactly what the typed
// objects of a watch event give.
func TestPageDecodersMatchTypedObjects(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	records := &v1alpha1.ChallengeRecordList{
		ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next-page"},
		Items: []v1alpha1.ChallengeRecord{
			*v1alpha1.NewChallengeRecord("shop", "T1.acme.example.com", "value-one"),
			*v1alpha1.NewChallengeRecord("other", "t2.acme.example.com.", "value-two"),
		},
	}
	records.Items[0].CreationTimestamp = created
	records.Items[0].Spec.TTL = ptr.To[int32](30)
	records.Items[0].ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "solver", Operation: metav1.ManagedFieldsOperationUpdate}}
	records.Items[0].Labels = map[string]string{"acmezone.io/challenge-uid": "x"}
	records.Items[1].CreationTimestamp = created
	records.Items[1].Annotations = map[string]string{v1alpha1.CreatedAtAnnotation: "2026-11-26T10:00:00.123456789Z"}

	body, err := json.Marshal(records)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := decodeList(bytes.NewReader(body), "challengerecords")
	if err != nil {
		t.Fatal(err)
	}
	page := obj
	if page.ResourceVersion != "42" || page.Continue != "next-page" {
		t.Errorf("list metadata: resourceVersion %q continue %q, want 42 and next-page", page.ResourceVersion, page.Continue)
	}
	if len(page.Items) != 2 {
		t.Fatalf("%d items, want 2", len(page.Items))
	}
	// Compare with the typed objects decoded from the same JSON, as a watch event gives them.
	records = &v1alpha1.ChallengeRecordList{}
	if err := json.Unmarshal(body, records); err != nil {
		t.Fatal(err)
	}
	for i, cr := range records.Items {
		want := recordOf(&cr.Spec, cr.CreationTimestamp.Time, cr.Annotations[v1alpha1.CreatedAtAnnotation])
		if got := page.Items[i]; got.key != keyOf(&cr) || !reflect.DeepEqual(got.record, want) {
			t.Errorf("item %d: %v %+v, want %v %+v", i, got.key, got.record, keyOf(&cr), want)
		}
	}
	if got := page.Items[0].record; got.ttl != 30 || got.fqdn != "t1.acme.example.com." {
		t.Errorf("record 0: ttl %d fqdn %q, want 30 and the canonical name", got.ttl, got.fqdn)
	}
	if got := page.Items[1].record.created; got.Nanosecond() != 123456789 {
		t.Errorf("record 1 created %v: the created-at annotation was not used", got)
	}

	proof := testKey.Proof("shop", "example.org", "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com.")
	delegations := &v1alpha1.DelegationList{Items: []v1alpha1.Delegation{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "derived", CreationTimestamp: created}, Spec: v1alpha1.DelegationSpec{Domain: "example.com"},
			Status: v1alpha1.DelegationStatus{Target: "ignored.acme.example.com.", Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Verified", Message: "ok"}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "proved", CreationTimestamp: created, Annotations: map[string]string{v1alpha1.TargetProofAnnotation: proof, "other": "x"}},
			Spec: v1alpha1.DelegationSpec{Domain: "example.org", Target: "B6E4682C-5109-4a34-ac99-d5097d5b2b68.acme.example.com",
				PersistentAuthorization: &v1alpha1.PersistentAuthorization{IssuerDomainNames: []string{"letsencrypt.org"}, AccountURI: "https://ca.example/acct/1"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "blog", Name: "none"}},
	}}
	body, err = json.Marshal(delegations)
	if err != nil {
		t.Fatal(err)
	}
	if obj, err = decodeList(bytes.NewReader(body), "delegations"); err != nil {
		t.Fatal(err)
	}
	page = obj
	if len(page.Items) != 3 {
		t.Fatalf("%d items, want 3", len(page.Items))
	}
	delegations = &v1alpha1.DelegationList{}
	if err := json.Unmarshal(body, delegations); err != nil {
		t.Fatal(err)
	}
	for i := range delegations.Items {
		d := &delegations.Items[i]
		if got, want := page.Items[i].delegation, delegationOf(d); !reflect.DeepEqual(got, want) {
			t.Errorf("delegation %s: %+v, want %+v", d.Name, got, want)
		}
	}
	if !page.Items[1].delegation.persist || page.Items[0].delegation.persist {
		t.Errorf("persistentAuthorization read as %v, %v; want false, true", page.Items[0].delegation.persist, page.Items[1].delegation.persist)
	}
	// What the store makes of them: the derived target, the proved spec.target, nowhere.
	a := newTestPlugin(t, testCorefile)
	for i, want := range []string{targetOf("shop", "example.com"), "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com.", ""} {
		if got := a.store.target(page.Items[i].key.Namespace, page.Items[i].delegation); got != want {
			t.Errorf("delegation %d is placed at %q, want %q", i, got, want)
		}
	}

	for _, bad := range []string{`{"items": [{"spec": {"fqdn": 7}}]}`, `not json`, `{"items": [{"metadata": {}}`, `[]`} {
		if _, err := decodeList(strings.NewReader(bad), "challengerecords"); err == nil {
			t.Errorf("decodeList(%s): no error", bad)
		}
	}
}

// ConfigMap pages go through the API machinery's decoder.
func TestDecodeConfigMaps(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	list := &corev1.ConfigMapList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMapList"}, Items: []corev1.ConfigMap{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "zone", Labels: map[string]string{ZoneLabel: "acme.example.com"}},
		Data:       map[string]string{"records": "www IN A 192.0.2.7\n"},
	}}}
	body, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := decodeConfigMaps(serializer.NewCodecFactory(scheme))(body)
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*corev1.ConfigMapList)
	a := newTestPlugin(t, testCorefile)
	set := a.configMapRecords(&got.Items[0])
	if set == nil || set.count != 1 || len(set.names["www.acme.example.com."]) != 1 {
		t.Errorf("records of the decoded ConfigMap: %+v", set)
	}
}

// The list request the reflector's first list turns into, against a canned API server answer:
// one request at resourceVersion 0 without a limit, decoded item by item; API errors come back
// as API errors (the reflector's relist logic depends on that). The real API server is in the
// integration tests.
func TestListRequest(t *testing.T) {
	const list = `{"kind":"ChallengeRecordList","metadata":{"resourceVersion":"11"},"items":[{"metadata":{"name":"p1","namespace":"shop","managedFields":[{"manager":"x"}]},"spec":{"fqdn":"p.acme.example.com","value":"pv"}}]}`
	const gone = `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version","reason":"Expired","code":410}`
	for _, tc := range []struct {
		name, body string
		code       int
		check      func(t *testing.T, obj runtime.Object, err error)
	}{
		{"a list", list, 200, func(t *testing.T, obj runtime.Object, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if l := obj.(*itemList); l.ResourceVersion != "11" || len(l.Items) != 1 || l.Items[0].record.fqdn != "p.acme.example.com." || l.Items[0].key != nn("shop", "p1") {
				t.Errorf("got %+v, want p1 at resourceVersion 11", l)
			}
		}},
		{"an API error", gone, 410, func(t *testing.T, obj runtime.Object, err error) {
			if !apierrors.IsResourceExpired(err) {
				t.Errorf("err = %v, want the 410 Expired status", err)
			}
		}},
		{"cut short", list[:len(list)/2], 200, func(t *testing.T, obj runtime.Object, err error) {
			if err == nil || !strings.Contains(err.Error(), "decode challengerecords list") {
				t.Errorf("err = %v, want a decode error", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if q := r.URL.Query(); q.Has("limit") || q.Get("resourceVersion") != "0" || q.Has("watch") {
					t.Errorf("list request %s: want resourceVersion=0, no limit, no watch", r.URL.RawQuery)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.code)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			scheme := runtime.NewScheme()
			if err := v1alpha1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			gv := v1alpha1.GroupVersion
			rc, err := rest.RESTClientFor(&rest.Config{Host: srv.URL, APIPath: "/apis", ContentConfig: rest.ContentConfig{GroupVersion: &gv, NegotiatedSerializer: serializer.NewCodecFactory(scheme).WithoutConversion()}})
			if err != nil {
				t.Fatal(err)
			}
			l := &lister{client: rc, resource: "challengerecords"}
			obj, err := l.ListWithContext(t.Context(), metav1.ListOptions{ResourceVersion: "0", Limit: 500})
			tc.check(t, obj, err)
		})
	}
}
