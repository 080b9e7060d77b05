// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package controller holds what acmezone-controller's parts share: the Options that say which
// zone, name servers and target key this installation has, and the ownership questions every
// part asks (tenancy.go): a Delegation's target, the Delegation of a namespace that answers a
// domain, and the one served at a name, on the manager's cache and the indexes of
// IndexDelegations. The parts live in the packages below it: solver (cert-manager's webhook),
// challenge, delegation and acmedns (the reconcilers and the acme-dns API), records (the
// records a user adds, and their check in public DNS).
package controller
