#!/usr/bin/env bash
# Stops a control plane started by k8s-up.sh DIR. Only the PIDs recorded in DIR/*.pid are
# signalled (TERM, then KILL after a grace period), and only while they still run the
# binary they were started as, so a recycled PID is never hit. Idempotent: a second run,
# or a run on a DIR whose processes already died, is a no-op that exits 0.
#
# Usage: tests/env/k8s-down.sh DIR      Env: KVOP_K8S_STOP_GRACE (seconds, default 5)
set -euo pipefail

GRACE="${KVOP_K8S_STOP_GRACE:-5}"

log() { echo "k8s-down: $*" >&2; }

# True if PID runs and its executable is named NAME (e.g. etcd, kube-apiserver).
is_our_process() {
    local pid="$1" name="$2" comm
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # /proc/PID/comm is truncated to 15 chars ("kube-apiserver" fits).
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    [[ -z "$comm" || "$comm" == "${name:0:15}" ]]
}

stop_pidfile() {
    local pidfile="$1" name pid
    name="$(basename "$pidfile" .pid)"
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if ! is_our_process "$pid" "$name"; then
        rm -f "$pidfile"
        return
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + GRACE))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) ignored TERM for ${GRACE} s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    log "stopped $name (pid $pid)"
}

main() {
    if (( $# != 1 )); then
        echo "usage: $0 DIR" >&2
        exit 2
    fi
    local dir="$1"
    [[ -d "$dir" ]] || exit 0
    # The apiserver first: stopping etcd under it only produces noise in its log.
    local f
    for f in "$dir/kube-apiserver.pid" "$dir/etcd.pid"; do
        [[ -f "$f" ]] && stop_pidfile "$f"
    done
    # Anything else a future k8s-up.sh may record.
    for f in "$dir"/*.pid; do
        [[ -f "$f" ]] && stop_pidfile "$f"
    done
    return 0
}

main "$@"
