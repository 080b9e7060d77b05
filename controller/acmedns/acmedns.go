// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package acmedns serves acme-dns's HTTP API (/register, /update, /health) on top of acmezone's
// Kubernetes store, so that cert-manager's built-in acmeDNS solver, lego, certbot and acme.sh
// work unchanged. An account is a Delegation with a fresh target plus a Secret holding the
// bcrypt hash of its password; /update writes a ChallengeRecord at the account's target.
//
// Where a client could notice, the answers are acme-dns's (github.com/joohoi/acme-dns, api.go
// and auth.go): the same status codes, the same `{"error": "…"}` bodies, the same order of
// checks. Where it could not, this package does better: records are kept instead of only the
// last two, a proxy header is believed only from configured proxies and read from the right,
// failures and registrations are rate limited per client address.
package acmedns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// Defaults of Options.
const (
	DefaultNamespace    = "acmezone"
	DefaultMaxBodyBytes = 64 << 10
	// DefaultRecordMaxAge is the default of --acme-dns-record-max-age: long enough for a
	// slow CA to validate.
	DefaultRecordMaxAge = time.Hour
	DefaultFailureBurst = 10
	// DefaultFailureRate refills one failure every 6 s: ten wrong passwords in a row, then
	// ten a minute.
	DefaultFailureRate = rate.Limit(1.0 / 6)
	// DefaultRegisterBurst and DefaultRegisterRate: five accounts in a row per client
	// address, then one a minute.
	DefaultRegisterBurst = 5
	DefaultRegisterRate  = rate.Limit(1.0 / 60)
	// DefaultHealthInterval is how long /health trusts its last look at the API server.
	DefaultHealthInterval = 10 * time.Second
)

// requestTimeout bounds the API calls of one request.
const requestTimeout = 30 * time.Second

// Options say how the API behaves. The controller's --acme-dns-* flags fill them.
type Options struct {
	// Zone is the challenge zone (acme.example.com.); accounts get "<uuid>.<zone>".
	Zone string
	// Namespace holds the accounts' Delegations, Secrets and ChallengeRecords.
	Namespace string
	// Registration says who may call /register.
	Registration Registration
	// TargetKey derives and proves targets (the tenancy rule, v1alpha1.TargetKey.Target);
	// required. /register proves its accounts' targets with it, and an account writes only
	// while its Delegation's target is, by this key, its namespace's own.
	TargetKey v1alpha1.TargetKey
	// TrustedHeader, when set, names the header a reverse proxy puts the client's address in
	// (X-Forwarded-For). It is believed only from a peer in TrustedProxies, and read from the
	// right: the entry the proxy added, skipping those added by other trusted proxies.
	TrustedHeader string
	// TrustedProxies are the addresses of the reverse proxies TrustedHeader is believed from;
	// required with it. Anyone else's header is ignored.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes limits request bodies; larger ones are malformed.
	MaxBodyBytes int64
	// FailureRate and FailureBurst shape the token bucket of failed requests per client
	// address; an empty bucket is answered 429 before any password is checked.
	FailureRate  rate.Limit
	FailureBurst int
	// RegisterRate and RegisterBurst shape the token bucket of /register calls per client
	// address, successful or not; an empty bucket is answered 429.
	RegisterRate  rate.Limit
	RegisterBurst int
	// HealthInterval is how long /health reuses its last look at the API server, so that
	// probes, however many, cost at most one API call per interval.
	HealthInterval time.Duration
}

// Registration is who may register accounts: anyone (Open), nobody (closed: the zero value),
// or clients whose address is in one of CIDRs.
type Registration struct {
	Open  bool
	CIDRs []netip.Prefix
}

// ParseRegistration parses the --acme-dns-registration flag: "open", "closed" or a
// comma-separated list of CIDRs.
func ParseRegistration(s string) (Registration, error) {
	switch strings.TrimSpace(s) {
	case "open":
		return Registration{Open: true}, nil
	case "closed", "":
		return Registration{}, nil
	}
	cidrs, err := ParseCIDRs(s)
	if err != nil {
		return Registration{}, fmt.Errorf("--acme-dns-registration %q: %w; write open, closed or CIDR[,CIDR...]", s, err)
	}
	return Registration{CIDRs: cidrs}, nil
}

