// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build coredns_full

package main

// The full build (go build -tags coredns_full): every stock CoreDNS plugin, as cmd/coredns
// linked before the lean list in plugins.go. make bench measures it side by side with the lean
// build; nothing ships it.
import (
	_ "github.com/acmezone/acmezone/plugin/acmezone"
	_ "github.com/coredns/coredns/core/plugin" // Every stock plugin.
)
