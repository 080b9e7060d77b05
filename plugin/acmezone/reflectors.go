// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

// The reflectors: one client-go reflector per kind (and per namespace with `namespaces`;
// labelled ConfigMaps per namespace of `configmaps`), started with the server and stopped with
// it. Each feeds the store directly through a sink, its ReflectorStore: no informer cache keeps
// a second copy of every object.
//
// What the sinks rely on from client-go's reflector:
//
//   - Replace delivers a whole (re)list of one kind in one namespace; the sink hands it to
//     the store as one change (store.replace), and the first Replace of every sink makes the
//     store live (goLive).
//   - After a Replace the watch starts at the list's resourceVersion, and a broken watch
//     resumes after the last event it delivered or relists: Add never comes for an object the
//     sink has delivered and not deleted since (store.addRecord looks for it only at its name).
//   - Update carries the new state only (an object may have moved); Delete the object's last
//     state, which says where the store holds it.
//   - Watch events carry typed objects (the API machinery's decoder); lists carry the items
//     decodeList made (lister.go), or ConfigMaps.
//   - A reflector calls Watch only after its list was delivered (Replace) and its list call
//     returned, holding the list no longer: once every lister has been asked to watch
//     (lister.listed), the initial lists are garbage.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// ZoneLabel marks a ConfigMap whose data holds zone-file lines for the zone named by its value
// (without the trailing dot), for example acmezone.io/zone=acme.example.com.
const ZoneLabel = "acmezone.io/zone"

// Start connects to the API server and starts the reflectors. It waits up to startup_timeout for
// them to sync; after that the server answers SERVFAIL until they do. Called from OnStartup.
func (a *ACMEZone) Start() error {
	restCfg, err := a.restConfig()
	if err != nil {
		return err
	}
	return a.start(restCfg)
}

func (a *ACMEZone) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = a.cfg.kubeconfig
	if a.cfg.kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no kubeconfig given and not running in a cluster (%w); add 'kubeconfig PATH' to the acmezone block", err)
		}
		return cfg, nil
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: a.cfg.kubecontext}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", a.cfg.kubeconfig, err)
	}
	return cfg, nil
}

