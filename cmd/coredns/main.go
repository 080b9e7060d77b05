// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Command coredns is CoreDNS with the acmezone plugin and the stock plugins a challenge zone
// needs (plugins.go); `go build -tags coredns_full` links every stock plugin instead
// (plugins_full.go), which `make bench` measures against.
package main

import (
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/coremain"

	"github.com/acmezone/acmezone/plugin/acmezone"
)

// version is the acmezone version, stamped by `make build` with -ldflags -X.
var version = "dev"

func init() { acmezone.InsertDirective() }

func main() {
	// coremain's init set AppVersion to CoreDNS's; name this build in `-version` too.
	caddy.AppVersion = coremain.CoreVersion + "+acmezone-" + version
	coremain.Run()
}
