// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

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

// staleSeconds is how long the data served has possibly been out of date: the time since the
// longest-stale reflector lost the API server, 0 while every reflector is in contact.
var staleSeconds = promauto.NewGaugeFunc(prometheus.GaugeOpts{
	Namespace: plugin.Namespace,
	Subsystem: pluginName,
	Name:      "stale_seconds",
	Help:      "Seconds since the longest-stale reflector's last list or watch request to the API server failed (0 while all are in contact): how out of date the answers may be.",
}, func() float64 {
	staleMu.Lock()
	defer staleMu.Unlock()
	var oldest time.Time
	for _, since := range staleSince {
		if oldest.IsZero() || since.Before(oldest) {
			oldest = since
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest).Seconds()
})

var (
	staleMu    sync.Mutex
	staleSince = map[*contact]time.Time{} // the stale reflectors, since when
)

// contact is a reflector's lister that counts the reflector in staleReflectors from the moment
// its watch ends or a request to the API server fails until a list or watch request succeeds
// again. A watch the API server ends on schedule (every few minutes) is re-established within
// milliseconds; one cut by an API server that is gone stays counted while the reflector
// retries, whether its requests fail at once or hang in connect.
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
	if err != nil {
		return w, err
	}
	return c.track(w), nil
}

// tracked passes a watch's events on and marks the reflector stale when the stream ends
// without the reflector having stopped it.
type tracked struct {
	w    watch.Interface
	out  chan watch.Event
	done chan struct{}
	stop sync.Once
}

func (c *contact) track(w watch.Interface) watch.Interface {
	t := &tracked{w: w, out: make(chan watch.Event), done: make(chan struct{})}
	go func() {
		defer close(t.out)
		for ev := range w.ResultChan() {
			select {
			case t.out <- ev:
			case <-t.done:
				return
			}
		}
		select {
		case <-t.done: // the reflector stopped it
		default:
			c.set(true)
		}
	}()
	return t
}

// ResultChan implements watch.Interface.
func (t *tracked) ResultChan() <-chan watch.Event { return t.out }

// Stop implements watch.Interface.
func (t *tracked) Stop() {
	t.stop.Do(func() {
		close(t.done)
		t.w.Stop()
	})
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
	staleMu.Lock()
	defer staleMu.Unlock()
	if stale {
		staleReflectors.Inc()
		staleSince[c] = time.Now()
	} else {
		staleReflectors.Dec()
		delete(staleSince, c)
	}
}
