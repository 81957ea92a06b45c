# shellcheck shell=bash
# Sourced by tests/env/k8s-*.sh: versions and cache locations of the test control plane,
# kept in one place so the build script and the start script always agree.
# Every value can be overridden from the environment.

# Versions. K8S_VERSION must match k8s.io/kubernetes in tests/env/k8s/go.mod
# (bump both with tests/env/k8s/gen-replaces.sh).
K8S_VERSION="${KVOP_K8S_VERSION:-v1.34.3}"
HELM_VERSION="${KVOP_HELM_VERSION:-v3.22.0}"

# Built binaries are cached outside the repository (never committed) and keyed by version,
# so a warm run skips the 10-25 min build.
KVOP_CACHE="${KVOP_CACHE:-${HOME}/.cache/kvop-test}"
K8S_BIN_DIR="${KVOP_K8S_BIN_DIR:-${KVOP_CACHE}/k8s-${K8S_VERSION}/bin}"
HELM_BIN_DIR="${KVOP_HELM_BIN_DIR:-${KVOP_CACHE}/helm-${HELM_VERSION}/bin}"

KUBE_APISERVER_BIN="${KVOP_KUBE_APISERVER:-${K8S_BIN_DIR}/kube-apiserver}"
ETCD_BIN="${KVOP_ETCD:-${K8S_BIN_DIR}/etcd}"
HELM_BIN="${KVOP_HELM:-${HELM_BIN_DIR}/helm}"
