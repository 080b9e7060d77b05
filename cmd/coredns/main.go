// Command coredns is stock CoreDNS with the acmezone plugin compiled in.
package main

import (
	"slices"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // Every stock plugin.
	"github.com/coredns/coredns/coremain"

	_ "github.com/acmezone/acmezone/plugin/acmezone"
)

// version is the acmezone version, stamped by `make build` with -ldflags -X.
var version = "dev"

func init() {
	// acmezone runs right after tls, where upstream keeps it: after dnssec, so dnssec can sign
	// its answers, and before transfer, which it hands zone transfers to.
	i := slices.Index(dnsserver.Directives, "tls")
	dnsserver.Directives = slices.Insert(dnsserver.Directives, i+1, "acmezone")
}

func main() {
	// coremain's init set AppVersion to CoreDNS's; name this build in `-version` too.
	caddy.AppVersion = coremain.CoreVersion + "+acmezone-" + version
	coremain.Run()
}
