# lib.sh: shell helpers shared by the packaging scripts. Sourced, not run.
# POSIX sh; every script that sources it runs with set -eu.

# die MESSAGE... prints to stderr and exits 1.
die() {
	echo "packaging: $*" >&2
	exit 1
}

# need CMD DEBPKG makes sure CMD is on PATH. When it is missing it tries to
# apt-get install DEBPKG (as root) and fails naming the package otherwise:
# a missing tool is a test failure, never a skip.
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "packaging: $1 missing, installing Debian package $2" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2 ||
			die "apt-get install $2 failed; install the Debian package '$2' to get $1"
	fi
	command -v "$1" >/dev/null 2>&1 ||
		die "$1 not found: install the Debian package '$2' (apt-get install -y $2)"
}

# deb_version VERSION maps a git-describe style version to a Debian native
# version: v0.1.0 -> 0.1.0, v0.1.0-3-gabc -> 0.1.0+3+gabc (sorts after
# 0.1.0, as the commit does), v0.2.0-rc1 -> 0.2.0~rc1 (sorts before 0.2.0);
# anything that is not a dotted release (dev, a bare hash such as
# 6573d95-dirty) -> 0.0.0~6573d95+dirty, which sorts before every release.
deb_version() {
	case $1 in
	v[0-9]*.* | [0-9]*.*)
		echo "$1" | sed -E -e 's/^v//' -e 's/-(alpha|beta|rc)/~\1/' -e 's/-/+/g' -e 's/_/./g'
		;;
	*)
		echo "0.0.0~$1" | sed -e 's/-/+/g' -e 's/_/./g'
		;;
	esac
}

# builds: every release binary as "distarch goarch goarm gomips flavour"
# lines. A full build links everything; a small one (OpenWrt gateways with
# 64-128 MB of RAM and a few MB of flash) leaves out libp2p and Prometheus:
# see small_tags and docs/openwrt.md.
builds() {
	cat <<'T'
arm64 arm64 - - full
armv6 arm 6 - full
armv7 arm 7 - full
amd64 amd64 - - full
mips mips - softfloat small
mipsle mipsle - softfloat small
T
}

# flavour_tags FLAVOUR: the build tags of a flavour. TAGS (the Makefile's
# release tags) applies to both.
flavour_tags() {
	base=${TAGS:-nethttpomithttp2}
	case $1 in
	full) echo "$base" ;;
	small) echo "$base${base:+,}nop2p,nometrics,nocamera,notpm,nosx127x,noobd,noedbatch" ;;
	*) die "unknown build flavour $1" ;;
	esac
}

# flavour_gcflags FLAVOUR: compiler flags of a flavour. Small builds are
# compiled without inlining (-l): about 1 MB less on mipsle, for some CPU
# (docs/benchmarks.md has both figures), which these gateways' few records a
# second can spare and their flash cannot.
flavour_gcflags() {
	case $1 in
	small) echo "all=-l" ;;
	*) echo "" ;;
	esac
}

# ipk_targets: the OpenWrt packages as "distarch opkgarch" lines. The
# architecture is named explicitly: nfpm's default for mipsle is "mipsel",
# which opkg on RAK and Dragino gateways refuses.
ipk_targets() {
	cat <<'T'
mips mips_24kc
mipsle mipsel_24kc
T
}

# targets: the .deb matrix as "distarch goarch goarm debarch" lines.
# armv6 is Debian armhf's baseline on the Raspberry Pi Zero/1 and runs on
# every later ARM board.
targets() {
	cat <<'T'
arm64 arm64 - arm64
armv6 arm 6 armhf
amd64 amd64 - amd64
T
}
