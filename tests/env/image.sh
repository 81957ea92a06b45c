#!/usr/bin/env bash
# Builds kvop's runtime image from the release binary, offline, and imports it into the
# containerd of the node started in DIR (node-up.sh DIR). The image is the Dockerfile's
# own `prebuilt` target, built by buildah: the same `runtime` stage (user 65532,
# ENTRYPOINT /kvop, CMD --help, labels) as `docker build .`, with /kvop copied in.
#
# The one difference is the base. Docker builds FROM gcr.io/distroless/cc-debian12:nonroot,
# which no registry here serves; this script passes a stand-in made from this machine's
# Debian 12 files (RUNTIME_BASE): the C libraries the binary links (by ldd), the CA bundle,
# /etc/passwd and /etc/group with root, nonroot (65532) and nobody, /tmp (1777) and
# /home/nonroot, no shell, no package manager: what distroless/cc has that kvop uses.
#
# Usage: tests/env/image.sh DIR
#   Last line of stdout: the image's REPOSITORY:TAG (tag: kvop's version and the binary's
#   hash, so a rebuilt binary is a new tag and a rollout picks it up), for the chart's
#   image.repository / image.tag with image.pullPolicy=Never.
# Env: KVOP_BIN (a release binary; default: cargo build --release --locked --bin kvop),
#      KVOP_IMAGE_REPOSITORY (default localhost/kvop).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
# shellcheck source=node/buildah.sh
source "$SCRIPT_DIR/node/buildah.sh"

log() { echo "image: $*" >&2; }
die() { echo "image: error: $*" >&2; exit 1; }

(( $# == 1 )) || { echo "usage: $0 DIR   (DIR: a node started by node-up.sh)" >&2; exit 2; }
dir="$(cd "$1" && pwd)"
[[ -S "$dir/containerd/containerd.sock" ]] || die "no node's containerd in $dir (run tests/env/node-up.sh $dir first)"
command -v buildah >/dev/null 2>&1 || die "buildah not found (node-up.sh installs it)"

# Copies FILE into ROOT at the same path, as a regular file. Not as the symlink it may be:
# on Debian /lib64 and /lib are links into /usr, and a link kept as it is would point
# at a path the image does not have (the loader, and so every exec, would be missing).
copy_dereferenced() {
    local root="$1" file="$2"
    mkdir -p "$root$(dirname "$file")"
    cp -L --preserve=mode "$file" "$root$file"
}

# The distroless/cc stand-in, for this binary.
make_base_rootfs() {
    local root="$1" binary="$2" lib
    rm -rf "$root"
    mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot"
    # Every shared object the binary needs, and the dynamic loader (ldd lists it by its
    # absolute path; the others after "=>").
    while read -r lib; do
        copy_dereferenced "$root" "$lib"
    done < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
    cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
    cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
    echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
    chmod 1777 "$root/tmp"
    chmod 700 "$root/home/nonroot"
}

# A release binary: KVOP_BIN, or cargo's (incremental; built if missing).
release_binary() {
    if [[ -n "${KVOP_BIN:-}" ]]; then
        [[ -x "$KVOP_BIN" ]] || die "KVOP_BIN=$KVOP_BIN is not an executable"
        echo "$KVOP_BIN"
        return
    fi
    local start=$SECONDS
    log "cargo build --release --locked --bin kvop"
    (cd "$REPO" && cargo build --release --locked --bin kvop --quiet) >&2
    log "release binary ready in $((SECONDS - start)) s"
    echo "${CARGO_TARGET_DIR:-$REPO/target}/release/kvop"
}

main() {
    local start=$SECONDS binary version digest
    binary="$(release_binary)"
    version="$("$binary" version | awk '{ print $2 }')"
    digest="$(sha256sum "$binary" | cut -c1-12)"
    local repository="${KVOP_IMAGE_REPOSITORY:-localhost/kvop}"
    local name="${repository}:${version}-${digest}"
    local base="localhost/kvop-runtime-base:distroless-cc-debian12-standin"
    local work="$dir/images/kvop"
    mkdir -p "$work/context" "$dir/buildah"

    make_base_rootfs "$work/base" "$binary"
    local container
    container="$(node_buildah "$dir" from --quiet scratch)"
    node_buildah "$dir" copy --quiet "$container" "$work/base" / >/dev/null
    # distroless' nonroot variant: its user, its home (owned by it), and where
    # OpenSSL-style clients find the CA bundle.
    node_buildah "$dir" copy --quiet --chown 65532:65532 "$container" "$work/base/home/nonroot" /home/nonroot >/dev/null
    node_buildah "$dir" config --user 65532:65532 --workingdir /home/nonroot \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$container"
    node_buildah "$dir" commit --quiet --rm --format oci "$container" "$base" >/dev/null

    # The Dockerfile's `prebuilt` target, with only the binary as the build context.
    cp "$binary" "$work/context/kvop"
    node_buildah "$dir" bud --quiet --pull-never --format oci --layers=false \
        --target prebuilt --build-arg RUNTIME_BASE="$base" --build-arg KVOP_BINARY=kvop \
        -f "$REPO/Dockerfile" -t "$name" "$work/context" >/dev/null
    import_into_node "$dir" "$name"
    rm -rf "$work"
    # The image as the node will run it: its entrypoint, its user, its libraries.
    local smoke="kvop-image-check-$$" output
    output="$(ctr --address "$dir/containerd/containerd.sock" -n k8s.io run --rm "$name" "$smoke" /kvop version 2>&1)" ||
        die "the image does not run: $output"
    [[ "$output" == "kvop ${version}" ]] || die "the image printed '$output', not 'kvop ${version}'"
    log "built and imported $name in $((SECONDS - start)) s"
    echo "$name"
}

main "$@"
