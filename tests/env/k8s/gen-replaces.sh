#!/usr/bin/env bash
# Regenerates the `replace k8s.io/X => k8s.io/X vK` directives of this module's go.mod.
#
# Why: k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apiserver, ...)
# at the placeholder version v0.0.0 and resolves them with `replace => ./staging/...`
# directives that only apply inside its own repository. A module that depends on
# k8s.io/kubernetes must therefore replace every one of them with the published tag
# (v0.MINOR.PATCH for kubernetes v1.MINOR.PATCH). The list is read from the upstream
# go.mod, not maintained by hand, so a version bump is: edit K8S_VERSION, run this, tidy.
#
# Usage: tests/env/k8s/gen-replaces.sh [K8S_VERSION]   (default: K8S_VERSION of paths.sh)
set -euo pipefail

MODULE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=paths.sh
source "${MODULE_DIR}/paths.sh"
K8S_VERSION="${1:-$K8S_VERSION}"
# kubernetes v1.34.3 <-> staging modules v0.34.3
STAGING_VERSION="v0.${K8S_VERSION#v1.}"

require_go() {
    if ! command -v go >/dev/null 2>&1; then
        echo "gen-replaces.sh: 'go' not found on PATH (Go >= 1.24 is needed)" >&2
        exit 1
    fi
}

# Prints the path of the upstream go.mod file, downloading it into the module cache.
upstream_gomod() {
    go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" \
        | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p'
}

# Prints each k8s.io module that upstream requires at v0.0.0 (the staging modules).
staging_modules() {
    local gomod="$1"
    awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$gomod" | sort -u
}

# Prints the k8s.io modules this go.mod currently replaces (the "Old" side).
replaced_k8s_modules() {
    go mod edit -json | awk '
        /"Old": \{/ {
            getline
            if (match($0, /"k8s\.io\/[^"]*"/)) print substr($0, RSTART + 1, RLENGTH - 2)
        }'
}

main() {
    require_go
    local gomod
    gomod="$(upstream_gomod)"
    if [[ -z "$gomod" || ! -f "$gomod" ]]; then
        echo "gen-replaces.sh: could not download go.mod of k8s.io/kubernetes@${K8S_VERSION}" >&2
        exit 1
    fi
    local modules=() m
    mapfile -t modules < <(staging_modules "$gomod")
    if (( ${#modules[@]} == 0 )); then
        echo "gen-replaces.sh: no k8s.io/* v0.0.0 requirements found in $gomod" >&2
        exit 1
    fi
    cd "$MODULE_DIR"
    # Drop every existing k8s.io replace first so modules removed upstream disappear too.
    local old
    while read -r old; do
        go mod edit -dropreplace="$old"
    done < <(replaced_k8s_modules)
    # One grouped block, appended as text: `go mod edit -replace` would write one
    # `replace` line per module.
    {
        echo
        echo "replace ("
        for m in "${modules[@]}"; do
            printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"
        done
        echo ")"
    } >>go.mod
    go mod edit -fmt
    go mod edit -require="k8s.io/kubernetes@${K8S_VERSION}"
    echo "gen-replaces.sh: ${#modules[@]} replace directives -> ${STAGING_VERSION} in $MODULE_DIR/go.mod"
    echo "gen-replaces.sh: now run: (cd $MODULE_DIR && GOFLAGS=-mod=mod go mod tidy)"
}

main "$@"
