// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package challenge

import (
	"context"
	"fmt"
	"sync"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// keysIndexed holds the field indexers IndexChallengeKeys has registered with: the acme-dns
// record reaper and the solver's lookup share the index, and controller-runtime refuses an
// index registered twice.
var keysIndexed sync.Map // client.FieldIndexer -> struct{}

// IndexChallengeKeys indexes cert-manager's Challenges by spec.key (the TXT value), once per
// indexer.
func IndexChallengeKeys(ctx context.Context, indexer client.FieldIndexer) error {
	if _, done := keysIndexed.LoadOrStore(indexer, struct{}{}); done {
		return nil
	}
	if err := indexer.IndexField(ctx, &cmacme.Challenge{}, challengeKeyField, challengeKey); err != nil {
		keysIndexed.Delete(indexer)
		return fmt.Errorf("index Challenges by %s: %w", challengeKeyField, err)
	}
	return nil
}

func challengeKey(o client.Object) []string {
	if k := o.(*cmacme.Challenge).Spec.Key; k != "" {
		return []string{k}
	}
	return nil
}

// UIDByKey returns a function that finds, in a cache indexed by IndexChallengeKeys, the UID of
// the Challenge cert-manager presents with key for dnsName: the solver labels the record it
// writes with it (solver.ChallengeUIDLabel), which is what ties the record to its Challenge for
// the orphan reaper and for adoption. cert-manager's webhook request does not carry the
// Challenge's UID (its UID field identifies the request), and it calls Present while it
// processes that Challenge, so the Challenge exists; a cache that has not seen it yet is asked
// again for up to wait. It returns "" when no Challenge has the key.
func UIDByKey(c client.Reader, wait time.Duration) func(ctx context.Context, key, dnsName string) (types.UID, error) {
	return func(ctx context.Context, key, dnsName string) (types.UID, error) {
		deadline := time.Now().Add(wait)
		for {
			var chs cmacme.ChallengeList
			if err := c.List(ctx, &chs, client.MatchingFields{challengeKeyField: key}); err != nil {
				return "", fmt.Errorf("look up the Challenge with the key: %w", err)
			}
			for _, ch := range chs.Items {
				if ch.DeletionTimestamp.IsZero() && ch.Spec.Type == cmacme.ACMEChallengeTypeDNS01 && ch.Spec.DNSName == dnsName {
					return ch.UID, nil
				}
			}
			if time.Now().After(deadline) {
				return "", nil
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}
