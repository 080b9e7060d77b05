// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone_test

import (
	"testing"
)

// TestRFC2136RendersDeployRFC2136: rfc2136.enabled renders deploy/overlays/example-rfc2136 (the
// example with deploy/components/rfc2136), object by object: the listener's flag, its ports on
// the pod and the Service, and the Secret list/watch it needs; without it, none of them.
func TestRFC2136RendersDeployRFC2136(t *testing.T) {
	objs := compareWithDeploy(t, "overlays/example-rfc2136", map[string]any{"rfc2136": map[string]any{"enabled": true}})
	plain := mustRender(t, nil, "acmezone").objects

	rbac := key{"rbac.authorization.k8s.io/v1", "ClusterRole", "", "acmezone-controller:rfc2136-keys"}
	if objs[rbac] == nil {
		t.Errorf("rfc2136.enabled renders no ClusterRole %s", rbac.name)
	}
	if plain[rbac] != nil {
		t.Errorf("the default renders the ClusterRole %s: Secrets cluster-wide without the listener", rbac.name)
	}
	args := func(objs map[key]object) []string {
		var out []string
		for _, a := range list(container(objs[key{"apps/v1", "Deployment", "acmezone", "acmezone-controller"}]), "args") {
			out = append(out, a.(string))
		}
		return out
	}
	hasAll(t, "controller args", args(objs), "--rfc2136-listen=:5353")
	for _, a := range args(plain) {
		if a == "--rfc2136-listen=:5353" {
			t.Errorf("the default turns the listener on")
		}
	}
	// With the NetworkPolicy on, the listener's port is open (on UDP and TCP).
	np := mustRender(t, map[string]any{"rfc2136": map[string]any{"enabled": true}, "networkPolicy": map[string]any{"enabled": true}}, "acmezone").objects
	open := map[string]bool{}
	for _, rule := range list(np[key{"networking.k8s.io/v1", "NetworkPolicy", "acmezone", "acmezone-controller"}], "spec", "ingress") {
		for _, p := range list(rule, "ports") {
			if port, _ := get(p, "port").(float64); port == 5353 {
				open[str(p, "protocol")] = true
			}
		}
	}
	if !open["UDP"] || !open["TCP"] {
		t.Errorf("the controller's NetworkPolicy opens port 5353 for %v, want UDP and TCP", open)
	}
}
