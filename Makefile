# Deep Images Hub. `make help` lists the targets.
#
# With no DATABASE_URL / TEST_DATABASE_URL, `make run` and `make test` start a
# private PostgreSQL cluster under .data/ (scripts/localpg.sh) and use it.

SHELL := /bin/bash
GO    ?= go
BIN   := bin/imagehub
# sqlc lives in its own module (tools/go.mod) so its many dependencies stay out
# of the program's go.mod; templ is a tool of the main module because the
# generator and the runtime must be the same version.
SQLC  := $(GO) tool -modfile=tools/go.mod sqlc
TEMPL := $(GO) tool templ
# The OpenID provider the sign-in tests start (sso/ssotest): zitadel/oidc's
# example provider, a tool of the tools module.
OIDC_PROVIDER := github.com/zitadel/oidc/v3/example/server
# helm, for the chart tests of deploy/ (helm lint, helm template).
HELM := helm.sh/helm/v3/cmd/helm

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# libjpeg-turbo's TurboJPEG library and headers: the imaging package decodes
# JPEGs through it (DCT-domain scaled decoding, lossless rotation) when cgo is
# on. Without cgo (or with -tags nojpegturbo) it falls back to the standard
# library's decoder, slower but needing no C library.
.PHONY: turbojpeg
turbojpeg: ## install Debian's libturbojpeg0-dev (libjpeg-turbo's TurboJPEG API) for the JPEG decoder, when missing
	@[ -f /usr/include/turbojpeg.h ] || [ "$$CGO_ENABLED" = 0 ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing libturbojpeg0-dev for the JPEG decoder"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libturbojpeg0-dev >/dev/null; \
		else \
			echo "the JPEG decoder links libjpeg-turbo's TurboJPEG: install it (Debian: apt-get install libturbojpeg0-dev) or build with CGO_ENABLED=0 (slower pure-Go decoding)" >&2; exit 1; \
		fi; }

.PHONY: build
build: turbojpeg ## build bin/imagehub
	$(GO) build -o $(BIN) ./cmd/imagehub

# The OCI image, built without Docker by tools/mkimage (go-containerregistry,
# in the tools module): reproducible, so one commit gives one digest.
IMAGE_TAR ?= bin/imagehub-oci.tar
.PHONY: image
image: ## build the hub's container image as an OCI layout tarball (IMAGE_TAR, default bin/imagehub-oci.tar) and print its digest
	@mkdir -p $(dir $(IMAGE_TAR))
	cd tools && GOWORK=off $(GO) run ./mkimage -src .. -o $(abspath $(IMAGE_TAR))

.PHONY: run
run: build ## build and serve on PORT (default 8080), starting a local PostgreSQL when DATABASE_URL is unset
	@set -e; \
	if [ -z "$$DATABASE_URL" ]; then DATABASE_URL=$$(scripts/localpg.sh start); export DATABASE_URL; fi; \
	exec $(BIN) serve

.PHONY: stop
stop: ## stop the local PostgreSQL cluster
	scripts/localpg.sh stop

.PHONY: clean
clean: stop ## stop the cluster and delete local data and builds
	@[ -L .data/pg ] && rm -rf "$$(readlink -f .data/pg)" || true
	rm -rf .data bin

.PHONY: generate
generate: ## regenerate templ and sqlc code and the API client generated from the OpenAPI description
	$(TEMPL) generate -path views
	$(SQLC) -f sqlc.yaml generate
	scripts/gen-apiclient.sh

.PHONY: check-generated
check-generated: ## fail when generated code is stale
	@scripts/check-generated.sh

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

# The review screen's JavaScript: eslint (pinned in package.json and
# package-lock.json) and Node's own test runner for static/test/.
.PHONY: node
node: ## install Debian's Node.js and npm for the JavaScript checks, when missing
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Node.js and npm for the JavaScript checks"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
		else \
			echo "the JavaScript checks need Node.js 20.19 or later and npm: install them (Debian: apt-get install nodejs npm)" >&2; exit 1; \
		fi; }

node_modules/.package-lock.json: package.json package-lock.json | node
	npm ci --no-audit --no-fund --loglevel=error

.PHONY: lint-js
lint-js: node_modules/.package-lock.json ## eslint over static/ (the review screen's modules and the other pages' scripts)
	npx --no-install eslint static eslint.config.js

