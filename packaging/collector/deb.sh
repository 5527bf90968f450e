#!/bin/sh
# collector/deb.sh OUTDIR [DISTARCH...]: build edge-collector for each
# architecture (static, stripped, reproducible like build.sh) and package it
# as OUTDIR/edge-collector_DEBVERSION_DEBARCH.deb with the pinned nfpm.
# Environment: as packaging/deb.sh. Runs from the repository root.
set -eu
here=$(dirname "$0")/..
. "$here/lib.sh"

[ $# -ge 1 ] || die "usage: collector/deb.sh OUTDIR [arm64|armv6|amd64...]"
out=$1
shift
: "${VERSION:?VERSION must be set}"
: "${COMMIT:?COMMIT must be set}"
: "${NFPM:?NFPM must point at the pinned nfpm binary}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set (the commit time)}"
GO=${GO:-go}
want=${*:-arm64 armv6 amd64}
PKG_DEB_VERSION=${PKG_DEB_VERSION:-$(deb_version "$VERSION")}
PKG_MAINTAINER=${PKG_MAINTAINER:-edge-agent maintainers <maintainers@edge-agent.invalid>}
export PKG_DEB_VERSION PKG_MAINTAINER SOURCE_DATE_EPOCH

mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM
{
	date=$(LC_ALL=C TZ=UTC date -R -d "@$SOURCE_DATE_EPOCH")
	printf 'edge-collector (%s) unstable; urgency=medium\n\n' "$PKG_DEB_VERSION"
	printf '  * Build of commit %s; see the edge-agent changelog.\n\n' "$COMMIT"
	printf ' -- %s  %s\n' "$PKG_MAINTAINER" "$date"
} | gzip -9n >"$stage/changelog.gz"
touch -d "@$SOURCE_DATE_EPOCH" "$stage/changelog.gz"

targets | while read -r dist goarch goarm debarch; do
	case " $want " in *" $dist "*) ;; *) continue ;; esac
	bin="$out/edge-collector_${VERSION}_linux_${dist}"
	[ "$goarm" = - ] && goarm=
	echo "build $bin" >&2
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm GOAMD64=v1 GOARM64=v8.0 GOFLAGS= \
		"$GO" build -trimpath -buildvcs=false -tags "${TAGS:-nethttpomithttp2}" \
		-ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
		-o "$bin" ./cmd/edge-collector
	deb="$out/edge-collector_${PKG_DEB_VERSION}_${debarch}.deb"
	rm -f "$deb"
	PKG_DEB_ARCH=$debarch PKG_BINARY=$bin PKG_STAGE=$stage \
		"$NFPM" package --config packaging/collector/nfpm.yaml --packager deb --target "$deb" >&2
	echo "$deb"
done
