// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// ClusterResourceNamespace is cert-manager's: ClusterIssuer challenges, and so their
// Delegations, live there.
const ClusterResourceNamespace = "cert-manager"

// Stack is every part of the seed's flow, running on loopback.
type Stack struct {
	Dir         string
	KeyFile     string             // the target key, shared by acmezone's CoreDNS and controller
	Key         v1alpha1.TargetKey // its content
	CP          *ControlPlane
	Client      client.Client
	Provider    *Provider
	Resolver    *Process
	Acmezone    *Process
	Secondary   *Secondary  // with Options.Secondary
	TSIG        TSIGKey     // the secondary's key, with Options.Secondary
	ProviderKey *SigningKey // example.com's key, with Options.DNSSEC
	ZoneKey     *SigningKey // acme.example.com's key, with Options.DNSSEC
	Controller  *Process
	Pebble      *Pebble
	CertManager *Process
	procs       []*Process
}

// Up starts the stack in dir from the binaries in root/bin, logging each step with logf.
// controllerArgs are added to acmezone-controller's command line (a later flag wins).
func Up(ctx context.Context, root, dir string, logf func(string, ...any), controllerArgs ...string) (s *Stack, err error) {
	return UpWith(ctx, root, dir, logf, Options{ControllerArgs: controllerArgs})
}

// Options change the stack for one stage.
type Options struct {
	// ControllerArgs are added to acmezone-controller's command line (a later flag wins).
	ControllerArgs []string
	// DNSSEC signs example.com at the provider and acme.example.com at acmezone's CoreDNS
	// (CoreDNS's dnssec plugin, online), publishes acme.example.com's DS at the provider, makes
	// unbound validate with example.com's key as its trust anchor, and gives the controller
	// the zone's public key (--dnssec-key).
	DNSSEC bool
	// Secondary makes acmezone's CoreDNS a hidden primary: Knot on SecondaryIP, fed by
	// TSIG-signed NOTIFY and transfers, is the zone's only name server at the provider, and
	// the SOA refresh is an hour, so only a NOTIFY brings a change to it quickly.
	Secondary bool
}

