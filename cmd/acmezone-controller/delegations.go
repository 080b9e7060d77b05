// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/time/rate"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/acmezone/acmezone/controller/canary"
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
		Client:         mgr.GetClient(),
		Options:        f.opts,
		Resolver:       resolver,
		Recorder:       mgr.GetEventRecorder(delegation.RecorderName),
		FailuresToFlip: f.canary.failuresToFlip,
	}
	if f.canary.interval > 0 {
		r.Canary = &delegation.Canary{
			// The reconciler's own client: canary values are written and deleted at once,
			// and the check for a pending challenge reads the cache.
			Prober:   &canary.Prober{Client: mgr.GetClient(), Resolver: resolver, Options: &r.Options, Deadline: f.canary.deadline},
			Interval: f.canary.interval,
			Retry:    min(delegation.DefaultCanaryRetry, f.canary.interval),
			Limit:    rate.NewLimiter(rate.Limit(f.canary.rate), 1),
		}
	}
	if f.canary.renewalWindow > 0 {
		r.Renewal = &delegation.Renewal{ClusterResourceNamespace: f.clusterResourceNamespace, Window: f.canary.renewalWindow}
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the Delegation reconciler: %w", err)
	}
	return nil
}

// canaryFlags configure the canary and how many failures in a row flip a Delegation.
type canaryFlags struct {
	interval, deadline time.Duration
	rate               float64
	failuresToFlip     int
	renewalWindow      time.Duration
}

func (c *canaryFlags) add(fs *pflag.FlagSet) {
	fs.DurationVar(&c.interval, "canary-interval", delegation.DefaultCanaryInterval, "How often each Verified Delegation's canary runs (jittered ±10 %; every minute while it fails): a test value written at the target must come back through --resolver and from every name server over UDP and TCP. 0 turns the canary off.")
	fs.DurationVar(&c.deadline, "canary-deadline", time.Minute, "How long a canary value may take to come back before the canary fails.")
	fs.Float64Var(&c.rate, "canary-rate", 0.5, "Canaries per second, for all Delegations together: a bound on the queries sent to the resolvers and name servers.")
	fs.DurationVar(&c.renewalWindow, "renewal-risk-window", delegation.DefaultRenewalWindow, "A Certificate renewing within this time (or overdue) is at risk while the Delegation answering its challenges is not Verified or not Served: a Warning Event on both, and acmezone_certificate_renewal_at_risk. 0 turns the tracking of Certificates off.")
	fs.IntVar(&c.failuresToFlip, "failures-to-flip", delegation.DefaultFailuresToFlip, "Checks (or canaries) that must fail in a row before a Verified (or Served) Delegation is no longer: a resolver's hiccup is no alarm.")
}
