#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd and, on request,
# kubectl) from the Go module proxy into bin/k8s/<version>/.
#
# envtest's usual installer downloads prebuilt binaries from hosts that are
# not reachable from our build machines, so we compile the same releases from
# source. The builder modules live in hack/tools/ with their own go.mod files
# so that k8s.io/kubernetes never enters the operator's dependency graph.
# A binary is rebuilt only when it is missing.
#
# Usage: hack/build-control-plane.sh <out-dir> [kubectl]
set -euo pipefail

out_dir=${1:?usage: $0 <out-dir> [kubectl]}
with_kubectl=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)

# The builder modules were verified with the machine's own Go release; the
# operator itself uses a newer toolchain (see go.mod), which these builds do
# not need.
export GOTOOLCHAIN=${CONTROL_PLANE_GOTOOLCHAIN:-local}
export CGO_ENABLED=0

build() { # <binary> <module dir> <package>
	local bin=$1 dir=$2 pkg=$3
	if [[ -x "$out_dir/$bin" ]]; then
		return
	fi
	echo "building $bin into $out_dir (first run only; kube-apiserver takes several minutes)" >&2
	(cd "$root/hack/tools/$dir" && go build -trimpath -ldflags=-s -o "$out_dir/$bin.tmp" "$pkg")
	mv "$out_dir/$bin.tmp" "$out_dir/$bin"
}

build etcd etcd .
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver
if [[ "$with_kubectl" == kubectl ]]; then
	build kubectl kube k8s.io/kubernetes/cmd/kubectl
fi
