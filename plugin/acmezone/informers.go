package acmezone

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/go-logr/logr/funcr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// ZoneLabel marks a ConfigMap whose data holds zone-file lines for the zone named by its value
// (without the trailing dot), for example acmezone.io/zone=acme.example.com.
const ZoneLabel = "acmezone.io/zone"

// Start connects to the API server and starts the informers. It waits up to startup_timeout for
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
	var pending atomic.Int32
	pending.Store(int32(len(sinks)))
	for _, k := range sinks {
		k.synced = func() {
			// Live once every reflector has delivered its first list: the first snapshot is
			// built from all of them, and going live earlier would answer NXDOMAIN for
			// existing records and publish once per remaining object.
			if pending.Add(-1) == 0 {
				a.store.goLive()
				log.Infof("synced with the API server: serving %s", strings.Join(a.cfg.zones, " "))
				// Everything the lists decoded and the store did not keep is garbage now, and
				// at 100,000 records that is more than the store itself. Hand it back to the OS
				// at once rather than at the scavenger's pace (one collection, once per start).
				debug.FreeOSMemory()
			}
		}
		r := toolscache.NewReflectorWithOptions(k.lw, nil, k, toolscache.ReflectorOptions{
			Name:            "acmezone " + k.lw.what(),
			TypeDescription: k.lw.what(),
		})
		wg.Go(func() { r.RunWithContext(ctx) })
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
			&sink{a: a, namespace: ns, lw: &lister{client: crds, resource: "challengerecords", namespace: ns, example: &v1alpha1.ChallengeRecord{}}},
			&sink{a: a, namespace: ns, lw: &lister{client: crds, resource: "delegations", namespace: ns, example: &v1alpha1.Delegation{}}},
		)
	}
	for _, ns := range a.cfg.configmaps {
		sinks = append(sinks,
			&sink{a: a, namespace: ns, lw: &lister{client: core, resource: "configmaps", namespace: ns, example: &corev1.ConfigMap{}, selector: zoneSelector, decode: decode}},
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
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// pageSize is how many ConfigMaps one list request asks for.
const pageSize = 500

// lister lists and watches one resource in one namespace ("" for all) for a reflector.
type lister struct {
	client    *rest.RESTClient
	resource  string
	namespace string
	selector  string         // label selector, "" for none
	example   runtime.Object // the type watch events carry
	// decode turns one page of a list response into a list whose items the sink understands;
	// nil for ChallengeRecords and Delegations, which decodeList reads item by item.
	decode func(body []byte) (runtime.Object, error)
}

func (l *lister) what() string {
	if l.namespace == "" {
		return l.resource
	}
	return l.resource + " in namespace " + l.namespace
}

// ListWithContext implements toolscache.ListerWithContext. ChallengeRecords and
// Delegations are read as one list (at resourceVersion 0, the reflector's first, it comes
// whole from kube-apiserver's watch cache) and decoded one item at a time into only the
// fields the store needs, so no whole response and no whole object is ever held. That is
// faster than streaming the initial state as watch events (WatchList: 13.0 s against 8.8 s for
// 100,000 records of each kind, see docs/benchmarks.md), which sends and flushes every object
// on its own. ConfigMaps (a few, parsed whole anyway) are decoded by l.decode, one page at a
// time.
func (l *lister) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	opts.LabelSelector = l.selector
	if l.decode != nil {
		if opts.Limit == 0 {
			opts.Limit = pageSize
		}
		body, err := l.request(opts).Do(ctx).Raw()
		if err != nil {
			return nil, err
		}
		return l.decode(body)
	}
	opts.Limit, opts.Continue = 0, ""
	body, err := l.request(opts).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return decodeList(body, l.resource)
}

func (l *lister) request(opts metav1.ListOptions) *rest.Request {
	return l.client.Get().NamespaceIfScoped(l.namespace, l.namespace != "").Resource(l.resource).
		VersionedParams(&opts, metav1.ParameterCodec)
}

// decodeList decodes a ChallengeRecord or Delegation list from r one item at a time.
func decodeList(r io.Reader, resource string) (*itemList, error) {
	dec := json.NewDecoder(r)
	out := &itemList{}
	fail := func(err error) (*itemList, error) {
		return nil, fmt.Errorf("decode %s list (%d items read): %w", resource, len(out.Items), err)
	}
	delim := func(want json.Delim) error {
		t, err := dec.Token()
		if err == nil && t != want {
			err = fmt.Errorf("found %v where %v was expected", t, want)
		}
		return err
	}
	if err := delim('{'); err != nil {
		return fail(err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		switch t {
		case "metadata":
			err = dec.Decode(&out.ListMeta)
		case "items":
			if err = delim('['); err != nil {
				break
			}
			for dec.More() && err == nil {
				var o wireObject
				if err = dec.Decode(&o); err == nil {
					out.Items = append(out.Items, o.item(resource))
				}
			}
			if err == nil {
				err = delim(']')
			}
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := delim('}'); err != nil {
		return fail(err)
	}
	return out, nil
}

// WatchWithContext implements toolscache.WatcherWithContext.
func (l *lister) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.LabelSelector = l.selector
	opts.Watch = true
	return l.client.Get().NamespaceIfScoped(l.namespace, l.namespace != "").Resource(l.resource).
		VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
}

// List and Watch complete toolscache.ListerWatcher; the reflector uses the context versions.
func (l *lister) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

func (l *lister) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), opts)
}

