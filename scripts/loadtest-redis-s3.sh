#!/usr/bin/env bash
# Runs `handoff loadtest` against a production-shaped node: hub, sessions
# and Ably-free realtime on a real redis-server, images in a real S3 gateway
# (versitygw), ALEX outbox. Everything runs on loopback in a temp dir and is
# stopped when the script ends. Extra arguments go to `handoff loadtest`.
#   scripts/loadtest-redis-s3.sh --gps 100 --images 5 --image-bytes 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
PATH="$(go env GOPATH)/bin:$PATH"
command -v redis-server >/dev/null || { echo "redis-server missing: run make deps" >&2; exit 1; }
command -v versitygw >/dev/null || { echo "versitygw missing: run make deps" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# A port nothing answers on now (bash only: no python on minimal images).
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free port found" >&2; return 1
}
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

rport=$(free_port); sport=$(free_port); hport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 & pids+=($!)
mkdir -p "$tmp/s3/handoff-images"
versitygw -a loadtestkey -s loadtestsecret123 --port "127.0.0.1:$sport" posix "$tmp/s3" >"$tmp/s3.log" 2>&1 & pids+=($!)
wait_port "$rport"; wait_port "$sport"

secret=$(head -c 32 /dev/urandom | base64)
AWS_ACCESS_KEY_ID=loadtestkey AWS_SECRET_ACCESS_KEY=loadtestsecret123 AWS_REGION=us-east-1 \
HANDOFF_JWT_SECRET="$secret" ./bin/handoff serve --addr "127.0.0.1:$hport" --log-level warn \
  --data-dir "$tmp/data" --redis-addrs "127.0.0.1:$rport" \
  --s3-bucket handoff-images --s3-endpoint "http://127.0.0.1:$sport" --s3-path-style \
  --claims-per-minute -1 >"$tmp/handoff.out" 2>"$tmp/handoff.log" & hpid=$!; pids+=($hpid)
wait_port "$hport"

./bin/handoff loadtest --target "http://127.0.0.1:$hport" --jwt-secret "$secret" --server-pid "$hpid" "$@"
