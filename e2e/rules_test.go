//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
)

// TestWildcardUsesDNS01 is the seed's rule with the example ClusterIssuer that lists http01
// first and acmezone's dns01 second: the wildcard gets a DNS-01 Challenge, the plain name an
// HTTP-01 one. No ingress controller runs here, so the HTTP-01 Challenge is not expected to pass.
func TestWildcardUsesDNS01(t *testing.T) {
	s := up(t)
	ctx := context.Background()
	c := s.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	class := "nginx"
	http01 := cmacme.ACMEChallengeSolver{HTTP01: &cmacme.ACMEChallengeSolverHTTP01{
		Ingress: &cmacme.ACMEChallengeSolverHTTP01Ingress{IngressClassName: &class},
	}}
	ci := s.ClusterIssuer("http01-and-dns01", http01, stack.AcmezoneSolver())
	if err := c.Create(ctx, ci); err != nil {
		t.Fatal(err)
	}
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "mixed"},
		Spec: cmapi.CertificateSpec{
			SecretName: "mixed-tls",
			DNSNames:   []string{"www.example.net", "*.example.net"},
			IssuerRef:  cmmeta.IssuerReference{Name: ci.Name, Kind: cmapi.ClusterIssuerKind},
		},
	}
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	types := map[string]cmacme.ACMEChallengeType{}
	eventually(t, 3*time.Minute, "a Challenge for each name", func() (bool, string) {
		var chs cmacme.ChallengeList
		if err := c.List(ctx, &chs, client.InNamespace("web")); err != nil {
			return false, err.Error()
		}
		for _, ch := range chs.Items {
			name := ch.Spec.DNSName
			if ch.Spec.Wildcard {
				name = "*." + name
			}
			types[name] = ch.Spec.Type
		}
		return len(types) == 2, "challenges so far: " + strings.Join(keys(types), ", ")
	})
	if types["*.example.net"] != cmacme.ACMEChallengeTypeDNS01 {
		t.Errorf("*.example.net got a %q Challenge, want DNS-01", types["*.example.net"])
	}
	if types["www.example.net"] != cmacme.ACMEChallengeTypeHTTP01 {
		t.Errorf("www.example.net got a %q Challenge, want HTTP-01", types["www.example.net"])
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestIsolation: a Certificate in namespace blog for a domain whose Delegation lives in
// namespace shop never gets a record served, and the Challenge says why. (The domain lies in
// example.com, the only zone the stack's public DNS knows, so cert-manager gets as far as Present.)
func TestIsolation(t *testing.T) {
	s := up(t)
	ctx := context.Background()
	c := s.Client
	for _, ns := range []string{"shop", "blog"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop.example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "shop.example.com"},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "shop's Delegation has a target", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return false, err.Error()
		}
		return d.Status.Target != "", "no target"
	})

	// blog's own Issuer: cert-manager sends blog as the solver's namespace.
	iss := &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "blog", Name: "acmezone"},
		Spec:       s.ClusterIssuer("acmezone", stack.AcmezoneSolver()).Spec,
	}
	if err := c.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "blog", Name: "steal"},
		Spec: cmapi.CertificateSpec{
			SecretName: "steal-tls",
			DNSNames:   []string{"shop.example.com"},
			IssuerRef:  cmmeta.IssuerReference{Name: iss.Name, Kind: cmapi.IssuerKind},
		},
	}
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	var ch cmacme.Challenge
	eventually(t, 3*time.Minute, "the Challenge reports why it cannot be presented", func() (bool, string) {
		var chs cmacme.ChallengeList
		if err := c.List(ctx, &chs, client.InNamespace("blog")); err != nil || len(chs.Items) == 0 {
			return false, "no Challenge yet"
		}
		ch = chs.Items[0]
		return strings.Contains(ch.Status.Reason, "no Delegation for shop.example.com in namespace blog; shop.example.com is delegated in namespace shop"), "reason: " + ch.Status.Reason
	})
	t.Logf("Challenge status: %s", ch.Status.Reason)
	eventually(t, time.Minute, "a Warning Event saying the domain is delegated in shop", func() (bool, string) {
		notes, err := s.Events(ctx, &ch)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range notes {
			if strings.Contains(n, "DomainDelegatedElsewhere: shop.example.com is delegated in namespace shop") {
				return true, ""
			}
		}
		return false, strings.Join(notes, "; ")
	})
	var recs v1alpha1.ChallengeRecordList
	if err := c.List(ctx, &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs.Items) != 0 {
		t.Errorf("ChallengeRecords were written: %v", recs.Items)
	}
	var list v1alpha1.DelegationList
	if err := c.List(ctx, &list, client.InNamespace("blog")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("a Delegation was created in blog: %v", list.Items[0].Name)
	}
	// And nothing is served at shop's target.
	m := new(dns.Msg)
	m.SetQuestion(d.Status.Target, dns.TypeTXT)
	r, _, err := (&dns.Client{Net: "tcp"}).Exchange(m, stack.AcmezoneIP+":53")
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("shop's target answers %v, want NODATA", r)
	}
}
