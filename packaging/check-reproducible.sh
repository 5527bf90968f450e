#!/bin/sh
# check-reproducible.sh: build the release binaries and .debs twice and
# compare sha256. The second build uses an empty Go build cache, so it
# really compiles everything again rather than copying cached objects.
#
# Environment: VERSION, COMMIT, GO, NFPM, SOURCE_DATE_EPOCH, PKG_DIST.
set -eu
here=$(dirname "$0")
. "$here/lib.sh"
: "${PKG_DIST:=dist}"
: "${NFPM:?NFPM must be set}"
[ -f packaging/config.toml ] || die "packaging/config.toml is missing: it is the shipped conffile"

a="$PKG_DIST/repro-a"
b="$PKG_DIST/repro-b"
rm -rf "$a" "$b"
cache=$(mktemp -d "${TMPDIR:-/tmp}/edge-agent-gocache.XXXXXX")
trap 'chmod -R u+w "$cache" 2>/dev/null; rm -rf "$cache"' EXIT INT TERM

start=$(date +%s)
"$here/build.sh" "$a"
"$here/deb.sh" "$a" "$a" >/dev/null
echo "first build: $(($(date +%s) - start))s" >&2
start=$(date +%s)
GOCACHE=$cache "$here/build.sh" "$b"
"$here/deb.sh" "$b" "$b" >/dev/null
echo "second build (empty GOCACHE): $(($(date +%s) - start))s" >&2

(cd "$a" && sha256sum -- *) >"$PKG_DIST/repro-a.sha256"
(cd "$b" && sha256sum -- *) >"$PKG_DIST/repro-b.sha256"
cat "$PKG_DIST/repro-a.sha256"
n=$(wc -l <"$PKG_DIST/repro-a.sha256")
[ "$n" -eq 6 ] || die "expected 3 binaries and 3 .debs, found $n files in $a"
if ! cmp -s "$PKG_DIST/repro-a.sha256" "$PKG_DIST/repro-b.sha256"; then
	diff "$PKG_DIST/repro-a.sha256" "$PKG_DIST/repro-b.sha256" >&2 || true
	die "builds of the same commit differ (above); check for embedded paths, times or map-order output"
fi
echo "check-reproducible: $n files byte-identical across two builds"
