#!/bin/sh
# ipk.sh BINDIR OUTDIR: one OpenWrt .ipk per line of ipk_targets (lib.sh)
# from the small binaries build.sh wrote to BINDIR, named
# OUTDIR/edge-agent_VERSION_OPKGARCH.ipk.
#
# Environment: VERSION (selects the binaries), NFPM (the pinned nfpm),
# SOURCE_DATE_EPOCH, PKG_MAINTAINER. Runs from the repository root.
set -eu
here=$(dirname "$0")
. "$here/lib.sh"

[ $# -ge 2 ] || die "usage: ipk.sh BINDIR OUTDIR"
bindir=$1
out=$2
: "${VERSION:?VERSION must be set}"
: "${NFPM:?NFPM must point at the pinned nfpm binary (make ipk builds it)}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set (the commit time)}"
# opkg compares versions as Debian does; the same mapping keeps them ordered.
PKG_IPK_VERSION=$(deb_version "$VERSION")
PKG_MAINTAINER=${PKG_MAINTAINER:-edge-agent maintainers <maintainers@edge-agent.invalid>}
export PKG_IPK_VERSION PKG_MAINTAINER SOURCE_DATE_EPOCH
[ -f packaging/nfpm-ipk.yaml ] || die "run ipk.sh from the repository root"

mkdir -p "$out"
ipk_targets | while read -r dist opkgarch; do
	bin="$bindir/edge-agent_${VERSION}_linux_${dist}"
	[ -x "$bin" ] || die "$bin is missing: run make dist first"
	ipk="$out/edge-agent_${PKG_IPK_VERSION}_${opkgarch}.ipk"
	rm -f "$ipk"
	PKG_IPK_ARCH=$opkgarch PKG_BINARY=$bin \
		"$NFPM" package --config packaging/nfpm-ipk.yaml --packager ipk --target "$ipk" >&2
	echo "$ipk"
done
