// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Command images builds acmezone's container images without a Docker daemon, the way ko and
// crane do: for coredns and acmezone-controller, an OCI image index with one image per
// platform, each an empty base plus one layer holding the static binary. It writes an OCI
// image layout bin/images/<name>/ and a `docker load` tarball bin/images/<name>.tar (first
// platform, tagged with the full name) and prints the digests.
//
// `make images` cross-compiles the binaries into bin/<os>_<arch>/ and runs it:
//
//	go run ./build/images -bin bin -out bin/images -registry ghcr.io/acmezone -tag v0.1.0 \
//	    -version "$(git describe --tags --always --dirty)" -revision "$(git rev-parse HEAD)" \
//	    -epoch "$(git log -1 --format=%ct)"
//
// It also knows the images of `make cluster-e2e`'s cluster, built only when -images names
// them: pause, cert-manager-controller, cert-manager-cainjector and cluster-dns. `make
// cluster-images` builds them with acmezone's two for linux/amd64 alone, and the cluster
// imports the docker load tarballs into containerd (ctr -n k8s.io images import):
//
//	go run ./build/images -bin bin -out bin/cluster-images -registry acmezone.test -tag cluster \
//	    -platforms linux/amd64 -images coredns,acmezone-controller,pause,cert-manager-controller,...
//
// The build is reproducible: the config's timestamps come from -epoch (SOURCE_DATE_EPOCH by
// default), the layer's single entry has mtime 0, owner root and mode 0755, so the same
// binaries and flags give the same digests.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(2)
	}
	results, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
	report(os.Stdout, o, results)
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.binDir, "bin", "bin", "Directory with the binaries as <os>_<arch>/<image name>, e.g. linux_amd64/coredns.")
	fs.StringVar(&o.outDir, "out", "bin/images", "Output directory: <name>/ (OCI image layout) and <name>.tar (docker load) per image.")
	fs.StringVar(&o.registry, "registry", "ghcr.io/acmezone", "Registry and namespace of the image names.")
	fs.StringVar(&o.tag, "tag", "v0.1.0", "Tag of every image.")
	fs.StringVar(&o.version, "version", "dev", "Label org.opencontainers.image.version: the version stamped into the binaries.")
	fs.StringVar(&o.revision, "revision", "unknown", "Label org.opencontainers.image.revision: the git commit.")
	fs.StringVar(&o.source, "source", "https://github.com/acmezone/acmezone", "Label org.opencontainers.image.source.")
	fs.StringVar(&o.licenses, "licenses", "Apache-2.0", "Label org.opencontainers.image.licenses (SPDX).")
	only := fs.String("images", "", "Comma-separated names of the images to build ("+names(specs)+"); empty: acmezone's own ("+names(release())+"). make bench builds only coredns, from two builds; make cluster-images the cluster's.")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "Comma-separated OS/ARCH list; the first is the one in the docker load tarball.")
	epoch := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Creation time in seconds since 1970 (default $SOURCE_DATE_EPOCH, else 0); `make images` passes the commit time.")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var secs int64
	if *epoch != "" {
		var err error
		if secs, err = strconv.ParseInt(*epoch, 10, 64); err != nil {
			return nil, fmt.Errorf("-epoch %q: want seconds since 1970", *epoch)
		}
	}
	o.created = time.Unix(secs, 0).UTC()
	if *only != "" {
		for _, n := range strings.Split(*only, ",") {
			n = strings.TrimSpace(n)
			if !slices.ContainsFunc(specs, func(s spec) bool { return s.name == n }) {
				return nil, fmt.Errorf("-images: no image %q", n)
			}
			o.only = append(o.only, n)
		}
	}
	for _, s := range strings.Split(*platforms, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("-platforms: %w", err)
		}
		o.platforms = append(o.platforms, *p)
	}
	return o, nil
}

// names joins the names of ss with commas.
func names(ss []spec) string {
	var n []string
	for _, s := range ss {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}

// release returns the specs built when -images names none.
func release() []spec {
	var r []spec
	for _, s := range specs {
		if s.release {
			r = append(r, s)
		}
	}
	return r
}

func report(w io.Writer, o *options, results []result) {
	for _, r := range results {
		fmt.Fprintf(w, "%s\n", r.ref)
		fmt.Fprintf(w, "  %-12s %s\n", "index", r.index)
		for i, p := range o.platforms {
			fmt.Fprintf(w, "  %-12s %s\n", p.String(), r.platforms[i])
		}
		fmt.Fprintf(w, "  %-12s %s/\n", "OCI layout", r.layout)
		fmt.Fprintf(w, "  %-12s %s (%s)\n", "docker load", r.tarball, o.platforms[0].String())
	}
}
