#!/usr/bin/env bash
# Makes an image of one layer from a directory and imports it into the node's containerd:
# the pause (sandbox) image and test images of node-up.sh. No registry, no daemon.
#
# Usage: image-from-dir.sh NODE_DIR ROOTFS NAME [--entrypoint JSON] [--user U] [--env K=V]...
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=buildah.sh
source "$SCRIPT_DIR/buildah.sh"

(( $# >= 3 )) || { echo "usage: $0 NODE_DIR ROOTFS NAME [--entrypoint JSON] [--user U] [--env K=V]..." >&2; exit 2; }
dir="$1" rootfs="$2" name="$3"
shift 3
config=()
while (( $# )); do
    case "$1" in
        --entrypoint | --user | --env) config+=("$1" "$2"); shift 2 ;;
        *) echo "image-from-dir: unknown option $1" >&2; exit 2 ;;
    esac
done

mkdir -p "$dir/buildah"
container="$(node_buildah "$dir" from --quiet scratch)"
trap 'node_buildah "$dir" rm "$container" >/dev/null 2>&1 || true' EXIT
node_buildah "$dir" copy --quiet "$container" "$rootfs" / >/dev/null
if (( ${#config[@]} )); then
    node_buildah "$dir" config "${config[@]}" "$container"
fi
node_buildah "$dir" commit --quiet --format oci "$container" "$name" >/dev/null
import_into_node "$dir" "$name"