// ParseCIDRs parses a comma-separated list of CIDRs (10.0.0.0/8,fd00::/8), as the
// --acme-dns-registration and --acme-dns-trusted-proxies flags hold.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", strings.TrimSpace(c))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Config is what the Server talks to.
type Config struct {
	// Client writes and reads Delegations and ChallengeRecords; it may be the manager's cached
	// client.
	Client client.Client
	// APIReader reads what must be current (Secrets, which the cache does not hold, and a
	// Delegation just registered) and answers /health; the manager's GetAPIReader. Client when
	// nil.
	APIReader client.Reader
	// Synced reports whether the caches behind Client are synced; nil means always.
	Synced func(context.Context) bool
	// Log is where requests are logged; never with passwords or keys.
	Log logr.Logger
}

// Server is the acme-dns API as an http.Handler.
type Server struct {
	cfg           Config
	opts          Options
	mux           *http.ServeMux
	failures      *limiter
	registrations *limiter
	apiHealth     apiHealth
	now           func() time.Time
	// compare is bcrypt.CompareHashAndPassword; tests count its calls.
	compare func(hash, password []byte) error
}

// New returns the Server; it fills in the defaults of opts.
func New(cfg Config, opts Options) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("acmedns: no API client")
	}
	if cfg.APIReader == nil {
		cfg.APIReader = cfg.Client
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logf.Log.WithName("acme-dns")
	}
	if opts.Zone == "" {
		return nil, errors.New("acmedns: no zone")
	}
	opts.Zone = v1alpha1.CanonicalName(opts.Zone)
	if !opts.TargetKey.Valid() {
		return nil, fmt.Errorf("acmedns: %w", v1alpha1.ErrNoTargetKey)
	}
	if (opts.TrustedHeader == "") != (len(opts.TrustedProxies) == 0) {
		return nil, errors.New("acmedns: a trusted header and trusted proxies go together: the header is believed only from the proxies")
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.FailureRate <= 0 {
		opts.FailureRate = DefaultFailureRate
	}
	if opts.FailureBurst <= 0 {
		opts.FailureBurst = DefaultFailureBurst
	}
	if opts.RegisterRate <= 0 {
		opts.RegisterRate = DefaultRegisterRate
	}
	if opts.RegisterBurst <= 0 {
		opts.RegisterBurst = DefaultRegisterBurst
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = DefaultHealthInterval
	}
	s := &Server{
		cfg:           cfg,
		opts:          opts,
		mux:           http.NewServeMux(),
		failures:      newLimiter(opts.FailureRate, opts.FailureBurst),
		registrations: newLimiter(opts.RegisterRate, opts.RegisterBurst),
		now:           time.Now,
		compare:       bcrypt.CompareHashAndPassword,
	}
	s.mux.HandleFunc("POST /register", s.register)
	s.mux.HandleFunc("POST /update", s.update)
	s.mux.HandleFunc("GET /health", s.health)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	instrumented(s.mux, w, r)
}

// registerRequest is /register's optional body.
type registerRequest struct {
	AllowFrom []string `json:"allowfrom"`
}

// registerResponse is acme-dns's RegResponse, fields in its order.
type registerResponse struct {
	Username   string   `json:"username"`
	Password   string   `json:"password"`
	Fulldomain string   `json:"fulldomain"`
	Subdomain  string   `json:"subdomain"`
	Allowfrom  []string `json:"allowfrom"`
}

// updateRequest is acme-dns's ACMETxtPost.
type updateRequest struct {
	Subdomain string `json:"subdomain"`
	Value     string `json:"txt"`
}

