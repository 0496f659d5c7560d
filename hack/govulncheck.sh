#!/usr/bin/env bash
# Runs govulncheck against an offline copy of the Go vulnerability database.
#
# The database's usual host cannot be reached from our build machines, but
# its source is itself a Go module (golang.org/x/vulndb), served by the module
# proxy. Its cmd/gendb turns it into the file database that
# `govulncheck -db file://...` reads. gendb opens its input as a git
# repository, so the module is copied and committed once. Everything is
# cached under bin/ and rebuilt only when a pinned version changes.
#
# Usage: hack/govulncheck.sh <bin-dir>
set -euo pipefail

bin_dir=${1:?usage: $0 <bin-dir>}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$bin_dir"
bin_dir=$(cd "$bin_dir" && pwd)

GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}

govulncheck="$bin_dir/govulncheck-$GOVULNCHECK_VERSION"
if [[ ! -x "$govulncheck" ]]; then
	GOBIN="$bin_dir/tmp-gv" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
	mv "$bin_dir/tmp-gv/govulncheck" "$govulncheck" && rmdir "$bin_dir/tmp-gv"
fi

db="$bin_dir/vulndb-$VULNDB_VERSION"
if [[ ! -f "$db/index/db.json" ]]; then
	echo "building the offline vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION" >&2
	src=$(cd "$root" && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	work=$(mktemp -d)
	trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
	cp -r "$src" "$work/vulndb" && chmod -R u+w "$work/vulndb"
	(
		cd "$work/vulndb"
		git init -q && git add -A >/dev/null
		git -c user.name=ci -c user.email=ci@localhost commit -qm "vulndb $VULNDB_VERSION"
		rm -rf "$db.tmp"
		go run ./cmd/gendb -repo . -out "$db.tmp"
	)
	rm -rf "$db" && mv "$db.tmp" "$db"
fi

cd "$root"
"$govulncheck" -db "file://$db" ./...
