#!/usr/bin/env bash
# Stops the node started by node-up.sh DIR and undoes its changes to this machine: pods
# (through the kubelet, so CNI tears down their network), the daemons, kube-proxy's and
# the kubelet's iptables chains, the bridge, the node address on lo, the sysctls, the
# token mounts under DIR. Idempotent: a second run, or a run after a failed start, exits 0.
#
# Usage: tests/env/node-down.sh DIR      Env: KVOP_K8S_STOP_GRACE (seconds, default 5)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=k8s/paths.sh
source "${SCRIPT_DIR}/k8s/paths.sh"

KUBECTL="${KVOP_KUBECTL:-kubectl}"
GRACE="${KVOP_K8S_STOP_GRACE:-5}"

log() { echo "node-down: $*" >&2; }

running() {
    local pid
    pid="$(cat "$1/$2.pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# stop DIR NAME: TERM, then KILL after the grace period, only while the recorded PID
# still runs the program it was started as.
stop() {
    local dir="$1" name="$2" pid comm
    pid="$(cat "$dir/$name.pid" 2>/dev/null || true)"
    [[ -n "$pid" ]] || return 0
    if running "$dir" "$name"; then
        comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
        if [[ -z "$comm" || "$comm" == "${name:0:15}" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            local deadline=$((SECONDS + GRACE))
            while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
            if kill -0 "$pid" 2>/dev/null; then
                log "$name (pid $pid) ignored TERM for ${GRACE} s; sending KILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            log "stopped $name (pid $pid)"
        fi
    fi
    rm -f "$dir/$name.pid"
}

ctr_node() { ctr --address "$1/containerd/containerd.sock" -n k8s.io "${@:2}"; }

# Every pod away through the kubelet: it stops each sandbox through the CRI, which runs
# CNI DEL (veth, IPAM lease, firewall rules). Removing containers behind its back would
# leave all of that on the host.
drain_pods() {
    local dir="$1" kc="$1/kubeconfig"
    running "$dir" kube-apiserver && running "$dir" kubelet || return 0
    # First nothing that would make new pods, then the pods themselves.
    stop "$dir" kube-controller-manager
    stop "$dir" kube-scheduler
    rm -f "$dir/static-pods/"* 2>/dev/null || true
    "$KUBECTL" --kubeconfig="$kc" delete pods --all --all-namespaces --grace-period=1 \
        --wait=false >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 60))
    while (( SECONDS < deadline )); do
        [[ -z "$(ctr_node "$dir" tasks ls -q 2>/dev/null)" ]] && return 0
        sleep 0.5
    done
    log "pods still running after 60 s; removing them through containerd"
}

# What the kubelet did not remove: tasks and containers, then their snapshots.
remove_containers() {
    local dir="$1" id
    running "$dir" containerd || return 0
    for id in $(ctr_node "$dir" tasks ls -q 2>/dev/null); do
        ctr_node "$dir" tasks kill -s KILL "$id" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for id in $(ctr_node "$dir" tasks ls -q 2>/dev/null); do
        ctr_node "$dir" tasks rm -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr_node "$dir" containers ls -q 2>/dev/null); do
        ctr_node "$dir" containers rm "$id" >/dev/null 2>&1 || true
    done
}

# Chains the kubelet creates itself (kube-proxy --cleanup leaves them).
remove_kubelet_chains() {
    local tool table chain
    for tool in iptables ip6tables; do
        command -v "$tool" >/dev/null 2>&1 || continue
        for chain in INPUT OUTPUT; do
            while "$tool" -w -t filter -D "$chain" -j KUBE-FIREWALL 2>/dev/null; do :; done
        done
        "$tool" -w -t filter -F KUBE-FIREWALL 2>/dev/null || true
        "$tool" -w -t filter -X KUBE-FIREWALL 2>/dev/null || true
        for table in filter nat mangle; do
            "$tool" -w -t "$table" -F KUBE-KUBELET-CANARY 2>/dev/null || true
            "$tool" -w -t "$table" -X KUBE-KUBELET-CANARY 2>/dev/null || true
        done
        "$tool" -w -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
    done
}

