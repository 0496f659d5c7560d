# The operator builds with Go 1.27.3, which the go command fetches from the
# module proxy on first use; the machines' own Go (1.26) is older and carries
# known standard-library vulnerabilities. Every target inherits this.
export GOTOOLCHAIN := go1.27.3

IMG ?= uredis-backup-operator:dev
VERSION ?= dev
K8S_VERSION ?= 1.37.2
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.0
# golangci-lint is pinned, with every dependency, by hack/tools/golangci-lint/go.mod.
GOLANGCI_LINT_VERSION := $(shell awk '$$1 == "github.com/golangci/golangci-lint/v2" { print $$2 }' hack/tools/golangci-lint/go.mod)

LOCALBIN ?= $(CURDIR)/bin
CONTROL_PLANE ?= $(LOCALBIN)/k8s/$(K8S_VERSION)
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
# promtool comes from the Prometheus module pinned in hack/tools/prometheus.
PROMETHEUS_VERSION := $(shell awk '$$1 == "github.com/prometheus/prometheus" { print $$2 }' hack/tools/prometheus/go.mod)
PROMTOOL ?= $(LOCALBIN)/promtool-$(PROMETHEUS_VERSION)
# promqlutil (hack/tools/prometheus) parses queries with Prometheus's own
# parser for the monitoring test; built before `go test` so that its first
# build (the whole Prometheus module) never counts against a test timeout.
PROMQLUTIL ?= $(LOCALBIN)/promqlutil-$(PROMETHEUS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
# The helm CLI comes from the Helm module pinned in hack/tools/helm; `make
# helm-lint` and the chart's tests (test/manifests) run it.
HELM_VERSION := $(shell awk '$$1 == "helm.sh/helm/v4" { print $$2 }' hack/tools/helm/go.mod)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
CHART ?= charts/uredis-backup-operator
KUBECTL ?= $(CONTROL_PLANE)/kubectl
# The Dockerfile builds the image's binary with this same command (CGO off,
# -trimpath, these flags); dockerfile_test.go holds them to it.
LDFLAGS := -s -w -X github.com/dezai/uredis-backup-operator/internal/version.Version=$(VERSION)

# Two packages at a time suits the 2-core CI machines. The integration tests
# mostly wait on real link lifetimes, so many run in parallel (each in its own
# namespace with its own manager and simulator).
FUZZTIME ?= 10s
TEST_FLAGS ?= -count=1 -p 2 -parallel 16 -timeout 20m
# The unit tests: every package outside test/, which holds the tests that need
# the control plane. In -short mode, internal/bench skips its pipeline test,
# the one test outside test/ that starts a control plane.
UNIT_TEST_PACKAGES ?= . ./api/... ./cmd/... ./controllers/... ./hack/... ./internal/...
UNIT_TEST_FLAGS ?= -short

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD, RBAC, docs/api.md and the flags table of docs/operations.md from the code, and what the Helm chart takes from config/.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	go run ./hack/crd-doc config/crd/bases/uredis.dezai.com_redisbackupexports.yaml docs/api.md
	go run . --help 2>&1 | go run ./hack/flags-doc docs/operations.md
	go run ./hack/chart-gen

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -s -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify
verify: manifests generate ## Fail when generated code or manifests are out of date.
	@git diff --exit-code -- api config docs/api.md docs/operations.md charts docs/helm.md || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }
	@test -z "$$(gofmt -s -l $$(git ls-files '*.go'))" || { gofmt -s -l $$(git ls-files '*.go'); echo "run 'make fmt'"; exit 1; }

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint with the linters of .golangci.yml.
	$(GOLANGCI_LINT) run ./...

.PHONY: helm-lint
helm-lint: $(HELM) ## Run helm lint --strict on the chart, with its default values and with every toggle on.
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --values $(CHART)/ci/all-on-values.yaml

.PHONY: test-unit
test-unit: ## Run the unit tests: seconds, no control plane, no kustomize.
	env -u KUBEBUILDER_ASSETS -u KUSTOMIZE go test $(UNIT_TEST_FLAGS) $(UNIT_TEST_PACKAGES)

