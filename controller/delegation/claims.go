package delegation

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records"
)

// Field indexes on Delegations that SetupWithManager registers with the manager's cache. Other
// parts of the controller may list by them (client.MatchingFields) in the same manager.
const (
	// DomainField indexes Delegations by DomainKey(spec.domain).
	DomainField = "spec.domain"
	// TargetField indexes Delegations by their effective target (status.target, else the
	// canonical spec.target), the name the plugin serves their records at.
	TargetField = "effectiveTarget"
)

// DomainKey is the DomainField value of a domain: lower case, no "*.", no trailing dot.
func DomainKey(domain string) string {
	return records.Domain(domain)
}

// IndexFields registers DomainField and TargetField with indexer. SetupWithManager calls it;
// call it yourself only for a manager without the Reconciler.
func IndexFields(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &v1alpha1.Delegation{}, DomainField, func(obj client.Object) []string {
		return []string{DomainKey(obj.(*v1alpha1.Delegation).Spec.Domain)}
	}); err != nil {
		return fmt.Errorf("index Delegations by %s: %w", DomainField, err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.Delegation{}, TargetField, func(obj client.Object) []string {
		if t := obj.(*v1alpha1.Delegation).EffectiveTarget(); t != "" {
			return []string{t}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("index Delegations by %s: %w", TargetField, err)
	}
	return nil
}

// conflict is why a Delegation may not be used: another Delegation holds its domain or target.
type conflict struct {
	reason, message string
}

// older reports whether a is older than b: creation time (whole seconds), then namespace and
// name, so that every replica and the plugin pick the same owner.
func older(a, b *v1alpha1.Delegation) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// domainConflict returns the conflict of d with the oldest other Delegation of its domain, or
// nil when d is the oldest. The domain's challenge name can point at one target only.
func (r *Reconciler) domainConflict(ctx context.Context, d *v1alpha1.Delegation) (*conflict, error) {
	var list v1alpha1.DelegationList
	if err := r.List(ctx, &list, client.MatchingFields{DomainField: DomainKey(d.Spec.Domain)}); err != nil {
		return nil, fmt.Errorf("list Delegations of %s: %w", DomainKey(d.Spec.Domain), err)
	}
	var owner *v1alpha1.Delegation
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == d.UID || !o.DeletionTimestamp.IsZero() || !older(o, d) {
			continue
		}
		if owner == nil || older(o, owner) {
			owner = o
		}
	}
	if owner == nil {
		return nil, nil
	}
	msg := fmt.Sprintf("Delegation %s/%s is older and already delegates %s; ", owner.Namespace, owner.Name, DomainKey(d.Spec.Domain))
	if t := owner.EffectiveTarget(); t != "" {
		msg += fmt.Sprintf("records at its target %s are served only for namespace %s, and ", t, owner.Namespace)
	}
	msg += fmt.Sprintf("certificates for %s are issued only from namespace %s. Delete this Delegation, or delete %s/%s to move %s here.",
		DomainKey(d.Spec.Domain), owner.Namespace, owner.Namespace, owner.Name, DomainKey(d.Spec.Domain))
	return &conflict{reason: ReasonDomainDelegated, message: msg}, nil
}

// newTarget returns the target to assign to d: the canonical spec.target, else
// "<uuid>.<zone>". A spec.target that a Delegation of another namespace holds (in status, or
// older in spec) is not assigned: holder is that Delegation. Confirming it in status would give
// this namespace a claim the plugin ranks above spec-only ones.
func (r *Reconciler) newTarget(ctx context.Context, d *v1alpha1.Delegation) (target string, holder *v1alpha1.Delegation, err error) {
	if d.Spec.Target == "" {
		return uuid.NewString() + "." + r.zone(), nil, nil
	}
	target = v1alpha1.CanonicalName(d.Spec.Target)
	var list v1alpha1.DelegationList
	if err := r.List(ctx, &list, client.MatchingFields{TargetField: target}); err != nil {
		return "", nil, fmt.Errorf("list Delegations of target %s: %w", target, err)
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.Namespace == d.Namespace || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if o.Status.Target == target || older(o, d) {
			return target, o, nil
		}
	}
	return target, nil, nil
}

func invalidTarget(target, why, zone string) *conflict {
	return &conflict{reason: ReasonInvalidTarget, message: fmt.Sprintf(
		"spec.target %s %s, so it is not assigned and acmezone serves no records there. Remove spec.target to get a target <uuid>.%s.",
		target, why, zone)}
}

func targetInUse(d *v1alpha1.Delegation, target string, holder *v1alpha1.Delegation) *conflict {
	return &conflict{reason: ReasonTargetInUse, message: fmt.Sprintf(
		"spec.target %s is the target of Delegation %s/%s, and records there are served only for namespace %s, so it is not assigned to this Delegation. Remove spec.target to get a target of your own.",
		target, holder.Namespace, holder.Name, holder.Namespace)}
}

// sameDomain maps a Delegation to the other Delegations of its domain: its creation or
// deletion may start or end their conflict.
func (r *Reconciler) sameDomain(ctx context.Context, obj client.Object) []reconcile.Request {
	d, ok := obj.(*v1alpha1.Delegation)
	if !ok {
		return nil
	}
	var list v1alpha1.DelegationList
	if err := r.List(ctx, &list, client.MatchingFields{DomainField: DomainKey(d.Spec.Domain)}); err != nil {
		logf.FromContext(ctx).Error(err, "list Delegations of the same domain", "domain", d.Spec.Domain)
		return nil
	}
	var reqs []reconcile.Request
	for _, o := range list.Items {
		if o.UID != d.UID {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}})
		}
	}
	return reqs
}
