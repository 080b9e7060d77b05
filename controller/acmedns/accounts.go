// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmedns

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// An account is stored as two objects in Options.Namespace, both named AccountName(username):
//
//   - a Delegation with spec.domain "<subdomain>.<zone>" (the fulldomain: acme-dns never learns
//     the user's own domain, and the fulldomain is unique, so it never conflicts with another
//     Delegation), spec.target "<subdomain>.<zone>." and the v1alpha1.TargetProofAnnotation
//     that proves this target to be Options.Namespace's own for that domain, so that the
//     CoreDNS plugin serves it (the Delegation reconciler writes status.target);
//   - a Secret owned by the Delegation (deleting the Delegation deletes the account) with the
//     bcrypt hash of the password, the subdomain and allowfrom. The password itself is never
//     stored.
//
// Both carry AccountLabel, and so do the ChallengeRecords written through /update.
const (
	// AccountLabel holds the account's username on its Delegation, Secret and records.
	AccountLabel = v1alpha1.ACMEDNSAccountLabel
	// SecretType is the type of an account's Secret.
	SecretType corev1.SecretType = "acmezone.io/acme-dns-account"

	keyPasswordHash = "password-hash"
	keySubdomain    = "subdomain"
	keyAllowFrom    = "allowfrom"

	// passwordLength and passwordAlphabet are acme-dns's: 40 characters of base64url.
	passwordLength   = 40
	passwordAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
)

// errForbidden is any authentication failure; acme-dns answers them all alike.
var errForbidden = errors.New("forbidden")

// AccountName is the name of the Delegation and the Secret of the account username.
func AccountName(username string) string { return "acme-dns-" + username }

// account is an authenticated or new account.
type account struct {
	Username  string
	Subdomain string
	Target    string // canonical, with the trailing dot
	Namespace string // where its records are written: its Delegation's
	AllowFrom []string
	allow     []netip.Prefix
}

// dummyHash is compared against for unknown users, so that they take as long as known ones.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(randomPassword()), bcrypt.DefaultCost)
	if err != nil {
		panic(err)
	}
	return h
})

// createAccount creates the Delegation and the Secret of a new account and returns it with
// its password.
func (s *Server) createAccount(ctx context.Context, allowFrom []string) (*account, string, error) {
	password := randomPassword()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, "", fmt.Errorf("hash password: %w", err)
	}
	acct := &account{Username: uuid.NewString(), Subdomain: uuid.NewString(), AllowFrom: allowFrom}
	acct.Target = acct.Subdomain + "." + s.opts.Zone
	acct.Namespace = s.opts.Namespace
	name := AccountName(acct.Username)
	labels := map[string]string{AccountLabel: acct.Username}

	domain := strings.TrimSuffix(acct.Target, ".")
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.opts.Namespace, Name: name, Labels: labels,
			Annotations: map[string]string{v1alpha1.TargetProofAnnotation: s.opts.TargetKey.Proof(s.opts.Namespace, domain, acct.Target)},
		},
		Spec: v1alpha1.DelegationSpec{Domain: domain, Target: acct.Target},
	}
	if err := s.cfg.Client.Create(ctx, d); err != nil {
		return nil, "", fmt.Errorf("create Delegation %s/%s: %w", d.Namespace, d.Name, err)
	}
	undo := func() {
		_ = s.cfg.Client.Delete(context.WithoutCancel(ctx), d, client.PropagationPolicy(metav1.DeletePropagationBackground))
	}
	allow, _ := json.Marshal(allowFrom)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.opts.Namespace, Name: name, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "Delegation",
				Name: d.Name, UID: d.UID, Controller: new(true),
			}},
		},
		Type: SecretType,
		Data: map[string][]byte{keyPasswordHash: hash, keySubdomain: []byte(acct.Subdomain), keyAllowFrom: allow},
	}
	if err := s.cfg.Client.Create(ctx, sec); err != nil {
		undo()
		return nil, "", fmt.Errorf("create Secret %s/%s: %w", sec.Namespace, sec.Name, err)
	}
	return acct, password, nil
}

