// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmedns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nrdcg/goacmedns"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// A Kubernetes-native account is made for a user's Delegation annotated with
// v1alpha1.ACMEDNSSecretAnnotation. It is stored as two Secrets:
//
//   - the account Secret in Options.Namespace, named AccountName(username), as for /register's
//     accounts, with the bcrypt hash, the subdomain and the bound target, labelled with the
//     Delegation's UID and annotated with its namespace/name and the user's Secret name. Users
//     cannot write there, so the binding cannot be changed; the API looks the hash up here;
//   - the user's Secret in the Delegation's namespace, owned by the Delegation, holding the
//     account with its password as cert-manager's acmeDNS solver reads it (SecretKey). It is
//     the only place the password exists.
//
// The account is bound to the target the tenancy rule gives the Delegation
// (v1alpha1.TargetKey.Target: derived from its namespace and domain, or its spec.target with a
// valid proof), never to status.target, which is only what the Delegation reconciler shows.
// /update through such an account writes its records in the Delegation's namespace, at that
// target, and only while the Delegation still exists with the same UID and the same
// annotation, and the rule still gives it the same target.
const (
	// SecretKey is the key of the user's Secret that holds the account JSON; the Issuer's
	// acmeDNS.accountSecretRef.key.
	SecretKey = "acmedns.json"
	// DelegationUIDLabel marks an account Secret as bound to the Delegation with this UID.
	DelegationUIDLabel = "acmezone.io/acme-dns-delegation-uid"
	// delegationAnnotation holds "namespace/name" of the bound Delegation.
	delegationAnnotation = "acmezone.io/acme-dns-delegation"
	// managedByLabel marks the user Secrets the controller wrote.
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "acmezone-controller"

	keyTarget = "target"

	// DefaultAccountResync is how often an annotated Delegation's Secret is checked again
	// (the controller does not watch Secrets in users' namespaces).
	DefaultAccountResync = 10 * time.Minute
)

// Event reasons of the AccountReconciler, on the Delegation.
const (
	ReasonAccountWritten    = "ACMEDNSAccountWritten"
	ReasonSecretNotOurs     = "ACMEDNSSecretExists"
	ReasonInvalidSecretName = "ACMEDNSInvalidSecretName"
	ReasonNoServerURL       = "ACMEDNSNoServerURL"
	ReasonTargetNotOwned    = "ACMEDNSTargetNotOwned"
)

// isNative reports whether an account Secret belongs to a Kubernetes-native account.
func isNative(sec *corev1.Secret) bool {
	return sec.Labels[DelegationUIDLabel] != ""
}

// boundDelegation returns the Delegation a native account was made for, or errForbidden when
// it is gone, was replaced or lost its annotation; authenticate checks its target.
func (s *Server) boundDelegation(ctx context.Context, sec *corev1.Secret) (*v1alpha1.Delegation, error) {
	ns, name, ok := strings.Cut(sec.Annotations[delegationAnnotation], "/")
	if !ok {
		return nil, fmt.Errorf("account Secret %s/%s has no valid %s annotation", sec.Namespace, sec.Name, delegationAnnotation)
	}
	var d v1alpha1.Delegation
	if err := s.cfg.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errForbidden
		}
		return nil, fmt.Errorf("get Delegation %s/%s: %w", ns, name, err)
	}
	if !stillBound(sec, &d) {
		return nil, errForbidden
	}
	return &d, nil
}

// stillBound reports whether the account Secret sec was made for d as d is now.
func stillBound(sec *corev1.Secret, d *v1alpha1.Delegation) bool {
	return sec.Labels[DelegationUIDLabel] == string(d.UID) && d.DeletionTimestamp.IsZero() &&
		d.Labels[AccountLabel] == "" && d.Annotations[v1alpha1.ACMEDNSSecretAnnotation] != "" &&
		d.Annotations[v1alpha1.ACMEDNSSecretAnnotation] == sec.Annotations[v1alpha1.ACMEDNSSecretAnnotation]
}

