// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build !coredns_full && !coredns_cluster

package main

// The plugins of the lean build: the only list of what bin/coredns and the coredns image link.
// Each is here because a Corefile we ship or test uses it, or because it hardens or operates
// the one zone this server is authoritative for; plugins_test.go fails when a Corefile in the
// repository names a directive that is not compiled in.
//
// To add a plugin, import its package below (a blank import registers it). Its place in the
// plugin chain is not set here: CoreDNS orders a server block's plugins by the directive list
// compiled into core/dnsserver (zdirectives.go), whichever plugins are linked, and
// acmezone.InsertDirective puts acmezone into that list. A plugin outside CoreDNS's list needs
// its own insert, as acmezone has. Check with `bin/coredns -plugins`.
//
// Left out on purpose: the cloud and service-discovery backends (route53, azure, clouddns,
// etcd, kubernetes, nomad, grpc), which bring the AWS, Azure and GCP SDKs; trace (Datadog and
// Zipkin); dnstap; forwarding and rewriting (forward, rewrite, template, hosts, ...); cache,
// which would delay a new challenge record by its TTL; any, as acmezone answers ANY itself.
import (
	_ "github.com/acmezone/acmezone/plugin/acmezone" // The challenge zone (it also brings client-go).

	// Server plumbing.
	_ "github.com/coredns/coredns/plugin/bind"    // Listen on given addresses (the tests and e2e bind to loopback IPs).
	_ "github.com/coredns/coredns/plugin/bufsize" // Cap the EDNS0 UDP size (Corefile.example, deploy/).
	_ "github.com/coredns/coredns/plugin/reload"  // Reload the Corefile when the ConfigMap changes (deploy/).

	// Operations.
	_ "github.com/coredns/coredns/plugin/errors"  // Log errors (every shipped Corefile).
	_ "github.com/coredns/coredns/plugin/health"  // Liveness probe (deploy/).
	_ "github.com/coredns/coredns/plugin/log"     // Query log (e2e's servers).
	_ "github.com/coredns/coredns/plugin/metrics" // The prometheus directive (deploy/).
	_ "github.com/coredns/coredns/plugin/pprof"   // Profiles on demand (make bench takes them).
	_ "github.com/coredns/coredns/plugin/ready"   // Readiness probe, fed by acmezone's sync (deploy/).

	// The zone's security and its copies.
	_ "github.com/coredns/coredns/plugin/acl"      // Refuse queries or transfers by source address.
	_ "github.com/coredns/coredns/plugin/dnssec"   // Sign acmezone's answers online (it brings AWS's SDK for keys in Secrets Manager).
	_ "github.com/coredns/coredns/plugin/transfer" // AXFR/IXFR to secondaries (plugin/acmezone/README.md).
	_ "github.com/coredns/coredns/plugin/tsig"     // Authenticate transfers.

	// Zone files.
	_ "github.com/coredns/coredns/plugin/file" // The parent zone in e2e's provider server, and make bench's baseline.
)
