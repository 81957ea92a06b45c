#!/usr/bin/env bash
# Starts a real single-node Kubernetes cluster on this machine, for running kvop's image
# as pods: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a private
# containerd, the kubelet, kube-proxy (iptables) and pod networking (the reference CNI
# bridge, host-local, portmap and firewall plugins). No registry is needed: the pause
# image (and a busybox image for test pods) is built locally and imported.
#
# Usage: tests/env/node-up.sh DIR     (or --check: can this machine run a node at all?)
#   DIR receives the PKI, every daemon's config, state, log and pid file, and `env`
#   (shell-sourceable: KUBECONFIG, KVOP_NODE_NATS_HOST, KVOP_NODE_CONTAINERD, ...).
#   The last line of stdout is the admin kubeconfig path. Stop it with node-down.sh DIR.
#
# Needs root, cgroups, iptables and a kernel with bridge/veth/overlayfs/netfilter. The
# node's programs come from `k8s-build.sh --node`; missing Debian packages are installed
# with apt (containerd, runc, containernetworking-plugins, iptables, conntrack, buildah).
# One node per machine (fixed node address, bridge, global iptables and cgroups): a
# second node-up.sh waits for ${KVOP_CACHE}/.node.lock.
#
# Without root, cgroups or the packages: prints `skipped: REASON` and exits 3, or fails
# (exit 1) when CI=true.
#
# Env: KVOP_CACHE, KVOP_KUBECTL (default kubectl), KVOP_K8S_START_TIMEOUT (default 120).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=k8s/paths.sh
source "${SCRIPT_DIR}/k8s/paths.sh"
# shellcheck source=plane-lib.sh
source "${SCRIPT_DIR}/plane-lib.sh"

KUBECTL="${KVOP_KUBECTL:-kubectl}"
START_TIMEOUT="${KVOP_K8S_START_TIMEOUT:-120}"
SKIP_EXIT=3

log() { echo "node-up: $*" >&2; }
die() { echo "node-up: error: $*" >&2; exit 1; }

# A machine that cannot run a node is not a failed test outside CI, but must not pass
# silently in CI.
cannot_run() {
    if [[ "${CI:-}" == true ]]; then
        die "this machine cannot run the test node: $*"
    fi
    echo "skipped: this machine cannot run the test node: $*"
    exit "$SKIP_EXIT"
}

# What no install step can fix: root, cgroups, a Debian-like system for the packages.
check_host() {
    [[ "$(id -u)" == 0 ]] || cannot_run "it needs root (containerd, the kubelet, iptables and a bridge)"
    [[ -d /sys/fs/cgroup ]] && [[ -n "$(ls /sys/fs/cgroup 2>/dev/null)" ]] ||
        cannot_run "no cgroup filesystem at /sys/fs/cgroup"
    command -v dpkg-query >/dev/null 2>&1 || cannot_run "no dpkg/apt to install containerd, runc and the CNI plugins"
}

check_machine() {
    check_host
    [[ -x "$KUBELET_BIN" && -x "$KUBE_PROXY_BIN" && -x "$KCM_BIN" && -x "$SCHEDULER_BIN" && -x "$PAUSE_BIN" ]] ||
        die "the node's programs are not built; run tests/env/k8s-build.sh --node first"
    [[ -x "$KUBE_APISERVER_BIN" && -x "$ETCD_BIN" ]] || die "no kube-apiserver/etcd; run tests/env/k8s-build.sh first"
    command -v "$KUBECTL" >/dev/null 2>&1 || die "'$KUBECTL' not found on PATH"
}

