// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package legotest holds a test, and only a test: lego's dnsupdate (RFC 2136) DNS provider,
// used as a library, obtains a certificate from Pebble through the UPDATE listener of package
// rfc2136 and acmezone's CoreDNS (bin/coredns), with a real kube-apiserver behind both. It is a
// package of its own so that lego's dependencies stay out of every other test binary.
package legotest