# Swagger UI for /api/docs (static/apidocs/): the swagger-ui-dist release
# pinned in package.json, copied from node_modules, its bundle gzipped (the
# static package serves NAME.gz as NAME). static's TestAPIDocsAssets fails
# when the copy and node_modules differ.
.PHONY: apidocs
apidocs: node_modules/.package-lock.json ## copy Swagger UI (swagger-ui-dist, pinned in package.json) into static/apidocs/ for /api/docs
	gzip -9 -n -c node_modules/swagger-ui-dist/swagger-ui-bundle.js > static/apidocs/swagger-ui-bundle.js.gz
	cp node_modules/swagger-ui-dist/swagger-ui.css static/apidocs/swagger-ui.css
	cp node_modules/swagger-ui-dist/LICENSE static/apidocs/LICENSE.txt

.PHONY: test-js
test-js: node ## static/rle.js (and other pure modules) under Node's test runner
	node --test static/test/

.PHONY: chromium
chromium: ## install Debian's chromium for the browser tests, when missing
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$CHROMIUM" ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium for the browser tests"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "the browser tests need Chromium: install it (Debian: apt-get install chromium) or set CHROMIUM=/path/to/chrome" >&2; exit 1; \
		fi; }

.PHONY: unzip
unzip: ## install Info-ZIP's unzip for the dataset tests (they check downloads with unzip -t), when missing
	@command -v unzip >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing unzip for the dataset tests"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip >/dev/null; \
		else \
			echo "the dataset tests check downloads with unzip -t: install it (Debian: apt-get install unzip)" >&2; exit 1; \
		fi; }

.PHONY: haproxy
haproxy: ## install Debian's haproxy for the cluster soak (make soak), when missing
	@command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || [ -n "$$HAPROXY" ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing haproxy for the cluster soak"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; \
		else \
			echo "the cluster soak runs the replicas behind haproxy: install it (Debian: apt-get install haproxy) or set HAPROXY=/path/to/haproxy" >&2; exit 1; \
		fi; }

# ONNX Runtime's shared library for `imagehub worker --onnx` and the tests of
# worker/onnxworker: the CPU build inside npm's onnxruntime-node@1.24.1 (the
# release onnxruntime_go v1.27.0 is written for), checked against its
# registry integrity hash and installed into the git-ignored .bin/onnxruntime/.
# ONNXRUNTIME_LIB points the program and the tests at another copy.
.PHONY: onnxruntime
onnxruntime: ## install ONNX Runtime 1.24.1's shared library into .bin/onnxruntime/ (from npm's onnxruntime-node), when missing
	@scripts/onnxruntime.sh >/dev/null

# The test models of testdata/onnx/ are committed; this regenerates them with
# Debian's python3-onnx (the system python3, not a virtualenv's).
ONNX_PYTHON ?= /usr/bin/python3
.PHONY: onnx-models
onnx-models: ## regenerate the ONNX test models in testdata/onnx/ (installs Debian's python3-onnx when missing)
	@$(ONNX_PYTHON) -c 'import onnx' 2>/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing python3-onnx for the ONNX test models"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-onnx >/dev/null; \
		else \
			echo "the ONNX test models are written with the onnx Python package: install it (Debian: apt-get install python3-onnx) or set ONNX_PYTHON" >&2; exit 1; \
		fi; }
	$(ONNX_PYTHON) testdata/onnx/generate.py

.PHONY: test
test: chromium unzip turbojpeg ## vet, eslint, Node's tests, check generated code, run every test with -race against a real PostgreSQL and headless Chromium
	@set -e; \
	if [ -z "$$TEST_DATABASE_URL" ]; then TEST_DATABASE_URL=$$(scripts/localpg.sh start); export TEST_DATABASE_URL; fi; \
	vgwlog=$$(mktemp); oplog=$$(mktemp); ortlog=$$(mktemp); helmlog=$$(mktemp); \
	echo "building versitygw (the S3 server the blob tests start), the OpenID provider (for the sign-in tests) and helm (for the chart tests), and installing ONNX Runtime (for the ONNX worker tests) when missing, while vet runs"; \
	$(GO) tool -modfile=tools/go.mod -n versitygw >/dev/null 2>"$$vgwlog" & vgw=$$!; \
	$(GO) tool -modfile=tools/go.mod -n $(HELM) >/dev/null 2>"$$helmlog" & hlm=$$!; \
	$(GO) tool -modfile=tools/go.mod -n $(OIDC_PROVIDER) >/dev/null 2>"$$oplog" & op=$$!; \
	scripts/onnxruntime.sh >/dev/null 2>"$$ortlog" & ort=$$!; \
	$(MAKE) --no-print-directory vet lint-js test-js check-generated; \
	wait $$vgw || { cat "$$vgwlog" >&2; echo "error building versitygw" >&2; exit 1; }; \
	wait $$op || { cat "$$oplog" >&2; echo "error building the OpenID provider" >&2; exit 1; }; \
	wait $$ort || { cat "$$ortlog" >&2; echo "error installing ONNX Runtime (make onnxruntime)" >&2; exit 1; }; \
	wait $$hlm || { cat "$$helmlog" >&2; echo "error building helm" >&2; exit 1; }; \
	rm -f "$$vgwlog" "$$oplog" "$$ortlog" "$$helmlog"; \
	(cd tools && GOWORK=off $(GO) test -count=1 ./benchtable/); \
	$(GO) test -race -count=1 -timeout 20m ./...

# Native Go fuzz targets (package:function). Their seed corpora, and the
# inputs they found (testdata/fuzz/<Func>/), run as ordinary tests in make test.
FUZZ_TIME  ?= 1m
FUZZ_FLAGS ?=
FUZZ_TARGETS := \
	./mask/:FuzzDecode \
	./mask/:FuzzUnmarshalJSON \
	./imaging/:FuzzInspect \
	./imaging/:FuzzProcess \
	./oip/:FuzzDecodeRequest \
	./oip/:FuzzDecodeResponse \
	./openimages/:FuzzReadClasses \
	./openimages/:FuzzReadImageLabels \
	./review/:FuzzSubmission

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZ_TIME (default 1m) in turn; FUZZ_FLAGS adds go test flags (e.g. -parallel 1)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "== $$name ($$pkg) for $(FUZZ_TIME)"; \
		$(GO) test -timeout 0 -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZ_TIME) $(FUZZ_FLAGS) $$pkg; \
	done

