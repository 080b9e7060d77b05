// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build !conformance

package conformance

import (
	"testing"

	"github.com/acmezone/acmezone/internal/kubetest"
)

// TestConformanceBasic stands in for cert-manager's conformance suite (conformance_test.go),
// which needs the build tag `conformance` and a control plane: cert-manager's test/acme panics
// at package init without them.
func TestConformanceBasic(t *testing.T) {
	t.Skip("cert-manager's webhook conformance suite " + kubetest.NoControlPlane + "; by hand: go test -tags conformance ./controller/solver/conformance with TEST_ASSET_KUBE_APISERVER, TEST_ASSET_ETCD and TEST_ASSET_KUBECTL set")
}