// AccountReconciler keeps the acme-dns account of every Delegation annotated with
// v1alpha1.ACMEDNSSecretAnnotation, and the Secret cert-manager reads it from.
type AccountReconciler struct {
	// Client reads Delegations (cached) and writes Secrets.
	Client client.Client
	// APIReader reads Secrets, which are not cached (users' namespaces are not watched).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Namespace holds the account Secrets (Options.Namespace).
	Namespace string
	// TargetKey and Zone give a Delegation its target (v1alpha1.TargetKey.Target), as
	// Options.TargetKey and Options.Zone; both required.
	TargetKey v1alpha1.TargetKey
	Zone      string
	// ServerURL is the URL cert-manager reaches the API at: the accounts' server_url.
	ServerURL string
	// Resync is how often an annotated Delegation is looked at again.
	Resync time.Duration
}

// SetupWithManager registers the reconciler. Besides Delegations it watches the account
// Secrets in Namespace (through a cache of its own, limited to them), so that accounts of
// Delegations deleted while the controller was down are removed at its start.
func (r *AccountReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if !r.TargetKey.Valid() || r.Zone == "" {
		return errors.New("acme-dns accounts: a target key and a zone are required")
	}
	r.Zone = v1alpha1.CanonicalName(r.Zone)
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder(managedBy)
	}
	if r.Namespace == "" {
		r.Namespace = DefaultNamespace
	}
	if r.Resync == 0 {
		r.Resync = DefaultAccountResync
	}
	accounts, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient: mgr.GetHTTPClient(), Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultNamespaces:    map[string]cache.Config{r.Namespace: {}},
		DefaultLabelSelector: nativeSelector(),
	})
	if err != nil {
		return fmt.Errorf("account Secret cache: %w", err)
	}
	if err := mgr.Add(accounts); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("acme-dns-accounts").
		For(&v1alpha1.Delegation{}, builder.WithPredicates(predicate.Funcs{UpdateFunc: accountRelevant})).
		WatchesRawSource(source.Kind(accounts, &corev1.Secret{}, handler.TypedEnqueueRequestsFromMapFunc(
			func(_ context.Context, sec *corev1.Secret) []reconcile.Request {
				ns, name, ok := strings.Cut(sec.Annotations[delegationAnnotation], "/")
				if !ok {
					return nil
				}
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
			}))).
		Complete(r)
}

// accountRelevant passes the Delegation updates that change its account: the annotation, what
// its target follows from (spec.target, the proof), the domain (also the key of the JSON), the
// status.target it waits for while settling, the acme-dns account label, deletion.
func accountRelevant(e event.UpdateEvent) bool {
	o, n := e.ObjectOld.(*v1alpha1.Delegation), e.ObjectNew.(*v1alpha1.Delegation)
	return o.Annotations[v1alpha1.ACMEDNSSecretAnnotation] != n.Annotations[v1alpha1.ACMEDNSSecretAnnotation] ||
		o.Annotations[v1alpha1.TargetProofAnnotation] != n.Annotations[v1alpha1.TargetProofAnnotation] ||
		o.Spec.Target != n.Spec.Target || o.Spec.Domain != n.Spec.Domain || o.Status.Target != n.Status.Target ||
		o.Labels[AccountLabel] != n.Labels[AccountLabel] || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
}

