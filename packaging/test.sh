#!/usr/bin/env bash
# test.sh: the packaging tests behind `make test-packaging`. Run from the
# repository root after `make deb`.
#
#  1. contents: dpkg-deb -f / -c / control-archive assertions on every .deb,
#     and the embedded build settings of every binary (go version -m);
#  2. lintian: no errors on any .deb (overrides are justified in
#     packaging/lintian-overrides);
#  3. the unit: systemd-analyze verify is silent, security exposure <= 2.0;
#  4. lifecycle: install -> upgrade -> remove -> purge -> reinstall of the
#     host-architecture .deb in a clean debootstrap root (no systemd running:
#     the "installed into an image" case), plus a first install without
#     adduser to exercise the useradd fallback.
#
# Every missing tool is apt-get installed or the test FAILS naming the
# Debian package; nothing is skipped. Needs root (chroot, chown).
#
# Environment: VERSION, COMMIT, GO, NFPM, SOURCE_DATE_EPOCH, PKG_DIST,
# PKG_CACHE (debootstrap root tarball cache), optional PKG_DEBIAN_MIRROR.
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"

: "${VERSION:?VERSION must be set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
: "${NFPM:?NFPM must be set}"
GO=${GO:-go}
PKG_DIST=${PKG_DIST:-dist}
PKG_CACHE=${PKG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-agent-packaging}
SUITE=bookworm
deb_ver=$(deb_version "$VERSION")

[ "$(id -u)" = 0 ] || die "test.sh needs root (chroot, file ownership); run it as root or under sudo"
need dpkg-deb dpkg
need lintian lintian
need debootstrap debootstrap
need systemd-analyze systemd
need xz xz-utils

