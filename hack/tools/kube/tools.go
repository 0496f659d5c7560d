//go:build tools

// Package tools pins the packages behind the kube-apiserver and kubectl
// commands so that `go mod tidy` keeps their requirements.
package tools

import (
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
)
