package main

import ctrl "sigs.k8s.io/controller-runtime"

// setupDelegations registers the Delegation reconciler.
func setupDelegations(mgr ctrl.Manager, f *flags) error { return nil }
