// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package deploy holds acmezone's Kubernetes manifests (kustomize layout: default, crds,
// controller, coredns, examples/issuers) and the test that applies them with
// `kubectl apply --dry-run=server` against a real API server.
package deploy
