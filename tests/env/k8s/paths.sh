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

# The single node of node-up.sh (built by `k8s-build.sh --node`, same module and version).
KUBELET_BIN="${KVOP_KUBELET:-${K8S_BIN_DIR}/kubelet}"
KUBE_PROXY_BIN="${KVOP_KUBE_PROXY:-${K8S_BIN_DIR}/kube-proxy}"
KCM_BIN="${KVOP_KUBE_CONTROLLER_MANAGER:-${K8S_BIN_DIR}/kube-controller-manager}"
SCHEDULER_BIN="${KVOP_KUBE_SCHEDULER:-${K8S_BIN_DIR}/kube-scheduler}"
# The pause (sandbox) program, compiled from the module's build/pause/linux/pause.c.
PAUSE_BIN="${K8S_BIN_DIR}/pause"
# The name containerd's CRI asks for: imported locally under it, so nothing is pulled.
PAUSE_IMAGE="registry.k8s.io/pause:3.10.1"

# Network of the node: an address on lo (this kernel has no dummy links) that pods reach
# and that is not loopback (the kubelet refuses 127/8 node IPs), the pods' subnet on a
# bridge of its own, and the Services' range (the apiserver's default). One node per
# machine: these are global, so node-up.sh holds ${KVOP_CACHE}/.node.lock.
NODE_IP="${KVOP_NODE_IP:-10.250.0.1}"
NODE_NAME="${KVOP_NODE_NAME:-kvop-node}"
POD_CIDR="${KVOP_POD_CIDR:-10.244.0.0/24}"
SERVICE_CIDR="10.0.0.0/24"
CNI_BRIDGE="kvopcni0"
CNI_BIN_DIR="${KVOP_CNI_BIN_DIR:-/usr/lib/cni}"
# Debian 12's packages: containerd 1.6, runc 1.1, the reference CNI plugins, buildah 1.28.
NODE_APT_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack buildah busybox-static)
