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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/acmezone/acmezone/api/v1alpha1"
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
	// Client talks to the API server; Initialize creates it when nil.
	Client client.Client
	// AutoDelegate says whether the Challenge watcher creates missing Delegations; it only
	// changes the advice in error messages.
	AutoDelegate bool
	// OnInitialize, when set, runs at the end of Initialize with the same arguments: the
	// controller's main starts its manager there, once the webhook server is up.
	OnInitialize func(cfg *rest.Config, stopCh <-chan struct{}) error
}

// Name implements webhook.Solver.
func (s *Solver) Name() string { return SolverName }

// Initialize implements webhook.Solver.
func (s *Solver) Initialize(cfg *rest.Config, stopCh <-chan struct{}) error {
	if s.Client == nil {
		scheme := runtime.NewScheme()
		if err := v1alpha1.AddToScheme(scheme); err != nil {
			return err
		}
		c, err := client.New(cfg, client.Options{Scheme: scheme})
		if err != nil {
			return fmt.Errorf("create API client: %w", err)
		}
		s.Client = c
	}
	if s.OnInitialize != nil {
		return s.OnInitialize(cfg, stopCh)
	}
	return nil
}

// Present implements webhook.Solver. A second Present of the same key is a no-op.
func (s *Solver) Present(ch *whapi.ChallengeRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	d, err := s.delegation(ctx, ch)
	if err != nil {
		return err
	}
	target := d.EffectiveTarget()
	rec := v1alpha1.NewChallengeRecord(d.Namespace, target, ch.Key)
	rec.Annotations = map[string]string{v1alpha1.CreatedAtAnnotation: time.Now().UTC().Format(time.RFC3339Nano)}
	if ch.UID != "" {
		rec.Labels = map[string]string{ChallengeUIDLabel: string(ch.UID)}
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
func (s *Solver) CleanUp(ch *whapi.ChallengeRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	d, err := s.delegation(ctx, ch)
	if err != nil {
		return err
	}
	rec := v1alpha1.NewChallengeRecord(d.Namespace, d.EffectiveTarget(), ch.Key)
	if err := s.Client.Delete(ctx, rec); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("acmezone: delete ChallengeRecord %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	return nil
}

// delegation validates the request and finds the Delegation it may write at: in the request's
// namespace, whose target is the resolved name (cert-manager's cnameStrategy Follow, or a
// target inside the user's own zone), else whose domain is the challenge's DNS name. The
// namespace must own that target.
func (s *Solver) delegation(ctx context.Context, ch *whapi.ChallengeRequest) (*v1alpha1.Delegation, error) {
	if err := validate(ch); err != nil {
		return nil, err
	}
	var list v1alpha1.DelegationList
	if err := s.Client.List(ctx, &list, client.InNamespace(ch.ResourceNamespace)); err != nil {
		return nil, fmt.Errorf("acmezone: list Delegations in namespace %s: %w", ch.ResourceNamespace, err)
	}
	fqdn := v1alpha1.CanonicalName(ch.ResolvedFQDN)
	domain := v1alpha1.CanonicalName(strings.TrimPrefix(ch.DNSName, "*."))
	var found *v1alpha1.Delegation
	for i := range list.Items {
		if list.Items[i].EffectiveTarget() == fqdn {
			found = &list.Items[i]
			break
		}
	}
	if found == nil {
		for i := range list.Items {
			if v1alpha1.CanonicalName(list.Items[i].Spec.Domain) == domain {
				found = &list.Items[i]
				break
			}
		}
	}
	if found == nil {
		if other, err := s.delegatedElsewhere(ctx, domain); err != nil {
			return nil, err
		} else if other != nil {
			return nil, fmt.Errorf("acmezone: no Delegation for %s in namespace %s; %s is delegated in namespace %s (Delegation %s/%s), and only issuers that use that namespace can answer its challenges",
				strings.TrimSuffix(domain, "."), ch.ResourceNamespace, strings.TrimSuffix(domain, "."), other.Namespace, other.Namespace, other.Name)
		}
		advice := "create one (kubectl create a Delegation with spec.domain " + strings.TrimSuffix(domain, ".") + ")"
		if s.AutoDelegate {
			advice = "acmezone-controller creates one for this Challenge shortly (auto-delegation is on)"
		} else {
			advice += " or enable auto-delegation (--auto-delegate)"
		}
		return nil, fmt.Errorf("acmezone: no Delegation for %s in namespace %s; %s", strings.TrimSuffix(domain, "."), ch.ResourceNamespace, advice)
	}
	if c := meta.FindStatusCondition(found.Status.Conditions, v1alpha1.ConditionConflict); c != nil && c.Status == metav1.ConditionTrue {
		return nil, fmt.Errorf("acmezone: Delegation %s/%s is in conflict: %s", found.Namespace, found.Name, c.Message)
	}
	target := found.EffectiveTarget()
	if target == "" {
		return nil, fmt.Errorf("acmezone: Delegation %s/%s for %s has no target yet; acmezone-controller assigns one, retrying", found.Namespace, found.Name, found.Spec.Domain)
	}
	if owner, err := s.owner(ctx, target); err != nil {
		return nil, err
	} else if owner.Namespace != found.Namespace {
		return nil, fmt.Errorf("acmezone: the target %s belongs to Delegation %s/%s, not to namespace %s; records written here would not be served. Delete Delegation %s/%s or use another domain", target, owner.Namespace, owner.Name, found.Namespace, found.Namespace, found.Name)
	}
	return found, nil
}

// delegatedElsewhere returns the owning Delegation of domain in any namespace, or nil.
func (s *Solver) delegatedElsewhere(ctx context.Context, domain string) (*v1alpha1.Delegation, error) {
	return s.strongest(ctx, func(d *v1alpha1.Delegation) bool { return v1alpha1.CanonicalName(d.Spec.Domain) == domain })
}

// owner returns the Delegation that owns target, with the rule the CoreDNS plugin applies.
func (s *Solver) owner(ctx context.Context, target string) (*v1alpha1.Delegation, error) {
	return s.strongest(ctx, func(d *v1alpha1.Delegation) bool { return d.EffectiveTarget() == target })
}

// strongest returns, among all Delegations that match accepts, the one with the strongest
// v1alpha1.Claim, or nil.
func (s *Solver) strongest(ctx context.Context, match func(*v1alpha1.Delegation) bool) (*v1alpha1.Delegation, error) {
	var all v1alpha1.DelegationList
	if err := s.Client.List(ctx, &all); err != nil {
		return nil, fmt.Errorf("acmezone: list Delegations: %w", err)
	}
	var best *v1alpha1.Delegation
	for i := range all.Items {
		d := &all.Items[i]
		if match(d) && (best == nil || d.Claim().Before(best.Claim())) {
			best = d
		}
	}
	return best, nil
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
	case ch.Key == "" || len(ch.Key) > 255 || strings.IndexFunc(ch.Key, func(r rune) bool { return r < ' ' || r > '~' }) >= 0:
		return fmt.Errorf("acmezone: the challenge key must be 1 to 255 printable ASCII characters")
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
