# shellcheck shell=bash
# Sourced by the image scripts: buildah with its storage under the node's directory (vfs:
# no mounts to clean up, nothing shared with a system podman/buildah), never pulling.

# node_buildah DIR ARGS...
node_buildah() {
    local dir="$1"
    shift
    buildah --root "$dir/buildah/root" --runroot "$dir/buildah/run" --storage-driver vfs "$@"
}

# import_into_node DIR NAME: copies image NAME from buildah's storage into the node's
# containerd (namespace k8s.io, where the kubelet looks), through an OCI archive.
import_into_node() {
    local dir="$1" name="$2" archive
    archive="$(mktemp "$dir/buildah/image.XXXXXX.tar")"
    rm -f "$archive"
    node_buildah "$dir" push --quiet "$name" "oci-archive:${archive}:${name}" >/dev/null
    # --all-platforms: the archive is single-platform; without it ctr 1.6 wants the
    # host's platform in an index and may skip the image.
    ctr --address "$dir/containerd/containerd.sock" -n k8s.io images import \
        --all-platforms --base-name "${name%:*}" "$archive" >/dev/null
    rm -f "$archive"
}
