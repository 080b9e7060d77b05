// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build race

package acmezone

// raceEnabled says the tests run under the race detector, which slows some code paths many
// times more than others: timing tests skip themselves then (they run in the plain run).
const raceEnabled = true
