// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Pebble is Let's Encrypt's test CA, running as a process.
type Pebble struct {
	*Process
	// CABundle is the PEM of the CA that signed Pebble's HTTPS certificate (for the
	// ClusterIssuer's caBundle).
	CABundle []byte
	// Directory is the ACME directory URL, management the management interface's base URL.
	Directory  string
	management string
}

// PebbleConfig says where Pebble listens, what it serves HTTPS with, and whom it asks for DNS.
type PebbleConfig struct {
	Host      string // Pebble listens on Host:14000 (ACME) and Host:15000 (management)
	CertFile  string // its HTTPS certificate and key, valid for Host
	KeyFile   string
	CABundle  []byte // the PEM of the CA that signed CertFile
	DNSServer string // HOST:PORT of the resolver that DNS-01 validation asks (over TCP)
}

// PebbleModuleDir returns the directory of the Pebble module that build/e2ebin builds bin/pebble
// from: its test/certs hold the HTTPS certificate and its CA.
func PebbleModuleDir(repoRoot string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2")
	cmd.Dir = filepath.Join(repoRoot, "build", "e2ebin")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find the Pebble module from build/e2ebin: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// StartPebble runs bin/pebble on 127.0.0.1 with the module's localhost certificate, validating
// DNS-01 through the stack's resolver (it asks over TCP only) with no random validation delay.
func StartPebble(ctx context.Context, dir, binary, moduleDir string) (*Pebble, error) {
	certs := filepath.Join(moduleDir, "test", "certs")
	ca, err := os.ReadFile(filepath.Join(certs, "pebble.minica.pem"))
	if err != nil {
		return nil, err
	}
	return StartPebbleAt(ctx, dir, binary, PebbleConfig{
		Host:      "127.0.0.1",
		CertFile:  filepath.Join(certs, "localhost", "cert.pem"),
		KeyFile:   filepath.Join(certs, "localhost", "key.pem"),
		CABundle:  ca,
		DNSServer: ResolverIP + ":53",
	})
}

// StartPebbleAt runs bin/pebble as c says.
func StartPebbleAt(ctx context.Context, dir, binary string, c PebbleConfig) (*Pebble, error) {
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  net.JoinHostPort(c.Host, "14000"),
		"managementListenAddress":        net.JoinHostPort(c.Host, "15000"),
		"certificate":                    c.CertFile,
		"privateKey":                     c.KeyFile,
		"httpPort":                       5002,
		"tlsPort":                        5001,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{
			"default": map[string]any{"description": "acmezone e2e", "validityPeriod": 7776000},
		},
	}}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return nil, err
	}
	// No random validation delay, no rejected nonces: the run is slow enough with cert-manager's
	// fixed 60 s wait after each self-check.
	// No reused authorizations either, so that a renewal goes through DNS again.
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	proc, err := StartEnv(dir, "pebble", binary, env, "-config", cfgPath, "-dnsserver", c.DNSServer)
	if err != nil {
		return nil, err
	}
	p := &Pebble{
		Process:    proc,
		CABundle:   c.CABundle,
		Directory:  "https://" + net.JoinHostPort(c.Host, "14000") + "/dir",
		management: "https://" + net.JoinHostPort(c.Host, "15000"),
	}
	for {
		if _, err := p.get(ctx, p.Directory); err == nil {
			return p, nil
		}
		if done, err := proc.Exited(); done {
			return nil, fmt.Errorf("pebble exited (%v):\n%s", err, tail(proc.Logs(), 40))
		}
		select {
		case <-ctx.Done():
			proc.Stop()
			return nil, fmt.Errorf("pebble does not answer at %s:\n%s", p.Directory, tail(proc.Logs(), 40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Root returns the PEM of the root that Pebble issues certificates under (it is generated at
// start, so it comes from the management interface).
func (p *Pebble) Root(ctx context.Context) ([]byte, error) {
	return p.get(ctx, p.management+"/roots/0")
}

func (p *Pebble) get(ctx context.Context, url string) ([]byte, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CABundle)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, err
}
