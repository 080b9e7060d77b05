// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/acmezone/acmezone/controller/challenge"
	"github.com/acmezone/acmezone/controller/rfc2136"
)

// rfc2136Flags are the --rfc2136-* flags: the RFC 2136 UPDATE listener, off unless
// --rfc2136-listen is set.
type rfc2136Flags struct {
	listen       string
	recordMaxAge time.Duration
}

func (f *rfc2136Flags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.listen, "rfc2136-listen", "", "Address (UDP and TCP) of the RFC 2136 UPDATE listener, e.g. :5353; updates must be signed with a TSIG key: a Secret of type "+string(rfc2136.KeySecretType)+" named <secret>.<namespace>., which writes TXT records at that namespace's targets only. Empty: off.")
	fs.DurationVar(&f.recordMaxAge, "rfc2136-record-max-age", time.Hour, "How long a TXT value added through RFC 2136 is kept when its client never deletes it and no cert-manager Challenge with that key exists.")
}

func (f *rfc2136Flags) complete() error {
	if f.listen != "" && f.recordMaxAge <= 0 {
		return fmt.Errorf("--rfc2136-record-max-age must be positive, e.g. 1h")
	}
	return nil
}

// setupRFC2136 adds the UPDATE listener, the cache of TSIG key Secrets and the reaper of the
// records clients left behind to mgr when --rfc2136-listen is set.
func setupRFC2136(mgr ctrl.Manager, f *flags) error {
	if f.rfc2136.listen == "" {
		return nil
	}
	if err := f.opts.IndexDelegations(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	keys, err := rfc2136.NewKeyCache(mgr)
	if err != nil {
		return fmt.Errorf("TSIG key cache: %w", err)
	}
	if err := mgr.Add(keys); err != nil {
		return err
	}
	s, err := rfc2136.New(rfc2136.Config{
		Options:   &f.opts,
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Secrets:   keys,
		Addr:      f.rfc2136.listen,
		Log:       ctrl.Log.WithName("rfc2136"),
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(s); err != nil {
		return err
	}
	r := &challenge.ExpiryReconciler{Client: mgr.GetClient(), Options: &f.opts, MaxAge: f.rfc2136.recordMaxAge, Writer: challenge.RFC2136Records}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the RFC 2136 record reaper: %w", err)
	}
	return nil
}
