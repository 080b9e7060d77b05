// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package testbin pins the Kubernetes commands the tests build from the Go module proxy, at the
// versions Kubernetes itself requires: kube-apiserver, kubectl and etcd (`make testbin`), and
// the rest of a node and its control plane for the single-node cluster (`make clusterbin`).
package testbin

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
