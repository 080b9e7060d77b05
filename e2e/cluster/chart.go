// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"bytes"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

// RenderChart renders charts/acmezone as `helm template acmezone charts/acmezone -n namespace
// --include-crds` does (what Argo CD and Flux apply), with values checked against the chart's
// schema: the CRDs first, then the templates in file-name order, as one multi-document YAML.
func RenderChart(root, namespace string, values map[string]any) ([]byte, error) {
	c, err := loader.Load(filepath.Join(root, "charts", "acmezone"))
	if err != nil {
		return nil, fmt.Errorf("load charts/acmezone: %w", err)
	}
	opts := chartutil.ReleaseOptions{Name: "acmezone", Namespace: namespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValues(c, values, opts, chartutil.DefaultCapabilities.Copy())
	if err != nil {
		return nil, fmt.Errorf("charts/acmezone's values: %w", err)
	}
	files, err := engine.Engine{Strict: true}.Render(c, vals)
	if err != nil {
		return nil, fmt.Errorf("render charts/acmezone: %w", err)
	}
	var out bytes.Buffer
	for _, crd := range c.CRDObjects() {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", crd.Filename, bytes.TrimSpace(crd.File.Data))
	}
	names := make([]string, 0, len(files))
	for name := range files {
		if path.Ext(name) == ".yaml" && strings.TrimSpace(files[name]) != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(files[name]))
	}
	return out.Bytes(), nil
}
