// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The tenancy rule of acmezone, in one place: which name a Delegation's records are served at.
// The CoreDNS plugin serves a namespace's ChallengeRecords only at the targets this rule gives
// that namespace's Delegations; the webhook solver, the Challenge watcher, the Delegation
// reconciler and the acme-dns API write and report by the same rule. docs/SECURITY.md explains
// it.
//
// A target is "<label>.<zone>", the label in UUID form. Without spec.target the label is
// derived from the namespace and the domain with a keyed hash (HMAC-SHA256 under the target
// key, a Secret only acmezone-controller and acmezone's CoreDNS read), so that:
//
//   - a target proves its owner: no other (namespace, domain) can be given the same name, while
//     a Delegation lives, after it or its namespace is deleted, after a restore, or after a
//     restart; nothing is stored, so nothing can be lost, raced or forged;
//   - re-creating the same Delegation in the same namespace gives the same target back, so the
//     user's CNAME keeps working.
//
// A spec.target that is not the derived one (a target handed out before targets were derived,
// an acme-dns subdomain being migrated) is honoured only with a proof: the annotation
// TargetProofAnnotation holding a keyed hash of (namespace, domain, target), which only the
// controller (migration, /register) or an administrator with the key (`acmezone-controller
// sign-target`) can compute.

// TargetProofAnnotation on a Delegation proves that its spec.target belongs to its namespace
// and domain: TargetKey.Proof of the three.
const TargetProofAnnotation = "acmezone.io/target-proof"

// MinTargetKeyBytes is the shortest target key accepted: 256 bits.
const MinTargetKeyBytes = 32

// Domain-separation prefixes of the two keyed hashes.
const (
	labelContext   = "acmezone.io/target-label/v1"
	proofContext   = "acmezone.io/target-proof/v1"
	persistContext = "acmezone.io/persist-label/v1"
)

// TargetKey derives and proves targets. The zero value has no key and derives nothing.
//
// +kubebuilder:object:generate=false
type TargetKey struct {
	key []byte
}

// NewTargetKey returns the key made of b without surrounding white space (a file or Secret
// written with a trailing newline holds the same key); it must be at least MinTargetKeyBytes
// long.
func NewTargetKey(b []byte) (TargetKey, error) {
	b = bytes.TrimSpace(b)
	if len(b) < MinTargetKeyBytes {
		return TargetKey{}, fmt.Errorf("the target key has %d bytes, want at least %d; create one with: head -c 32 /dev/urandom | base64", len(b), MinTargetKeyBytes)
	}
	return TargetKey{key: bytes.Clone(b)}, nil
}

