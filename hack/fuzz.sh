#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded time each (go test can
# fuzz only one target at a time). New inputs that fail are written to the
# package's testdata/fuzz and become regression tests.
#
# Usage: hack/fuzz.sh [fuzztime, default 10s]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}

grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
	pkg="./$(dirname "${file#./}")"
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		echo "--- fuzzing $pkg $target for $fuzztime"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
	done
done
