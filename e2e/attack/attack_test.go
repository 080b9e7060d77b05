// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package attack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/miekg/dns"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/rfc2136"
	"github.com/acmezone/acmezone/internal/dnstest"
)

// TestAttacks runs every attack of docs/SECURITY.md against one cluster; each subtest is one
// row of the threat model's table or one property.
func TestAttacks(t *testing.T) {
	c := setup(t)
	ctx := context.Background()

	// The victim: shop's Delegation for example.com, its CNAME at the provider, a value served.
	shopT := c.target(shop, "example.com")
	c.delegation(t, c.admin, shop, "example-com", "example.com", "")
	c.provider.Set(t, append(providerBase(), "_acme-challenge.example.com. 300 IN CNAME "+shopT, shopT+` 5 IN TXT "x"`)...)
	c.record(t, c.admin, shop, shopT, key(1))
	eventually(t, "shop's value served at its target", func() (bool, string) {
		got := c.txt(t, shopT)
		return slices.Equal(got, []string{key(1)}), fmt.Sprint(got)
	})

	t.Run("ConfigMapInTenantNamespace", func(t *testing.T) {
		// Row 1: a labelled ConfigMap in blog with a TXT record at shop's target.
		label, _, _ := strings.Cut(shopT, ".")
		c.configMap(t, c.mallory, blog, "evil", label+` IN TXT "`+key(666)+`"`)
		c.configMap(t, c.admin, "acmezone", "sentinel", `sentinel-cm IN TXT "here"`)
		eventually(t, "the administrator's ConfigMap served", func() (bool, string) {
			got := c.txt(t, "sentinel-cm."+zone)
			return slices.Equal(got, []string{"here"}), fmt.Sprint(got)
		})
		time.Sleep(time.Second)
		if got := c.txt(t, shopT); !slices.Equal(got, []string{key(1)}) {
			t.Errorf("shop's target serves %v, want only shop's %s", got, key(1))
		}
	})

	t.Run("GlueFromConfigMap", func(t *testing.T) {
		// Row 2: an in-zone name server's address from a ConfigMap, in blog and even in the
		// administrator's namespace: the glue is the Corefile's.
		c.configMap(t, c.mallory, blog, "glue", `ns1 IN A 203.0.113.66`)
		c.configMap(t, c.admin, "acmezone", "glue", "ns1 IN A 203.0.113.67\n@ IN NS ns.evil.example.\n_acme-challenge IN TXT \""+key(7)+"\"\n"+
			strings.SplitN(c.target("nobody", "x.example"), ".", 2)[0]+" IN TXT \""+key(8)+"\"\nok IN TXT \"served\"")
		eventually(t, "the valid line of the administrator's ConfigMap served", func() (bool, string) {
			got := c.txt(t, "ok."+zone)
			return slices.Equal(got, []string{"served"}), fmt.Sprint(got)
		})
		r, err := c.query(zone, dns.TypeNS, "udp", 1232)
		if err != nil {
			t.Fatal(err)
		}
		var ns, glue []string
		for _, rr := range r.Answer {
			ns = append(ns, rr.(*dns.NS).Ns)
		}
		for _, rr := range r.Extra {
			if a, ok := rr.(*dns.A); ok {
				glue = append(glue, a.A.String())
			}
		}
		if !slices.Equal(ns, []string{"ns1." + zone}) || !slices.Equal(glue, []string{"127.0.0.53"}) {
			t.Errorf("NS %v glue %v, want only the Corefile's ns1 at 127.0.0.53", ns, glue)
		}
		if got := c.txt(t, "_acme-challenge."+zone); len(got) != 0 {
			t.Errorf("the apex's _acme-challenge serves %v from a ConfigMap", got)
		}
		if got := c.txt(t, c.target("nobody", "x.example")); len(got) != 0 {
			t.Errorf("a target-form name serves %v from a ConfigMap", got)
		}
		if !strings.Contains(c.coredns.Logs(), "ConfigMap acmezone/glue") {
			t.Errorf("no warning names the rejected ConfigMap lines:\n%s", c.coredns.Tail(20))
		}
	})

	t.Run("SpecTargetOfAnotherNamespace", func(t *testing.T) {
		// Row 3: blog's Delegation names shop's target, even with shop's status copied.
		d := c.delegation(t, c.mallory, blog, "steal", "example.com", shopT)
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.mallory.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
				return err
			}
			d.Status.Target = shopT
			return c.mallory.Status().Update(ctx, d)
		}); err != nil {
			t.Fatalf("the tenant may write status in this suite: %v", err)
		}
		c.record(t, c.mallory, blog, shopT, key(2))
		c.settle(t, "blog's Delegation and record")
		if got := c.txt(t, shopT); !slices.Equal(got, []string{key(1)}) {
			t.Errorf("shop's target serves %v, want only shop's %s", got, key(1))
		}
		eventually(t, "blog's Delegation says it has no target", func() (bool, string) {
			var got v1alpha1.Delegation
			_ = c.admin.Get(ctx, client.ObjectKeyFromObject(d), &got)
			for _, cond := range got.Status.Conditions {
				if cond.Type == v1alpha1.ConditionReady && cond.Reason == "InvalidTarget" {
					// (status.target is whatever the tenant last wrote: nothing reads it.)
					return !strings.Contains(cond.Message, shop) && !strings.Contains(cond.Message, strings.TrimSuffix(shopT, ".")), cond.Message
				}
			}
			return false, fmt.Sprintf("%+v", got.Status)
		})
	})

	t.Run("TargetAfterOwnerDeleted", func(t *testing.T) {
		// Row 4: shop's Delegation goes (clean-up, GitOps re-create); blog's waiting one and
		// its record at shop's target still get nothing; shop's re-created one gets the same
		// target back, and its CNAME keeps working.
		if err := c.admin.Delete(ctx, &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "example-com"}}); err != nil {
			t.Fatal(err)
		}
		c.settle(t, "shop's Delegation is deleted")
		if got := c.txt(t, shopT); len(got) != 0 {
			t.Errorf("with shop's Delegation gone, shop's target serves %v, want nothing", got)
		}
		d := c.delegation(t, c.admin, shop, "example", "EXAMPLE.com.", "")
		eventually(t, "shop's values served again at the same target", func() (bool, string) {
			got := c.txt(t, shopT)
			return slices.Equal(got, []string{key(1)}), fmt.Sprint(got)
		})
		eventually(t, "the re-created Delegation shows the same target", func() (bool, string) {
			_ = c.admin.Get(ctx, client.ObjectKeyFromObject(d), d)
			return d.Status.Target == shopT, d.Status.Target
		})
	})

	t.Run("ApexChallengeNameAsTarget", func(t *testing.T) {
		// Row 5: spec.target _acme-challenge.<zone>: refused by the API server, never served.
		d := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: blog, Name: "apex"}, Spec: v1alpha1.DelegationSpec{Domain: "acme.example.com", Target: "_acme-challenge." + zone}}
		if err := c.mallory.Create(ctx, d); err == nil || !strings.Contains(err.Error(), "spec.target") {
			t.Errorf("creating a Delegation for _acme-challenge.%s: %v, want refused", zone, err)
		}
		c.record(t, c.mallory, blog, "_acme-challenge."+zone, key(3))
		c.settle(t, "a record at the apex's challenge name")
		if got := c.txt(t, "_acme-challenge."+zone); len(got) != 0 {
			t.Errorf("_acme-challenge.%s serves %v", zone, got)
		}
	})

	t.Run("Squatting", func(t *testing.T) {
		// Row 6: blog's Certificate for bank.example, through an Issuer of its own with
		// auto-delegation. The owner's Delegation (the public CNAME points at its target) is
		// Verified and untouched; blog's gets a target of its own that nobody's CNAME names,
		// and hears nothing of the owner.
		bankT := c.target(shop, "bank.example")
		c.delegation(t, c.admin, shop, "bank", "bank.example", "")
		c.provider.Set(t, append(providerBase(), "_acme-challenge.example.com. 300 IN CNAME "+shopT, shopT+` 5 IN TXT "x"`,
			"_acme-challenge.bank.example. 300 IN CNAME "+bankT, bankT+` 5 IN TXT "x"`)...)
		c.waitCondition(t, shop, "bank", v1alpha1.ConditionVerified, "True")
		ch := challenge(blog, "bank-1", "bank.example", cmapi.IssuerKind)
		if err := c.admin.Create(ctx, ch); err != nil { // cert-manager creates Challenges
			t.Fatal(err)
		}
		eventually(t, "blog's auto-created Delegation", func() (bool, string) {
			var d v1alpha1.Delegation
			err := c.admin.Get(ctx, client.ObjectKey{Namespace: blog, Name: "bank.example"}, &d)
			return err == nil && d.Status.Target == c.target(blog, "bank.example"), fmt.Sprint(err, d.Status.Target)
		})
		c.waitCondition(t, blog, "bank.example", v1alpha1.ConditionVerified, "False")
		// cert-manager's Present for blog's Challenge, through the aggregator.
		if r := c.solve(t, whapi.ChallengeActionPresent, blog, "bank.example", key(4)); !r.Success {
			t.Fatalf("Present for blog: %+v", r.Result)
		}
		c.settle(t, "blog's Present")
		if got := c.txt(t, bankT); len(got) != 0 {
			t.Errorf("the owner's target serves %v after blog's Present", got)
		}
		if got := c.txt(t, c.target(blog, "bank.example")); !slices.Equal(got, []string{key(4)}) {
			t.Errorf("blog's own target serves %v, want its %s", got, key(4))
		}
		c.waitCondition(t, shop, "bank", v1alpha1.ConditionVerified, "True")
		c.noDisclosure(t, blog, shop, bankT)
	})

	t.Run("SolverCalledByTenant", func(t *testing.T) {
		// The tenant calls the webhook directly, as if it were cert-manager: forbidden.
		cs := kubernetes.NewForConfigOrDie(impersonate(c.cp.Config, attacker))
		body := payload(whapi.ChallengeActionPresent, shop, "example.com", key(5))
		_, err := cs.CoreV1().RESTClient().Post().AbsPath("/apis/solver.acmezone.io/v1alpha1/acmezone").
			SetHeader("Content-Type", "application/json").Body(body).DoRaw(ctx)
		if !apierrors.IsForbidden(err) {
			t.Errorf("the tenant's ChallengePayload: %v (%#v), want forbidden", err, err)
		}
	})

	t.Run("CopiedProof", func(t *testing.T) {
		// Property 4: the legacy target's proof, copied into blog, proves nothing there.
		var legacy v1alpha1.Delegation
		eventually(t, "the legacy Delegation keeps its target with a proof", func() (bool, string) {
			_ = c.admin.Get(ctx, client.ObjectKey{Namespace: shop, Name: "legacy"}, &legacy)
			return legacy.Spec.Target == c.legacy && legacy.Annotations[v1alpha1.TargetProofAnnotation] != "" && legacy.Status.Target == c.legacy,
				fmt.Sprintf("spec %q status %q", legacy.Spec.Target, legacy.Status.Target)
		})
		c.record(t, c.admin, shop, c.legacy, key(9))
		eventually(t, "the legacy target served for shop", func() (bool, string) {
			got := c.txt(t, c.legacy)
			return slices.Equal(got, []string{key(9)}), fmt.Sprint(got)
		})
		copied := &v1alpha1.Delegation{
			ObjectMeta: metav1.ObjectMeta{Namespace: blog, Name: "copied", Annotations: map[string]string{
				v1alpha1.TargetProofAnnotation: legacy.Annotations[v1alpha1.TargetProofAnnotation]}},
			Spec: v1alpha1.DelegationSpec{Domain: "legacy.example", Target: c.legacy},
		}
		if err := c.mallory.Create(ctx, copied); err != nil {
			t.Fatal(err)
		}
		c.record(t, c.mallory, blog, c.legacy, key(10))
		c.settle(t, "the copied proof")
		if got := c.txt(t, c.legacy); !slices.Equal(got, []string{key(9)}) {
			t.Errorf("the legacy target serves %v, want only shop's %s", got, key(9))
		}
	})

	t.Run("ClusterIssuerIsOneTenant", func(t *testing.T) {
		// Property 5: a ClusterIssuer's challenges are answered in cert-manager's cluster
		// resource namespace, at its own targets, whichever namespace the Certificate is in:
		// a ClusterIssuer is one tenant. Namespaced Issuers are the multi-tenant way.
		if r := c.solve(t, whapi.ChallengeActionPresent, "cert-manager", "example.com", key(11)); r.Success {
			t.Errorf("Present in cert-manager without a Delegation there succeeded")
		}
		c.delegation(t, c.admin, "cert-manager", "example.com", "example.com", "")
		// Once the controller has verified it (nobody's CNAME names its target), the solver,
		// which reads the same cache, knows it too: a Present sent sooner may be refused as
		// without a Delegation (seen once, on a loaded machine).
		c.waitCondition(t, "cert-manager", "example.com", v1alpha1.ConditionVerified, "False")
		if r := c.solve(t, whapi.ChallengeActionPresent, "cert-manager", "example.com", key(11)); !r.Success {
			t.Fatalf("Present in cert-manager: %+v", r.Result)
		}
		c.settle(t, "the ClusterIssuer's Present")
		if got := c.txt(t, shopT); slices.Contains(got, key(11)) {
			t.Errorf("the ClusterIssuer's value reached shop's target: %v", got)
		}
		if got := c.txt(t, c.target("cert-manager", "example.com")); !slices.Equal(got, []string{key(11)}) {
			t.Errorf("the ClusterIssuer's target serves %v", got)
		}
	})

	t.Run("BoundedAnswers", func(t *testing.T) {
		// Row 8 and property 6: many values at one name, asked with the largest buffer.
		d := "many.example"
		c.delegation(t, c.admin, shop, "many", d, "")
		for i := range maxValues + 4 {
			c.record(t, c.admin, shop, c.target(shop, d), key(100+i))
			time.Sleep(20 * time.Millisecond) // distinct creation times: the newest are kept
		}
		eventually(t, "the newest values served, capped", func() (bool, string) {
			got := c.txt(t, c.target(shop, d))
			return len(got) == maxValues && got[0] == key(104), fmt.Sprint(got)
		})
		if !strings.Contains(c.coredns.Logs(), "max_values") {
			t.Errorf("the cap is not logged:\n%s", c.coredns.Tail(20))
		}
		// Values as long as the CRD allows (a tenant writes ChallengeRecords directly): the
		// answer does not fit 1232 bytes. Asked with the largest buffer, it is truncated.
		big := "big.example"
		c.delegation(t, c.admin, shop, "big", big, "")
		for i := range maxValues {
			c.record(t, c.admin, shop, c.target(shop, big), fmt.Sprintf("%d", i)+strings.Repeat("A", 199))
		}
		eventually(t, "the big name's values over TCP, whole", func() (bool, string) {
			got := c.txt(t, c.target(shop, big))
			return len(got) == maxValues, fmt.Sprint(len(got))
		})
		m := new(dns.Msg)
		m.SetQuestion(c.target(shop, big), dns.TypeTXT)
		m.SetEdns0(65535, false)
		q, _ := m.Pack()
		for _, bufsize := range []uint16{65535, 4096, 512} {
			raw, r := c.udp(t, strings.ToUpper(c.target(shop, big)), dns.TypeTXT, bufsize)
			limit := min(int(bufsize), 1232)
			if !r.Truncated || len(raw) > limit {
				t.Errorf("over UDP with bufsize %d: TC=%v, %d bytes; want TC and at most %d", bufsize, r.Truncated, len(raw), limit)
			}
			if len(raw) > 25*len(q) {
				t.Errorf("bufsize %d: a %d-byte query got %d bytes: more than 25x", bufsize, len(q), len(raw))
			}
		}
	})

	t.Run("RFC2136", func(t *testing.T) {
		// Rule 13, through the controller as its service account with the RBAC of
		// deploy/components/rfc2136: mallory makes a TSIG key in blog (edit may create Secrets)
		// and writes at blog's own target, which works; at shop's target, or deleting shop's
		// value there, is REFUSED and changes nothing; naming the key as if it were shop's is
		// BADKEY.
		// Before RestartsKeepTargets (CoreDNS ends with it); the RBAC goes again at the end, so
		// that LeastPrivilege checks deploy/'s default rights.
		rbac := filepath.Join(root, "deploy", "components", "rfc2136", "rbac.yaml")
		c.kubectl(t, "apply", "-f", rbac)
		defer c.kubectl(t, "delete", "-f", rbac)
		material := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("mallory's key ", 3)))
		if err := c.mallory.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: blog, Name: "tsig"},
			Type: rfc2136.KeySecretType, Data: map[string][]byte{rfc2136.SecretKey: []byte(material)}}); err != nil {
			t.Fatal(err)
		}
		victimT := c.target(shop, "victim.example")
		c.delegation(t, c.admin, shop, "victim-example", "victim.example", "")
		c.record(t, c.admin, shop, victimT, key(20))
		ownT := c.target(blog, "rfc2136.example")
		c.delegation(t, c.mallory, blog, "rfc2136-example", "rfc2136.example", "")
		send := func(keyName, name, value string, remove bool) *dns.Msg {
			m := new(dns.Msg)
			m.SetUpdate(zone)
			rr := &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{value}}
			if remove {
				m.Remove([]dns.RR{rr})
			} else {
				m.Insert([]dns.RR{rr})
			}
			m.SetTsig(keyName, dns.HmacSHA256, 300, time.Now().Unix())
			cl := &dns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{keyName: material}}
			r, _, err := cl.Exchange(m, c.rfc2136)
			if r == nil {
				t.Fatalf("UPDATE %s %s: %v", name, value, err)
			}
			return r
		}
		// The key cache's reflector lists Secrets again with a backoff of up to 30 s after the
		// denials before the RBAC was applied: give it longer than eventually's 30 s.
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
			r := send("tsig.blog.", ownT, key(21), false)
			if r.Rcode == dns.RcodeSuccess {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("blog's key never wrote at blog's own target: %s", dns.RcodeToString[r.Rcode])
			}
		}
		eventually(t, "blog's value served at blog's target", func() (bool, string) {
			got := c.txt(t, ownT)
			return slices.Equal(got, []string{key(21)}), fmt.Sprint(got)
		})
		for _, tc := range []struct {
			what, keyName, value string
			remove               bool
			rcode                int
		}{
			{"add at shop's target", "tsig.blog.", key(22), false, dns.RcodeRefused},
			{"delete shop's value", "tsig.blog.", key(20), true, dns.RcodeRefused},
			{"blog's key named as shop's", "tsig.shop.", key(22), false, dns.RcodeNotAuth},
		} {
			if r := send(tc.keyName, victimT, tc.value, tc.remove); r.Rcode != tc.rcode {
				t.Errorf("%s: %s, want %s", tc.what, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
		}
		c.settle(t, "the UPDATEs")
		if got := c.txt(t, victimT); !slices.Equal(got, []string{key(20)}) {
			t.Errorf("shop's target serves %v, want only shop's %q", got, key(20))
		}
		var recs v1alpha1.ChallengeRecordList
		if err := c.admin.List(ctx, &recs, client.InNamespace(blog), client.MatchingLabels{rfc2136.KeyLabel: "tsig"}); err != nil {
			t.Fatal(err)
		}
		if len(recs.Items) != 1 || recs.Items[0].Spec.FQDN != ownT {
			t.Errorf("blog's RFC 2136 records: %d, want the one at its own target", len(recs.Items))
		}
	})

	// Before RestartsKeepTargets: the CoreDNS it restarts ends with that subtest.
	t.Run("PersistTargetOfAnotherNamespace", func(t *testing.T) {
		// Rule 12: shop's dns-persist-01 authorization, written by the controller at shop's
		// persist target. blog writes its own value there, asks for an authorization of its
		// own for the domain, and names shop's persist target as spec.target: shop's persist
		// target still serves shop's value alone.
		const domain = "persist.example"
		pt, err := c.targetKey.PersistTarget(v1alpha1.TargetClaim{Namespace: shop, Domain: domain}, zone)
		if err != nil {
			t.Fatal(err)
		}
		shopValue := "letsencrypt.org; accounturi=https://ca.example/acme/acct/1"
		d := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "persist-example"}, Spec: v1alpha1.DelegationSpec{
			Domain: domain, PersistentAuthorization: &v1alpha1.PersistentAuthorization{IssuerDomainNames: []string{"letsencrypt.org"}, AccountURI: "https://ca.example/acme/acct/1"},
		}}
		if err := c.admin.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		eventually(t, "shop's authorization served at its persist target", func() (bool, string) {
			got := c.txt(t, pt)
			return slices.Equal(got, []string{shopValue}), fmt.Sprint(got)
		})
		evil := "letsencrypt.org; accounturi=https://ca.example/acme/acct/666"
		c.record(t, c.mallory, blog, pt, evil)
		own := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: blog, Name: "persist-example"}, Spec: v1alpha1.DelegationSpec{
			Domain: domain, PersistentAuthorization: &v1alpha1.PersistentAuthorization{IssuerDomainNames: []string{"letsencrypt.org"}, AccountURI: "https://ca.example/acme/acct/666"},
		}}
		if err := c.mallory.Create(ctx, own); err != nil {
			t.Fatal(err)
		}
		pinned := &v1alpha1.Delegation{ObjectMeta: metav1.ObjectMeta{Namespace: blog, Name: "persist-pinned"}, Spec: v1alpha1.DelegationSpec{
			Domain: domain, Target: pt, PersistentAuthorization: &v1alpha1.PersistentAuthorization{IssuerDomainNames: []string{"letsencrypt.org"}, AccountURI: "https://ca.example/acme/acct/666"},
		}}
		if err := c.mallory.Create(ctx, pinned); err != nil {
			t.Fatal(err)
		}
		blogPT, _ := c.targetKey.PersistTarget(v1alpha1.TargetClaim{Namespace: blog, Domain: domain}, zone)
		eventually(t, "blog's own authorization served at blog's own persist target", func() (bool, string) {
			got := c.txt(t, blogPT)
			return slices.Equal(got, []string{evil}), fmt.Sprint(got)
		})
		c.settle(t, "blog's record and Delegations")
		if got := c.txt(t, pt); !slices.Equal(got, []string{shopValue}) {
			t.Errorf("shop's persist target serves %v, want only shop's %q", got, shopValue)
		}
	})

	t.Run("RestartsKeepTargets", func(t *testing.T) {
		// Property 2: CoreDNS and the controller restart; every target serves what it did.
		before := map[string][]string{shopT: c.txt(t, shopT), c.legacy: c.txt(t, c.legacy)}
		c.coredns.Stop()
		c.startCoreDNS(t)
		for name, want := range before {
			if got := c.txt(t, name); !slices.Equal(got, want) {
				t.Errorf("after a restart %s serves %v, want %v", name, got, want)
			}
		}
	})

	t.Run("LeastPrivilege", func(t *testing.T) {
		// Property 8, asked of the real authorizer with deploy/'s RBAC.
		for _, tc := range []struct {
			user, verb, ns, group, resource string
			allowed                         bool
		}{
			{corednsSA, "list", "", "acmezone.io", "challengerecords", true},
			{corednsSA, "watch", "", "acmezone.io", "delegations", true},
			{corednsSA, "list", "acmezone", "", "configmaps", true},
			{corednsSA, "list", blog, "", "configmaps", false},
			{corednsSA, "list", "", "", "configmaps", false},
			{corednsSA, "get", "acmezone", "", "secrets", false},
			{corednsSA, "create", shop, "acmezone.io", "challengerecords", false},
			{controllerSA, "create", "acmezone", "", "secrets", true},
			{controllerSA, "list", blog, "", "secrets", false},
			{controllerSA, "watch", "", "", "secrets", false},
			{attacker, "create", blog, "acmezone.io", "delegations", true},
			{attacker, "list", "acmezone", "", "configmaps", false},
			{attacker, "create", "", "solver.acmezone.io", "acmezone", false},
		} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: tc.user, Groups: groupsOf(tc.user),
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: tc.verb, Namespace: tc.ns, Group: tc.group, Resource: tc.resource},
			}}
			if err := c.admin.Create(ctx, sar); err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed != tc.allowed {
				t.Errorf("%s %s %s.%s in %q: allowed %v, want %v", tc.user, tc.verb, tc.resource, tc.group, tc.ns, sar.Status.Allowed, tc.allowed)
			}
		}
	})

	t.Run("ACMEDNSForgedHeader", func(t *testing.T) {
		// Property 9: a client that is not a configured proxy cannot choose the address its
		// failures count under by sending X-Forwarded-For, nor by changing its source port.
		got429 := false
		for i := range 30 {
			req, _ := http.NewRequest(http.MethodPost, c.acmeDNS+"/update", strings.NewReader(`{}`))
			req.Header.Set("X-Api-User", "00000000-0000-4000-8000-000000000000")
			req.Header.Set("X-Api-Key", strings.Repeat("a", 40))
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))
			cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // a new source port each time
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				got429 = true
				break
			}
		}
		if !got429 {
			t.Error("30 failed /update calls with forged X-Forwarded-For from new ports were never rate limited")
		}
	})
}

