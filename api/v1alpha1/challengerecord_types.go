// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds of ChallengeRecordSpec.TTL, in seconds. A challenge record lives for minutes, and a
// resolver must not keep a stale value for long, so the upper bound is an hour.
const (
	MinRecordTTL = 1
	MaxRecordTTL = 3600
)

// CreatedAtAnnotation, when set by the writer of a ChallengeRecord to an RFC 3339 time with
// sub-second precision, is used instead of the (whole-second) creation timestamp to measure how
// long the record took to be served.
const CreatedAtAnnotation = "acmezone.io/created-at"

// DomainAnnotation is the domain whose challenge a ChallengeRecord answers, as the writer knew
// it (the webhook solver: the Challenge's dnsName); `kubectl get challengerecords` shows it.
const DomainAnnotation = "acmezone.io/domain"

// ChallengeRecordSpec is one TXT value at one name.
type ChallengeRecordSpec struct {
	// FQDN is the absolute name the TXT record is served at, with the trailing dot, for example
	// "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com.". It is served only when it is the
	// target of a Delegation in the same namespace.
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)+$`
	FQDN string `json:"fqdn"`

	// Value is one TXT string: printable ASCII, at most 255 bytes (an ACME DNS-01 key is 43).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[ -~]+$`
	Value string `json:"value"`

	// TTL of the TXT record in seconds; the plugin's `ttl` when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	TTL *int32 `json:"ttl,omitempty"`
}

// ConditionServed, on a ChallengeRecord, is True when the record's name is the target of a
// Delegation of its namespace: the rule the CoreDNS plugin serves by. acmezone-controller
// keeps it current as Delegations come and go. On a Delegation it is the canary's result
// (DelegationStatus.Canary).
const ConditionServed = "Served"

// ChallengeRecordStatus is what acmezone-controller found out about a ChallengeRecord.
type ChallengeRecordStatus struct {
	// Conditions: Served.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ChallengeRecord is a TXT value that the acmezone CoreDNS plugin serves at spec.fqdn. There is
// one object per (fqdn, value), named by ChallengeRecordName, so the apex and the wildcard
// challenge of one domain are two objects and creating the same record twice is a no-op.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=acr,categories=acmezone
// +kubebuilder:printcolumn:name="DOMAIN",type=string,JSONPath=`.metadata.annotations.acmezone\.io/domain`
// +kubebuilder:printcolumn:name="FQDN",type=string,JSONPath=`.spec.fqdn`
// +kubebuilder:printcolumn:name="VALUE",type=string,JSONPath=`.spec.value`
// +kubebuilder:printcolumn:name="SERVED",type=string,JSONPath=`.status.conditions[?(@.type=="Served")].status`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Served")].message`,priority=1
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.spec == oldSelf.spec",message="spec is immutable: the name is derived from fqdn and value; delete this ChallengeRecord and create a new one"
type ChallengeRecord struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ChallengeRecordSpec `json:"spec"`
	// +optional
	Status ChallengeRecordStatus `json:"status,omitempty"`
}

// ChallengeRecordList is a list of ChallengeRecords.
//
// +kubebuilder:object:root=true
type ChallengeRecordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ChallengeRecord `json:"items"`
}

// ChallengeRecordName is the object name of the ChallengeRecord for (fqdn, value): "txt-" and
// the first 40 hex digits of the SHA-256 of the canonical name (lower case, trailing dot) and
// the value. Equal records get equal names, so a second create fails with AlreadyExists.
func ChallengeRecordName(fqdn, value string) string {
	sum := sha256.Sum256([]byte(CanonicalName(fqdn) + " " + value))
	return "txt-" + hex.EncodeToString(sum[:20])
}

// NewChallengeRecord returns the ChallengeRecord for (fqdn, value) in namespace, named by
// ChallengeRecordName.
func NewChallengeRecord(namespace, fqdn, value string) *ChallengeRecord {
	return &ChallengeRecord{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: ChallengeRecordName(fqdn, value)},
		Spec:       ChallengeRecordSpec{FQDN: CanonicalName(fqdn), Value: value},
	}
}

// WrittenAt is when the record was last written: its CreatedAtAnnotation, else its creation
// time.
func (r *ChallengeRecord) WrittenAt() time.Time {
	if t, err := time.Parse(time.RFC3339Nano, r.Annotations[CreatedAtAnnotation]); err == nil {
		return t
	}
	return r.CreationTimestamp.Time
}

// CanonicalName returns name in lower case with exactly one trailing dot.
func CanonicalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

func init() {
	SchemeBuilder.Register(&ChallengeRecord{}, &ChallengeRecordList{})
}
