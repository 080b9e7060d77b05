// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/acmezone/acmezone/internal/kubetest"
)

// The webhook solver's Service on loopback. Endpoints and EndpointSlices reject loopback
// addresses and the aggregator refuses ExternalName Services, but kube-apiserver accepts a
// service range inside 127.0.0.0/8: the aggregator then dials the cluster IP, where the webhook
// listens. The EndpointSlice with a documentation address only satisfies the availability
// check; nothing is ever sent to it.
const (
	ServiceCIDR       = "127.100.0.0/24"
	WebhookIP         = "127.100.0.10"
	unusedEndpointIP  = "192.0.2.1"
	webhookNamespace  = "acmezone"
	webhookService    = "acmezone-controller"
	frontProxyClient  = "front-proxy-client"
	solverAPIVersion  = "v1alpha1"
	solverAPIGroup    = "solver.acmezone.io"
	webhookListenPort = 443
)

// ControlPlane is etcd and kube-apiserver with the aggregation layer set up for the webhook.
type ControlPlane struct {
	Env        *kubetest.Env
	Config     *rest.Config
	Kubeconfig string
	// LogPath is kube-apiserver's log.
	LogPath string
	// WebhookIP is the webhook Service's cluster IP, where the controller listens.
	WebhookIP string
	// Resolver is the controller's --resolver, HOST:PORT; ResolverIP:53 (the stack's unbound)
	// unless set before StartController.
	Resolver string
	// NameServer is the controller's --nameserver, NAME=ADDRESS; ns.example.com at AcmezoneIP
	// by default.
	NameServer string
	// WebhookCert and WebhookKey are the solver's serving certificate files.
	WebhookCert, WebhookKey string
	webhookCA               []byte
}

// StartControlPlane starts etcd and kube-apiserver with the CRDs in crdDirs, a service range in
// loopback, and the front-proxy client certificate and request-header CA that delegated
// authentication of aggregated requests needs.
func StartControlPlane(dir string, crdDirs ...string) (*ControlPlane, error) {
	return StartControlPlaneAt(dir, WebhookIP, crdDirs...)
}

// StartControlPlaneAt is StartControlPlane with the webhook at webhookIP (in ServiceCIDR), so
// that two control planes can run at once.
func StartControlPlaneAt(dir, webhookIP string, crdDirs ...string) (*ControlPlane, error) {
	proxyCA, err := NewCA("front-proxy-ca")
	if err != nil {
		return nil, err
	}
	proxyClient, err := newLeaf(proxyCA, frontProxyClient, true, nil, nil)
	if err != nil {
		return nil, err
	}
	proxyCAPath, _, err := proxyCA.Write(dir, "front-proxy-ca")
	if err != nil {
		return nil, err
	}
	proxyCert, proxyKey, err := proxyClient.Write(dir, "front-proxy-client")
	if err != nil {
		return nil, err
	}
	env, err := kubetest.StartEnv(kubetest.Options{
		CRDDirs:     crdDirs,
		Dir:         dir,
		StopTimeout: 10 * time.Second,
		APIServerArgs: map[string]string{
			"service-cluster-ip-range":           ServiceCIDR,
			"requestheader-client-ca-file":       proxyCAPath,
			"requestheader-allowed-names":        frontProxyClient,
			"requestheader-username-headers":     "X-Remote-User",
			"requestheader-group-headers":        "X-Remote-Group",
			"requestheader-extra-headers-prefix": "X-Remote-Extra-",
			"proxy-client-cert-file":             proxyCert,
			"proxy-client-key-file":              proxyKey,
		},
	})
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{Env: env, Config: env.Config, Kubeconfig: env.Kubeconfig, LogPath: env.LogPath, WebhookIP: webhookIP}
	webhookCA, err := NewCA("acmezone-webhook-ca")
	if err != nil {
		return nil, err
	}
	serving, err := newLeaf(webhookCA, webhookService, false,
		[]string{webhookService + "." + webhookNamespace + ".svc"}, []net.IP{net.ParseIP(webhookIP)})
	if err != nil {
		return nil, err
	}
	if cp.WebhookCert, cp.WebhookKey, err = serving.Write(dir, "webhook"); err != nil {
		return nil, err
	}
	cp.webhookCA = webhookCA.CertPEM
	return cp, nil
}

// DialedPlaceholder reports whether kube-apiserver's log mentions the placeholder endpoint
// address: the aggregator logs the address of every proxy or availability dial that fails, so
// a dial to the never-listening 192.0.2.1 would show up there.
func (cp *ControlPlane) DialedPlaceholder() (bool, error) {
	b, err := os.ReadFile(cp.LogPath)
	if err != nil {
		return false, err
	}
	return strings.Contains(string(b), unusedEndpointIP), nil
}

