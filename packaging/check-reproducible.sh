#!/bin/sh
# check-reproducible.sh: two builds of the same commit must be byte-identical.
#
# Exports HEAD twice (git archive) into two different directories and builds
# the release binaries and .debs in each, the second time with an empty Go
# build cache. Different paths check -trimpath; the empty cache makes the
# second build compile everything again instead of copying cached objects.
# Uncommitted changes are not part of either build, on purpose.
#
# Environment: VERSION, COMMIT, GO, NFPM, SOURCE_DATE_EPOCH, PKG_DIST.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
: "${PKG_DIST:=dist}"
: "${NFPM:?NFPM must be set}"
: "${VERSION:?VERSION must be set}"
: "${COMMIT:?COMMIT must be set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
command -v git >/dev/null 2>&1 || die "check-reproducible needs git (install the Debian package 'git')"
rev=$(git rev-parse HEAD) || die "check-reproducible builds a commit: run it in a git checkout"

work=$(mktemp -d "${TMPDIR:-/tmp}/edge-agent-repro.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT INT TERM
mkdir -p "$PKG_DIST"
dist=$(cd "$PKG_DIST" && pwd)

# build NAME [env...]: export HEAD to $work/NAME-src, build there into
# $work/NAME-out, write the sha256 list to $dist/repro-NAME.sha256.
build() {
	name=$1
	shift
	src="$work/$name-src"
	out="$work/$name-out"
	mkdir -p "$src" "$out"
	git archive "$rev" | tar -x -C "$src"
	start=$(date +%s)
	(cd "$src" && env "$@" packaging/build.sh "$out" && env "$@" packaging/deb.sh "$out" "$out" >/dev/null)
	echo "build $name: $(($(date +%s) - start))s" >&2
	(cd "$out" && sha256sum -- *) >"$dist/repro-$name.sha256"
}
build a "GOCACHE=$("${GO:-go}" env GOCACHE)"
build b "GOCACHE=$work/gocache"

cat "$dist/repro-a.sha256"
n=$(wc -l <"$dist/repro-a.sha256")
[ "$n" -eq 6 ] || die "expected 3 binaries and 3 .debs, found $n files"
if ! cmp -s "$dist/repro-a.sha256" "$dist/repro-b.sha256"; then
	diff "$dist/repro-a.sha256" "$dist/repro-b.sha256" >&2 || true
	die "two builds of $rev differ (above): look for embedded paths, times or unordered output"
fi
echo "check-reproducible: $n files byte-identical across two builds of $rev"
