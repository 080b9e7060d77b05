// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package delegation

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records"
)

// Conditions that earlier versions set and this one removes.
const (
	conditionConflict    = "Conflict"
	conditionTargetFixed = "TargetFixed"
)

// Condition reasons. A Verified condition that is False has the Reason of the first failed
// records.Check: records.ReasonNameServerAddress, ReasonNSNotDelegated, ReasonCNAMEMissing,
// ReasonCNAMEWrongTarget or ReasonTXTLookupFailed; in a signed zone also
// records.ReasonDSMissing, and records.ReasonDSMismatch or ReasonDNSKEYNotServed, which come
// first (breaksChain).
const (
	ReasonRecordsResolve = "RecordsResolve" // Verified True
	ReasonVerified       = "Verified"       // Ready True
	ReasonNotVerified    = "NotVerified"    // Ready False
	ReasonInvalidTarget  = "InvalidTarget"  // Verified Unknown, Ready False: no target (spec.target)
	ReasonTargetKept     = "TargetKept"     // Event: a target of an earlier version was kept
)

// setConditions sets Verified and Ready from the checks, or from why the Delegation has no
// target (invalid). The checks are nil when they were not made for want of a target.
func setConditions(d *v1alpha1.Delegation, opts controller.Options, invalid error, checks []records.Check, now time.Time) {
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason,
			Message: msg, ObservedGeneration: d.Generation, LastTransitionTime: metav1.NewTime(now)})
	}
	domain := v1alpha1.DomainKey(d.Spec.Domain)
	if invalid != nil {
		msg := "No records are served for this Delegation: " + invalid.Error() + "."
		set(v1alpha1.ConditionVerified, metav1.ConditionUnknown, ReasonInvalidTarget, "The records are not checked while this Delegation has no target; see the Ready condition.")
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonInvalidTarget, msg)
		return
	}
	var problems, first []string
	reason := ""
	for _, ch := range checks {
		switch {
		case ch.OK:
		case breaksChain(ch.Reason):
			first = append(first, ch.Problem)
			if reason == "" || !breaksChain(reason) {
				reason = ch.Reason
			}
		default:
			problems = append(problems, ch.Problem)
			if reason == "" {
				reason = ch.Reason
			}
		}
	}
	problems = append(first, problems...)
	if len(problems) > 0 {
		msg := strings.Join(problems, ". ") + "."
		set(v1alpha1.ConditionVerified, metav1.ConditionFalse, reason, msg)
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonNotVerified, "The records at the DNS provider are not all in place: "+msg)
		return
	}
	msg := verifiedMessage(opts, checks)
	set(v1alpha1.ConditionVerified, metav1.ConditionTrue, ReasonRecordsResolve, msg)
	set(v1alpha1.ConditionReady, metav1.ConditionTrue, ReasonVerified, fmt.Sprintf("Certificates for %s can be issued: %s", domain, msg))
}

// breaksChain reports whether a failed check of reason makes a validating resolver reject
// every answer of the zone (a DS that names no served, signed key): the NS and TXT lookups
// through such a resolver then fail too (SERVFAIL), and the DNSSEC problem is the one to fix
// first, so it gives the reason and leads the message.
func breaksChain(reason string) bool {
	return reason == records.ReasonDSMismatch || reason == records.ReasonDNSKEYNotServed
}

// verifiedMessage says what resolves: "_acme-challenge.example.com points to T, and
// acme.example.com is delegated to ns.example.com."
func verifiedMessage(opts controller.Options, checks []records.Check) string {
	var cname, lookup, signed string
	var servers, keyServers []string
	for _, c := range checks {
		switch c.Record.Type {
		case records.TypeCNAME:
			cname = fmt.Sprintf("%s points to %s", c.Record.Name, c.Found)
		case records.TypeTXT:
			lookup = fmt.Sprintf("the TXT lookup of %s is answered at %s", c.Record.Name, c.Record.Content)
		case records.TypeNS:
			servers = append(servers, c.Record.Content)
		case records.TypeDS:
			signed = c.Record.Content
		case records.TypeDNSKEY:
			keyServers = append(keyServers, c.Record.Content)
		}
	}
	msg := cname
	if msg == "" {
		msg = lookup
	}
	if len(servers) > 0 {
		msg += fmt.Sprintf(", and %s is delegated to %s", strings.TrimSuffix(opts.Zone, "."), strings.Join(servers, " and "))
	}
	if signed != "" {
		msg += fmt.Sprintf("; it is signed: its parent has the DS %s, and the key is served, signed, by %s", signed, strings.Join(keyServers, " and "))
	}
	return msg + "."
}

func conditionStatus(d *v1alpha1.Delegation, typ string) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(d.Status.Conditions, typ); c != nil {
		return c.Status
	}
	return metav1.ConditionUnknown
}

// maxNote is the longest note of an events.k8s.io/v1 Event.
const maxNote = 1024

// recordChanges posts an Event for each condition whose status or reason changed: a new
// message alone (another address found, say) is no news.
func (r *Reconciler) recordChanges(d *v1alpha1.Delegation, before []metav1.Condition) {
	if r.Recorder == nil {
		return
	}
	changed := func(typ string) *metav1.Condition {
		now := meta.FindStatusCondition(d.Status.Conditions, typ)
		was := meta.FindStatusCondition(before, typ)
		if now == nil || (was != nil && was.Status == now.Status && was.Reason == now.Reason) {
			return nil
		}
		return now
	}
	emit := func(eventtype, reason, action, note string) {
		if len(note) > maxNote {
			note = note[:maxNote-3] + "..."
		}
		r.Recorder.Eventf(d, nil, eventtype, reason, action, "%s", note)
	}
	if c := changed(v1alpha1.ConditionVerified); c != nil {
		switch c.Status {
		case metav1.ConditionTrue:
			emit("Normal", "Verified", "Verify", c.Message)
		case metav1.ConditionFalse:
			emit("Warning", "NotVerified", "Verify", c.Message)
		}
	}
	if c := changed(v1alpha1.ConditionServed); c != nil {
		switch c.Status {
		case metav1.ConditionTrue:
			emit("Normal", "Served", "Canary", c.Message)
		case metav1.ConditionFalse:
			emit("Warning", "NotServed", "Canary", c.Message)
		}
	}
	if c := changed(v1alpha1.ConditionPersistVerified); c != nil {
		switch c.Status {
		case metav1.ConditionTrue:
			emit("Normal", "PersistVerified", "VerifyPersist", c.Message)
		case metav1.ConditionFalse:
			emit("Warning", "PersistNotVerified", "VerifyPersist", c.Message)
		}
	}
	if c := changed(v1alpha1.ConditionReady); c != nil && c.Reason == ReasonInvalidTarget {
		emit("Warning", ReasonInvalidTarget, "AssignTarget", c.Message)
	}
}