// LoadTargetKey reads the key from a file (a mounted Secret's key, for example).
func LoadTargetKey(path string) (TargetKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return TargetKey{}, fmt.Errorf("read the target key: %w", err)
	}
	k, err := NewTargetKey(b)
	if err != nil {
		return TargetKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Valid reports whether k holds a key.
func (k TargetKey) Valid() bool { return len(k.key) >= MinTargetKeyBytes }

// mac is HMAC-SHA256 under k of the parts, each ended by a NUL (no part holds one).
func (k TargetKey) mac(parts ...string) []byte {
	h := hmac.New(sha256.New, k.key)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// uuidLabel is 122 bits of the MAC b as a UUID of version 8 (RFC 9562's version for custom
// UUIDs).
func uuidLabel(b []byte) string {
	b = bytes.Clone(b[:16])
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Label returns the derived target label of (namespace, domain): 122 bits of the keyed hash
// as a UUID of version 8 (RFC 9562's version for custom UUIDs), so targets look as they always
// did. The domain is compared as DomainKey.
func (k TargetKey) Label(namespace, domain string) string {
	return uuidLabel(k.mac(labelContext, namespace, DomainKey(domain)))
}

// PersistLabel returns the label of the persist target of (namespace, domain): the keyed
// hash of its own domain-separation context, so it is never a challenge target's label.
func (k TargetKey) PersistLabel(namespace, domain string) string {
	return uuidLabel(k.mac(persistContext, namespace, DomainKey(domain)))
}

// Proof returns the proof that target belongs to (namespace, domain): the value of
// TargetProofAnnotation, 43 characters of base64url.
func (k TargetKey) Proof(namespace, domain, target string) string {
	return base64.RawURLEncoding.EncodeToString(k.mac(proofContext, namespace, DomainKey(domain), CanonicalName(target)))
}

// verify reports whether proof is Proof(namespace, domain, target), in constant time.
func (k TargetKey) verify(namespace, domain, target, proof string) bool {
	want := k.Proof(namespace, domain, target)
	return len(proof) == len(want) && hmac.Equal([]byte(proof), []byte(want))
}

// DomainKey is the one canonical form of a domain: lower case, without a leading "*." and
// without the trailing dot. Delegations, Challenges and keyed hashes compare domains by it.
func DomainKey(domain string) string {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	return strings.TrimPrefix(d, "*.")
}

// TargetClaim is what the tenancy rule reads of a Delegation.
//
// +kubebuilder:object:generate=false
type TargetClaim struct {
	Namespace  string
	Domain     string
	SpecTarget string // spec.target, "" when unset
	Proof      string // the TargetProofAnnotation, "" when unset
}

// ClaimOf returns the TargetClaim of d.
func ClaimOf(d *Delegation) TargetClaim {
	return TargetClaim{Namespace: d.Namespace, Domain: d.Spec.Domain, SpecTarget: d.Spec.Target, Proof: d.Annotations[TargetProofAnnotation]}
}

// Errors of TargetKey.Target. Their messages are sentences for the user.
var (
	ErrNoTargetKey    = errors.New("no target key is configured, so no target can be derived or proved")
	ErrNoDomain       = errors.New("the Delegation has no spec.domain")
	ErrTargetForm     = errors.New("spec.target must have the form <uuid>.<zone> of the targets acmezone hands out, in a zone acmezone serves; remove spec.target to get this namespace's own target")
	ErrTargetNotOwned = errors.New("spec.target is not this namespace's own target for this domain: it is neither the target derived for them nor proved by the acmezone.io/target-proof annotation; remove spec.target to get this namespace's own target (moving a target between namespaces or from acme-dns is an administrator's action, see docs/SECURITY.md)")
)

// Target returns the canonical name the claim's records are served at, in one of zones
// (canonical; the first is where derived targets live), or an error that says why none:
//
//   - without spec.target: the derived label in zones[0];
//   - with spec.target in target form in one of zones: spec.target, when its label is the
//     derived one or the proof annotation proves it; else ErrTargetNotOwned;
//   - any other spec.target: ErrTargetForm.
//
// This is the whole tenancy rule: no status, age or other Delegation takes part in it.
func (k TargetKey) Target(c TargetClaim, zones ...string) (string, error) {
	switch {
	case !k.Valid():
		return "", ErrNoTargetKey
	case DomainKey(c.Domain) == "":
		return "", ErrNoDomain
	case len(zones) == 0:
		return "", ErrTargetForm
	}
	label := k.Label(c.Namespace, c.Domain)
	if c.SpecTarget == "" {
		return label + "." + CanonicalName(zones[0]), nil
	}
	t := CanonicalName(c.SpecTarget)
	l, ok := TargetLabel(t, zones...)
	switch {
	case !ok:
		return "", ErrTargetForm
	case l == label || c.Proof != "" && k.verify(c.Namespace, c.Domain, t, c.Proof):
		return t, nil
	}
	return "", ErrTargetNotOwned
}

// PersistTarget returns the canonical name the claim's dns-persist-01 values are served at
// (the second target of a Delegation with spec.persistentAuthorization): the derived persist
// label of (namespace, domain) in zones[0]. It exists only when Target(c, zones...) does, by
// the same rule: a Delegation that owns no target owns no persist target either, and the
// error is Target's.
func (k TargetKey) PersistTarget(c TargetClaim, zones ...string) (string, error) {
	if _, err := k.Target(c, zones...); err != nil {
		return "", err
	}
	return k.PersistLabel(c.Namespace, c.Domain) + "." + CanonicalName(zones[0]), nil
}

// TargetLabel returns the first label of the canonical name when the name has the target
// form "<uuid>.<zone>" for one of the canonical zones; ok is false otherwise. Names of that
// form are reserved for targets: static zone data may not sit at or below them.
func TargetLabel(name string, zones ...string) (label string, ok bool) {
	label, rest, found := strings.Cut(name, ".")
	if !found || !IsUUIDLabel(label) {
		return "", false
	}
	for _, z := range zones {
		if rest == z || rest == CanonicalName(z) {
			return label, true
		}
	}
	return "", false
}

// IsUUIDLabel reports whether s is a UUID in its lower-case text form
// (8-4-4-4-12 hexadecimal digits).
func IsUUIDLabel(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// IsKeyAuthorizationDigest reports whether s is what ACME's DNS-01 publishes: the base64url
// SHA-256 digest of a key authorization, 43 characters without padding. The webhook solver
// and the acme-dns API write nothing else.
func IsKeyAuthorizationDigest(s string) bool {
	return len(s) == 43 && IsBase64URL(s)
}

// IsBase64URL reports whether every byte of s is of the base64url alphabet (RFC 4648 section
// 5), without padding.
func IsBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
