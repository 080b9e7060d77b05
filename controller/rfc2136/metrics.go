// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package rfc2136

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Operations of the updates counter.
const (
	opAdd    = "add"
	opDelete = "delete"
)

var (
	answered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "acmezone",
		Subsystem: "rfc2136",
		Name:      "updates_total",
		Help:      "Counter of RFC 2136 UPDATEs by rcode: NOERROR, REFUSED, NOTZONE, NOTAUTH, FORMERR, the prerequisite rcodes, and NOTAUTH/BADKEY, NOTAUTH/BADSIG, NOTAUTH/BADTIME for TSIG failures.",
	}, []string{"rcode"})
	updates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "acmezone",
		Subsystem: "rfc2136",
		Name:      "records_total",
		Help:      "Counter of TXT records added and deleted through RFC 2136 UPDATEs, by operation (add, delete).",
	}, []string{"op"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(answered, updates)
}

// labelValue is s as a label value: itself when it is one, else "h-" and 40 hex digits of its
// SHA-256 (a Secret's name may be longer than the 63 characters a label value may hold).
func labelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "h-" + hex.EncodeToString(sum[:20])
}
