// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Command cert-manager-cainjector runs cert-manager's CA injector, wired from its exported
// package pkg/controller/cainjector (the Go module proxy does not serve cert-manager's
// cmd/cainjector module): it copies a CA bundle, named by the cert-manager.io/inject-ca-from
// annotations, into APIServices, CRD conversion webhooks and webhook configurations. acmezone's
// deploy/ relies on it for the caBundle of its webhook APIService.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	kscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	logsapi "k8s.io/component-base/logs/api/v1"
	apireg "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cmscheme "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/scheme"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"
)

// certificatesCRD must exist before the manager starts: the injectors watch Certificates (the
// certificates data source), and a watch on an unknown kind stops the manager.
const certificatesCRD = "certificates.cert-manager.io"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-cainjector:", err)
		os.Exit(1)
	}
}

func run() error {
	logf.InitLogs()
	defer logf.FlushLogs()
	setAppVersion()
	var kubeconfig, namespace, leaseNamespace, metricsAddr string
	var leaderElect bool
	fs := pflag.CommandLine
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Path to a kubeconfig (empty: in-cluster).")
	fs.StringVar(&namespace, "namespace", "", "Namespace whose injectables and sources to watch (empty: all namespaces).")
	fs.BoolVar(&leaderElect, "leader-elect", false, "Take a Lease before running the injectors.")
	fs.StringVar(&leaseNamespace, "leader-election-namespace", "kube-system", "Namespace of the leader-election Lease.")
	fs.StringVar(&metricsAddr, "metrics-listen-address", ":9402", "Address of the Prometheus metrics endpoint (\"0\": none).")
	logging := logsapi.NewLoggingConfiguration()
	logf.AddFlagsNonDeprecated(logging, fs) // --v, --vmodule, --logging-format, --log-flush-frequency
	pflag.Parse()
	if err := logf.ValidateAndApply(logging); err != nil {
		return err
	}
	// RegisterAllInjectors and the manager log through controller-runtime's logger.
	ctrl.SetLogger(logf.Log)

	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return err
	}
	cfg = util.RestConfigWithUserAgent(cfg, "cainjector")

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{kscheme.AddToScheme, cmscheme.AddToScheme, apiext.AddToScheme, apireg.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	var namespaces map[string]cache.Config
	if namespace != "" {
		namespaces = map[string]cache.Config{namespace: {}}
	}
	// cert-manager's leader-election defaults (internal/apis/config/shared/v1alpha1/defaults.go),
	// restated as the controller's main does.
	leaseDuration, renewDeadline, retryPeriod := 60*time.Second, 40*time.Second, 15*time.Second
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Cache:  cache.Options{ReaderFailOnMissingInformer: true, DefaultNamespaces: namespaces},
		// Secrets are read from the API server when an injectable is reconciled, never cached:
		// a cluster's Secrets may be many and large. The injectors watch their metadata only.
		Client:  client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics: metricsserver.Options{BindAddress: metricsAddr},

		LeaderElection:                leaderElect,
		LeaderElectionNamespace:       leaseNamespace,
		LeaderElectionID:              "cert-manager-cainjector-leader-election",
		LeaderElectionResourceLock:    resourcelock.LeasesResourceLock,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &leaseDuration,
		RenewDeadline:                 &renewDeadline,
		RetryPeriod:                   &retryPeriod,
	})
	if err != nil {
		return fmt.Errorf("create the manager: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logf.Log.WithName("cainjector")
	ctx = logf.NewContext(ctx, log)
	if err := waitForCRD(ctx, mgr, log.Info); err != nil {
		if ctx.Err() != nil {
			log.Info("stopped")
			return nil
		}
		return err
	}
	opts := cainjector.SetupOptions{
		Namespace:                    namespace,
		EnableCertificatesDataSource: true,
		EnabledReconcilersFor: map[string]bool{
			cainjector.MutatingWebhookConfigurationName:   true,
			cainjector.ValidatingWebhookConfigurationName: true,
			cainjector.APIServiceName:                     true,
			cainjector.CustomResourceDefinitionName:       true,
		},
	}
	if err := cainjector.RegisterAllInjectors(ctx, mgr, opts); err != nil {
		return fmt.Errorf("register the injectors: %w", err)
	}
	log.Info("starting", "namespace", namespace, "leaderElect", leaderElect, "metrics", metricsAddr)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run the manager: %w", err)
	}
	log.Info("stopped")
	return nil
}

// restConfig reads the kubeconfig at path, or the pod's service account when path is empty.
func restConfig(path string) (*rest.Config, error) {
	if path == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config (pass --kubeconfig outside a pod): %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// waitForCRD polls, for up to five minutes as cert-manager's cainjector does, until the
// Certificate CRD is installed: the CRDs may be applied after the injector starts. Errors of
// the API server are retried too (it may still be starting) and the last one is reported.
func waitForCRD(ctx context.Context, mgr ctrl.Manager, info func(string, ...any)) error {
	c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, types.NamespacedName{Name: certificatesCRD}, &apiext.CustomResourceDefinition{})
		if err != nil && last == nil {
			info("waiting for the CRD", "name", certificatesCRD, "error", err.Error())
		}
		last = err
		return err == nil, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err() // stopped by a signal while waiting
	case apierrors.IsNotFound(last):
		return fmt.Errorf("CRD %s not found after 5 minutes: apply cert-manager's CRDs", certificatesCRD)
	default:
		return fmt.Errorf("get CRD %s: %w", certificatesCRD, last)
	}
}

// setAppVersion stamps cert-manager's version (user agent) with the version of the
// cert-manager module this binary was built from.
func setAppVersion() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "github.com/cert-manager/cert-manager" {
				util.AppVersion = dep.Version
			}
		}
	}
}
