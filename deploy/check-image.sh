#!/usr/bin/env bash
# Builds the image from deploy/Dockerfile and checks it the way an operator would use it: a TLS server on a named
# volume with a keys directory from the host, its own HEALTHCHECK, a real import and trace through the published
# port, metrics, SIGTERM ending in exit code 0, and the data and operator key still there after a restart.
#
#   deploy/check-image.sh                 # with docker
#   ENGINE=podman deploy/check-image.sh   # with podman (rootful; its build keeps HEALTHCHECK with --format docker)
#   IMAGE=gongwen:1.2 deploy/check-image.sh   # check an image already built, instead of building one
#
# Needs the engine, openssl, and cargo (the host-side `gongwen` client is built from this checkout). Uses ports
# 127.0.0.1:50151 and :9564 (GRPC_PORT, METRICS_PORT). Removes its container and volume when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-docker}
IMAGE=${IMAGE:-}
GRPC_PORT=${GRPC_PORT:-50151}
METRICS_PORT=${METRICS_PORT:-9564}
NAME=gongwen-check-$$
VOLUME=gongwen-check-data-$$
WORK=$(mktemp -d)

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; "$ENGINE" logs "$NAME" >&2 2>&1 || true; exit 1; }
cleanup() {
  "$ENGINE" rm -f "$NAME" >/dev/null 2>&1 || true
  "$ENGINE" volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say "host client"
cargo build --release --bin gongwen --quiet
GONGWEN=$PWD/target/release/gongwen

if [ -z "$IMAGE" ]; then
  IMAGE=gongwen:check
  say "build $IMAGE with $ENGINE"
  format=()
  [ "$ENGINE" = podman ] && format=(--format docker)
  "$ENGINE" build "${format[@]}" -f deploy/Dockerfile -t "$IMAGE" .
fi

say "TLS material: a CA and a server certificate for localhost"
mkdir -p "$WORK/tls" "$WORK/keys"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=gongwen-check-ca \
  -keyout "$WORK/tls/ca.key" -out "$WORK/tls/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$WORK/tls/server.key" -out "$WORK/tls/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$WORK/tls/ext"
openssl x509 -req -in "$WORK/tls/server.csr" -CA "$WORK/tls/ca.pem" -CAkey "$WORK/tls/ca.key" -CAcreateserial \
  -days 2 -extfile "$WORK/tls/ext" -out "$WORK/tls/server.pem" 2>/dev/null
# The image runs as uid 10001: it reads the TLS files and makes the operator key in the keys directory.
chmod 0644 "$WORK/tls/"*
chown -R 10001:10001 "$WORK/keys" 2>/dev/null || chmod 0777 "$WORK/keys"

run() {
  "$ENGINE" run -d --name "$NAME" -v "$VOLUME:/var/lib/gongwen" -v "$WORK/keys:/etc/gongwen/keys" \
    -v "$WORK/tls:/etc/gongwen/tls:ro" -p "127.0.0.1:$GRPC_PORT:50051" -p "127.0.0.1:$METRICS_PORT:9464" \
    "$IMAGE" >/dev/null
}

# The image's own HEALTHCHECK, run now instead of on its 15 s timer: podman runs it on request; docker only on
# its timer, so with docker this waits for the status it reports.
healthy() {
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    if [ "$ENGINE" = podman ]; then
      "$ENGINE" healthcheck run "$NAME" >/dev/null 2>&1 && return 0
    else
      [ "$("$ENGINE" inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ] && return 0
    fi
    [ "$("$ENGINE" inspect -f '{{.State.Running}}' "$NAME")" = true ] || fail "the container stopped"
    sleep 0.5
  done
  fail "not healthy within 60 s"
}

client() { "$GONGWEN" --server "https://localhost:$GRPC_PORT" --tls-ca "$WORK/tls/ca.pem" --keys "$WORK/keys" "$@"; }

say "run: TLS, a named volume, the host's keys directory"
run
healthy
[ "$("$ENGINE" inspect -f '{{.Config.User}}' "$NAME")" = gongwen ] || fail "the image does not run as user gongwen"
[ -s "$WORK/keys/operator.key" ] || fail "no operator key in the mounted keys directory"

say "load the bundled registry and import the corpus chain through the published port, as the operator"
client registry load --bundled --generate-keys >/dev/null
client import tests/fixtures/forwarding-chain-lu-zi-bo-2022.txt
client trace '鲁财采〔2022〕14号' >"$WORK/trace-before"
grep -q '博财采〔2022〕19号' "$WORK/trace-before" || fail "the trace does not reach 博财采〔2022〕19号"

say "metrics on the published metrics port"
metrics=$(curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics") || fail "no metrics"
grep -q '^gongwen_log_events [1-9]' <<<"$metrics" || fail "gongwen_log_events does not count the import"

say "SIGTERM: graceful stop, exit code 0"
"$ENGINE" stop -t 30 "$NAME" >/dev/null
code=$("$ENGINE" inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
"$ENGINE" logs "$NAME" 2>&1 | grep -q '"stopped"' || fail "no 'stopped' line in the JSON log"

say "restart on the same volume and keys: the same data, the same operator"
"$ENGINE" start "$NAME" >/dev/null
healthy
client trace '鲁财采〔2022〕14号' >"$WORK/trace-after"
cmp -s "$WORK/trace-before" "$WORK/trace-after" || fail "the trace changed across the restart"
client verify --live >/dev/null || fail "the restarted server's log does not verify"

say "ok: $IMAGE builds, runs as gongwen, is healthy over TLS, serves and exports metrics, stops cleanly and keeps its data"
