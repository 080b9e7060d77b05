// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Command acmezone-controller is cert-manager's DNS-01 webhook solver for acmezone (served as
// an aggregated API by cert-manager's webhook server library), the Delegation reconciler and
// the Challenge watcher, in one process.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook/cmd/server"
	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/challenge"
	"github.com/acmezone/acmezone/controller/records"
	"github.com/acmezone/acmezone/controller/solver"
)

// version is stamped by `make build` with -ldflags -X.
var version = "dev"

// flags are acmezone's own flags, next to those of cert-manager's webhook server.
type flags struct {
	opts                     controller.Options
	nameservers              []string
	dnssecKeys               []string
	clusterResourceNamespace string
	leaderElect              bool
	leaderElectionNamespace  string
	metricsAddr              string
	metricsSecure            bool
	metricsCertDir           string
	probeAddr                string
	orphanResync             time.Duration
	targetKey                targetKeyFlags
	acmeDNS                  acmeDNSFlags
	rfc2136                  rfc2136Flags
	canary                   canaryFlags
}

func (f *flags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.opts.Zone, "zone", "", "The challenge zone served by acmezone's CoreDNS, e.g. acme.example.com (required). Targets are <uuid>.<zone>.")
	fs.StringArrayVar(&f.nameservers, "nameserver", nil, "A name server of the zone as NAME[=ADDRESS[,ADDRESS]], e.g. ns.example.com=34.84.45.1 (repeatable, at least one). Used for the records users must add and to verify the NS delegation.")
	fs.StringArrayVar(&f.opts.Resolvers, "resolver", nil, "A DNS resolver HOST:PORT used to verify delegations (repeatable). Default: the system's, from /etc/resolv.conf.")
	fs.StringArrayVar(&f.dnssecKeys, "dnssec-key", nil, "The public key (a .key file: the DNSKEY record, e.g. Secret acmezone-dnssec's item zone.key) the zone is signed with, by CoreDNS's dnssec plugin (repeatable, during a key rollover). Its DS becomes one more record to add, and a Delegation is Verified only when the parent has the DS and every name server serves the key, signed. Never the private key. Default: the zone is not signed.")
	fs.BoolVar(&f.opts.AutoDelegate, "auto-delegate", true, "Create a Delegation for a Challenge whose domain has none in the namespace cert-manager uses. It gets that namespace's own target, which is used only once the domain's CNAME points at it.")
	fs.StringVar(&f.clusterResourceNamespace, "cluster-resource-namespace", "cert-manager", "cert-manager's --cluster-resource-namespace: where the Delegations of ClusterIssuer challenges live.")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "Run the reconcilers on one replica at a time (the webhook solver serves on every replica).")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease. Default: the pod's namespace.")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":9402", "Address of the Prometheus metrics endpoint (/metrics); 0 disables it.")
	fs.BoolVar(&f.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS, to clients the API server authenticates (a bearer token) and authorizes (get on the non-resource URL /metrics, e.g. ClusterRole acmezone:metrics-reader). false serves plain HTTP to anyone who reaches the port.")
	fs.StringVar(&f.metricsCertDir, "metrics-cert-dir", "", "Directory with tls.crt and tls.key for the metrics endpoint; default: a self-signed certificate made at start (Prometheus then needs insecure_skip_verify or this flag).")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz; 0 disables them.")
	fs.DurationVar(&f.orphanResync, "orphan-resync", 5*time.Minute, "How often every ChallengeRecord is checked for a Challenge that is gone; no record outlives its Challenge for longer.")
	f.targetKey.add(fs)
	f.acmeDNS.add(fs)
	f.rfc2136.add(fs)
	f.canary.add(fs)
}

