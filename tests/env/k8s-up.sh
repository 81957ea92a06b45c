#!/usr/bin/env bash
# Starts a real, throw-away Kubernetes control plane on loopback: etcd + kube-apiserver
# (built by k8s-build.sh). No scheduler, kubelet or controller-manager: nothing runs Pods,
# namespaces are never deleted and ownerReferences are not garbage-collected.
#
# Usage: tests/env/k8s-up.sh DIR
#   DIR receives: pki/ (CA, serving cert, client certs, service-account keys),
#   etcd-data/, kubeconfig (admin, O=system:masters), kubeconfig-limited (CN=kvop-limited,
#   no groups, no rights until RBAC grants some), etcd.pid, kube-apiserver.pid, etcd.log,
#   kube-apiserver.log and env (shell-sourceable KUBECONFIG=..., ports).
# The last line of stdout is the admin kubeconfig path. Stop it with k8s-down.sh DIR.
# Ports are picked free at start, so several planes can run at once.
#
# Env: KVOP_CACHE / KVOP_KUBE_APISERVER / KVOP_ETCD (binaries, see k8s/paths.sh),
#      KVOP_KUBECTL (default: kubectl), KVOP_K8S_START_TIMEOUT (seconds, default 90).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=k8s/paths.sh
source "${SCRIPT_DIR}/k8s/paths.sh"
# shellcheck source=plane-lib.sh
source "${SCRIPT_DIR}/plane-lib.sh"

KUBECTL="${KVOP_KUBECTL:-kubectl}"
START_TIMEOUT="${KVOP_K8S_START_TIMEOUT:-90}"

log() { echo "k8s-up: $*" >&2; }
die() { echo "k8s-up: error: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 DIR   (starts etcd + kube-apiserver, state and logs in DIR)" >&2
    exit 2
}

check_prerequisites() {
    local tool
    for tool in openssl python3 "$KUBECTL"; do
        command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
    done
    [[ -x "$KUBE_APISERVER_BIN" ]] || die "no kube-apiserver at $KUBE_APISERVER_BIN; run tests/env/k8s-build.sh first"
    [[ -x "$ETCD_BIN" ]] || die "no etcd at $ETCD_BIN; run tests/env/k8s-build.sh first"
}

