#!/bin/sh
# apt-repo.sh: a signed apt repository for edge-agent, with staged rollout
# through apt's own phasing. See docs/distribution.md.
#
#   apt-repo.sh publish REPO DEB...        add packages, rebuild the indexes, sign
#   apt-repo.sh phase REPO VERSION PERCENT roll VERSION out to PERCENT % of devices
#   apt-repo.sh export-key REPO            write REPO/edge-agent-archive-keyring.gpg
#
# REPO is a directory to serve as is over HTTPS (or file:), laid out as
# Debian's: pool/main/e/edge-agent/*.deb and dists/SUITE/{InRelease,Release,
# Release.gpg,main/binary-ARCH/Packages{,.gz}}. Nothing is fetched.
#
# Environment:
#   APT_REPO_KEY    the OpenPGP key (fingerprint or user id) that signs the
#                   Release file; required. Its secret key must be in gpg's
#                   keyring (GNUPGHOME, default ~/.gnupg).
#   APT_REPO_SUITE  default "stable"; APT_REPO_ORIGIN default "edge-agent".
#
# Phasing: apt >= 2.1.16 reads Phased-Update-Percentage from a package's
# stanza and upgrades a device when a hash of its /etc/machine-id, the
# package and the version falls under the percentage. The percentage of each
# version lives in REPO/conf/phasing ("VERSION PERCENT" lines); this script
# writes the field into the stanzas itself (apt-ftparchive does not), so
# every rebuild keeps it. Fresh installs are not phased.
set -eu
here=$(dirname "$0")
. "$here/lib.sh"

usage() { die "usage: apt-repo.sh publish REPO DEB... | phase REPO VERSION PERCENT | export-key REPO"; }
[ $# -ge 2 ] || usage
cmd=$1
repo=$2
shift 2
suite=${APT_REPO_SUITE:-stable}
origin=${APT_REPO_ORIGIN:-edge-agent}
need apt-ftparchive apt-utils
need gpg gpg

require_key() {
	[ -n "${APT_REPO_KEY:-}" ] || die "APT_REPO_KEY is not set: name the OpenPGP key that signs the repository (gpg --list-secret-keys)"
	gpg --batch --list-secret-keys "$APT_REPO_KEY" >/dev/null 2>&1 ||
		die "no secret key '$APT_REPO_KEY' in gpg's keyring (GNUPGHOME=${GNUPGHOME:-~/.gnupg}): import it, or generate one (docs/distribution.md)"
}

# rebuild writes every index from the pool and the phasing file, then signs.
rebuild() {
	require_key
	mkdir -p "$repo/conf" "$repo/pool/main/e/edge-agent"
	touch "$repo/conf/phasing"
	dists="$repo/dists/$suite"
	rm -rf "$dists"
	archs=$(for d in "$repo"/pool/main/e/edge-agent/*.deb; do
		[ -f "$d" ] && dpkg-deb -f "$d" Architecture
	done | sort -u)
	[ -n "$archs" ] || die "$repo/pool has no .deb: publish one first"
	for arch in $archs; do
		dir="$dists/main/binary-$arch"
		mkdir -p "$dir"
		(cd "$repo" && apt-ftparchive --arch "$arch" packages pool) |
			awk -v phasing="$repo/conf/phasing" '
				BEGIN { while ((getline line < phasing) > 0) { split(line, f, " "); if (f[1] != "") pct[f[1]] = f[2] } }
				/^Version: / { v = $2 }
				/^$/ { if (v in pct) print "Phased-Update-Percentage: " pct[v]; v = "" }
				{ print }
				END { if (v in pct) print "Phased-Update-Percentage: " pct[v] }' >"$dir/Packages"
		gzip -9nk "$dir/Packages"
	done
	arch_list=$(echo $archs)
	apt-ftparchive \
		-o APT::FTPArchive::Release::Origin="$origin" \
		-o APT::FTPArchive::Release::Label="$origin" \
		-o APT::FTPArchive::Release::Suite="$suite" \
		-o APT::FTPArchive::Release::Codename="$suite" \
		-o APT::FTPArchive::Release::Components=main \
		-o APT::FTPArchive::Release::Architectures="$arch_list" \
		release "$dists" >"$repo/Release.tmp"
	mv "$repo/Release.tmp" "$dists/Release"
	gpg --batch --yes --local-user "$APT_REPO_KEY" --digest-algo SHA512 --clearsign -o "$dists/InRelease" "$dists/Release"
	gpg --batch --yes --local-user "$APT_REPO_KEY" --digest-algo SHA512 -abs -o "$dists/Release.gpg" "$dists/Release"
}

case $cmd in
publish)
	[ $# -ge 1 ] || usage
	mkdir -p "$repo/pool/main/e/edge-agent"
	for deb in "$@"; do
		[ "$(dpkg-deb -f "$deb" Package 2>/dev/null)" = edge-agent ] || die "$deb is not an edge-agent .deb"
		cp "$deb" "$repo/pool/main/e/edge-agent/"
		echo "published $(basename "$deb")"
	done
	rebuild
	;;
phase)
	[ $# -eq 2 ] || usage
	version=$1
	pct=$2
	case $pct in '' | *[!0-9]*) die "PERCENT must be an integer from 0 to 100, not '$pct'" ;; esac
	[ "$pct" -le 100 ] || die "PERCENT must be an integer from 0 to 100, not '$pct'"
	found=no
	for d in "$repo"/pool/main/e/edge-agent/*.deb; do
		[ -f "$d" ] && [ "$(dpkg-deb -f "$d" Version)" = "$version" ] && found=yes
	done
	[ $found = yes ] || die "version $version is not in $repo/pool: publish it first"
	mkdir -p "$repo/conf"
	touch "$repo/conf/phasing"
	grep -v "^$version " "$repo/conf/phasing" >"$repo/conf/phasing.tmp" || true
	echo "$version $pct" >>"$repo/conf/phasing.tmp"
	mv "$repo/conf/phasing.tmp" "$repo/conf/phasing"
	rebuild
	echo "edge-agent $version: Phased-Update-Percentage $pct"
	;;
export-key)
	require_key
	gpg --batch --yes --export "$APT_REPO_KEY" >"$repo/edge-agent-archive-keyring.gpg"
	echo "$repo/edge-agent-archive-keyring.gpg"
	;;
*) usage ;;
esac
