# acmezone — run `make help` for the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

GO       ?= go
BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X github.com/coredns/coredns/coremain.GitCommit=$(REVISION)

# Kubernetes control plane for the tests, built from the Go module proxy (build/testbin).
KUBE_VERSION := v1.37.2
KUBE_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean
export KUBEBUILDER_ASSETS := $(BIN)
# cert-manager's test/acme (the webhook conformance suite) finds the control plane through these.
export TEST_ASSET_KUBE_APISERVER := $(BIN)/kube-apiserver
export TEST_ASSET_ETCD := $(BIN)/etcd
export TEST_ASSET_KUBECTL := $(BIN)/kubectl

# Count-based: a time-based -fuzztime can end in "context deadline exceeded" on a loaded
# 2-core machine (golang/go#75804).
FUZZTIME ?= 20000x
# FuzzUpdate goes through the UPDATE listener and a fake API client: about 200 execs/s.
FUZZTIME_UPDATE ?= 3000x

# Long builds print a line every 30 s so that a first run does not look hung.
PROGRESS     = ( while sleep 30; do echo "   ... still building $(@F) ($$(date +%T))"; done ) & tick=$$!;
PROGRESS_END = rc=$$?; kill $$tick; exit $$rc

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/coredns (lean CoreDNS: acmezone and the plugins in cmd/coredns/plugins.go) and bin/acmezone-controller, static and version-stamped.
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/coredns ./cmd/coredns
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/acmezone-controller ./cmd/acmezone-controller