# Network namespaces of pods whose sandbox was removed without CNI DEL: only those with
# an address in this node's pod range, never another runtime's.
remove_leftover_netns() {
    local ns prefix="${POD_CIDR%.*}."
    for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ { print $1 }'); do
        if ip -n "$ns" -4 addr 2>/dev/null | grep -q "inet ${prefix}"; then
            ip netns del "$ns" 2>/dev/null && log "removed leftover network namespace $ns"
        fi
    done
    # The firewall plugin's per-pod rules of such pods.
    local rule
    while read -r rule; do
        [[ -n "$rule" ]] || continue
        # shellcheck disable=SC2086 # the rule's words are iptables arguments
        iptables -w ${rule/-A /-D } 2>/dev/null || true
    done < <(iptables -w -S CNI-FORWARD 2>/dev/null | grep -- "-A CNI-FORWARD.* ${prefix}" || true)
}

# The CNI firewall plugin's chains, created on the first pod and never removed by it:
# only when nothing but its own skeleton is left (another CNI user shares their names).
remove_empty_firewall_chains() {
    iptables -w -S CNI-FORWARD >/dev/null 2>&1 || return 0
    local forward admin
    forward="$(iptables -w -S CNI-FORWARD | grep -v -e '^-N CNI-FORWARD$' -e '-j CNI-ADMIN$' || true)"
    admin="$(iptables -w -S CNI-ADMIN 2>/dev/null | grep -v '^-N CNI-ADMIN$' || true)"
    [[ -z "$forward" && -z "$admin" ]] || return 0
    while iptables -w -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null; do :; done
    iptables -w -F CNI-FORWARD && iptables -w -X CNI-FORWARD
    iptables -w -X CNI-ADMIN 2>/dev/null || true
}

unmount_under() {
    local dir="$1" mount
    # Deepest first; lazily, as a mount still busy must not stop the teardown.
    for mount in $(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$mount" 2>/dev/null || true
    done
}

restore_host() {
    local dir="$1" line
    if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
        ip link del "$CNI_BRIDGE" && log "removed bridge $CNI_BRIDGE"
    fi
    if [[ -f "$dir/node-address.added" ]]; then
        ip addr del "${NODE_IP}/32" dev lo 2>/dev/null || true
        rm -f "$dir/node-address.added"
        log "removed ${NODE_IP}/32 from lo"
    fi
    if [[ -f "$dir/sysctl.saved" ]]; then
        while read -r line; do
            [[ -n "$line" ]] && sysctl -q -w "$line" >/dev/null 2>&1 || true
        done <"$dir/sysctl.saved"
        rm -f "$dir/sysctl.saved"
    fi
}

main() {
    (( $# == 1 )) || { echo "usage: $0 DIR" >&2; exit 2; }
    local dir="$1"
    [[ -d "$dir" ]] || exit 0
    dir="$(cd "$dir" && pwd)"
    local start=$SECONDS had_kubelet=0 had_proxy=0
    [[ -f "$dir/kubelet.pid" ]] && had_kubelet=1
    [[ -f "$dir/kube-proxy.pid" ]] && had_proxy=1
    drain_pods "$dir"
    stop "$dir" kube-controller-manager
    stop "$dir" kube-scheduler
    stop "$dir" kubelet
    remove_containers "$dir"
    stop "$dir" containerd
    # containerd's shims outlive it by design; these are this node's only.
    local shim
    for shim in $(pgrep -f "containerd-shim-runc-v2 .*-address $dir/containerd/containerd.sock" || true); do
        kill -KILL "$shim" 2>/dev/null || true
    done
    stop "$dir" kube-proxy
    # Only when this node ran them: the chains are global, and would be another node's.
    if (( had_proxy )); then
        "$KUBE_PROXY_BIN" --cleanup >/dev/null 2>&1 || true
    fi
    if (( had_kubelet )); then
        remove_kubelet_chains
    fi
    stop "$dir" kube-apiserver
    stop "$dir" etcd
    unmount_under "$dir"
    remove_leftover_netns
    remove_empty_firewall_chains
    restore_host "$dir"
    log "done in $((SECONDS - start)) s"
}

main "$@"
