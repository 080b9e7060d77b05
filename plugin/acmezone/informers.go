package acmezone

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// ZoneLabel marks a ConfigMap whose data holds zone-file lines for the zone named by its value
// (without the trailing dot), for example acmezone.io/zone=acme.example.com.
const ZoneLabel = "acmezone.io/zone"

func init() {
	// controller-runtime's cache logs through its own logger; send it to CoreDNS's log.
	ctrllog.SetLogger(funcr.New(func(prefix, args string) {
		log.Debugf("%s %s", prefix, args)
	}, funcr.Options{}))
}

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

// start runs the informers against restCfg.
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
	// A static REST mapping: no discovery, so starting never depends on the API server being
	// up, and a missing CRD shows up as the informer's list error, retried with backoff.
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	mapper.Add(v1alpha1.GroupVersion.WithKind("ChallengeRecord"), meta.RESTScopeNamespace)
	mapper.Add(v1alpha1.GroupVersion.WithKind("Delegation"), meta.RESTScopeNamespace)

	zoneValues := make([]string, 0, len(a.cfg.zones))
	for _, z := range a.cfg.zones {
		zoneValues = append(zoneValues, strings.TrimSuffix(z, "."))
	}
	req, err := labels.NewRequirement(ZoneLabel, selection.In, zoneValues)
	if err != nil {
		return fmt.Errorf("zone names cannot be used as the %s label value (at most 63 characters): %w", ZoneLabel, err)
	}
	opts := cache.Options{
		Scheme:           scheme,
		Mapper:           mapper,
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Label: labels.NewSelector().Add(*req)},
		},
	}
	if len(a.cfg.namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range a.cfg.namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(restCfg, opts)
	if err != nil {
		return fmt.Errorf("create informer cache: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var handled []toolscache.InformerSynced
	for _, h := range []struct {
		obj client.Object
		fn  func(key types.NamespacedName, obj client.Object)
	}{
		{&v1alpha1.ChallengeRecord{}, a.onRecord},
		{&v1alpha1.Delegation{}, a.onDelegation},
		{&corev1.ConfigMap{}, a.onConfigMap},
	} {
		inf, err := c.GetInformer(ctx, h.obj)
		if err != nil {
			cancel()
			return fmt.Errorf("informer for %T: %w", h.obj, err)
		}
		reg, err := inf.AddEventHandler(handler(h.fn))
		if err != nil {
			cancel()
			return fmt.Errorf("event handler for %T: %w", h.obj, err)
		}
		handled = append(handled, reg.HasSynced)
	}

	done := make(chan struct{})
	a.mu.Lock()
	a.cancel, a.done = cancel, done
	a.mu.Unlock()
	go func() {
		defer close(done)
		if err := c.Start(ctx); err != nil {
			log.Errorf("informers stopped: %v", err)
		}
	}()
	go func() {
		// A synced cache is not enough: the first snapshot is built from what the handlers have
		// handled, and they get the initial list after the cache has it. Going live earlier
		// would answer NXDOMAIN for existing records and publish once per remaining event.
		if c.WaitForCacheSync(ctx) && toolscache.WaitForCacheSync(ctx.Done(), handled...) {
			a.store.goLive()
			log.Infof("synced with the API server: serving %s", strings.Join(a.cfg.zones, " "))
		}
	}()

	if a.cfg.startupTimeout > 0 {
		deadline := time.Now().Add(a.cfg.startupTimeout)
		for !a.store.synced() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !a.store.synced() {
			log.Warningf("not synced with the API server after %s: answering SERVFAIL until it is; check the kubeconfig, RBAC (list/watch challengerecords, delegations, configmaps) and that the CRDs in deploy/crds are installed", a.cfg.startupTimeout)
		}
	}
	return nil
}

// Stop stops the informers and waits for them. Called from OnShutdown, also on reload.
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

// handler adapts fn to informer callbacks: fn gets the object, or nil on delete.
func handler(fn func(types.NamespacedName, client.Object)) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(client.Object); ok {
				fn(client.ObjectKeyFromObject(o), o)
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(client.Object); ok {
				fn(client.ObjectKeyFromObject(o), o)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := obj.(client.Object); ok {
				fn(client.ObjectKeyFromObject(o), nil)
			}
		},
	}
}

func (a *ACMEZone) onRecord(key types.NamespacedName, obj client.Object) {
	cr, ok := obj.(*v1alpha1.ChallengeRecord)
	if !ok {
		a.store.setRecord(key, nil)
		return
	}
	rec := &recordIn{fqdn: canonical(cr.Spec.FQDN), value: cr.Spec.Value, created: cr.CreationTimestamp.Time}
	if cr.Spec.TTL != nil && *cr.Spec.TTL > 0 {
		rec.ttl = uint32(*cr.Spec.TTL)
	}
	if t, err := time.Parse(time.RFC3339Nano, cr.Annotations[v1alpha1.CreatedAtAnnotation]); err == nil {
		rec.created = t
	}
	a.store.setRecord(key, rec)
}

func (a *ACMEZone) onDelegation(key types.NamespacedName, obj client.Object) {
	d, ok := obj.(*v1alpha1.Delegation)
	if !ok {
		a.store.setDelegation(key, nil)
		return
	}
	a.store.setDelegation(key, &delegationIn{target: d.EffectiveTarget(), claim: d.Claim()})
}

func (a *ACMEZone) onConfigMap(key types.NamespacedName, obj client.Object) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		a.store.setStatic(key, nil)
		return
	}
	zone := canonical(cm.Labels[ZoneLabel])
	served := false
	for _, z := range a.cfg.zones {
		served = served || z == zone
	}
	if !served {
		a.store.setStatic(key, nil)
		return
	}
	dataKeys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		dataKeys = append(dataKeys, k)
	}
	sort.Strings(dataKeys)
	var all []dns.RR
	for _, k := range dataKeys {
		rrs, errs := parseZoneData(zone, cm.Data[k], a.cfg.ttl)
		for _, e := range errs {
			rejectedLines.Inc()
			log.Warningf("ConfigMap %s key %q: %s; the entry is skipped", key, k, e.Error())
		}
		all = append(all, rrs...)
	}
	a.store.setStatic(key, all)
}
