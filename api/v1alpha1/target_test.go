// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"errors"
	"strings"
	"testing"
)

func testKey(t *testing.T, s string) TargetKey {
	t.Helper()
	k, err := NewTargetKey([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const zone = "acme.example.com."

func TestTargetDerived(t *testing.T) {
	k := testKey(t, strings.Repeat("k", 32))
	shop, err := k.Target(TargetClaim{Namespace: "shop", Domain: "example.com"}, zone)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := TargetLabel(shop, zone)
	if !ok || l[14] != '8' || !strings.ContainsRune("89ab", rune(l[19])) {
		t.Errorf("derived target %s is not <UUIDv8>.%s", shop, zone)
	}
	// The same (namespace, domain), however spelt, gets the same target back.
	for _, d := range []string{"Example.COM", "example.com.", "*.example.com", " example.com "} {
		if got, _ := k.Target(TargetClaim{Namespace: "shop", Domain: d}, zone); got != shop {
			t.Errorf("domain %q: target %s, want %s", d, got, shop)
		}
	}
	// Another namespace, another domain or another key: another target.
	for _, c := range []struct {
		k TargetKey
		c TargetClaim
	}{
		{k, TargetClaim{Namespace: "blog", Domain: "example.com"}},
		{k, TargetClaim{Namespace: "shop", Domain: "example.net"}},
		{k, TargetClaim{Namespace: "sho", Domain: "pexample.com"}}, // no ambiguity in joining the parts
		{testKey(t, strings.Repeat("x", 32)), TargetClaim{Namespace: "shop", Domain: "example.com"}},
	} {
		if got, _ := c.k.Target(c.c, zone); got == shop {
			t.Errorf("%+v got shop's target %s", c.c, got)
		}
	}
}

func TestTargetSpec(t *testing.T) {
	k := testKey(t, strings.Repeat("k", 32))
	own, _ := k.Target(TargetClaim{Namespace: "shop", Domain: "example.com"}, zone)
	legacy := "b6e4682c-5109-4a34-ac99-d5097d5b2b68." + zone
	proof := k.Proof("shop", "example.com", legacy)
	cases := []struct {
		c    TargetClaim
		want string
		err  error
	}{
		{TargetClaim{Namespace: "shop", Domain: "example.com", SpecTarget: strings.ToUpper(strings.TrimSuffix(own, "."))}, own, nil},
		{TargetClaim{Namespace: "shop", Domain: "example.com", SpecTarget: legacy, Proof: proof}, legacy, nil},
		{TargetClaim{Namespace: "shop", Domain: "example.com", SpecTarget: legacy}, "", ErrTargetNotOwned},
		// Another namespace's target, with or without the owner's proof.
		{TargetClaim{Namespace: "blog", Domain: "example.com", SpecTarget: own}, "", ErrTargetNotOwned},
		{TargetClaim{Namespace: "blog", Domain: "example.com", SpecTarget: legacy, Proof: proof}, "", ErrTargetNotOwned},
		{TargetClaim{Namespace: "shop", Domain: "example.net", SpecTarget: legacy, Proof: proof}, "", ErrTargetNotOwned},
		{TargetClaim{Namespace: "shop", Domain: "example.com", SpecTarget: legacy, Proof: proof[:42] + "A"}, "", ErrTargetNotOwned},
		// Not the target form.
		{TargetClaim{Namespace: "blog", Domain: "example.com", SpecTarget: "_acme-challenge.acme.example.com."}, "", ErrTargetForm},
		{TargetClaim{Namespace: "blog", Domain: "example.com", SpecTarget: "acme.example.com."}, "", ErrTargetForm},
		{TargetClaim{Namespace: "blog", Domain: "example.com", SpecTarget: "x." + legacy}, "", ErrTargetForm},
		{TargetClaim{Namespace: "blog", Domain: "example.com", SpecTarget: "b6e4682c-5109-4a34-ac99-d5097d5b2b68.example.org."}, "", ErrTargetForm},
		{TargetClaim{Namespace: "blog", Domain: ""}, "", ErrNoDomain},
	}
	for i, tc := range cases {
		got, err := k.Target(tc.c, zone)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("Test %d: %+v: got %q, %v; want %q, %v", i, tc.c, got, err, tc.want, tc.err)
		}
	}
	if _, err := (TargetKey{}).Target(TargetClaim{Namespace: "shop", Domain: "example.com"}, zone); !errors.Is(err, ErrNoTargetKey) {
		t.Errorf("zero key: %v, want ErrNoTargetKey", err)
	}
}

func TestNewTargetKey(t *testing.T) {
	if _, err := NewTargetKey([]byte(strings.Repeat("k", 31) + "\n")); err == nil {
		t.Error("a 31-byte key was accepted")
	}
	a, b := testKey(t, strings.Repeat("k", 32)+"\n"), testKey(t, strings.Repeat("k", 32))
	if a.Label("shop", "example.com") != b.Label("shop", "example.com") {
		t.Error("a trailing newline changed the key")
	}
}

// TestPersistTarget: the persist target is derived like a target but with its own context: in
// the first zone, stable however the domain is spelt, never the claim's (or anyone's) challenge
// target, different per namespace, domain and key, and only where Target succeeds.
func TestPersistTarget(t *testing.T) {
	k := testKey(t, strings.Repeat("k", 32))
	shop := TargetClaim{Namespace: "shop", Domain: "example.com"}
	p, err := k.PersistTarget(shop, zone, "other.example.org.")
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := TargetLabel(p, zone); !ok || l[14] != '8' {
		t.Errorf("persist target %s is not <UUIDv8>.%s", p, zone)
	}
	target, _ := k.Target(shop, zone)
	if p == target {
		t.Errorf("the persist target is the challenge target %s", p)
	}
	if got := k.PersistLabel("shop", "example.com") + "." + zone; got != p {
		t.Errorf("PersistLabel gives %s, PersistTarget %s", got, p)
	}
	for _, d := range []string{"Example.COM", "example.com.", "*.example.com"} {
		if got, _ := k.PersistTarget(TargetClaim{Namespace: "shop", Domain: d}, zone); got != p {
			t.Errorf("domain %q: persist target %s, want %s", d, got, p)
		}
	}
	for _, c := range []struct {
		k TargetKey
		c TargetClaim
	}{
		{k, TargetClaim{Namespace: "blog", Domain: "example.com"}},
		{k, TargetClaim{Namespace: "shop", Domain: "example.net"}},
		{testKey(t, strings.Repeat("x", 32)), shop},
	} {
		got, err := c.k.PersistTarget(c.c, zone)
		if err != nil || got == p {
			t.Errorf("%+v: persist target %q, %v; want another one than shop's %s", c.c, got, err, p)
		}
		if other, _ := c.k.Target(c.c, zone); other == got {
			t.Errorf("%+v: persist target %s is its challenge target", c.c, got)
		}
	}
	// A proved spec.target still puts the persist target at the derived persist label in the
	// first zone; an unproved one gives no persist target, with Target's error.
	legacy := "b6e4682c-5109-4a34-ac99-d5097d5b2b68." + zone
	proved := TargetClaim{Namespace: "shop", Domain: "example.com", SpecTarget: legacy, Proof: k.Proof("shop", "example.com", legacy)}
	if got, err := k.PersistTarget(proved, zone); err != nil || got != p {
		t.Errorf("with a proved spec.target: %q, %v; want %s", got, err, p)
	}
	for _, c := range []TargetClaim{
		{Namespace: "blog", Domain: "example.com", SpecTarget: target},
		{Namespace: "shop", Domain: "example.com", SpecTarget: "_acme-challenge.example.com."},
		{Namespace: "shop"},
	} {
		_, want := k.Target(c, zone)
		if got, err := k.PersistTarget(c, zone); got != "" || err == nil || !errors.Is(err, want) {
			t.Errorf("%+v: persist target %q, %v; want none and %v", c, got, err, want)
		}
	}
	if got, err := (TargetKey{}).PersistTarget(shop, zone); got != "" || !errors.Is(err, ErrNoTargetKey) {
		t.Errorf("without a key: %q, %v", got, err)
	}
}