work=$(mktemp -d "${TMPDIR:-/tmp}/edge-agent-pkgtest.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT INT TERM

failures=0
trap 'echo "test.sh: line $LINENO: command failed unexpectedly" >&2' ERR
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
# expect_eq WHAT GOT WANT
expect_eq() {
	if [ "$2" != "$3" ]; then
		fail "$1: got '$2', want '$3'"
	fi
}
# expect_match WHAT TEXT REGEX (extended)
expect_match() {
	if ! printf '%s\n' "$2" | grep -Eq -- "$3"; then
		fail "$1: '$2' does not match /$3/"
	fi
}
t0=$(date +%s)
phase() { echo "== $* (t+$(($(date +%s) - t0))s)"; }

# elf_machine FILE prints the ELF e_machine field (offset 18, little endian).
elf_machine() {
	od -An -tu2 -j18 -N2 "$1" | tr -d ' '
}

# ---------------------------------------------------------------------------
phase "1. contents of each .deb"
while read -r dist goarch goarm debarch; do
	deb="$PKG_DIST/edge-agent_${deb_ver}_${debarch}.deb"
	[ -f "$deb" ] || { fail "$deb missing (run make deb)"; continue; }
	echo "-- $deb ($(stat -c %s "$deb") bytes)"

	expect_eq "$debarch Package" "$(dpkg-deb -f "$deb" Package)" edge-agent
	expect_eq "$debarch Version" "$(dpkg-deb -f "$deb" Version)" "$deb_ver"
	expect_eq "$debarch Architecture" "$(dpkg-deb -f "$deb" Architecture)" "$debarch"
	expect_eq "$debarch Depends" "$(dpkg-deb -f "$deb" Depends)" "adduser | passwd"
	expect_eq "$debarch Section" "$(dpkg-deb -f "$deb" Section)" net
	expect_eq "$debarch Priority" "$(dpkg-deb -f "$deb" Priority)" optional
	expect_match "$debarch Maintainer" "$(dpkg-deb -f "$deb" Maintainer)" '^[^<]+ <[^>]+@[^>]+>$'
	expect_match "$debarch Installed-Size" "$(dpkg-deb -f "$deb" Installed-Size)" '^[0-9]+$'

	# Every path with its mode and owner, nothing more, nothing less.
	got=$(dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' | sort)
	want=$(sort <<'EOF'
drwxr-x--- root/edge-agent ./etc/edge-agent/
drwxr-x--- root/edge-agent ./etc/edge-agent/config.d/
drwxr-xr-x root/root ./etc/
drwxr-xr-x root/root ./lib/
drwxr-xr-x root/root ./lib/systemd/
drwxr-xr-x root/root ./lib/systemd/system/
-rw-r--r-- root/root ./lib/systemd/system/edge-agent-health-gate.service
-rw-r--r-- root/root ./lib/systemd/system/edge-agent.service
drwxr-xr-x root/root ./usr/
drwxr-xr-x root/root ./usr/bin/
-rwxr-xr-x root/root ./usr/bin/edge-agent
drwxr-xr-x root/root ./usr/lib/
drwxr-xr-x root/root ./usr/lib/edge-agent/
-rwxr-xr-x root/root ./usr/lib/edge-agent/health-gate
drwxr-xr-x root/root ./usr/lib/sysctl.d/
-rw-r--r-- root/root ./usr/lib/sysctl.d/60-edge-agent.conf
drwxr-xr-x root/root ./usr/share/
drwxr-xr-x root/root ./usr/share/doc/
drwxr-xr-x root/root ./usr/share/doc/edge-agent/
-rw-r--r-- root/root ./usr/share/doc/edge-agent/changelog.gz
-rw-r--r-- root/root ./usr/share/doc/edge-agent/copyright
drwxr-xr-x root/root ./usr/share/bash-completion/
drwxr-xr-x root/root ./usr/share/bash-completion/completions/
-rw-r--r-- root/root ./usr/share/bash-completion/completions/edge-agent
drwxr-xr-x root/root ./usr/share/edge-agent/
-rw-r--r-- root/root ./usr/share/edge-agent/config.toml
drwxr-xr-x root/root ./usr/share/fish/
drwxr-xr-x root/root ./usr/share/fish/vendor_completions.d/
-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/edge-agent.fish
drwxr-xr-x root/root ./usr/share/man/
drwxr-xr-x root/root ./usr/share/man/man1/
-rw-r--r-- root/root ./usr/share/man/man1/edge-agent.1.gz
drwxr-xr-x root/root ./usr/share/zsh/
drwxr-xr-x root/root ./usr/share/zsh/vendor-completions/
-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_edge-agent
drwxr-xr-x root/root ./usr/share/lintian/
drwxr-xr-x root/root ./usr/share/lintian/overrides/
-rw-r--r-- root/root ./usr/share/lintian/overrides/edge-agent
EOF
)
	if [ "$got" != "$want" ]; then
		fail "$debarch contents differ (- want, + got):"
		diff <(echo "$want") <(echo "$got") >&2 || true
	fi

	ctl="$work/ctl-$debarch"
	data="$work/data-$debarch"
	dpkg-deb -e "$deb" "$ctl"
	dpkg-deb -x "$deb" "$data"
	# No conffiles: the config is the administrator's (postinst installs the
	# default once), so no upgrade can stop at a conffile prompt.
	[ ! -s "$ctl/conffiles" ] || fail "$debarch ships conffiles: $(cat "$ctl/conffiles")"
	for s in postinst prerm postrm; do
		expect_eq "$debarch $s mode" "$(stat -c %a "$ctl/$s" 2>/dev/null || echo missing)" 755
		cmp -s "$ctl/$s" "packaging/scripts/$s" || fail "$debarch $s differs from packaging/scripts/$s"
	done
	[ -f "$ctl/md5sums" ] || fail "$debarch has no md5sums"
	(cd "$data" && md5sum --quiet -c "$ctl/md5sums") || fail "$debarch md5sums do not match the data"
	cmp -s "$data/usr/share/edge-agent/config.toml" packaging/config.toml || fail "$debarch default config is not packaging/config.toml"
	# The man page renders without warnings and names every command; the
	# completions are the generator's and parse.
	manout=$(MANWIDTH=100 man --warnings -l "$data/usr/share/man/man1/edge-agent.1.gz" 2>"$work/man-$debarch.err") || fail "$debarch man page does not render"
	[ ! -s "$work/man-$debarch.err" ] || fail "$debarch man page warnings: $(cat "$work/man-$debarch.err")"
	for c in "queue stats" "config show" "keys init" "collect export" doctor status; do
		printf '%s\n' "$manout" | grep -q "edge-agent $c" || fail "$debarch man page lacks 'edge-agent $c'"
	done
	bash -n "$data/usr/share/bash-completion/completions/edge-agent" || fail "$debarch bash completion does not parse"
	zsh -n "$data/usr/share/zsh/vendor-completions/_edge-agent" || fail "$debarch zsh completion does not parse"
	fish -n "$data/usr/share/fish/vendor_completions.d/edge-agent.fish" || fail "$debarch fish completion does not parse"
	cmp -s "$data/lib/systemd/system/edge-agent.service" systemd/edge-agent.service || fail "$debarch unit is not systemd/edge-agent.service"
	cmp -s "$data/usr/lib/sysctl.d/60-edge-agent.conf" packaging/sysctl/60-edge-agent.conf || fail "$debarch sysctl drop-in is not packaging/sysctl/60-edge-agent.conf"
	expect_eq "$debarch changelog" "$(zcat "$data/usr/share/doc/edge-agent/changelog.gz" | head -1 | cut -d' ' -f1-2)" "edge-agent ($deb_ver)"
	expect_match "$debarch copyright" "$(head -1 "$data/usr/share/doc/edge-agent/copyright")" '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/$'

	# The binary: right machine, static, stripped, reproducible settings.
	bin="$data/usr/bin/edge-agent"
	case $goarch in
	arm64) machine=183 ;;
	arm) machine=40 ;;
	amd64) machine=62 ;;
	esac
	expect_eq "$debarch ELF machine" "$(elf_machine "$bin")" "$machine"
	cmp -s "$bin" "$PKG_DIST/edge-agent_${VERSION}_linux_${dist}" || fail "$debarch binary is not $PKG_DIST/edge-agent_${VERSION}_linux_${dist}"
	info=$("$GO" version -m "$bin")
	expect_match "$debarch GOARCH" "$info" "build[[:space:]]+GOARCH=$goarch\$"
	expect_match "$debarch CGO" "$info" 'build[[:space:]]+CGO_ENABLED=0$'
	expect_match "$debarch trimpath" "$info" 'build[[:space:]]+-trimpath=true$'
	# -trimpath keeps -ldflags out of the build info, so check their effects:
	# stripped (-s: no symbol table) and the version stamped (-X).
	if "$GO" tool nm "$bin" >/dev/null 2>&1; then
		fail "$debarch binary has a symbol table (not built with -s)"
	fi
	grep -qaF -- "$VERSION" "$bin" || fail "$debarch binary does not contain the version $VERSION"
	if [ "$goarm" != - ]; then
		expect_match "$debarch GOARM" "$info" "build[[:space:]]+GOARM=$goarm\$"
	fi
	if printf '%s\n' "$info" | grep -q 'vcs\.'; then
		fail "$debarch binary embeds VCS state (-buildvcs=false missing)"
	fi
