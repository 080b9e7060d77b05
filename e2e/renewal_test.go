// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
)

// metricsAddr is where TestSeedFlow's controller serves its metrics.
var metricsAddr = stack.WebhookIP + ":9402"

// renewalRisk: after the seed's certificate is issued, the CNAME is deleted at the DNS
// provider. Within minutes the Delegation is no longer Served (its canary names the missing
// CNAME), the Certificate gets a Warning Event naming the record to restore, and the risk
// metric is set. The CNAME restored, everything clears. (The renewal that follows in
// TestSeedFlow then succeeds.)
func renewalRisk(t *testing.T, s *stack.Stack, crt *cmapi.Certificate, d *v1alpha1.Delegation, target string) {
	ctx := context.Background()
	c := s.Client
	served := func(status metav1.ConditionStatus, what string) {
		t.Helper()
		eventually(t, 3*time.Minute, what, func() (bool, string) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
				return false, err.Error()
			}
			cond := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionServed)
			if cond == nil {
				return false, "no Served condition"
			}
			return cond.Status == status, fmt.Sprintf("%s %s: %s", cond.Status, cond.Reason, cond.Message)
		})
	}
	risk := func() string {
		return metric(t, fmt.Sprintf(`acmezone_certificate_renewal_at_risk{certificate=%q,delegation=%q,delegation_namespace=%q,namespace=%q}`,
			crt.Name, d.Name, d.Namespace, crt.Namespace))
	}
	served(metav1.ConditionTrue, "the Delegation Served: its canary came back")
	if got := risk(); got != "0" {
		t.Errorf("renewal risk %q while served, want 0", got)
	}

	cname := "_acme-challenge IN CNAME " + target
	restore := "Restore: _acme-challenge.example.com CNAME " + strings.TrimSuffix(target, ".")
	start := time.Now()
	if err := s.Provider.RemoveRecord(cname); err != nil {
		t.Fatal(err)
	}
	served(metav1.ConditionFalse, "the Delegation no longer Served after the CNAME's deletion")
	t.Logf("not Served %s after the CNAME's deletion: %s", time.Since(start).Round(time.Second), meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionServed).Message)
	if r := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionServed).Reason; r != "CNAMEMissing" {
		t.Errorf("Served reason %s, want CNAMEMissing", r)
	}
	eventually(t, time.Minute, "a Warning Event on the Certificate naming the CNAME to restore", func() (bool, string) {
		notes, err := s.Events(ctx, crt)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range notes {
			if strings.HasPrefix(n, "Warning") && strings.Contains(n, "RenewalAtRisk") && strings.Contains(n, restore) {
				t.Logf("the user sees: %s", n)
				return true, ""
			}
		}
		return false, strings.Join(notes, "; ")
	})
	eventually(t, time.Minute, "acmezone_certificate_renewal_at_risk 1", func() (bool, string) {
		got := risk()
		return got == "1", got
	})
	if !d.Status.Certificates[0].AtRisk {
		t.Errorf("status.certificates %+v: want the Certificate at risk", d.Status.Certificates)
	}

	if err := s.Provider.AddRecord(cname); err != nil {
		t.Fatal(err)
	}
	served(metav1.ConditionTrue, "Served again once the CNAME is back")
	eventually(t, time.Minute, "the renewal risk cleared", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return false, err.Error()
		}
		got := risk()
		return got == "0" && len(d.Status.Certificates) == 1 && !d.Status.Certificates[0].AtRisk, fmt.Sprintf("metric %s, status %+v", got, d.Status.Certificates)
	})
}

// metric is the value of the series named exactly by series (name and labels, in the order
// Prometheus writes them) on the controller's metrics endpoint, "" when it is absent.
func metric(t *testing.T, series string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(string(body))
	if m == nil {
		return ""
	}
	return m[1]
}
