#!/bin/sh
# qemu-smoke.sh: run the ARM and MIPS release binaries under qemu user-mode
# emulation: version, config default, keys init, and a demo whose records
# the native binary then verifies. Prints the peak RSS of each demo. The
# MIPS builds are the small ones (no libp2p): their version must say what
# they leave out, and they must accept the OpenWrt package's config.
#
# qemu user mode runs the binaries directly (qemu-aarch64-static BIN), so no
# binfmt_misc registration is needed. RSS under qemu is the emulator's: the
# guest's memory plus qemu's translation cache, an upper bound for a board.
#
# Environment: VERSION, PKG_DIST, BIN (native binary is bin/$BIN).
set -eu
here=$(dirname "$0")
. "$here/lib.sh"
: "${VERSION:?VERSION must be set}"
: "${PKG_DIST:=dist}"
native="bin/${BIN:-edge-agent}"
[ -x "$native" ] || die "$native missing: run make build"
need qemu-aarch64-static qemu-user-static
need qemu-arm-static qemu-user-static
need qemu-mips-static qemu-user-static
need qemu-mipsel-static qemu-user-static
[ -x /usr/bin/time ] || need time time
[ -x /usr/bin/time ] || die "/usr/bin/time not found: install the Debian package 'time'"

work=$(mktemp -d "${TMPDIR:-/tmp}/edge-agent-qemu.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

for pair in arm64:qemu-aarch64-static armv6:qemu-arm-static mips:qemu-mips-static mipsle:qemu-mipsel-static; do
	dist=${pair%%:*}
	qemu=${pair#*:}
	bin="$PKG_DIST/edge-agent_${VERSION}_linux_${dist}"
	[ -x "$bin" ] || die "$bin missing: run make dist"
	d="$work/$dist"
	mkdir -p "$d"
	# -cpu pins the oldest core each build claims to support, so an
	# instruction the Pi Zero (ARM1176) lacks fails here, not in the field.
	case $dist in
	arm64) cpu=cortex-a53 ;;
	armv6) cpu=arm1176 ;;
	mips | mipsle) cpu=24Kc ;; # the MIPS32 core of the MT7628 and QCA953x gateways
	esac
	run() { "$qemu" -cpu "$cpu" "$bin" "$@"; }

	v=$(run version) || die "$dist: version failed"
	printf '%s\n' "$v" | grep -q -- "$VERSION" || die "$dist: version output '$v' does not contain $VERSION"
	echo "$dist: version: $v" | head -1
	case $dist in
	mips | mipsle)
		printf '%s\n' "$v" | grep -q "not in this build: libp2p" || die "$dist: version does not say the small build leaves out libp2p: $v"
		printf '%s\n' "$v" | grep -q "not in this build: batch signing" || die "$dist: version does not say the small build signs one record at a time: $v"
		run config check packaging/openwrt/config.toml >/dev/null || die "$dist: rejects packaging/openwrt/config.toml"
		echo "$dist: small build; accepts the OpenWrt config"
		;;
	esac
	run config default >"$d/config.toml" || die "$dist: config default failed"
	"$native" config check "$d/config.toml" >/dev/null || die "$dist: the native binary rejects the config the ARM binary printed"
	echo "$dist: config default: $(wc -l <"$d/config.toml") lines, accepted by config check"
	run keys init --key "file:$d/device.key" >"$d/keys.out" || die "$dist: keys init failed"
	[ "$(stat -c %a "$d/device.key")" = 600 ] || die "$dist: device.key mode is $(stat -c %a "$d/device.key"), want 600"
	run keys show --key "file:$d/device.key" >/dev/null || die "$dist: keys show failed"
	echo "$dist: keys init + show ok"

	/usr/bin/time -v -o "$d/time.txt" "$qemu" -cpu "$cpu" "$bin" demo --duration 5s --dir "$d/demo" >"$d/demo.out" 2>&1 || {
		tail -20 "$d/demo.out" >&2
		die "$dist: demo failed (output above)"
	}
	set -- "$d"/demo/out/*
	[ -e "$1" ] || die "$dist: demo wrote nothing to $d/demo/out"
	"$native" verify "$@" >"$d/verify.out" 2>&1 || {
		cat "$d/verify.out" >&2
		die "$dist: native verify rejects the records the $dist demo wrote"
	}
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$d/time.txt")
	echo "$dist: demo 5s verified ($(tail -1 "$d/verify.out")); peak RSS under qemu: ${rss} KiB ($((rss / 1024)) MiB)"
done
echo "qemu-smoke: ok"
