// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/acmezone/acmezone/controller/delegation"
	"github.com/acmezone/acmezone/controller/records"
)

// setupDelegations registers the Delegation reconciler, resolving through --resolver.
func setupDelegations(mgr ctrl.Manager, f *flags) error {
	resolver, err := records.NewResolver(f.opts.Resolvers)
	if err != nil {
		return fmt.Errorf("resolvers: %w", err)
	}
	r := &delegation.Reconciler{
		Client:   mgr.GetClient(),
		Options:  f.opts,
		Resolver: resolver,
		Recorder: mgr.GetEventRecorder(delegation.RecorderName),
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the Delegation reconciler: %w", err)
	}
	return nil
}
