// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build cluster

package cluster_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/miekg/dns"
	authnv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/cluster"
	"github.com/acmezone/acmezone/e2e/stack"
)

// podsDeletedMidChallenge renews the wildcard certificate and, once the webhook has written the
// challenge's record, deletes a CoreDNS pod that serves it and the controller's leader. The
// certificate is still issued, and no ChallengeRecord is left behind.
func (e *env) podsDeletedMidChallenge(t *testing.T) {
	ctx := context.Background()
	c := e.client
	if wildcard == nil {
		t.Fatal("the webhook flow did not issue the wildcard certificate")
	}
	old := e.serial(t, "shop", "wildcard-tls")
	renewed := time.Now().Truncate(time.Second)
	e.renew(t, wildcard)
	// cert-manager's Challenge, presented (the webhook wrote its record) and not yet valid.
	var value, uid string
	eventually(t, 3*time.Minute, "a new Challenge presented and pending", func() (bool, string) {
		var chs cmacme.ChallengeList
		if err := c.List(ctx, &chs, client.InNamespace("shop")); err != nil {
			return false, err.Error()
		}
		for _, ch := range chs.Items {
			if ch.CreationTimestamp.Time.After(renewed.Add(-time.Second)) && ch.Status.Presented && ch.Status.State != cmacme.Valid {
				value, uid = ch.Spec.Key, string(ch.UID)
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d Challenges, none presented since the renewal", len(chs.Items))
	})
	// The webhook's record is tied to its Challenge (what the orphan reaper and adoption go by),
	// although cert-manager's request does not name the Challenge.
	var recs v1alpha1.ChallengeRecordList
	if err := c.List(ctx, &recs, client.MatchingLabels{"acmezone.io/challenge-uid": uid}); err != nil {
		t.Fatal(err)
	}
	if len(recs.Items) != 1 || recs.Items[0].Spec.Value != value {
		t.Errorf("ChallengeRecords labelled with the Challenge's UID %s: %d, want the one with its key", uid, len(recs.Items))
	}
	var victim string
	eventually(t, time.Minute, "a CoreDNS pod answers the challenge", func() (bool, string) {
		for _, p := range e.pods(t, "acmezone", "acmezone-coredns") {
			vals, err := stack.TXT(p.Status.PodIP+":53", target, "udp")
			if err == nil && slices.Contains(vals, value) {
				victim = p.Name
				return true, ""
			}
		}
		return false, "no pod serves it yet"
	})
	leader := e.leaderPod(t)
	before := e.podNames(t, "acmezone", "acmezone-coredns")
	for _, name := range []string{victim, leader} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: name}}
		if err := c.Delete(ctx, pod); err != nil {
			t.Fatal(err)
		}
		t.Logf("deleted pod %s", name)
	}
	// The victim's replacement serves the record from its first list of the API, as the victim
	// did: nothing of it lived in the pod. The record is still there: cert-manager waits 60 s
	// after its self-check passes before Pebble validates, and only then cleans up.
	eventually(t, 2*time.Minute, "the victim's replacement, ready, answers the challenge", func() (bool, string) {
		for _, p := range e.pods(t, "acmezone", "acmezone-coredns") {
			if slices.Contains(before, p.Name) || !podReady(&p) {
				continue
			}
			vals, err := stack.TXT(p.Status.PodIP+":53", target, "udp")
			return err == nil && slices.Contains(vals, value), fmt.Sprintf("%s, ready, answers %v %v", p.Name, vals, err)
		}
		return false, "no new CoreDNS pod ready yet"
	})
	eventually(t, 8*time.Minute, "certificate renewed", func() (bool, string) {
		s := e.serial(t, "shop", "wildcard-tls")
		return s != "" && s != old, "serial " + s
	})
	e.checkSecret(t, "shop", "wildcard-tls", "example.com", "*.example.com")
	e.noRecordsLeft(t)
	for _, d := range []string{"acmezone-controller", "acmezone-coredns"} {
		if err := e.c.WaitDeployment(ctx, "acmezone", d, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if l := e.leaderPod(t); l == leader {
		t.Errorf("the deleted pod %s still holds the leader lease", leader)
	}
}

// rollUnderQueries rolls the CoreDNS Deployment while a bounded query loop asks the load
// balancer's address for a served TXT record: no query may fail (readiness, lameduck, the
// rolling update's surge).
func (e *env) rollUnderQueries(t *testing.T) {
	ctx := context.Background()
	target, probe := e.probeRecord(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent int
	var failures []string
	wg.Go(func() {
		// At most 4,000 queries over at most 4 minutes, 20 a second.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(4 * time.Minute)
		for i := 0; i < 4000 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			vals, err := stack.TXT(cluster.LoadBalancerIP+":53", target, "udp")
			mu.Lock()
			sent++
			if err == nil && !slices.Contains(vals, probe) {
				err = fmt.Errorf("answer %v without the record", vals)
			}
			if err != nil {
				failures = append(failures, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
			mu.Unlock()
		}
	})
	time.Sleep(2 * time.Second)
	before := e.podNames(t, "acmezone", "acmezone-coredns")
	if _, err := e.c.Kubectl(ctx, "-n", "acmezone", "rollout", "restart", "deployment/acmezone-coredns"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.WaitDeployment(ctx, "acmezone", "acmezone-coredns", 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	// The old pods keep answering through their lameduck (5 s) after they leave the endpoints.
	eventually(t, time.Minute, "the old CoreDNS pods gone", func() (bool, string) {
		now := e.podNames(t, "acmezone", "acmezone-coredns")
		for _, n := range before {
			if slices.Contains(now, n) {
				return false, n + " still there"
			}
		}
		return true, ""
	})
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d queries during the roll, %d failed", sent, len(failures))
	if sent < 100 {
		t.Errorf("only %d queries were sent: the loop did not cover the roll", sent)
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d queries failed while CoreDNS rolled:\n%s", len(failures), sent, strings.Join(failures[:min(len(failures), 20)], "\n"))
	}
}

// apiServerOutage stops kube-apiserver for 60 s: every CoreDNS replica keeps answering from the
// records it has, and says (coredns_acmezone_stale_reflectors) that they may be stale.
func (e *env) apiServerOutage(t *testing.T) {
	ctx := context.Background()
	target, probe := e.probeRecord(t)
	pods := e.pods(t, "acmezone", "acmezone-coredns")
	for _, p := range pods {
		if v := staleReflectors(t, p.Status.PodIP); v != 0 {
			t.Fatalf("pod %s reports %v stale reflectors before the outage", p.Name, v)
		}
	}
	e.c.Stop("kube-apiserver")
	stopped := time.Now()
	t.Logf("kube-apiserver stopped")
	sawStale := map[string]bool{}
	answered := 0
	for time.Since(stopped) < 60*time.Second {
		for _, p := range pods {
			vals, err := stack.TXT(p.Status.PodIP+":53", target, "udp")
			if err != nil || !slices.Contains(vals, probe) {
				t.Errorf("%s after %s without kube-apiserver: %v %v", p.Name, time.Since(stopped).Round(time.Second), vals, err)
				continue
			}
			answered++
			if staleReflectors(t, p.Status.PodIP) > 0 {
				sawStale[p.Name] = true
			}
		}
		time.Sleep(2 * time.Second)
	}
	if err := e.c.Start(ctx, "kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver back after %s; %d answers from %d replicas meanwhile", time.Since(stopped).Round(time.Second), answered, len(pods))
	for _, p := range pods {
		if !sawStale[p.Name] {
			t.Errorf("pod %s never reported stale data while kube-apiserver was stopped", p.Name)
		}
	}
	// Fresh again takes a chain of retries, each backing off while kube-apiserver was gone:
	// kube-apiserver puts its address back into the kubernetes Service's endpoints (its lease
	// reconciler, every 10 s); kube-proxy's reflector, retrying in [30, 60) s by then, sees it and
	// lets the pods' traffic to the Service through again; each CoreDNS reflector, retrying in
	// [30, 60) s too (client-go's defaults, kept: they spare an API server that has just come
	// back), lists or watches again. At most about 10+60+60 s, and the machine may be loaded.
	back := time.Now()
	fresh := map[string]time.Duration{}
	var endpoints time.Duration
	for len(fresh) < len(pods) && time.Since(back) < 4*time.Minute {
		if endpoints == 0 {
			if out, err := e.c.Kubectl(ctx, "get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes",
				"-o", "jsonpath={.items[*].endpoints[*].addresses[*]}"); err == nil && strings.TrimSpace(out) != "" {
				endpoints = time.Since(back)
			}
		}
		for _, p := range pods {
			if _, ok := fresh[p.Name]; !ok && staleReflectors(t, p.Status.PodIP) == 0 {
				fresh[p.Name] = time.Since(back)
			}
		}
		time.Sleep(time.Second)
	}
	t.Logf("after kube-apiserver's return: the kubernetes Service's endpoints back after %s; replicas fresh: %v", endpoints.Round(time.Second), fresh)
	for _, p := range pods {
		if _, ok := fresh[p.Name]; !ok {
			t.Errorf("pod %s still reports stale reflectors %s after kube-apiserver's return (the Service's endpoints back after %s)", p.Name, time.Since(back).Round(time.Second), endpoints.Round(time.Second))
		}
	}
	for _, d := range []string{"acmezone-controller", "acmezone-coredns"} {
		if err := e.c.WaitDeployment(ctx, "acmezone", d, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}

// etcdKilled kills etcd (SIGKILL) and starts it again on the same data: every acmezone object
// is still there, and served.
func (e *env) etcdKilled(t *testing.T) {
	ctx := context.Background()
	target, probe := e.probeRecord(t)
	before := e.objects(t)
	if err := e.c.Kill("etcd"); err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd killed; %d acmezone objects before", len(before))
	time.Sleep(5 * time.Second)
	if err := e.c.Start(ctx, "etcd"); err != nil {
		t.Fatal(err)
	}
	if err := e.retry(ctx, 2*time.Minute, func() error {
		_, err := e.c.Kubectl(ctx, "get", "--raw", "/readyz")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// kube-apiserver's watch cache still holds every object (and serves lists from it): start
	// it again, so that what is read next comes from etcd's data.
	e.c.Stop("kube-apiserver")
	if err := e.c.Start(ctx, "kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	after := e.objects(t)
	for k, rv := range before {
		if _, ok := after[k]; !ok {
			t.Errorf("%s (resourceVersion %s) is gone after etcd's restart", k, rv)
		}
	}
	eventually(t, time.Minute, "the probe record served at the load balancer's address", func() (bool, string) {
		vals, err := stack.TXT(cluster.LoadBalancerIP+":53", target, "udp")
		return err == nil && slices.Contains(vals, probe), fmt.Sprint(vals, err)
	})
}

// metricsAndMemory scrapes both Deployments' metrics from their pods (the leader's reconcilers
// too) and checks each pod's resident memory against its container's request and limit.
func (e *env) metricsAndMemory(t *testing.T) {
	ctx := context.Background()
	for _, d := range []string{"acmezone-controller", "acmezone-coredns"} {
		if err := e.c.WaitDeployment(ctx, "acmezone", d, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// acmezone-controller serves its metrics over HTTPS to whom the API server authorizes:
	// a service account bound to the ClusterRole acmezone:metrics-reader, as Prometheus's is.
	token := e.metricsToken(t)
	for _, d := range []struct {
		name, base, token string
		metrics           []string
	}{
		{"acmezone-coredns", "http://%s:9153", "", []string{"coredns_acmezone_records", "coredns_acmezone_stale_reflectors", "coredns_acmezone_stale_seconds", "coredns_dns_requests_total"}},
		{"acmezone-controller", "https://%s:9402", token, []string{"rest_client_requests_total"}},
	} {
		for _, p := range e.pods(t, "acmezone", d.name) {
			if d.name == "acmezone-coredns" {
				// One query of the pod's own, so that coredns_dns_requests_total exists also
				// when this stage runs alone (the answer does not matter).
				_, _ = stack.TXT(p.Status.PodIP+":53", "metrics-probe."+zone, "udp")
			}
			// A controller that lost its lease while kube-apiserver or etcd was gone restarts
			// (controller-runtime exits then): give it the time its readiness probe takes.
			var m map[string]float64
			if err := e.retry(ctx, time.Minute, func() (err error) {
				m, err = scrape(fmt.Sprintf(d.base, p.Status.PodIP), d.token)
				return err
			}); err != nil {
				t.Errorf("%s: %v", p.Name, err)
				continue
			}
			for _, name := range d.metrics {
				if _, ok := m[name]; !ok {
					t.Errorf("%s's metrics have no %s", p.Name, name)
				}
			}
			rss := m["process_resident_memory_bytes"]
			res := p.Spec.Containers[0].Resources
			req, lim := res.Requests.Memory().Value(), res.Limits.Memory().Value()
			t.Logf("%s: RSS %.1f MiB, request %d MiB, limit %d MiB", p.Name, rss/(1<<20), req>>20, lim>>20)
			if rss <= 0 {
				t.Errorf("%s reports no process_resident_memory_bytes", p.Name)
			}
			if float64(req) < rss {
				t.Errorf("%s uses %.1f MiB, more than its memory request of %d MiB", p.Name, rss/(1<<20), req>>20)
			}
			// GOMEMLIMIT from the Downward API: the runtime knows the container's limit.
			if got := m["go_gc_gomemlimit_bytes"]; got != float64(lim) {
				t.Errorf("%s: go_gc_gomemlimit_bytes %v, want the memory limit %d (GOMEMLIMIT from limits.memory)", p.Name, got, lim)
			}
			if float64(lim) < 2*rss {
				t.Errorf("%s's memory limit %d MiB leaves less than its RSS (%.1f MiB) again as headroom", p.Name, lim>>20, rss/(1<<20))
			}
		}
	}
	// The lease goes on naming a leader that lost it while kube-apiserver or etcd was gone, and
	// restarted, until the lease expires and a replica takes it: wait for a leader that leads.
	eventually(t, 2*time.Minute, "the leader's metrics have controller_runtime_reconcile_total", func() (bool, string) {
		leader, err := e.leader(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range e.pods(t, "acmezone", "acmezone-controller") {
			if p.Name == leader {
				m, err := scrape("https://"+p.Status.PodIP+":9402", token)
				if err != nil {
					return false, err.Error()
				}
				_, ok := m["controller_runtime_reconcile_total"]
				return ok, "the lease names " + leader + ", whose metrics have no controller_runtime_reconcile_total"
			}
		}
		return false, "the lease names " + leader + ", not a pod of acmezone-controller"
	})
}

// metricsToken returns a token of the service account acmezone/prometheus, bound to the
// ClusterRole acmezone:metrics-reader (deploy/controller/rbac.yaml) as a Prometheus would be.
func (e *env) metricsToken(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "acmezone", Name: "prometheus"}}
	if err := e.client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-acmezone-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "acmezone:metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "acmezone", Name: "prometheus"}},
	}
	if err := e.client.Create(ctx, crb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tr := &authnv1.TokenRequest{}
	if err := e.client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("a token for acmezone/prometheus: %v", err)
	}
	return tr.Status.Token
}

// probeName is the fault stages' ChallengeRecord.
const probeName = "probe"

// probeRecord makes sure the cluster-resource namespace holds a Delegation for
// probe.example.com and, at its target, a ChallengeRecord that nothing reaps (no Challenge
// label, no acme-dns account): what the fault stages query, so that each can run alone
// (go test -run 'TestCluster/CoreDNS_rolled'). It returns the target and the value.
func (e *env) probeRecord(t *testing.T) (target, value string) {
	t.Helper()
	ctx := context.Background()
	value = "acmezone-cluster-e2e-probe"
	d := &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: stack.ClusterResourceNamespace, Name: "probe.example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "probe.example.com"},
	}
	if err := e.client.Create(ctx, d); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the probe's Delegation has a target", func() (bool, string) {
		if err := e.client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return false, err.Error()
		}
		return d.Status.Target != "", "no target yet"
	})
	target = d.Status.Target
	rec := &v1alpha1.ChallengeRecord{
		ObjectMeta: metav1.ObjectMeta{Namespace: stack.ClusterResourceNamespace, Name: probeName},
		Spec:       v1alpha1.ChallengeRecordSpec{FQDN: target, Value: value},
	}
	if err := e.client.Create(ctx, rec); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the probe record served at the load balancer's address", func() (bool, string) {
		vals, err := stack.TXT(cluster.LoadBalancerIP+":53", target, "udp")
		return err == nil && slices.Contains(vals, value), fmt.Sprint(vals, err)
	})
	// The controller says so too, under deploy/'s RBAC (challengerecords/status).
	eventually(t, time.Minute, "the probe record's status Served=True", func() (bool, string) {
		if err := e.client.Get(ctx, client.ObjectKeyFromObject(rec), rec); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(rec.Status.Conditions, v1alpha1.ConditionServed)
		if c == nil {
			return false, "no Served condition"
		}
		return c.Status == metav1.ConditionTrue, c.Reason + ": " + c.Message
	})
	return target, value
}

// objects returns acmezone's objects (ChallengeRecords, Delegations) and the Secrets of its
// namespaces, by kind/namespace/name, with their resourceVersions.
func (e *env) objects(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	var recs v1alpha1.ChallengeRecordList
	var dels v1alpha1.DelegationList
	if err := e.client.List(ctx, &recs); err != nil {
		t.Fatal(err)
	}
	if err := e.client.List(ctx, &dels); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs.Items {
		if r.Labels[v1alpha1.CanaryLabel] == "" { // a canary's value lives for seconds
			out["ChallengeRecord/"+r.Namespace+"/"+r.Name] = r.ResourceVersion
		}
	}
	for _, d := range dels.Items {
		out["Delegation/"+d.Namespace+"/"+d.Name] = d.ResourceVersion
	}
	for _, ns := range []string{"acmezone", stack.ClusterResourceNamespace} {
		var secs corev1.SecretList
		if err := e.client.List(ctx, &secs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, s := range secs.Items {
			out["Secret/"+s.Namespace+"/"+s.Name] = s.ResourceVersion
		}
	}
	return out
}

func (e *env) renew(t *testing.T, crt *cmapi.Certificate) {
	t.Helper()
	ctx := context.Background()
	if err := e.client.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
		t.Fatal(err)
	}
	crt.Status.Conditions = append(crt.Status.Conditions, cmapi.CertificateCondition{
		Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue,
		Reason: "ManuallyTriggered", Message: "renewal requested by the cluster e2e test",
		LastTransitionTime: &metav1.Time{Time: time.Now()},
	})
	if err := e.client.Status().Update(ctx, crt); err != nil {
		t.Fatal(err)
	}
}

func (e *env) serial(t *testing.T, ns, name string) string {
	t.Helper()
	var sec corev1.Secret
	if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &sec); err != nil {
		return ""
	}
	if leaf := stack.Leaf(sec.Data[corev1.TLSCertKey]); leaf != nil {
		return leaf.SerialNumber.String()
	}
	return ""
}

// pods returns the running, ready pods of a Deployment (by its name label).
func (e *env) pods(t *testing.T, ns, name string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	if err := e.client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/name": name}); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no running pod of %s/%s", ns, name)
	}
	return out
}

func (e *env) podNames(t *testing.T, ns, name string) []string {
	t.Helper()
	var list corev1.PodList
	if err := e.client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/name": name}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out
}

// leaderPod returns the pod holding acmezone-controller's leader lease.
func (e *env) leaderPod(t *testing.T) string {
	t.Helper()
	pod, err := e.leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// podReady reports a pod's Ready condition.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// leader returns the pod that acmezone-controller's leader lease names.
func (e *env) leader(ctx context.Context) (string, error) {
	var lease coordinationv1.Lease
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "acmezone", Name: "acmezone-controller.acmezone.io"}, &lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		return "", errors.New("acmezone-controller's leader lease has no holder")
	}
	pod, _, _ := strings.Cut(*lease.Spec.HolderIdentity, "_")
	return pod, nil
}

// soa asks server for the zone's SOA over TCP and fails unless it answers authoritatively.
func soa(server string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(zone+".", dns.TypeSOA)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, server)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
		return nil, fmt.Errorf("%s SOA at %s: %s, authoritative %v, %d answers", zone, server, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
	}
	return r, nil
}

// scrape reads a Prometheus text endpoint at base/metrics (base: http://HOST:PORT or
// https://HOST:PORT, whose certificate is not checked) into metric name → the sum of its
// samples; token, when set, is sent as a bearer token.
func scrape(base, token string) (map[string]float64, error) {
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", base, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest = strings.TrimSpace(line[j+1:])
			}
			name = name[:i]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}

// staleReflectors is coredns_acmezone_stale_reflectors of the CoreDNS pod at ip, or -1 when it
// cannot be read.
func staleReflectors(t *testing.T, ip string) float64 {
	m, err := scrape("http://"+ip+":9153", "")
	if err != nil {
		t.Logf("scrape %s: %v", ip, err)
		return -1
	}
	v, ok := m["coredns_acmezone_stale_reflectors"]
	if !ok {
		t.Errorf("%s's metrics have no coredns_acmezone_stale_reflectors", ip)
		return -1
	}
	return v
}
