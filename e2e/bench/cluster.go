// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// zone is the challenge zone every server in the benchmark is authoritative for.
const zone = "acme.example.com."

// Namespaces of the benchmark's records. The 10-record server watches small and prop; the
// 100,000-record server watches everything, as a default deployment does.
const (
	nsSmall = "small"
	nsLarge = "large"
	nsProp  = "prop"
)

// cluster is etcd and kube-apiserver (envtest) with the acmezone CRDs, and a client with a
// raised rate limit for bulk creates.
type cluster struct {
	env        *kubetest.Env
	client     client.Client
	kubeconfig string
	// keyFile and key are the target key of the acmezone servers: the benchmark's Delegations
	// name fixed targets in spec.target and prove them with it.
	keyFile string
	key     v1alpha1.TargetKey
}

func startCluster(dir, crds string) (*cluster, error) {
	env, err := kubetest.StartEnv(kubetest.Options{CRDDirs: []string{crds}, Dir: dir})
	if err != nil {
		return nil, err
	}
	c := &cluster{env: env, kubeconfig: env.Kubeconfig}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 10000
	scheme := k8sruntime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		c.stop()
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		c.stop()
		return nil, err
	}
	if c.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		c.stop()
		return nil, err
	}
	if c.keyFile, c.key, err = stack.WriteTargetKey(dir); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *cluster) stop() { _ = c.env.Stop() }

// target is the i-th delegated name of a namespace, of the controller's form <uuid>.<zone>
// (the namespace's tag in the second group): every target has the same length and every
// query the same size.
func target(ns string, i int) string {
	tag := sha256.Sum256([]byte(ns))
	return fmt.Sprintf("%08x-%02x%02x-4a34-ac99-d5097d5b2b68.%s", i, tag[0], tag[1], zone)
}

// nxName is the name every server answers NXDOMAIN for; it has the length of a target.
func nxName() string { return fmt.Sprintf("nosuch-%08x-4a34-ac99-d5097d5b2b68.%s", 0, zone) }

// keyValue is the challenge value of the i-th record of a namespace: 43 characters, like an
// ACME DNS-01 key.
func keyValue(ns string, i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", ns, i))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (c *cluster) createNamespaces(ctx context.Context, names ...string) error {
	for _, n := range names {
		err := c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", n, err)
		}
	}
	return nil
}

// delegation is the i-th Delegation of a namespace: its target is target(ns, i), proved with
// the cluster's key as an administrator's migrated target is.
func (c *cluster) delegation(ns string, i int) *v1alpha1.Delegation {
	domain := fmt.Sprintf("d%07d.%s.example.net", i, ns)
	return &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("d-%07d", i), Annotations: map[string]string{
			v1alpha1.TargetProofAnnotation: c.key.Proof(ns, domain, target(ns, i))}},
		Spec: v1alpha1.DelegationSpec{Domain: domain, Target: target(ns, i)},
	}
}

// create creates obj, retrying what a loaded API server may answer; an object that is already
// there counts as created.
func (c *cluster) create(ctx context.Context, obj client.Object) error {
	var err error
	for attempt := range 8 {
		err = c.client.Create(ctx, obj)
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
			return nil
		case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
			apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err):
			time.Sleep(time.Duration(100*(attempt+1)) * time.Millisecond)
			continue
		}
		break
	}
	return fmt.Errorf("create %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
}

// createRecords creates n Delegations and their ChallengeRecords in ns with parallel workers,
// and reports how long that took.
func (c *cluster) createRecords(ctx context.Context, ns string, n, workers int) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var done atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range workers {
		wg.Go(func() {
			for i := range next {
				err := c.create(ctx, c.delegation(ns, i))
				if err == nil {
					err = c.create(ctx, v1alpha1.NewChallengeRecord(ns, target(ns, i), keyValue(ns, i)))
				}
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	progress := time.NewTicker(15 * time.Second)
	defer progress.Stop()
feed:
	for i := range n {
		for {
			select {
			case next <- i:
				continue feed
			case <-ctx.Done():
				break feed
			case <-progress.C:
				d := done.Load()
				log.Printf("  %d of %d Delegation+ChallengeRecord pairs in %s (%.0f objects/s)", d, n, ns,
					float64(2*d)/time.Since(start).Seconds())
			}
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