func (f *flags) complete() error {
	for _, s := range f.nameservers {
		ns, err := controller.ParseNameServer(s)
		if err != nil {
			return err
		}
		f.opts.NameServers = append(f.opts.NameServers, ns)
	}
	if err := f.rfc2136.complete(); err != nil {
		return err
	}
	if err := f.acmeDNS.complete(); err != nil {
		return err
	}
	if err := f.opts.Validate(); err != nil {
		return err
	}
	return f.loadDNSSECKeys()
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, cmacme.AddToScheme, cmapi.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// startManager runs the reconcilers until stopCh closes, and gives the solver the manager's
// client: the solver reads Delegations from the manager's cache, with its indexes. It is the
// solver's OnInitialize, so it starts once the webhook server is up, with the same API server
// connection.
func (f *flags) startManager(s *solver.Solver, cfg *rest.Config, stopCh <-chan struct{}) error {
	// One logging system: cert-manager's webhook library has configured klog from -v,
	// --vmodule and --logging-format (text or json) by now, and the reconcilers log through it.
	ctrl.SetLogger(klog.Background())
	metrics := metricsserver.Options{BindAddress: f.metricsAddr}
	if f.metricsSecure {
		// As kubebuilder does: TokenReview and SubjectAccessReview (the auth-delegator
		// binding the webhook server needs anyway) decide who may scrape.
		metrics.SecureServing = true
		metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
		metrics.CertDir = f.metricsCertDir
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme(),
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        "acmezone-controller.acmezone.io",
		LeaderElectionNamespace: f.leaderElectionNamespace,
		Metrics:                 metrics,
		HealthProbeBindAddress:  f.probeAddr,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := setupReconcilers(mgr, f); err != nil {
		if meta.IsNoMatchError(err) || strings.Contains(err.Error(), "no matches for") {
			return fmt.Errorf("%w: are cert-manager's CRDs (acme.cert-manager.io, cert-manager.io) and acmezone's (deploy/crds) installed?", err)
		}
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("caches not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := challenge.IndexChallengeKeys(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	s.Client = mgr.GetClient()
	s.ChallengeUID = challenge.UIDByKey(mgr.GetClient(), 2*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-stopCh
		cancel()
	}()
	go func() {
		if err := mgr.Start(ctx); err != nil {
			ctrl.Log.Error(err, "manager stopped")
			os.Exit(1)
		}
	}()
	return nil
}

func setupReconcilers(mgr ctrl.Manager, f *flags) error {
	if err := (&challenge.Reconciler{
		Client:                   mgr.GetClient(),
		Recorder:                 mgr.GetEventRecorder("acmezone-controller"),
		Options:                  &f.opts,
		ClusterResourceNamespace: f.clusterResourceNamespace,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the Challenge watcher: %w", err)
	}
	if err := (&challenge.OrphanReconciler{Client: mgr.GetClient(), Resync: f.orphanResync}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the ChallengeRecord reaper: %w", err)
	}
	if err := (&challenge.ServedReconciler{Client: mgr.GetClient(), Options: &f.opts}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the ChallengeRecord status: %w", err)
	}
	if err := setupDelegations(mgr, f); err != nil {
		return err
	}
	if err := setupRFC2136(mgr, f); err != nil {
		return err
	}
	return setupACMEDNS(mgr, f, f.opts.TargetKey)
}

// recordsCommand is `acmezone-controller records DOMAIN`.
func recordsCommand(f *flags) *cobra.Command {
	var target, kubeconfig, namespace string
	cmd := &cobra.Command{
		Use:   "records DOMAIN",
		Short: "Print the DNS records to add at your DNS provider for DOMAIN, and whether each resolves correctly now",
		Long: `Print, in the seed's table form, the records a user adds at their DNS provider so that
acmezone answers DOMAIN's DNS-01 challenges: the name server's A record, the NS delegation of
the zone, and the CNAME _acme-challenge.DOMAIN -> target. Each is looked up now.

The target is --target, or the one in the Delegation for DOMAIN found through --kubeconfig
(or the in-cluster config). Without --zone and --nameserver, the zone and its name servers
come from that Delegation's status too: what the installation's controller was given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain := v1alpha1.DomainKey(args[0])
			fromCluster := f.opts.Zone == "" && len(f.nameservers) == 0
			var found *v1alpha1.Delegation
			if target == "" || fromCluster {
				d, err := lookupDelegation(cmd.Context(), kubeconfig, namespace, domain)
				found = d
				switch {
				case err != nil && fromCluster:
					cmd.SilenceUsage = true
					return fmt.Errorf("no --zone and --nameserver given, and none from the cluster: %w; pass them, or --kubeconfig of the cluster acmezone runs in", err)
				case err != nil:
					fmt.Fprintf(cmd.ErrOrStderr(), "no target from the cluster (%v); pass --target\n", err)
				default:
					if target == "" {
						target = d.Status.Target
					}
					if fromCluster {
						if err := f.fromRecords(d.Status.Records); err != nil {
							return fmt.Errorf("Delegation %s/%s: %w", d.Namespace, d.Name, err)
						}
						fmt.Fprintf(cmd.ErrOrStderr(), "zone %s and its name servers from the status of Delegation %s/%s\n", f.opts.Zone, d.Namespace, d.Name)
					}
				}
			}
			if err := f.complete(); err != nil {
				return err
			}
			ok, err := records.Run(cmd.Context(), cmd.OutOrStdout(), f.opts, domain, target)
			if err != nil {
				return err
			}
			if found != nil && found.Spec.PersistentAuthorization != nil && found.Status.PersistTarget != "" {
				persistOK, err := records.RunPersist(cmd.Context(), cmd.OutOrStdout(), f.opts, domain, found.Status.PersistTarget)
				if err != nil {
					return err
				}
				ok = ok && persistOK
			}
			if found != nil {
				if err := writeCanary(cmd.OutOrStdout(), found); err != nil {
					return err
				}
			}
			if !ok {
				cmd.SilenceUsage = true
				return fmt.Errorf("some records are missing or wrong")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "target", "", "The Delegation's target, e.g. b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com.")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "Kubeconfig to find the Delegation with. Default: $KUBECONFIG, ~/.kube/config, or in-cluster.")
	cmd.Flags().StringVar(&namespace, "namespace", "", "Namespace of the Delegation; needed when Delegations for DOMAIN exist in several.")
	f.add(cmd.Flags())
	return cmd
}

// writeCanary prints what the controller last found: the Served condition (the canary) and
// the Certificates that depend on d, with their renewal dates.
func writeCanary(w io.Writer, d *v1alpha1.Delegation) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nDelegation %s/%s, as acmezone-controller last checked it:\n", d.Namespace, d.Name)
	switch c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionServed); {
	case c == nil:
		b.WriteString("  canary:   not run (off, or the Delegation was never Verified)\n")
	default:
		fmt.Fprintf(&b, "  canary:   Served %s (%s): %s\n", c.Status, c.Reason, c.Message)
	}
	if cs := d.Status.Canary; cs != nil && cs.LastSuccessTime != nil {
		fmt.Fprintf(&b, "            last came back %s", cs.LastSuccessTime.UTC().Format(time.RFC3339))
		if cs.ConsecutiveFailures > 0 {
			fmt.Fprintf(&b, "; %d failed since", cs.ConsecutiveFailures)
		}
		b.WriteString("\n")
	}
	if len(d.Status.Certificates) == 0 {
		b.WriteString("  certificates: none depends on it\n")
	}
	for i, c := range d.Status.Certificates {
		label := "  certificates:"
		if i > 0 {
			label = "               "
		}
		renews := "not issued yet"
		if c.RenewalTime != nil {
			renews = "renews " + c.RenewalTime.UTC().Format(time.RFC3339)
		}
		risk := ""
		if c.AtRisk {
			risk = "  AT RISK: restore the records above"
		}
		fmt.Fprintf(&b, "%s %s/%s %s%s\n", label, c.Namespace, c.Name, renews, risk)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// lookupDelegation finds the Delegation for domain that has a target: in namespace, or in the
// one namespace that has one.
func lookupDelegation(ctx context.Context, kubeconfig, namespace, domain string) (*v1alpha1.Delegation, error) {
	cfg, err := restConfig(kubeconfig)()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, err
	}
	var list v1alpha1.DelegationList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	var found []*v1alpha1.Delegation
	for i := range list.Items {
		if d := &list.Items[i]; v1alpha1.DomainKey(d.Spec.Domain) == domain && d.Status.Target != "" {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("no Delegation for %s has a target", domain)
	case len(found) > 1:
		var where []string
		for _, d := range found {
			where = append(where, d.Namespace+"/"+d.Name)
		}
		return nil, fmt.Errorf("Delegations for %s in several namespaces (%s), each with its own target: pass --namespace", domain, strings.Join(where, ", "))
	}
	return found[0], nil
}

// fromRecords takes the zone and its name servers from the records acmezone-controller lists
// in a Delegation's status (records.For): the NS records name both, the A and AAAA records
// give the name servers' addresses.
func (f *flags) fromRecords(recs []v1alpha1.DNSRecord) error {
	addrs := map[string][]string{}
	var names []string
	for _, r := range recs {
		switch r.Type {
		case records.TypeNS:
			f.opts.Zone = r.Name
			names = append(names, r.Content)
		case records.TypeA, records.TypeAAAA:
			addrs[r.Name] = append(addrs[r.Name], r.Content)
		case records.TypeDS:
			ds, err := dsFromRecord(r.Name, r.Content)
			if err != nil {
				return err
			}
			f.addDS(ds)
		}
	}
	if f.opts.Zone == "" {
		return fmt.Errorf("its status lists no NS record (acmezone-controller has not filled it in yet, or the Delegation has no valid target: see its Ready condition)")
	}
	for _, n := range names {
		ns := n
		if a := addrs[n]; len(a) > 0 {
			ns += "=" + strings.Join(a, ",")
		}
		f.nameservers = append(f.nameservers, ns)
	}
	return nil
}

func main() {
	ctx := ctrl.SetupSignalHandler()
	f := &flags{}
	s := &solver.Solver{Options: &f.opts}
	s.OnInitialize = func(cfg *rest.Config, stopCh <-chan struct{}) error { return f.startManager(s, cfg, stopCh) }
	cmd := server.NewCommandStartWebhookServer(ctx, solver.GroupName, s)
	cmd.Use = "acmezone-controller"
	cmd.Short = "acmezone's cert-manager DNS-01 webhook solver, Delegation reconciler and Challenge watcher"
	cmd.Long = fmt.Sprintf(`acmezone-controller serves cert-manager's DNS-01 webhook solver (groupName %s,
solverName %s) as an aggregated API, and runs the Delegation reconciler, the Challenge
watcher, the ChallengeRecord reaper and, with --acme-dns-listen, the acme-dns-compatible API.
Targets are derived from the target key (--target-key-secret or --target-key-file), shared with
acmezone's CoreDNS.
cert-manager's webhook-server flags (serving, authentication, authorization, --kubeconfig) come
first in the list below; acmezone's own are --zone, --nameserver, --resolver, --dnssec-key, --auto-delegate,
--cluster-resource-namespace, --leader-elect, --metrics-bind-address, --metrics-secure,
--metrics-cert-dir, --health-probe-bind-address, --orphan-resync, the --canary-* flags and
--failures-to-flip, and the --acme-dns-* flags of the acme-dns-compatible API.`, solver.GroupName, solver.SolverName)
	cmd.Version = version
	f.add(cmd.Flags())
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if err := f.complete(); err != nil {
			return err
		}
		if err := f.targetKey.validate(); err != nil {
			return err
		}
		// The flags are good: what fails from here on (the API server out of reach while it
		// restarts, say) is no usage error, and a page of flags would bury it in the log.
		c.SilenceUsage = true
		// The key before anything serves: the solver and every reconciler need it.
		kubeconfig := ""
		if fl := c.Flags().Lookup("kubeconfig"); fl != nil {
			kubeconfig = fl.Value.String()
		}
		if err := f.targetKey.load(c.Context(), restConfig(kubeconfig), true, &f.opts); err != nil {
			return err
		}
		return run(c, args)
	}
	cmd.AddCommand(recordsCommand(&flags{}), signTargetCommand(), dnssecKeyCommand())
	if err := cmd.ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}
