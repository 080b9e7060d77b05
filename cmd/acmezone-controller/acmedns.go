// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/spf13/pflag"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller/acmedns"
	"github.com/acmezone/acmezone/controller/challenge"
)

// acmeDNSFlags are the --acme-dns-* flags: the acme-dns-compatible HTTP API, off unless
// --acme-dns-listen is set.
type acmeDNSFlags struct {
	listen         string
	namespace      string
	registration   string
	trustedHeader  string
	trustedProxies string
	tlsCert        string
	tlsKey         string
	recordMaxAge   time.Duration
	maxBodyBytes   int64
	serverURL      string

	reg     acmedns.Registration
	proxies []netip.Prefix
}

func (f *acmeDNSFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.listen, "acme-dns-listen", "", "Address of the acme-dns-compatible API (/register, /update, /health), e.g. :8053. Empty: off.")
	fs.StringVar(&f.namespace, "acme-dns-namespace", acmedns.DefaultNamespace, "Namespace of the acme-dns accounts' Delegations, Secrets and ChallengeRecords.")
	fs.StringVar(&f.registration, "acme-dns-registration", "closed", "Who may POST /register: open, closed, or a comma-separated list of CIDRs.")
	fs.StringVar(&f.trustedHeader, "acme-dns-trusted-header", "", "Header in which a reverse proxy passes the client's address (e.g. X-Forwarded-For), believed only from --acme-dns-trusted-proxies and read from the right. Empty: the peer's address.")
	fs.StringVar(&f.trustedProxies, "acme-dns-trusted-proxies", "", "Comma-separated CIDRs of the reverse proxies whose --acme-dns-trusted-header is believed; required with it. A request from any other address is the peer's own, whatever header it carries.")
	fs.StringVar(&f.tlsCert, "acme-dns-tls-cert", "", "Certificate file (PEM) to serve the acme-dns API over HTTPS with; reloaded when it changes. Empty: plain HTTP.")
	fs.StringVar(&f.tlsKey, "acme-dns-tls-key", "", "Private key file (PEM) of --acme-dns-tls-cert.")
	fs.DurationVar(&f.recordMaxAge, "acme-dns-record-max-age", acmedns.DefaultRecordMaxAge, "How long a TXT value written through /update is kept when no cert-manager Challenge with that key exists (one that does keeps it until it is gone).")
	fs.StringVar(&f.serverURL, "acme-dns-server-url", "", "URL at which cert-manager reaches the acme-dns API, e.g. http://acmezone-controller.acmezone.svc:8053; written as server_url into the account Secrets of Delegations annotated "+v1alpha1.ACMEDNSSecretAnnotation+". Required for those.")
	fs.Int64Var(&f.maxBodyBytes, "acme-dns-max-body-bytes", acmedns.DefaultMaxBodyBytes, "Largest request body the acme-dns API reads.")
}

func (f *acmeDNSFlags) complete() error {
	reg, err := acmedns.ParseRegistration(f.registration)
	if err != nil {
		return err
	}
	f.reg = reg
	switch {
	case f.trustedHeader != "" && f.trustedProxies == "":
		return fmt.Errorf("--acme-dns-trusted-header %s needs --acme-dns-trusted-proxies CIDR[,CIDR...]: add the addresses of the reverse proxies that set the header (e.g. the ingress controller's pods); from anyone else the header is a client's own claim", f.trustedHeader)
	case f.trustedHeader == "" && f.trustedProxies != "":
		return fmt.Errorf("--acme-dns-trusted-proxies needs --acme-dns-trusted-header: add the header those proxies put the client's address in, e.g. X-Forwarded-For")
	case f.trustedProxies != "":
		if f.proxies, err = acmedns.ParseCIDRs(f.trustedProxies); err != nil {
			return fmt.Errorf("--acme-dns-trusted-proxies %q: %w; write CIDR[,CIDR...]", f.trustedProxies, err)
		}
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return fmt.Errorf("--acme-dns-tls-cert and --acme-dns-tls-key go together")
	}
	if f.recordMaxAge <= 0 {
		return fmt.Errorf("--acme-dns-record-max-age must be positive, e.g. 1h")
	}
	if f.serverURL != "" {
		u, err := url.Parse(f.serverURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("--acme-dns-server-url %q is not an http:// or https:// URL with a host, e.g. http://acmezone-controller.acmezone.svc:8053", f.serverURL)
		}
	}
	return nil
}

// acmeDNSRunnable serves the acme-dns API until the manager stops. It runs on every replica,
// like the webhook solver, not only on the leader.
type acmeDNSRunnable struct {
	srv     *http.Server
	watcher *certwatcher.CertWatcher
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (*acmeDNSRunnable) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (r *acmeDNSRunnable) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", r.srv.Addr)
	if err != nil {
		return fmt.Errorf("acme-dns API: %w", err)
	}
	if r.watcher != nil {
		go func() { _ = r.watcher.Start(ctx) }()
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: r.watcher.GetCertificate, MinVersion: tls.VersionTLS12})
	}
	errc := make(chan error, 1)
	go func() { errc <- r.srv.Serve(ln) }()
	ctrl.Log.WithName("acme-dns").Info("serving the acme-dns API", "address", ln.Addr().String(), "tls", r.watcher != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("acme-dns API: %w", err)
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return nil
	}
}

// setupACMEDNS adds the acme-dns API, the reaper of its records and the reconciler of the
// accounts Delegations ask for with the acmezone.io/acme-dns-secret annotation to mgr when
// --acme-dns-listen is set. key is the target key (the tenancy rule's), which proves the
// targets of /register's accounts and binds every account to its Delegation's own target.
func setupACMEDNS(mgr ctrl.Manager, f *flags, key v1alpha1.TargetKey) error {
	a := &f.acmeDNS
	if a.listen == "" {
		return nil
	}
	// One key for the API, the reaper and the account reconciler.
	opts := f.opts
	opts.TargetKey = key
	s, err := acmedns.New(acmedns.Config{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Synced:    mgr.GetCache().WaitForCacheSync,
		Log:       ctrl.Log.WithName("acme-dns"),
	}, acmedns.Options{
		Zone:           opts.Zone,
		Namespace:      a.namespace,
		TargetKey:      key,
		Registration:   a.reg,
		TrustedHeader:  a.trustedHeader,
		TrustedProxies: a.proxies,
		MaxBodyBytes:   a.maxBodyBytes,
	})
	if err != nil {
		return err
	}
	r := &acmeDNSRunnable{srv: &http.Server{
		Addr:              a.listen,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}}
	if a.tlsCert != "" {
		if r.watcher, err = certwatcher.New(a.tlsCert, a.tlsKey); err != nil {
			return fmt.Errorf("acme-dns API certificate: %w", err)
		}
	}
	if err := mgr.Add(r); err != nil {
		return err
	}
	if err := (&challenge.ExpiryReconciler{Client: mgr.GetClient(), Options: &opts, MaxAge: a.recordMaxAge}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the acme-dns record reaper: %w", err)
	}
	if err := (&acmedns.AccountReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("acmezone-controller"),
		Namespace: a.namespace,
		TargetKey: key,
		Zone:      opts.Zone,
		ServerURL: a.serverURL,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the acme-dns account reconciler: %w", err)
	}
	return nil
}