func nativeSelector() labels.Selector {
	req, err := labels.NewRequirement(DelegationUIDLabel, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

// Reconcile removes the accounts that no longer fit the Delegation req, and makes or repairs
// the one its annotation asks for.
func (r *AccountReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var d v1alpha1.Delegation
	if err := r.Client.Get(ctx, req.NamespacedName, &d); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	} else if err != nil {
		d = v1alpha1.Delegation{} // gone: every account of it goes
	}
	accounts, err := r.accountsOf(ctx, req.NamespacedName)
	if err != nil {
		return ctrl.Result{}, err
	}
	// The tenancy rule alone gives the target: no other Delegation, no status takes part.
	target, targetErr := "", error(nil)
	if d.UID != "" {
		target, targetErr = r.TargetKey.Target(v1alpha1.ClaimOf(&d), r.Zone)
	}
	// While status.target shows another target (one an earlier version gave, which the
	// Delegation reconciler is about to keep with a proof, or a spec change it has not caught up
	// with), the account is left as it is rather than moved twice; /update refuses it meanwhile.
	// The status only delays: an account is only ever made at, and only writes at, target.
	settling := targetErr == nil && d.Status.Target != "" && v1alpha1.CanonicalName(d.Status.Target) != target
	var keep *corev1.Secret
	for i := range accounts {
		a := &accounts[i]
		if keep == nil && stillBound(a, &d) && (settling || targetErr == nil && string(a.Data[keyTarget]) == target) {
			keep = a
		} else if err := r.removeAccount(ctx, a); err != nil {
			return ctrl.Result{}, err
		}
	}
	secretName := d.Annotations[v1alpha1.ACMEDNSSecretAnnotation]
	if d.UID == "" || !d.DeletionTimestamp.IsZero() || d.Labels[AccountLabel] != "" || secretName == "" {
		return ctrl.Result{}, nil
	}
	if errs := validation.IsDNS1123Subdomain(secretName); len(errs) > 0 {
		r.warn(&d, ReasonInvalidSecretName, "The annotation %s=%q is not a valid Secret name (%s); no acme-dns account is written.",
			v1alpha1.ACMEDNSSecretAnnotation, secretName, strings.Join(errs, "; "))
		return ctrl.Result{}, nil
	}
	if r.ServerURL == "" {
		r.warn(&d, ReasonNoServerURL, "acmezone-controller runs without --acme-dns-server-url, so it cannot write the acme-dns account Secret %s/%s: set the flag to the URL cert-manager reaches the acme-dns API at.",
			d.Namespace, secretName)
		return ctrl.Result{}, nil
	}
	if targetErr != nil {
		// The message is the rule's own sentence about this Delegation: it names no other.
		r.warn(&d, ReasonTargetNotOwned, "No acme-dns account is written for this Delegation: %s.", targetErr)
		return ctrl.Result{}, nil // a change of spec or annotations brings us back
	}
	if settling {
		return ctrl.Result{RequeueAfter: r.Resync}, nil // the status update brings us back
	}
	return ctrl.Result{RequeueAfter: r.Resync}, r.ensure(ctx, &d, target, secretName, keep)
}

// ensure makes the user's Secret hold a working account for d at target. The password is
// kept as long as the Secret holds one that matches the hash, so reconciles do not churn it.
func (r *AccountReconciler) ensure(ctx context.Context, d *v1alpha1.Delegation, target, secretName string, acct *corev1.Secret) error {
	log := logf.FromContext(ctx)
	var user corev1.Secret
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: secretName}, &user)
	exists := err == nil
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("get Secret %s/%s: %w", d.Namespace, secretName, err)
	}
	if exists && !metav1.IsControlledBy(&user, d) {
		r.warn(d, ReasonSecretNotOurs, "Secret %s/%s exists and was not written by acmezone-controller for this Delegation, so it is left as it is and no acme-dns account is written. Delete it, or name another Secret in the annotation %s.",
			d.Namespace, secretName, v1alpha1.ACMEDNSSecretAnnotation)
		if acct != nil {
			return r.removeAccount(ctx, acct)
		}
		return nil
	}

	// The password: the one in the user's Secret when it still matches the account's hash.
	password := ""
	if acct != nil && exists {
		var cur map[string]goacmedns.Account
		if json.Unmarshal(user.Data[SecretKey], &cur) == nil {
			for _, a := range cur {
				if a.Username == acct.Labels[AccountLabel] && validKey(a.Password) &&
					bcrypt.CompareHashAndPassword(acct.Data[keyPasswordHash], []byte(a.Password)) == nil {
					password = a.Password
				}
			}
		}
	}
	if password == "" {
		password = randomPassword()
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
		if acct, err = r.writeAccount(ctx, d, target, secretName, acct, hash); err != nil {
			return err
		}
	}
	data, err := json.Marshal(map[string]goacmedns.Account{
		v1alpha1.DomainKey(d.Spec.Domain): {
			FullDomain: strings.TrimSuffix(target, "."),
			SubDomain:  string(acct.Data[keySubdomain]),
			Username:   acct.Labels[AccountLabel],
			Password:   password,
			ServerURL:  r.ServerURL,
		},
	})
	if err != nil {
		return err
	}
	if exists && bytes.Equal(user.Data[SecretKey], data) && len(user.Data) == 1 {
		return nil
	}
	want := corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: d.Namespace, Name: secretName,
			Labels: map[string]string{managedByLabel: managedBy, AccountLabel: acct.Labels[AccountLabel]},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "Delegation",
				Name: d.Name, UID: d.UID, Controller: new(true),
			}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{SecretKey: data},
	}
	if exists {
		want.ResourceVersion = user.ResourceVersion
		err = r.Client.Update(ctx, &want)
	} else {
		err = r.Client.Create(ctx, &want)
	}
	if err != nil {
		return fmt.Errorf("write Secret %s/%s: %w", d.Namespace, secretName, err)
	}
	log.Info("wrote acme-dns account Secret", "secret", secretName, "username", acct.Labels[AccountLabel], "target", target)
	r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, ReasonAccountWritten, "WriteSecret",
		"Wrote the acme-dns account for %s (target %s) to Secret %s/%s, key %s, for an Issuer's acmeDNS.accountSecretRef.",
		v1alpha1.DomainKey(d.Spec.Domain), strings.TrimSuffix(target, "."), d.Namespace, secretName, SecretKey)
	return nil
}

