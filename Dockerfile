# syntax=docker/dockerfile:1
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/tokengate ./cmd/tokengate \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/mcp-sample ./cmd/mcp-sample

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tokengate /usr/local/bin/tokengate
COPY --from=build /out/mcp-sample /usr/local/bin/mcp-sample
EXPOSE 9191 9192
USER nonroot
ENTRYPOINT ["/usr/local/bin/tokengate"]
CMD ["serve", "--config", "/etc/tokengate/tokengate.yaml"]
