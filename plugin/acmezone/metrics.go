// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"maps"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// responses counts answers by server, zone and result (answer, nodata, nxdomain, refused,
	// servfail, notimp).
	responses = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "responses_total",
		Help:      "Counter of responses written by the acmezone plugin, by result.",
	}, []string{"server", "zone", "result"})

	// recordsGauge is the number of records in the served snapshot, by source.
	recordsGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "records",
		Help:      "Number of records served: challenge (ChallengeRecords) and static (ConfigMaps).",
	}, []string{"source"})

	// snapshotRebuilds counts published snapshots.
	snapshotRebuilds = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "snapshot_rebuilds_total",
		Help:      "Counter of snapshots published after a change in Kubernetes.",
	})

	// propagation is the delay from a ChallengeRecord's creation to it being served.
	propagation = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "propagation_seconds",
		Help:      "Delay from a ChallengeRecord's creation to it being served.",
		Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})

	// rejectedLines counts ConfigMap entries that were skipped.
	rejectedLines = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "configmap_rejected_entries_total",
		Help:      "Counter of ConfigMap zone-data entries skipped because they are invalid or not allowed.",
	})

	// configMapsRefused counts ConfigMaps not served because they are over a limit of
	// configmap_limits: "bytes" (of one ConfigMap) or "records" (static records of a zone).
	configMapsRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "configmaps_refused_total",
		Help:      "Counter of ConfigMaps not served because they are over a limit, by limit (bytes or records).",
	}, []string{"limit"})

	// valuesCapped counts rebuilds of a name that had more TXT values than max_values.
	valuesCapped = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "values_capped_total",
		Help:      "Counter of times the TXT values of a name were capped at max_values (the newest served, the rest dropped).",
	})

	// notifies counts NOTIFY messages sent to secondaries (with `notify`: one per address and
	// round; through the transfer plugin: one per round), by zone and result (ok, failed).
	notifies = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "notifies_total",
		Help:      "Counter of NOTIFY messages sent to secondaries after a change, by zone and result (ok or failed).",
	}, []string{"zone", "result"})

	// targetConflicts counts targets found claimed by Delegations of several namespaces.
	targetConflicts = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "target_conflicts_total",
		Help:      "Counter of targets found claimed by Delegations of several namespaces, where no records are served.",
	})
)

func observePropagation(d time.Duration) { propagation.Observe(d.Seconds()) }

// countNotify counts one NOTIFY sent for zone, failed when err is set.
func countNotify(zone string, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	notifies.WithLabelValues(zone, result).Inc()
}

// responseKey is the label values of one responses counter.
type responseKey struct{ server, zone, result string }

// responseCounters holds the responses counters used so far, copied on each addition (there
// are a few per server block): CounterVec.WithLabelValues hashes and validates the label
// values on every call, a fifth of the plugin's own work on a hit.
var responseCounters atomic.Pointer[map[responseKey]prometheus.Counter]

// countResponse counts one response.
func countResponse(server, zone, result string) {
	key := responseKey{server, zone, result}
	if m := responseCounters.Load(); m != nil {
		if c, ok := (*m)[key]; ok {
			c.Inc()
			return
		}
	}
	c := responses.WithLabelValues(server, zone, result)
	c.Inc()
	for {
		old := responseCounters.Load()
		next := map[responseKey]prometheus.Counter{key: c}
		if old != nil {
			maps.Copy(next, *old)
		}
		if responseCounters.CompareAndSwap(old, &next) {
			return
		}
	}
}
