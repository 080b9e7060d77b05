// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build !race

package acmezone

// raceEnabled says the tests run under the race detector (see race_test.go).
const raceEnabled = false
