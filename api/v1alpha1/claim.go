package v1alpha1

import "time"

// Claim is what decides which Delegation owns a target when Delegations in several namespaces
// name it. The CoreDNS plugin serves records only for the owner's namespace, and the webhook
// solver refuses to write for anyone else, so both use this one rule.
//
// +kubebuilder:object:generate=false
type Claim struct {
	// Confirmed is true when the target is in status, which only the controller writes.
	Confirmed bool
	Created   time.Time
	Namespace string
	Name      string
}

// Claim returns the Delegation's claim on its EffectiveTarget.
func (d *Delegation) Claim() Claim {
	return Claim{
		Confirmed: d.Status.Target != "",
		Created:   d.CreationTimestamp.Time,
		Namespace: d.Namespace,
		Name:      d.Name,
	}
}

// Before reports whether claim a beats claim b: a confirmed target beats one only in spec,
// then the older Delegation wins (creation timestamps have whole seconds), then namespace and
// name, so that every reader picks the same owner.
func (a Claim) Before(b Claim) bool {
	switch {
	case a.Confirmed != b.Confirmed:
		return a.Confirmed
	case !a.Created.Equal(b.Created):
		return a.Created.Before(b.Created)
	case a.Namespace != b.Namespace:
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}
