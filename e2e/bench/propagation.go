// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// propagation is how long records took from the API write to the answer.
type propagation struct {
	create  []time.Duration            // the Create call alone (API server and etcd)
	answers map[string][]time.Duration // per server: Create call start to the first correct UDP answer
}

// measurePropagation creates n Delegations in nsProp, waits until every server knows their
// targets, then creates one ChallengeRecord at a time and polls every server over UDP (every
// millisecond) until it answers with the new value.
func measurePropagation(ctx context.Context, c *cluster, servers []*server, n, workers int) (*propagation, error) {
	if _, err := c.createDelegations(ctx, nsProp, n, workers); err != nil {
		return nil, err
	}
	for _, s := range servers {
		for i := range n {
			if err := waitAnswer(ctx, s, target(nsProp, i), dns.RcodeSuccess, "", 60*time.Second); err != nil {
				return nil, fmt.Errorf("delegated target before the propagation test: %w", err)
			}
		}
	}
	p := &propagation{answers: map[string][]time.Duration{}}
	for i := range n {
		name, value := target(nsProp, i), keyValue(nsProp, i)
		rec := v1alpha1.NewChallengeRecord(nsProp, name, value)
		start := time.Now()
		// Set by the solver too: the plugin's propagation histogram counts from it.
		rec.Annotations = map[string]string{v1alpha1.CreatedAtAnnotation: start.UTC().Format(time.RFC3339Nano)}
		if err := c.client.Create(ctx, rec); err != nil {
			return nil, fmt.Errorf("create ChallengeRecord %s: %w", rec.Name, err)
		}
		p.create = append(p.create, time.Since(start))
		var wg sync.WaitGroup
		results := make([]time.Duration, len(servers))
		errs := make([]error, len(servers))
		for k, s := range servers {
			wg.Go(func() {
				errs[k] = waitAnswer(ctx, s, name, dns.RcodeSuccess, value, 30*time.Second)
				results[k] = time.Since(start)
			})
		}
		wg.Wait()
		for k, s := range servers {
			if errs[k] != nil {
				return nil, errs[k]
			}
			p.answers[s.label] = append(p.answers[s.label], results[k])
		}
	}
	return p, nil
}

// waitAnswer polls s until it answers name TXT with rcode and value ("" for none).
func waitAnswer(ctx context.Context, s *server, name string, rcode int, value string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		a, err := query(s.addr(), name, dns.TypeTXT, 200*time.Millisecond)
		if err == nil && a.is(rcode, value) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s does not answer %s TXT with %s %q after %s (last: %+v, %v)",
				s.label, name, dns.RcodeToString[rcode], value, timeout, a, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// createDelegations creates n Delegations (without records) in ns with parallel workers.
func (c *cluster) createDelegations(ctx context.Context, ns string, n, workers int) (time.Duration, error) {
	start := time.Now()
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.create(ctx, c.delegation(ns, i)); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return time.Since(start), firstErr
}
