#!/usr/bin/env bash
# Builds the image from deploy/Dockerfile and checks it the way an operator would use it: a TLS server on a named
# volume with a keys directory from the host, its own HEALTHCHECK, a real import and trace through the published
# port, metrics, SIGTERM ending in exit code 0, and the data and operator key still there in a new container on
# the same volume (as an upgrade makes one); and that the HEALTHCHECK fails against a certificate its CA did not sign.
#
#   deploy/check-image.sh                 # with docker
#   ENGINE=podman deploy/check-image.sh   # with podman (rootful; its build keeps HEALTHCHECK with --format docker)
#   IMAGE=gongwen:1.2 deploy/check-image.sh   # check an image already built, instead of building one
#
# Needs root (or sudo): the keys directory must belong to the image's uid 10001, as on a server, and the host-side
# client must still read the operator key there. Needs the engine, openssl, curl and cargo (the host-side `gongwen`
# client is built from this checkout). Uses ports 127.0.0.1:50151 and :9564 (GRPC_PORT, METRICS_PORT). Removes its
# containers and volume when it ends.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-docker}
IMAGE=${IMAGE:-}
GRPC_PORT=${GRPC_PORT:-50151}
METRICS_PORT=${METRICS_PORT:-9564}
NAME=gongwen-check-$$
UNTRUSTED=gongwen-check-untrusted-$$
VOLUME=gongwen-check-data-$$
WORK=$(mktemp -d)

say() { printf '== %s\n' "$*"; }
fail() {
  trap - ERR
  printf 'FAILED: %s\n' "$*" >&2
  "$ENGINE" logs "$NAME" >&2 2>&1 || true
  exit 1
}
# A command that fails where no check names the failure still says where it stopped, and shows the server's log.
trap 'fail "line $LINENO: $BASH_COMMAND"' ERR
cleanup() {
  "$ENGINE" rm -f "$NAME" "$UNTRUSTED" >/dev/null 2>&1 || true
  "$ENGINE" volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "run it as root (or with sudo): see the header" >&2; exit 2; }
# podman under its own name or behind a docker shim: its builds drop HEALTHCHECK unless asked for docker's format.
podman=false
"$ENGINE" --version 2>/dev/null | grep -qi podman && podman=true

say "host client"
cargo build --release --bin gongwen --quiet
GONGWEN=$PWD/target/release/gongwen

if [ -z "$IMAGE" ]; then
  IMAGE=gongwen:check
  say "build $IMAGE with $ENGINE"
  if $podman; then
    "$ENGINE" build --format docker -f deploy/Dockerfile -t "$IMAGE" .
  else
    "$ENGINE" build -f deploy/Dockerfile -t "$IMAGE" .
  fi
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
chmod 0755 "$WORK/tls"
chmod 0644 "$WORK/tls/"*
chown 10001:10001 "$WORK/keys"
# The same server certificate beside a CA that did not sign it: the health check must refuse it.
mkdir -p "$WORK/untrusted"
cp "$WORK/tls/server.pem" "$WORK/tls/server.key" "$WORK/untrusted/"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=another-ca \
  -keyout "$WORK/untrusted/ca.key" -out "$WORK/untrusted/ca.pem" 2>/dev/null
chmod 0755 "$WORK/untrusted"
chmod 0644 "$WORK/untrusted/"*

# `:z` lets the container read the mounts where SELinux labels files (Fedora, RHEL); elsewhere it does nothing.
run() { # NAME TLS-DIR
  "$ENGINE" run -d --name "$1" -v "$VOLUME:/var/lib/gongwen" -v "$WORK/keys:/etc/gongwen/keys:z" \
    -v "$2:/etc/gongwen/tls:ro,z" -p "127.0.0.1:$GRPC_PORT:50051" -p "127.0.0.1:$METRICS_PORT:9464" \
    "$IMAGE" >/dev/null
}

# What the image's own HEALTHCHECK says, once it says something: podman runs it on request; docker only on its
# timer (every 15 s, unhealthy after 3 failures), so with docker this waits for the status it reports.
health() { # NAME
  local deadline=$((SECONDS + 120)) status
  while [ $SECONDS -lt $deadline ]; do
    if $podman; then "$ENGINE" healthcheck run "$1" >/dev/null 2>&1 || true; fi
    status=$("$ENGINE" inspect -f '{{.State.Health.Status}}' "$1")
    case $status in healthy | unhealthy) echo "$status"; return ;; esac
    [ "$("$ENGINE" inspect -f '{{.State.Running}}' "$1")" = true ] || { echo stopped; return; }
    sleep 0.5
  done
  echo "no verdict within 120 s"
}
healthy() { local said; said=$(health "$NAME"); [ "$said" = healthy ] || fail "health check: $said"; }

client() { "$GONGWEN" --server "https://localhost:$GRPC_PORT" --tls-ca "$WORK/tls/ca.pem" --keys "$WORK/keys" "$@"; }

say "run: TLS, a named volume, the host's keys directory"
run "$NAME" "$WORK/tls"
healthy
[ "$("$ENGINE" inspect -f '{{.Config.User}}' "$NAME")" = gongwen ] || fail "the image does not run as user gongwen"
[ -s "$WORK/keys/operator.key" ] || fail "no operator key in the mounted keys directory"

events() { curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n 's/^gongwen_log_events \([0-9]*\)$/\1/p'; }

say "load the bundled registry and import the corpus chain through the published port, as the operator"
client registry load --bundled --generate-keys >/dev/null
before=$(events)
client import tests/fixtures/forwarding-chain-lu-zi-bo-2022.txt
client trace '鲁财采〔2022〕14号' >"$WORK/trace-before"
grep -q '博财采〔2022〕19号' "$WORK/trace-before" || fail "the trace does not reach 博财采〔2022〕19号"

say "metrics on the published metrics port"
after=$(events)
if ! { [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ]; }; then
  fail "gongwen_log_events does not count the import (before: '$before', after: '$after')"
fi

say "SIGTERM: graceful stop, exit code 0"
"$ENGINE" stop -t 30 "$NAME" >/dev/null
code=$("$ENGINE" inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
log=$("$ENGINE" logs "$NAME" 2>&1)
grep -q '"stopped"' <<<"$log" || fail "no 'stopped' line in the JSON log"

say "a new container on the same volume and keys, as an upgrade makes one: the same data, the same operator"
"$ENGINE" rm "$NAME" >/dev/null
run "$NAME" "$WORK/tls"
healthy
client trace '鲁财采〔2022〕14号' >"$WORK/trace-after"
cmp -s "$WORK/trace-before" "$WORK/trace-after" || fail "the trace changed across the restart"
client verify --live >/dev/null || fail "the restarted server's log does not verify"
"$ENGINE" stop -t 30 "$NAME" >/dev/null

say "the health check refuses a server certificate its CA did not sign"
run "$UNTRUSTED" "$WORK/untrusted"
said=$(health "$UNTRUSTED")
[ "$said" = unhealthy ] || fail "the health check said '$said' over an untrusted certificate, not unhealthy"

say "ok: $IMAGE builds, runs as gongwen, is healthy over TLS and only then, serves and exports metrics, stops cleanly and keeps its data"
