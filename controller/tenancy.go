// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// This file answers every ownership question of the controller: where a Delegation's
// namespace is served (Target, the rule of v1alpha1.TargetKey.Target), which Delegation of a
// namespace answers a domain's challenges (FindDelegation), and which one is served at a name
// (DelegationAt). Each looks in one namespace only, on a reader with the indexes of
// IndexDelegations (the manager's cache): no part of the controller reads status.target,
// creation times or another namespace's objects to decide a target.

// The field indexes of Delegations, registered by IndexDelegations.
const (
	// DomainField holds v1alpha1.DomainKey(spec.domain).
	DomainField = "acmezone.io/domain"
	// TargetField holds the rule's target (Options.Target); none when the rule gives none.
	TargetField = "acmezone.io/target"
	// PersistTargetField holds the persist target (Options.PersistTarget) of a Delegation
	// with spec.persistentAuthorization; none without it or when the rule gives no target.
	PersistTargetField = "acmezone.io/persist-target"
	// StatusTargetField holds status.target, the target an earlier version of the controller
	// gave (canonical): only the migration of those targets (delegation.Reconciler) reads it.
	StatusTargetField = "status.target"
)

// indexed holds the field indexers IndexDelegations has registered with: several reconcilers
// of one manager call it, and controller-runtime refuses an index registered twice.
var indexed sync.Map // client.FieldIndexer -> struct{}

// IndexDelegations registers DomainField, TargetField and StatusTargetField with indexer, once
// per indexer. Every reconciler that asks the questions of this file calls it in its
// SetupWithManager.
func (o *Options) IndexDelegations(ctx context.Context, indexer client.FieldIndexer) error {
	if !o.TargetKey.Valid() {
		return errors.New("index Delegations: the target key is not loaded")
	}
	if _, done := indexed.LoadOrStore(indexer, struct{}{}); done {
		return nil
	}
	indexes := map[string]client.IndexerFunc{
		DomainField: func(obj client.Object) []string {
			if d := v1alpha1.DomainKey(obj.(*v1alpha1.Delegation).Spec.Domain); d != "" {
				return []string{d}
			}
			return nil
		},
		TargetField: func(obj client.Object) []string {
			if t, err := o.Target(obj.(*v1alpha1.Delegation)); err == nil {
				return []string{t}
			}
			return nil
		},
		PersistTargetField: func(obj client.Object) []string {
			d := obj.(*v1alpha1.Delegation)
			if d.Spec.PersistentAuthorization == nil {
				return nil
			}
			if t, err := o.PersistTarget(d); err == nil {
				return []string{t}
			}
			return nil
		},
		StatusTargetField: func(obj client.Object) []string {
			if t := obj.(*v1alpha1.Delegation).Status.Target; t != "" {
				return []string{v1alpha1.CanonicalName(t)}
			}
			return nil
		},
	}
	for _, field := range []string{DomainField, TargetField, PersistTargetField, StatusTargetField} {
		if err := indexer.IndexField(ctx, &v1alpha1.Delegation{}, field, indexes[field]); err != nil {
			indexed.Delete(indexer)
			return fmt.Errorf("index Delegations by %s: %w", field, err)
		}
	}
	return nil
}

// Target is where the CoreDNS plugin serves d's namespace's records for d: the tenancy rule
// of v1alpha1.TargetKey.Target with this installation's key and zone. Every part of the
// controller asks this, never status.target (which only shows the answer).
func (o *Options) Target(d *v1alpha1.Delegation) (string, error) {
	return o.TargetKey.Target(v1alpha1.ClaimOf(d), o.Zone)
}

// PersistTarget is where the CoreDNS plugin serves d's namespace's records for d's
// dns-persist-01 authorization (v1alpha1.TargetKey.PersistTarget): it exists only when Target
// does. The plugin places d there only while d has spec.persistentAuthorization.
func (o *Options) PersistTarget(d *v1alpha1.Delegation) (string, error) {
	return o.TargetKey.PersistTarget(v1alpha1.ClaimOf(d), o.Zone)
}

// FindDelegation returns the Delegation in namespace whose records answer the challenges of
// domain, and its target: the one whose target is resolved (the name cert-manager resolved
// the challenge name to, with cnameStrategy Follow; "" when unknown), else the first by name
// whose spec.domain is domain. It looks in namespace only: whether another namespace has a
// Delegation for the domain is none of the asker's business. d is nil when there is none;
// err is the rule's error when the Delegation found has no target (its spec.target is not
// the namespace's own), or the API's. c must have the indexes of IndexDelegations.
func (o *Options) FindDelegation(ctx context.Context, c client.Reader, namespace, domain, resolved string) (d *v1alpha1.Delegation, target string, err error) {
	if resolved != "" {
		d, err := o.DelegationAt(ctx, c, namespace, resolved)
		if err != nil {
			return nil, "", err
		}
		if d != nil {
			return d, v1alpha1.CanonicalName(resolved), nil
		}
	}
	list, err := listBy(ctx, c, namespace, DomainField, v1alpha1.DomainKey(domain))
	if err != nil || len(list) == 0 {
		return nil, "", err
	}
	d = &list[0]
	target, err = o.Target(d)
	return d, target, err
}

// DelegationAt returns the Delegation in namespace whose target (the rule's) is target: the
// first by name, if several of the namespace name the same domain. nil when there is none.
func (o *Options) DelegationAt(ctx context.Context, c client.Reader, namespace, target string) (*v1alpha1.Delegation, error) {
	list, err := listBy(ctx, c, namespace, TargetField, v1alpha1.CanonicalName(target))
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

// PersistDelegationAt returns the Delegation in namespace with spec.persistentAuthorization
// whose persist target is name (the first by name), nil when there is none.
func (o *Options) PersistDelegationAt(ctx context.Context, c client.Reader, namespace, name string) (*v1alpha1.Delegation, error) {
	list, err := listBy(ctx, c, namespace, PersistTargetField, v1alpha1.CanonicalName(name))
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

// listBy lists the Delegations of namespace with field = value that are not being deleted,
// sorted by name.
func listBy(ctx context.Context, c client.Reader, namespace, field, value string) ([]v1alpha1.Delegation, error) {
	var list v1alpha1.DelegationList
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{field: value}); err != nil {
		return nil, fmt.Errorf("list Delegations in namespace %s: %w", namespace, err)
	}
	items := slices.DeleteFunc(list.Items, func(d v1alpha1.Delegation) bool { return !d.DeletionTimestamp.IsZero() })
	slices.SortFunc(items, func(a, b v1alpha1.Delegation) int { return strings.Compare(a.Name, b.Name) })
	return items, nil
}
