// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package rfc2136

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// MaxRRs bounds the prerequisite and update sections of one UPDATE together: an ACME client
// sends one to four records; a message with more is refused before anything is looked up.
const MaxRRs = 64

// refusal is an UPDATE's answer other than NOERROR, and why (for the log and the metric).
type refusal struct {
	rcode int
	why   string
}

func (r *refusal) Error() string { return dns.RcodeToString[r.rcode] + ": " + r.why }

func refuse(rcode int, format string, args ...any) *refusal {
	return &refusal{rcode: rcode, why: fmt.Sprintf(format, args...)}
}

// target is one name an UPDATE touches: a target of the key's namespace, with the domain of
// the Delegation placed there (for the records' annotation).
type target struct {
	name   string
	domain string
	txt    []string // the namespace's TXT values there now; read once, for the prerequisites
	read   bool
}

// update is one UPDATE being applied for the namespace of the key that signed it.
type update struct {
	s         *Server
	namespace string
	keySecret string
	targets   map[string]*target
}

// apply processes req, an UPDATE whose TSIG was verified with a key of u.namespace, in the
// order of RFC 2136 section 3: the zone (3.1), the prerequisites (3.2), the permissions (3.3;
// for every name before any prerequisite is evaluated, so that a prerequisite cannot tell
// whether another namespace has a record), the prescan (3.4.1) and the changes (3.4.2). Nothing
// is written before every record has passed every check. It returns nil for NOERROR.
func (u *update) apply(ctx context.Context, req *dns.Msg) *refusal {
	if len(req.Question) != 1 {
		return refuse(dns.RcodeFormatError, "the zone section holds %d records, want 1", len(req.Question))
	}
	z := req.Question[0]
	if z.Qtype != dns.TypeSOA || z.Qclass != dns.ClassINET {
		return refuse(dns.RcodeFormatError, "the zone section is %s %s, want SOA IN", dns.ClassToString[z.Qclass], dns.TypeToString[z.Qtype])
	}
	zone := v1alpha1.CanonicalName(z.Name)
	if zone != u.s.zone {
		return refuse(dns.RcodeNotAuth, "zone %s is not served here (the challenge zone is %s)", zone, u.s.zone)
	}
	if n := len(req.Answer) + len(req.Ns); n > MaxRRs {
		return refuse(dns.RcodeRefused, "%d prerequisite and update records, at most %d are accepted", n, MaxRRs)
	}
	// Every name in the zone (else NOTZONE, 3.2.5 and 3.4.1.3), then every name the
	// namespace's (else REFUSED).
	for _, rr := range slices.Concat(req.Answer, req.Ns) {
		name := v1alpha1.CanonicalName(rr.Header().Name)
		if !dns.IsSubDomain(u.s.zone, name) {
			return refuse(dns.RcodeNotZone, "%s is outside zone %s", name, u.s.zone)
		}
	}
	for _, rr := range slices.Concat(req.Answer, req.Ns) {
		if err := u.own(ctx, v1alpha1.CanonicalName(rr.Header().Name)); err != nil {
			return err
		}
	}
	if err := u.prerequisites(ctx, req.Answer); err != nil {
		return err
	}
	changes, err := u.prescan(req.Ns)
	if err != nil {
		return err
	}
	for _, c := range changes {
		if err := c(ctx); err != nil {
			return refuse(dns.RcodeServerFailure, "%v", err)
		}
	}
	return nil
}

// own checks that name is a target of the namespace (the tenancy rule: a Delegation of the
// namespace is placed there) and remembers it; REFUSED otherwise. The key's namespace may
// write where it may create ChallengeRecords that are served, nowhere else.
func (u *update) own(ctx context.Context, name string) *refusal {
	if _, ok := u.targets[name]; ok {
		return nil
	}
	d, err := u.s.opts.DelegationAt(ctx, u.s.client, u.namespace, name)
	switch {
	case err != nil:
		return refuse(dns.RcodeServerFailure, "look up the Delegation at %s: %v", name, err)
	case d == nil:
		return refuse(dns.RcodeRefused, "%s is not a target of a Delegation in namespace %s, the key's: a key writes TXT records at its own namespace's targets only (see status.target of its Delegations)", name, u.namespace)
	}
	u.targets[name] = &target{name: name, domain: d.Spec.Domain}
	return nil
}

// values returns the namespace's TXT values at the target t, read from the API server (not a
// cache: a prerequisite is about now).
func (u *update) values(ctx context.Context, t *target) ([]string, error) {
	if t.read {
		return t.txt, nil
	}
	recs, err := u.s.records(ctx, u.namespace, t.name)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		t.txt = append(t.txt, r.Spec.Value)
	}
	t.read = true
	return t.txt, nil
}

