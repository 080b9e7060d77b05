// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package rfc2136

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A TSIG key is a Secret of type KeySecretType in the namespace it writes for. Its name as a
// TSIG key is "<secret>.<namespace>." (KeyName): a namespace name has no dot, so the last label
// is the namespace and the rest the Secret's name. An administrator (or the namespace's owner)
// creates one with
//
//	kubectl -n team-a create secret generic acmezone-tsig --type=acmezone.io/tsig-key \
//	  --from-literal=secret="$(head -c 32 /dev/urandom | base64)"
//
// and the same Secret is the tsigSecretSecretRef of a cert-manager Issuer's rfc2136 solver.
const (
	// KeySecretType is the type of the Secrets that hold TSIG keys. Only Secrets of this type
	// are ever read (a field-selected cache), so no other Secret can become a key.
	KeySecretType corev1.SecretType = "acmezone.io/tsig-key"
	// SecretKey is the data key holding the key material, base64 as nsupdate, knsupdate,
	// cert-manager and lego write it.
	SecretKey = "secret"
	// AlgorithmKey is the optional data key naming the one algorithm the key is used with
	// (hmac-sha256 when absent). hmac-md5 is accepted only when named here.
	AlgorithmKey = "algorithm"
	// DefaultAlgorithm is the algorithm of a key whose Secret names none.
	DefaultAlgorithm = dns.HmacSHA256
	// MinKeyBytes is the shortest key material accepted: 128 bits.
	MinKeyBytes = 16
)

// hmacMD5 is HMAC-MD5's name (RFC 8945); miekg/dns no longer implements it, this package does,
// for cert-manager's rfc2136 solver, whose default it still is.
const hmacMD5 = "hmac-md5.sig-alg.reg.int."

// algorithms are the TSIG algorithms a key may name, by their names in a Secret (short or the
// RFC's) and the hash each uses.
var algorithms = map[string]func() hash.Hash{
	dns.HmacSHA1:   sha1.New,
	dns.HmacSHA224: sha256.New224,
	dns.HmacSHA256: sha256.New,
	dns.HmacSHA384: sha512.New384,
	dns.HmacSHA512: sha512.New,
	hmacMD5:        md5.New,
}

// ParseAlgorithm returns the canonical TSIG algorithm name of s: hmac-sha256, hmac-sha512 and
// the others as knsupdate and BIND write them, with or without the trailing dot, hmac-md5 also
// as hmac-md5.sig-alg.reg.int.
func ParseAlgorithm(s string) (string, error) {
	a := dns.CanonicalName(strings.ToLower(strings.TrimSpace(s)))
	if a == "hmac-md5." {
		a = hmacMD5
	}
	if _, ok := algorithms[a]; !ok {
		return "", fmt.Errorf("unknown TSIG algorithm %q; write one of hmac-sha256 (the default), hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1 or hmac-md5", s)
	}
	return a, nil
}

// KeyName is the TSIG key name of the Secret namespace/name: "<name>.<namespace>.".
func KeyName(namespace, name string) string {
	return name + "." + namespace + "."
}

// secretOfKey returns the Secret a TSIG key name stands for; ok is false when the name cannot
// be one (too few labels, or not a Secret's and a namespace's name).
func secretOfKey(keyName string) (types.NamespacedName, bool) {
	n := strings.TrimSuffix(strings.ToLower(keyName), ".")
	i := strings.LastIndexByte(n, '.')
	if i <= 0 {
		return types.NamespacedName{}, false
	}
	ns, name := n[i+1:], n[:i]
	if len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}

// key is one TSIG key, as read from its Secret.
type key struct {
	name      string // the canonical TSIG key name
	namespace string // the namespace it writes for: its Secret's
	secret    string // the Secret's name
	algorithm string // canonical
	material  []byte
}

// errBadKey is a key the server does not know, or one used with another algorithm than its
// own: TSIG error BADKEY (RFC 8945 5.2.2).
var errBadKey = errors.New("unknown TSIG key")

