// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// The SOA serial follows Kubernetes' own order of changes, so that it is monotonic across
// restarts and across replicas.
//
// Every replica watches the same etcd, whose resourceVersions order every write. The store
// remembers the highest resourceVersion it has applied (of a watch event's object; a DELETED
// event's object carries its deletion's; of a list, which also accounts for objects deleted
// while no watch ran), and each publish sets
//
//	serial = max(serial+1, uint32(highest resourceVersion applied))
//
// in RFC 1982 arithmetic (so a resourceVersion past 2^32 wraps as serials do). Two replicas
// that applied the same changes therefore serve the same content under the same serial,
// however they batched them, and a replica started later lists at a resourceVersion at least
// as high as any the others applied, so it never serves newer content under a lower serial.
//
// Residual: watches of different kinds (and namespaces) are independent, so one may deliver
// an event older than the highest version another watch already delivered (a ConfigMap watch
// lagging the ChallengeRecord watch). That publish gets serial+1, which another replica may
// give to different content; the next change with a higher resourceVersion orders them again.
//
// resourceVersions are opaque by contract. One that is not a decimal number turns the store to
// the clock for good (serial = max(serial+1, Unix time)), logged once.

import (
	"strconv"
	"time"
)

// applied records that the store's content is as of resourceVersion rv ("" for none known).
// Under mu.
func (s *store) applied(rv string) {
	if rv == "" || s.opaque {
		return
	}
	v, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		s.opaque = true
		log.Warningf("resourceVersion %q is not a decimal number: the SOA serial follows the clock instead (replicas may then serve different serials for the same content)", rv)
		return
	}
	if !s.versioned || v > s.version {
		s.version, s.versioned = v, true
	}
}

// nextSerial is the serial of the snapshot published now (see the rule above). Under mu.
func (s *store) nextSerial(now time.Time) uint32 {
	floor := uint32(now.Unix())
	if s.versioned && !s.opaque {
		floor = uint32(s.version)
	}
	next := s.serial + 1
	if s.serial == 0 || serialNewer(floor, next) {
		next = floor
	}
	if next == 0 {
		next = 1 // 0 asks for a full transfer in the transfer plugin's interface
	}
	return next
}

// serialNewer reports whether serial a is newer than b in RFC 1982 arithmetic.
func serialNewer(a, b uint32) bool { return a != b && int32(a-b) > 0 }