// udp sends one query over UDP and returns the datagram as received, and its message.
func (c *cluster) udp(t *testing.T, name string, qtype uint16, bufsize uint16) ([]byte, *dns.Msg) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(bufsize, false)
	_, raw, r, err := dnstest.ExchangeUDP(c.dnsAddr, m, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return raw, r
}

// providerBase are the records that delegate the zone.
func providerBase() []string {
	return []string{"ns.example.com. 300 IN A 127.0.53.3", "acme.example.com. 300 IN NS ns.example.com."}
}

// configMap writes a labelled ConfigMap of zone data as cl.
func (c *cluster) configMap(t *testing.T, cl client.Client, ns, name, data string) {
	t.Helper()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"acmezone.io/zone": strings.TrimSuffix(zone, ".")}},
		Data:       map[string]string{"records": data},
	}
	if err := cl.Create(context.Background(), cm); err != nil {
		t.Fatalf("create ConfigMap %s/%s: %v", ns, name, err)
	}
}

// waitCondition waits until the Delegation's condition has status.
func (c *cluster) waitCondition(t *testing.T, ns, name, typ, status string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s/%s %s=%s", ns, name, typ, status), func() (bool, string) {
		var d v1alpha1.Delegation
		if err := c.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
			return false, err.Error()
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == typ {
				return string(cond.Status) == status, cond.Message
			}
		}
		return false, "no condition"
	})
}