// keyring finds TSIG keys in a cache of the KeySecretType Secrets, and is the dns.TsigProvider
// of the listener: the server verifies every signed request with it before the handler runs.
type keyring struct {
	secrets client.Reader
	log     logr.Logger
}

// lookup returns the key named keyName, or an error wrapping errBadKey that says why there is
// none (for the log: the request is answered BADKEY whatever the reason).
func (k *keyring) lookup(keyName string) (*key, error) {
	nn, ok := secretOfKey(keyName)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not of the form <secret>.<namespace>.", errBadKey, keyName)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var sec corev1.Secret
	if err := k.secrets.Get(ctx, nn, &sec); err != nil {
		return nil, fmt.Errorf("%w %q: no Secret %s of type %s (%v)", errBadKey, keyName, nn, KeySecretType, err)
	}
	if sec.Type != KeySecretType || !sec.DeletionTimestamp.IsZero() {
		return nil, fmt.Errorf("%w %q: Secret %s is not of type %s", errBadKey, keyName, nn, KeySecretType)
	}
	alg := DefaultAlgorithm
	if a, ok := sec.Data[AlgorithmKey]; ok {
		var err error
		if alg, err = ParseAlgorithm(string(a)); err != nil {
			return nil, fmt.Errorf("%w %q: Secret %s, key %q: %v", errBadKey, keyName, nn, AlgorithmKey, err)
		}
	}
	material, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sec.Data[SecretKey])))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w %q: Secret %s, key %q is not base64 (create it with --from-literal=%s=\"$(head -c 32 /dev/urandom | base64)\")", errBadKey, keyName, nn, SecretKey, SecretKey)
	case len(material) < MinKeyBytes:
		return nil, fmt.Errorf("%w %q: Secret %s, key %q holds %d bytes, want at least %d (create it with --from-literal=%s=\"$(head -c 32 /dev/urandom | base64)\")", errBadKey, keyName, nn, SecretKey, len(material), MinKeyBytes, SecretKey)
	}
	return &key{name: dns.CanonicalName(strings.ToLower(keyName)), namespace: sec.Namespace, secret: sec.Name, algorithm: alg, material: material}, nil
}

// mac returns the MAC of msg under the key named by t with t's algorithm; errBadKey when
// there is no such key or it is not for that algorithm.
func (k *keyring) mac(msg []byte, t *dns.TSIG) ([]byte, error) {
	kk, err := k.lookup(t.Hdr.Name)
	if err != nil {
		return nil, err
	}
	alg := dns.CanonicalName(strings.ToLower(t.Algorithm))
	if alg != kk.algorithm {
		return nil, fmt.Errorf("%w %q: it is for %s, the request used %s (set the client's algorithm, or %q in Secret %s/%s)",
			errBadKey, kk.name, strings.TrimSuffix(kk.algorithm, "."), strings.TrimSuffix(alg, "."), AlgorithmKey, kk.namespace, kk.secret)
	}
	return macOf(algorithms[alg], kk.material, msg), nil
}

// macOf is HMAC with the hash h under key of msg.
func macOf(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// Generate implements dns.TsigProvider: the MAC of a response.
func (k *keyring) Generate(msg []byte, t *dns.TSIG) ([]byte, error) { return k.mac(msg, t) }

// Verify implements dns.TsigProvider: whether a request's MAC is the key's. A MAC of another
// length than the algorithm's (a truncated one, RFC 8945 5.2.2.1) is not accepted.
func (k *keyring) Verify(msg []byte, t *dns.TSIG) error {
	want, err := k.mac(msg, t)
	if err != nil {
		k.log.Info("UPDATE refused: BADKEY", "reason", err.Error())
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(got, want) {
		k.log.Info("UPDATE refused: BADSIG, the MAC is not the key's", "key", t.Hdr.Name)
		return dns.ErrSig
	}
	return nil
}
