#!/usr/bin/env bash
# kvop as pods, end to end, on a real node (the local counterpart of the kind job in
# .github/workflows/e2e.yml): bring up the node, build and import kvop's image, start a
# nats-server on this machine with NKey authentication, install charts/kvop with two
# replicas exactly as docs/install.md says, then run the e2e suite (tests/e2e.rs) and the
# pod-level tests (tests/pods.rs) against the operator in the cluster. Always tears the
# node down; on failure prints pods, events, kvop's logs and the daemons' log tails.
#
# NATS runs on the host, not as a pod: the tests stop, restart and inspect it like every
# other test's server, the same nats-server 2.15.1 binary serves both, and pods reach it
# at the node address (KVOP_NODE_NATS_HOST) exactly as they would reach a NATS outside
# the cluster. The kind job runs NATS in the cluster from the official chart instead.
#
# Usage: tests/env/node-test.sh        Exit 0 also when the machine cannot run a node and
# CI is not true (prints `skipped: ...`).
# Env: KVOP_CACHE, KVOP_NATS_SERVER, KVOP_HELM, KVOP_KEEP_NODE_DIR=1 (keep logs), CI.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
# shellcheck source=k8s/paths.sh
source "${SCRIPT_DIR}/k8s/paths.sh"
KUBECTL="${KVOP_KUBECTL:-kubectl}"

step() { printf '\n--> node-test: %s\n' "$*" >&2; STEP_START=$SECONDS; }
done_step() { printf '    (%d s)\n' "$((SECONDS - STEP_START))" >&2; }
die() { echo "node-test: error: $*" >&2; exit 1; }

STARTED=$SECONDS
DIR="$(mktemp -d "${TMPDIR:-/tmp}/kvop-node.XXXXXX")"
NATS_PID=""
OK=0

diagnostics() {
    echo "----- diagnostics -----" >&2
    "$KUBECTL" get nodes,pods,deploy,svc,endpointslices,lease -A -o wide >&2 || true
    "$KUBECTL" -n kvop-system describe pods >&2 || true
    "$KUBECTL" -n kvop-system logs deployment/kvop --all-containers --prefix --tail=200 >&2 || true
    "$KUBECTL" get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -n 60 >&2 || true
    local f
    for f in kubelet containerd kube-controller-manager kube-scheduler kube-proxy kube-apiserver nats-server; do
        [[ -f "$DIR/$f.log" ]] || continue
        echo "----- last 30 lines of $DIR/$f.log -----" >&2
        tail -n 30 "$DIR/$f.log" >&2
    done
}

# What kvop logged at warn or error in its pods now running (deleted pods took their logs
# with them): a test can pass while the operator complains, and that is worth reading.
operator_warnings() {
    "$KUBECTL" -n kvop-system logs -l app.kubernetes.io/name=kvop --prefix --tail=-1 \
        >"$DIR/kvop-pods.log" 2>/dev/null || return 0
    local warnings
    warnings="$(grep -E '"level":"(WARN|ERROR)"' "$DIR/kvop-pods.log" || true)"
    if [[ -z "$warnings" ]]; then
        echo "node-test: kvop's pods logged no warning or error" >&2
        return 0
    fi
    echo "node-test: kvop's pods logged $(wc -l <<<"$warnings") warnings or errors; distinct messages:" >&2
    sed -E 's/.*"level":"([A-Z]+)".*"message":"([^"]*)".*/  \1 \2/' <<<"$warnings" | sort | uniq -c >&2 || true
    # The fields (object, reason, error) say what happened; kvop never logs a secret.
    echo "node-test: the first of them in full:" >&2
    head -n 5 <<<"$warnings" | cut -c1-600 >&2 || true
}

