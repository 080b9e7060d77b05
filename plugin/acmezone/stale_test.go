// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// TestStaleReflectors: the gauge rises when a reflector's request to the API server fails, and
// falls with the next one that succeeds or when the reflector stops; a request ended by the
// reflector's own stop does not count.
func TestStaleReflectors(t *testing.T) {
	var down atomic.Bool
	var endWatch atomic.Bool // a watch stream the server ends (as a stopped API server does)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			if !endWatch.Load() {
				<-r.Context().Done()
			}
			return
		}
		_, _ = w.Write([]byte(`{"kind":"ChallengeRecordList","metadata":{"resourceVersion":"1"},"items":[]}`))
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
	base := testutil.ToFloat64(staleReflectors)
	a := &contact{lister: &lister{client: rc, resource: "challengerecords"}}
	b := &contact{lister: &lister{client: rc, resource: "challengerecords"}}
	want := func(step string, n float64) {
		t.Helper()
		if got := testutil.ToFloat64(staleReflectors) - base; got != n {
			t.Errorf("%s: %v stale reflectors, want %v", step, got, n)
		}
	}
	opts := metav1.ListOptions{ResourceVersion: "0"}
	if _, err := a.ListWithContext(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	want("after a list that worked", 0)
	down.Store(true)
	for _, c := range []*contact{a, b, a} {
		if _, err := c.ListWithContext(t.Context(), opts); err == nil {
			t.Fatal("a list against a failing API server succeeded")
		}
	}
	want("two reflectors failing (one twice)", 2)
	time.Sleep(20 * time.Millisecond)
	if got := testutil.ToFloat64(staleSeconds); got < 0.02 {
		t.Errorf("coredns_acmezone_stale_seconds %v with two reflectors stale for 20 ms, want at least 0.02", got)
	}
	down.Store(false)
	if _, err := a.ListWithContext(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	want("one back", 1)
	b.set(false) // b's reflector stopped
	want("the other stopped", 0)
	// (Only when no reflector of another test is stale: the gauge is the process's.)
	if got := testutil.ToFloat64(staleSeconds); base == 0 && got != 0 {
		t.Errorf("coredns_acmezone_stale_seconds %v with every reflector in contact, want 0", got)
	}

	down.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := a.ListWithContext(ctx, opts); err == nil {
		t.Fatal("a cancelled list succeeded")
	}
	want("a request cancelled by the reflector's stop", 0)

	// A watch the API server ends counts until a request succeeds again; one the reflector
	// stops does not.
	down.Store(false)
	w, err := a.WatchWithContext(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	for range w.ResultChan() {
	}
	time.Sleep(50 * time.Millisecond)
	want("a watch the reflector stopped", 0)
	endWatch.Store(true)
	if w, err = a.WatchWithContext(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	for range w.ResultChan() {
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(staleReflectors)-base != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	want("a watch the API server ended", 1)
	if _, err := a.ListWithContext(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	want("listed again", 0)
}
