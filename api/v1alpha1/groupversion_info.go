// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package v1alpha1 holds the acmezone.io/v1alpha1 API: ChallengeRecords (the TXT values the
// CoreDNS plugin serves) and Delegations (which name a namespace may publish records at).
//
// +kubebuilder:object:generate=true
// +groupName=acmezone.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "acmezone.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
