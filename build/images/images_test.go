// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testEpoch is an arbitrary fixed creation time.
var testEpoch = time.Unix(1700000000, 0).UTC()

// runArgs is what the amd64 binary out of each image runs with, and what its output contains.
var runArgs = map[string]struct {
	args []string
	want string
}{
	"coredns":             {[]string{"-version"}, "+acmezone-test"},
	"acmezone-controller": {[]string{"--help"}, "--secure-port"},
}

// wantUser is each image's user: distroless's nonroot for acmezone's, Kubernetes' pause user
// for pause, cert-manager's images' user for cert-manager's.
var wantUser = map[string]string{
	"coredns":                 "65532:65532",
	"acmezone-controller":     "65532:65532",
	"pause":                   "65535:65535",
	"cert-manager-controller": "1000:1000",
	"cert-manager-cainjector": "1000:1000",
	"cluster-dns":             "65532:65532",
}

// TestImages compiles both binaries for linux/amd64 with the flags of `make build` (so it reuses
// that build's cache: `make images`' -trimpath and arm64 cross-compiles share none and cost
// a cold machine half an hour, and they are `make images`' job, not this test's), builds the
// images for linux/amd64 and linux/arm64 twice, reads them back from the OCI layouts and docker
// tarballs, and runs the amd64 binaries taken out of the images. The arm64 images hold the
// same amd64 binaries: what is tested for the second platform is the index's assembly.
func TestImages(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles two binaries and builds the images twice")
	}
	start := time.Now()
	platforms := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	binDir := t.TempDir()
	compile(t, binDir, platforms[0])
	copyBinaries(t, filepath.Join(binDir, "linux_amd64"), filepath.Join(binDir, "linux_arm64"), testEpoch, 0o755)
	t.Logf("compiled in %v", time.Since(start).Round(time.Second))

	start = time.Now()
	o := &options{
		binDir:    binDir,
		outDir:    filepath.Join(t.TempDir(), "images"),
		registry:  "ghcr.io/acmezone",
		tag:       "v0.1.0",
		version:   "v0.1.0-test",
		revision:  "0123456789abcdef0123456789abcdef01234567",
		source:    "https://github.com/acmezone/acmezone",
		licenses:  "Apache-2.0",
		created:   testEpoch,
		platforms: platforms,
	}
	results, err := build(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built the images in %v", time.Since(start).Round(time.Second))
	// Without -images, acmezone's own images alone, as make images and make push expect.
	rel := release()
	if got := resultNames(results); !slices.Equal(got, []string{"coredns", "acmezone-controller"}) || len(rel) != len(got) {
		t.Fatalf("built %v, want coredns and acmezone-controller", got)
	}
	for i, s := range rel {
		t.Run(s.name, func(t *testing.T) {
			bin := checkImage(t, o, s, results[i])
			runBinary(t, s, bin)
		})
	}

	t.Run("reproducible", func(t *testing.T) {
		// The same binaries under other mtimes and modes, in another directory: nothing of the
		// files but their bytes may reach the images.
		binDir2 := t.TempDir()
		copyBinaries(t, binDir, binDir2, time.Now().Add(-time.Hour), 0o700)
		o2 := *o
		o2.binDir = binDir2
		o2.outDir = filepath.Join(t.TempDir(), "images")
		results2, err := build(&o2)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			r2 := results2[i]
			t.Logf("%s: index %s, platforms %v", r.ref, r.index, r.platforms)
			if r2.index != r.index {
				t.Errorf("%s: index digest %s, then %s", r.ref, r.index, r2.index)
			}
			if !slices.Equal(r2.platforms, r.platforms) {
				t.Errorf("%s: platform digests %v, then %v", r.ref, r.platforms, r2.platforms)
			}
		}
		// Everything written, the docker tarballs and the layouts' index.json included.
		if a, b := treeDigests(t, o.outDir), treeDigests(t, o2.outDir); !reflect.DeepEqual(a, b) {
			t.Errorf("output trees differ:\n%v\n%v", a, b)
		}
	})
}

// compile builds both binaries for p into binDir/<os>_<arch>/ with `make build`'s flags, save
// for the version.
func compile(t *testing.T, binDir string, p v1.Platform) {
	t.Helper()
	cmd := exec.Command("go", "build", "-ldflags", "-s -w -X main.version=test",
		"-o", filepath.Join(binDir, p.OS+"_"+p.Architecture)+string(filepath.Separator),
		"./cmd/coredns", "./cmd/acmezone-controller")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s: %v\n%s", p, err, out)
	}
}