// writeAccount creates the account Secret for d at target with hash, or sets the hash of acct.
func (r *AccountReconciler) writeAccount(ctx context.Context, d *v1alpha1.Delegation, target, secretName string, acct *corev1.Secret, hash []byte) (*corev1.Secret, error) {
	if acct != nil {
		acct = acct.DeepCopy()
		acct.Data[keyPasswordHash] = hash
		if err := r.Client.Update(ctx, acct); err != nil {
			return nil, fmt.Errorf("update account Secret %s/%s: %w", acct.Namespace, acct.Name, err)
		}
		return acct, nil
	}
	username := uuid.NewString()
	subdomain, _, _ := strings.Cut(target, ".")
	acct = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: r.Namespace, Name: AccountName(username),
			Labels: map[string]string{AccountLabel: username, DelegationUIDLabel: string(d.UID)},
			Annotations: map[string]string{
				delegationAnnotation:             d.Namespace + "/" + d.Name,
				v1alpha1.ACMEDNSSecretAnnotation: secretName,
			},
		},
		Type: SecretType,
		Data: map[string][]byte{
			keyPasswordHash: hash, keySubdomain: []byte(subdomain), keyAllowFrom: []byte("[]"),
			keyTarget: []byte(target),
		},
	}
	if err := r.Client.Create(ctx, acct); err != nil {
		return nil, fmt.Errorf("create account Secret %s/%s: %w", acct.Namespace, acct.Name, err)
	}
	return acct, nil
}

// accountsOf lists the account Secrets bound to the Delegation key, from the API server: the
// cache may not hold one just made, and two accounts for one Delegation must not happen.
func (r *AccountReconciler) accountsOf(ctx context.Context, key types.NamespacedName) ([]corev1.Secret, error) {
	var list corev1.SecretList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(r.Namespace), client.MatchingLabelsSelector{Selector: nativeSelector()}); err != nil {
		return nil, fmt.Errorf("list acme-dns account Secrets: %w", err)
	}
	var out []corev1.Secret
	for _, s := range list.Items {
		if s.Annotations[delegationAnnotation] == key.String() {
			out = append(out, s)
		}
	}
	return out, nil
}

// removeAccount deletes an account: the user's Secret when the controller wrote it for the
// account's Delegation, then the account Secret.
func (r *AccountReconciler) removeAccount(ctx context.Context, acct *corev1.Secret) error {
	ns, _, _ := strings.Cut(acct.Annotations[delegationAnnotation], "/")
	name := acct.Annotations[v1alpha1.ACMEDNSSecretAnnotation]
	var user corev1.Secret
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &user)
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("get Secret %s/%s: %w", ns, name, err)
	}
	if err == nil && user.Labels[AccountLabel] == acct.Labels[AccountLabel] && controlledByUID(&user, acct.Labels[DelegationUIDLabel]) {
		if err := r.Client.Delete(ctx, &user, client.Preconditions{UID: &user.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete Secret %s/%s: %w", ns, name, err)
		}
	}
	if err := r.Client.Delete(ctx, acct, client.Preconditions{UID: &acct.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete account Secret %s/%s: %w", acct.Namespace, acct.Name, err)
	}
	logf.FromContext(ctx).Info("removed acme-dns account", "username", acct.Labels[AccountLabel], "delegation", acct.Annotations[delegationAnnotation])
	return nil
}

func controlledByUID(obj metav1.Object, uid string) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && string(ref.UID) == uid
}

func (r *AccountReconciler) warn(d *v1alpha1.Delegation, reason, format string, args ...any) {
	r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, reason, "WriteSecret", format, args...)
}
