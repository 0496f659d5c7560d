#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd and, on request,
# kubectl) from the Go module proxy into bin/k8s/<version>/.
#
# envtest's usual installer downloads prebuilt binaries from hosts that are
# not reachable from our build machines, so we compile the same releases from
# source. The builder modules live in hack/tools/ with their own go.mod files
# so that k8s.io/kubernetes never enters the operator's dependency graph.
# A binary is rebuilt only when it is missing (or, for Kubernetes binaries,
# reports another version).
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

# The Kubernetes release the builder module pins, stamped into the binaries
# the way release builds are: unstamped, kube-apiserver reports
# v0.0.0-master, which fails version checks such as the Helm chart's
# kubeVersion.
kube_version=$(cd "$root/hack/tools/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
kube_minor=${kube_version#v1.}
kube_minor=${kube_minor%%.*}
version_ldflags="-X k8s.io/component-base/version.gitVersion=$kube_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kube_minor -X k8s.io/component-base/version.gitTreeState=clean"

build() { # <binary> <module dir> <package>
	local bin=$1 dir=$2 pkg=$3
	if [[ -x "$out_dir/$bin" ]]; then
		# Binaries built before the version stamp report v0.0.0-master.
		if [[ "$bin" != kube-* ]] || "$out_dir/$bin" --version 2>/dev/null | grep -qx "Kubernetes $kube_version"; then
			return
		fi
	fi
	echo "building $bin into $out_dir (first run only; kube-apiserver takes several minutes)" >&2
	(cd "$root/hack/tools/$dir" && go build -trimpath -ldflags="-s $version_ldflags" -o "$out_dir/$bin.tmp" "$pkg")
	mv "$out_dir/$bin.tmp" "$out_dir/$bin"
}

build etcd etcd .
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver
if [[ "$with_kubectl" == kubectl ]]; then
	build kubectl kube k8s.io/kubernetes/cmd/kubectl
fi