// checkImage checks the image r of s in its layout and its docker tarball, and returns its
// linux/amd64 binary (nil without that platform).
func checkImage(t *testing.T, o *options, s spec, r result) []byte {
	t.Helper()
	ref := o.registry + "/" + s.name + ":" + o.tag
	if r.ref.String() != ref {
		t.Errorf("name %s, want %s", r.ref, ref)
	}

	lp, err := layout.FromPath(r.layout)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 {
		t.Fatalf("index.json has %d entries, want the image index alone", len(tm.Manifests))
	}
	d := tm.Manifests[0]
	if d.MediaType != types.OCIImageIndex || d.Digest != r.index {
		t.Errorf("index.json entry %s %s, want %s %s", d.MediaType, d.Digest, types.OCIImageIndex, r.index)
	}
	if got := d.Annotations["io.containerd.image.name"]; got != ref {
		t.Errorf("io.containerd.image.name %q, want %q", got, ref)
	}
	if got := d.Annotations["org.opencontainers.image.ref.name"]; got != o.tag {
		t.Errorf("org.opencontainers.image.ref.name %q, want %q", got, o.tag)
	}

	checkBlobs(t, r.layout)
	idx, err := top.ImageIndex(r.index)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s", im.MediaType)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.revision":    o.revision,
		"org.opencontainers.image.title":       s.name,
		"org.opencontainers.image.description": s.description,
		"org.opencontainers.image.licenses":    o.licenses,
	}
	if !reflect.DeepEqual(im.Annotations, wantLabels) {
		t.Errorf("index annotations %v, want %v", im.Annotations, wantLabels)
	}
	if len(im.Manifests) != len(o.platforms) {
		t.Fatalf("index has %d manifests, want %d", len(im.Manifests), len(o.platforms))
	}

	var amd64 v1.Image
	var amd64Bin []byte
	for i, p := range o.platforms {
		desc := im.Manifests[i]
		if desc.Platform == nil || desc.Platform.OS != p.OS || desc.Platform.Architecture != p.Architecture {
			t.Errorf("manifest %d: platform %v, want %s", i, desc.Platform, p)
		}
		if desc.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: media type %s", p, desc.MediaType)
		}
		if desc.Digest != r.platforms[i] {
			t.Errorf("%s: digest %s, build said %s", p, desc.Digest, r.platforms[i])
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		bin := checkPlatformImage(t, o, s, p, img, wantLabels)
		if p.OS == "linux" && p.Architecture == "amd64" {
			amd64, amd64Bin = img, bin
		}
	}
	if amd64 != nil {
		checkTarball(t, r, amd64)
	}
	return amd64Bin
}

// checkPlatformImage checks config and layer, and returns the binary in the layer.
func checkPlatformImage(t *testing.T, o *options, s spec, p v1.Platform, img v1.Image, wantLabels map[string]string) []byte {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("%s: config media type %s", p, m.Config.MediaType)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("%s: config platform %s/%s", p, cf.OS, cf.Architecture)
	}
	if !cf.Created.Equal(testEpoch) {
		t.Errorf("%s: created %v, want %v", p, cf.Created, testEpoch)
	}
	entrypoint := "/" + s.name
	if !slices.Equal(cf.Config.Entrypoint, []string{entrypoint}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("%s: entrypoint %q cmd %q, want [%q] and none", p, cf.Config.Entrypoint, cf.Config.Cmd, entrypoint)
	}
	if want := wantUser[s.name]; cf.Config.User != want {
		t.Errorf("%s: user %q, want %q", p, cf.Config.User, want)
	}
	var ports []string
	for port := range cf.Config.ExposedPorts {
		ports = append(ports, port)
	}
	slices.Sort(ports)
	wantPorts := slices.Sorted(slices.Values(s.ports))
	if !slices.Equal(ports, wantPorts) {
		t.Errorf("%s: exposed ports %v, want %v", p, ports, wantPorts)
	}
	if !reflect.DeepEqual(cf.Config.Labels, wantLabels) {
		t.Errorf("%s: labels %v, want %v", p, cf.Config.Labels, wantLabels)
	}
	if len(cf.History) != 1 || !cf.History[0].Created.Equal(testEpoch) {
		t.Errorf("%s: history %+v, want one entry at %v", p, cf.History, testEpoch)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%s: %d layers, want 1", p, len(layers))
	}
	if mt, err := layers[0].MediaType(); err != nil || mt != types.OCILayer {
		t.Errorf("%s: layer media type %s (%v)", p, mt, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatalf("%s: layer: %v", p, err)
	}
	if "/"+strings.TrimPrefix(hdr.Name, "/") != entrypoint || hdr.Typeflag != tar.TypeReg {
		t.Errorf("%s: layer entry %q type %c, want the regular file %s", p, hdr.Name, hdr.Typeflag, entrypoint)
	}
	if hdr.Mode != 0o755 || hdr.Uid != 0 || hdr.Gid != 0 {
		t.Errorf("%s: %s mode %o owner %d:%d, want 755 0:0", p, hdr.Name, hdr.Mode, hdr.Uid, hdr.Gid)
	}
	if hdr.ModTime.Unix() != 0 || hdr.Uname != "root" || hdr.Gname != "root" {
		t.Errorf("%s: %s mtime %v owner %s:%s, want 0 and root:root", p, hdr.Name, hdr.ModTime, hdr.Uname, hdr.Gname)
	}
	bin, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("%s: more than one entry in the layer (%v)", p, err)
	}
	want, err := os.ReadFile(filepath.Join(o.binDir, p.OS+"_"+p.Architecture, s.name))
	if err != nil {
		t.Fatal(err)
	}
	if diffIDs := cf.RootFS.DiffIDs; len(diffIDs) != 1 || diffIDs[0] != layerDiffID(t, layers[0]) {
		t.Errorf("%s: config diff IDs %v, want the layer's", p, diffIDs)
	}
	if !bytes.Equal(bin, want) {
		t.Errorf("%s: %s in the layer differs from the binary built", p, entrypoint)
	}
	return bin
}