done < <(targets)

# ---------------------------------------------------------------------------
phase "2. lintian"
# --fail-on error: warnings and info are printed for the log but only errors
# fail; overrides live in packaging/lintian-overrides. One run for all three
# packages: lintian's start-up dominates its run time.
if ! lintian --fail-on error --display-info --tag-display-limit 0 "$PKG_DIST"/edge-agent_"${deb_ver}"_*.deb; then
	fail "lintian reports errors (above)"
fi

# ---------------------------------------------------------------------------
phase "3. systemd unit"
unit=systemd/edge-agent.service
host_arch=$(dpkg --print-architecture)
host_deb="$PKG_DIST/edge-agent_${deb_ver}_${host_arch}.deb"
[ -f "$host_deb" ] || die "$host_deb missing: this host ($host_arch) needs its own architecture's package"
# verify resolves ExecStart= and the targets inside --root: give it the
# host's stock units plus this package's files.
vroot="$work/verify-root"
mkdir -p "$vroot/lib/systemd"
cp -a /lib/systemd/system "$vroot/lib/systemd/"
# ExecReload= runs /bin/kill (procps), which every Debian system has.
mkdir -p "$vroot/bin"
cp -L /bin/kill "$vroot/bin/kill"
dpkg-deb -x "$host_deb" "$vroot"
out=$(systemd-analyze verify --root="$vroot" edge-agent.service 2>&1) || fail "systemd-analyze verify failed"
if [ -n "$out" ]; then
	fail "systemd-analyze verify is not clean:"
	echo "$out" >&2
