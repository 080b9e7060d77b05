// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/acmezone/acmezone/e2e/stack"
)

// identity is one client of kube-apiserver: the user (CN) and groups (O) of its certificate,
// and the kubeconfig it gets.
type identity struct {
	file   string // the kubeconfig's and the certificate's base name
	user   string
	groups []string
}

// The cluster's clients. The bootstrap RBAC policy binds the well-known users
// (system:kube-controller-manager, system:kube-scheduler, system:kube-proxy); the Node
// authorizer serves system:node:<name> in system:nodes.
var identities = []identity{
	{file: "admin", user: "acmezone-admin", groups: []string{"system:masters"}},
	{file: "kube-controller-manager", user: "system:kube-controller-manager"},
	{file: "kube-scheduler", user: "system:kube-scheduler"},
	{file: "kubelet", user: "system:node:" + NodeName, groups: []string{"system:nodes"}},
	{file: "kube-proxy", user: "system:kube-proxy"},
	{file: "apiserver-kubelet-client", user: "kube-apiserver-kubelet-client", groups: []string{"system:masters"}},
}

// writePKI writes the cluster's CA, the serving certificates of kube-apiserver, the kubelet and
// Pebble, the front proxy's CA and client (aggregation), the service-account signing key, and a
// certificate and kubeconfig per identity, into dir/pki and dir.
func writePKI(dir string) error {
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	ca, err := stack.NewCA("acmezone-cluster-ca")
	if err != nil {
		return err
	}
	if _, _, err := ca.Write(pki, "ca"); err != nil {
		return err
	}
	node := net.ParseIP(NodeIP)
	servers := []struct {
		name  string
		dns   []string
		ips   []net.IP
		usage []x509.ExtKeyUsage
	}{
		{"apiserver", []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			[]net.IP{node, net.ParseIP(KubernetesServiceIP), net.ParseIP("127.0.0.1")}, nil},
		{"kubelet-serving", []string{NodeName}, []net.IP{node}, nil},
		// Pebble, reached by cert-manager's pods at the bridge address.
		{"pebble", []string{"pebble"}, []net.IP{node}, nil},
	}
	for _, s := range servers {
		kp, err := stack.NewCert(ca, &x509.Certificate{
			Subject:     pkix.Name{CommonName: s.name},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames:    s.dns,
			IPAddresses: s.ips,
		})
		if err != nil {
			return err
		}
		if _, _, err := kp.Write(pki, s.name); err != nil {
			return err
		}
	}
	proxyCA, err := stack.NewCA("front-proxy-ca")
	if err != nil {
		return err
	}
	if _, _, err := proxyCA.Write(pki, "front-proxy-ca"); err != nil {
		return err
	}
	proxy, err := stack.NewCert(proxyCA, clientTemplate("front-proxy-client", nil))
	if err != nil {
		return err
	}
	if _, _, err := proxy.Write(pki, "front-proxy-client"); err != nil {
		return err
	}
	if err := writeServiceAccountKey(pki); err != nil {
		return err
	}
	for _, id := range identities {
		kp, err := stack.NewCert(ca, clientTemplate(id.user, id.groups))
		if err != nil {
			return err
		}
		if _, _, err := kp.Write(pki, id.file); err != nil {
			return err
		}
		if err := writeKubeconfig(filepath.Join(dir, id.file+".kubeconfig"), id.user, ca.CertPEM, kp); err != nil {
			return err
		}
	}
	return nil
}

func clientTemplate(user string, groups []string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// writeServiceAccountKey writes the key kube-apiserver signs service-account tokens with
// (sa.key) and its public half (sa.pub).
func writeServiceAccountKey(pki string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pki, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(pki, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// writeKubeconfig writes a kubeconfig for user at the cluster's API server, with the
// certificates embedded.
func writeKubeconfig(path, user string, caPEM []byte, kp *stack.KeyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["acmezone"] = &clientcmdapi.Cluster{Server: APIServerURL, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts["acmezone"] = &clientcmdapi.Context{Cluster: "acmezone", AuthInfo: user}
	cfg.CurrentContext = "acmezone"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