// noDisclosure checks that nothing in namespace ns (statuses, Events) names victim or its target.
func (c *cluster) noDisclosure(t *testing.T, ns, victim, target string) {
	t.Helper()
	ctx := context.Background()
	var ds v1alpha1.DelegationList
	if err := c.admin.List(ctx, &ds, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds.Items {
		for _, cond := range d.Status.Conditions {
			if strings.Contains(cond.Message, victim) || strings.Contains(cond.Message, strings.TrimSuffix(target, ".")) {
				t.Errorf("Delegation %s/%s %s discloses %s: %q", d.Namespace, d.Name, cond.Type, victim, cond.Message)
			}
		}
	}
	var evs eventsv1.EventList
	if err := c.admin.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if strings.Contains(e.Note, victim) || strings.Contains(e.Note, strings.TrimSuffix(target, ".")) {
			t.Errorf("Event %s in %s discloses %s: %q", e.Reason, ns, victim, e.Note)
		}
	}
}

// challenge is a cert-manager DNS-01 Challenge for acmezone's webhook.
func challenge(ns, name, domain, issuerKind string) *cmacme.Challenge {
	return &cmacme.Challenge{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmacme.ChallengeSpec{
			URL: "https://ca.test/chal/1", AuthorizationURL: "https://ca.test/authz/1",
			DNSName: domain, Type: cmacme.ACMEChallengeTypeDNS01, Token: "token", Key: key(4),
			Solver: cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{
				Webhook: &cmacme.ACMEIssuerDNS01ProviderWebhook{GroupName: "solver.acmezone.io", SolverName: "acmezone"},
			}},
			IssuerRef: cmmeta.IssuerReference{Name: "acmezone", Kind: issuerKind, Group: "cert-manager.io"},
		},
	}
}