fi
# Exposure is reported with one decimal; --threshold takes tenths.
sec=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1) || fail "systemd-analyze security: exposure above 2.0"
exposure=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for edge-agent.service: \([0-9.]*\) .*/\1/p')
echo "exposure: $exposure"
expect_match "exposure" "$exposure" '^(0\.[0-9]|1\.[0-9]|2\.0)$'
# The daemon reads the NTP state with adjtimex: the unit's filter must allow
# it (systemd's own analysis says so), and reload is SIGHUP.
expect_match "adjtimex allowed" "$sec" 'SystemCallFilter=~@clock.*adjtimex is allowed'
expect_match "ExecReload" "$(grep '^ExecReload=' "$unit")" '^ExecReload=/bin/kill -HUP \$MAINPID$'

# ---------------------------------------------------------------------------
phase "4. lifecycle in a debootstrap root"
mirror=${PKG_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	# The mirror this machine's apt already uses (deb822 or one-line format).
	mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
		/^URIs:/ { uri = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "'$SUITE'") { print uri; exit } }')
fi
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list 2>/dev/null | awk '$1 == "deb" && $3 == "'$SUITE'" { print $2; exit }')
fi
mirror=${mirror:-http://deb.debian.org/debian}
tarball="$PKG_CACHE/debian-$SUITE-minbase-$host_arch.tar.gz"
if [ ! -s "$tarball" ]; then
	echo "creating $tarball from $mirror (once; later runs reuse it)"
	mkdir -p "$PKG_CACHE"
	boot="$work/debootstrap"
	debootstrap --variant=minbase --arch="$host_arch" "$SUITE" "$boot" "$mirror" >"$work/debootstrap.log" 2>&1 || {
		tail -20 "$work/debootstrap.log" >&2
		die "debootstrap $SUITE from $mirror failed (log above); set PKG_DEBIAN_MIRROR to a reachable mirror"
	}
	# apt's caches are not needed to run dpkg; keep the tarball small.
	rm -rf "$boot"/var/cache/apt/archives/*.deb "$boot"/var/lib/apt/lists/*
	tar -C "$boot" -czf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$boot"
fi

# The upgrade: the same package rebuilt with a higher version and a changed
# default config, so dpkg meets an edited conffile whose default also moved.
up_ver="${deb_ver}+upgradetest1"
up_cfg="$work/config-upgrade.toml"
cp packaging/config.toml "$up_cfg"
printf '\n# changed default in the upgrade test package\n' >>"$up_cfg"
dist_name=$(targets | awk -v a="$host_arch" '$4 == a { print $1 }')
up_deb=$(PKG_DEB_VERSION=$up_ver PKG_CONFIG=$up_cfg "$here/deb.sh" "$PKG_DIST" "$work" "$dist_name")
[ -f "$up_deb" ] || die "building the upgrade package failed"

# new_root DIR unpacks a clean root and copies both packages into it.
new_root() {
	mkdir -p "$1"
	tar -C "$1" -xzf "$tarball"
	cp "$host_deb" "$1/tmp/edge-agent.deb"
	cp "$up_deb" "$1/tmp/edge-agent-upgrade.deb"
}
# in ROOT CMD... runs CMD inside ROOT as root, no systemd, no tty.
in_root() {
	local r=$1
	shift
	DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$r" "$@"
}
# stat_in ROOT PATH prints "mode owner:group" of PATH inside ROOT, resolving
# names through ROOT's own passwd and group files.
stat_in() {
	in_root "$1" stat -c '%a %U:%G' "$2" 2>/dev/null || echo missing
}
# check_installed ROOT WHEN: the state after a configure.
check_installed() {
	local r=$1 when=$2
	expect_eq "$when: /usr/bin/edge-agent" "$(stat_in "$r" /usr/bin/edge-agent)" "755 root:root"
	expect_eq "$when: unit" "$(stat_in "$r" /lib/systemd/system/edge-agent.service)" "644 root:root"
	expect_eq "$when: /etc/edge-agent" "$(stat_in "$r" /etc/edge-agent)" "750 root:edge-agent"
	expect_eq "$when: config.toml" "$(stat_in "$r" /etc/edge-agent/config.toml)" "640 root:edge-agent"
	expect_eq "$when: /var/lib/edge-agent" "$(stat_in "$r" /var/lib/edge-agent)" "750 edge-agent:edge-agent"
	local pw
	pw=$(in_root "$r" getent passwd edge-agent || true)
	expect_match "$when: user" "$pw" '^edge-agent:x:[0-9]+:[0-9]+:[^:]*:/var/lib/edge-agent:/usr/sbin/nologin$'
	local uid
	uid=$(printf '%s' "$pw" | cut -d: -f3)
	[ -n "$uid" ] && [ "$uid" -lt 1000 ] || fail "$when: edge-agent uid '$uid' is not a system uid"
	local groups
	groups=$(in_root "$r" id -nG edge-agent | tr ' ' '\n' | sort | tr '\n' ' ')
	expect_eq "$when: groups" "$groups" "dialout edge-agent gpio i2c spi "
	for g in edge-agent gpio i2c spi; do
		local gid
		gid=$(in_root "$r" getent group "$g" | cut -d: -f3)
		[ -n "$gid" ] && [ "$gid" -lt 1000 ] || fail "$when: group $g gid '$gid' is not a system gid"
	done
	# Enabled for the first boot although no systemd runs here.
	expect_eq "$when: enabled" "$(readlink "$r/etc/systemd/system/multi-user.target.wants/edge-agent.service" || echo none)" \
		/lib/systemd/system/edge-agent.service
	[ ! -e "$r/etc/systemd/system/edge-agent.service" ] || fail "$when: unit is masked"
	# The service user reads its config through the group: the one thing the
	# daemon needs from the conffile's ownership.
	in_root "$r" setpriv --reuid=edge-agent --regid=edge-agent --init-groups \
		/usr/bin/edge-agent config check /etc/edge-agent/config.toml >/dev/null ||
		fail "$when: edge-agent cannot read and check /etc/edge-agent/config.toml as the service user"
}
# dpkg_status ROOT prints the package's dpkg status ("install ok installed").
dpkg_status() {
	in_root "$1" dpkg-query -W -f='${Status}' edge-agent 2>/dev/null || echo "not-installed"
}
key_sum() {
	{ sha256sum "$1/var/lib/edge-agent/device.key" 2>/dev/null || echo missing; } | cut -d' ' -f1
}

r="$work/root"
new_root "$r"
phase "4a. install $deb_ver"
in_root "$r" dpkg -i /tmp/edge-agent.deb >"$work/install.log" 2>&1 || {
	cat "$work/install.log" >&2
	die "dpkg -i failed (log above)"
}
expect_eq "install: status" "$(dpkg_status "$r")" "install ok installed"
check_installed "$r" install
expect_eq "install: version" "$(in_root "$r" dpkg-query -W -f='${Version}' edge-agent)" "$deb_ver"
in_root "$r" /usr/bin/edge-agent version >/dev/null || fail "install: edge-agent version fails"

# What the daemon's first start leaves behind, made by the real binary as
# the service user: the key (mode 0600) and outbox-like state.
in_root "$r" setpriv --reuid=edge-agent --regid=edge-agent --init-groups \
	/usr/bin/edge-agent keys init --key file:/var/lib/edge-agent/device.key >/dev/null ||
	fail "install: keys init as edge-agent in /var/lib/edge-agent failed"
expect_eq "key" "$(stat_in "$r" /var/lib/edge-agent/device.key)" "600 edge-agent:edge-agent"
in_root "$r" setpriv --reuid=edge-agent --regid=edge-agent --init-groups \
	sh -c 'echo outbox >/var/lib/edge-agent/outbox.db && mkdir /var/lib/edge-agent/spool && echo rec >/var/lib/edge-agent/spool/1.cbor' ||
	fail "install: the service user cannot write its state directory"
key0=$(key_sum "$r")
[ "$key0" != missing ] || fail "no device key to follow through the lifecycle"

cmp -s "$r/etc/edge-agent/config.toml" packaging/config.toml || fail "install: /etc/edge-agent/config.toml is not the shipped default"
expect_eq "install: config.d" "$(stat_in "$r" /etc/edge-agent/config.d)" "750 root:edge-agent"

# The administrator edits the config and adds a drop-in.
printf '\n# edited by the administrator\n' >>"$r/etc/edge-agent/config.toml"
printf '# site settings\n[log]\nlevel = "debug"\n' >"$r/etc/edge-agent/config.d/50-site.toml"
show=$(in_root "$r" setpriv --reuid=edge-agent --regid=edge-agent --init-groups /usr/bin/edge-agent config show 2>&1) ||
	fail "config show as the service user failed: $show"
expect_match "config show: the drop-in's value and origin" "$show" '^level = "debug"  # /etc/edge-agent/config.d/50-site.toml:3$'
expect_match "config show: a default's origin" "$show" '^format = "auto"  # /etc/edge-agent/config.toml:[0-9]+$'
printf '[log]\nlevle = "info"\n' >"$r/etc/edge-agent/config.d/60-typo.toml"
if bad=$(in_root "$r" /usr/bin/edge-agent config check 2>&1); then
	fail "config check passed a drop-in with an unknown key"
fi
expect_match "config check: a bad drop-in is named with its line" "$bad" 'unknown key "log.levle" at line 2 of /etc/edge-agent/config.d/60-typo.toml'
rm "$r/etc/edge-agent/config.d/60-typo.toml"

phase "4b. unattended upgrade to $up_ver"
# As unattended-upgrades runs dpkg: no terminal, no --force-conf* option.
in_root "$r" dpkg -i /tmp/edge-agent-upgrade.deb </dev/null >"$work/upgrade.log" 2>&1 || {
	cat "$work/upgrade.log" >&2
	die "unattended upgrade failed (log above)"
}
expect_eq "upgrade: status" "$(dpkg_status "$r")" "install ok installed"
expect_eq "upgrade: version" "$(in_root "$r" dpkg-query -W -f='${Version}' edge-agent)" "$up_ver"
check_installed "$r" upgrade
grep -q '^# edited by the administrator$' "$r/etc/edge-agent/config.toml" || fail "upgrade: the edited config was replaced"
cmp -s "$r/usr/share/edge-agent/config.toml" "$up_cfg" || fail "upgrade: the new default is not in /usr/share/edge-agent/config.toml"
[ -f "$r/etc/edge-agent/config.d/50-site.toml" ] || fail "upgrade: the drop-in was lost"
in_root "$r" /usr/bin/edge-agent config show | grep -q '^level = "debug"  # /etc/edge-agent/config.d/50-site.toml:3$' ||
	fail "upgrade: the drop-in no longer applies"
expect_eq "upgrade: key" "$(key_sum "$r")" "$key0"
[ -f "$r/var/lib/edge-agent/outbox.db" ] || fail "upgrade: outbox lost"

phase "4c. remove"
in_root "$r" dpkg -r edge-agent >"$work/remove.log" 2>&1 || {
	cat "$work/remove.log" >&2
	die "dpkg -r failed (log above)"
}
expect_eq "remove: status" "$(dpkg_status "$r")" "deinstall ok config-files"
[ ! -e "$r/usr/bin/edge-agent" ] || fail "remove: binary still there"
[ ! -e "$r/lib/systemd/system/edge-agent.service" ] || fail "remove: unit still there"
grep -q '^# edited by the administrator$' "$r/etc/edge-agent/config.toml" || fail "remove: the config was not kept"
expect_eq "remove: key" "$(key_sum "$r")" "$key0"
[ -f "$r/var/lib/edge-agent/outbox.db" ] || fail "remove: outbox lost"
in_root "$r" getent passwd edge-agent >/dev/null || fail "remove: user deleted"
expect_eq "remove: masked" "$(readlink "$r/etc/systemd/system/edge-agent.service" || echo none)" /dev/null

phase "4d. purge"
in_root "$r" dpkg -P edge-agent >"$work/purge.log" 2>&1 || {
	cat "$work/purge.log" >&2
	die "dpkg -P failed (log above)"
}
cat "$work/purge.log"
expect_eq "purge: status" "$(dpkg_status "$r")" "not-installed"
[ ! -e "$r/etc/edge-agent" ] || fail "purge: /etc/edge-agent left behind: $(ls -A "$r/etc/edge-agent")"
expect_eq "purge: key kept" "$(key_sum "$r")" "$key0"
expect_eq "purge: key mode" "$(stat_in "$r" /var/lib/edge-agent/device.key)" "600 edge-agent:edge-agent"
expect_eq "purge: state left" "$(cd "$r/var/lib/edge-agent" && ls -A | tr '\n' ' ')" "device.key "
grep -q '/var/lib/edge-agent/device.key' "$work/purge.log" || fail "purge: no message naming the kept key"
grep -q 'rm -r /var/lib/edge-agent' "$work/purge.log" || fail "purge: no message saying how to delete the key"
in_root "$r" getent passwd edge-agent >/dev/null || fail "purge: user deleted although it owns the kept key"
[ ! -e "$r/etc/systemd/system/edge-agent.service" ] || fail "purge: mask left behind"
[ ! -e "$r/etc/systemd/system/multi-user.target.wants/edge-agent.service" ] || fail "purge: enablement left behind"

phase "4e. reinstall keeps the identity"
in_root "$r" dpkg -i /tmp/edge-agent.deb >"$work/reinstall.log" 2>&1 || {
	cat "$work/reinstall.log" >&2
	die "reinstall failed (log above)"
}
check_installed "$r" reinstall
expect_eq "reinstall: key" "$(key_sum "$r")" "$key0"
expect_eq "reinstall: key owner" "$(stat_in "$r" /var/lib/edge-agent/device.key)" "600 edge-agent:edge-agent"
# Purging with no key left removes the state directory entirely.
rm -f "$r/var/lib/edge-agent/device.key"
in_root "$r" dpkg -P edge-agent >"$work/purge2.log" 2>&1 || fail "purge without a key failed"
[ ! -e "$r/var/lib/edge-agent" ] || fail "purge without a key: /var/lib/edge-agent left behind"
rm -rf "$r"

phase "4f. install without adduser (useradd fallback)"
r="$work/root-noadduser"
new_root "$r"
if in_root "$r" dpkg-query -W adduser >/dev/null 2>&1; then
	in_root "$r" dpkg --purge --force-depends --force-remove-essential adduser >/dev/null 2>&1 || die "could not remove adduser from the test root"
fi
in_root "$r" sh -c '! command -v adduser' >/dev/null || die "adduser still present in the test root"
in_root "$r" dpkg -i /tmp/edge-agent.deb >"$work/install-noadduser.log" 2>&1 || {
	cat "$work/install-noadduser.log" >&2
	fail "dpkg -i without adduser failed (log above)"
}
check_installed "$r" "install without adduser"
rm -rf "$r"

phase "done"
if [ "$failures" -gt 0 ]; then
	echo "test-packaging: $failures failure(s)" >&2
	exit 1
fi
echo "test-packaging: all passed in $(($(date +%s) - t0))s"
