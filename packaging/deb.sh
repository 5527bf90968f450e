#!/bin/sh
# deb.sh BINDIR OUTDIR [DISTARCH...]: one .deb per architecture from the
# binaries build.sh wrote to BINDIR, named OUTDIR/edge-agent_DEBVERSION_DEBARCH.deb.
#
# Environment: VERSION (selects the binaries), NFPM (path to the pinned nfpm),
# SOURCE_DATE_EPOCH (every timestamp in the package and the changelog),
# optional PKG_DEB_VERSION (defaults to deb_version VERSION; the upgrade test
# overrides it), PKG_CONFIG (the default config's source, default
# packaging/config.toml), PKG_MAINTAINER.
# Runs from the repository root: nfpm.yaml names sources relative to it.
set -eu
here=$(dirname "$0")
. "$here/lib.sh"

[ $# -ge 2 ] || die "usage: deb.sh BINDIR OUTDIR [arm64|armv6|amd64...]"
bindir=$1
out=$2
shift 2
: "${VERSION:?VERSION must be set}"
: "${NFPM:?NFPM must point at the pinned nfpm binary (make deb builds it)}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set (the commit time)}"
want=${*:-arm64 armv6 amd64}
PKG_DEB_VERSION=${PKG_DEB_VERSION:-$(deb_version "$VERSION")}
PKG_CONFIG=${PKG_CONFIG:-packaging/config.toml}
PKG_MAINTAINER=${PKG_MAINTAINER:-edge-agent maintainers <maintainers@edge-agent.invalid>}
export PKG_DEB_VERSION PKG_MAINTAINER SOURCE_DATE_EPOCH

[ -f "$PKG_CONFIG" ] || die "$PKG_CONFIG is missing: it is the shipped default config; generate it with 'edge-agent config default > packaging/config.toml'"
[ -f packaging/nfpm.yaml ] || die "run deb.sh from the repository root"

mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM

# The changelog: packaging/changelog, plus a snapshot entry on top when the
# version being built is not its latest entry (builds between releases).
# Dated at SOURCE_DATE_EPOCH and gzip -9n, as lintian and reproducibility want.
top=$(sed -n '1s/^edge-agent (\([^)]*\)).*/\1/p' packaging/changelog)
{
	if [ "$top" != "$PKG_DEB_VERSION" ]; then
		date=$(LC_ALL=C TZ=UTC date -R -d "@$SOURCE_DATE_EPOCH")
		printf 'edge-agent (%s) unstable; urgency=medium\n\n' "$PKG_DEB_VERSION"
		printf '  * Snapshot build of commit %s.\n\n' "${COMMIT:-unknown}"
		printf ' -- %s  %s\n\n' "$PKG_MAINTAINER" "$date"
	fi
	cat packaging/changelog
} | gzip -9n >"$stage/changelog.gz"
touch -d "@$SOURCE_DATE_EPOCH" "$stage/changelog.gz"

# The man page and shell completions, generated from the command tree by a
# binary for this machine stamped with the same version, built with the
# generators (-tags docgen) that the shipped binary leaves out.
"${GO:-go}" build -tags docgen -trimpath -buildvcs=false -ldflags "-X main.version=$VERSION -X main.commit=${COMMIT:-unknown}" \
	-o "$stage/edge-agent-host" ./cmd/edge-agent
"$stage/edge-agent-host" man | gzip -9n >"$stage/edge-agent.1.gz"
for sh in bash zsh fish; do
	"$stage/edge-agent-host" completion "$sh" >"$stage/edge-agent.$sh"
done
touch -d "@$SOURCE_DATE_EPOCH" "$stage"/edge-agent.1.gz "$stage"/edge-agent.bash "$stage"/edge-agent.zsh "$stage"/edge-agent.fish

# nfpm.yaml reads the default config from packaging/config.toml; point it at
# PKG_CONFIG through a rewritten copy of the config when it differs.
cfg=packaging/nfpm.yaml
if [ "$PKG_CONFIG" != packaging/config.toml ]; then
	cfg=$stage/nfpm.yaml
	sed "s|src: packaging/config.toml|src: $PKG_CONFIG|" packaging/nfpm.yaml >"$cfg"
fi

targets | while read -r dist goarch goarm debarch; do
	case " $want " in *" $dist "*) ;; *) continue ;; esac
	bin="$bindir/edge-agent_${VERSION}_linux_${dist}"
	[ -x "$bin" ] || die "$bin is missing: run make dist first"
	deb="$out/edge-agent_${PKG_DEB_VERSION}_${debarch}.deb"
	rm -f "$deb"
	PKG_DEB_ARCH=$debarch PKG_BINARY=$bin PKG_STAGE=$stage \
		"$NFPM" package --config "$cfg" --packager deb --target "$deb" >&2
	echo "$deb"
done
