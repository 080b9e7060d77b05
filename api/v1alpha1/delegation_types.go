// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a Delegation.
const (
	// ConditionVerified is True when public DNS sends the domain's challenge name to the target.
	ConditionVerified = "Verified"
	// ConditionReady is True when certificates for the domain can be issued through the target.
	ConditionReady = "Ready"
	// ConditionPersistVerified is True when public DNS sends the domain's
	// _validation-persist name by CNAME to the persist target and the TXT lookup is answered
	// there (only with spec.persistentAuthorization).
	ConditionPersistVerified = "PersistVerified"
)

// PersistLabel marks the ChallengeRecords the Delegation reconciler writes at a Delegation's
// persist target (dns-persist-01); its value is the Delegation's name (empty when the name is
// no valid label value): their owner reference to the Delegation is what ties them to it.
const PersistLabel = "acmezone.io/persist"

// A Delegation's ConditionServed (challengerecord_types.go) is True when the last canary came
// back: a test value written at the target was answered for the challenge name through the
// resolvers and by every name server of the zone over UDP and TCP, as a CA would read a real
// challenge.

// CanaryLabel marks the ChallengeRecords the canary writes (and deletes within a minute):
// test values nobody else serves a purpose with.
const CanaryLabel = "acmezone.io/canary"

// ACMEDNSAccountLabel marks the Delegation, Secret and ChallengeRecords of an account of the
// acme-dns-compatible API. Such a Delegation's domain is unknown (acme-dns clients never say
// which domain they point at the account), so the Delegation reconciler leaves it alone.
const ACMEDNSAccountLabel = "acmezone.io/acme-dns-account"

// ACMEDNSSecretAnnotation on a Delegation names a Secret in the Delegation's namespace that
// acmezone-controller fills with an acme-dns account for the Delegation's target, in the
// format of cert-manager's acmeDNS solver (key "acmedns.json"), so that an Issuer's
// acmeDNS.accountSecretRef works without calling /register.
const ACMEDNSSecretAnnotation = "acmezone.io/acme-dns-secret"

// DelegationSpec names the domain whose DNS-01 challenges are answered by acmezone.
type DelegationSpec struct {
	// Domain is the domain certificates are issued for, for example "example.com" (without
	// "*." and without the trailing dot). Its challenges are answered at the target.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$`
	Domain string `json:"domain"`

	// Target, when set, pins the target: a name "<uuid>.<zone>" in the challenge zone. It is
	// honoured only when it is this namespace's own for the domain: the target derived for them
	// (the one status.target shows without spec.target), or one proved by the annotation
	// acmezone.io/target-proof, which the controller writes when it keeps a target given by an
	// earlier version and an administrator writes when migrating from acme-dns or another
	// cluster (docs/SECURITY.md). Leave it unset to get the namespace's own target.
	// +optional
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)+\.?$`
	Target string `json:"target,omitempty"`

	// PersistentAuthorization, when set, publishes a dns-persist-01 authorization
	// (draft-ietf-acme-dns-persist) for the domain: acmezone serves
	// "<issuer-domain-name>; accounturi=<account URL>[; policy=wildcard][; persistUntil=<unix>]"
	// at a second target of this namespace, the persist target, which the user's CNAME
	// "_validation-persist.<domain>" points at. Whoever holds that ACME account's key then gets
	// certificates for the domain from those CAs with no DNS change (docs/SECURITY.md).
	// +optional
	PersistentAuthorization *PersistentAuthorization `json:"persistentAuthorization,omitempty"`
}

// PersistentAuthorization is a dns-persist-01 authorization: which CAs, which ACME account.
// +kubebuilder:validation:XValidation:rule="has(self.accountURI) != has(self.issuerRef)",message="set exactly one of accountURI (the ACME account URL) and issuerRef (a cert-manager Issuer or ClusterIssuer whose status.acme.uri is the account URL)"
type PersistentAuthorization struct {
	// IssuerDomainNames are the CAs' issuer domain names (the names in their CAA records and
	// their challenges' issuer-domain-names), for example "letsencrypt.org". One TXT value is
	// served per name.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`
	IssuerDomainNames []string `json:"issuerDomainNames"`

	// AccountURI is the ACME account URL (the "kid" of the account), for example
	// "https://acme-v02.api.letsencrypt.org/acme/acct/123456".
	// +optional
	// +kubebuilder:validation:MaxLength=230
	// +kubebuilder:validation:Pattern=`^https://[!-:<-~]+$`
	AccountURI string `json:"accountURI,omitempty"`

	// IssuerRef names a cert-manager ACME Issuer (in this namespace) or ClusterIssuer whose
	// account's URL (status.acme.uri) is used, so that a new account rotates the value.
	// +optional
	IssuerRef *PersistIssuerRef `json:"issuerRef,omitempty"`

	// Wildcard adds "policy=wildcard": the authorization covers *.<domain> too.
	// +optional
	Wildcard bool `json:"wildcard,omitempty"`

	// PersistUntil adds "persistUntil=<unix time>": CAs do not accept the authorization after
	// it.
	// +optional
	PersistUntil *metav1.Time `json:"persistUntil,omitempty"`
}

