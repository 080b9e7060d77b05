// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package challenge

import (
	"context"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestUIDByKey: the solver's lookup finds the DNS-01 Challenge with the key and name, not one
// being deleted, not an HTTP-01 one, and none for a key no Challenge has (after its wait).
func TestUIDByKey(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := cmacme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ch := func(name, uid, key, dnsName string, typ cmacme.ACMEChallengeType, deleting bool) *cmacme.Challenge {
		c := &cmacme.Challenge{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID(uid)},
			Spec:       cmacme.ChallengeSpec{Key: key, DNSName: dnsName, Type: typ},
		}
		if deleting {
			c.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			c.Finalizers = []string{"acme.cert-manager.io/finalizer"}
		}
		return c
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithIndex(&cmacme.Challenge{}, challengeKeyField, challengeKey).
		WithObjects(
			ch("apex", "uid-apex", "k1", "example.com", cmacme.ACMEChallengeTypeDNS01, false),
			ch("gone", "uid-gone", "k2", "example.com", cmacme.ACMEChallengeTypeDNS01, true),
			ch("http", "uid-http", "k3", "example.com", cmacme.ACMEChallengeTypeHTTP01, false),
			ch("other", "uid-other", "k4", "www.example.com", cmacme.ACMEChallengeTypeDNS01, false),
		).Build()
	lookup := UIDByKey(c, 200*time.Millisecond)
	for _, tc := range []struct {
		key, dnsName string
		want         types.UID
	}{
		{"k1", "example.com", "uid-apex"},
		{"k2", "example.com", ""}, // being deleted
		{"k3", "example.com", ""}, // not DNS-01
		{"k4", "example.com", ""}, // another name
		{"k4", "www.example.com", "uid-other"},
		{"nope", "example.com", ""},
	} {
		got, err := lookup(context.Background(), tc.key, tc.dnsName)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("UIDByKey(%s, %s) = %q, want %q", tc.key, tc.dnsName, got, tc.want)
		}
	}
}