// Stop stops kube-apiserver and etcd.
func (cp *ControlPlane) Stop() { _ = cp.Env.Stop() }

// RegisterWebhook creates the solver's Service (cluster IP WebhookIP), its placeholder
// EndpointSlice and the APIService, and waits until the aggregator reports it Available.
func (cp *ControlPlane) RegisterWebhook(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: webhookNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", webhookNamespace, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: webhookNamespace, Name: webhookService},
		Spec: corev1.ServiceSpec{
			ClusterIP: cp.WebhookIP,
			Ports:     []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(webhookListenPort), Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := cs.CoreV1().Services(webhookNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Service %s with cluster IP %s: %w", webhookService, cp.WebhookIP, err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: webhookNamespace, Name: webhookService + "-placeholder",
			Labels: map[string]string{discoveryv1.LabelServiceName: webhookService}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{unusedEndpointIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](webhookListenPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(webhookNamespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create EndpointSlice: %w", err)
	}
	// The APIService as unstructured: its typed client would pull kube-aggregator into go.mod
	// for one object.
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	apiservices := dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	name := solverAPIVersion + "." + solverAPIGroup
	apisvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"group":                solverAPIGroup,
			"version":              solverAPIVersion,
			"service":              map[string]any{"namespace": webhookNamespace, "name": webhookService, "port": int64(443)},
			"caBundle":             base64.StdEncoding.EncodeToString(cp.webhookCA),
			"groupPriorityMinimum": int64(1000),
			"versionPriority":      int64(15),
		},
	}}
	if _, err := apiservices.Create(ctx, apisvc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create APIService: %w", err)
	}
	var last string
	for {
		got, err := apiservices.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Available" {
					if m["status"] == "True" {
						return nil
					}
					last = fmt.Sprintf("%v: %v", m["reason"], m["message"])
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("APIService %s is not Available: %s", name, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// The acme-dns-compatible API of acmezone-controller: plain HTTP on loopback, which is what
// cert-manager's acmeDNS solver and the tests talk to.
// RecordMaxAge is the controller's --acme-dns-record-max-age: a record no live Challenge
// needs is deleted once it is this old (the default is an hour).
const (
	ACMEDNSAddr  = "127.0.53.4:8053"
	ACMEDNSURL   = "http://" + ACMEDNSAddr
	RecordMaxAge = 20 * time.Second
)

// StartController runs bin/acmezone-controller: the webhook on WebhookIP:443, the acme-dns API
// on ACMEDNSAddr, the reconcilers against the control plane, resolving through the stack's
// resolver, with the target key in keyFile ("": the extra arguments name the key).
func (cp *ControlPlane) StartController(dir, binary, keyFile string, extra ...string) (*Process, error) {
	args := []string{
		"--bind-address=" + cp.WebhookIP,
		fmt.Sprintf("--secure-port=%d", webhookListenPort),
		"--tls-cert-file=" + cp.WebhookCert,
		"--tls-private-key-file=" + cp.WebhookKey,
		"--kubeconfig=" + cp.Kubeconfig,
		"--authentication-kubeconfig=" + cp.Kubeconfig,
		"--authorization-kubeconfig=" + cp.Kubeconfig,
		"--zone=acme.example.com",
		"--nameserver=" + cmp.Or(cp.NameServer, "ns.example.com="+AcmezoneIP),
		"--resolver=" + cmp.Or(cp.Resolver, ResolverIP+":53"),
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		// Registration stays closed: accounts come from annotated Delegations, whose Secrets
		// name this URL as server_url. Records written through /update outlive their
		// Challenge by at most RecordMaxAge, so a test sees them go.
		"--acme-dns-listen=" + ACMEDNSAddr,
		"--acme-dns-registration=closed",
		"--acme-dns-server-url=" + ACMEDNSURL,
		"--acme-dns-record-max-age=" + RecordMaxAge.String(),
		// The canary writes test values at Verified targets: off where a test counts the values
		// at a target; the canary's own tests turn it on (a later flag wins).
		"--canary-interval=0",
	}
	if keyFile != "" {
		args = append(args, "--target-key-file="+keyFile)
	}
	return Start(dir, "acmezone-controller", binary, append(args, extra...)...)
}

// WaitACMEDNS waits until the acme-dns API answers GET /health with 200: its caches are synced
// and it reaches the API server.
func WaitACMEDNS(ctx context.Context, p *Process) error {
	c := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, err, tail(p.Logs(), 40))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ACMEDNSURL+"/health", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the acme-dns API at %s is not healthy: %s\n%s", ACMEDNSURL, last, tail(p.Logs(), 40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
