// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone_test

import (
	"slices"
	"strings"
	"testing"
)

// TestDNSSECRendersDeployDNSSEC: dnssec.enabled renders deploy/overlays/example-dnssec (the
// example with deploy/components/dnssec), object by object; in both, CoreDNS mounts the whole
// Secret and signs (a dnssec block next to acmezone), and the controller mounts only the
// public key and gets --dnssec-key for it.
func TestDNSSECRendersDeployDNSSEC(t *testing.T) {
	objs := compareWithDeploy(t, "overlays/example-dnssec", map[string]any{"dnssec": map[string]any{"enabled": true}})
	plain := mustRender(t, nil, "acmezone").objects

	corefile := func(objs map[key]object) string {
		return str(objs[key{"v1", "ConfigMap", "acmezone", "acmezone-corefile"}], "data", "Corefile")
	}
	const block = "    dnssec {\n        key file /etc/acmezone/dnssec/zone\n    }\n    acmezone {"
	if c := corefile(objs); !strings.Contains(c, block) {
		t.Errorf("Corefile without the dnssec block before acmezone:\n%s", c)
	}
	if c := corefile(plain); strings.Contains(c, "dnssec") {
		t.Errorf("the default Corefile signs:\n%s", c)
	}
	// Only the block differs: no other change of the Corefile rides along.
	without := strings.Replace(corefile(objs), "    # Signs every answer online with the key mounted from the Secret acmezone-dnssec.\n"+block, "    acmezone {", 1)
	if without != corefile(plain) {
		t.Errorf("the DNSSEC Corefile without its block differs from the default:\n%s\n---\n%s", without, corefile(plain))
	}

	// items returns the Secret items the Deployment's "dnssec" volume mounts, and where.
	items := func(name string) ([]string, string) {
		d := objs[key{"apps/v1", "Deployment", "acmezone", name}]
		var got []string
		for _, v := range list(d, "spec", "template", "spec", "volumes") {
			if str(v, "name") != "dnssec" {
				continue
			}
			if s := str(v, "secret", "secretName"); s != "acmezone-dnssec" {
				t.Errorf("%s: volume dnssec from Secret %q, want acmezone-dnssec", name, s)
			}
			for _, it := range list(v, "secret", "items") {
				got = append(got, str(it, "key")+"="+str(it, "path"))
			}
		}
		mount := ""
		for _, m := range list(container(d), "volumeMounts") {
			if str(m, "name") == "dnssec" {
				mount = str(m, "mountPath")
			}
		}
		return got, mount
	}
	if got, mount := items("acmezone-coredns"); !slices.Equal(got, []string{"zone.key=zone.key", "zone.private=zone.private"}) || mount != "/etc/acmezone/dnssec" {
		t.Errorf("CoreDNS mounts %q at %q, want zone.key and zone.private at /etc/acmezone/dnssec", got, mount)
	}
	got, mount := items("acmezone-controller")
	if !slices.Equal(got, []string{"zone.key=zone.key"}) || mount != "/etc/acmezone/dnssec" {
		t.Errorf("the controller mounts %q at %q, want zone.key alone at /etc/acmezone/dnssec", got, mount)
	}
	var args []string
	for _, a := range list(container(objs[key{"apps/v1", "Deployment", "acmezone", "acmezone-controller"}]), "args") {
		args = append(args, a.(string))
	}
	hasAll(t, "controller args", args, "--dnssec-key=/etc/acmezone/dnssec/zone.key")
	if strings.Contains(strings.Join(args, " "), "zone.private") {
		t.Errorf("the controller's arguments name the private key: %q", args)
	}

	// Another Secret name lands in both volumes and nowhere else.
	other := mustRender(t, map[string]any{"dnssec": map[string]any{"enabled": true, "secretName": "zone-signing"}}, "acmezone").objects
	for _, d := range []string{"acmezone-controller", "acmezone-coredns"} {
		found := false
		for _, v := range list(other[key{"apps/v1", "Deployment", "acmezone", d}], "spec", "template", "spec", "volumes") {
			found = found || (str(v, "name") == "dnssec" && str(v, "secret", "secretName") == "zone-signing")
		}
		if !found {
			t.Errorf("%s: dnssec.secretName zone-signing not mounted", d)
		}
	}
}
