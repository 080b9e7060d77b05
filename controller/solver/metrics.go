// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package solver

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of a Present or CleanUp, the label "result" of the solver's metrics.
const (
	ResultSuccess      = "success"       // the record is written (Present) or gone (CleanUp)
	ResultInvalid      = "invalid"       // the request itself is wrong (no namespace, bad key, config)
	ResultNoDelegation = "no_delegation" // no Delegation of the request's namespace answers it
	ResultNotReady     = "not_ready"     // the solver has no target key yet, or the Delegation no target
	ResultError        = "error"         // the API server failed the write
)

var (
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "acmezone",
		Subsystem: "solver",
		Name:      "requests_total",
		Help:      "Counter of cert-manager's webhook calls (action present or cleanup) by result: success, invalid, no_delegation, not_ready, error.",
	}, []string{"action", "result"})
	duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "acmezone",
		Subsystem: "solver",
		Name:      "request_duration_seconds",
		Help:      "Time the solver took to answer cert-manager's Present and CleanUp calls, by action.",
		Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"action"})
)

func init() {
	// controller-runtime's registry: served on acmezone-controller's metrics endpoint.
	ctrlmetrics.Registry.MustRegister(requests, duration)
}

// refusal is an error that answers cert-manager's request as it is, not a failure of the API
// server; its result names which.
type refusal struct {
	result string
	error
}

func (r refusal) Unwrap() error { return r.error }

// resultOf classifies what Present or CleanUp returned.
func resultOf(err error) string {
	var r refusal
	switch {
	case err == nil:
		return ResultSuccess
	case errors.As(err, &r):
		return r.result
	default:
		return ResultError
	}
}

// observe counts one call of action that started at start and returned *err.
func observe(action string, start time.Time, err *error) {
	requests.WithLabelValues(action, resultOf(*err)).Inc()
	duration.WithLabelValues(action).Observe(time.Since(start).Seconds())
}