// PersistIssuerRef names a cert-manager Issuer or ClusterIssuer.
type PersistIssuerRef struct {
	// Name of the Issuer or ClusterIssuer.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Kind is Issuer (in the Delegation's namespace, the default) or ClusterIssuer.
	// +optional
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +kubebuilder:default=Issuer
	Kind string `json:"kind,omitempty"`
}

// DNSRecord is one record the user adds at their DNS provider.
type DNSRecord struct {
	// Type is the record type: A, AAAA, NS, DS (a signed zone's link at its parent) or CNAME.
	Type string `json:"type"`
	// Name is the owner name, for example "_acme-challenge.example.com".
	Name string `json:"name"`
	// Content is the record data, for example the target of a CNAME.
	Content string `json:"content"`
}

// DelegationStatus is what the controller found out about a Delegation.
type DelegationStatus struct {
	// Target is the absolute name the domain's challenge records are served at, for this
	// namespace only. It is derived from the namespace and the domain (or is the proved
	// spec.target), so it never changes while they do not, and re-creating the Delegation gives
	// it back: the user's CNAME points at it. Empty when spec.target is not honoured (see the
	// Ready condition). It only shows the target: nothing reads it to decide one.
	// +optional
	Target string `json:"target,omitempty"`

	// PersistTarget is the absolute name the dns-persist-01 TXT values are served at (with
	// spec.persistentAuthorization): the user's CNAME _validation-persist.<domain> points at
	// it. Like target, it is this namespace's own and is only shown.
	// +optional
	PersistTarget string `json:"persistTarget,omitempty"`

	// Records are the records to add at the DNS provider, as the seed's tables show them.
	// +optional
	// +listType=atomic
	Records []DNSRecord `json:"records,omitempty"`

	// FailedChecks counts the record checks that failed in a row while the Delegation was
	// Verified: it stays Verified until several have (a resolver's hiccup is no alarm).
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`

	// Canary is the end-to-end test of the path a CA's lookup takes, run periodically while
	// the Delegation is Verified; the Served condition says what it found.
	// +optional
	Canary *CanaryStatus `json:"canary,omitempty"`

	// Certificates are the cert-manager Certificates whose challenges this Delegation answers
	// (a DNS name of theirs has its domain; an Issuer in this namespace, or a ClusterIssuer
	// when this is cert-manager's cluster resource namespace), with their renewal times. At
	// most 100, the soonest renewals first.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Certificates []DependentCertificate `json:"certificates,omitempty"`

	// ObservedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Verified (public DNS sends the challenge name to this target) and Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// CanaryStatus is what the canary found: when it last ran, when it last came back, how long
// the value took to be answered through the resolvers, and how many failed in a row.
type CanaryStatus struct {
	// LastProbeTime is when the last canary value was written.
	// +optional
	LastProbeTime *metav1.Time `json:"lastProbeTime,omitempty"`
	// LastSuccessTime is when a canary value last came back everywhere.
	// +optional
	LastSuccessTime *metav1.Time `json:"lastSuccessTime,omitempty"`
	// Latency is how long the last successful canary value took to be answered through the
	// resolvers.
	// +optional
	Latency *metav1.Duration `json:"latency,omitempty"`
	// ConsecutiveFailures counts the canaries that failed since the last success.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
}

// DependentCertificate is a Certificate whose renewal needs this Delegation's records.
type DependentCertificate struct {
	// Namespace and Name of the Certificate.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// RenewalTime is the Certificate's status.renewalTime: when cert-manager renews it.
	// +optional
	RenewalTime *metav1.Time `json:"renewalTime,omitempty"`
	// AtRisk is true while the renewal is due within the renewal-risk window (or overdue) and
	// this Delegation is not Verified or not Served: it would fail.
	// +optional
	AtRisk bool `json:"atRisk,omitempty"`
}

// Delegation says that DNS-01 challenges of spec.domain are answered by acmezone at a target
// name, and that this namespace may publish ChallengeRecords there. The target is this
// namespace's own (TargetKey.Target): no other namespace's records are ever served there.
// Delegations of several namespaces may name one domain, each with its own target; the one
// the public CNAME points at is Verified.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dlg,categories=acmezone
// +kubebuilder:printcolumn:name="DOMAIN",type=string,JSONPath=`.spec.domain`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="TARGET",type=string,JSONPath=`.status.target`,priority=1
// +kubebuilder:printcolumn:name="VERIFIED",type=string,JSONPath=`.status.conditions[?(@.type=="Verified")].status`,priority=1
// +kubebuilder:printcolumn:name="SERVED",type=string,JSONPath=`.status.conditions[?(@.type=="Served")].status`,priority=1
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Delegation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DelegationSpec   `json:"spec"`
	Status DelegationStatus `json:"status,omitempty"`
}

// DelegationList is a list of Delegations.
//
// +kubebuilder:object:root=true
type DelegationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Delegation `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Delegation{}, &DelegationList{})
}
