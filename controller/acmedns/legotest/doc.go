// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package legotest holds a test, and only a test: lego's acmedns DNS provider, used as a
// library, obtains a certificate from Pebble through the acme-dns API of package acmedns and
// acmezone's CoreDNS (bin/coredns), with a real kube-apiserver behind both. It is a package of
// its own so that lego's dependencies stay out of every other test binary.
package legotest
