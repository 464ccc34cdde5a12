# syntax=docker/dockerfile:1
# tokengate's image: static binaries on a distroless base, as uid 65532 (nonroot).
#
#   docker build -t tokengate .                          # compiles in golang:1.26, runs on distroless
#   docker build --target mcp-sample -t mcp-sample .     # the sample MCP server
#
# Offline (`make image`, with podman): the binaries are built beforehand on the
# host into bin/image/out/, next to the few files a scratch image needs
# (bin/image/etc: a passwd and group entry for nonroot, CA certificates), and
#   --build-arg BINARIES=prebuilt --build-arg RUNTIME_BASE=scratch-root
# takes both from there, so nothing is pulled from a registry.

# Where the binaries come from: "build" (the stage below) or "prebuilt".
ARG BINARIES=build
# The runtime base: distroless, or "scratch-root" (the prebuilt /etc alone).
ARG RUNTIME_BASE=gcr.io/distroless/static-debian12:nonroot

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/tokengate ./cmd/tokengate \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/mcp-sample ./cmd/mcp-sample

FROM scratch AS prebuilt
COPY bin/image/ /

FROM scratch AS scratch-root
COPY --from=prebuilt /etc/ /etc/

FROM ${BINARIES} AS binaries

FROM ${RUNTIME_BASE} AS mcp-sample
COPY --from=binaries /out/mcp-sample /usr/local/bin/mcp-sample
COPY --from=binaries /out/tokengate /usr/local/bin/tokengate
EXPOSE 8000
USER nonroot
HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --retries=12 \
  CMD ["/usr/local/bin/tokengate", "healthcheck", "--url", "http://127.0.0.1:8000/healthz"]
ENTRYPOINT ["/usr/local/bin/mcp-sample", "--listen", "0.0.0.0:8000", "--disable-localhost-protection"]

FROM ${RUNTIME_BASE} AS tokengate
COPY --from=binaries /out/tokengate /usr/local/bin/tokengate
COPY --from=binaries /out/mcp-sample /usr/local/bin/mcp-sample
EXPOSE 9191 9192
USER nonroot
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=12 \
  CMD ["/usr/local/bin/tokengate", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tokengate"]
CMD ["serve", "--config", "/etc/tokengate/tokengate.yaml"]
