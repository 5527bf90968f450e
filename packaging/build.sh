#!/bin/sh
# build.sh OUTDIR [DISTARCH...]: static, stripped, reproducible release
# binaries OUTDIR/edge-agent_VERSION_linux_DISTARCH for the release matrix
# (every line of `builds` in lib.sh by default: arm64, armv6, armv7, amd64,
# and the small mips and mipsle builds for OpenWrt).
#
# Environment: VERSION, COMMIT (stamped into main.version/main.commit), GO,
# TAGS (build tags; default nethttpomithttp2, as the Makefile's).
# Reproducible by construction: -trimpath drops local paths, -buildvcs=false
# drops VCS state that differs between a checkout and a tarball, and the
# stamped values come from the caller, not from the clock.
set -eu
here=$(dirname "$0")
. "$here/lib.sh"

[ $# -ge 1 ] || die "usage: build.sh OUTDIR [arm64|armv6|armv7|amd64|mips|mipsle...]"
out=$1
shift
: "${VERSION:?VERSION must be set}"
: "${COMMIT:?COMMIT must be set}"
GO=${GO:-go}
want=${*:-$(builds | awk '{ printf "%s ", $1 }')}

mkdir -p "$out"
builds | while read -r dist goarch goarm gomips flavour; do
	case " $want " in *" $dist "*) ;; *) continue ;; esac
	bin="$out/edge-agent_${VERSION}_linux_${dist}"
	[ "$goarm" = - ] && goarm=
	[ "$gomips" = - ] && gomips=
	tags=$(flavour_tags "$flavour")
	echo "build $bin ($flavour: $tags)" >&2
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm GOMIPS=$gomips GOAMD64=v1 GOARM64=v8.0 GOFLAGS= \
		"$GO" build -trimpath -buildvcs=false -tags "$tags" -gcflags "$(flavour_gcflags "$flavour")" \
		-ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
		-o "$bin" ./cmd/edge-agent
done
