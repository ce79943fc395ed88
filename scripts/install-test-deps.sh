#!/usr/bin/env bash
# Installs what handoff's tests need, only when it is missing:
#   redis-server and chromium from Debian (apt-get, unattended), and
#   python3, curl and timeout for scripts/conformance.sh,
#   versitygw (a real S3 gateway) pinned with go install.
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
