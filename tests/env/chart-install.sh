#!/usr/bin/env bash
# Installs charts/kvop the way docs/install.md does, with a locally built image, and waits
# for the rollout: used by node-test.sh (the test node) and the kind job of
# .github/workflows/e2e.yml, so both test the documented commands.
#
# Usage: tests/env/chart-install.sh IMAGE NATS_URL [HELM_ARGS...]
#   IMAGE is REPOSITORY:TAG (pulled never: it must already be on the node);
#   HELM_ARGS are passed on, e.g. --set replicas=2.
# Env: KVOP_HELM (default: helm on PATH, else the one k8s-build.sh installs), KUBECONFIG.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
# shellcheck source=k8s/paths.sh
source "${SCRIPT_DIR}/k8s/paths.sh"

(( $# >= 2 )) || { echo "usage: $0 IMAGE NATS_URL [HELM_ARGS...]" >&2; exit 2; }
image="$1" nats_url="$2"
shift 2
helm="${KVOP_HELM:-}"
if [[ -z "$helm" ]]; then
    if [[ -x "$HELM_BIN" ]]; then helm="$HELM_BIN"; else helm="$(command -v helm)"; fi
fi
kubectl="${KVOP_KUBECTL:-kubectl}"

start=$SECONDS
"$helm" install kvop "$REPO/charts/kvop" --namespace kvop-system --create-namespace \
    --set image.repository="${image%:*}" \
    --set image.tag="${image##*:}" \
    --set image.pullPolicy=Never \
    --set nats.url="$nats_url" \
    "$@" \
    --wait --timeout 3m >&2
"$kubectl" -n kvop-system rollout status deployment/kvop --timeout=2m >&2
echo "chart-install: kvop installed and rolled out in $((SECONDS - start)) s" >&2
