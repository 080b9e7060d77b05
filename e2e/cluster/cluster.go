// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package cluster assembles a real single-node Kubernetes cluster on this machine, as root:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the kubelet and kube-proxy
// (v1.37, built from the Go module proxy into bin/), Debian's containerd and runc, and the CNI
// bridge plugin. Images come from `make cluster-images` (imported, no registry). Every process
// is a child of the caller, stopped by PID in Down, with its log kept in the cluster's
// directory. `make cluster-e2e` runs the tests that use it.
package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/acmezone/acmezone/e2e/stack"
	"github.com/acmezone/acmezone/internal/kubetest"
)

// Run is the directory of the cluster's sockets and runtime state (containerd's state, the
// pods' network namespaces): short, so that socket paths stay under the kernel's limit.
const Run = "/run/acmezone-cluster"

// Images are the cluster's images' names: `make cluster-images` builds them with this registry
// and tag; pods name them with pullPolicy IfNotPresent and nothing is ever pulled.
const (
	ImageRegistry = "acmezone.test"
	ImageTag      = "cluster"
)

// Image returns the reference of one of the cluster's images.
func Image(name string) string { return ImageRegistry + "/" + name + ":" + ImageTag }

// Cluster is a running single-node cluster.
type Cluster struct {
	Dir        string // state, configuration and logs
	Root       string // the repository (bin/, build/cluster)
	Kubeconfig string // system:masters
	Config     *rest.Config
	Client     client.Client
	logf       func(string, ...any)
	host       *host
	comps      map[string]*component
	order      []string // start order; Down stops in reverse
}

// component is one process of the cluster, which can be stopped and started again with the
// same command line (each start logs to a new file).
type component struct {
	name   string
	path   string
	args   []string
	env    []string
	proc   *stack.Process
	starts int
}