func payload(action whapi.ChallengeAction, ns, domain, value string) []byte {
	body, _ := json.Marshal(&whapi.ChallengePayload{
		TypeMeta: metav1.TypeMeta{APIVersion: "webhook.acme.cert-manager.io/v1alpha1", Kind: "ChallengePayload"},
		Request: &whapi.ChallengeRequest{
			UID: types.UID("uid-" + value[30:]), Action: action, Type: "dns-01", DNSName: domain, Key: value,
			ResourceNamespace: ns, ResolvedFQDN: "_acme-challenge." + domain + ".", ResolvedZone: domain + ".",
		},
	})
	return body
}

// solve calls the solver through the aggregator, as cert-manager (cluster-admin here) does.
func (c *cluster) solve(t *testing.T, action whapi.ChallengeAction, ns, domain, value string) *whapi.ChallengeResponse {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(c.cp.Config)
	raw, err := cs.CoreV1().RESTClient().Post().AbsPath("/apis/solver.acmezone.io/v1alpha1/acmezone").
		SetHeader("Content-Type", "application/json").Body(payload(action, ns, domain, value)).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("POST ChallengePayload: %v\n%s", err, raw)
	}
	var resp whapi.ChallengePayload
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&resp); err != nil || resp.Response == nil {
		t.Fatalf("response %s: %v", raw, err)
	}
	return resp.Response
}

func impersonate(cfg *rest.Config, user string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groupsOf(user)}
	return c
}

func groupsOf(user string) []string {
	if parts := strings.Split(user, ":"); len(parts) == 4 && parts[0] == "system" && parts[1] == "serviceaccount" {
		return []string{"system:serviceaccounts", "system:serviceaccounts:" + parts[2], "system:authenticated"}
	}
	return []string{"system:authenticated"}
}