// runBinary runs the binary taken out of the image, when this machine can.
func runBinary(t *testing.T, s spec, bin []byte) {
	t.Helper()
	if bin == nil || runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Logf("not running the linux/amd64 %s on %s/%s", s.name, runtime.GOOS, runtime.GOARCH)
		return
	}
	path := filepath.Join(t.TempDir(), s.name)
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	run := runArgs[s.name]
	out, err := exec.Command(path, run.args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", s.name, strings.Join(run.args, " "), err, out)
	}
	if !strings.Contains(string(out), run.want) {
		t.Errorf("%s %s printed %q, want it to contain %q", s.name, strings.Join(run.args, " "), out, run.want)
	}
}

// checkTarball reads the docker load tarball: one image, tagged with the full name, the same
// config and layer as the image in the layout.
func checkTarball(t *testing.T, r result, want v1.Image) {
	t.Helper()
	opener := func() (io.ReadCloser, error) { return os.Open(r.tarball) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{r.ref.String()}) {
		t.Fatalf("manifest.json %+v, want one image tagged %s", m, r.ref)
	}
	img, err := tarball.Image(opener, &r.ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	wantConfig, err := want.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if got != wantConfig {
		t.Errorf("docker tarball config %s, want %s", got, wantConfig)
	}
	gotLayers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wantLayers, err := want.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(gotLayers) != 1 {
		t.Fatalf("docker tarball has %d layers, want 1", len(gotLayers))
	}
	g, _ := gotLayers[0].Digest()
	w, _ := wantLayers[0].Digest()
	if g != w {
		t.Errorf("docker tarball layer %s, want %s", g, w)
	}
}

// checkBlobs checks that every blob of the layout at dir is named after its SHA-256.
func checkBlobs(t *testing.T, dir string) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	for name, sum := range treeDigests(t, blobs) {
		if got := fmt.Sprintf("%x", sum); got != name {
			t.Errorf("blob %s has SHA-256 %s", name, got)
		}
	}
}