// Up assembles the cluster in dir (emptied first, after cleaning up what an earlier run that
// did not end may have left) from root's bin/ and build/cluster. On error, what was started is
// stopped.
func Up(ctx context.Context, root, dir string, logf func(string, ...any)) (c *Cluster, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the cluster needs root (network, mounts, cgroups): run `make cluster-e2e` as root")
	}
	c = &Cluster{Dir: dir, Root: root, logf: logf, comps: map[string]*component{}}
	cleanLeftovers(root, dir, logf)
	defer func() {
		if err != nil {
			c.Down(context.Background())
		}
	}()
	for _, d := range []string{dir, Run, filepath.Join(dir, "cni", "net.d"), filepath.Join(dir, "pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	step := func(what string, fn func() error) error {
		start := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		logf("%-50s %6.1fs", what, time.Since(start).Seconds())
		return nil
	}
	if err := step("host: bridge "+Bridge+" "+NodeIP+"/16, service route, forward guard", func() (err error) {
		c.host, err = setUpHost(dir)
		return err
	}); err != nil {
		return nil, err
	}
	if err := step("PKI, kubeconfigs, node configuration", func() error {
		if err := writePKI(dir); err != nil {
			return err
		}
		return c.renderConfigs()
	}); err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	c.define()
	if err := step("etcd", func() error { return c.Start(ctx, "etcd") }); err != nil {
		return nil, err
	}
	if err := step("kube-apiserver on "+APIServerURL, func() error { return c.Start(ctx, "kube-apiserver") }); err != nil {
		return nil, err
	}
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return nil, err
	}
	if c.Client, err = client.New(c.Config, client.Options{Scheme: kubetest.Scheme()}); err != nil {
		return nil, err
	}
	for _, name := range []string{"kube-controller-manager", "kube-scheduler", "containerd"} {
		if err := step(name, func() error { return c.Start(ctx, name) }); err != nil {
			return nil, err
		}
	}
	if err := step("images from bin/cluster-images into containerd", func() error { return c.importImages(ctx) }); err != nil {
		return nil, err
	}
	for _, name := range []string{"kubelet", "kube-proxy"} {
		if err := step(name, func() error { return c.Start(ctx, name) }); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// config is what the templates in build/cluster/node are rendered with.
type config struct {
	Dir, Run                                       string
	Bridge, BridgeCIDR, PodCIDR, PodFirst, PodLast string
	NodeIP, NodeName, ClusterDNS, PauseImage       string
}

// renderConfigs writes containerd's, the CNI's, the kubelet's and kube-proxy's configuration
// from build/cluster/node, and the resolv.conf of pods that use the host's DNS.
func (c *Cluster) renderConfigs() error {
	cfg := config{
		Dir: c.Dir, Run: Run,
		Bridge: Bridge, BridgeCIDR: BridgeCIDR, PodCIDR: PodCIDR, PodFirst: podFirst, PodLast: podLast,
		NodeIP: NodeIP, NodeName: NodeName, ClusterDNS: ClusterDNSIP, PauseImage: Image("pause"),
	}
	files := map[string]string{
		"containerd.toml":      filepath.Join(c.Dir, "containerd.toml"),
		"10-acmezone.conflist": filepath.Join(c.Dir, "cni", "net.d", "10-acmezone.conflist"),
		"kubelet.yaml":         filepath.Join(c.Dir, "kubelet.yaml"),
		"kube-proxy.yaml":      filepath.Join(c.Dir, "kube-proxy.yaml"),
	}
	for src, dst := range files {
		t, err := template.ParseFiles(filepath.Join(c.Root, "build", "cluster", "node", src))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Option("missingkey=error").Execute(&b, cfg); err != nil {
			return fmt.Errorf("render %s: %w", src, err)
		}
		if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	// The host's resolver (unbound, started by the test on the bridge address).
	return os.WriteFile(filepath.Join(c.Dir, "resolv.conf"), []byte("nameserver "+NodeIP+"\n"), 0o644)
}

// define lists the cluster's processes with their command lines.
func (c *Cluster) define() {
	bin := func(name string) string { return filepath.Join(c.Root, "bin", name) }
	pki := func(name string) string { return filepath.Join(c.Dir, "pki", name) }
	kc := func(name string) string { return filepath.Join(c.Dir, name+".kubeconfig") }
	// The node's tools (runc, iptables, the CNI plugins' helpers) are in the sbin directories.
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	add := func(name, path string, env []string, args ...string) {
		c.comps[name] = &component{name: name, path: path, args: args, env: env}
		c.order = append(c.order, name)
	}
	add("etcd", bin("etcd"), nil,
		"--name=acmezone", "--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:12380", "--initial-advertise-peer-urls=http://127.0.0.1:12380",
		"--initial-cluster=acmezone=http://127.0.0.1:12380", "--listen-metrics-urls=http://127.0.0.1:12381")
	add("kube-apiserver", bin("kube-apiserver"), nil,
		"--etcd-servers="+etcdURL,
		"--bind-address="+NodeIP, "--secure-port=6443", "--advertise-address="+NodeIP,
		"--tls-cert-file="+pki("apiserver.crt"), "--tls-private-key-file="+pki("apiserver.key"),
		"--client-ca-file="+pki("ca.crt"),
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--service-cluster-ip-range="+ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki("sa.pub"), "--service-account-signing-key-file="+pki("sa.key"),
		"--kubelet-client-certificate="+pki("apiserver-kubelet-client.crt"), "--kubelet-client-key="+pki("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority="+pki("ca.crt"),
		"--kubelet-preferred-address-types=InternalIP",
		"--requestheader-client-ca-file="+pki("front-proxy-ca.crt"), "--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+pki("front-proxy-client.crt"), "--proxy-client-key-file="+pki("front-proxy-client.key"),
		"--enable-aggregator-routing=true")
	add("kube-controller-manager", bin("kube-controller-manager"), nil,
		"--kubeconfig="+kc("kube-controller-manager"),
		"--authentication-kubeconfig="+kc("kube-controller-manager"), "--authorization-kubeconfig="+kc("kube-controller-manager"),
		"--bind-address=127.0.0.1", "--client-ca-file="+pki("ca.crt"), "--requestheader-client-ca-file="+pki("front-proxy-ca.crt"),
		"--root-ca-file="+pki("ca.crt"), "--service-account-private-key-file="+pki("sa.key"),
		"--use-service-account-credentials=true", "--controllers=*",
		// One instance: no leader election to lose while kube-apiserver is stopped, and the node
		// is not marked unknown (its pods not made unready) right after a 60 s outage.
		"--leader-elect=false", "--node-monitor-grace-period=180s")
	add("kube-scheduler", bin("kube-scheduler"), nil,
		"--kubeconfig="+kc("kube-scheduler"),
		"--authentication-kubeconfig="+kc("kube-scheduler"), "--authorization-kubeconfig="+kc("kube-scheduler"),
		"--bind-address=127.0.0.1", "--leader-elect=false")
	add("containerd", "/usr/bin/containerd", env, "--config="+filepath.Join(c.Dir, "containerd.toml"))
	add("kubelet", bin("kubelet"), env,
		"--config="+filepath.Join(c.Dir, "kubelet.yaml"), "--kubeconfig="+kc("kubelet"),
		"--hostname-override="+NodeName, "--node-ip="+NodeIP,
		"--root-dir="+filepath.Join(c.Dir, "kubelet"), "--v=2")
	add("kube-proxy", bin("kube-proxy"), env, "--config="+filepath.Join(c.Dir, "kube-proxy.yaml"))
}

const etcdURL = "http://127.0.0.1:12379"

// Socket is containerd's.
var Socket = filepath.Join(Run, "containerd.sock")

// Start starts a component (again) and waits until it is ready.
func (c *Cluster) Start(ctx context.Context, name string) error {
	comp := c.comps[name]
	if comp == nil {
		return fmt.Errorf("no component %q", name)
	}
	if comp.proc != nil {
		if done, _ := comp.proc.Exited(); !done {
			return fmt.Errorf("%s is running", name)
		}
	}
	comp.starts++
	logName := name
	if comp.starts > 1 {
		logName = fmt.Sprintf("%s-%d", name, comp.starts)
	}
	p, err := stack.StartEnv(c.Dir, logName, comp.path, comp.env, comp.args...)
	if err != nil {
		return err
	}
	comp.proc = p
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return c.waitReady(ctx, comp)
}

// Stop stops a component: SIGTERM, SIGKILL after a few seconds.
func (c *Cluster) Stop(name string) {
	if comp := c.comps[name]; comp != nil && comp.proc != nil {
		comp.proc.Stop()
	}
}

// Kill ends a component with SIGKILL, as a crash would.
func (c *Cluster) Kill(name string) error {
	comp := c.comps[name]
	if comp == nil || comp.proc == nil {
		return fmt.Errorf("%s was not started", name)
	}
	return comp.proc.Kill()
}

// Process returns a component's current process.
func (c *Cluster) Process(name string) *stack.Process {
	if comp := c.comps[name]; comp != nil {
		return comp.proc
	}
	return nil
}

// waitReady polls what says that a component works: an HTTP health endpoint, containerd's
// socket, the Node's Ready condition.
func (c *Cluster) waitReady(ctx context.Context, comp *component) error {
	var check func(context.Context) error
	switch comp.name {
	case "etcd":
		check = func(ctx context.Context) error { return getOK(ctx, nil, etcdURL+"/health") }
	case "kube-apiserver":
		check = func(ctx context.Context) error { return getOK(ctx, c.adminTLS(), APIServerURL+"/readyz") }
	case "kube-controller-manager":
		check = func(ctx context.Context) error { return getOK(ctx, insecureTLS(), "https://127.0.0.1:10257/healthz") }
	case "kube-scheduler":
		check = func(ctx context.Context) error { return getOK(ctx, insecureTLS(), "https://127.0.0.1:10259/healthz") }
	case "containerd":
		check = func(ctx context.Context) error { return c.ctr(ctx, "version") }
	case "kubelet":
		check = c.nodeReady
	case "kube-proxy":
		check = func(ctx context.Context) error { return getOK(ctx, nil, "http://127.0.0.1:10256/healthz") }
	}
	var last error
	for {
		if done, err := comp.proc.Exited(); done {
			return fmt.Errorf("%s exited (%v):\n%s", comp.name, err, comp.proc.Tail(30))
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not ready: %v\n%s", comp.name, last, comp.proc.Tail(30))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Cluster) nodeReady(ctx context.Context) error {
	var node corev1.Node
	if err := c.Client.Get(ctx, client.ObjectKey{Name: NodeName}, &node); err != nil {
		return err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s: %s: %s", NodeName, cond.Reason, cond.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", NodeName)
}

func (c *Cluster) adminTLS() *tls.Config {
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(c.Dir, "pki", "ca.crt"))
	pool.AppendCertsFromPEM(caPEM)
	cert, _ := tls.LoadX509KeyPair(filepath.Join(c.Dir, "pki", "admin.crt"), filepath.Join(c.Dir, "pki", "admin.key"))
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}
}

// insecureTLS is for the health endpoints of kube-controller-manager and kube-scheduler, which
// serve self-signed certificates on loopback; only their status code is read.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

func getOK(ctx context.Context, tc *tls.Config, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// ctr runs containerd's client against the cluster's containerd, in the CRI's namespace.
func (c *Cluster) ctr(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", Socket, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// importImages imports every docker-load tarball of bin/cluster-images into containerd.
func (c *Cluster) importImages(ctx context.Context) error {
	tars, err := filepath.Glob(filepath.Join(c.Root, "bin", "cluster-images", "*.tar"))
	if err != nil {
		return err
	}
	if len(tars) == 0 {
		return errors.New("no images in bin/cluster-images: run `make cluster-images`")
	}
	for _, t := range tars {
		if err := c.ctr(ctx, "images", "import", t); err != nil {
			return err
		}
	}
	return nil
}

// Processes returns every process the cluster started, for their logs.
func (c *Cluster) Processes() []*stack.Process {
	var ps []*stack.Process
	for _, name := range c.order {
		if p := c.comps[name].proc; p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Down stops the cluster and puts the machine back: kube-proxy (and its rules), the kubelet,
// every pod (through the CRI), containerd and any shim left, the control plane, the mounts,
// the cgroups and the network. Logs stay in the cluster's directory.
func (c *Cluster) Down(ctx context.Context) {
	if c.comps["kube-proxy"] != nil {
		c.Stop("kube-proxy")
		_ = run(filepath.Join(c.Root, "bin", "kube-proxy"), "--cleanup", "--config="+filepath.Join(c.Dir, "kube-proxy.yaml"))
	}
	c.Stop("kubelet")
	if p := c.Process("containerd"); p != nil {
		if done, _ := p.Exited(); !done {
			if n, err := removePods(ctx, Socket); err != nil {
				c.logf("removing %d pods through the CRI: %v", n, err)
			}
		}
	}
	c.Stop("containerd")
	if pids := killShims(Socket); len(pids) > 0 {
		c.logf("stopped containerd shims that outlived containerd: %v", pids)
	}
	for _, name := range []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		c.Stop(name)
	}
	for _, err := range unmountUnder(c.Dir, Run) {
		c.logf("%v", err)
	}
	for _, err := range removeCgroups() {
		c.logf("%v", err)
	}
	for _, err := range tearDownHost(c.host) {
		c.logf("%v", err)
	}
}

// cleanLeftovers undoes what a run that did not reach Down (a killed test) left on the machine,
// then empties dir.
func cleanLeftovers(root, dir string, logf func(string, ...any)) {
	if pids := killShims(Socket); len(pids) > 0 {
		logf("an earlier run left containerd shims: stopped %v", pids)
	}
	if n := killPods(); n > 0 {
		logf("an earlier run left %d container processes: stopped", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-proxy.yaml")); err == nil {
		_ = run(filepath.Join(root, "bin", "kube-proxy"), "--cleanup", "--config="+filepath.Join(dir, "kube-proxy.yaml"))
	}
	for _, err := range unmountUnder(dir, Run) {
		logf("%v", err)
	}
	for _, err := range removeCgroups() {
		logf("%v", err)
	}
	var h *host
	if b, err := os.ReadFile(filepath.Join(dir, ipForwardFile)); err == nil {
		h = &host{ipForward: strings.TrimSpace(string(b))}
	}
	for _, err := range tearDownHost(h) {
		logf("%v", err)
	}
	_ = os.RemoveAll(Run)
	_ = os.RemoveAll(dir)
}
