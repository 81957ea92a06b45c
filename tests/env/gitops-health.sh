#!/usr/bin/env bash
# Builds tests/env/gitops-health (kstatus from sigs.k8s.io/cli-utils and gopher-lua, the
# GitOps tools' own health code) once per version of its sources, into
# ${KVOP_CACHE:-$HOME/.cache/kvop-test}/gitops-health-HASH/, and prints the binary's path.
# A cold build downloads the modules and takes about 30 s; a warm run, well under one.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULE_DIR="${SCRIPT_DIR}/gitops-health"
CACHE="${KVOP_CACHE:-$HOME/.cache/kvop-test}"

if ! command -v go >/dev/null 2>&1; then
    echo "gitops-health: 'go' not found on PATH; install Go >= 1.24 to build the kstatus and Argo CD health checker" >&2
    exit 1
fi
hash="$(cat "$MODULE_DIR/go.mod" "$MODULE_DIR/go.sum" "$MODULE_DIR/main.go" | sha256sum | cut -c1-16)"
out="$CACHE/gitops-health-$hash/gitops-health"
if [[ ! -x "$out" ]]; then
    mkdir -p "$(dirname "$out")"
    echo "gitops-health: building $out" >&2
    (cd "$MODULE_DIR" && CGO_ENABLED=0 go build -trimpath -o "$out.tmp" .)
    mv "$out.tmp" "$out"
fi
echo "$out"
