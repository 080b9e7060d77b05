// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// spec is one image: the binary bin/<os>_<arch>/<name>, run as /<name> by user.
type spec struct {
	name        string // the binary, the path in the image (/<name>) and the repository under the registry
	description string
	ports       []string // what the binary serves by default, as the manifests that run it do
	// user is numeric so that the kubelet can check runAsNonRoot without an /etc/passwd, which
	// the images do not have.
	user string
	// release images are acmezone's own: built when -images names none, pushed by `make push`.
	// The others exist for `make cluster-e2e`'s cluster and are built only when named.
	release bool
}

// nonroot is distroless's "nonroot", the user of acmezone's images.
const nonroot = "65532:65532"

// specs are the images build/images knows. build/Dockerfile.* say the same of the release
// images; keep them in step.
var specs = []spec{
	{
		name:        "coredns",
		description: "CoreDNS with the acmezone plugin: authoritative DNS for ACME DNS-01 challenge records kept in Kubernetes",
		// DNS, Prometheus metrics (prometheus :9153), health (:8080), ready (:8181).
		ports:   []string{"53/udp", "53/tcp", "9153/tcp", "8080/tcp", "8181/tcp"},
		user:    nonroot,
		release: true,
	},
	{
		name:        "acmezone-controller",
		description: "acmezone's cert-manager DNS-01 webhook solver, Delegation reconciler and Challenge watcher",
		// The webhook as deploy/ runs it (--secure-port=8443: the default 443 needs a privilege
		// the non-root user lacks), metrics, probes.
		ports:   []string{"8443/tcp", "8080/tcp", "8081/tcp"},
		user:    nonroot,
		release: true,
	},
	// The cluster-e2e cluster's own images (make cluster-images).
	{
		name:        "pause",
		description: "The pod sandbox (pause) container of acmezone's cluster-e2e cluster (build/cluster/pause)",
		// 65535 as Kubernetes' own pause image: it holds the namespaces and serves nothing.
		user: "65535:65535",
	},
	{
		name:        "cert-manager-controller",
		description: "cert-manager's controller, built from cert-manager's Go module (build/e2ebin), for acmezone's cluster-e2e cluster",
		// 1000 as cert-manager's own images. It serves nothing (no metrics server is wired).
		user: "1000:1000",
	},
	{
		name:        "cert-manager-cainjector",
		description: "cert-manager's cainjector, built from cert-manager's Go module (build/e2ebin), for acmezone's cluster-e2e cluster",
		ports:       []string{"9402/tcp"}, // Prometheus metrics
		user:        "1000:1000",
	},
	{
		name:        "cluster-dns",
		description: "CoreDNS with the plugins of a cluster's DNS (cmd/coredns -tags coredns_cluster), the cluster DNS of acmezone's cluster-e2e cluster",
		// DNS, Prometheus metrics, health, ready, as build/cluster/kube-dns runs it.
		ports: []string{"53/udp", "53/tcp", "9153/tcp", "8080/tcp", "8181/tcp"},
		user:  nonroot,
	},
}

// options are the inputs of a build besides the binaries; the same binaries and options give
// the same digests.
type options struct {
	binDir    string // holds <os>_<arch>/<name> for every platform and spec
	outDir    string // receives <name>/ (OCI image layout) and <name>.tar (docker load)
	registry  string
	tag       string
	version   string
	revision  string
	source    string
	licenses  string
	created   time.Time     // config and history timestamp: SOURCE_DATE_EPOCH or the commit time
	platforms []v1.Platform // the first one also goes into the docker load tarball
	only      []string      // names of the specs to build; empty: the release ones
}

// result is what a build wrote for one image.
type result struct {
	ref       name.Tag
	index     v1.Hash   // the image index, what `make push` pushes
	platforms []v1.Hash // one image manifest per options.platforms, in that order
	layout    string
	tarball   string
}

func (o *options) ref(s spec) (name.Tag, error) {
	return name.NewTag(o.registry+"/"+s.name+":"+o.tag, name.StrictValidation)
}

func (o *options) labels(s spec) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.revision":    o.revision,
		"org.opencontainers.image.title":       s.name,
		"org.opencontainers.image.description": s.description,
		"org.opencontainers.image.licenses":    o.licenses,
	}
}

