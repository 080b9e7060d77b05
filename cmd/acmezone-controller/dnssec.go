// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/acmezone/acmezone/controller"
	"github.com/acmezone/acmezone/controller/records"
)

// The Secret `dnssec-key` prints, as deploy/components/dnssec and the chart's dnssec values
// mount it: CoreDNS reads both items (`key file /etc/acmezone/dnssec/zone`), the controller
// only dnssecPublicItem (--dnssec-key /etc/acmezone/dnssec/zone.key).
const (
	dnssecSecretName  = "acmezone-dnssec"
	dnssecPublicItem  = "zone.key"
	dnssecPrivateItem = "zone.private"
)

// loadDNSSECKeys puts the DS of every --dnssec-key into f.opts.DS (after Validate: the keys
// must be the zone's), once each.
func (f *flags) loadDNSSECKeys() error {
	for _, path := range f.dnssecKeys {
		key, err := controller.ReadDNSKEY(path, f.opts.Zone)
		if err != nil {
			return err
		}
		f.addDS(key.ToDS(dns.SHA256))
	}
	return nil
}

// addDS adds ds to f.opts.DS unless it is there already.
func (f *flags) addDS(ds *dns.DS) {
	for _, have := range f.opts.DS {
		if controller.DSContent(have) == controller.DSContent(ds) {
			return
		}
	}
	f.opts.DS = append(f.opts.DS, ds)
}

// dsFromRecord reads a DS row of a Delegation's status (records.TypeDS).
func dsFromRecord(name, content string) (*dns.DS, error) {
	rr, err := dns.NewRR(dns.Fqdn(name) + " IN DS " + content)
	if err != nil {
		return nil, fmt.Errorf("its DS record %q: %w", content, err)
	}
	return rr.(*dns.DS), nil
}

// dnssecKeyCommand is `acmezone-controller dnssec-key ZONE`: the administrator's one command
// to make the zone's signing key.
func dnssecKeyCommand() *cobra.Command {
	var outDir, name, namespace string
	cmd := &cobra.Command{
		Use:   "dnssec-key ZONE",
		Short: "Make a DNSSEC signing key for the challenge zone: print it as a Secret, or write its two files with --out-dir",
		Long: `Make a signing key for ZONE (ECDSAP256SHA256, algorithm 13, flags 257: one key that signs
everything and whose DS goes to the parent zone) and print it as the Secret ` + dnssecSecretName + `
(keys ` + dnssecPublicItem + `, the DNSKEY record, and ` + dnssecPrivateItem + `, the private key in the format
CoreDNS's dnssec plugin reads), which deploy/components/dnssec and the chart's dnssec.enabled
mount into acmezone's CoreDNS:

  acmezone-controller dnssec-key acme.example.com | kubectl -n acmezone apply -f -

With --out-dir DIR it writes DIR/zone.key and DIR/zone.private instead, for a CoreDNS outside
a cluster ("dnssec { key file DIR/zone }"); give acmezone-controller --dnssec-key DIR/zone.key.
The DS record to add at your DNS provider is printed on stderr (and it is listed in every
Delegation's status once the controller has --dnssec-key). The private key is printed or
written once and kept nowhere else: the manifest is a secret, do not commit it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			zone := args[0]
			if !hostname(zone) {
				return fmt.Errorf("%q is not a domain name: give the challenge zone, e.g. acme.example.com", zone)
			}
			zone = dns.CanonicalName(zone)
			if outDir != "" {
				if err := checkNew(outDir); err != nil {
					return err
				}
			}
			key, public, private, err := controller.NewDNSKEY(zone)
			if err != nil {
				return err
			}
			cmd.SilenceUsage = true
			ds := strings.TrimSuffix(zone, ".") + " " + records.TypeDS + " " + controller.DSContent(key.ToDS(dns.SHA256))
			if outDir != "" {
				if err := writeKeyFiles(outDir, public, private); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Wrote %s and %s (key tag %d).\nIn the Corefile, next to acmezone:  dnssec { key file %s }\nacmezone-controller:  --dnssec-key %s\nAdd this record at your DNS provider, in the zone above %s:\n  %s\n",
					filepath.Join(outDir, dnssecPublicItem), filepath.Join(outDir, dnssecPrivateItem), key.KeyTag(),
					filepath.Join(outDir, "zone"), filepath.Join(outDir, dnssecPublicItem), strings.TrimSuffix(zone, "."), ds)
				return nil
			}
			if err := writeSecret(cmd.OutOrStdout(), name, namespace, zone, ds, public, private); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Secret %s with key tag %d printed. Once CoreDNS signs with it, add this record at your DNS provider, in the zone above %s:\n  %s\n",
				name, key.KeyTag(), strings.TrimSuffix(zone, "."), ds)
			return nil
		},
	}
	cmd.Flags().StringVar(&outDir, "out-dir", "", "Write zone.key and zone.private into this directory (which must not hold them yet) instead of printing a Secret.")
	cmd.Flags().StringVar(&name, "name", dnssecSecretName, "The Secret's name.")
	cmd.Flags().StringVar(&namespace, "namespace", "", "The Secret's namespace; default: none in the manifest (kubectl -n decides).")
	return cmd
}

// hostname reports whether name is a domain name of letters, digits, hyphens and
// underscores (dns.IsDomainName takes almost any bytes).
func hostname(name string) bool {
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return false
		}
	}
	return len(name) <= 254
}

// checkNew refuses to replace a key: a new key needs a new DS at the provider, and the old
// one's loss breaks the zone for validating resolvers until then.
func checkNew(dir string) error {
	for _, item := range []string{dnssecPublicItem, dnssecPrivateItem} {
		p := filepath.Join(dir, item)
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: a new key needs a new DS at your DNS provider (docs/SECURITY.md, key rollover); move it away first, or choose another --out-dir", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeKeyFiles writes the key's two files into dir: the private one readable by its owner
// only.
func writeKeyFiles(dir, public, private string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, dnssecPrivateItem), []byte(private), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, dnssecPublicItem), []byte(public), 0o644)
}

// writeSecret prints the Secret manifest; the data is base64, as kubectl writes it.
func writeSecret(w io.Writer, name, namespace, zone, ds, public, private string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# The DNSSEC signing key of %s, made by acmezone-controller dnssec-key: a secret.\n# Add this record at your DNS provider once CoreDNS signs with it:\n# %s\n", strings.TrimSuffix(zone, "."), ds)
	b.WriteString("apiVersion: v1\nkind: Secret\nmetadata:\n")
	fmt.Fprintf(&b, "  name: %s\n", name)
	if namespace != "" {
		fmt.Fprintf(&b, "  namespace: %s\n", namespace)
	}
	b.WriteString("  labels: {app.kubernetes.io/part-of: acmezone}\ntype: Opaque\ndata:\n")
	fmt.Fprintf(&b, "  %s: %s\n", dnssecPublicItem, base64.StdEncoding.EncodeToString([]byte(public)))
	fmt.Fprintf(&b, "  %s: %s\n", dnssecPrivateItem, base64.StdEncoding.EncodeToString([]byte(private)))
	_, err := io.WriteString(w, b.String())
	return err
}
