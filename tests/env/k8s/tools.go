//go:build tools

// Package tools pins the programs the kvop test environment builds from source:
// kube-apiserver and, for the test node, kubelet, kube-proxy, kube-controller-manager and
// kube-scheduler (k8s.io/kubernetes), and etcd (go.etcd.io/etcd/server/v3).
// The blank imports only exist so that `go mod tidy` keeps these modules (and their
// full dependency graphs) in go.mod/go.sum; nothing ever compiles this file.
// tests/env/k8s-build.sh runs `go build` on the main packages.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