// prerequisites evaluates the prerequisite section (RFC 2136 3.2). The data at a target is its
// TXT RRset: the namespace's ChallengeRecords there (nothing else is ever served at a target).
func (u *update) prerequisites(ctx context.Context, prereqs []dns.RR) *refusal {
	// Value-dependent prerequisites (class IN) are compared per RRset, after all are read.
	want := map[string][]string{} // name + " " + type -> values
	for _, rr := range prereqs {
		h := rr.Header()
		name := v1alpha1.CanonicalName(h.Name)
		if h.Ttl != 0 {
			return refuse(dns.RcodeFormatError, "prerequisite %s has TTL %d, want 0", name, h.Ttl)
		}
		t := u.targets[name]
		have, err := u.values(ctx, t)
		if err != nil {
			return refuse(dns.RcodeServerFailure, "%v", err)
		}
		empty := isEmpty(rr)
		switch h.Class {
		case dns.ClassANY:
			switch {
			case !empty:
				return refuse(dns.RcodeFormatError, "prerequisite %s of class ANY has data", name)
			case h.Rrtype == dns.TypeANY && len(have) == 0:
				return refuse(dns.RcodeNameError, "prerequisite: name %s is not in use", name)
			case h.Rrtype != dns.TypeANY && (h.Rrtype != dns.TypeTXT || len(have) == 0):
				return refuse(dns.RcodeNXRrset, "prerequisite: no %s RRset at %s", dns.TypeToString[h.Rrtype], name)
			}
		case dns.ClassNONE:
			switch {
			case !empty:
				return refuse(dns.RcodeFormatError, "prerequisite %s of class NONE has data", name)
			case h.Rrtype == dns.TypeANY && len(have) > 0:
				return refuse(dns.RcodeYXDomain, "prerequisite: name %s is in use", name)
			case h.Rrtype == dns.TypeTXT && len(have) > 0:
				return refuse(dns.RcodeYXRrset, "prerequisite: a TXT RRset exists at %s", name)
			}
		case dns.ClassINET:
			k := name + " " + dns.TypeToString[h.Rrtype]
			v := "\x00" // a value no TXT record has: any other type never matches
			if txt, ok := rr.(*dns.TXT); ok {
				v = strings.Join(txt.Txt, "")
			}
			want[k] = append(want[k], v)
		default:
			return refuse(dns.RcodeFormatError, "prerequisite %s has class %s", name, dns.ClassToString[h.Class])
		}
	}
	for k, values := range want {
		name, typ, _ := strings.Cut(k, " ")
		var have []string
		if typ == "TXT" {
			have, _ = u.values(ctx, u.targets[name]) // read above
		}
		if !sameSet(values, have) {
			return refuse(dns.RcodeNXRrset, "prerequisite: the %s RRset at %s is not the one given", typ, name)
		}
	}
	return nil
}

// prescan checks every update record (RFC 2136 3.4.1) and the namespace's permission for it
// (3.3: TXT records at its targets, nothing else), and returns the changes to make, in order.
func (u *update) prescan(updates []dns.RR) ([]func(context.Context) error, *refusal) {
	var changes []func(context.Context) error
	for _, rr := range updates {
		h := rr.Header()
		name := v1alpha1.CanonicalName(h.Name)
		t := u.targets[name]
		switch h.Class {
		case dns.ClassINET:
			if isMeta(h.Rrtype) {
				return nil, refuse(dns.RcodeFormatError, "update %s adds a record of type %s", name, dns.TypeToString[h.Rrtype])
			}
			txt, ok := rr.(*dns.TXT)
			if !ok {
				return nil, refuse(dns.RcodeRefused, "update %s adds a %s record: only TXT records are written at targets", name, dns.TypeToString[h.Rrtype])
			}
			value, err := oneValue(txt)
			if err != nil {
				return nil, refuse(dns.RcodeRefused, "update %s: %v", name, err)
			}
			ttl := h.Ttl
			changes = append(changes, func(ctx context.Context) error { return u.add(ctx, t, value, ttl) })
		case dns.ClassANY:
			if h.Ttl != 0 || !isEmpty(rr) || isMeta(h.Rrtype) && h.Rrtype != dns.TypeANY {
				return nil, refuse(dns.RcodeFormatError, "update %s of class ANY must have TTL 0, no data and a type", name)
			}
			if h.Rrtype != dns.TypeANY && h.Rrtype != dns.TypeTXT {
				return nil, refuse(dns.RcodeRefused, "update %s deletes the %s RRset: only TXT records are written at targets", name, dns.TypeToString[h.Rrtype])
			}
			changes = append(changes, func(ctx context.Context) error { return u.deleteAll(ctx, t) })
		case dns.ClassNONE:
			if h.Ttl != 0 || isMeta(h.Rrtype) {
				return nil, refuse(dns.RcodeFormatError, "update %s of class NONE must have TTL 0 and a data type", name)
			}
			txt, ok := rr.(*dns.TXT)
			if !ok {
				return nil, refuse(dns.RcodeRefused, "update %s deletes a %s record: only TXT records are written at targets", name, dns.TypeToString[h.Rrtype])
			}
			value, err := oneValue(txt)
			if err != nil {
				return nil, refuse(dns.RcodeRefused, "update %s: %v", name, err)
			}
			changes = append(changes, func(ctx context.Context) error { return u.delete(ctx, t, value) })
		default:
			return nil, refuse(dns.RcodeFormatError, "update %s has class %s", name, dns.ClassToString[h.Class])
		}
	}
	return changes, nil
}

