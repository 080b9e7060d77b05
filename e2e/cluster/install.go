// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Install is what a platform engineer sets in their copy of deploy/overlays/example (README,
// "Install in a cluster"): the zone, its name server's name and address, and the images.
type Install struct {
	Zone, NameServer, NameServerAddress string
	// Images maps the image names deploy/ uses to the references to run instead.
	Images map[string]string
}

// WriteOverlay copies deploy/overlays/example into dir with in's values: the three settings
// of its configMapGenerator and its images' newName and newTag, nothing else. It fails when the
// example no longer has one of them, so that the README's steps and this test stay the same.
func WriteOverlay(root, dir string, in Install) error {
	src := filepath.Join(root, "deploy", "overlays", "example", "kustomization.yaml")
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var k map[string]any
	if err := yaml.Unmarshal(b, &k); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	settings := map[string]string{
		"ACMEZONE_ZONE":               in.Zone,
		"ACMEZONE_NAMESERVER":         in.NameServer,
		"ACMEZONE_NAMESERVER_ADDRESS": in.NameServerAddress,
	}
	set := map[string]bool{}
	gens, _ := k["configMapGenerator"].([]any)
	for _, g := range gens {
		gm, _ := g.(map[string]any)
		if gm["name"] != "acmezone-settings" {
			continue
		}
		lits, _ := gm["literals"].([]any)
		for i, l := range lits {
			key, _, _ := strings.Cut(fmt.Sprint(l), "=")
			if v, ok := settings[key]; ok {
				lits[i] = key + "=" + v
				set[key] = true
			}
		}
	}
	imgs, _ := k["images"].([]any)
	for _, img := range imgs {
		im, _ := img.(map[string]any)
		name := fmt.Sprint(im["name"])
		ref, ok := in.Images[name]
		if !ok {
			continue
		}
		i := strings.LastIndex(ref, ":")
		im["newName"], im["newTag"] = ref[:i], ref[i+1:]
		set[name] = true
	}
	var missing []string
	for key := range settings {
		if !set[key] {
			missing = append(missing, key)
		}
	}
	for name := range in.Images {
		if !set[name] {
			missing = append(missing, "image "+name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("%s no longer has %s: the README's install steps and this test must change with it", src, strings.Join(missing, ", "))
	}
	base, err := filepath.Rel(dir, filepath.Join(root, "deploy", "default"))
	if err != nil {
		return err
	}
	k["resources"] = []any{base}
	out, err := yaml.Marshal(k)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "kustomization.yaml"), out, 0o644)
}