.PHONY: imagemagick
imagemagick:
	@[ -x /usr/bin/convert ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq imagemagick >/dev/null; \
		else echo "make bench compares with ImageMagick: install it (apt-get install imagemagick)" >&2; exit 1; fi; }

.PHONY: vips
vips:
	@[ -x /usr/bin/vipsthumbnail ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools >/dev/null; \
		else echo "make bench compares 12-megapixel ingest with vipsthumbnail: install it (apt-get install libvips-tools)" >&2; exit 1; fi; }

# Each benchmark runs a fixed amount of work: the heavy ones load data first.
BENCHES := \
	./imaging/:BenchmarkIngest:1s \
	./app/:BenchmarkIngestPhone:1x \
	./layout/:BenchmarkLayouts:20x \
	./app/:BenchmarkIngestPipeline:3x \
	./mask/:BenchmarkEncode:2000x \
	./mask/:BenchmarkDecode:2000x \
	./mask/:BenchmarkDecodeInto:2000x \
	./jobs/:BenchmarkNearDuplicateLookup:2000x \
	./jobs/:BenchmarkNearDuplicateQuality:1x \
	./jobs/:BenchmarkDispatch:1x \
	./jobs/:BenchmarkDispatchBatched:1x \
	./jobs/:BenchmarkDispatchBatchedOneRequest:1x \
	./jobs/:BenchmarkRiverNoop:1x \
	./app/:BenchmarkReviewBrushFrame:1x \
	./app/:BenchmarkReviewClickToMask:1x \
	./dataset/:BenchmarkDatasetPublish:1x \
	./labelimport/:BenchmarkLabelsCSVImport:1x \
	./labelimport/:BenchmarkClassesImport:3x \
	./dataset/:BenchmarkDatasetExport:3x \
	./app/:BenchmarkDatasetDownload:1x \
	./app/:BenchmarkInsights:1x \
	./app/:BenchmarkListsAtMillion:1x \
	./cmd/imagehub/:BenchmarkLoad:1x \
	./worker/onnxworker/:BenchmarkONNXWorker:200x \
	./worker/segment/:BenchmarkInteractivePrompt:200x \
	./app/:BenchmarkReviewSegment:1x \
	./trainer/:BenchmarkRegionClassifier:1x \
	./cmd/imagehub/:BenchmarkTrainingThroughHub:1x

