#!/usr/bin/env bash
# Install the Debian packages odsync needs to build, test and run its demo.
# Usage: sudo contrib/install-deps.sh        (root: runs apt-get directly)
set -euo pipefail

packages=(
  build-essential pkg-config make git
  libcurl4-openssl-dev libcjson-dev libsqlite3-dev check libmicrohttpd-dev libssl-dev
  clang-format tzdata curl jq bc sqlite3 time ca-certificates
  clang libclang-rt-14-dev
  chromium
)

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo "$0" "$@"
  fi
  echo "install-deps.sh: run as root (or install sudo)" >&2
  exit 1
fi

# Node.js runs Prism, the OpenAPI request validator the tests use (installed by `make check`
# into build/tools from npm). A machine that already has node and npm keeps its own.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
echo "install-deps.sh: done (${#packages[@]} packages)"