// authenticate returns the account of user if key is its password, else errForbidden; other
// errors are the API server's. As acme-dns, a username that is not a UUID or a key that is
// not 40 base64url characters fails at once; an unknown user costs a bcrypt comparison like
// a known one.
func (s *Server) authenticate(ctx context.Context, user, key string) (*account, error) {
	u, err := uuid.Parse(user)
	if err != nil || !validKey(key) {
		return nil, errForbidden
	}
	name := AccountName(u.String())
	var sec corev1.Secret
	err = s.cfg.APIReader.Get(ctx, types.NamespacedName{Namespace: s.opts.Namespace, Name: name}, &sec)
	if apierrors.IsNotFound(err) || err == nil && sec.Type != SecretType {
		_ = s.compare(dummyHash(), []byte(key))
		return nil, errForbidden
	}
	if err != nil {
		return nil, fmt.Errorf("get Secret %s/%s: %w", s.opts.Namespace, name, err)
	}
	if s.compare(sec.Data[keyPasswordHash], []byte(key)) != nil {
		return nil, errForbidden
	}
	acct := &account{Username: u.String(), Subdomain: string(sec.Data[keySubdomain])}
	if err := json.Unmarshal(sec.Data[keyAllowFrom], &acct.AllowFrom); err != nil {
		return nil, fmt.Errorf("Secret %s/%s: allowfrom: %w", sec.Namespace, sec.Name, err)
	}
	for _, c := range acct.AllowFrom {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("Secret %s/%s: allowfrom: %w", sec.Namespace, sec.Name, err)
		}
		acct.allow = append(acct.allow, p.Masked())
	}
	// The account writes at the target it was made for (a native one's is in its Secret), and
	// only while that is, by the tenancy rule, the target of its Delegation's namespace.
	var d *v1alpha1.Delegation
	if isNative(&sec) {
		d, err = s.boundDelegation(ctx, &sec)
		acct.Target = string(sec.Data[keyTarget])
	} else {
		d, err = s.registeredDelegation(ctx, name)
		acct.Target = acct.Subdomain + "." + s.opts.Zone
	}
	if err != nil {
		return nil, err
	}
	if owned, err := s.opts.TargetKey.Target(v1alpha1.ClaimOf(d), s.opts.Zone); err != nil || owned != acct.Target {
		s.cfg.Log.Info("refused an update: the account's target is not its Delegation's own", "username", acct.Username, "delegation", d.Namespace+"/"+d.Name, "reason", err)
		return nil, errForbidden
	}
	acct.Namespace = d.Namespace
	return acct, nil
}

// registeredDelegation returns the Delegation of an account made through /register: the one
// named like its Secret in Options.Namespace.
func (s *Server) registeredDelegation(ctx context.Context, name string) (*v1alpha1.Delegation, error) {
	var d v1alpha1.Delegation
	if err := s.cfg.APIReader.Get(ctx, types.NamespacedName{Namespace: s.opts.Namespace, Name: name}, &d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errForbidden // the account is being deleted
		}
		return nil, fmt.Errorf("get Delegation %s/%s: %w", s.opts.Namespace, name, err)
	}
	return &d, nil
}

// writeRecord publishes value at the account's target, in its Delegation's namespace.
// Writing a value again only refreshes its time. Every value is kept (acme-dns keeps the last
// two only, which breaks three concurrent challenges) until the record reaper of the
// Challenge watcher (challenge.ExpiryReconciler) finds it older than --acme-dns-record-max-age
// and answering no live Challenge.
func (s *Server) writeRecord(ctx context.Context, acct *account, value string) error {
	stamp := s.now().UTC().Format(time.RFC3339Nano)
	rec := v1alpha1.NewChallengeRecord(acct.Namespace, acct.Target, value)
	rec.Labels = map[string]string{AccountLabel: acct.Username}
	rec.Annotations = map[string]string{v1alpha1.CreatedAtAnnotation: stamp}
	err := s.cfg.Client.Create(ctx, rec)
	if apierrors.IsAlreadyExists(err) {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.CreatedAtAnnotation, stamp)
		err = s.cfg.Client.Patch(ctx, rec, client.RawPatch(types.MergePatchType, []byte(patch)))
	}
	if err != nil {
		return fmt.Errorf("write ChallengeRecord %s/%s for %s: %w", rec.Namespace, rec.Name, acct.Target, err)
	}
	return nil
}

// parseAllowFrom validates /register's allowfrom as acme-dns does (every entry a CIDR, IPv6
// brackets ignored) and returns it sanitized, never nil (acme-dns answers `"allowfrom": []`).
func parseAllowFrom(list []string) ([]string, error) {
	out := []string{}
	for _, c := range list {
		c = strings.NewReplacer("[", "", "]", "").Replace(c)
		if _, err := netip.ParsePrefix(c); err != nil {
			return nil, fmt.Errorf("allowfrom %q is not a CIDR", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// validKey is acme-dns's validKey: 40 characters of the password alphabet.
func validKey(k string) bool {
	return len(k) == passwordLength && v1alpha1.IsBase64URL(k)
}

// randomPassword returns passwordLength characters of passwordAlphabet from crypto/rand; 64
// symbols divide 256, so taking the low 6 bits of a random byte is uniform.
func randomPassword() string {
	b := make([]byte, passwordLength)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = passwordAlphabet[b[i]&63]
	}
	return string(b)
}