// UpWith is Up as o says.
func UpWith(ctx context.Context, root, dir string, logf func(string, ...any), o Options) (s *Stack, err error) {
	s = &Stack{Dir: dir}
	controllerArgs := o.ControllerArgs
	defer func() {
		if err != nil {
			s.Down()
		}
	}()
	if s.KeyFile, s.Key, err = WriteTargetKey(dir); err != nil {
		return nil, err
	}
	bin := func(name string) string { return filepath.Join(root, "bin", name) }
	step := func(what string, fn func() error) error {
		start := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		logf("%-44s %6.1fs", what, time.Since(start).Seconds())
		return nil
	}
	unbound, err := exec.LookPath("unbound")
	if err != nil {
		return nil, fmt.Errorf("unbound is not installed (apt-get install unbound)")
	}
	cmCRDs, err := kubetest.CertManagerCRDs()
	if err != nil {
		return nil, err
	}
	pebbleDir, err := PebbleModuleDir(root)
	if err != nil {
		return nil, err
	}

	if err := step("kube-apiserver + etcd (aggregation on loopback)", func() (err error) {
		s.CP, err = StartControlPlane(dir, filepath.Join(root, "deploy", "crds"), cmCRDs)
		if err != nil {
			return err
		}
		s.Client, err = client.New(s.CP.Config, client.Options{Scheme: kubetest.Scheme()})
		if err != nil {
			return err
		}
		for _, ns := range []string{ClusterResourceNamespace} {
			if err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var az AcmezoneConfig
	provider := ProviderConfig{Listen: ProviderIP + ":53"}
	resolver := Resolver{Listen: ResolverIP + ":53", Allow: "127.0.0.0/8", Provider: ProviderIP + ":53"}
	if o.DNSSEC {
		if s.ProviderKey, err = GenerateSigningKey(dir, "example.com."); err != nil {
			return nil, err
		}
		if s.ZoneKey, err = GenerateSigningKey(dir, "acme.example.com."); err != nil {
			return nil, err
		}
		az.Plugins = append(az.Plugins, s.ZoneKey.Corefile())
		provider.Key = s.ProviderKey
		provider.Records = append(provider.Records, s.ZoneKey.DSLine())
		resolver.TrustAnchor = s.ProviderKey.TrustAnchor()
		controllerArgs = append([]string{"--dnssec-key=" + s.ZoneKey.Base + ".key"}, controllerArgs...)
	}
	if o.Secondary {
		if s.TSIG, err = NewTSIGKey("xfr.acme.example.com."); err != nil {
			return nil, err
		}
		az = az.HiddenPrimary(s.TSIG)
		provider.NameServers = []NameServer{{Label: "ns2", IP: SecondaryIP}}
		s.CP.NameServer = "ns2.example.com=" + SecondaryIP
	}
	if err := step("acmezone CoreDNS on "+AcmezoneIP+":53", func() (err error) {
		s.Acmezone, err = StartAcmezoneWith(ctx, dir, bin("coredns"), s.CP.Kubeconfig, s.KeyFile, az)
		s.track(s.Acmezone)
		return err
	}); err != nil {
		return nil, err
	}
	if o.Secondary {
		if err := step("secondary (Knot) on "+SecondaryIP+":53", func() error {
			knotd, err := Knotd()
			if err != nil {
				return err
			}
			s.Secondary, err = StartSecondary(ctx, dir, knotd, AcmezoneIP+":53", s.TSIG)
			if s.Secondary != nil {
				s.track(s.Secondary.Process)
			}
			return err
		}); err != nil {
			return nil, err
		}
	}
	if err := step("DNS provider (CoreDNS file) on "+ProviderIP+":53", func() (err error) {
		s.Provider, err = StartProviderWith(ctx, dir, bin("coredns"), provider)
		if s.Provider != nil {
			s.track(s.Provider.Process)
		}
		return err
	}); err != nil {
		return nil, err
	}
	if err := step("resolver (unbound) on "+ResolverIP+":53", func() (err error) {
		s.Resolver, err = StartResolverAt(ctx, dir, unbound, resolver)
		s.track(s.Resolver)
		return err
	}); err != nil {
		return nil, err
	}
	if err := step("acmezone-controller, webhook on "+WebhookIP+":443, acme-dns API on "+ACMEDNSAddr, func() (err error) {
		s.Controller, err = s.CP.StartController(dir, bin("acmezone-controller"), s.KeyFile, controllerArgs...)
		s.track(s.Controller)
		if err != nil {
			return err
		}
		if err := s.CP.RegisterWebhook(ctx); err != nil {
			return err
		}
		return WaitACMEDNS(ctx, s.Controller)
	}); err != nil {
		return nil, err
	}
	if err := step("Pebble on 127.0.0.1:14000", func() (err error) {
		s.Pebble, err = StartPebble(ctx, dir, bin("pebble"), pebbleDir)
		if s.Pebble != nil {
			s.track(s.Pebble.Process)
		}
		return err
	}); err != nil {
		return nil, err
	}
	if err := step("cert-manager controller", func() (err error) {
		s.CertManager, err = Start(dir, "cert-manager-controller", bin("cert-manager-controller"),
			"--kubeconfig="+s.CP.Kubeconfig,
			"--cluster-resource-namespace="+ClusterResourceNamespace,
			"--dns01-recursive-nameservers="+ResolverIP+":53",
			"--dns01-recursive-nameservers-only",
			"--leader-elect=false",
		)
		s.track(s.CertManager)
		return err
	}); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stack) track(p *Process) {
	if p != nil {
		s.procs = append(s.procs, p)
	}
}

// Processes returns the started processes, for their logs.
func (s *Stack) Processes() []*Process { return s.procs }

// Down stops every process and the control plane.
func (s *Stack) Down() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Stop()
	}
	if s.CP != nil {
		s.CP.Stop()
	}
}

// ClusterIssuer returns an ACME ClusterIssuer at Pebble whose solvers are the given ones.
func (s *Stack) ClusterIssuer(name string, solvers ...cmacme.ACMEChallengeSolver) *cmapi.ClusterIssuer {
	return s.Pebble.ClusterIssuer(name, solvers...)
}

// ClusterIssuer returns an ACME ClusterIssuer at this Pebble whose solvers are the given ones.
func (p *Pebble) ClusterIssuer(name string, solvers ...cmacme.ACMEChallengeSolver) *cmapi.ClusterIssuer {
	return &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{ACME: &cmacme.ACMEIssuer{
			Server:     p.Directory,
			CABundle:   p.CABundle,
			Email:      "admin@example.com",
			PrivateKey: cmmetaSecret(name + "-account"),
			Solvers:    solvers,
		}}},
	}
}

// Events returns the notes of the Events about an object, "Type Reason: note".
func (s *Stack) Events(ctx context.Context, obj client.Object) ([]string, error) {
	var list eventsv1.EventList
	if err := s.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil, err
	}
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.UID == obj.GetUID() {
			notes = append(notes, e.Type+" "+e.Reason+": "+e.Note)
		}
	}
	return notes, nil
}

func cmmetaSecret(name string) cmmeta.SecretKeySelector {
	return cmmeta.SecretKeySelector{LocalObjectReference: cmmeta.LocalObjectReference{Name: name}}
}

// Target is the target of namespace's Delegation for domain: where its records are served.
func (s *Stack) Target(namespace, domain string) string {
	t, err := s.Key.Target(v1alpha1.TargetClaim{Namespace: namespace, Domain: domain}, "acme.example.com.")
	if err != nil {
		panic(err)
	}
	return t
}

// WildcardCertificate is the seed's Certificate: example.com and *.example.com in namespace
// shop, Secret wildcard-tls, from the ClusterIssuer ci.
func WildcardCertificate(ci *cmapi.ClusterIssuer) *cmapi.Certificate {
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "wildcard"},
		Spec: cmapi.CertificateSpec{
			SecretName: "wildcard-tls",
			DNSNames:   []string{"example.com", "*.example.com"},
			IssuerRef:  cmmeta.IssuerReference{Name: ci.Name, Kind: cmapi.ClusterIssuerKind},
		},
	}
}

// AcmezoneSolver is the DNS-01 solver of acmezone's webhook.
func AcmezoneSolver() cmacme.ACMEChallengeSolver {
	return cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{
		Webhook: &cmacme.ACMEIssuerDNS01ProviderWebhook{GroupName: solverAPIGroup, SolverName: "acmezone"},
	}}
}