// IsWatchListSemanticsUnSupported keeps the reflector from streaming the initial state
// itself: it would collect whole decoded objects in a temporary store before the first
// Replace, and streaming is the slower way to read it (see ListWithContext).
func (*lister) IsWatchListSemanticsUnSupported() bool { return true }

// item is one listed object, reduced to what the store keeps. It is a runtime.Object only so
// that it can travel through the reflector's list handling.
type item struct {
	key        types.NamespacedName
	record     *recordIn
	delegation *delegationIn
}

func (*item) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (i *item) DeepCopyObject() runtime.Object { c := *i; return &c }

// itemList is one decoded page.
type itemList struct {
	metav1.TypeMeta
	metav1.ListMeta `json:"metadata"`
	Items           []item
}

func (l *itemList) DeepCopyObject() runtime.Object {
	c := *l
	c.Items = slices.Clone(l.Items)
	return &c
}

// wireObject is a ChallengeRecord or a Delegation as the API server sends it, reduced to the
// fields the store uses: the decoder skips everything else (managed fields, labels, owner
// references, status) without allocating it.
type wireObject struct {
	Metadata struct {
		Name              string      `json:"name"`
		Namespace         string      `json:"namespace"`
		CreationTimestamp metav1.Time `json:"creationTimestamp"`
		Annotations       struct {
			CreatedAt   string `json:"acmezone.io/created-at"`
			TargetProof string `json:"acmezone.io/target-proof"`
		} `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		v1alpha1.ChallengeRecordSpec
		Domain string `json:"domain"`
		Target string `json:"target"`
	} `json:"spec"`
}

// item converts a listed ChallengeRecord (resource "challengerecords") or Delegation.
func (o *wireObject) item(resource string) item {
	m := &o.Metadata
	it := item{key: types.NamespacedName{Namespace: m.Namespace, Name: m.Name}}
	if resource == "challengerecords" {
		it.record = recordOf(&o.Spec.ChallengeRecordSpec, m.CreationTimestamp.Time, m.Annotations.CreatedAt)
		return it
	}
	it.delegation = &delegationIn{claim: v1alpha1.TargetClaim{
		Namespace:  m.Namespace,
		Domain:     o.Spec.Domain,
		SpecTarget: o.Spec.Target,
		Proof:      m.Annotations.TargetProof,
	}}
	return it
}

// decodeConfigMaps decodes a page of ConfigMaps with the API machinery (there are few, and
// their data is parsed anyway); the sink parses each into records.
func decodeConfigMaps(codecs serializer.CodecFactory) func([]byte) (runtime.Object, error) {
	decoder := codecs.UniversalDeserializer()
	return func(body []byte) (runtime.Object, error) {
		obj, _, err := decoder.Decode(body, nil, &corev1.ConfigMapList{})
		if err != nil {
			return nil, fmt.Errorf("decode ConfigMap list: %w", err)
		}
		return obj, nil
	}
}

// keyOf is an object's namespace and name.
func keyOf(o metav1.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
}

// recordOf is what the store keeps of a ChallengeRecord.
func recordOf(spec *v1alpha1.ChallengeRecordSpec, created time.Time, createdAt string) *recordIn {
	rec := &recordIn{fqdn: canonical(spec.FQDN), value: spec.Value, created: created}
	if spec.TTL != nil && *spec.TTL > 0 {
		rec.ttl = uint32(*spec.TTL)
	}
	if t, err := time.Parse(time.RFC3339Nano, createdAt); err == nil {
		rec.created = t
	}
	return rec
}

// delegationOf is what the store reads of a Delegation.
func delegationOf(d *v1alpha1.Delegation) *delegationIn {
	return &delegationIn{claim: v1alpha1.ClaimOf(d)}
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

// Add implements toolscache.ReflectorStore: an object the watch reports as new.
func (k *sink) Add(obj any) error { return k.put(obj, isNew) }

// Update implements toolscache.ReflectorStore: an object that may have moved.
func (k *sink) Update(obj any) error { return k.put(obj, anywhere) }

// put hands an added or updated object to the store; how says where the store may hold it.
func (k *sink) put(obj any, how int) error {
	switch o := obj.(type) {
	case *v1alpha1.ChallengeRecord:
		k.a.store.record(keyOf(o), recordOf(&o.Spec, o.CreationTimestamp.Time, o.Annotations[v1alpha1.CreatedAtAnnotation]), how, nil)
	case *v1alpha1.Delegation:
		k.a.store.delegation(keyOf(o), delegationOf(o), how, nil)
	case *corev1.ConfigMap:
		k.a.store.setStatic(keyOf(o), k.a.configMapRecords(o))
	default:
		return fmt.Errorf("%s: unexpected %T", k.lw.what(), obj)
	}
	return nil
}

// Delete implements toolscache.ReflectorStore.
func (k *sink) Delete(obj any) error {
	switch o := obj.(type) {
	case *v1alpha1.ChallengeRecord:
		k.a.store.record(keyOf(o), nil, anywhere, recordOf(&o.Spec, o.CreationTimestamp.Time, ""))
	case *v1alpha1.Delegation:
		k.a.store.delegation(keyOf(o), nil, anywhere, delegationOf(o))
	case *corev1.ConfigMap:
		k.a.store.setStatic(keyOf(o), nil)
	default:
		return fmt.Errorf("%s: unexpected %T", k.lw.what(), obj)
	}
	return nil
}

// Replace implements toolscache.ReflectorStore: the result of a (re)list, as one change.
func (k *sink) Replace(list []any, _ string) error {
	var objs objects
	switch k.lw.resource {
	case "challengerecords":
		objs.records = make(map[types.NamespacedName]*recordIn, len(list))
	case "delegations":
		objs.delegations = make(map[types.NamespacedName]*delegationIn, len(list))
	default:
		objs.statics = make(map[types.NamespacedName]*staticSet, len(list))
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
			objs.statics[keyOf(o)] = k.a.configMapRecords(o)
		default:
			return fmt.Errorf("%s: unexpected %T in a list", k.lw.what(), obj)
		}
	}
	k.a.store.replace(k.namespace, objs)
	k.once.Do(k.synced)
	return nil
}

// Resync implements toolscache.ReflectorStore; there is nothing to resync.
func (*sink) Resync() error { return nil }

// configMapRecords parses a ConfigMap's zone data, outside the store's lock; nil when its zone
// is not served here or its data is over the size limit (then none of it is served). Entries
// that do not parse or that static data may not hold (see checkRecord) are skipped with a
// warning each.
func (a *ACMEZone) configMapRecords(cm *corev1.ConfigMap) *staticSet {
	key := keyOf(cm)
	zone := canonical(cm.Labels[ZoneLabel])
	if !slices.Contains(a.cfg.zones, zone) {
		return nil
	}
	size := 0
	for k, v := range cm.Data {
		size += len(k) + len(v)
	}
	if size > a.cfg.maxBytes {
		configMapsRefused.WithLabelValues("bytes").Inc()
		log.Warningf("ConfigMap %s is not served: its data has %d bytes, over the limit of %d; "+
			"split it into several ConfigMaps, or raise the limit with 'configmap_limits MAXBYTES MAXRECORDS' in the acmezone block",
			key, size, a.cfg.maxBytes)
		return nil
	}
	rules := a.staticRules()
	var all []dns.RR
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		rrs, errs := parseZoneData(zone, cm.Data[k], a.cfg.ttl, rules)
		for _, e := range errs {
			rejectedLines.Inc()
			log.Warningf("ConfigMap %s key %q: %s; the entry is skipped", key, k, e.Error())
		}
		all = append(all, rrs...)
	}
	return newStaticSet(zone, all)
}

// staticRules are the names of the Corefile that static data may not touch.
func (a *ACMEZone) staticRules() staticRules {
	r := staticRules{zones: a.cfg.zones}
	for _, ns := range a.cfg.nameservers {
		if plugin.Zones(a.cfg.zones).Matches(ns.name) != "" {
			r.nameservers = append(r.nameservers, ns.name)
		}
	}
	return r
}
