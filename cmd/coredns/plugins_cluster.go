// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build coredns_cluster

package main

// The cluster DNS build (go build -tags coredns_cluster): the plugins of a Kubernetes
// cluster's own DNS, as build/cluster/kube-dns's Corefile uses them, for the single-node
// cluster of `make cluster-e2e` (image acmezone.test/cluster-dns:cluster). It links a few
// dozen packages instead of the full build's cloud SDKs, which made up most of a cold
// `make cluster-e2e`'s compile. Nothing ships it.
import (
	_ "github.com/acmezone/acmezone/plugin/acmezone"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)
