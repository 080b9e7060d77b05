// Package acmedns serves acme-dns's HTTP API (/register, /update, /health) on top of acmezone's
// Kubernetes store, so that cert-manager's built-in acmeDNS solver, lego, certbot and acme.sh
// work unchanged. An account is a Delegation with a fresh target plus a Secret holding the
// bcrypt hash of its password; /update writes a ChallengeRecord at the account's target.
//
// Where a client could notice, the answers are acme-dns's (github.com/joohoi/acme-dns, api.go
// and auth.go): the same status codes, the same `{"error": "…"}` bodies, the same order of
// checks. Where it could not, this package does better: records are kept instead of only the
// last two, a trusted proxy header is read from the right, failures are rate limited.
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
	// TrustedHeader, when set, names the header a trusted reverse proxy puts the client's
	// address in (X-Forwarded-For); its last entry, the one the proxy added, is used.
	TrustedHeader string
	// MaxBodyBytes limits request bodies; larger ones are malformed.
	MaxBodyBytes int64
	// FailureRate and FailureBurst shape the token bucket of failed requests per client
	// address; an empty bucket is answered 429 before any password is checked.
	FailureRate  rate.Limit
	FailureBurst int
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
	var reg Registration
	for _, c := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return Registration{}, fmt.Errorf("--acme-dns-registration %q: %q is not a CIDR; write open, closed or CIDR[,CIDR...]", s, c)
		}
		reg.CIDRs = append(reg.CIDRs, p.Masked())
	}
	return reg, nil
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
	cfg      Config
	opts     Options
	mux      *http.ServeMux
	failures *failureLimiter
	now      func() time.Time
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
	s := &Server{
		cfg:      cfg,
		opts:     opts,
		mux:      http.NewServeMux(),
		failures: newFailureLimiter(opts.FailureRate, opts.FailureBurst),
		now:      time.Now,
		compare:  bcrypt.CompareHashAndPassword,
	}
	s.mux.HandleFunc("POST /register", s.register)
	s.mux.HandleFunc("POST /update", s.update)
	s.mux.HandleFunc("GET /health", s.health)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
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
// allowfrom.
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
	if !validTXT(req.Value) {
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

// health is GET /health: 200 with no body, as acme-dns, but only while the caches are synced
// and the API server answers.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if s.cfg.Synced != nil && !s.cfg.Synced(ctx) {
		http.Error(w, "caches not synced", http.StatusServiceUnavailable)
		return
	}
	var list v1alpha1.DelegationList
	if err := s.cfg.APIReader.List(ctx, &list, client.InNamespace(s.opts.Namespace), client.Limit(1)); err != nil {
		http.Error(w, "API server unreachable", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// fail answers a client error and takes a token from the client's failure bucket.
func (s *Server) fail(w http.ResponseWriter, key string, code int, msg, why string, kv ...any) {
	s.failures.fail(key)
	s.cfg.Log.V(1).Info(why, kv...)
	writeError(w, code, msg)
}

// clientAddr returns the client's address (invalid when unknown) and the key its failures
// are counted under. Behind TrustedHeader the last entry is the one the trusted proxy added;
// acme-dns accepts any entry, which lets a client name an allowed address itself.
func (s *Server) clientAddr(r *http.Request) (netip.Addr, string) {
	if s.opts.TrustedHeader != "" {
		if vals := r.Header.Values(s.opts.TrustedHeader); len(vals) > 0 {
			parts := strings.Split(vals[len(vals)-1], ",")
			if a, ok := parseAddr(parts[len(parts)-1]); ok {
				return a, failureKey(a)
			}
		}
		// No usable header: the peer is the proxy, whose address must not pass for the client's.
		return netip.Addr{}, "header-missing:" + r.RemoteAddr
	}
	if a, ok := parseAddr(r.RemoteAddr); ok {
		return a, failureKey(a)
	}
	return netip.Addr{}, r.RemoteAddr
}

// failureKey is what failures of a are counted under: the address, or its /64 for IPv6,
// which one client usually has whole.
func failureKey(a netip.Addr) string {
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

// validTXT is acme-dns's validTXT: exactly 43 characters of the base64url alphabet, the
// length of an ACME DNS-01 key authorization digest.
func validTXT(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBase64URL(s[i]) {
			return false
		}
	}
	return true
}

func isBase64URL(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
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