// register is POST /register. acme-dns answers a body that is not JSON with 400
// malformed_json_payload, a bad CIDR with 400 invalid_allowfrom_cidr, and 201 with the new
// account. With registration disabled acme-dns has no /register route (404); a client outside
// the registration CIDRs gets 401 forbidden, as acme-dns answers an update from outside
// allowfrom. Every other call takes a token from the client's registration bucket, and one
// with an empty bucket gets 429 too_many_requests: each account is a Delegation and a Secret
// in the API server, so a client may not make them as fast as it can ask.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	addr, key := s.clientAddr(r)
	if s.failures.blocked(key) {
		writeError(w, http.StatusTooManyRequests, "too_many_requests")
		return
	}
	if !s.opts.Registration.Open && len(s.opts.Registration.CIDRs) == 0 {
		http.NotFound(w, r)
		return
	}
	if !s.opts.Registration.Open && !contains(s.opts.Registration.CIDRs, addr) {
		s.fail(w, key, http.StatusUnauthorized, "forbidden", "registration from outside the allowed networks", "address", key)
		return
	}
	if !s.registrations.take(key) {
		s.cfg.Log.V(1).Info("register: too many registrations", "address", key)
		writeError(w, http.StatusTooManyRequests, "too_many_requests")
		return
	}
	var req registerRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err == nil && len(body) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		s.fail(w, key, http.StatusBadRequest, "malformed_json_payload", "register: body is not JSON or too large", "address", key)
		return
	}
	allow, err := parseAllowFrom(req.AllowFrom)
	if err != nil {
		s.fail(w, key, http.StatusBadRequest, "invalid_allowfrom_cidr", "register: "+err.Error(), "address", key)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	acct, password, err := s.createAccount(ctx, allow)
	if err != nil {
		// acme-dns answers its database error's text with 500; ours would leak API details.
		s.cfg.Log.Error(err, "register")
		writeError(w, http.StatusInternalServerError, "db_error")
		return
	}
	s.cfg.Log.Info("registered", "username", acct.Username, "subdomain", acct.Subdomain, "address", key)
	resp, _ := json.Marshal(registerResponse{
		Username:   acct.Username,
		Password:   password,
		Fulldomain: strings.TrimSuffix(acct.Target, "."),
		Subdomain:  acct.Subdomain,
		Allowfrom:  acct.AllowFrom,
	})
	writeJSON(w, http.StatusCreated, resp)
}

// update is POST /update, checked in acme-dns's order: credentials, then the client address
// against allowfrom, then the body's subdomain against the account's (a body that is not JSON
// fails there), all answered 401 forbidden; then the txt (400 bad_txt).
func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	addr, key := s.clientAddr(r)
	if s.failures.blocked(key) {
		writeError(w, http.StatusTooManyRequests, "too_many_requests")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	acct, err := s.authenticate(ctx, r.Header.Get("X-Api-User"), r.Header.Get("X-Api-Key"))
	if err != nil {
		if errors.Is(err, errForbidden) {
			s.fail(w, key, http.StatusUnauthorized, "forbidden", "update: bad credentials", "address", key)
			return
		}
		s.cfg.Log.Error(err, "update: read account")
		writeError(w, http.StatusInternalServerError, "db_error")
		return
	}
	if len(acct.allow) > 0 && !contains(acct.allow, addr) {
		s.fail(w, key, http.StatusUnauthorized, "forbidden", "update: address outside allowfrom", "username", acct.Username, "address", key)
		return
	}
	var req updateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)).Decode(&req); err != nil || req.Subdomain != acct.Subdomain {
		s.fail(w, key, http.StatusUnauthorized, "forbidden", "update: subdomain mismatch or body not JSON", "username", acct.Username, "address", key)
		return
	}
	if !v1alpha1.IsKeyAuthorizationDigest(req.Value) { // acme-dns's validTXT, and the solver's rule
		s.fail(w, key, http.StatusBadRequest, "bad_txt", "update: txt is not 43 base64url characters", "username", acct.Username, "address", key)
		return
	}
	if err := s.writeRecord(ctx, acct, req.Value); err != nil {
		s.cfg.Log.Error(err, "update", "username", acct.Username)
		writeError(w, http.StatusInternalServerError, "db_error")
		return
	}
	s.cfg.Log.Info("updated", "username", acct.Username, "target", acct.Target)
	// acme-dns writes this body by hand, with the space; the value is base64url, so no escaping.
	writeJSON(w, http.StatusOK, []byte(`{"txt": "`+req.Value+`"}`))
}