// start runs one client-go reflector per kind (and per namespace when namespaces are given)
// against restCfg. The reflectors feed the store directly: no informer cache keeps a second
// copy of every object, and lists are decoded into only the fields the store needs, page by
// page, so that 100,000 records cost what the store keeps of them and little more.
func (a *ACMEZone) start(restCfg *rest.Config) error {
	restCfg = rest.CopyConfig(restCfg)
	restCfg.UserAgent = "coredns-acmezone"

	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	factory := serializer.NewCodecFactory(scheme)
	codecs := factory.WithoutConversion()
	restClient := func(gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
		c := rest.CopyConfig(restCfg)
		c.GroupVersion, c.APIPath, c.NegotiatedSerializer = &gv, apiPath, codecs
		return rest.RESTClientFor(c)
	}
	crds, err := restClient(v1alpha1.GroupVersion, "/apis")
	if err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	core, err := restClient(corev1.SchemeGroupVersion, "/api")
	if err != nil {
		return fmt.Errorf("API client: %w", err)
	}

	zoneValues := make([]string, 0, len(a.cfg.zones))
	for _, z := range a.cfg.zones {
		zoneValues = append(zoneValues, strings.TrimSuffix(z, "."))
	}
	req, err := labels.NewRequirement(ZoneLabel, selection.In, zoneValues)
	if err != nil {
		return fmt.Errorf("zone names cannot be used as the %s label value (at most 63 characters): %w", ZoneLabel, err)
	}
	zoneSelector := labels.NewSelector().Add(*req).String()

	ctx, cancel := context.WithCancel(context.Background())
	ctx = klog.NewContext(ctx, reflectorLog)
	sinks := a.sinks(crds, core, decodeConfigMaps(factory), zoneSelector)

	done := make(chan struct{})
	a.mu.Lock()
	a.cancel, a.done = cancel, done
	a.mu.Unlock()
	var wg sync.WaitGroup
	var pending, listing atomic.Int32
	pending.Store(int32(len(sinks)))
	listing.Store(int32(len(sinks)))
	for _, k := range sinks {
		k.synced = func() {
			// Live once every reflector has delivered its first list: the first snapshot is
			// built from all of them, and going live earlier would answer NXDOMAIN for
			// existing records and publish once per remaining object.
			if pending.Add(-1) == 0 {
				a.store.goLive()
				log.Infof("synced with the API server: serving %s", strings.Join(a.cfg.zones, " "))
			}
		}
		k.lw.listed = func() {
			// Every reflector has dropped its first list (it watches only after that; at
			// goLive, inside the last sink's Replace, that list is still held). Not on the
			// reflector's goroutine: its watch starts now.
			if listing.Add(-1) == 0 {
				go a.store.listsDropped()
			}
		}
		lw := &contact{lister: k.lw}
		r := toolscache.NewReflectorWithOptions(lw, nil, k, toolscache.ReflectorOptions{
			Name:            "acmezone " + k.lw.what(),
			TypeDescription: k.lw.what(),
		})
		wg.Go(func() {
			r.RunWithContext(ctx)
			lw.set(false)
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	if a.cfg.startupTimeout > 0 {
		deadline := time.Now().Add(a.cfg.startupTimeout)
		for !a.store.synced() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !a.store.synced() {
			log.Warningf("not synced with the API server after %s: answering SERVFAIL until it is; check the kubeconfig, RBAC (list/watch challengerecords and delegations, and configmaps in the namespaces of 'configmaps') and that the CRDs in deploy/crds are installed", a.cfg.startupTimeout)
		}
	}
	return nil
}

// sinks are the reflectors' stores, one per kind and namespace: ChallengeRecords and
// Delegations from the namespaces of `namespaces` (all by default); ConfigMaps, the
// administrator's static data, only from those of `configmaps` (none by default: a tenant with
// edit rights in its namespace must not write zone data).
func (a *ACMEZone) sinks(crds, core *rest.RESTClient, decode func([]byte) (runtime.Object, error), zoneSelector string) []*sink {
	namespaces := a.cfg.namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var sinks []*sink
	for _, ns := range namespaces {
		sinks = append(sinks,
			&sink{a: a, namespace: ns, lw: &lister{client: crds, resource: "challengerecords", namespace: ns}},
			&sink{a: a, namespace: ns, lw: &lister{client: crds, resource: "delegations", namespace: ns}},
		)
	}
	for _, ns := range a.cfg.configmaps {
		sinks = append(sinks,
			&sink{a: a, namespace: ns, lw: &lister{client: core, resource: "configmaps", namespace: ns, selector: zoneSelector, decode: decode}},
		)
	}
	return sinks
}

// reflectorLog sends client-go's reflector messages (list and watch errors, retried with
// backoff) to CoreDNS's log.
var reflectorLog = funcr.New(func(prefix, args string) {
	log.Warningf("%s %s", prefix, args)
}, funcr.Options{Verbosity: 0})

// Stop stops the reflectors and waits for them. Called from OnShutdown, also on reload.
func (a *ACMEZone) Stop() error {
	a.mu.Lock()
	cancel, done := a.cancel, a.done
	a.cancel, a.done = nil, nil
	n := a.notifier
	a.notifier = nil
	a.mu.Unlock()
	if n != nil {
		n.close()
	}
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// sink is a reflector's store: it hands what the reflector lists and watches to the acmezone
// store and keeps nothing itself.
type sink struct {
	a         *ACMEZone
	namespace string
	lw        *lister
	synced    func() // called after the first Replace
	once      sync.Once
}

// Add implements toolscache.ReflectorStore: an object the watch reports as created.
func (k *sink) Add(obj any) error {
	switch o := obj.(type) {
	case *v1alpha1.ChallengeRecord:
		k.a.store.addRecord(o.ResourceVersion, keyOf(o), recordOf(&o.Spec, o.CreationTimestamp.Time, o.Annotations[v1alpha1.CreatedAtAnnotation]))
	case *v1alpha1.Delegation:
		k.a.store.addDelegation(o.ResourceVersion, keyOf(o), delegationOf(o))
	case *corev1.ConfigMap:
		k.a.store.setStatic(o.ResourceVersion, keyOf(o), k.a.configMapRecords(o))
	default:
		return fmt.Errorf("%s: unexpected %T", k.lw.what(), obj)
	}
	return nil
}

// Update implements toolscache.ReflectorStore: the new state of an object, which may have
// moved.
func (k *sink) Update(obj any) error {
	switch o := obj.(type) {
	case *v1alpha1.ChallengeRecord:
		k.a.store.updateRecord(o.ResourceVersion, keyOf(o), recordOf(&o.Spec, o.CreationTimestamp.Time, o.Annotations[v1alpha1.CreatedAtAnnotation]))
	case *v1alpha1.Delegation:
		k.a.store.updateDelegation(o.ResourceVersion, keyOf(o), delegationOf(o))
	case *corev1.ConfigMap:
		k.a.store.setStatic(o.ResourceVersion, keyOf(o), k.a.configMapRecords(o))
	default:
		return fmt.Errorf("%s: unexpected %T", k.lw.what(), obj)
	}
	return nil
}

// Delete implements toolscache.ReflectorStore: a deleted object, in its last state. A DELETED
// watch event's object carries the resourceVersion of its deletion; objects deleted while no
// watch ran are gone from the next list, whose resourceVersion Replace applies.
func (k *sink) Delete(obj any) error {
	switch o := obj.(type) {
	case *v1alpha1.ChallengeRecord:
		k.a.store.deleteRecord(o.ResourceVersion, keyOf(o), recordOf(&o.Spec, o.CreationTimestamp.Time, ""))
	case *v1alpha1.Delegation:
		k.a.store.deleteDelegation(o.ResourceVersion, keyOf(o), delegationOf(o))
	case *corev1.ConfigMap:
		k.a.store.deleteStatic(o.ResourceVersion, keyOf(o))
	default:
		return fmt.Errorf("%s: unexpected %T", k.lw.what(), obj)
	}
	return nil
}

// Replace implements toolscache.ReflectorStore: the result of a (re)list at resourceVersion
// rv, as one change.
func (k *sink) Replace(list []any, rv string) error {
	var objs objects
	var statics map[types.NamespacedName]*staticSet
	switch k.lw.resource {
	case "challengerecords":
		objs.records = make(map[types.NamespacedName]*recordIn, len(list))
	case "delegations":
		objs.delegations = make(map[types.NamespacedName]*delegationIn, len(list))
	default:
		statics = make(map[types.NamespacedName]*staticSet, len(list))
	}
	for _, obj := range list {
		switch o := obj.(type) {
		case *item:
			switch {
			case objs.records != nil:
				objs.records[o.key] = o.record
			case objs.delegations != nil:
				objs.delegations[o.key] = o.delegation
			}
		case *corev1.ConfigMap:
			if statics == nil {
				return fmt.Errorf("%s: unexpected ConfigMap in a list", k.lw.what())
			}
			statics[keyOf(o)] = k.a.configMapRecords(o)
		default:
			return fmt.Errorf("%s: unexpected %T in a list", k.lw.what(), obj)
		}
	}
	if statics != nil {
		k.a.store.replaceStatic(rv, k.namespace, statics)
	} else {
		k.a.store.replace(rv, k.namespace, objs)
	}
	k.once.Do(k.synced)
	return nil
}

// Resync implements toolscache.ReflectorStore; there is nothing to resync.
func (*sink) Resync() error { return nil }
