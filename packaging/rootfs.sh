#!/bin/sh
# rootfs.sh TARBALL ARCH SUITE: makes TARBALL, a clean minbase Debian root
# for the packaging tests, with debootstrap from the mirror this machine's
# apt uses (or PKG_DEBIAN_MIRROR), unless it exists already. Prints nothing
# when it exists.
set -eu
here=$(dirname "$0")
. "$here/lib.sh"
[ $# -eq 3 ] || die "usage: rootfs.sh TARBALL ARCH SUITE"
tarball=$1
arch=$2
suite=$3
[ -s "$tarball" ] && exit 0
need debootstrap debootstrap
mirror=${PKG_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
		/^URIs:/ { uri = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "'"$suite"'") { print uri; exit } }')
fi
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list 2>/dev/null | awk '$1 == "deb" && $3 == "'"$suite"'" { print $2; exit }')
fi
mirror=${mirror:-http://deb.debian.org/debian}
echo "creating $tarball from $mirror (once; later runs reuse it)" >&2
mkdir -p "$(dirname "$tarball")"
boot=$(mktemp -d "${TMPDIR:-/tmp}/edge-agent-debootstrap.XXXXXX")
trap 'rm -rf "$boot"' EXIT INT TERM
debootstrap --variant=minbase --arch="$arch" "$suite" "$boot/root" "$mirror" >"$boot/log" 2>&1 || {
	tail -20 "$boot/log" >&2
	die "debootstrap $suite from $mirror failed (log above); set PKG_DEBIAN_MIRROR to a reachable mirror"
}
rm -rf "$boot"/root/var/cache/apt/archives/*.deb "$boot"/root/var/lib/apt/lists/*
# Unique temporary name: two test runs may build it at once.
tar -C "$boot/root" -czf "$tarball.$$" .
mv "$tarball.$$" "$tarball"
