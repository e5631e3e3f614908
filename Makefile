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

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/imagehub
	$(GO) build -o $(BIN) ./cmd/imagehub

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
	rm -rf .data bin

.PHONY: generate
generate: ## regenerate templ and sqlc code
	$(TEMPL) generate -path views
	$(SQLC) -f sqlc.yaml generate

.PHONY: check-generated
check-generated: ## fail when generated code is stale
	@scripts/check-generated.sh

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

.PHONY: chromium
chromium: ## install Debian's chromium for the browser tests, when missing
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$CHROMIUM" ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium for the browser tests"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "the browser tests need Chromium: install it (Debian: apt-get install chromium) or set CHROMIUM=/path/to/chrome" >&2; exit 1; \
		fi; }

.PHONY: test
test: chromium ## vet, check generated code, run every test with -race against a real PostgreSQL and headless Chromium
	@set -e; \
	if [ -z "$$TEST_DATABASE_URL" ]; then TEST_DATABASE_URL=$$(scripts/localpg.sh start); export TEST_DATABASE_URL; fi; \
	$(MAKE) --no-print-directory vet check-generated; \
	$(GO) test -race -count=1 -timeout 12m ./...

.PHONY: bench
bench: ## run the benchmarks and print a table
	@set -e; \
	if [ -z "$$TEST_DATABASE_URL" ]; then TEST_DATABASE_URL=$$(scripts/localpg.sh start); export TEST_DATABASE_URL; fi; \
	$(GO) test -run '^$$' -bench . -benchmem ./...