// add creates the ChallengeRecord for value at t; one that exists is left as it is (RFC 2136
// 3.4.2.2: a duplicate is ignored).
func (u *update) add(ctx context.Context, t *target, value string, ttl uint32) error {
	rec := v1alpha1.NewChallengeRecord(u.namespace, t.name, value)
	rec.Labels = map[string]string{KeyLabel: labelValue(u.keySecret)}
	rec.Annotations = map[string]string{
		v1alpha1.CreatedAtAnnotation: time.Now().UTC().Format(time.RFC3339Nano),
		v1alpha1.DomainAnnotation:    t.domain,
	}
	if ttl > 0 {
		ttl := int32(min(max(ttl, v1alpha1.MinRecordTTL), v1alpha1.MaxRecordTTL))
		rec.Spec.TTL = &ttl
	}
	if err := u.s.client.Create(ctx, rec); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ChallengeRecord %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	updates.WithLabelValues(opAdd).Inc()
	return nil
}

// delete removes the namespace's ChallengeRecord for value at t, whoever wrote it (the name is
// derived from the two); none is no error (RFC 2136 3.4.2.4).
func (u *update) delete(ctx context.Context, t *target, value string) error {
	rec := &v1alpha1.ChallengeRecord{ObjectMeta: metav1.ObjectMeta{Namespace: u.namespace, Name: v1alpha1.ChallengeRecordName(t.name, value)}}
	if err := u.s.client.Delete(ctx, rec); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete ChallengeRecord %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	updates.WithLabelValues(opDelete).Inc()
	return nil
}

// deleteAll removes every ChallengeRecord of the namespace at t (a deleted TXT RRset, or all
// RRsets of the name).
func (u *update) deleteAll(ctx context.Context, t *target) error {
	recs, err := u.s.records(ctx, u.namespace, t.name)
	if err != nil {
		return err
	}
	for i := range recs {
		if err := u.s.client.Delete(ctx, &recs[i]); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete ChallengeRecord %s/%s: %w", recs[i].Namespace, recs[i].Name, err)
		}
		updates.WithLabelValues(opDelete).Inc()
	}
	return nil
}

// oneValue is the value of a TXT record as a ChallengeRecord holds it: one string of 1 to 255
// bytes of printable ASCII (an ACME value is 43), as on the wire.
func oneValue(txt *dns.TXT) (string, error) {
	if len(txt.Txt) != 1 {
		return "", fmt.Errorf("a TXT record with %d strings; a challenge value is one string", len(txt.Txt))
	}
	v := unescape(txt.Txt[0])
	if len(v) == 0 || len(v) > 255 {
		return "", fmt.Errorf("a TXT string of %d bytes, want 1 to 255", len(v))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", fmt.Errorf("a TXT string with the byte 0x%02x; only printable ASCII is served", v[i])
		}
	}
	return v, nil
}

// unescape turns a TXT string as miekg/dns holds it (presentation form: a byte outside
// printable ASCII as \DDD, a quote or backslash after a backslash) back into its bytes.
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); n <= 0xff {
				b = append(b, byte(n))
				i += 3
				continue
			}
		}
		b = append(b, s[i+1])
		i++
	}
	return string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isEmpty reports whether rr has no RDATA (RDLENGTH 0), as class ANY and NONE prerequisites
// and RRset deletions have. miekg/dns parses those as an RFC3597 record or a zero value.
func isEmpty(rr dns.RR) bool {
	switch r := rr.(type) {
	case *dns.ANY:
		return true
	case *dns.RFC3597:
		return r.Rdata == ""
	}
	return rr.Header().Rdlength == 0
}

// isMeta reports whether t is a query or meta type, which an update cannot add (RFC 2136
// 3.4.1.2): ANY, AXFR, IXFR, MAILA, MAILB, OPT, TSIG and the other meta types.
func isMeta(t uint16) bool {
	switch t {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeNone:
		return true
	}
	return false
}

// sameSet reports whether a and b hold the same values (an RRset is a set).
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