make_pki() {
    local pki="$1"
    mkdir -p "$pki"
    chmod 700 "$pki"
    make_ca "$pki"
    local client_ext
    client_ext=$'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'
    sign_cert "$pki" apiserver "/CN=kube-apiserver" \
        $'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost'
    # O=system:masters: the group the apiserver authorizes for everything, before RBAC.
    sign_cert "$pki" admin "/O=system:masters/CN=kvop-admin" "$client_ext"
    # No O= at all: the user is only in system:authenticated, so RBAC tests start from zero.
    sign_cert "$pki" limited "/CN=kvop-limited" "$client_ext"
    # Service-account token signing pair (the apiserver refuses to start without one).
    new_key "$pki/sa.key"
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# --- processes -----------------------------------------------------------------------

start_apiserver() {
    local dir="$1" etcd_port="$2" secure_port="$3"
    local pki="$dir/pki"
    start_daemon kube-apiserver "$dir/kube-apiserver.log" "$dir/kube-apiserver.pid" \
        "$KUBE_APISERVER_BIN" \
        --etcd-servers="http://127.0.0.1:${etcd_port}" \
        --secure-port="$secure_port" \
        --bind-address=127.0.0.1 \
        --advertise-address=127.0.0.1 \
        --cert-dir="$dir/pki" \
        --tls-cert-file="$pki/apiserver.crt" \
        --tls-private-key-file="$pki/apiserver.key" \
        --client-ca-file="$pki/ca.crt" \
        --service-account-issuer="https://127.0.0.1:${secure_port}" \
        --service-account-key-file="$pki/sa.pub" \
        --service-account-signing-key-file="$pki/sa.key" \
        --api-audiences="https://127.0.0.1:${secure_port}" \
        --service-cluster-ip-range=10.0.0.0/24 \
        --authorization-mode=RBAC \
        --disable-admission-plugins=ServiceAccount \
        --feature-gates=MutatingAdmissionPolicy=true \
        --runtime-config=admissionregistration.k8s.io/v1beta1=true \
        --profiling=false
}

# True while every process recorded in DIR is still running.
all_alive() {
    local dir="$1" pidfile
    for pidfile in "$dir/etcd.pid" "$dir/kube-apiserver.pid"; do
        kill -0 "$(cat "$pidfile")" 2>/dev/null || return 1
    done
}

wait_ready() {
    local dir="$1" deadline=$((SECONDS + START_TIMEOUT))
    local kc="$dir/kubeconfig"
    # /readyz covers etcd, informers, RBAC bootstrap policy and the post-start hooks;
    # `get ns default` additionally proves the bootstrap controller has run.
    while (( SECONDS < deadline )); do
        all_alive "$dir" || { log "a process exited during startup"; return 1; }
        if [[ "$("$KUBECTL" --kubeconfig="$kc" get --raw /readyz 2>/dev/null)" == ok ]] &&
            "$KUBECTL" --kubeconfig="$kc" get namespace default >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    log "not ready after ${START_TIMEOUT} s"
    return 1
}

# EXIT trap: unless startup completed, show why and stop whatever was started.
PLANE_DIR=""
PLANE_READY=0
on_exit() {
    if [[ -n "$PLANE_DIR" && "$PLANE_READY" != 1 ]]; then
        on_start_failure "$PLANE_DIR"
    fi
}

on_start_failure() {
    local dir="$1" f
    for f in etcd.log kube-apiserver.log; do
        [[ -f "$dir/$f" ]] || continue
        echo "----- last 40 lines of $dir/$f -----" >&2
        tail -n 40 "$dir/$f" >&2
    done
    "$SCRIPT_DIR/k8s-down.sh" "$dir" >&2 || true
}

main() {
    (( $# == 1 )) || usage
    check_prerequisites
    mkdir -p "$1"
    local dir
    dir="$(cd "$1" && pwd)"
    if [[ -f "$dir/kube-apiserver.pid" ]] && kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null; then
        die "a plane already runs from $dir (pid $(cat "$dir/kube-apiserver.pid")); run k8s-down.sh $dir"
    fi
    # A reused DIR starts from scratch: an old etcd member would keep its old peer URL
    # and the old objects, and old certificates would not match the new kubeconfigs.
    rm -rf "$dir/etcd-data" "$dir/pki"
    local start=$SECONDS ports etcd_port peer_port secure_port
    ports="$(free_ports 3)"
    read -r etcd_port peer_port secure_port <<<"$ports"
    local server="https://127.0.0.1:${secure_port}"

    make_pki "$dir/pki"
    write_kubeconfig "$dir/kubeconfig" "$server" "$dir/pki" admin
    write_kubeconfig "$dir/kubeconfig-limited" "$server" "$dir/pki" limited

    PLANE_DIR="$dir"
    trap on_exit EXIT
    trap 'exit 130' INT TERM
    start_etcd "$dir" "$etcd_port" "$peer_port"
    start_apiserver "$dir" "$etcd_port" "$secure_port"
    wait_ready "$dir" || exit 1
    PLANE_READY=1

    cat >"$dir/env" <<ENV
KUBECONFIG=$dir/kubeconfig
KVOP_LIMITED_KUBECONFIG=$dir/kubeconfig-limited
KVOP_K8S_SERVER=$server
KVOP_ETCD_ENDPOINT=http://127.0.0.1:${etcd_port}
ENV
    log "ready in $((SECONDS - start)) s: $server (etcd 127.0.0.1:${etcd_port})"
    log "limited kubeconfig (CN=kvop-limited): $dir/kubeconfig-limited"
    echo "$dir/kubeconfig"
}

main "$@"
