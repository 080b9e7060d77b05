package acmezone

import (
	"context"
	"sync/atomic"

	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// staleReflectors counts the reflectors that cannot reach the API server: while it is above
// zero the server keeps answering from the data it has, which may be out of date.
var staleReflectors = promauto.NewGauge(prometheus.GaugeOpts{
	Namespace: plugin.Namespace,
	Subsystem: pluginName,
	Name:      "stale_reflectors",
	Help:      "Number of reflectors whose last list or watch request to the API server failed: while above 0, answers come from data that may be stale.",
})

// contact is a reflector's lister that remembers whether its last request to the API server
// failed, in staleReflectors. A reflector whose watch breaks asks again at once, so a stopped
// API server shows within a second or two; the next request that succeeds clears it.
type contact struct {
	*lister
	stale atomic.Bool
}

// ListWithContext implements toolscache.ListerWithContext.
func (c *contact) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	obj, err := c.lister.ListWithContext(ctx, opts)
	c.set(err != nil && ctx.Err() == nil)
	return obj, err
}

// WatchWithContext implements toolscache.WatcherWithContext.
func (c *contact) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := c.lister.WatchWithContext(ctx, opts)
	c.set(err != nil && ctx.Err() == nil)
	return w, err
}

// List and Watch complete toolscache.ListerWatcher, with the same bookkeeping.
func (c *contact) List(opts metav1.ListOptions) (runtime.Object, error) {
	return c.ListWithContext(context.Background(), opts)
}

func (c *contact) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return c.WatchWithContext(context.Background(), opts)
}

// set records the outcome of a request; a reflector that stops calls set(false), so that a
// reload does not leave the gauge raised.
func (c *contact) set(stale bool) {
	if c.stale.Swap(stale) == stale {
		return
	}
	if stale {
		staleReflectors.Inc()
	} else {
		staleReflectors.Dec()
	}
}
