// Command coredns is stock CoreDNS with the acmezone plugin compiled in.
package main

import (
	"github.com/coredns/caddy"
	_ "github.com/coredns/coredns/core/plugin" // Every stock plugin.
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