// healthTimeout bounds /health's wait for the caches and its API call.
const healthTimeout = 5 * time.Second

// health is GET /health: 200 with no body, as acme-dns, but only while the caches are synced
// and the API server answered the last look (apiHealth), else 503.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if s.cfg.Synced != nil && !s.cfg.Synced(ctx) {
		http.Error(w, "caches not synced", http.StatusServiceUnavailable)
		return
	}
	if err := s.apiHealth.check(r.Context(), s); err != nil {
		http.Error(w, "API server unreachable", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// apiHealth is the last look at the API server, so that /health, which anyone who reaches
// the API may call as often as it likes, costs the API server at most one call per
// HealthInterval. Callers that arrive while a look is under way wait for it and share it.
type apiHealth struct {
	mu  sync.Mutex
	at  time.Time // when the last look ended; zero before the first
	err error
}

// check returns the result of the last look, looking again when it is HealthInterval old.
// The look does not end with the request that starts it (others wait for it too), but it is
// bounded by healthTimeout.
func (h *apiHealth) check(ctx context.Context, s *Server) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.at.IsZero() && s.now().Sub(h.at) < s.opts.HealthInterval {
		return h.err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healthTimeout)
	defer cancel()
	var list v1alpha1.DelegationList
	h.err = s.cfg.APIReader.List(ctx, &list, client.InNamespace(s.opts.Namespace), client.Limit(1))
	h.at = s.now()
	return h.err
}

// fail answers a client error and takes a token from the client's failure bucket.
func (s *Server) fail(w http.ResponseWriter, key string, code int, msg, why string, kv ...any) {
	s.failures.take(key)
	s.cfg.Log.V(1).Info(why, kv...)
	writeError(w, code, msg)
}

// unknownClient is the one rate-limit key of every peer whose address cannot be parsed (not
// a TCP peer): unknown clients cannot multiply their buckets.
const unknownClient = "unknown"

// clientAddr returns the client's address (invalid when unknown: it passes no allowfrom and
// no registration CIDR) and the key its requests are rate limited under, which is never
// anything the client chooses, not even its port.
//
// The client is the peer, unless the peer is one of TrustedProxies: then it is read from
// TrustedHeader, from the right (the entry the proxy added last), skipping the entries of
// other trusted proxies in a chain. acme-dns believes any entry from anyone, which lets a
// client name an allowed address itself. A trusted proxy's request without a usable header
// has no known client; it is rate limited under the proxy's address.
func (s *Server) clientAddr(r *http.Request) (netip.Addr, string) {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, unknownClient
	}
	if s.opts.TrustedHeader == "" || !contains(s.opts.TrustedProxies, peer) {
		return peer, limitKey(peer)
	}
	entries := strings.Split(strings.Join(r.Header.Values(s.opts.TrustedHeader), ","), ",")
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parseAddr(entries[i])
		if !ok {
			break // a proxy wrote something else: no client is known
		}
		if i == 0 || !contains(s.opts.TrustedProxies, a) {
			return a, limitKey(a)
		}
	}
	return netip.Addr{}, limitKey(peer)
}

// limitKey is what the requests of a are counted under: the address, or its /64 for IPv6,
// which one client usually has whole.
func limitKey(a netip.Addr) string {
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// parseAddr parses "ADDR" or "ADDR:PORT" ("[v6]:port" too), unmapping IPv4-in-IPv6.
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// writeError writes acme-dns's error body, byte for byte: `{"error": "msg"}`.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, []byte(`{"error": "`+msg+`"}`))
}

func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
