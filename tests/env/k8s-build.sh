#!/usr/bin/env bash
# Builds the binaries of kvop's test control plane from Go modules (there is no
# kube-apiserver package in any registry and no Docker here):
#   kube-apiserver  k8s.io/kubernetes/cmd/kube-apiserver  (module tests/env/k8s)
#   etcd            go.etcd.io/etcd/server/v3              (same module, version pinned there)
#   helm            helm.sh/helm/v3/cmd/helm               (go install, own cache dir)
# and, with --node (for node-up.sh), from the same module:
#   kubelet, kube-proxy, kube-controller-manager, kube-scheduler   k8s.io/kubernetes/cmd/...
#   pause           gcc -static of the module's build/pause/linux/pause.c
# Results go to ${KVOP_CACHE:-$HOME/.cache/kvop-test}/{k8s-VERSION,helm-VERSION}/bin and
# each build is skipped when its binaries are already there. A cold build takes
# about 7 minutes on 2 cores (see README.md); a warm run takes well under a second.
#
# Env: KVOP_CACHE, GOMODCACHE/GOCACHE (Go's defaults persist between runs and are fine),
#      KVOP_SKIP_HELM=1 to build only the control plane.
# Usage: tests/env/k8s-build.sh [--node]
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

# Without these the binaries report v0.0.0-master, which kubectl and kube-rs warn about.
k8s_ldflags() {
    local vpkg=k8s.io/component-base/version minor="${K8S_VERSION#v1.}"
    minor="${minor%%.*}"
    echo "-s -w -X ${vpkg}.gitVersion=${K8S_VERSION} -X ${vpkg}.gitMajor=1 -X ${vpkg}.gitMinor=${minor}"
}

build_control_plane() {
    if [[ -x "$KUBE_APISERVER_BIN" && -x "$ETCD_BIN" ]]; then
        log "cached: ${K8S_BIN_DIR} (kube-apiserver, etcd)"
        return
    fi
    require_go
    check_module_version
    mkdir -p "$K8S_BIN_DIR"
    if [[ ! -x "$ETCD_BIN" ]]; then
        build_in_module go.etcd.io/etcd/server/v3 "$ETCD_BIN" "-s -w"
    fi
    if [[ ! -x "$KUBE_APISERVER_BIN" ]]; then
        build_in_module k8s.io/kubernetes/cmd/kube-apiserver "$KUBE_APISERVER_BIN" "$(k8s_ldflags)"
    fi
}

# The node's four programs in one `go build` (they share most packages: one compile of
# each), into a temporary directory first so that a killed build leaves nothing that
# looks cached. About 2 minutes after the apiserver's build, 7-9 cold.
build_node() {
    if [[ -x "$KUBELET_BIN" && -x "$KUBE_PROXY_BIN" && -x "$KCM_BIN" && -x "$SCHEDULER_BIN" ]]; then
        log "cached: ${K8S_BIN_DIR} (kubelet, kube-proxy, kube-controller-manager, kube-scheduler)"
    else
        require_go
        check_module_version
        mkdir -p "$K8S_BIN_DIR"
        local tmp="${K8S_BIN_DIR}/.node-build.$$" start=$SECONDS
        rm -rf "$tmp"
        mkdir -p "$tmp"
        log "building kubelet, kube-proxy, kube-controller-manager, kube-scheduler -> ${K8S_BIN_DIR}"
        (
            cd "$MODULE_DIR"
            GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -buildvcs=false \
                -ldflags "$(k8s_ldflags)" -o "$tmp/" \
                k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
                k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
        )
        mv -f "$tmp/kubelet" "$KUBELET_BIN"
        mv -f "$tmp/kube-proxy" "$KUBE_PROXY_BIN"
        mv -f "$tmp/kube-controller-manager" "$KCM_BIN"
        mv -f "$tmp/kube-scheduler" "$SCHEDULER_BIN"
        rmdir "$tmp"
        log "built the node's programs in $((SECONDS - start)) s"
    fi
    if [[ -x "$PAUSE_BIN" ]]; then
        log "cached: ${PAUSE_BIN}"
        return
    fi
    command -v gcc >/dev/null 2>&1 || { echo "k8s-build: 'gcc' not found; it compiles the pause program" >&2; exit 1; }
    local source
    source="$(cd "$MODULE_DIR" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
    [[ -f "$source" ]] || { echo "k8s-build: no $source" >&2; exit 1; }
    # The same program registry.k8s.io/pause ships, static so that its image needs no libc.
    gcc -Os -Wall -Werror -static -DVERSION="${K8S_VERSION}-kvop" -o "${PAUSE_BIN}.tmp.$$" "$source"
    mv -f "${PAUSE_BIN}.tmp.$$" "$PAUSE_BIN"
    log "compiled ${PAUSE_BIN}"
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
    local node=0
    case "${1:-}" in
        --node) node=1 ;;
        "") ;;
        *) echo "usage: $0 [--node]" >&2; exit 2 ;;
    esac
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
    if (( node )); then
        build_node
    fi
    echo "kube-apiserver: ${KUBE_APISERVER_BIN}"
    echo "etcd: ${ETCD_BIN}"
    if [[ "${KVOP_SKIP_HELM:-}" != 1 ]]; then
        echo "helm: ${HELM_BIN}"
    fi
}

main "$@"
