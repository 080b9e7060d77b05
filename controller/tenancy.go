package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// Target is where the CoreDNS plugin serves d's namespace's records for d: the tenancy rule
// of v1alpha1.TargetKey.Target with this installation's key and zone. Every part of the
// controller asks this, never status.target (which only shows the answer).
func (o *Options) Target(d *v1alpha1.Delegation) (string, error) {
	return o.TargetKey.Target(v1alpha1.ClaimOf(d), o.Zone)
}

// FindDelegation returns the Delegation in namespace whose records answer the challenges of
// domain, and its target: the one whose target is resolved (the name cert-manager resolved
// the challenge name to, with cnameStrategy Follow; "" when unknown), else the first by name
// whose spec.domain is domain. It looks in namespace only: whether another namespace has a
// Delegation for the domain is none of the asker's business. d is nil when there is none;
// err is the rule's error when the Delegation found has no target (its spec.target is not
// the namespace's own), or the API's.
func (o *Options) FindDelegation(ctx context.Context, c client.Reader, namespace, domain, resolved string) (d *v1alpha1.Delegation, target string, err error) {
	var list v1alpha1.DelegationList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, "", fmt.Errorf("list Delegations in namespace %s: %w", namespace, err)
	}
	slices.SortFunc(list.Items, func(a, b v1alpha1.Delegation) int { return strings.Compare(a.Name, b.Name) })
	if resolved != "" {
		resolved = v1alpha1.CanonicalName(resolved)
		for i := range list.Items {
			if t, err := o.Target(&list.Items[i]); err == nil && t == resolved && list.Items[i].DeletionTimestamp.IsZero() {
				return &list.Items[i], t, nil
			}
		}
	}
	domain = v1alpha1.DomainKey(domain)
	for i := range list.Items {
		d := &list.Items[i]
		if v1alpha1.DomainKey(d.Spec.Domain) == domain && d.DeletionTimestamp.IsZero() {
			t, err := o.Target(d)
			return d, t, err
		}
	}
	return nil, "", nil
}