// layerDiffID is the SHA-256 of the uncompressed layer, computed here rather than trusted.
func layerDiffID(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h, _, err := v1.SHA256(rc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// copyBinaries copies every file under src to dst with the given mtime and mode.
func copyBinaries(t *testing.T, src, dst string, mtime time.Time, mode os.FileMode) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, b, mode); err != nil {
			return err
		}
		return os.Chtimes(out, mtime, mtime)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// treeDigests maps every file under dir to the SHA-256 of its content.
func treeDigests(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	m := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		m[rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// clusterImages are the images `make cluster-images` builds, in the order of specs.
var clusterImages = []string{"coredns", "acmezone-controller", "pause", "cert-manager-controller", "cert-manager-cainjector", "cluster-dns"}

// TestSpecs checks the spec list: unique names, a user for each, and acmezone's two images
// alone as the release ones (what make images builds and make push pushes).
func TestSpecs(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.name] {
			t.Errorf("spec %s twice", s.name)
		}
		seen[s.name] = true
		if s.user == "" || s.user != wantUser[s.name] {
			t.Errorf("%s: user %q, want %q", s.name, s.user, wantUser[s.name])
		}
	}
	if got := names(release()); got != "coredns, acmezone-controller" {
		t.Errorf("release images %s, want coredns, acmezone-controller", got)
	}
	if !slices.Equal(slices.Sorted(slices.Values(clusterImages)), slices.Sorted(maps.Keys(seen))) {
		t.Errorf("specs %v, the cluster's images %v: add a new image to clusterImages (and make cluster-images) or to this test", slices.Sorted(maps.Keys(seen)), clusterImages)
	}
}

// TestSelect checks -images: none names the release images, a list exactly those, in the
// order of specs, and an unknown name is refused.
func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		images string
		want   []string
	}{
		{"", []string{"coredns", "acmezone-controller"}},
		{"coredns", []string{"coredns"}},
		{"cluster-dns, pause", []string{"pause", "cluster-dns"}},
		{strings.Join(clusterImages, ","), clusterImages},
	} {
		o, err := parseFlags([]string{"-images", tc.images})
		if err != nil {
			t.Errorf("-images %q: %v", tc.images, err)
			continue
		}
		var got []string
		for _, s := range specs {
			if o.selected(s) {
				got = append(got, s.name)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("-images %q selects %v, want %v", tc.images, got, tc.want)
		}
	}
	if _, err := parseFlags([]string{"-images", "coredns,busybox"}); err == nil {
		t.Error("-images coredns,busybox: no error")
	}
}

// TestClusterImages builds the cluster's images as make cluster-images does (-images, one
// platform, registry acmezone.test, tag cluster) and checks each in its layout and docker
// tarball, the tarballs being what the cluster imports into containerd. pause is compiled (no
// dependencies, seconds) and run out of its image; the other binaries are stand-ins, as the
// image holds a file's bytes whatever they are (TestImages runs acmezone's real ones).
func TestClusterImages(t *testing.T) {
	binDir := t.TempDir()
	amd64 := filepath.Join(binDir, "linux_amd64")
	cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", filepath.Join(amd64, "pause"), "./build/cluster/pause")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./build/cluster/pause: %v\n%s", err, out)
	}
	for _, n := range clusterImages {
		if n == "pause" {
			continue
		}
		if err := os.WriteFile(filepath.Join(amd64, n), []byte("stand-in for "+n+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "cluster-images")
	o, err := parseFlags([]string{"-bin", binDir, "-out", out, "-registry", "acmezone.test", "-tag", "cluster",
		"-platforms", "linux/amd64", "-images", strings.Join(clusterImages, ","), "-epoch", fmt.Sprint(testEpoch.Unix())})
	if err != nil {
		t.Fatal(err)
	}
	results, err := build(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := resultNames(results); !slices.Equal(got, clusterImages) {
		t.Fatalf("built %v, want %v", got, clusterImages)
	}
	for i, r := range results {
		s := specs[slices.IndexFunc(specs, func(s spec) bool { return s.name == clusterImages[i] })]
		t.Run(s.name, func(t *testing.T) {
			if want := "acmezone.test/" + s.name + ":cluster"; r.ref.String() != want {
				t.Errorf("image %s, want %s", r.ref, want)
			}
			if len(r.platforms) != 1 {
				t.Errorf("%d platforms, want linux/amd64 alone", len(r.platforms))
			}
			bin := checkImage(t, o, s, r)
			if s.name == "pause" {
				runPause(t, bin)
			}
		})
	}
	tars, err := filepath.Glob(filepath.Join(out, "*.tar"))
	if err != nil || len(tars) != len(clusterImages) {
		t.Errorf("docker load tarballs %v (%v), want one per image", tars, err)
	}
}

// runPause runs the pause binary out of its image: it must keep running, and exit 0 on SIGTERM
// (build/cluster/pause's own test checks the reaping and both signals with a handshake).
func runPause(t *testing.T, bin []byte) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Logf("not running the linux/amd64 pause on %s/%s", runtime.GOOS, runtime.GOARCH)
		return
	}
	path := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Long enough for its signal handlers to be set: a SIGTERM before that kills it.
	select {
	case err := <-done:
		t.Fatalf("pause exited by itself: %v", err)
	case <-time.After(time.Second):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pause after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("pause still running 10 s after SIGTERM")
	}
}

// resultNames are the names of the images built, in order.
func resultNames(results []result) []string {
	var n []string
	for _, r := range results {
		n = append(n, strings.TrimSuffix(filepath.Base(r.layout), string(filepath.Separator)))
	}
	return n
}