# Debian's packages, installed once (the first time ~20-40 s). Only what is missing.
ensure_packages() {
    local missing=() package
    for package in "${NODE_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$package")
    done
    (( ${#missing[@]} == 0 )) && return
    command -v apt-get >/dev/null 2>&1 || cannot_run "missing packages (${missing[*]}) and no apt-get"
    log "installing ${missing[*]} (apt)"
    # A lock held by another apt run (e.g. unattended upgrades) is waited for, not fatal.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 ||
        cannot_run "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "${missing[@]}" >&2 || cannot_run "apt-get install ${missing[*]} failed"
}

# --- host network --------------------------------------------------------------------

# The sysctls pods need, with their previous values saved for node-down.sh.
set_sysctls() {
    local dir="$1" key
    : >"$dir/sysctl.saved"
    for key in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables; do
        [[ -e "/proc/sys/${key//.//}" ]] || die "no /proc/sys/${key//.//} (the kernel lacks bridge netfilter)"
        echo "$key=$(sysctl -n "$key")" >>"$dir/sysctl.saved"
        sysctl -q -w "$key=1"
    done
}

add_node_address() {
    local dir="$1"
    if ip -4 addr show dev lo | grep -q "inet ${NODE_IP}/32"; then
        log "${NODE_IP}/32 already on lo (left by an earlier node?); reusing it"
    else
        ip addr add "${NODE_IP}/32" dev lo
        touch "$dir/node-address.added"
    fi
}

# --- certificates --------------------------------------------------------------------

make_node_pki() {
    local pki="$1"
    mkdir -p "$pki"
    chmod 700 "$pki"
    make_ca "$pki"
    local client_ext server_ext
    client_ext=$'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'
    server_ext=$'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth'
    # Pods verify the apiserver through the `kubernetes` Service: its ClusterIP (the first
    # address of the Service range) and names must be in the certificate.
    sign_cert "$pki" apiserver "/CN=kube-apiserver" "${server_ext}
subjectAltName=IP:127.0.0.1,IP:${NODE_IP},IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    sign_cert "$pki" kubelet-serving "/CN=${NODE_NAME}" "${server_ext}
subjectAltName=IP:${NODE_IP},DNS:${NODE_NAME}"
    sign_cert "$pki" admin "/O=system:masters/CN=kvop-admin" "$client_ext"
    # The identities RBAC's bootstrap policy and the Node authorizer know by name.
    sign_cert "$pki" kubelet "/O=system:nodes/CN=system:node:${NODE_NAME}" "$client_ext"
    sign_cert "$pki" kube-controller-manager "/CN=system:kube-controller-manager" "$client_ext"
    sign_cert "$pki" kube-scheduler "/CN=system:kube-scheduler" "$client_ext"
    sign_cert "$pki" kube-proxy "/CN=system:kube-proxy" "$client_ext"
    new_key "$pki/sa.key"
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# --- daemons -------------------------------------------------------------------------

start_node_apiserver() {
    local dir="$1" etcd_port="$2" secure_port="$3"
    local pki="$dir/pki"
    # Unlike k8s-up.sh: a non-loopback advertise address (the `kubernetes` Service gets
    # Endpoints pods can reach), ServiceAccount admission (it mounts the projected token)
    # and the Node authorizer for the kubelet.
    start_daemon kube-apiserver "$dir/kube-apiserver.log" "$dir/kube-apiserver.pid" \
        "$KUBE_APISERVER_BIN" \
        --etcd-servers="http://127.0.0.1:${etcd_port}" \
        --secure-port="$secure_port" \
        --bind-address="$NODE_IP" \
        --advertise-address="$NODE_IP" \
        --cert-dir="$pki" \
        --tls-cert-file="$pki/apiserver.crt" \
        --tls-private-key-file="$pki/apiserver.key" \
        --client-ca-file="$pki/ca.crt" \
        --kubelet-client-certificate="$pki/admin.crt" \
        --kubelet-client-key="$pki/admin.key" \
        --kubelet-certificate-authority="$pki/ca.crt" \
        --kubelet-preferred-address-types=InternalIP \
        --service-account-issuer=https://kubernetes.default.svc \
        --api-audiences=https://kubernetes.default.svc \
        --service-account-key-file="$pki/sa.pub" \
        --service-account-signing-key-file="$pki/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --authorization-mode=Node,RBAC \
        --enable-admission-plugins=NodeRestriction \
        --allow-privileged=true \
        --profiling=false
}

start_controller_manager() {
    local dir="$1" port="$2"
    # nodeipam off: the pod range is the CNI config's, not allocated per node.
    start_daemon kube-controller-manager "$dir/kube-controller-manager.log" "$dir/kube-controller-manager.pid" \
        "$KCM_BIN" \
        --kubeconfig="$dir/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig="$dir/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig="$dir/kube-controller-manager.kubeconfig" \
        --root-ca-file="$dir/pki/ca.crt" \
        --service-account-private-key-file="$dir/pki/sa.key" \
        --use-service-account-credentials \
        --controllers='*,-nodeipam' \
        --leader-elect=false \
        --bind-address=127.0.0.1 \
        --secure-port="$port"
}

start_scheduler() {
    local dir="$1" port="$2"
    start_daemon kube-scheduler "$dir/kube-scheduler.log" "$dir/kube-scheduler.pid" \
        "$SCHEDULER_BIN" \
        --kubeconfig="$dir/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig="$dir/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig="$dir/kube-scheduler.kubeconfig" \
        --leader-elect=false \
        --bind-address=127.0.0.1 \
        --secure-port="$port"
}

# Its own root, state, socket and runc root under DIR: a system containerd and other
# runs never see these containers, and node-down.sh can remove everything.
start_containerd() {
    local dir="$1" c="$1/containerd"
    mkdir -p "$c" "$dir/cni/net.d" "$dir/cni/ipam"
    sed -e "s|@DIR@|$dir|g" -e "s|@CNI_BIN_DIR@|$CNI_BIN_DIR|g" -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" \
        "$SCRIPT_DIR/node/containerd.toml.in" >"$c/config.toml"
    sed -e "s|@DIR@|$dir|g" -e "s|@BRIDGE@|$CNI_BRIDGE|g" -e "s|@POD_CIDR@|$POD_CIDR|g" \
        "$SCRIPT_DIR/node/cni.conflist.in" >"$dir/cni/net.d/10-kvop-bridge.conflist"
    start_daemon containerd "$dir/containerd.log" "$dir/containerd.pid" \
        containerd --config "$c/config.toml"
    local deadline=$((SECONDS + 20))
    until ctr --address "$c/containerd.sock" version >/dev/null 2>&1; do
        kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null || { tail -n 20 "$dir/containerd.log" >&2; die "containerd exited"; }
        (( SECONDS < deadline )) || die "containerd not answering on $c/containerd.sock after 20 s"
        sleep 0.2
    done
}

# The sandbox image every pod starts with, and busybox for test pods.
import_base_images() {
    local dir="$1"
    local images=("$PAUSE_IMAGE") pause_root="$dir/images/pause" busybox_root="$dir/images/busybox"
    mkdir -p "$pause_root" "$busybox_root/bin"
    cp "$PAUSE_BIN" "$pause_root/pause"
    "$SCRIPT_DIR/node/image-from-dir.sh" "$dir" "$pause_root" "$PAUSE_IMAGE" \
        --entrypoint '["/pause"]' --user 65535:65535
    if [[ -x /bin/busybox ]]; then
        cp /bin/busybox "$busybox_root/bin/busybox"
        local applet
        for applet in sh wget cat ls id sleep true; do ln -sf busybox "$busybox_root/bin/$applet"; done
        "$SCRIPT_DIR/node/image-from-dir.sh" "$dir" "$busybox_root" kvop.local/busybox:1 \
            --entrypoint '["/bin/sh"]' --env PATH=/bin
        images+=(kvop.local/busybox:1)
    fi
    log "imported ${images[*]}"
}

start_kubelet() {
    local dir="$1" port="$2" healthz_port="$3"
    mkdir -p "$dir/kubelet" "$dir/static-pods" "$dir/pod-logs"
    cat >"$dir/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: ${port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${healthz_port}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${dir}/pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: ${dir}/pki/kubelet-serving.crt
tlsPrivateKeyFile: ${dir}/pki/kubelet-serving.key
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://${dir}/containerd/containerd.sock
staticPodPath: ${dir}/static-pods
podLogsDir: ${dir}/pod-logs
failSwapOn: false
# A test machine's disk is shared with builds: never evict or collect images over it.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Kubernetes 1.35 refuses cgroup v1 by default; 1.34 only warns. Say it explicitly.
failCgroupV1: false
serializeImagePulls: false
YAML
    start_daemon kubelet "$dir/kubelet.log" "$dir/kubelet.pid" \
        "$KUBELET_BIN" \
        --config="$dir/kubelet-config.yaml" \
        --kubeconfig="$dir/kubelet.kubeconfig" \
        --root-dir="$dir/kubelet" \
        --hostname-override="$NODE_NAME" \
        --node-ip="$NODE_IP"
}

start_kube_proxy() {
    local dir="$1" metrics_port="$2" healthz_port="$3"
    # --conntrack-max-per-core=0: leave the host's conntrack table size alone.
    start_daemon kube-proxy "$dir/kube-proxy.log" "$dir/kube-proxy.pid" \
        "$KUBE_PROXY_BIN" \
        --kubeconfig="$dir/kube-proxy.kubeconfig" \
        --proxy-mode=iptables \
        --cluster-cidr="${POD_CIDR%.*/*}.0/16" \
        --hostname-override="$NODE_NAME" \
        --conntrack-max-per-core=0 \
        --metrics-bind-address="127.0.0.1:${metrics_port}" \
        --healthz-bind-address="127.0.0.1:${healthz_port}"
}

# --- readiness -----------------------------------------------------------------------

DAEMONS=(etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy)

check_alive() {
    local dir="$1" name
    for name in "${DAEMONS[@]}"; do
        [[ -f "$dir/$name.pid" ]] || continue
        kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null || { log "$name exited during startup"; return 1; }
    done
}

# wait_for DIR WHAT CMD...: polls CMD until it succeeds, a daemon dies or time runs out.
wait_for() {
    local dir="$1" what="$2" deadline=$((SECONDS + START_TIMEOUT))
    shift 2
    while (( SECONDS < deadline )); do
        check_alive "$dir" || return 1
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    log "timed out after ${START_TIMEOUT} s waiting for $what"
    return 1
}

apiserver_ready() { [[ "$("$KUBECTL" --kubeconfig="$1" get --raw /readyz 2>/dev/null)" == ok ]]; }
node_ready() {
    [[ "$("$KUBECTL" --kubeconfig="$1" get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
# Pods in `default` need its ServiceAccount (admission refuses them without it) and the
# root CA ConfigMap their token volume projects: both come from kube-controller-manager.
default_namespace_ready() {
    "$KUBECTL" --kubeconfig="$1" -n default get serviceaccount default &&
        "$KUBECTL" --kubeconfig="$1" -n default get configmap kube-root-ca.crt
}
# The `kubernetes` Service's endpoint, programmed by kube-proxy: what kvop's pods use.
service_proxied() { iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -q "10.0.0.1/32.*443"; }

NODE_DIR=""
NODE_READY=0
on_exit() {
    if [[ -n "$NODE_DIR" && "$NODE_READY" != 1 ]]; then
        local f
        for f in etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy; do
            [[ -f "$NODE_DIR/$f.log" ]] || continue
            echo "----- last 25 lines of $NODE_DIR/$f.log -----" >&2
            tail -n 25 "$NODE_DIR/$f.log" >&2
        done
        "$SCRIPT_DIR/node-down.sh" "$NODE_DIR" >&2 || true
    fi
}

main() {
    # --check: only whether this machine can run a node (exit 0, or 3 with `skipped:`),
    # before anyone spends minutes building the node's programs.
    if [[ "${1:-}" == --check ]]; then
        check_host
        exit 0
    fi
    (( $# == 1 )) || { echo "usage: $0 DIR | --check" >&2; exit 2; }
    check_machine
    ensure_packages
    mkdir -p "$1" "$KVOP_CACHE"
    local dir
    dir="$(cd "$1" && pwd)"
    if [[ -f "$dir/kubelet.pid" ]] && kill -0 "$(cat "$dir/kubelet.pid")" 2>/dev/null; then
        die "a node already runs from $dir; run node-down.sh $dir"
    fi
    # One node per machine. The lock is held by this script's descendants (the daemons
    # inherit fd 8) until node-down.sh has stopped them all.
    exec 8>"$KVOP_CACHE/.node.lock"
    if ! flock -n 8; then
        log "another node runs on this machine; waiting for it to stop"
        flock 8
    fi
    rm -rf "$dir/etcd-data" "$dir/pki"
    local start=$SECONDS
    NODE_DIR="$dir"
    trap on_exit EXIT
    trap 'exit 130' INT TERM

    set_sysctls "$dir"
    add_node_address "$dir"
    local etcd_port peer_port secure_port kcm_port sched_port kubelet_port kubelet_healthz proxy_metrics proxy_healthz
    read -r etcd_port peer_port kcm_port sched_port kubelet_healthz proxy_metrics proxy_healthz <<<"$(free_ports 7)"
    read -r secure_port kubelet_port <<<"$(free_ports 2 "$NODE_IP")"
    local server="https://${NODE_IP}:${secure_port}"

    make_node_pki "$dir/pki"
    write_kubeconfig "$dir/kubeconfig" "$server" "$dir/pki" admin
    local component
    for component in kubelet kube-controller-manager kube-scheduler kube-proxy; do
        write_kubeconfig "$dir/$component.kubeconfig" "$server" "$dir/pki" "$component"
    done

    start_containerd "$dir"
    import_base_images "$dir"
    start_etcd "$dir" "$etcd_port" "$peer_port"
    start_node_apiserver "$dir" "$etcd_port" "$secure_port"
    wait_for "$dir" "the apiserver's /readyz" apiserver_ready "$dir/kubeconfig" || exit 1
    start_controller_manager "$dir" "$kcm_port"
    start_scheduler "$dir" "$sched_port"
    start_kube_proxy "$dir" "$proxy_metrics" "$proxy_healthz"
    start_kubelet "$dir" "$kubelet_port" "$kubelet_healthz"
    wait_for "$dir" "node $NODE_NAME Ready" node_ready "$dir/kubeconfig" || exit 1
    wait_for "$dir" "the default ServiceAccount and kube-root-ca.crt" default_namespace_ready "$dir/kubeconfig" || exit 1
    wait_for "$dir" "kube-proxy's rules for the kubernetes Service" service_proxied || exit 1
    NODE_READY=1

    cat >"$dir/env" <<ENV
KUBECONFIG=$dir/kubeconfig
KVOP_NODE_NATS_HOST=$NODE_IP
KVOP_NODE_NAME=$NODE_NAME
KVOP_NODE_CONTAINERD=$dir/containerd/containerd.sock
KVOP_NODE_BUILDAH_ROOT=$dir/buildah
KVOP_K8S_SERVER=$server
KVOP_ETCD_ENDPOINT=http://127.0.0.1:${etcd_port}
ENV
    log "node $NODE_NAME Ready in $((SECONDS - start)) s: $server, pods in $POD_CIDR, services in $SERVICE_CIDR"
    echo "$dir/kubeconfig"
}

main "$@"
