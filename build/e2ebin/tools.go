// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package e2ebin pins the commands built by `make e2ebin` that come straight
// from a module (cmd/cert-manager-controller is this module's own main).
package e2ebin

import (
	_ "github.com/letsencrypt/pebble/v2/cmd/pebble"
)