cleanup() {
    local status=$?
    if [[ -f "$DIR/env" ]]; then
        operator_warnings
    fi
    if (( status != 0 && OK == 0 )) && [[ -f "$DIR/env" ]]; then
        diagnostics
    fi
    [[ -n "$NATS_PID" ]] && kill "$NATS_PID" 2>/dev/null || true
    STEP_START=$SECONDS
    "$SCRIPT_DIR/node-down.sh" "$DIR" >&2 || true
    printf 'node-test: node down in %d s\n' "$((SECONDS - STEP_START))" >&2
    if [[ "${KVOP_KEEP_NODE_DIR:-}" == 1 ]]; then
        echo "node-test: kept $DIR" >&2
    else
        rm -rf "$DIR"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

set +e
"$SCRIPT_DIR/node-up.sh" --check
status=$?
set -e
if (( status == 3 )); then
    OK=1
    exit 0 # node-up.sh printed `skipped: ...`; CI=true makes it fail instead
fi
(( status == 0 )) || die "this machine cannot run the test node"

step "build the node's programs (cached after the first run)"
"$SCRIPT_DIR/k8s-build.sh" --node >&2
done_step

step "node up"
set +e
KUBECONFIG="$("$SCRIPT_DIR/node-up.sh" "$DIR" | tail -n 1)"
status=${PIPESTATUS[0]}
set -e
if (( status == 3 )); then
    OK=1
    exit 0 # node-up.sh printed `skipped: ...`; CI=true makes it fail instead
fi
(( status == 0 )) || die "node-up.sh failed"
set -a
# shellcheck disable=SC1091
source "$DIR/env"
set +a
export KUBECONFIG
done_step

step "kvop's image (Dockerfile target prebuilt, buildah, imported into the node)"
IMAGE="$("$SCRIPT_DIR/image.sh" "$DIR" | tail -n 1)"
done_step

step "nats-server on the node address, NKey authentication"
NATS_SERVER="${KVOP_NATS_SERVER:-$("$SCRIPT_DIR/nats-server.sh")}"
NK="$("$SCRIPT_DIR/nk.sh")"
mkdir -p "$DIR/nats"
"$NK" -gen user -pubout >"$DIR/nats/kvop.nk"
SEED="$(sed -n 1p "$DIR/nats/kvop.nk")"
PUBLIC="$(sed -n 2p "$DIR/nats/kvop.nk")"
printf '%s\n' "$SEED" >"$DIR/nats/seed"
VERIFIER_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
read -r NATS_PORT <<<"$(python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$KVOP_NODE_NATS_HOST")"
cat >"$DIR/nats/server.conf" <<CONF
listen: "${KVOP_NODE_NATS_HOST}:${NATS_PORT}"
jetstream { store_dir: "$DIR/nats/js" }
authorization {
  users: [
    # The operator: its seed is only in the Secret the chart mounts.
    { nkey: "$PUBLIC" }
    # The tests' own client, which checks what kvop wrote.
    { user: verifier, password: "$VERIFIER_PASSWORD" }
  ]
}
CONF
setsid "$NATS_SERVER" -c "$DIR/nats/server.conf" </dev/null >"$DIR/nats-server.log" 2>&1 &
NATS_PID=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$KVOP_NODE_NATS_HOST/$NATS_PORT") 2>/dev/null && break
    kill -0 "$NATS_PID" 2>/dev/null || die "nats-server exited: $(tail -n 5 "$DIR/nats-server.log")"
    sleep 0.1
done
NATS_URL="nats://${KVOP_NODE_NATS_HOST}:${NATS_PORT}"
done_step

# From here on: docs/install.md's commands, with this node's image and NATS.
step "helm install charts/kvop (2 replicas, leader election, NKey Secret) --wait"
"$KUBECTL" create namespace kvop-system >&2
"$KUBECTL" -n kvop-system create secret generic kvop-nats-nkey --from-file=seed="$DIR/nats/seed" >&2
"$SCRIPT_DIR/chart-install.sh" "$IMAGE" "$NATS_URL" \
    --set replicas=2 \
    --set nats.nkey.secretName=kvop-nats-nkey \
    --set 'log.level=debug\,async_nats=off\,kube=info\,hyper=info\,tower=info'
done_step

step "helm test: the chart's test hook (kvop probe on the Service) finds the operator ready"
helm_bin="${KVOP_HELM:-}"
if [[ -z "$helm_bin" ]]; then
    if [[ -x "$HELM_BIN" ]]; then helm_bin="$HELM_BIN"; else helm_bin="$(command -v helm)"; fi
fi
"$helm_bin" test kvop --namespace kvop-system --timeout 2m --logs >&2
done_step

export KVOP_NODE_KUBECONFIG="$KUBECONFIG" KVOP_NODE_RELEASE=kvop KVOP_NODE_RELEASE_NAMESPACE=kvop-system
export KVOP_NODE_NATS_URL="nats://verifier:${VERIFIER_PASSWORD}@${KVOP_NODE_NATS_HOST}:${NATS_PORT}"
export KVOP_NODE_IMAGE="$IMAGE" KVOP_NODE_CONTAINERD KVOP_NODE_REPORT="$DIR/report.txt"

step "tests/e2e.rs against the operator in the cluster"
KVOP_E2E_KUBECONFIG="$KUBECONFIG" KVOP_E2E_NATS_URL="$KVOP_NODE_NATS_URL" \
    cargo test --locked --test e2e -- --nocapture >&2
done_step

step "tests/pods.rs: pod-level behaviour (probes, leader election, hand-overs, security, metrics)"
cargo test --locked --test pods -- --ignored --test-threads=1 --nocapture >&2
done_step

echo "----- node report -----" >&2
cat "$KVOP_NODE_REPORT" >&2 2>/dev/null || true
OK=1
printf 'node-test: passed in %d s\n' "$((SECONDS - STARTED))" >&2
