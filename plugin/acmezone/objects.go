// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// What the store keeps of each Kubernetes object, and how it is read from the API's types.
//
// The store never keeps an object or its name: a ChallengeRecord is a recordIn on its way in
// and a recSlot once held, a Delegation a delegationIn and then a delSlot, each named by an
// objID. Watch events carry typed objects (recordOf, delegationOf); lists are decoded straight
// into recordIn and delegationIn (wireObject.item), and TestPageDecodersMatchTypedObjects
// checks that both ways give the same.

import (
	"hash/maphash"
	"math"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// objID names a ChallengeRecord or a Delegation inside the store: a 128-bit keyed hash of its
// kind, namespace and name. The store keeps ids, not names: an id is 16 bytes, a name a string
// header and its bytes, and a server holds 200,000 of them at 100,000 records. Two objects get
// the same id with a probability of about 2^-128 per pair (as two random UUIDs would), and the
// seeds are random per process, so no one can choose names that collide. It is four 32-bit
// words, not two 64-bit ones, so that a delSlot (an id and a namespace index) takes 20 bytes,
// not 24.
type objID [4]uint32

// The kinds an objID is computed for.
const (
	kindRecord     = 'r'
	kindDelegation = 'd'
	// kindPersist is a Delegation's second slot, at its persist target (dns-persist-01):
	// the Delegation's own name with another kind, so another id.
	kindPersist = 'p'
)

var idSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// idOf returns the id of the object of kind at key: two 64-bit hashes with independent seeds.
func idOf(kind byte, key types.NamespacedName) objID {
	var id objID
	for i, seed := range idSeeds {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteByte(kind)
		h.WriteString(key.Namespace)
		h.WriteByte('/') // neither a namespace nor a name can hold a slash
		h.WriteString(key.Name)
		sum := h.Sum64()
		id[2*i], id[2*i+1] = uint32(sum), uint32(sum>>32)
	}
	return id
}

// keyOf is an object's namespace and name.
func keyOf(o metav1.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
}

// recordIn is one ChallengeRecord as the store needs it.
type recordIn struct {
	fqdn    string // canonical
	value   string
	ttl     uint32 // 0: the plugin's default
	created time.Time
}

// recordOf is what the store keeps of a ChallengeRecord: its spec, and its creation time from
// the created-at annotation (sub-seconds) when it parses, else from creationTimestamp.
func recordOf(spec *v1alpha1.ChallengeRecordSpec, created time.Time, createdAt string) *recordIn {
	rec := &recordIn{fqdn: canonical(spec.FQDN), value: spec.Value, created: created}
	if spec.TTL != nil && *spec.TTL > 0 {
		rec.ttl = uint32(*spec.TTL)
	}
	if t, err := time.Parse(time.RFC3339Nano, createdAt); err == nil {
		rec.created = t
	}
	return rec
}

// delegationIn is one Delegation as the store needs it: what the tenancy rule reads of it.
// The store places it at claim's target (TargetKey.Target) with the Delegation's namespace as
// the store knows it; the claim's own Namespace is not read.
// persist says it has spec.persistentAuthorization: it is placed at its persist target too.
type delegationIn struct {
	claim   v1alpha1.TargetClaim
	persist bool
}

// delegationOf is what the store reads of a Delegation.
func delegationOf(d *v1alpha1.Delegation) *delegationIn {
	return &delegationIn{claim: v1alpha1.ClaimOf(d), persist: d.Spec.PersistentAuthorization != nil}
}

// servableValue reports whether a ChallengeRecord's value may be served: one TXT string of 1
// to 255 bytes of printable ASCII, as the CRD requires. The plugin checks it again so that
// nothing else reaches the wire, whatever wrote the object.
func servableValue(v string) bool {
	if len(v) == 0 || len(v) > 255 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// txtString is the dns.TXT string of the value v: miekg/dns reads a backslash as the start of
// an escape when it packs a TXT string (\007 would be a BEL), so backslashes are doubled and
// the wire carries v exactly as written.
func txtString(v string) string {
	if strings.IndexByte(v, '\\') < 0 {
		return v
	}
	return strings.ReplaceAll(v, `\`, `\\`)
}

// noTime stands for the zero time.Time, which Unix nanoseconds cannot hold; it sorts first,
// as the zero time does.
const noTime = math.MinInt64

// unixNano is t in Unix nanoseconds, noTime for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return t.UnixNano()
}