.PHONY: bench
bench: imagemagick vips turbojpeg chromium onnxruntime ## run the benchmarks (ingest beside ImageMagick, 12-megapixel phone photos beside vipsthumbnail, near-duplicate lookup at 1M, near-duplicate precision and recall with crops, dispatch efficiency with and without batching, review brush frames, click to mask, dataset publish at 1M, Open Images labels CSV import at 1M rows and 20k classes beside their 60 s and 5 s limits, export beside tar, download memory, insights at 1M images, every list and queue at 1M images (p99 beside its limit), COCO RLE encode and decode, load, ONNX worker images/s, interactive ms per prompt, click-to-mask through the hub, training the region-classifier recipe on 500 images beside the segmenter's AP50, alone and through a served hub with its own evaluation) and print a table
	@set -e; \
	if [ -z "$$TEST_DATABASE_URL" ]; then TEST_DATABASE_URL=$$(scripts/localpg.sh start); export TEST_DATABASE_URL; fi; \
	out=$$(mktemp); failed=; \
	for b in $(BENCHES); do \
		pkg=$${b%%:*}; rest=$${b#*:}; name=$${rest%%:*}; time=$${rest#*:}; \
		$(GO) test -run '^$$' -bench "^$$name$$" -benchtime "$$time" -benchmem -timeout 20m "$$pkg" | tee -a "$$out" | { grep -E '^(Benchmark|ingest:|load:)' >&2 || true; }; \
		[ "$${PIPESTATUS[0]}" -eq 0 ] || failed="$$failed $$pkg:$$name"; \
	done; \
	echo; echo "machine: $$(nproc) cores, $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"; \
	grep -E '^load:' "$$out" || true; \
	(cd tools && GOWORK=off $(GO) run ./benchtable) < "$$out"; \
	rm -f "$$out"; \
	if [ -n "$$failed" ]; then echo "make bench: these benchmarks failed, so their figures are missing above:$$failed" >&2; exit 1; fi

.PHONY: load
load: ## load test: LOAD_UPLOADERS (200) uploaders and LOAD_REVIEWERS (32) reviewers for LOAD_DURATION (60s) against a real serve and a synthetic worker; prints a table
	@set -e; \
	if [ -z "$$TEST_DATABASE_URL" ]; then TEST_DATABASE_URL=$$(scripts/localpg.sh start); export TEST_DATABASE_URL; fi; \
	$(GO) test -run '^$$' -bench '^BenchmarkLoad$$' -benchtime 1x -timeout 30m ./cmd/imagehub/

# The cluster on one machine (cmd/imagehub/cluster_test.go): 3 replicas
# behind haproxy, one private PostgreSQL, one versitygw, 4 synthetic workers,
# 20 uploaders and 4 reviewers; a replica and a worker SIGKILLed mid-load.
# Too long for make test (a minute of load and the drain).
CLUSTER_DURATION ?= 60s
.PHONY: soak
soak: haproxy ## the cluster kill test: 3 replicas behind haproxy, 4 workers, 20 uploaders and 4 reviewers for CLUSTER_DURATION (60s), a replica and a worker SIGKILLed and restarted mid-load
	set -o pipefail; CLUSTER_DURATION=$(CLUSTER_DURATION) $(GO) test -count=1 -v -run '^TestClusterKilledMidLoad$$' -timeout 30m ./cmd/imagehub/ | grep -v '^=== RUN'

.PHONY: scaling
SCALING_DURATION ?= 30s
scaling: haproxy ## images/s and CPU per image with 1, 2 and 3 replicas behind haproxy, SCALING_DURATION (30s) of load each, and the tables by size per image (docs/scaling.md)
	set -o pipefail; CLUSTER_DURATION=$(SCALING_DURATION) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkCluster$$' -benchtime 1x -timeout 60m ./cmd/imagehub/ | grep -E '^(Benchmark|cluster:|--- FAIL|FAIL|panic:|ok |    [a-z_]+_test\.go:)'
