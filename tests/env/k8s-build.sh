#!/usr/bin/env bash
# Builds the binaries of kvop's test control plane from Go modules (there is no
# kube-apiserver package in any registry and no Docker here):
#   kube-apiserver  k8s.io/kubernetes/cmd/kube-apiserver  (module tests/env/k8s)
#   etcd            go.etcd.io/etcd/server/v3              (same module, version pinned there)
#   helm            helm.sh/helm/v3/cmd/helm               (go install, own cache dir)
# Results go to ${KVOP_CACHE:-$HOME/.cache/kvop-test}/{k8s-VERSION,helm-VERSION}/bin and
# each build is skipped when its binaries are already there. A cold build takes
# about 7 minutes on 2 cores (see README.md); a warm run takes well under a second.
#
# Env: KVOP_CACHE, GOMODCACHE/GOCACHE (Go's defaults persist between runs and are fine),
#      KVOP_SKIP_HELM=1 to build only the control plane.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULE_DIR="${SCRIPT_DIR}/k8s"
# shellcheck source=k8s/paths.sh
source "${MODULE_DIR}/paths.sh"

log() { echo "k8s-build: $*" >&2; }

require_go() {
    if ! command -v go >/dev/null 2>&1; then
        echo "k8s-build: 'go' not found on PATH; install Go >= 1.24 (https://go.dev/dl/) to build kube-apiserver, etcd and helm for kvop's Kubernetes tests" >&2
        exit 1
    fi
}

# Builds a main package of the tests/env/k8s module to $2, atomically (a killed build
# must not leave a half-written binary that the next run would take as cached).
build_in_module() {
    local pkg="$1" out="$2" ldflags="$3"
    local start=$SECONDS
    log "building ${pkg} -> ${out}"
    (
        cd "$MODULE_DIR"
        # -mod=mod: go.sum is committed but may lack a hash the local toolchain wants;
        # let go add it instead of failing. CGO off: static binaries, no C toolchain needed.
        GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -buildvcs=false \
            -ldflags "$ldflags" -o "${out}.tmp.$$" "$pkg"
    )
    mv -f "${out}.tmp.$$" "$out"
    log "built ${pkg} in $((SECONDS - start)) s"
}

# The cache is keyed by K8S_VERSION (paths.sh) but the build uses go.mod: refuse to
# file a binary of one version under the other's name.
check_module_version() {
    local pinned
    pinned="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$MODULE_DIR/go.mod")"
    if [[ "$pinned" != "$K8S_VERSION" ]]; then
        echo "k8s-build: $MODULE_DIR/go.mod pins k8s.io/kubernetes ${pinned:-<none>} but K8S_VERSION is ${K8S_VERSION}; run k8s/gen-replaces.sh ${K8S_VERSION} and go mod tidy" >&2
        exit 1
    fi
}

build_control_plane() {
    if [[ -x "$KUBE_APISERVER_BIN" && -x "$ETCD_BIN" ]]; then
        log "cached: ${K8S_BIN_DIR} (kube-apiserver, etcd)"
        return
    fi
    require_go
    check_module_version
    mkdir -p "$K8S_BIN_DIR"
    local vpkg=k8s.io/component-base/version
    local minor="${K8S_VERSION#v1.}"
    minor="${minor%%.*}"
    # Without these the binary reports v0.0.0-master, which kubectl and kube-rs warn about.
    local k8s_ldflags="-s -w -X ${vpkg}.gitVersion=${K8S_VERSION} -X ${vpkg}.gitMajor=1 -X ${vpkg}.gitMinor=${minor}"
    if [[ ! -x "$ETCD_BIN" ]]; then
        build_in_module go.etcd.io/etcd/server/v3 "$ETCD_BIN" "-s -w"
    fi
    if [[ ! -x "$KUBE_APISERVER_BIN" ]]; then
        build_in_module k8s.io/kubernetes/cmd/kube-apiserver "$KUBE_APISERVER_BIN" "$k8s_ldflags"
    fi
}

install_helm() {
    if [[ "${KVOP_SKIP_HELM:-}" == 1 ]]; then
        return
    fi
    if [[ -x "$HELM_BIN" ]]; then
        log "cached: ${HELM_BIN}"
        return
    fi
    require_go
    mkdir -p "$HELM_BIN_DIR"
    local start=$SECONDS
    log "installing helm.sh/helm/v3/cmd/helm@${HELM_VERSION} -> ${HELM_BIN_DIR}"
    # Run outside any module and without -mod=mod: `go install pkg@version` uses helm's
    # own go.mod and rejects -mod flags.
    # -X version: otherwise `helm version` (and .Capabilities.HelmVersion) says only "v3.22".
    (cd / && GOFLAGS= GOBIN="$HELM_BIN_DIR" CGO_ENABLED=0 go install -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
        "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
    log "installed helm in $((SECONDS - start)) s"
}

main() {
    # Go is only required when something has to be built: a warm cache (or binaries
    # given through KVOP_KUBE_APISERVER/KVOP_ETCD/KVOP_HELM) works without it.
    mkdir -p "$KVOP_CACHE"
    # Two concurrent runs (e.g. parallel CI jobs on one machine) would both build for
    # 20 minutes; serialize them so the second one finds the cache.
    exec 9>"${KVOP_CACHE}/.build.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
    build_control_plane
    install_helm
    echo "kube-apiserver: ${KUBE_APISERVER_BIN}"
    echo "etcd: ${ETCD_BIN}"
    if [[ "${KVOP_SKIP_HELM:-}" != 1 ]]; then
        echo "helm: ${HELM_BIN}"
    fi
}

main "$@"