.PHONY: generate
generate: ## Regenerate deepcopy code and the CRDs in deploy/crds with controller-gen, and copy the CRDs into the Helm chart (charts/acmezone/crds).
	$(GO) tool controller-gen object:headerFile=hack/boilerplate.go.txt paths=./api/... crd:crdVersions=v1 output:crd:artifacts:config=deploy/crds
	rm -f charts/acmezone/crds/*.yaml && cp deploy/crds/acmezone.io_*.yaml charts/acmezone/crds/

.PHONY: check-generated
check-generated: generate ## Fail when `make generate` changes committed files.
	@git diff --exit-code -- api/v1alpha1/zz_generated.deepcopy.go deploy/crds charts/acmezone/crds || { echo "generated files are stale: run 'make generate' and commit the result"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- charts/acmezone/crds); [ -z "$$untracked" ] || { echo "generated files are not committed: $$untracked"; exit 1; }

.PHONY: lint
lint: ## go vet (every build tag the tests use; -tags coredns_full in make bench, which builds it) and gofmt.
	$(GO) vet -tags conformance,e2e,cluster ./...
	$(GO) vet -tags coredns_cluster ./cmd/coredns
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	@out=$$(for f in $$(git ls-files '*.go'); do head -4 $$f | grep -qxF "// SPDX-License-Identifier: Apache-2.0" || echo $$f; done); if [ -n "$$out" ]; then echo "no license header (hack/boilerplate.go.txt) in: $$out"; exit 1; fi

.PHONY: testbin
testbin: $(BIN)/kube-apiserver $(BIN)/kubectl $(BIN)/etcd ## Build kube-apiserver, kubectl and etcd from the module proxy (first run about 20 minutes).

$(BIN)/kube-apiserver $(BIN)/kubectl:
	@echo ">> building $(@F) $(KUBE_VERSION) from the Go module proxy; the first build takes about 18 minutes, later ones seconds"
	@$(PROGRESS) cd build/testbin && CGO_ENABLED=0 $(GO) build -ldflags "$(KUBE_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/$(@F); $(PROGRESS_END)

# etcd at the version k8s.io/kubernetes v1.37 requires (build/testbin): a current etcd has the
# progress notifications kube-apiserver needs to stream a watch's initial state (WatchList),
# which client-go's informers (the controllers', cert-manager's) use by default in a real
# cluster; with Debian's etcd 3.4 they fall back to lists.
$(BIN)/etcd: build/testbin/go.mod build/testbin/go.sum
	@echo ">> building etcd $$(cd build/testbin && $(GO) list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3) from the Go module proxy (a minute the first time)"
	@rm -f $@
	cd build/testbin && CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $@ go.etcd.io/etcd/server/v3

# cert-manager's controller (our main over its library) and Pebble for the end-to-end stack,
# built from the Go module proxy in their own module (build/e2ebin).
.PHONY: e2ebin
e2ebin: $(BIN)/cert-manager-controller $(BIN)/pebble ## Build cert-manager's controller and Pebble from the module proxy into bin/ (first run several minutes).

$(BIN)/cert-manager-controller: build/e2ebin/go.mod build/e2ebin/go.sum $(wildcard build/e2ebin/cmd/cert-manager-controller/*.go)
	@echo ">> building $(@F) (cert-manager's controllers, build/e2ebin) from the Go module proxy; the first build takes several minutes, later ones seconds"
	@$(PROGRESS) cd build/e2ebin && CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $@ ./cmd/cert-manager-controller; $(PROGRESS_END)

$(BIN)/pebble: build/e2ebin/go.mod build/e2ebin/go.sum
	@echo ">> building $(@F) (build/e2ebin) from the Go module proxy; the first build takes a minute or two, later ones seconds"
	cd build/e2ebin && CGO_ENABLED=0 $(GO) build -ldflags "-s -w -X main.version=$$($(GO) list -m -f '{{.Version}}' github.com/letsencrypt/pebble/v2)" -o $@ github.com/letsencrypt/pebble/v2/cmd/pebble

# cert-manager's cainjector (our main over its library, build/e2ebin), for the cluster-e2e
# cluster: it fills the caBundle of acmezone's webhook APIService there.
$(BIN)/cert-manager-cainjector: build/e2ebin/go.mod build/e2ebin/go.sum $(wildcard build/e2ebin/cmd/cert-manager-cainjector/*.go)
	@echo ">> building $(@F) (cert-manager's cainjector, build/e2ebin) from the Go module proxy; the first build takes a minute or two, later ones seconds"
	@$(PROGRESS) cd build/e2ebin && CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $@ ./cmd/cert-manager-cainjector; $(PROGRESS_END)

# unbound, the recursive resolver of the end-to-end stack (Debian package).
.PHONY: unbound
unbound:
	@command -v unbound >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unbound >/dev/null; \
	  else echo "unbound not found: install Debian's unbound (sudo apt-get install unbound)"; exit 1; fi; }

# Knot DNS, the standard secondary of the secondaries tests, and knsupdate, a real RFC 2136
# client of the UPDATE listener's tests (Debian packages).
.PHONY: knot
knot:
	@{ command -v knotd >/dev/null || [ -x /usr/sbin/knotd ]; } && command -v knsupdate >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq knot knot-dnsutils >/dev/null; \
	  else echo "knotd or knsupdate not found: install Debian's knot and knot-dnsutils (sudo apt-get install knot knot-dnsutils)"; exit 1; fi; }

# The plugin's own tests also run under the race detector (its readers and writers share
# snapshots; its timing tests skip themselves there and run in the plain run). Plain
# `go test ./...` runs what needs no control plane and skips the rest.
RACE_PKGS := ./plugin/acmezone

# A C compiler, which the race detector needs (Debian package).
.PHONY: cc
cc:
	@command -v gcc >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; \
	  else echo "gcc not found: the race detector needs it (sudo apt-get install gcc)"; exit 1; fi; }

.PHONY: test
test: check-generated lint build testbin unbound knot cc $(BIN)/pebble ## Run every test: unit (the plugin's with -race), against a real API server (lego, Pebble and cert-manager's conformance suite too), and a short fuzz run.
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	$(GO) test -tags conformance -count=1 -timeout 45m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) ./plugin/acmezone
	$(GO) test -run '^$$' -fuzz '^FuzzParseZoneData$$' -fuzztime $(FUZZTIME) ./plugin/acmezone
	$(GO) test -run '^$$' -fuzz '^FuzzUpdate$$' -fuzztime $(FUZZTIME_UPDATE) ./controller/rfc2136

.PHONY: run
run: build ## Run bin/coredns with Corefile.example (needs a kubeconfig in the Corefile).
	$(BIN)/coredns -conf Corefile.example

.PHONY: demo e2e bench images push
demo: ## The seed's flow on this machine: a wildcard certificate through acmezone (KEEP=1 leaves it running).
	@echo ">> make demo: the first run builds kube-apiserver, kubectl, cert-manager's controller and Pebble from the Go module proxy (about 25 minutes on 2 cores, a line every 30 s); later runs start in seconds"
	@$(MAKE) --no-print-directory build testbin e2ebin unbound
	$(GO) run ./e2e/demo
e2e: build testbin e2ebin unbound knot ## End-to-end: cert-manager, Pebble, unbound, Knot and acmezone issue wildcard certificates, signed (DNSSEC) and through a secondary too (minutes).
	set -o pipefail; $(GO) test -tags e2e -count=1 -timeout 60m -json ./e2e/ | $(GO) run ./e2e/recap
bench: build testbin knot ## dnsperf against the stock file plugin, propagation, 10 vs 100,000 records, the lean vs the full CoreDNS build, Go benchmarks: docs/benchmarks.md, read with docs/benchmarks-method.md (about 40 minutes).
	$(GO) vet -tags coredns_full ./cmd/coredns
	set -o pipefail; $(GO) test -run '^$$' -bench '^BenchmarkServeDNS$$' -benchmem -count 10 ./plugin/acmezone | tee docs/bench-go.txt
	set -o pipefail; $(GO) test -run '^$$' -bench '^BenchmarkStoreMemory$$' -benchtime 1x -count 3 ./plugin/acmezone | tee docs/bench-store.txt
	$(GO) run ./e2e/bench -out docs/benchmarks.md -gobench docs/bench-go.txt -gostore docs/bench-store.txt $(BENCHFLAGS)

# Container images, built in Go with go-containerregistry (build/images): no Docker daemon.
REGISTRY          ?= ghcr.io/acmezone
IMAGE_TAG         ?= v0.1.0
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
images: ## Build the coredns and acmezone-controller images (linux/amd64 + linux/arm64) into bin/images: OCI layouts, docker load tarballs.
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/linux_amd64/ ./cmd/coredns ./cmd/acmezone-controller
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/linux_arm64/ ./cmd/coredns ./cmd/acmezone-controller
	$(GO) run ./build/images -bin $(BIN) -out $(BIN)/images -registry $(REGISTRY) -tag $(IMAGE_TAG) \
	  -version $(VERSION) -revision $(REVISION) -epoch $(SOURCE_DATE_EPOCH) -platforms linux/amd64,linux/arm64
push: images ## Push both images (one index each) to REGISTRY with crane and your docker login: make push REGISTRY=ghcr.io/you
	$(GO) run github.com/google/go-containerregistry/cmd/crane@v0.22.1 push $(BIN)/images/coredns $(REGISTRY)/coredns:$(IMAGE_TAG)
	$(GO) run github.com/google/go-containerregistry/cmd/crane@v0.22.1 push $(BIN)/images/acmezone-controller $(REGISTRY)/acmezone-controller:$(IMAGE_TAG)

# The cluster-e2e cluster's images (build/images with -images): acmezone's two, the pod
# sandbox (pause), cert-manager's controller and cainjector, and the cluster DNS (CoreDNS with
# every stock plugin), for linux/amd64 alone, named acmezone.test/<name>:cluster: never pulled,
# imported from the docker load tarballs bin/cluster-images/<name>.tar into containerd. The
# binaries are the static ones already in bin/ (CGO_ENABLED=0 builds on a linux/amd64 host are
# linux/amd64 ones), copied into bin/linux_amd64/ rather than compiled again with -trimpath.
CLUSTER_IMAGES := coredns,acmezone-controller,pause,cert-manager-controller,cert-manager-cainjector,cluster-dns

$(BIN)/linux_amd64/pause: build/cluster/pause/main.go
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -ldflags "-s -w" -o $@ ./build/cluster/pause

# Always run, as `make build`: go build relinks only when something changed.
.PHONY: $(BIN)/cluster-dns
$(BIN)/cluster-dns:
	CGO_ENABLED=0 $(GO) build -tags coredns_cluster -ldflags "$(LDFLAGS)" -o $@ ./cmd/coredns

.PHONY: cluster-images
cluster-images: build $(BIN)/cert-manager-controller $(BIN)/cert-manager-cainjector $(BIN)/cluster-dns $(BIN)/linux_amd64/pause ## Build the cluster-e2e cluster's images (linux/amd64, acmezone.test/<name>:cluster) into bin/cluster-images: docker load tarballs for ctr import.
	@[ "$$($(GO) env GOOS)/$$($(GO) env GOARCH)" = linux/amd64 ] || { echo "cluster-images: bin/'s binaries are linux/amd64 ones on a linux/amd64 machine only"; exit 1; }
	@mkdir -p $(BIN)/linux_amd64
	cp -f $(BIN)/coredns $(BIN)/acmezone-controller $(BIN)/cert-manager-controller $(BIN)/cert-manager-cainjector $(BIN)/cluster-dns $(BIN)/linux_amd64/
	rm -rf $(BIN)/cluster-images
	$(GO) run ./build/images -bin $(BIN) -out $(BIN)/cluster-images -registry acmezone.test -tag cluster -platforms linux/amd64 \
	  -images $(CLUSTER_IMAGES) -version $(VERSION) -revision $(REVISION) -epoch $(SOURCE_DATE_EPOCH)

# The single-node cluster of `make cluster-e2e` (e2e/cluster): the rest of Kubernetes v1.37 from
# the module proxy (build/testbin), Debian's containerd, runc, CNI plugins and iptables.
CLUSTER_BINS := $(BIN)/kubelet $(BIN)/kube-proxy $(BIN)/kube-controller-manager $(BIN)/kube-scheduler

.PHONY: clusterbin
clusterbin: testbin $(CLUSTER_BINS) ## Build the kubelet, kube-proxy, kube-controller-manager and kube-scheduler from the module proxy (minutes the first time).

$(CLUSTER_BINS):
	@echo ">> building $(@F) $(KUBE_VERSION) from the Go module proxy (a few minutes the first time, with kube-apiserver's build cached)"
	@$(PROGRESS) cd build/testbin && CGO_ENABLED=0 $(GO) build -ldflags "$(KUBE_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/$(@F); $(PROGRESS_END)

# Debian's packages the node needs (no systemd here: nothing starts them; the test does).
CLUSTER_DEBS := containerd runc containernetworking-plugins iptables conntrack
.PHONY: cluster-deps
cluster-deps:
	@missing=$$(for p in $(CLUSTER_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages: $$missing (sudo apt-get install $$missing)"; exit 1; fi; fi

# `go test -json | recap` prints what `go test -v` would, then the failed stages' lines again:
# the logs dumped after a failure are long. CLUSTER_RUN picks stages, e.g. make cluster-e2e CLUSTER_RUN='TestCluster/CoreDNS_rolled'.
CLUSTER_RUN ?= .
.PHONY: cluster-e2e
# What cluster-e2e builds and installs that no other target uses: .ci/run makes it while make
# e2e mostly waits (cert-manager sleeps 60 s after each passing self-check), which saves the
# cold run most of these builds. It touches none of the files make e2e runs.
.PHONY: cluster-prep
cluster-prep: clusterbin $(BIN)/cert-manager-cainjector $(BIN)/cluster-dns $(BIN)/linux_amd64/pause cluster-deps

cluster-e2e: build clusterbin e2ebin cluster-images cluster-deps unbound ## A real single-node cluster (kubelet, containerd): cert-manager and acmezone as pods from their images, installed from deploy/, both solvers, and faults (as root; about 15 minutes).
	set -o pipefail; $(GO) test -tags cluster -count=1 -timeout 45m -json -run '$(CLUSTER_RUN)' ./e2e/cluster/ | $(GO) run ./e2e/recap
