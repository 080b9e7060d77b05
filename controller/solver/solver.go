// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package solver is acmezone's cert-manager DNS-01 webhook solver: Present writes the
// challenge's TXT value as a ChallengeRecord at the target of the domain's Delegation, CleanUp
// deletes exactly that record.
package solver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	"github.com/miekg/dns"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// GroupName is the API group the solver is served under; an Issuer names it as groupName.
// It is not acmezone.io: cert-manager calls the solver at version v1alpha1, and an APIService
// v1alpha1.acmezone.io would take that group-version, and with it the CRDs, away from
// kube-apiserver.
const GroupName = "solver.acmezone.io"

// SolverName is the solver's name in the Issuer's webhook config.
const SolverName = "acmezone"

// ChallengeUIDLabel ties a ChallengeRecord to the cert-manager Challenge it was written for.
const ChallengeUIDLabel = "acmezone.io/challenge-uid"

// requestTimeout bounds the API calls of one Present or CleanUp.
const requestTimeout = 30 * time.Second

// Solver implements cert-manager's webhook.Solver.
type Solver struct {
	// Client writes ChallengeRecords and reads Delegations; its reads must have the Delegation
	// indexes of controller.Options.IndexDelegations (a manager's cache). The controller's main
	// sets it to its manager's client in OnInitialize; when it is still nil after that,
	// Initialize starts a cache of Delegations of its own.
	Client client.Client
	// Options are the installation's zone and target key (set before the first request: the
	// controller's main loads the key in OnInitialize); AutoDelegate only changes the advice
	// in error messages.
	Options *controller.Options
	// OnInitialize, when set, runs first in Initialize with the same arguments: the controller's
	// main starts its manager there, once the webhook server is up.
	OnInitialize func(cfg *rest.Config, stopCh <-chan struct{}) error
	// ChallengeUID, when set, finds the UID of the cert-manager Challenge presented with key
	// for dnsName ("" when there is none): cert-manager's request does not carry it, and the
	// record's ChallengeUIDLabel is what ties it to its Challenge (challenge.UIDByKey, on the
	// manager's cache). A request's own UID, when it has one, is used as it is.
	ChallengeUID func(ctx context.Context, key, dnsName string) (types.UID, error)
}

// Name implements webhook.Solver.
func (s *Solver) Name() string { return SolverName }

// Initialize implements webhook.Solver.
func (s *Solver) Initialize(cfg *rest.Config, stopCh <-chan struct{}) error {
	if s.OnInitialize != nil {
		if err := s.OnInitialize(cfg, stopCh); err != nil {
			return err
		}
	}
	if s.Client != nil {
		return nil
	}
	c, err := s.startCache(cfg, stopCh)
	if err != nil {
		return err
	}
	s.Client = c
	return nil
}

// startCache starts a controller-runtime cluster (a cache of Delegations with the indexes
// FindDelegation uses) until stopCh closes, and returns its client once the cache is synced.
func (s *Solver) startCache(cfg *rest.Config, stopCh <-chan struct{}) (client.Client, error) {
	if s.Options == nil {
		return nil, fmt.Errorf("the solver needs the installation's Options")
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cl, err := cluster.New(cfg, func(o *cluster.Options) { o.Scheme = scheme })
	if err != nil {
		return nil, fmt.Errorf("create API client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-stopCh
		cancel()
	}()
	if err := s.Options.IndexDelegations(ctx, cl.GetFieldIndexer()); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		if err := cl.Start(ctx); err != nil {
			logf.Log.Error(err, "the solver's cache stopped")
		}
	}()
	// Start the Delegation informer now, so that the first Present does not wait for it.
	if _, err := cl.GetCache().GetInformer(ctx, &v1alpha1.Delegation{}); err != nil {
		cancel()
		return nil, fmt.Errorf("watch Delegations: %w", err)
	}
	if !cl.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, fmt.Errorf("the solver's cache of Delegations did not sync")
	}
	return cl.GetClient(), nil
}

// Present implements webhook.Solver. A second Present of the same key is a no-op.
func (s *Solver) Present(ch *whapi.ChallengeRequest) (err error) {
	defer observe("present", time.Now(), &err)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	d, target, err := s.delegation(ctx, ch)
	if err != nil {
		return err
	}
	rec := v1alpha1.NewChallengeRecord(d.Namespace, target, ch.Key)
	rec.Annotations = map[string]string{
		v1alpha1.CreatedAtAnnotation: time.Now().UTC().Format(time.RFC3339Nano),
		v1alpha1.DomainAnnotation:    d.Spec.Domain,
	}
	uid := ch.UID
	if uid == "" && s.ChallengeUID != nil {
		if uid, err = s.ChallengeUID(ctx, ch.Key, ch.DNSName); err != nil {
			return fmt.Errorf("acmezone: %w", err)
		}
	}
	if uid != "" {
		rec.Labels = map[string]string{ChallengeUIDLabel: string(uid)}
	}
	err = s.Client.Create(ctx, rec)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("acmezone: create ChallengeRecord %s/%s for %s: %w", rec.Namespace, rec.Name, target, err)
	}
	logf.FromContext(ctx).Info("presented", "namespace", d.Namespace, "delegation", d.Name, "target", target, "challengeRecord", rec.Name)
	return nil
}

