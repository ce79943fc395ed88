#!/usr/bin/env bash
# Installs what handoff's tests need, only when it is missing:
#   redis-server and chromium from Debian (apt-get, unattended), and
#   python3, curl and timeout for scripts/conformance.sh,
#   versitygw (a real S3 gateway) pinned with go install,
#   Centrifugo v6.9.1 pinned with go install, into the cache directory that
#   scripts/bench-vs-centrifugo.sh uses (internal/fanout's integration test
#   runs it; the first install compiles for several minutes).
# Tests never skip when a dependency is missing; they fail and point here.
set -euo pipefail
versity_version="${1:-v1.8.0}"

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# scripts/conformance.sh (make conformance, run by make test) needs these.
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v timeout >/dev/null 2>&1 || need_apt+=(coreutils)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} with apt-get"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${need_apt[@]}"
fi

# A go-installed versitygw reports no version, so a stamp file beside it
# records which one was installed.
gobin="$(go env GOPATH)/bin"
stamp="$gobin/.versitygw-version"
if ! [ -x "$gobin/versitygw" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$versity_version" ]; then
  echo "installing versitygw ${versity_version} with go install"
  go install "github.com/versity/versitygw/cmd/versitygw@${versity_version}"
  echo "$versity_version" > "$stamp"
fi

# The released ably-js packages the Ably-compatibility tests run, pinned by
# scripts/ablyjs/package-lock.json, installed with npm ci into a cache
# directory (never into the repository). A stamp holds the lockfile's hash.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
  echo "installing nodejs and npm with apt-get"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  [ ${#need_apt[@]} -gt 0 ] || $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y nodejs npm
}
here="$(cd "$(dirname "$0")" && pwd)"
ablyjs_dir="${HANDOFF_ABLYJS_DIR:-$HOME/.cache/handoff/ablyjs}"
lock_sum="$(sha256sum "$here/ablyjs/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$ablyjs_dir/.lock-sha256" 2>/dev/null)" != "$lock_sum" ] || ! [ -d "$ablyjs_dir/node_modules" ]; then
  echo "installing ably-js test packages into $ablyjs_dir with npm ci"
  mkdir -p "$ablyjs_dir"
  cp "$here/ablyjs/package.json" "$here/ablyjs/package-lock.json" "$ablyjs_dir/"
  (cd "$ablyjs_dir" && npm ci --no-audit --no-fund --ignore-scripts)
  echo "$lock_sum" > "$ablyjs_dir/.lock-sha256"
fi

# Centrifugo, for the side-by-side benchmark and internal/fanout's
# integration test.
# shellcheck source=scripts/lib/centrifugo.sh
. "$here/lib/centrifugo.sh"
install_centrifugo