// selected says whether o builds s.
func (o *options) selected(s spec) bool {
	if len(o.only) == 0 {
		return s.release
	}
	return slices.Contains(o.only, s.name)
}

// build writes the images o selects, in the order of specs, and returns their digests.
func build(o *options) ([]result, error) {
	if len(o.platforms) == 0 {
		return nil, fmt.Errorf("no platforms")
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return nil, err
	}
	var results []result
	for _, s := range specs {
		if !o.selected(s) {
			continue
		}
		r, err := buildOne(o, s)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.name, err)
		}
		results = append(results, r)
	}
	return results, nil
}

func buildOne(o *options, s spec) (result, error) {
	ref, err := o.ref(s)
	if err != nil {
		return result{}, err
	}
	r := result{
		ref:     ref,
		layout:  filepath.Join(o.outDir, s.name),
		tarball: filepath.Join(o.outDir, s.name+".tar"),
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var first v1.Image
	for _, p := range o.platforms {
		img, err := platformImage(o, s, p)
		if err != nil {
			return result{}, fmt.Errorf("%s: %w", p, err)
		}
		d, err := img.Digest()
		if err != nil {
			return result{}, err
		}
		if first == nil {
			first = img
		}
		r.platforms = append(r.platforms, d)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	// The labels again as index annotations: registries such as ghcr.io read a multi-platform
	// image's description from there.
	idx = mutate.Annotations(idx, o.labels(s)).(v1.ImageIndex)
	if r.index, err = idx.Digest(); err != nil {
		return result{}, err
	}

	// The layout's index.json holds the image index under its name: `crane push DIR REF` pushes
	// it, containerd's import names it from io.containerd.image.name.
	top := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: idx, Descriptor: v1.Descriptor{
		Annotations: map[string]string{
			"org.opencontainers.image.ref.name": ref.TagStr(),
			"io.containerd.image.name":          ref.String(),
		},
	}})
	if err := os.RemoveAll(r.layout); err != nil {
		return result{}, err
	}
	if _, err := layout.Write(r.layout, top); err != nil {
		return result{}, fmt.Errorf("write OCI layout: %w", err)
	}

	// docker load takes one platform per tag; write to a temporary name so that a failed build
	// leaves no truncated tarball behind.
	tmp := r.tarball + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, first); err != nil {
		os.Remove(tmp)
		return result{}, fmt.Errorf("write docker tarball: %w", err)
	}
	if err := os.Rename(tmp, r.tarball); err != nil {
		return result{}, err
	}
	return r, nil
}

// platformImage is an empty base plus one layer with the binary for p.
func platformImage(o *options, s spec, p v1.Platform) (v1.Image, error) {
	bin := filepath.Join(o.binDir, p.OS+"_"+p.Architecture, s.name)
	layer, err := binaryLayer(bin, s.name)
	if err != nil {
		return nil, err
	}
	ports := make(map[string]struct{}, len(s.ports))
	for _, port := range s.ports {
		ports[port] = struct{}{}
	}
	created := v1.Time{Time: o.created.UTC()}
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint:   []string{"/" + s.name},
			User:         s.user,
			ExposedPorts: ports,
			Labels:       o.labels(s),
		},
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   created,
			CreatedBy: fmt.Sprintf("COPY %s /%s # acmezone build/images", s.name, s.name),
		},
	})
}

// binaryLayer is a gzipped tar with a single entry: the file at path as /<name>, mode 0755,
// owned by root, mtime 0. Nothing of the file on disk but its bytes gets in, so the digest
// depends on the binary alone.
func binaryLayer(path, name string) (v1.Layer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}

	// The layer is compressed once, here, and kept in memory (a few tens of MB): tarball's own
	// compression would run again for every digest, layout and tarball write. A zero gzip
	// header (no name, no mtime) keeps it reproducible; the output of compress/gzip may change
	// with the Go release, as the binaries do. The default level: BestCompression takes three
	// times as long for 0.5% less.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     fi.Size(),
		Mode:     0o755,
		Uid:      0,
		Gid:      0,
		Uname:    "root",
		Gname:    "root",
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if n, err := io.Copy(tw, f); err != nil {
		return nil, err
	} else if n != fi.Size() {
		return nil, fmt.Errorf("%s changed while being read", path)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	blob := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