// CleanUp implements webhook.Solver: it deletes exactly the record for (target, key), so the
// other key at the same name (apex and wildcard challenges share one) stays.
func (s *Solver) CleanUp(ch *whapi.ChallengeRequest) (err error) {
	defer observe("cleanup", time.Now(), &err)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	d, target, err := s.delegation(ctx, ch)
	if err != nil {
		return err
	}
	rec := v1alpha1.NewChallengeRecord(d.Namespace, target, ch.Key)
	if err := s.Client.Delete(ctx, rec); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("acmezone: delete ChallengeRecord %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	return nil
}

// delegation validates the request and finds the Delegation of the request's namespace that
// answers it (controller.Options.FindDelegation) and that Delegation's own target: the only
// name the solver writes at. Nothing outside the request's namespace is looked at, so no
// answer tells anything about other namespaces.
func (s *Solver) delegation(ctx context.Context, ch *whapi.ChallengeRequest) (*v1alpha1.Delegation, string, error) {
	if err := validate(ch); err != nil {
		return nil, "", refusal{ResultInvalid, err}
	}
	if s.Options == nil || !s.Options.TargetKey.Valid() {
		return nil, "", refusal{ResultNotReady, fmt.Errorf("acmezone: the solver is starting (no target key loaded yet); cert-manager retries")}
	}
	domain := v1alpha1.DomainKey(ch.DNSName)
	resolved := ch.ResolvedFQDN
	if domain == "" {
		domain = strings.TrimPrefix(v1alpha1.DomainKey(resolved), "_acme-challenge.")
	}
	d, target, err := s.Options.FindDelegation(ctx, s.Client, ch.ResourceNamespace, domain, resolved)
	switch {
	case err != nil && d == nil:
		return nil, "", fmt.Errorf("acmezone: %w", err)
	case err != nil:
		return nil, "", refusal{ResultNotReady, fmt.Errorf("acmezone: Delegation %s/%s for %s has no target: %w", d.Namespace, d.Name, domain, err)}
	case d == nil:
		advice := "create one (a Delegation with spec.domain " + domain + ")"
		if s.Options.AutoDelegate {
			advice = "acmezone-controller creates one for this Challenge shortly (auto-delegation is on)"
		} else {
			advice += " or enable auto-delegation (--auto-delegate)"
		}
		return nil, "", refusal{ResultNoDelegation, fmt.Errorf("acmezone: no Delegation for %s in namespace %s; %s", domain, ch.ResourceNamespace, advice)}
	}
	return d, target, nil
}

// validate rejects requests that cannot be served, with what is wrong.
func validate(ch *whapi.ChallengeRequest) error {
	switch {
	case ch == nil:
		return fmt.Errorf("acmezone: empty challenge request")
	case ch.ResourceNamespace == "":
		return fmt.Errorf("acmezone: the challenge request has no resourceNamespace")
	case ch.DNSName == "" && ch.ResolvedFQDN == "":
		return fmt.Errorf("acmezone: the challenge request names no domain (dnsName and resolvedFQDN are empty)")
	case !v1alpha1.IsKeyAuthorizationDigest(ch.Key):
		return fmt.Errorf("acmezone: the challenge key must be an ACME DNS-01 value: 43 characters of base64url (the SHA-256 digest of the key authorization)")
	}
	if ch.ResolvedFQDN != "" {
		if _, ok := dns.IsDomainName(ch.ResolvedFQDN); !ok {
			return fmt.Errorf("acmezone: resolvedFQDN %q is not a domain name", ch.ResolvedFQDN)
		}
	}
	if ch.DNSName != "" {
		if _, ok := dns.IsDomainName(ch.DNSName); !ok {
			return fmt.Errorf("acmezone: dnsName %q is not a domain name", ch.DNSName)
		}
	}
	if ch.Config != nil && len(ch.Config.Raw) > 0 {
		var cfg map[string]json.RawMessage
		if err := json.Unmarshal(ch.Config.Raw, &cfg); err != nil {
			return fmt.Errorf("acmezone: the solver config is not a JSON object: %v", err)
		}
		if len(cfg) > 0 {
			return fmt.Errorf("acmezone: the solver takes no config, remove the webhook config fields from the Issuer")
		}
	}
	return nil
}
