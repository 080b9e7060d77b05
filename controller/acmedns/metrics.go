// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmedns

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "acmezone",
		Subsystem: "acmedns",
		Name:      "requests_total",
		Help:      "Counter of acme-dns API requests by endpoint (/register, /update, /health, other) and HTTP status code; 429 is a rate limit.",
	}, []string{"endpoint", "code"})
	httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "acmezone",
		Subsystem: "acmedns",
		Name:      "request_duration_seconds",
		Help:      "Time the acme-dns API took to answer, by endpoint (a password check is a bcrypt comparison: tens of milliseconds).",
		Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"endpoint"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(httpRequests, httpDuration)
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrumented serves r with next and counts it by the route the mux matched: a path nobody
// routes is "other", so a scan of random paths cannot grow the metric's series.
func instrumented(next *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	endpoint := "other"
	if _, path, ok := strings.Cut(r.Pattern, " "); ok {
		endpoint = path
	}
	code := sw.code
	if code == 0 {
		code = http.StatusOK
	}
	httpRequests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	httpDuration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
}
