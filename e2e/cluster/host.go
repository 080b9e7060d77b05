// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// The node's network, all inside objects the cluster creates: a bridge with one address (the
// node's; kube-apiserver, the kubelet and the host's DNS and Pebble listen on it), the pods'
// range on that bridge, and the service range routed to it. Nothing uses the machine's own
// interfaces or its default route.
const (
	Bridge              = "acmez0"
	NodeIP              = "10.88.0.1"
	BridgeCIDR          = "10.88.0.0/16"
	PodCIDR             = "10.88.1.0/24"
	podFirst, podLast   = "10.88.1.1", "10.88.1.254"
	ServiceCIDR         = "10.96.0.0/16"
	KubernetesServiceIP = "10.96.0.1"
	ClusterDNSIP        = "10.96.0.10"
	// LoadBalancerIP is what the test, playing a load-balancer controller, gives the Service
	// acmezone/acmezone-coredns: kube-proxy routes it to the CoreDNS pods. It is off the
	// bridge's subnet, in LoadBalancerCIDR, as a real load balancer's address is: pods reach
	// it through their gateway (the node), where kube-proxy's rules are; an address on the
	// bridge's subnet would be looked for on the link by ARP, which nobody answers, so the
	// controller's canary could not reach the name server from its pod.
	LoadBalancerIP   = "10.97.0.53"
	LoadBalancerCIDR = "10.97.0.0/24"
	NodeName         = "acmezone-node"
	APIServerURL     = "https://" + NodeIP + ":6443"
)

// forwardGuard keeps pods from reaching anything but the bridge: the machine's own network is
// never touched.
var forwardGuard = []string{"FORWARD", "-i", Bridge, "!", "-o", Bridge, "-j", "DROP", "-m", "comment", "--comment", "acmezone-cluster"}

// ipForwardFile, in the cluster's directory, holds net.ipv4.ip_forward from before the run.
const ipForwardFile = "host-ip_forward"

// host is what the cluster changed on the machine, to be put back.
type host struct {
	ipForward string // net.ipv4.ip_forward before
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setUpHost creates the bridge, routes the service and load-balancer ranges to it, guards forwarding and turns
// it on.
func setUpHost(dir string) (*host, error) {
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is not installed: `make cluster-deps` installs Debian's iproute2/iptables", tool)
		}
	}
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return nil, err
	}
	h := &host{ipForward: strings.TrimSpace(string(fwd))}
	// Kept for a run that does not reach Down: the next one puts it back (cleanLeftovers).
	if err := os.WriteFile(filepath.Join(dir, ipForwardFile), []byte(h.ipForward), 0o644); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"ip", "link", "add", Bridge, "type", "bridge"},
		{"ip", "addr", "add", NodeIP + "/16", "dev", Bridge},
		{"ip", "link", "set", Bridge, "up"},
		{"ip", "route", "add", ServiceCIDR, "dev", Bridge, "src", NodeIP},
		{"ip", "route", "add", LoadBalancerCIDR, "dev", Bridge, "src", NodeIP},
		append([]string{"iptables", "-I"}, forwardGuard...),
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return h, err
		}
	}
	return h, os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
}

// tearDownHost removes what setUpHost made and puts forwarding back as h says (nil: leave it).
func tearDownHost(h *host) []error {
	var errs []error
	if err := exec.Command("ip", "link", "show", Bridge).Run(); err == nil {
		if err := run("ip", "link", "del", Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	for exec.Command("iptables", append([]string{"-C"}, forwardGuard...)...).Run() == nil {
		if err := run("iptables", append([]string{"-D"}, forwardGuard...)...); err != nil {
			errs = append(errs, err)
			break
		}
	}
	errs = append(errs, removeKubeChains()...)
	if h != nil && h.ipForward != "" {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(h.ipForward), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// unmountUnder detaches every mount at or below the given directories, deepest first: the
// kubelet's volumes, containerd's snapshots and the pods' network namespaces.
func unmountUnder(dirs ...string) []error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		for _, d := range dirs {
			if p == d || strings.HasPrefix(p, d+"/") {
				points = append(points, p)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errs
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// killShims stops the containerd shims of this cluster that outlived containerd (shims
// daemonize, so they are not our children): found by the socket address in their command line,
// stopped by PID.
func killShims(address string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for _, a := range args {
			if a == address {
				pids = append(pids, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
	return pids
}

// removeCgroups removes the kubelet's cgroups (kubepods...) in every v1 hierarchy, bottom up.
// A cgroup that still holds a process stays (and is reported).
func removeCgroups() []error {
	var errs []error
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && err != syscall.ENOENT {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errs
}

// killPods stops, by PID, every process left in the kubelet's cgroups (containers whose shim is
// gone), and says how many there were.
func killPods() int {
	files, _ := filepath.Glob("/sys/fs/cgroup/pids/kubepods*")
	n := 0
	for _, root := range files {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
					n++
				}
			}
			return nil
		})
	}
	return n
}

// removeKubeChains removes the iptables chains the kubelet and kube-proxy made (KUBE-*, in every
// table, IPv4 and IPv6) and the rules that jump to them: `kube-proxy --cleanup` leaves the
// kubelet's (KUBE-FIREWALL, the canaries).
func removeKubeChains() []error {
	var errs []error
	for _, tool := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := exec.Command(tool, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			var chains []string
			builtin := map[string]bool{}
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				switch {
				case len(f) >= 2 && f[0] == "-P":
					builtin[f[1]] = true
				case len(f) >= 2 && f[0] == "-N" && strings.HasPrefix(f[1], "KUBE-"):
					chains = append(chains, f[1])
				}
			}
			for chain := range builtin {
				out, err := exec.Command(tool, "-w", "-t", table, "-L", chain, "-n", "--line-numbers").Output()
				if err != nil {
					continue
				}
				var nums []string
				for _, line := range strings.Split(string(out), "\n") {
					f := strings.Fields(line)
					if len(f) >= 2 && strings.HasPrefix(f[1], "KUBE-") {
						nums = append(nums, f[0])
					}
				}
				for i := len(nums) - 1; i >= 0; i-- {
					if err := run(tool, "-w", "-t", table, "-D", chain, nums[i]); err != nil {
						errs = append(errs, err)
					}
				}
			}
			for _, chain := range chains {
				_ = run(tool, "-w", "-t", table, "-F", chain)
			}
			for _, chain := range chains {
				if err := run(tool, "-w", "-t", table, "-X", chain); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errs
}
