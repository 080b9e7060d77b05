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

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/coredns (CoreDNS with the acmezone plugin) and bin/acmezone-controller, static and version-stamped.
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/coredns ./cmd/coredns
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/acmezone-controller ./cmd/acmezone-controller

.PHONY: generate
generate: ## Regenerate deepcopy code and the CRDs in deploy/crds with controller-gen.
	$(GO) tool controller-gen object paths=./api/... crd:crdVersions=v1 output:crd:artifacts:config=deploy/crds

.PHONY: check-generated
check-generated: generate ## Fail when `make generate` changes committed files.
	@git diff --exit-code -- api deploy/crds || { echo "generated files are stale: run 'make generate' and commit the result"; exit 1; }

.PHONY: lint
lint: ## go vet and gofmt.
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

.PHONY: testbin
testbin: $(BIN)/kube-apiserver $(BIN)/kubectl $(BIN)/etcd ## Build kube-apiserver and kubectl from the module proxy, find etcd (first run about 20 minutes).

$(BIN)/kube-apiserver $(BIN)/kubectl:
	@echo ">> building $(@F) $(KUBE_VERSION) from the Go module proxy; the first build takes about 18 minutes, later ones seconds"
	cd build/testbin && CGO_ENABLED=0 $(GO) build -ldflags "$(KUBE_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/$(@F)

$(BIN)/etcd:
	@mkdir -p $(BIN)
	@command -v etcd >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; \
	  else echo "etcd not found: install Debian's etcd-server (sudo apt-get install etcd-server)"; exit 1; fi; }
	ln -sf "$$(command -v etcd)" $@

# unbound, the recursive resolver of the end-to-end stack (Debian package).
.PHONY: unbound
unbound:
	@command -v unbound >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unbound >/dev/null; \
	  else echo "unbound not found: install Debian's unbound (sudo apt-get install unbound)"; exit 1; fi; }

.PHONY: test
test: check-generated lint build testbin unbound ## Run every test: unit, against a real API server, and a short fuzz run.
	$(GO) test -count=1 ./...
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) ./plugin/acmezone
	$(GO) test -run '^$$' -fuzz '^FuzzParseZoneData$$' -fuzztime $(FUZZTIME) ./plugin/acmezone

.PHONY: run
run: build ## Run bin/coredns with Corefile.example (needs a kubeconfig in the Corefile).
	$(BIN)/coredns -conf Corefile.example

# Targets that later issues add. They fail, and say so, until then.
.PHONY: demo e2e bench images push
demo: ## (not built yet) The whole seed flow on this machine.
	@echo "make demo is not built yet (issue 6: end to end with cert-manager, Pebble and unbound)"; exit 1
e2e: ## (not built yet) End-to-end tests with real parts.
	@echo "make e2e is not built yet (issue 6)"; exit 1
bench: ## (not built yet) dnsperf benchmarks into docs/benchmarks.md.
	@echo "make bench is not built yet (issue 5)"; exit 1
images: ## (not built yet) OCI images in bin/images.
	@echo "make images is not built yet (issue 7)"; exit 1
push: ## (not built yet) Push the images to REGISTRY.
	@echo "make push is not built yet (issue 7)"; exit 1
