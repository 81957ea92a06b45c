#!/usr/bin/env bash
# Starts a control plane for the lifetime of process PID (a test binary): builds the
# binaries if needed (cached), starts the plane in DIR, prints the admin kubeconfig path
# on the last line, and leaves a watchdog that stops the plane once PID has exited.
#
# Usage: tests/env/k8s-for-process.sh PID DIR
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pid="${1:?usage: $0 PID DIR}"
dir="${2:?usage: $0 PID DIR}"

"${SCRIPT_DIR}/k8s-build.sh" >&2
kubeconfig="$("${SCRIPT_DIR}/k8s-up.sh" "$dir" | tail -n 1)"
# The watchdog outlives this script (setsid, no inherited pipes) and stops only what
# k8s-up.sh recorded in DIR.
setsid bash -c "while kill -0 $pid 2>/dev/null; do sleep 1; done; '${SCRIPT_DIR}/k8s-down.sh' '$dir' >/dev/null 2>&1; rm -rf '$dir'" \
    </dev/null >/dev/null 2>&1 &
echo "$kubeconfig"
