// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

// dns-persist-01 (draft-ietf-acme-dns-persist): a Delegation's persistentAuthorization is
// served as TXT values at its persist target (v1alpha1.TargetKey.PersistTarget), which the
// user's CNAME _validation-persist.<domain> points at. The reconciler writes one
// ChallengeRecord per issuer domain name there, labelled v1alpha1.PersistLabel and owned by
// the Delegation, and deletes the ones no longer wanted itself (a rotated account, a removed
// persistentAuthorization, a deleted Delegation), so nothing depends on a garbage collector.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/records"
)

// +kubebuilder:rbac:groups=cert-manager.io,resources=issuers;clusterissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=acmezone.io,resources=challengerecords,verbs=get;list;watch;create;update;delete

// PersistIssuerField indexes Delegations by the Issuer ("Issuer/<name>") or ClusterIssuer
// ("ClusterIssuer/<name>") their persistentAuthorization reads the account URL from.
const PersistIssuerField = "acmezone.io/persist-issuer"

// Reasons of the PersistVerified condition. A False one may also have the Reason of the failed
// records.Check: records.ReasonCNAMEMissing, ReasonCNAMEWrongTarget, ReasonTXTLookupFailed or
// ReasonPersistValueMissing.
const (
	ReasonPersistResolves = "PersistResolves" // True
	ReasonAccountUnknown  = "AccountUnknown"  // False: the issuerRef's account URL is not known
	ReasonPersistInvalid  = "PersistInvalid"  // False: a value would not be one valid TXT string
)

// persistIssuerKey is the PersistIssuerField value of d ("" for none).
func persistIssuerKey(d *v1alpha1.Delegation) string {
	pa := d.Spec.PersistentAuthorization
	if pa == nil || pa.IssuerRef == nil {
		return ""
	}
	kind := pa.IssuerRef.Kind
	if kind == "" {
		kind = cmapi.IssuerKind
	}
	return kind + "/" + pa.IssuerRef.Name
}

// PersistValues returns the TXT values of the authorization pa for the ACME account uri, one
// per issuer domain name (lower case), in the draft's syntax: "<issuer-domain-name>;
// accounturi=<uri>[; policy=wildcard][; persistUntil=<unix seconds>]". Each must be one TXT
// string acmezone serves (a ChallengeRecord value: at most 255 bytes of printable ASCII), and
// the account URL a parameter value of the draft (no space, no semicolon); the error says
// which is not.
func PersistValues(pa *v1alpha1.PersistentAuthorization, uri string) ([]string, error) {
	if uri == "" {
		return nil, fmt.Errorf("the ACME account URL is empty")
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c < 0x21 || c > 0x7e || c == ';' {
			return nil, fmt.Errorf("the ACME account URL %q holds a character a dns-persist-01 value cannot carry (space, semicolon or not printable ASCII)", uri)
		}
	}
	var out []string
	for _, idn := range pa.IssuerDomainNames {
		v := strings.ToLower(idn) + "; accounturi=" + uri
		if pa.Wildcard {
			v += "; policy=wildcard"
		}
		if pa.PersistUntil != nil {
			v += "; persistUntil=" + strconv.FormatInt(pa.PersistUntil.Unix(), 10)
		}
		if len(v) > 255 {
			return nil, fmt.Errorf("the TXT value for %s is %d bytes long, but one TXT string holds at most 255: use a shorter issuer domain name or account URL (the value is %q)", idn, len(v), v)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// persist does the dns-persist-01 part of a reconcile of d: it shows the persist target and
// its CNAME among the records, writes (or rotates, or removes) the ChallengeRecords at the
// persist target, and sets PersistVerified from what public DNS answers. invalid is why d has
// no target (then it has no persist target either). Errors are the API's.
func (r *Reconciler) persist(ctx context.Context, d *v1alpha1.Delegation, invalid error, now time.Time) error {
	set := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionPersistVerified, Status: status,
			Reason: reason, Message: msg, ObservedGeneration: d.Generation, LastTransitionTime: metav1.NewTime(now)})
	}
	pa := d.Spec.PersistentAuthorization
	d.Status.PersistTarget = ""
	if pa == nil {
		meta.RemoveStatusCondition(&d.Status.Conditions, v1alpha1.ConditionPersistVerified)
		return r.syncPersistRecords(ctx, d.Namespace, d.Name, d, nil)
	}
	if invalid != nil {
		set(metav1.ConditionUnknown, ReasonInvalidTarget, "No dns-persist-01 value is served while this Delegation has no target; see the Ready condition.")
		return r.syncPersistRecords(ctx, d.Namespace, d.Name, d, nil)
	}
	target, err := r.Options.PersistTarget(d)
	if err != nil { // Target succeeded, so PersistTarget does too
		return err
	}
	d.Status.PersistTarget = target
	d.Status.Records = append(d.Status.Records, records.PersistRecord(d.Spec.Domain, target))

	uri, why, err := r.accountURI(ctx, d)
	if err != nil {
		return err
	}
	if why != "" {
		// The records written for the last known account stay: an Issuer being registered
		// again, or briefly missing, does not withdraw the authorization.
		set(metav1.ConditionFalse, ReasonAccountUnknown, why+"; the dns-persist-01 values already served (if any) stay until it is known.")
		return nil
	}
	values, err := PersistValues(pa, uri)
	if err != nil {
		set(metav1.ConditionFalse, ReasonPersistInvalid, "No dns-persist-01 value is served: "+err.Error()+".")
		return r.syncPersistRecords(ctx, d.Namespace, d.Name, d, nil)
	}
	if err := r.syncPersistRecords(ctx, d.Namespace, d.Name, d, values); err != nil {
		return err
	}
	checks := records.VerifyPersist(ctx, r.Resolver, r.Options, d.Spec.Domain, target, values)
	var problems []string
	reason := ""
	for _, c := range checks {
		if !c.OK {
			problems = append(problems, c.Problem)
			if reason == "" {
				reason = c.Reason
			}
		}
	}
	if len(problems) > 0 {
		set(metav1.ConditionFalse, reason, "dns-persist-01 is not in place: "+strings.Join(problems, ". ")+".")
		return nil
	}
	set(metav1.ConditionTrue, ReasonPersistResolves, fmt.Sprintf("%s points to %s, where the TXT lookup answers the authorization for %s (%s).",
		checks[0].Record.Name, checks[0].Found, strings.Join(pa.IssuerDomainNames, ", "), uri))
	return nil
}

