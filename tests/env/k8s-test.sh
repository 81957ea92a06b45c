#!/usr/bin/env bash
# One entry point for the Kubernetes plane test: build (cached) -> start a plane in a
# temporary directory -> run k8s-plane-test.sh against the repository's crds/ -> always
# stop the plane -> exit with the test's status.
#
# Without Go (or kubectl/openssl/python3) it prints how to get them and exits 0 with a
# "skipped" line, so a developer machine without the toolchain is not broken, unless
# CI=true: there a missing toolchain is a failure, never a silent skip.
#
# Env: CI, KVOP_CACHE (see k8s-build.sh), KVOP_CRD_DIR (default: <repo>/crds),
#      KVOP_KEEP_PLANE_DIR=1 to keep the plane's directory (logs, certs) after the run.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=k8s/paths.sh
source "${SCRIPT_DIR}/k8s/paths.sh"
REPO_DIR="$(cd "${SCRIPT_DIR}/../.." && pwd)"
CRD_DIR="${KVOP_CRD_DIR:-${REPO_DIR}/crds}"

log() { echo "k8s-test: $*" >&2; }

binaries_cached() {
    [[ -x "$KUBE_APISERVER_BIN" && -x "$ETCD_BIN" && ( -x "$HELM_BIN" || "${KVOP_SKIP_HELM:-}" == 1 ) ]]
}

missing_tools() {
    local tool tools=("${KVOP_KUBECTL:-kubectl}" openssl python3) missing=()
    # Go is only needed to build; with a warm cache the test runs without it.
    binaries_cached || tools+=(go)
    for tool in "${tools[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    echo "${missing[*]}"
}

skip_or_fail_without_tools() {
    local missing
    missing="$(missing_tools)"
    [[ -z "$missing" ]] && return 0
    local how="the Kubernetes tests build kube-apiserver and etcd from Go modules; install Go >= 1.24 (https://go.dev/dl/), kubectl, openssl and python3, then run tests/env/k8s-test.sh (the first run builds for ~7 min on 2 cores into ${KVOP_CACHE}; later runs start in seconds)"
    if [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; then
        log "error: missing: ${missing} (CI=${CI}); ${how}"
        exit 1
    fi
    log "missing: ${missing}; ${how}"
    echo "skipped: k8s plane test (missing: ${missing})"
    exit 0
}

PLANE_DIR=""
stop_plane() {
    [[ -n "$PLANE_DIR" ]] || return 0
    "${SCRIPT_DIR}/k8s-down.sh" "$PLANE_DIR" || true
    if [[ "${KVOP_KEEP_PLANE_DIR:-}" == 1 ]]; then
        log "kept $PLANE_DIR"
    else
        rm -rf "$PLANE_DIR"
    fi
}

main() {
    skip_or_fail_without_tools
    if [[ ! -e "$CRD_DIR" ]]; then
        log "error: no CRDs at $CRD_DIR (generate them first or set KVOP_CRD_DIR)"
        exit 1
    fi
    "${SCRIPT_DIR}/k8s-build.sh" >&2

    PLANE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/kvop-k8s.XXXXXX")"
    trap stop_plane EXIT
    trap 'exit 130' INT TERM
    local start=$SECONDS kubeconfig
    kubeconfig="$("${SCRIPT_DIR}/k8s-up.sh" "$PLANE_DIR" | tail -n 1)"
    log "plane ready in $((SECONDS - start)) s (kubeconfig $kubeconfig)"

    local rc=0
    KUBECONFIG="$kubeconfig" KVOP_LIMITED_KUBECONFIG="$PLANE_DIR/kubeconfig-limited" \
        "${SCRIPT_DIR}/k8s-plane-test.sh" "$CRD_DIR" || rc=$?
    if (( rc != 0 )); then
        log "plane test failed (exit $rc); apiserver log: $PLANE_DIR/kube-apiserver.log (set KVOP_KEEP_PLANE_DIR=1 to keep it)"
    fi
    return "$rc"
}

main "$@"
