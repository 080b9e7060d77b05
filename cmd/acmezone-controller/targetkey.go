// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/api/v1alpha1"
	"github.com/acmezone/acmezone/controller"
)

// targetKeySecretKey is the key of the target key Secret's data.
const targetKeySecretKey = "key"

// targetKeyFlags say where the target key comes from: a file, or a Secret the controller
// creates when it is missing.
type targetKeyFlags struct {
	file   string
	secret string
}

func (f *targetKeyFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.file, "target-key-file", "", "File holding the target key (at least 32 bytes; the same as the CoreDNS plugin's target_key). Targets are derived from it: keep a backup.")
	fs.StringVar(&f.secret, "target-key-secret", "", "NAMESPACE/NAME of the Secret (data key \""+targetKeySecretKey+"\") holding the target key; created with a random key when missing, and its creation time marks which Delegations may keep a target given by an earlier version. Mount the same Secret into acmezone's CoreDNS. Exactly one of --target-key-file and --target-key-secret.")
}

func (f *targetKeyFlags) validate() error {
	if (f.file == "") == (f.secret == "") {
		return fmt.Errorf("give exactly one of --target-key-file and --target-key-secret (e.g. --target-key-secret acmezone/acmezone-target-key): the key targets are derived from")
	}
	if f.secret != "" {
		if ns, name, ok := strings.Cut(f.secret, "/"); !ok || ns == "" || name == "" {
			return fmt.Errorf("--target-key-secret %q: write NAMESPACE/NAME", f.secret)
		}
	}
	return nil
}

// load puts the key into opts: from the file, or from the Secret (made when missing if
// create is set), whose creation time becomes opts.LegacyBefore.
func (f *targetKeyFlags) load(ctx context.Context, cfg func() (*rest.Config, error), create bool, opts *controller.Options) error {
	if f.file != "" {
		k, err := v1alpha1.LoadTargetKey(f.file)
		opts.TargetKey = k
		return err
	}
	rc, err := cfg()
	if err != nil {
		return err
	}
	c, err := client.New(rc, client.Options{})
	if err != nil {
		return err
	}
	ns, name, _ := strings.Cut(f.secret, "/")
	sec, err := keySecret(ctx, c, ns, name, create)
	if err != nil {
		return err
	}
	k, err := v1alpha1.NewTargetKey(sec.Data[targetKeySecretKey])
	if err != nil {
		return fmt.Errorf("Secret %s, key %q: %w", f.secret, targetKeySecretKey, err)
	}
	opts.TargetKey, opts.LegacyBefore = k, sec.CreationTimestamp.Time
	return nil
}

// keySecret gets the Secret, creating it with a random 256-bit key when missing and create is
// set. Two replicas starting at once agree: the second create fails and it reads the first's.
func keySecret(ctx context.Context, c client.Client, ns, name string, create bool) (*corev1.Secret, error) {
	var sec corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sec)
	if err == nil {
		return &sec, nil
	}
	if !apierrors.IsNotFound(err) || !create {
		return nil, fmt.Errorf("get the target key Secret %s/%s: %w", ns, name, err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	sec = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "acmezone-controller"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{targetKeySecretKey: []byte(base64.StdEncoding.EncodeToString(raw))},
	}
	err = c.Create(ctx, &sec)
	if apierrors.IsAlreadyExists(err) {
		err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sec)
	}
	if err != nil {
		return nil, fmt.Errorf("create the target key Secret %s/%s: %w", ns, name, err)
	}
	return &sec, nil
}

// restConfig is the API server connection of a subcommand: --kubeconfig, else $KUBECONFIG,
// ~/.kube/config or in-cluster.
func restConfig(kubeconfig string) func() (*rest.Config, error) {
	return func() (*rest.Config, error) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = kubeconfig
		return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	}
}

// signTargetCommand is `acmezone-controller sign-target`: an administrator's migration of a
// target from acme-dns or an earlier installation to a namespace.
func signTargetCommand() *cobra.Command {
	var key targetKeyFlags
	var namespace, domain, target, kubeconfig, zone string
	cmd := &cobra.Command{
		Use:   "sign-target --namespace NS --domain DOMAIN --target UUID.ZONE",
		Short: "Print the spec.target and acmezone.io/target-proof that give a namespace an existing target (an administrator's migration)",
		Long: `Print the Delegation that keeps an existing target for a namespace and domain: spec.target and the
annotation acmezone.io/target-proof, a keyed hash that only the holder of the target key can compute.
Use it to move a domain from acme-dns (its subdomain's fulldomain) or from another installation
without changing the CNAME at the DNS provider. Whoever holds the proof can only use the target in
that namespace for that domain. The key is read from --target-key-file or --target-key-secret
(through --kubeconfig); the command never creates it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := key.validate(); err != nil {
				return err
			}
			if namespace == "" || domain == "" || target == "" || zone == "" {
				return fmt.Errorf("--namespace, --domain, --target and --zone are required")
			}
			t := v1alpha1.CanonicalName(target)
			if _, ok := v1alpha1.TargetLabel(t, v1alpha1.CanonicalName(zone)); !ok {
				return fmt.Errorf("--target %q is not of the form <uuid>.%s", target, strings.TrimSuffix(zone, "."))
			}
			var opts controller.Options
			if err := key.load(cmd.Context(), restConfig(kubeconfig), false, &opts); err != nil {
				return err
			}
			d := v1alpha1.DomainKey(domain)
			fmt.Fprintf(cmd.OutOrStdout(), `apiVersion: acmezone.io/v1alpha1
kind: Delegation
metadata:
  name: %s
  namespace: %s
  annotations:
    %s: %s
spec:
  domain: %s
  target: %s
`, d, namespace, v1alpha1.TargetProofAnnotation, opts.TargetKey.Proof(namespace, d, t), d, t)
			return nil
		},
	}
	fs := cmd.Flags()
	key.add(fs)
	fs.StringVar(&namespace, "namespace", "", "The namespace the target is given to.")
	fs.StringVar(&domain, "domain", "", "The domain, e.g. example.com.")
	fs.StringVar(&target, "target", "", "The existing target, e.g. b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com.")
	fs.StringVar(&zone, "zone", "", "The challenge zone, e.g. acme.example.com.")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Kubeconfig to read --target-key-secret with. Default: $KUBECONFIG, ~/.kube/config, or in-cluster.")
	return cmd
}