// accountURI returns the ACME account URL of d's persistentAuthorization: spec.accountURI,
// or the status.acme.uri of the Issuer (in d's namespace) or ClusterIssuer it names. why says,
// for the user, why it is not known; err is the API's.
func (r *Reconciler) accountURI(ctx context.Context, d *v1alpha1.Delegation) (uri, why string, err error) {
	pa := d.Spec.PersistentAuthorization
	if pa.AccountURI != "" {
		return pa.AccountURI, "", nil
	}
	if pa.IssuerRef == nil {
		return "", "spec.persistentAuthorization names neither accountURI nor issuerRef", nil
	}
	var status cmapi.IssuerStatus
	what := ""
	if pa.IssuerRef.Kind == cmapi.ClusterIssuerKind {
		var ci cmapi.ClusterIssuer
		what = "ClusterIssuer " + pa.IssuerRef.Name
		err = r.Get(ctx, types.NamespacedName{Name: pa.IssuerRef.Name}, &ci)
		status = ci.Status
	} else {
		var is cmapi.Issuer
		what = "Issuer " + d.Namespace + "/" + pa.IssuerRef.Name
		err = r.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: pa.IssuerRef.Name}, &is)
		status = is.Status
	}
	switch {
	case apierrors.IsNotFound(err):
		return "", "the " + what + " of spec.persistentAuthorization.issuerRef does not exist", nil
	case err != nil:
		return "", "", fmt.Errorf("get the %s: %w", what, err)
	case status.ACME == nil || status.ACME.URI == "":
		return "", "the " + what + " has no ACME account URL (status.acme.uri) yet: it is not an ACME issuer or not registered", nil
	}
	return status.ACME.URI, "", nil
}

// ownsPersist reports whether rec is a persist record of the Delegation named name.
func ownsPersist(rec *v1alpha1.ChallengeRecord, name string) bool {
	if _, ok := rec.Labels[v1alpha1.PersistLabel]; !ok {
		return false
	}
	return slices.ContainsFunc(rec.OwnerReferences, func(o metav1.OwnerReference) bool {
		return o.Kind == "Delegation" && o.Name == name && strings.HasPrefix(o.APIVersion, v1alpha1.GroupVersion.Group+"/")
	})
}

// persistLabelValue is the PersistLabel value of the records of the Delegation named name:
// the name, when it is a valid label value (the owner reference is what counts).
func persistLabelValue(name string) string {
	if len(validation.IsValidLabelValue(name)) == 0 {
		return name
	}
	return ""
}

