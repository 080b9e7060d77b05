// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package acmezone holds the Helm chart of acmezone and its tests.
package acmezone
