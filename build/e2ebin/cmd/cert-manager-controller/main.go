// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Command cert-manager-controller runs cert-manager's own controllers for ACME
// issuance, wired from cert-manager's exported library packages: the Go module
// proxy does not serve cert-manager's cmd/controller module.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	logsapi "k8s.io/component-base/logs/api/v1"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"

	// Each controller package registers itself in controllerpkg.Known().
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// Issuer types the (cluster)issuers controllers can set up.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-controller:", err)
		os.Exit(1)
	}
}

func run() error {
	logf.InitLogs()
	defer logf.FlushLogs()
	setAppVersion()
	// Defaults are cert-manager's (internal/apis/config/controller/v1alpha1/defaults.go). They
	// are restated here because the only exported path to them, pkg/controller/configfile,
	// imports every controller including Venafi's, whose module the proxy does not serve.
	opts := controllerpkg.ContextOptions{
		KubernetesAPIQPS: 20, KubernetesAPIBurst: 50,
		IssuerOptions: controllerpkg.IssuerOptions{ClusterIssuerAmbientCredentials: true},
		ACMEOptions: controllerpkg.ACMEOptions{
			HTTP01SolverResourceRequestCPU:    resource.MustParse("10m"),
			HTTP01SolverResourceRequestMemory: resource.MustParse("64Mi"),
			HTTP01SolverResourceLimitsCPU:     resource.MustParse("100m"),
			HTTP01SolverResourceLimitsMemory:  resource.MustParse("64Mi"),
			ACMEHTTP01SolverRunAsNonRoot:      true,
			DNS01CheckRetryPeriod:             10 * time.Second,
		},
		IngressShimOptions: controllerpkg.IngressShimOptions{DefaultIssuerKind: "Issuer", DefaultIssuerGroup: "cert-manager.io",
			DefaultAutoCertificateAnnotations: []string{"kubernetes.io/tls-acme"}, GatewayAPIExtraProtocols: sets.New[string]()},
		CertificateOptions: controllerpkg.CertificateOptions{
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
		SchedulerOptions: controllerpkg.SchedulerOptions{MaxConcurrentChallenges: 60},
	}
	workers := 5
	var recursiveOnly, leaderElect bool
	var leaseNamespace string
	var controllers []string
	fs := pflag.CommandLine
	fs.StringVar(&opts.Kubeconfig, "kubeconfig", "", "Path to a kubeconfig (empty: in-cluster).")
	fs.StringVar(&opts.Namespace, "namespace", "", "Namespace to watch (empty: all namespaces).")
	fs.StringVar(&opts.ClusterResourceNamespace, "cluster-resource-namespace", "cert-manager", "Namespace for the Secrets and Challenges of ClusterIssuers.")
	fs.StringSliceVar(&opts.DNS01Nameservers, "dns01-recursive-nameservers", nil, "Comma-separated host:port resolvers for the DNS-01 self-check (empty: /etc/resolv.conf).")
	fs.BoolVar(&recursiveOnly, "dns01-recursive-nameservers-only", false, "Check DNS-01 records only through the recursive nameservers, not the authoritative ones.")
	fs.StringVar(&opts.HTTP01SolverImage, "acme-http01-solver-image", "quay.io/jetstack/cert-manager-acmesolver:"+util.AppVersion, "Image of the HTTP-01 solver pods.")
	fs.BoolVar(&leaderElect, "leader-elect", false, "Take a Lease before running the controllers.")
	fs.StringVar(&leaseNamespace, "leader-election-namespace", "kube-system", "Namespace of the leader-election Lease.")
	fs.StringSliceVar(&controllers, "controllers", []string{"*"}, "Controllers to run; '*' runs all of this binary's.")
	logging := logsapi.NewLoggingConfiguration()
	logf.AddFlagsNonDeprecated(logging, fs) // --v, --vmodule, --logging-format, --log-flush-frequency
	pflag.Parse()
	if err := logf.ValidateAndApply(logging); err != nil {
		return err
	}
	for _, ns := range opts.DNS01Nameservers {
		if _, _, err := net.SplitHostPort(ns); err != nil && !strings.HasPrefix(ns, "https://") {
			return fmt.Errorf("--dns01-recursive-nameservers: %q is not host:port (or an https:// DoH URL)", ns)
		}
	}
	opts.DNS01CheckAuthoritative = !recursiveOnly

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logf.Log.WithName("controller")
	ctx = logf.NewContext(ctx, log)
	factory, err := controllerpkg.NewContextFactory(ctx, opts)
	if err != nil {
		return err
	}
	names := controllers
	if len(names) == 1 && names[0] == "*" {
		all := sets.KeySet(controllerpkg.Known())
		if opts.Namespace != "" { // as cert-manager does: no cluster-scoped controllers when namespaced
			all.Delete(clusterissuers.ControllerName)
		}
		names = sets.List(all)
	}
	var ctrls []controllerpkg.Interface
	for _, name := range names {
		construct, ok := controllerpkg.Known()[name]
		if !ok {
			return fmt.Errorf("unknown controller %q (known: %v)", name, sets.List(sets.KeySet(controllerpkg.Known())))
		}
		ctrl, err := construct(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		ctrls = append(ctrls, ctrl)
	}
	shared, err := factory.Build() // the informer factories every controller registered with
	if err != nil {
		return err
	}

	runErr := make(chan error, len(ctrls)+1)
	start := func(ctx context.Context) {
		log.Info("starting controllers", "controllers", names, "dns01Nameservers", opts.DNS01Nameservers, "dns01CheckAuthoritative", opts.DNS01CheckAuthoritative)
		shared.KubeSharedInformerFactory.Start(ctx.Done())
		shared.SharedInformerFactory.Start(ctx.Done())
		shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
		if shared.GatewaySolverEnabled {
			shared.GWShared.Start(ctx.Done())
		}
		var wg sync.WaitGroup
		for i, ctrl := range ctrls {
			wg.Go(func() {
				if err := ctrl.Run(workers, ctx); err != nil && ctx.Err() == nil {
					runErr <- fmt.Errorf("controller %s: %w", names[i], err)
					stop()
				}
			})
		}
		wg.Wait()
	}
	if !leaderElect {
		start(ctx)
	} else {
		host, _ := os.Hostname()
		lock, err := resourcelock.New(resourcelock.LeasesResourceLock, leaseNamespace, "cert-manager-controller",
			shared.Client.CoreV1(), shared.Client.CoordinationV1(),
			resourcelock.ResourceLockConfig{Identity: host + "-" + string(uuid.NewUUID()), EventRecorder: shared.Recorder})
		if err != nil {
			return err
		}
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock: lock, ReleaseOnCancel: true, Name: "cert-manager-controller",
			LeaseDuration: 60 * time.Second, RenewDeadline: 40 * time.Second, RetryPeriod: 15 * time.Second,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: start,
				OnStoppedLeading: func() {
					if ctx.Err() == nil {
						runErr <- fmt.Errorf("lost the leader-election lease")
					}
				},
			},
		})
	}
	select {
	case err := <-runErr:
		return err
	default:
		log.Info("stopped")
		return nil
	}
}

// setAppVersion stamps cert-manager's version (user agent, default solver image)
// with the version of the cert-manager module this binary was built from.
func setAppVersion() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "github.com/cert-manager/cert-manager" {
				util.AppVersion = dep.Version
			}
		}
	}
}