// syncPersistRecords makes the persist records of the Delegation named name in namespace
// exactly values at d's persist target: it creates the missing ones (owned by d) and deletes
// the others. d is nil when the Delegation is gone (then values is nil too).
func (r *Reconciler) syncPersistRecords(ctx context.Context, namespace, name string, d *v1alpha1.Delegation, values []string) error {
	log := logf.FromContext(ctx)
	want := map[string]string{} // record name -> value
	for _, v := range values {
		want[v1alpha1.ChallengeRecordName(d.Status.PersistTarget, v)] = v
	}
	var list v1alpha1.ChallengeRecordList
	if err := r.List(ctx, &list, ctrl.InNamespace(namespace), ctrl.HasLabels{v1alpha1.PersistLabel}); err != nil {
		return fmt.Errorf("list the persist records of Delegation %s/%s: %w", namespace, name, err)
	}
	for i := range list.Items {
		rec := &list.Items[i]
		if !ownsPersist(rec, name) {
			continue
		}
		if _, ok := want[rec.Name]; ok && rec.DeletionTimestamp.IsZero() {
			if d != nil && !slices.ContainsFunc(rec.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == d.UID }) {
				// Written for an earlier Delegation of the same name: this one owns it now.
				rec.OwnerReferences = nil
				if err := controllerutil.SetOwnerReference(d, rec, r.Scheme()); err != nil {
					return err
				}
				if err := r.Update(ctx, rec); err != nil {
					return fmt.Errorf("adopt persist record %s/%s: %w", namespace, rec.Name, err)
				}
			}
			delete(want, rec.Name)
			continue
		}
		if err := r.Delete(ctx, rec, ctrl.Preconditions{UID: &rec.UID}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete persist record %s/%s: %w", namespace, rec.Name, err)
		}
		log.Info("deleted dns-persist-01 record", "record", rec.Name, "fqdn", rec.Spec.FQDN, "value", rec.Spec.Value)
	}
	for _, recName := range slices.Sorted(maps.Keys(want)) {
		rec := v1alpha1.NewChallengeRecord(namespace, d.Status.PersistTarget, want[recName])
		rec.Labels = map[string]string{v1alpha1.PersistLabel: persistLabelValue(name)}
		rec.Annotations = map[string]string{v1alpha1.DomainAnnotation: v1alpha1.DomainKey(d.Spec.Domain)}
		if err := controllerutil.SetOwnerReference(d, rec, r.Scheme()); err != nil {
			return err
		}
		if err := r.Create(ctx, rec); err != nil {
			if apierrors.IsAlreadyExists(err) {
				// Someone else's record with this name (not labelled and owned as ours): it
				// serves the same value at the same name, which is all that counts.
				continue
			}
			return fmt.Errorf("create persist record %s/%s: %w", namespace, rec.Name, err)
		}
		log.Info("wrote dns-persist-01 record", "record", rec.Name, "fqdn", rec.Spec.FQDN, "value", rec.Spec.Value)
	}
	return nil
}

// delegationsOfIssuer maps an Issuer or ClusterIssuer event to the Delegations whose
// persistentAuthorization reads its account URL: a new account rotates their values.
func (r *Reconciler) delegationsOfIssuer(ctx context.Context, o ctrl.Object) []reconcile.Request {
	var list v1alpha1.DelegationList
	opts := []ctrl.ListOption{}
	key := ""
	switch o.(type) {
	case *cmapi.ClusterIssuer:
		key = cmapi.ClusterIssuerKind + "/" + o.GetName()
	default:
		key = cmapi.IssuerKind + "/" + o.GetName()
		opts = append(opts, ctrl.InNamespace(o.GetNamespace()))
	}
	opts = append(opts, ctrl.MatchingFields{PersistIssuerField: key})
	if err := r.List(ctx, &list, opts...); err != nil {
		logf.FromContext(ctx).Error(err, "list the Delegations of an issuer", "issuer", key)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, d := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: d.Namespace, Name: d.Name}})
	}
	return reqs
}

// delegationOfPersistRecord maps an event of a persist record to the Delegation that owns it:
// a record deleted or changed by someone else is written again.
func delegationOfPersistRecord(_ context.Context, o ctrl.Object) []reconcile.Request {
	if _, ok := o.GetLabels()[v1alpha1.PersistLabel]; !ok {
		return nil
	}
	var reqs []reconcile.Request
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind == "Delegation" && strings.HasPrefix(ref.APIVersion, v1alpha1.GroupVersion.Group+"/") {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}})
		}
	}
	return reqs
}
