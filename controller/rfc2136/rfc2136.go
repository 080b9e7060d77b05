// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package rfc2136 accepts RFC 2136 dynamic updates signed with TSIG (RFC 8945) into acmezone's
// store, so that cert-manager's rfc2136 solver, lego's rfc2136 provider (Traefik, Caddy),
// certbot's dns-rfc2136, acme.sh's dns_nsupdate and nsupdate/knsupdate publish challenges
// unchanged.
//
// The listener runs in acmezone-controller, which already writes records for the webhook and
// the acme-dns API; the CoreDNS pods, which face the Internet, stay read-only. An UPDATE adds
// or deletes TXT values at targets: each added value becomes a ChallengeRecord in the namespace
// of the key that signed the UPDATE, and acmezone's CoreDNS serves it there as it serves every
// other one. A key is a Secret of type KeySecretType in the namespace it writes for, and it
// writes at that namespace's targets only, by the rule every other writer follows
// (controller.Options.DelegationAt). Anything else is answered with RFC 2136's rcode and
// changes nothing: docs/SECURITY.md, rule 13.
package rfc2136

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/challenge"
)

// KeyLabel marks the ChallengeRecords written through RFC 2136 with the name of the key's
// Secret (hashed when longer than a label value may be). The record reaper (package
// challenge) deletes them when nothing removed them and no Challenge needs them.
const KeyLabel = challenge.RFC2136KeyLabel

// Config is what a Server needs.
type Config struct {
	// Options are the installation's: the zone (the only one updates are accepted for), its
	// name servers (the SOA this listener answers) and the target key (the tenancy rule).
	Options *controller.Options
	// Client reads Delegations (a cache with the indexes of Options.IndexDelegations) and
	// writes ChallengeRecords.
	Client client.Client
	// APIReader reads ChallengeRecords as they are now, for prerequisites and RRset deletions.
	APIReader client.Reader
	// Secrets holds the Secrets of type KeySecretType (NewKeyCache); nothing else is read
	// from it.
	Secrets client.Reader
	// Addr is where to listen, on UDP and TCP (":53", "127.0.0.1:5353").
	Addr string
	Log  logr.Logger
}

// Server is the UPDATE listener: a manager.Runnable on every replica (updates are written
// through the API server, so any replica may take them).
type Server struct {
	opts      *controller.Options
	zone      string
	client    client.Client
	apiReader client.Reader
	keys      *keyring
	addr      string
	log       logr.Logger

	ready chan struct{}
	bound []net.Addr // set before ready closes
}

// NewKeyCache returns a cache of the Secrets of type KeySecretType in every namespace, and of
// nothing else, for Config.Secrets. Add it to the manager.
func NewKeyCache(mgr manager.Manager) (cache.Cache, error) {
	return cache.New(mgr.GetConfig(), KeyCacheOptions(cache.Options{
		HTTPClient: mgr.GetHTTPClient(), Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
	}))
}

// KeyCacheOptions are o for a cache that holds the Secrets of type KeySecretType only: the API
// server sends no other Secret (a field selector), and the keyring checks the type again.
func KeyCacheOptions(o cache.Options) cache.Options {
	o.ByObject = map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Field: fields.OneTermEqualSelector("type", string(KeySecretType))},
	}
	return o
}

// New returns the listener of cfg; Start serves.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Options == nil || cfg.Options.Zone == "" || !cfg.Options.TargetKey.Valid():
		return nil, errors.New("the RFC 2136 listener needs the zone and the target key")
	case cfg.Client == nil || cfg.Secrets == nil:
		return nil, errors.New("the RFC 2136 listener needs a client and the TSIG key cache")
	case cfg.Addr == "":
		return nil, errors.New("the RFC 2136 listener needs an address (--rfc2136-listen)")
	}
	if cfg.APIReader == nil {
		cfg.APIReader = cfg.Client
	}
	return &Server{
		opts: cfg.Options, zone: v1alpha1.CanonicalName(cfg.Options.Zone),
		client: cfg.Client, apiReader: cfg.APIReader,
		keys: &keyring{secrets: cfg.Secrets, log: cfg.Log},
		addr: cfg.Addr, log: cfg.Log, ready: make(chan struct{}),
	}, nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }

// Addrs returns the UDP and TCP addresses the listener is bound to, once it is (for ":0").
func (s *Server) Addrs(ctx context.Context) ([]net.Addr, error) {
	select {
	case <-s.ready:
		return s.bound, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Start serves UDP and TCP on Addr until ctx is done.
func (s *Server) Start(ctx context.Context) error {
	pc, err := net.ListenPacket("udp", s.addr)
	if err != nil {
		return fmt.Errorf("RFC 2136 listener: %w", err)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("RFC 2136 listener: %w", err)
	}
	s.bound = []net.Addr{pc.LocalAddr(), ln.Addr()}
	servers := []*dns.Server{
		{PacketConn: pc, Handler: s, TsigProvider: s.keys, MsgAcceptFunc: accept},
		{Listener: ln, Handler: s, TsigProvider: s.keys, MsgAcceptFunc: accept, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second},
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errc <- srv.ActivateAndServe() }()
	}
	close(s.ready)
	s.log.Info("accepting RFC 2136 updates", "zone", s.zone, "udp", pc.LocalAddr().String(), "tcp", ln.Addr().String())
	select {
	case err = <-errc:
		err = fmt.Errorf("RFC 2136 listener: %w", err)
	case <-ctx.Done():
	}
	for _, srv := range servers {
		_ = srv.Shutdown()
	}
	return err
}

// accept lets queries and UPDATEs through to the handler (miekg/dns's default refuses UPDATE);
// responses are dropped, other opcodes are NOTIMP.
func accept(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 { // QR: a response
		return dns.MsgIgnore
	}
	switch int(dh.Bits>>11) & 0xF {
	case dns.OpcodeUpdate, dns.OpcodeQuery:
		return dns.MsgAccept
	}
	return dns.MsgRejectNotImplemented
}

// requestTimeout bounds the API calls of one UPDATE.
const requestTimeout = 20 * time.Second

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = false
	if req.Opcode == dns.OpcodeQuery {
		s.query(resp, req)
		_ = w.WriteMsg(resp)
		return
	}
	tsig := req.IsTsig()
	if tsig == nil {
		s.answer(w, resp, nil, refuse(dns.RcodeRefused, "the UPDATE is not signed: sign it with a TSIG key of type %s (<secret>.<namespace>.)", KeySecretType))
		return
	}
	resp.SetTsig(tsig.Hdr.Name, tsig.Algorithm, 300, time.Now().Unix())
	if err := w.TsigStatus(); err != nil {
		s.tsigError(w, resp, tsig, err)
		return
	}
	k, err := s.keys.lookup(tsig.Hdr.Name)
	if err != nil { // the Secret went between verification and now
		s.tsigError(w, resp, tsig, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	u := &update{s: s, namespace: k.namespace, keySecret: k.secret, targets: map[string]*target{}}
	s.answer(w, resp, k, u.apply(ctx, req))
}

// answer writes resp with the rcode of r (NOERROR when nil), and counts and logs it.
func (s *Server) answer(w dns.ResponseWriter, resp *dns.Msg, k *key, r *refusal) {
	rcode, kv := dns.RcodeSuccess, []any{"client", w.RemoteAddr().String()}
	if k != nil {
		kv = append(kv, "namespace", k.namespace, "key", k.name)
	}
	if r != nil {
		rcode = r.rcode
		s.log.Info("UPDATE refused: "+dns.RcodeToString[rcode], append(kv, "reason", r.why)...)
	} else {
		s.log.V(1).Info("UPDATE applied", kv...)
	}
	resp.Rcode = rcode
	answered.WithLabelValues(dns.RcodeToString[rcode]).Inc()
	if err := w.WriteMsg(resp); err != nil {
		s.log.Error(err, "write the UPDATE's answer")
	}
}

// tsigError answers a request whose TSIG did not verify: NOTAUTH with the TSIG error BADKEY,
// BADSIG or BADTIME (RFC 8945 5.2). miekg/dns leaves BADKEY and BADSIG answers unsigned, and
// signs a BADTIME one, whose other data is this server's time.
func (s *Server) tsigError(w dns.ResponseWriter, resp *dns.Msg, req *dns.TSIG, err error) {
	t := resp.IsTsig()
	t.TimeSigned = req.TimeSigned
	switch {
	case errors.Is(err, dns.ErrTime):
		t.Error = dns.RcodeBadTime
		t.OtherLen = 6
		t.OtherData = fmt.Sprintf("%012x", time.Now().Unix())
		s.log.Info("UPDATE refused: BADTIME, the request's time is off by more than its fudge", "key", req.Hdr.Name, "client", w.RemoteAddr().String())
	case errors.Is(err, errBadKey):
		t.Error = dns.RcodeBadKey
	default:
		t.Error = dns.RcodeBadSig
	}
	resp.Rcode = dns.RcodeNotAuth
	answered.WithLabelValues(dns.RcodeToString[dns.RcodeNotAuth] + "/" + dns.RcodeToString[int(t.Error)]).Inc()
	if err := w.WriteMsg(resp); err != nil {
		s.log.Error(err, "write the UPDATE's answer")
	}
}

// query answers the SOA queries clients send to find the zone (lego's rfc2136 provider asks
// the server it updates): the zone's SOA at the apex, NODATA with it below. Anything else is
// REFUSED: the zone's name servers answer queries, this is where updates go.
func (s *Server) query(resp, req *dns.Msg) {
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		return
	}
	q := req.Question[0]
	name := v1alpha1.CanonicalName(q.Name)
	if q.Qclass != dns.ClassINET || !dns.IsSubDomain(s.zone, name) {
		resp.Rcode = dns.RcodeRefused
		return
	}
	if q.Qtype != dns.TypeSOA {
		resp.Rcode = dns.RcodeRefused
		return
	}
	soa := s.soa()
	if name == s.zone {
		resp.Answer = []dns.RR{soa}
	} else {
		resp.Ns = []dns.RR{soa}
	}
	resp.Authoritative = true
}

// soa is the zone's SOA as this listener gives it: the first name server as MNAME (where
// RFC 2136 clients send updates when they read it, so it names the zone's primary: point them
// at this listener explicitly), serial 1 (the serial is the name servers', not this one's).
func (s *Server) soa() *dns.SOA {
	mname := s.zone
	if len(s.opts.NameServers) > 0 {
		mname = s.opts.NameServers[0].Name
	}
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns:  mname, Mbox: "hostmaster." + s.zone, Serial: 1,
		Refresh: 3600, Retry: 600, Expire: 604800, Minttl: 60,
	}
}

// records lists the ChallengeRecords of namespace at fqdn as the API server holds them now.
func (s *Server) records(ctx context.Context, namespace, fqdn string) ([]v1alpha1.ChallengeRecord, error) {
	var list v1alpha1.ChallengeRecordList
	if err := s.apiReader.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list ChallengeRecords in namespace %s: %w", namespace, err)
	}
	var out []v1alpha1.ChallengeRecord
	for _, r := range list.Items {
		if v1alpha1.CanonicalName(r.Spec.FQDN) == fqdn && r.DeletionTimestamp.IsZero() {
			out = append(out, r)
		}
	}
	return out, nil
}
