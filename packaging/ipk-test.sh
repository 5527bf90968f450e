#!/bin/sh
# ipk-test.sh: checks on the OpenWrt packages and the small builds behind
# `make test-ipk`. Run from the repository root after `make ipk`.
#
#  1. size: each small (no libp2p) MIPS binary is at most SMALL_BUDGET bytes
#     stripped (10 MiB: these gateways have a few MB of free flash);
#  2. control: each .ipk names its opkg architecture exactly (mips_24kc,
#     mipsel_24kc, never nfpm's default "mipsel"), lists the config as a
#     conffile, carries the procd init script, the sysupgrade keep list and
#     the maintainer scripts, and holds the binary built for it.
#
# Environment: VERSION, PKG_DIST.
set -eu
here=$(dirname "$0")
. "$here/lib.sh"
: "${VERSION:?VERSION must be set}"
: "${PKG_DIST:=dist}"
SMALL_BUDGET=${SMALL_BUDGET:-10485760}
ver=$(deb_version "$VERSION")
work=$(mktemp -d "${TMPDIR:-/tmp}/edge-agent-ipk.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

ipk_targets | while read -r dist opkgarch; do
	bin="$PKG_DIST/edge-agent_${VERSION}_linux_${dist}"
	[ -x "$bin" ] || die "$bin missing: run make dist"
	size=$(stat -c %s "$bin")
	if [ "$size" -gt "$SMALL_BUDGET" ]; then
		echo "FAIL: $dist small binary is $size bytes, over the $SMALL_BUDGET-byte budget" >&2
		exit 1
	fi
	echo "$dist: small binary $size bytes ($(((SMALL_BUDGET - size) / 1024)) KiB under the 10 MiB budget)"

	ipk="$PKG_DIST/edge-agent_${ver}_${opkgarch}.ipk"
	[ -f "$ipk" ] || die "$ipk missing: run make ipk"
	d="$work/$opkgarch"
	mkdir -p "$d/control" "$d/data"
	tar -xzf "$ipk" -C "$d"
	tar -xzf "$d/control.tar.gz" -C "$d/control"
	tar -xzf "$d/data.tar.gz" -C "$d/data"
	arch=$(sed -n 's/^Architecture: //p' "$d/control/control")
	[ "$arch" = "$opkgarch" ] || { echo "FAIL: $ipk Architecture is '$arch', want '$opkgarch'" >&2; exit 1; }
	grep -qx /etc/edge-agent/config.toml "$d/control/conffiles" || { echo "FAIL: $ipk does not list /etc/edge-agent/config.toml in conffiles" >&2; exit 1; }
	for f in postinst prerm; do
		[ -x "$d/control/$f" ] || { echo "FAIL: $ipk has no executable $f" >&2; exit 1; }
	done
	for f in usr/bin/edge-agent etc/init.d/edge-agent lib/upgrade/keep.d/edge-agent etc/edge-agent/config.toml; do
		[ -e "$d/data/$f" ] || { echo "FAIL: $ipk has no /$f" >&2; exit 1; }
	done
	[ -x "$d/data/etc/init.d/edge-agent" ] || { echo "FAIL: $ipk: /etc/init.d/edge-agent is not executable" >&2; exit 1; }
	head -1 "$d/data/etc/init.d/edge-agent" | grep -qx '#!/bin/sh /etc/rc.common' || { echo "FAIL: $ipk: init script is not an rc.common script" >&2; exit 1; }
	grep -q '^USE_PROCD=1' "$d/data/etc/init.d/edge-agent" || { echo "FAIL: $ipk: init script does not use procd" >&2; exit 1; }
	cmp -s "$d/data/usr/bin/edge-agent" "$bin" || { echo "FAIL: $ipk does not carry $bin" >&2; exit 1; }
	echo "$opkgarch: $(stat -c %s "$ipk") bytes; control, conffiles, procd init, keep.d ok"
done
echo "ipk-test: ok"
