//go:build tools

// Package testbin pins the commands built by `make testbin`: kube-apiserver, kubectl and
// etcd at the version Kubernetes itself requires.
package testbin

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
