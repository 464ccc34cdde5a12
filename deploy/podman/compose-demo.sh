#!/usr/bin/env bash
# make compose-demo: the compose stack (deploy/compose) with podman-compose on
# the local images, on the compose network, published on 127.0.0.1:10000
# (Envoy) and 127.0.0.1:9192 (tokengate's health and metrics) like
# `docker compose up`. `deploy/podman/compose-demo.sh down` stops it and
# keeps the key; `down -v` also deletes the keys volume.
set -euo pipefail
cd "$(dirname "$0")/../.."
project=tokengate-demo
pc=(podman-compose --no-ansi -p "$project" -f deploy/compose/docker-compose.yml -f deploy/compose/podman-compose.override.yml)

if [ "${1:-up}" = down ]; then
	shift
	"${pc[@]}" down "$@" >/dev/null
	[ "${1:-}" != -v ] || podman volume rm -f "${project}_keys" >/dev/null
	echo "compose demo stopped"
	exit 0
fi

# podman-compose 1.0.3 does not wait on depends_on conditions: start keygen
# alone, wait for it, then the rest.
"${pc[@]}" down >/dev/null 2>&1 || true
"${pc[@]}" up -d --no-build >"${TMPDIR:-/tmp}/$project-up.log" 2>&1 &
up=$!
for _ in $(seq 1 120); do
	state=$(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "${project}_keygen_1" 2>/dev/null || true)
	case "$state" in "exited 0") break ;; "exited "*) echo "keygen failed:"; podman logs "${project}_keygen_1"; exit 1 ;; esac
	sleep 0.5
done
wait "$up" || true
# tokengate may have started before the key existed: restart it now.
podman restart "${project}_tokengate_1" >/dev/null

status=
for _ in $(seq 1 120); do
	status=$(curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:10000/mcp || true)
	[ "$status" = 401 ] && break
	sleep 0.5
done
if [ "$status" != 401 ]; then
	echo "the stack did not come up (Envoy answered ${status:-nothing}):"
	"${pc[@]}" ps
	for s in tokengate mcp-sample envoy; do echo "--- $s"; podman logs --tail 20 "${project}_${s}_1" 2>&1; done
	exit 1
fi
# The compose file's health checks, in exec form: podman-compose 1.0.3 wraps
# every healthcheck test in /bin/sh, which these images do not have, so
# `podman ps` shows them as unhealthy; the check itself passes.
podman exec "${project}_tokengate_1" /usr/local/bin/tokengate healthcheck --url http://127.0.0.1:9192/readyz >/dev/null ||
	{ echo "tokengate is not healthy"; exit 1; }
podman exec "${project}_mcp-sample_1" /usr/local/bin/tokengate healthcheck --url http://127.0.0.1:8000/healthz >/dev/null ||
	{ echo "mcp-sample is not healthy"; exit 1; }

keys=$(podman volume inspect -f '{{.Mountpoint}}' "${project}_keys")
url=http://localhost:10000/mcp
cat <<MSG

tokengate compose demo is up (podman-compose, project $project): Envoy :10000 -> tokengate (ext_authz gRPC :9191) -> mcp-sample :8000
Containers: $(podman ps --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' | tr '\n' ' ')

A token for "alice" with scopes "mcp:read mcp:write" (valid 24h, also in $keys/token):

$(cat "$keys/token")

Initialize an MCP session through Envoy (200, with an Mcp-Session-Id header):

curl -i $url \\
  -H "Authorization: Bearer \$(cat $keys/token)" \\
  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

Without a token (401 and the challenge that points MCP clients at the metadata):

curl -i $url -X POST

The protected resource metadata (RFC 9728), answered by tokengate through Envoy:

curl -s http://localhost:10000/.well-known/oauth-protected-resource/mcp

Mint another token (say, without mcp:read, for a 403):

bin/tokengate token mint --key $keys/private.pem --alg ES256 --kid demo --iss https://issuer.demo.tokengate.local --aud $url --sub bob --scope mcp:write

Metrics: curl -s http://127.0.0.1:9192/metrics | grep tokengate_check_total

Stop with: make compose-demo-down (keeps the key) or deploy/podman/compose-demo.sh down -v
MSG
