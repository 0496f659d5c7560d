#!/usr/bin/env bash
# Checks the alert rules of config/alerts with promtool and runs their unit
# tests (test/alerts/*_test.yaml). The rules are taken from what kustomize
# builds, so what is tested is what gets installed: promqlutil
# (hack/tools/prometheus) copies the PrometheusRule's rule groups into a
# plain rule file, the format promtool reads.
#
# Usage: hack/test-alerts.sh <promtool> <kustomize> <promqlutil>
set -euo pipefail

promtool=${1:?usage: $0 <promtool> <kustomize> <promqlutil>}
kustomize=${2:?usage: $0 <promtool> <kustomize> <promqlutil>}
promqlutil=${3:?usage: $0 <promtool> <kustomize> <promqlutil>}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$kustomize" build "$root/config/alerts" >"$work/objects.yaml"
"$promqlutil" rulefile <"$work/objects.yaml" >"$work/uredis-backup-operator-rules.yaml"
cp "$root"/test/alerts/*_test.yaml "$work/"

"$promtool" check rules "$work/uredis-backup-operator-rules.yaml"
"$promtool" test rules "$work"/*_test.yaml
