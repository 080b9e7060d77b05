// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmedns

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"github.com/nrdcg/goacmedns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

const zone = "acme.example.com."

// Two valid txt values: 43 base64url characters, as ACME DNS-01 digests are.
const (
	txt1 = "LPsIwTo7o8BoG0-vjCyGQGBWSVIPxI-i_X336eUOQZo"
	txt2 = "R-ZeUaYpQdATPDKHn9c7ie_dmoiebTGE3UN4vXFI0hg"
	txt3 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
)

// TestAPI runs every case against one real kube-apiserver; each subtest has its own
// namespace and Server.
func TestAPI(t *testing.T) {
	logf.SetLogger(logr.Discard())
	env := kubetest.Start(t, []string{filepath.Join("..", "..", "deploy", "crds")})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The manager's set-up: a cached client for Delegations and records, uncached reads for
	// Secrets.
	c, err := cache.New(env.Config, cache.Options{Scheme: kubetest.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	cached, err := client.NewWithWatch(env.Config, client.Options{Scheme: kubetest.Scheme(), Cache: &client.CacheOptions{Reader: c}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{k8s: env.Client, cached: cached, cache: c, cfg: env.Config, key: newKey(t)}

	t.Run("RegisterUpdate", f.testRegisterUpdate)
	t.Run("UpdateRefusals", f.testUpdateRefusals)
	t.Run("RegisterRefusals", f.testRegisterRefusals)
	t.Run("UnknownUserConstantTime", f.testUnknownUser)
	t.Run("RateLimit", f.testRateLimit)
	t.Run("RateLimitIgnoresPorts", f.testRateLimitPorts)
	t.Run("TrustedHeader", f.testTrustedHeader)
	t.Run("ForgedHeader", f.testForgedHeader)
	t.Run("RegisterFlood", f.testRegisterFlood)
	t.Run("KeptOnUpdate", f.testKeptOnUpdate)
	t.Run("Health", f.testHealth)
	t.Run("HealthCached", f.testHealthCached)
	t.Run("Goacmedns", f.testGoacmedns)
	t.Run("ProofRemoved", f.testProofRemoved)
	t.Run("NativeAccount", f.testNativeAccount)
	t.Run("NativeCleanup", f.testNativeCleanup)
	t.Run("NativeRefusals", f.testNativeRefusals)
	t.Run("NativeProof", f.testNativeProof)
	t.Run("NativeMigration", f.testNativeMigration)
	t.Run("NativeNoServerURL", f.testNativeNoServerURL)
}

type fixture struct {
	k8s    client.Client // uncached: what the API server holds
	cached client.WithWatch
	cache  cache.Cache
	cfg    *rest.Config
	key    v1alpha1.TargetKey
	n      atomic.Int32
}

// newKey returns a fresh target key: 32 random bytes in base64, as the controller writes its
// key Secret (raw bytes could end in white space, which NewTargetKey trims).
func newKey(t testing.TB) v1alpha1.TargetKey {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	k, err := v1alpha1.NewTargetKey([]byte(base64.StdEncoding.EncodeToString(b)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// server returns a Server for a fresh namespace, with the fixture's target key, open
// registration and buckets large enough not to get in the way unless opts say otherwise.
func (f *fixture) server(t *testing.T, opts Options) *Server {
	t.Helper()
	ns := fmt.Sprintf("acme-dns-%d", f.n.Add(1))
	if err := f.k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	opts.Zone, opts.Namespace = zone, ns
	if opts.Registration.CIDRs == nil {
		opts.Registration.Open = true
	}
	if opts.FailureBurst == 0 {
		opts.FailureBurst = 1000
	}
	if opts.RegisterBurst == 0 {
		opts.RegisterBurst = 1000
	}
	opts.TargetKey = f.key
	s, err := New(Config{Client: f.cached, APIReader: f.k8s, Synced: f.cache.WaitForCacheSync}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call sends one request from remote (host:port) to h.
func call(h http.Handler, method, path, remote string, header map[string]string, body string) (int, string) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = remote
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// callHeader is call with a header of several values.
func callHeader(h http.Handler, method, path, remote string, header http.Header, body string) (int, string) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = remote
	r.Header = header
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func creds(a registerResponse) map[string]string {
	return map[string]string{"X-Api-User": a.Username, "X-Api-Key": a.Password}
}

func updateBody(subdomain, txt string) string {
	return fmt.Sprintf(`{"subdomain": %q, "txt": %q}`, subdomain, txt)
}

func (f *fixture) register(t *testing.T, s *Server, remote, body string) registerResponse {
	t.Helper()
	code, out := call(s, http.MethodPost, "/register", remote, nil, body)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, out)
	}
	var a registerResponse
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("register: %v in %s", err, out)
	}
	return a
}

// records returns the values of the ChallengeRecords in s's namespace, by FQDN.
func (f *fixture) records(t *testing.T, s *Server) map[string][]string {
	t.Helper()
	var list v1alpha1.ChallengeRecordList
	if err := f.k8s.List(context.Background(), &list, client.InNamespace(s.opts.Namespace)); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, r := range list.Items {
		out[r.Spec.FQDN] = append(out[r.Spec.FQDN], r.Spec.Value)
	}
	return out
}

func (f *fixture) count(t *testing.T, s *Server, list client.ObjectList) int {
	t.Helper()
	if err := f.k8s.List(context.Background(), list, client.InNamespace(s.opts.Namespace)); err != nil {
		t.Fatal(err)
	}
	return meta.LenList(list)
}

var passwordRE = regexp.MustCompile(`^[A-Za-z0-9_-]{40}$`)

func (f *fixture) testRegisterUpdate(t *testing.T) {
	ctx := context.Background()
	s := f.server(t, Options{})
	code, out := call(s, http.MethodPost, "/register", "192.0.2.1:4000", nil, `{"allowfrom": ["192.0.2.0/24", "[2001:db8::]/32"]}`)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, out)
	}
	// acme-dns's RegResponse, fields in its order.
	if !regexp.MustCompile(`^\{"username":"[^"]+","password":"[^"]+","fulldomain":"[^"]+","subdomain":"[^"]+","allowfrom":\["192.0.2.0/24","2001:db8::/32"\]\}$`).MatchString(out) {
		t.Errorf("register body %s", out)
	}
	var a registerResponse
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(a.Username); err != nil {
		t.Errorf("username %q: %v", a.Username, err)
	}
	if _, err := uuid.Parse(a.Subdomain); err != nil || a.Subdomain == a.Username {
		t.Errorf("subdomain %q: %v", a.Subdomain, err)
	}
	if !passwordRE.MatchString(a.Password) {
		t.Errorf("password %q is not 40 base64url characters", a.Password)
	}
	target := a.Subdomain + "." + zone
	if a.Fulldomain != strings.TrimSuffix(target, ".") {
		t.Errorf("fulldomain %q, want %q", a.Fulldomain, strings.TrimSuffix(target, "."))
	}

	var d v1alpha1.Delegation
	if err := f.k8s.Get(ctx, types.NamespacedName{Namespace: s.opts.Namespace, Name: AccountName(a.Username)}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Status.Target != "" || d.Spec.Target != target || d.Spec.Domain != a.Fulldomain {
		t.Errorf("Delegation spec %+v status.target %q; want the target in spec only (the Delegation reconciler writes the status)", d.Spec, d.Status.Target)
	}
	// The proof makes the target the namespace's own by the rule the CoreDNS plugin serves by.
	if got, err := f.key.Target(v1alpha1.ClaimOf(&d), zone); err != nil || got != target {
		t.Errorf("the account's Delegation has target %q (%v) by the tenancy rule, want %s", got, err, target)
	}
	var sec corev1.Secret
	if err := f.k8s.Get(ctx, types.NamespacedName{Namespace: s.opts.Namespace, Name: AccountName(a.Username)}, &sec); err != nil {
		t.Fatal(err)
	}
	if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != d.UID {
		t.Errorf("Secret owners %+v, want the Delegation", sec.OwnerReferences)
	}
	for k, v := range sec.Data {
		if strings.Contains(string(v), a.Password) {
			t.Errorf("Secret key %s holds the password", k)
		}
	}
	if err := bcrypt.CompareHashAndPassword(sec.Data[keyPasswordHash], []byte(a.Password)); err != nil {
		t.Errorf("stored hash: %v", err)
	}

	// Three values at once, and one twice: all kept, none twice (acme-dns keeps two).
	for _, v := range []string{txt1, txt2, txt2, txt3} {
		code, out := call(s, http.MethodPost, "/update", "192.0.2.7:5000", creds(a), updateBody(a.Subdomain, v))
		if want := `{"txt": "` + v + `"}`; code != http.StatusOK || out != want {
			t.Errorf("update %s: %d %s, want 200 %s", v, code, out, want)
		}
	}
	got := f.records(t, s)
	if len(got) != 1 || len(got[target]) != 3 {
		t.Errorf("records %v, want three values at %s", got, target)
	}
	var rec v1alpha1.ChallengeRecord
	if err := f.k8s.Get(ctx, types.NamespacedName{Namespace: s.opts.Namespace, Name: v1alpha1.ChallengeRecordName(target, txt1)}, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Spec.Value != txt1 || rec.Labels[AccountLabel] != a.Username || rec.Annotations[v1alpha1.CreatedAtAnnotation] == "" {
		t.Errorf("record %+v", rec)
	}
}

func (f *fixture) testUpdateRefusals(t *testing.T) {
	s := f.server(t, Options{MaxBodyBytes: 256})
	a := f.register(t, s, "192.0.2.1:1", "")
	other := f.register(t, s, "192.0.2.1:1", "")
	fenced := f.register(t, s, "192.0.2.1:1", `{"allowfrom": ["10.0.0.0/8"]}`)
	wrong := []byte(a.Password)
	wrong[0] ^= 1
	const remote = "192.0.2.7:5000"
	forbidden, badTXT := `{"error": "forbidden"}`, `{"error": "bad_txt"}`
	for i, tc := range []struct {
		name   string
		remote string
		header map[string]string
		body   string
		code   int
		want   string
	}{
		{"no credentials", remote, nil, updateBody(a.Subdomain, txt1), 401, forbidden},
		{"no key", remote, map[string]string{"X-Api-User": a.Username}, updateBody(a.Subdomain, txt1), 401, forbidden},
		{"wrong password", remote, map[string]string{"X-Api-User": a.Username, "X-Api-Key": string(wrong)}, updateBody(a.Subdomain, txt1), 401, forbidden},
		{"short key", remote, map[string]string{"X-Api-User": a.Username, "X-Api-Key": a.Password[:39]}, updateBody(a.Subdomain, txt1), 401, forbidden},
		{"other account's password", remote, map[string]string{"X-Api-User": a.Username, "X-Api-Key": other.Password}, updateBody(a.Subdomain, txt1), 401, forbidden},
		{"unknown user", remote, map[string]string{"X-Api-User": uuid.NewString(), "X-Api-Key": a.Password}, updateBody(a.Subdomain, txt1), 401, forbidden},
		{"user not a uuid", remote, map[string]string{"X-Api-User": "admin", "X-Api-Key": a.Password}, updateBody(a.Subdomain, txt1), 401, forbidden},
		{"another account's subdomain", remote, creds(a), updateBody(other.Subdomain, txt1), 401, forbidden},
		{"no subdomain", remote, creds(a), `{"txt": "` + txt1 + `"}`, 401, forbidden},
		{"malformed json", remote, creds(a), `{"subdomain": "` + a.Subdomain + `", "txt": `, 401, forbidden},
		{"oversized json", remote, creds(a), `{"subdomain": "` + a.Subdomain + `", "txt": "` + txt1 + `", "pad": "` + strings.Repeat("x", 300) + `"}`, 401, forbidden},
		{"outside allowfrom", remote, creds(fenced), updateBody(fenced.Subdomain, txt1), 401, forbidden},
		{"txt too short", remote, creds(a), updateBody(a.Subdomain, txt1[:42]), 400, badTXT},
		{"txt too long", remote, creds(a), updateBody(a.Subdomain, txt1+"A"), 400, badTXT},
		{"txt standard base64", remote, creds(a), updateBody(a.Subdomain, "+"+txt1[1:]), 400, badTXT},
		{"txt padded", remote, creds(a), updateBody(a.Subdomain, txt1[:42]+"="), 400, badTXT},
		{"txt empty", remote, creds(a), updateBody(a.Subdomain, ""), 400, badTXT},
		{"txt with a space", remote, creds(a), updateBody(a.Subdomain, txt1[:42]+" "), 400, badTXT},
		{"txt with a newline", remote, creds(a), updateBody(a.Subdomain, txt1[:42]+"\n"), 400, badTXT},
		{"txt with a NUL", remote, creds(a), `{"subdomain": "` + a.Subdomain + `", "txt": "` + txt1[:42] + `\u0000"}`, 400, badTXT},
		{"txt with a quote", remote, creds(a), updateBody(a.Subdomain, txt1[:42]+`"`), 400, badTXT},
		{"txt of 43 bytes, 42 characters", remote, creds(a), updateBody(a.Subdomain, txt1[:41]+"é"), 400, badTXT},
		{"txt of 43 characters, not ASCII", remote, creds(a), updateBody(a.Subdomain, txt1[:42]+"é"), 400, badTXT},
	} {
		code, out := call(s, http.MethodPost, "/update", tc.remote, tc.header, tc.body)
		if code != tc.code || out != tc.want {
			t.Errorf("Test %d (%s): %d %s, want %d %s", i, tc.name, code, out, tc.code, tc.want)
		}
	}
	if code, _ := call(s, http.MethodGet, "/update", remote, creds(a), ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /update: %d, want 405", code)
	}
	if got := f.records(t, s); len(got) != 0 {
		t.Errorf("records written: %v", got)
	}
	// The fenced account works from inside its allowfrom.
	if code, out := call(s, http.MethodPost, "/update", "10.1.2.3:5000", creds(fenced), updateBody(fenced.Subdomain, txt1)); code != 200 {
		t.Errorf("update from inside allowfrom: %d %s", code, out)
	}
}

func (f *fixture) testRegisterRefusals(t *testing.T) {
	open := f.server(t, Options{MaxBodyBytes: 256})
	for i, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"malformed json", `{"allowfrom": [`, 400, `{"error": "malformed_json_payload"}`},
		{"not an object", `"x"`, 400, `{"error": "malformed_json_payload"}`},
		{"oversized json", `{"allowfrom": [], "pad": "` + strings.Repeat("x", 300) + `"}`, 400, `{"error": "malformed_json_payload"}`},
		{"bad cidr", `{"allowfrom": ["192.0.2.0/33"]}`, 400, `{"error": "invalid_allowfrom_cidr"}`},
		{"address, not cidr", `{"allowfrom": ["192.0.2.1"]}`, 400, `{"error": "invalid_allowfrom_cidr"}`},
	} {
		code, out := call(open, http.MethodPost, "/register", "192.0.2.1:1", nil, tc.body)
		if code != tc.code || out != tc.want {
			t.Errorf("Test %d (%s): %d %s, want %d %s", i, tc.name, code, out, tc.code, tc.want)
		}
	}
	if n := f.count(t, open, &v1alpha1.DelegationList{}) + f.count(t, open, &corev1.SecretList{}); n != 0 {
		t.Errorf("%d objects written", n)
	}

	reg, err := ParseRegistration("closed")
	if err != nil {
		t.Fatal(err)
	}
	closed := f.server(t, Options{Registration: reg})
	closed.opts.Registration = reg // server() opens registration when no CIDRs are given
	if code, _ := call(closed, http.MethodPost, "/register", "192.0.2.1:1", nil, ""); code != http.StatusNotFound {
		t.Errorf("closed registration: %d, want 404 as acme-dns with disable_registration", code)
	}
	if n := f.count(t, closed, &v1alpha1.DelegationList{}); n != 0 {
		t.Errorf("closed: %d Delegations written", n)
	}

	reg, err = ParseRegistration("10.0.0.0/8, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	fenced := f.server(t, Options{Registration: reg})
	if code, out := call(fenced, http.MethodPost, "/register", "192.0.2.1:1", nil, ""); code != 401 || out != `{"error": "forbidden"}` {
		t.Errorf("register from outside: %d %s", code, out)
	}
	if n := f.count(t, fenced, &v1alpha1.DelegationList{}); n != 0 {
		t.Errorf("fenced: %d Delegations written", n)
	}
	f.register(t, fenced, "10.9.9.9:1", "")
	f.register(t, fenced, "[2001:db8::1]:1", "")

	if _, err := ParseRegistration("10.0.0.0/8,nope"); err == nil {
		t.Error("ParseRegistration accepted nope")
	}
}

// testUnknownUser checks that an unknown user costs a bcrypt comparison like a known one.
func (f *fixture) testUnknownUser(t *testing.T) {
	s := f.server(t, Options{})
	a := f.register(t, s, "192.0.2.1:1", "")
	var compared [][]byte
	s.compare = func(hash, pw []byte) error {
		compared = append(compared, hash)
		return bcrypt.CompareHashAndPassword(hash, pw)
	}
	if code, _ := call(s, http.MethodPost, "/update", "192.0.2.1:1", map[string]string{"X-Api-User": uuid.NewString(), "X-Api-Key": a.Password}, updateBody(a.Subdomain, txt1)); code != 401 {
		t.Fatalf("unknown user: %d", code)
	}
	if len(compared) != 1 || string(compared[0]) != string(dummyHash()) {
		t.Fatalf("unknown user: compared against %q, want the dummy hash once", compared)
	}
	cost, err := bcrypt.Cost(dummyHash())
	if err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("dummy hash cost %d (%v), want %d as real hashes", cost, err, bcrypt.DefaultCost)
	}
	// And a known user with a wrong password: one comparison against its own hash.
	wrong := strings.Repeat("A", 40)
	if code, _ := call(s, http.MethodPost, "/update", "192.0.2.1:1", map[string]string{"X-Api-User": a.Username, "X-Api-Key": wrong}, updateBody(a.Subdomain, txt1)); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	if len(compared) != 2 || string(compared[1]) == string(dummyHash()) {
		t.Errorf("wrong password: compared against %q", compared)
	}
}

func (f *fixture) testRateLimit(t *testing.T) {
	s := f.server(t, Options{FailureBurst: 3, FailureRate: 1e-6})
	a := f.register(t, s, "192.0.2.1:1", "")
	bad := map[string]string{"X-Api-User": a.Username, "X-Api-Key": strings.Repeat("A", 40)}
	counted := func(endpoint, code string) float64 {
		return testutil.ToFloat64(httpRequests.WithLabelValues(endpoint, code))
	}
	unauthorized, limited, limitedReg, ok := counted("/update", "401"), counted("/update", "429"), counted("/register", "429"), counted("/update", "200")
	others := counted("other", "404")
	timed := func() uint64 {
		var m dto.Metric
		if err := httpDuration.WithLabelValues("/update").(prometheus.Histogram).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	timedBefore := timed()
	if code, _ := call(s, http.MethodGet, "/random/"+a.Subdomain, "192.0.2.1:1", nil, ""); code != http.StatusNotFound {
		t.Errorf("GET of an unknown path: %d, want 404", code)
	}
	for i := range 3 {
		if code, _ := call(s, http.MethodPost, "/update", "192.0.2.66:1", bad, updateBody(a.Subdomain, txt1)); code != 401 {
			t.Fatalf("failure %d: %d, want 401", i, code)
		}
	}
	// The bucket is empty: even the right password is turned away, before any check.
	s.compare = func([]byte, []byte) error { t.Error("password checked while rate limited"); return nil }
	code, out := call(s, http.MethodPost, "/update", "192.0.2.66:2", creds(a), updateBody(a.Subdomain, txt1))
	if code != http.StatusTooManyRequests || out != `{"error": "too_many_requests"}` {
		t.Errorf("after 3 failures: %d %s, want 429", code, out)
	}
	if code, _ := call(s, http.MethodPost, "/register", "192.0.2.66:2", nil, ""); code != http.StatusTooManyRequests {
		t.Errorf("register after 3 failures: %d, want 429", code)
	}
	s.compare = bcrypt.CompareHashAndPassword
	if code, out := call(s, http.MethodPost, "/update", "192.0.2.67:1", creds(a), updateBody(a.Subdomain, txt1)); code != 200 {
		t.Errorf("another address: %d %s", code, out)
	}
	if got := f.records(t, s); len(got) != 1 {
		t.Errorf("records %v, want the one from the other address", got)
	}
	// The metrics by endpoint and status: three 401s, two 429s, one 200, and the unknown path
	// under "other", not under a label of its own.
	for _, m := range []struct {
		endpoint, code string
		before, want   float64
	}{
		{"/update", "401", unauthorized, 3}, {"/update", "429", limited, 1}, {"/register", "429", limitedReg, 1},
		{"/update", "200", ok, 1}, {"other", "404", others, 1},
	} {
		if got := counted(m.endpoint, m.code) - m.before; got != m.want {
			t.Errorf("acmezone_acmedns_requests_total{endpoint=%q,code=%q} rose by %v, want %v", m.endpoint, m.code, got, m.want)
		}
	}
	if got := timed() - timedBefore; got != 5 {
		t.Errorf("acmezone_acmedns_request_duration_seconds{endpoint=/update} timed %d requests, want the 5 made", got)
	}
	if n := testutil.CollectAndCount(httpRequests); n > 12 {
		t.Errorf("acmezone_acmedns_requests_total has %d series: paths are not bounded", n)
	}
	// IPv6 clients are counted per /64.
	for i := range 3 {
		call(s, http.MethodPost, "/update", fmt.Sprintf("[2001:db8::%d]:1", i+1), bad, updateBody(a.Subdomain, txt1))
	}
	if code, _ := call(s, http.MethodPost, "/update", "[2001:db8::ffff]:1", creds(a), updateBody(a.Subdomain, txt1)); code != http.StatusTooManyRequests {
		t.Errorf("same /64: %d, want 429", code)
	}
}

// proxies are the trusted proxies of the header tests.
var proxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}

func (f *fixture) testTrustedHeader(t *testing.T) {
	s := f.server(t, Options{TrustedHeader: "X-Forwarded-For", TrustedProxies: proxies})
	a := f.register(t, s, "10.0.0.1:1", `{"allowfrom": ["192.0.2.0/24"]}`)
	const proxy = "10.0.0.1:1"
	for i, tc := range []struct {
		xff  []string
		code int
	}{
		{[]string{"192.0.2.9"}, 200},
		{[]string{"10.1.2.3, 192.0.2.9"}, 200},
		{[]string{"192.0.2.9:4711"}, 200},
		{[]string{"192.0.2.9, 10.0.0.2"}, 200},   // a chain: 10.0.0.2 is another trusted proxy
		{[]string{"10.1.2.3", "192.0.2.9"}, 200}, // two header lines are one list
		{[]string{"192.0.2.9, 10.1.2.3"}, 401},   // the client wrote the allowed address itself
		{[]string{"192.0.2.9", "198.51.100.1"}, 401},
		{[]string{"192.0.2.9, not-an-address"}, 401},
		{nil, 401}, // no header: the proxy's address is not the client's
	} {
		h := http.Header{"X-Api-User": {a.Username}, "X-Api-Key": {a.Password}, "X-Forwarded-For": tc.xff}
		if code, out := callHeader(s, http.MethodPost, "/update", proxy, h, updateBody(a.Subdomain, txt1)); code != tc.code {
			t.Errorf("Test %d (X-Forwarded-For %q): %d %s, want %d", i, tc.xff, code, out, tc.code)
		}
	}
}

// testForgedHeader is the attack on the trusted header: a client that is not one of the
// proxies writes X-Forwarded-For itself, to pass an account's allowfrom and to get a fresh
// failure bucket for every guess. Neither works: its own address counts.
func (f *fixture) testForgedHeader(t *testing.T) {
	s := f.server(t, Options{TrustedHeader: "X-Forwarded-For", TrustedProxies: proxies, FailureBurst: 3, FailureRate: 1e-6})
	a := f.register(t, s, "10.0.0.1:1", `{"allowfrom": ["192.0.2.0/24"]}`)
	bad := map[string]string{"X-Api-User": a.Username, "X-Api-Key": strings.Repeat("A", 40)}
	const attacker = "198.51.100.7"
	// The right credentials, an allowed address in the header, from outside the proxies.
	h := creds(a)
	h["X-Forwarded-For"] = "192.0.2.9"
	if code, out := call(s, http.MethodPost, "/update", attacker+":4000", h, updateBody(a.Subdomain, txt1)); code != 401 {
		t.Errorf("forged X-Forwarded-For from outside the proxies: %d %s, want 401 (outside allowfrom)", code, out)
	}
	// Two more failures, each claiming another address: all counted under the attacker's.
	for i := range 2 {
		bad["X-Forwarded-For"] = fmt.Sprintf("203.0.113.%d", i+1)
		if code, _ := call(s, http.MethodPost, "/update", fmt.Sprintf("%s:%d", attacker, 4001+i), bad, updateBody(a.Subdomain, txt1)); code != 401 {
			t.Fatalf("failure %d: %d, want 401", i, code)
		}
	}
	h["X-Forwarded-For"] = "203.0.113.99"
	if code, out := call(s, http.MethodPost, "/update", attacker+":4010", h, updateBody(a.Subdomain, txt1)); code != http.StatusTooManyRequests {
		t.Errorf("after 3 failures with 3 forged addresses: %d %s, want 429 under the peer's address", code, out)
	}
	// Through the proxy the attacker is the same client; the account's own client is not.
	h["X-Forwarded-For"] = attacker
	if code, _ := call(s, http.MethodPost, "/update", "10.0.0.1:1", h, updateBody(a.Subdomain, txt1)); code != http.StatusTooManyRequests {
		t.Errorf("the attacker through the proxy: %d, want 429", code)
	}
	h["X-Forwarded-For"] = "192.0.2.9"
	if code, out := call(s, http.MethodPost, "/update", "10.0.0.1:1", h, updateBody(a.Subdomain, txt1)); code != 200 {
		t.Errorf("the account's client through the proxy: %d %s, want 200", code, out)
	}
	if got := f.records(t, s); len(got) != 1 {
		t.Errorf("records %v, want only the one from the proxy", got)
	}
}

// testRateLimitPorts: the failures of one address count in one bucket whatever ports they
// come from, also where the client's address is unknown: a trusted proxy's request without
// the header, or a peer whose address cannot be parsed.
func (f *fixture) testRateLimitPorts(t *testing.T) {
	s := f.server(t, Options{TrustedHeader: "X-Forwarded-For", TrustedProxies: proxies, FailureBurst: 3, FailureRate: 1e-6})
	a := f.register(t, s, "10.0.0.1:1", "")
	bad := map[string]string{"X-Api-User": a.Username, "X-Api-Key": strings.Repeat("A", 40)}
	for _, tc := range []struct {
		name   string
		remote string // with %d for the port
		header map[string]string
	}{
		{"peer", "192.0.2.66:%d", nil},
		{"IPv6 peer", "[2001:db8:66::1]:%d", nil},
		{"proxy without the header", "10.0.0.2:%d", nil},
		{"proxy with an unparsable header", "10.0.0.3:%d", map[string]string{"X-Forwarded-For": "unknown"}},
		{"client behind the proxy", "10.0.0.4:%d", map[string]string{"X-Forwarded-For": "192.0.2.77:%d"}},
		{"peer not an address", "pipe-%d", nil},
	} {
		remote := func(port int) string {
			if strings.Contains(tc.remote, "%d") {
				return fmt.Sprintf(tc.remote, port)
			}
			return tc.remote
		}
		header := func(h map[string]string, port int) map[string]string {
			out := map[string]string{}
			for k, v := range h {
				out[k] = v
			}
			for k, v := range tc.header {
				if strings.Contains(v, "%d") {
					v = fmt.Sprintf(v, port)
				}
				out[k] = v
			}
			return out
		}
		for port := 1000; port < 1003; port++ {
			if code, out := call(s, http.MethodPost, "/update", remote(port), header(bad, port), updateBody(a.Subdomain, txt1)); code != 401 {
				t.Fatalf("%s: failure from port %d: %d %s, want 401", tc.name, port, code, out)
			}
		}
		if code, out := call(s, http.MethodPost, "/update", remote(1003), header(creds(a), 1003), updateBody(a.Subdomain, txt1)); code != http.StatusTooManyRequests {
			t.Errorf("%s: after 3 failures from 3 ports, the right password from a fourth: %d %s, want 429", tc.name, code, out)
		}
	}
}

// testRegisterFlood: /register is throttled per client address, successes counted too, so a
// client cannot fill the API server with accounts.
func (f *fixture) testRegisterFlood(t *testing.T) {
	s := f.server(t, Options{RegisterBurst: 3, RegisterRate: 1.0 / 60})
	clock := time.Now()
	s.registrations.now = func() time.Time { return clock }
	for port := range 3 {
		f.register(t, s, fmt.Sprintf("192.0.2.80:%d", port+1), "")
	}
	if code, out := call(s, http.MethodPost, "/register", "192.0.2.80:9", nil, ""); code != http.StatusTooManyRequests || out != `{"error": "too_many_requests"}` {
		t.Errorf("fourth registration: %d %s, want 429 too_many_requests", code, out)
	}
	f.register(t, s, "192.0.2.81:1", "") // another address has its own bucket
	clock = clock.Add(time.Minute)       // one more a minute
	f.register(t, s, "192.0.2.80:10", "")
	if code, _ := call(s, http.MethodPost, "/register", "192.0.2.80:11", nil, ""); code != http.StatusTooManyRequests {
		t.Errorf("after a minute, the second registration: %d, want 429", code)
	}
	// A flood of concurrent registrations from one IPv6 /64 gets its burst, no more.
	var wg sync.WaitGroup
	var created atomic.Int32
	for i := range 20 {
		wg.Go(func() {
			if code, _ := call(s, http.MethodPost, "/register", fmt.Sprintf("[2001:db8:80::%x]:1", i+1), nil, ""); code == http.StatusCreated {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if n := created.Load(); n != 3 {
		t.Errorf("20 concurrent registrations from one /64: %d created, want 3", n)
	}
	if n := f.count(t, s, &v1alpha1.DelegationList{}); n != 3+1+1+3 {
		t.Errorf("%d account Delegations, want 8", n)
	}
}

// testKeptOnUpdate: /update deletes nothing, however old (the reaper in controller/challenge
// does, knowing the Challenges), and writing a value again refreshes its time.
func (f *fixture) testKeptOnUpdate(t *testing.T) {
	ctx := context.Background()
	s := f.server(t, Options{})
	a := f.register(t, s, "192.0.2.1:1", "")
	now := time.Now()
	s.now = func() time.Time { return now.Add(-48 * time.Hour) }
	for _, v := range []string{txt1, txt2} {
		if code, out := call(s, http.MethodPost, "/update", "192.0.2.1:1", creds(a), updateBody(a.Subdomain, v)); code != 200 {
			t.Fatalf("update: %d %s", code, out)
		}
	}
	s.now = func() time.Time { return now }
	for _, v := range []string{txt2, txt3} {
		if code, out := call(s, http.MethodPost, "/update", "192.0.2.1:1", creds(a), updateBody(a.Subdomain, v)); code != 200 {
			t.Fatalf("update: %d %s", code, out)
		}
	}
	target := a.Subdomain + "." + zone
	got := f.records(t, s)[target]
	slices.Sort(got)
	want := []string{txt1, txt2, txt3}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
	for v, age := range map[string]time.Duration{txt1: 48 * time.Hour, txt2: 0} {
		var rec v1alpha1.ChallengeRecord
		if err := f.k8s.Get(ctx, types.NamespacedName{Namespace: s.opts.Namespace, Name: v1alpha1.ChallengeRecordName(target, v)}, &rec); err != nil {
			t.Fatal(err)
		}
		if d := now.Sub(rec.WrittenAt()); d < age-time.Second || d > age+time.Second {
			t.Errorf("%s written %s ago, want %s", v, d, age)
		}
	}
}

func (f *fixture) testHealth(t *testing.T) {
	s := f.server(t, Options{})
	if code, out := call(s, http.MethodGet, "/health", "192.0.2.1:1", nil, ""); code != 200 || out != "" {
		t.Errorf("health: %d %q, want 200 and no body", code, out)
	}
	s.cfg.Synced = func(context.Context) bool { return false }
	if code, _ := call(s, http.MethodGet, "/health", "192.0.2.1:1", nil, ""); code != http.StatusServiceUnavailable {
		t.Errorf("health with unsynced caches: %d, want 503", code)
	}
}

// countingReader counts the Lists that reach the API server, each taking delay; it fails
// them while down is set.
type countingReader struct {
	client.Reader
	delay time.Duration
	lists atomic.Int32
	down  atomic.Bool
}

func (c *countingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.lists.Add(1)
	time.Sleep(c.delay)
	if c.down.Load() {
		return errors.New("connection refused")
	}
	return c.Reader.List(ctx, list, opts...)
}

// testHealthCached is the attack on /health: anyone who reaches the API calls it as fast as
// it can. However many calls, the API server sees one per interval, and still learns of an
// outage within one.
func (f *fixture) testHealthCached(t *testing.T) {
	s := f.server(t, Options{HealthInterval: 10 * time.Second})
	api := &countingReader{Reader: f.k8s, delay: 100 * time.Millisecond}
	s.cfg.APIReader = api
	var mu sync.Mutex
	clock := time.Now()
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	health := func(n int) (codes map[int]int) {
		codes = map[int]int{}
		var wg sync.WaitGroup
		var cmu sync.Mutex
		for range n {
			wg.Go(func() {
				code, _ := call(s, http.MethodGet, "/health", "192.0.2.1:1", nil, "")
				cmu.Lock()
				codes[code]++
				cmu.Unlock()
			})
		}
		wg.Wait()
		return codes
	}
	for i, step := range []struct {
		advance time.Duration
		down    bool
		want    int // every answer's code
		lists   int32
	}{
		{0, false, 200, 1},               // 50 at once share one look
		{9 * time.Second, false, 200, 1}, // within the interval: none
		{time.Second, false, 200, 2},     // the interval passed: one more
		{10 * time.Second, true, 503, 3}, // the API server is down: seen at the next look
		{5 * time.Second, false, 503, 3}, // back, but the last look failed
		{5 * time.Second, false, 200, 4}, // and the next look sees it back
	} {
		advance(step.advance)
		api.down.Store(step.down)
		if codes := health(50); codes[step.want] != 50 {
			t.Errorf("Step %d: 50 calls answered %v, want %d", i, codes, step.want)
		}
		if n := api.lists.Load(); n != step.lists {
			t.Errorf("Step %d: %d API calls in all, want %d", i, n, step.lists)
		}
	}
	// Unsynced caches: 503 without asking the API server.
	advance(time.Minute)
	s.cfg.Synced = func(context.Context) bool { return false }
	if codes := health(5); codes[http.StatusServiceUnavailable] != 5 || api.lists.Load() != 4 {
		t.Errorf("unsynced: %v, %d API calls, want 503 and no call", codes, api.lists.Load())
	}
}

// testGoacmedns drives the API with cert-manager's acme-dns client over HTTP.
func (f *fixture) testGoacmedns(t *testing.T) {
	s := f.server(t, Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := goacmedns.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acct, err := c.RegisterAccount(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateTXTRecord(ctx, acct, txt1); err != nil {
		t.Fatal(err)
	}
	if got := f.records(t, s)[acct.SubDomain+"."+zone]; len(got) != 1 || got[0] != txt1 {
		t.Errorf("records at %s: %v", acct.FullDomain, got)
	}
	acct2, err := c.RegisterAccount(ctx, []string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateTXTRecord(ctx, acct2, txt2); err != nil {
		t.Fatal(err)
	}
	bad := acct2
	bad.Password = strings.Repeat("A", 40)
	var ce *goacmedns.ClientError
	if err := c.UpdateTXTRecord(ctx, bad, txt3); err == nil || !errors.As(err, &ce) || ce.HTTPStatus != 401 {
		t.Errorf("wrong password through goacmedns: %v", err)
	}
}

// testProofRemoved: an account writes only while its Delegation's target is, by the tenancy
// rule, its namespace's own: with the proof changed, removed, made with another key or for
// another target, /update is refused; with the proof back, it works again.
func (f *fixture) testProofRemoved(t *testing.T) {
	ctx := context.Background()
	s := f.server(t, Options{})
	a := f.register(t, s, "192.0.2.1:1", "")
	update := func(v string) int {
		code, _ := call(s, http.MethodPost, "/update", "192.0.2.1:1", creds(a), updateBody(a.Subdomain, v))
		return code
	}
	if code := update(txt1); code != 200 {
		t.Fatalf("update: %d", code)
	}
	key := types.NamespacedName{Namespace: s.opts.Namespace, Name: AccountName(a.Username)}
	target := a.Subdomain + "." + zone
	other := uuid.NewString() + "." + zone
	set := func(target, proof string) {
		t.Helper()
		var d v1alpha1.Delegation
		if err := f.k8s.Get(ctx, key, &d); err != nil {
			t.Fatal(err)
		}
		d.Spec.Target = target
		if proof == "" {
			delete(d.Annotations, v1alpha1.TargetProofAnnotation)
		} else {
			metav1.SetMetaDataAnnotation(&d.ObjectMeta, v1alpha1.TargetProofAnnotation, proof)
		}
		if err := f.k8s.Update(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range []struct {
		name, target, proof string
	}{
		{"proof removed", target, ""},
		{"proof for another namespace", target, f.key.Proof("shop", a.Fulldomain, target)},
		{"proof for another domain", target, f.key.Proof(s.opts.Namespace, "example.com", target)},
		{"proof with another key", target, newKey(t).Proof(s.opts.Namespace, a.Fulldomain, target)},
		{"proof garbled", target, strings.Repeat("A", 43)},
		{"another target, proved", other, f.key.Proof(s.opts.Namespace, a.Fulldomain, other)},
	} {
		set(tc.target, tc.proof)
		if code := update(txt2); code != 401 {
			t.Errorf("Test %d (%s): update %d, want 401", i, tc.name, code)
		}
	}
	set(target, f.key.Proof(s.opts.Namespace, a.Fulldomain, target))
	if code := update(txt3); code != 200 {
		t.Errorf("proof back: update %d, want 200", code)
	}
	got := f.records(t, s)
	if len(got) != 1 || len(got[target]) != 2 {
		t.Errorf("records %v, want %s and %s at %s", got, txt1, txt3, target)
	}
}

// TestNewRefuses checks the options New refuses: no target key, a trusted header without
// trusted proxies and proxies without a header.
func TestNewRefuses(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(kubetest.Scheme()).Build()
	key := newKey(t)
	for i, tc := range []struct {
		opts Options
		ok   bool
	}{
		{Options{Zone: zone, TargetKey: key}, true},
		{Options{Zone: zone}, false},
		{Options{TargetKey: key}, false},
		{Options{Zone: zone, TargetKey: key, TrustedHeader: "X-Forwarded-For"}, false},
		{Options{Zone: zone, TargetKey: key, TrustedProxies: proxies}, false},
		{Options{Zone: zone, TargetKey: key, TrustedHeader: "X-Forwarded-For", TrustedProxies: proxies}, true},
	} {
		if _, err := New(Config{Client: c}, tc.opts); (err == nil) != tc.ok {
			t.Errorf("Test %d: err %v, want ok %v", i, err, tc.ok)
		}
	}
}
