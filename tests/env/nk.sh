#!/usr/bin/env bash
# Installs `nk`, NATS' own NKey tool (github.com/nats-io/nkeys/nk), into the cache once
# and prints its path. The node test makes the operator's NKey with it, as a user would.
set -euo pipefail

version=v0.4.17
cache="${KVOP_CACHE:-$HOME/.cache/kvop-test}/nk-$version"
if [[ ! -x "$cache/nk" ]]; then
    command -v go >/dev/null 2>&1 || { echo "nk.sh: 'go' not found; it builds nk $version" >&2; exit 1; }
    echo "installing github.com/nats-io/nkeys/nk@$version into $cache" >&2
    mkdir -p "$cache"
    (cd / && GOFLAGS= GOBIN="$cache" CGO_ENABLED=0 go install -trimpath "github.com/nats-io/nkeys/nk@$version")
fi
echo "$cache/nk"
