// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// Ready implements ready.Readiness: ready once every reflector has delivered its first list.
func (a *ACMEZone) Ready() bool { return a.store.synced() }