.PHONY: test
test: manifests generate vet control-plane $(KUSTOMIZE) $(PROMQLUTIL) $(HELM) ## Run all tests against a real kube-apiserver and the API simulator.
	KUBEBUILDER_ASSETS=$(CONTROL_PLANE) KUSTOMIZE=$(KUSTOMIZE) PROMQLUTIL=$(PROMQLUTIL) HELM=$(HELM) go test $(TEST_FLAGS) ./...

.PHONY: test-alerts
test-alerts: $(PROMTOOL) $(PROMQLUTIL) $(KUSTOMIZE) ## Check the alert rules of config/alerts and run their unit tests (test/alerts) with promtool.
	hack/test-alerts.sh $(PROMTOOL) $(KUSTOMIZE) $(PROMQLUTIL)

.PHONY: demo
demo: manifests control-plane ## Run the operator end to end on a local control plane and the bundled simulator.
	KUBEBUILDER_ASSETS=$(CONTROL_PLANE) go run ./cmd/demo

.PHONY: bench
bench: manifests control-plane ## Benchmark the operator on a local control plane and the simulator into docs/benchmarks.md (BENCH_N=10000 for 10,000 resources).
	KUBEBUILDER_ASSETS=$(CONTROL_PLANE) BENCH_INVOCATION="make bench" go run ./cmd/bench

.PHONY: vulncheck
vulncheck: ## Run govulncheck against an offline copy of the Go vulnerability database.
	hack/govulncheck.sh $(LOCALBIN)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s).
	hack/fuzz.sh $(FUZZTIME)

##@ Build

.PHONY: build
build: ## Build the manager binary.
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(LOCALBIN)/manager .

.PHONY: simulator
simulator: ## Build the API simulator command.
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/simulator ./cmd/simulator

.PHONY: run
run: manifests ## Run the manager against the cluster of the current kubeconfig.
	go run -ldflags '$(LDFLAGS)' . $(ARGS)

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests $(KUSTOMIZE) $(KUBECTL) ## Install the CRD into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) $(KUBECTL) ## Remove the CRD (and with it every RedisBackupExport).
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) $(KUBECTL) ## Deploy the operator with image IMG.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) $(KUBECTL) ## Remove the operator.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Tools

.PHONY: control-plane
control-plane: ## Build kube-apiserver and etcd from the module proxy into bin/k8s/.
	hack/build-control-plane.sh $(CONTROL_PLANE)

$(KUBECTL):
	hack/build-control-plane.sh $(CONTROL_PLANE) kubectl

$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN)/tmp-cg go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/tmp-cg/controller-gen $@ && rmdir $(LOCALBIN)/tmp-cg

$(PROMQLUTIL): $(wildcard hack/tools/prometheus/promqlutil/*.go) hack/tools/prometheus/go.mod
	cd hack/tools/prometheus && CGO_ENABLED=0 go build -trimpath -o $@.tmp ./promqlutil
	mv $@.tmp $@

$(PROMTOOL):
	cd hack/tools/prometheus && CGO_ENABLED=0 go build -trimpath -o $@.tmp github.com/prometheus/prometheus/cmd/promtool
	mv $@.tmp $@

$(KUSTOMIZE):
	GOBIN=$(LOCALBIN)/tmp-kz go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(LOCALBIN)/tmp-kz/kustomize $@ && rmdir $(LOCALBIN)/tmp-kz

# Built like Helm's own release (its Makefile): static, stripped, with the
# version stamped, which `helm version` prints.
$(HELM):
	cd hack/tools/helm && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w -X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)' -o $@.tmp helm.sh/helm/v4/cmd/helm
	mv $@.tmp $@

$(GOLANGCI_LINT):
	cd hack/tools/golangci-lint && go build -trimpath -ldflags '-X main.version=$(GOLANGCI_LINT_VERSION)' -o $@.tmp github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	mv $@.tmp $@
