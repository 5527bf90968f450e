#!/usr/bin/env bash
# fleet-test.sh: distribution tests behind `make test-fleet`, in a clean
# debootstrap root. Run from the repository root after `make deb`.
#
#  1. signed repository: apt installs edge-agent from a repository built by
#     apt-repo.sh and verified through its signed-by keyring;
#  2. refused: an unsigned repository and one signed by another key;
#  3. phasing: a newer version at 0 % is kept back, at 100 % applied;
#     1,000 simulated machine ids at 10 % upgrade 10 % +- 3 %;
#  4. health gate: a healthy upgrade passes and drops the kept package; a
#     broken release is rolled back by the gate alone, pinned away, and the
#     device's chain continues with a signed agent.update rollback record.
#
# apt ignores phasing inside a chroot (it compares its root with init's), so
# apt runs in a new PID namespace with its own /proc, where it does not; and
# it ignores phasing whenever SOURCE_DATE_EPOCH is set (apt-pkg/policy.cc:
# a reproducible build includes every update), which packaging sets.
#
# Environment: VERSION, NFPM, SOURCE_DATE_EPOCH, PKG_DIST, PKG_CACHE.
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
: "${VERSION:?VERSION must be set}"
: "${NFPM:?NFPM must be set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
PKG_DIST=${PKG_DIST:-dist}
PKG_CACHE=${PKG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-agent-packaging}
SUITE=bookworm
[ "$(id -u)" = 0 ] || die "fleet-test.sh needs root (chroot, namespaces)"
need unshare util-linux
need gpg gpg
need apt-ftparchive apt-utils

t0=$(date +%s)
host_arch=$(dpkg --print-architecture)
dist_name=$(targets | awk -v a="$host_arch" '$4 == a { print $1 }')
v1=$(deb_version "$VERSION")
deb1="$PKG_DIST/edge-agent_${v1}_${host_arch}.deb"
[ -f "$deb1" ] || die "$deb1 missing: run make deb"
tarball="$PKG_CACHE/debian-$SUITE-minbase-$host_arch.tar.gz"
"$here/rootfs.sh" "$tarball" "$host_arch" "$SUITE"

work=$(mktemp -d "${TMPDIR:-/tmp}/edge-agent-fleet.XXXXXX")
r="$work/root"
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null
	umount "$r/proc" 2>/dev/null || true
	if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM
failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
phase() { echo "== $* ($(($(date +%s) - t0))s)"; }
in_root() { DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$r" "$@"; }
# apt_ns ARGS...: apt-get in the root, in a PID namespace of its own, so
# that apt applies phasing as on a booted device.
apt_ns() {
	env -u SOURCE_DATE_EPOCH DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		unshare --pid --fork --mount --root="$r" --mount-proc /usr/bin/apt-get "$@"
}
installed() { in_root dpkg-query -W -f='${Version}' edge-agent 2>/dev/null || echo none; }

# Two throwaway signing keys: the repository's, and an impostor's.
export GNUPGHOME="$work/gnupg"
mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key "edge-agent fleet test <repo@edge-agent.invalid>" ed25519 sign never 2>/dev/null
gpg --batch --quiet --passphrase '' --quick-gen-key "impostor <impostor@edge-agent.invalid>" ed25519 sign never 2>/dev/null
export APT_REPO_KEY=repo@edge-agent.invalid

# Releases: v2 a good upgrade, v3 the next one (phasing sample), vbad a
# release whose daemon cannot start.
pkg() { # pkg VERSION [BINARY]: a .deb of this tree at VERSION
	local ver=$1 bin=${2:-}
	local bindir="$work/bin-$ver"
	mkdir -p "$bindir"
	if [ -n "$bin" ]; then
		cp "$bin" "$bindir/edge-agent_${VERSION}_linux_${dist_name}"
	else
		cp "$PKG_DIST/edge-agent_${VERSION}_linux_${dist_name}" "$bindir/"
	fi
	PKG_DEB_VERSION=$ver "$here/deb.sh" "$bindir" "$work" "$dist_name" 2>/dev/null
}
v2="${v1}+fleet2"
v3="${v1}+fleet3"
vbad="${v1}+fleet4"
deb2=$(pkg "$v2")
deb3=$(pkg "$v3")
printf '#!/bin/sh\necho "edge-agent: this release is broken on purpose (fleet test)" >&2\nexit 3\n' >"$work/broken"
chmod 755 "$work/broken"
debbad=$(pkg "$vbad" "$work/broken")

repo="$work/repo"
publish() { "$here/apt-repo.sh" publish "$repo" "$@" >/dev/null; }
set_phase() { "$here/apt-repo.sh" phase "$repo" "$1" "$2" >/dev/null; }
# sync_repo copies the repository into the root, where apt reads it.
sync_repo() {
	rm -rf "$r/srv/repo"
	mkdir -p "$r/srv"
	cp -r "$repo" "$r/srv/repo"
}

phase "1. install from the signed repository"
mkdir -p "$r"
tar -C "$r" -xzf "$tarball"
echo 0f3e1a27c9b84d5e9a6f2b7c8d9e0a1b >"$r/etc/machine-id"
publish "$deb1"
"$here/apt-repo.sh" export-key "$repo" >/dev/null
sync_repo
mkdir -p "$r/usr/share/keyrings"
cp "$repo/edge-agent-archive-keyring.gpg" "$r/usr/share/keyrings/"
rm -f "$r"/etc/apt/sources.list.d/*
echo "deb [signed-by=/usr/share/keyrings/edge-agent-archive-keyring.gpg] file:/srv/repo stable main" >"$r/etc/apt/sources.list"
in_root apt-get update -q >"$work/update.log" 2>&1 || {
	cat "$work/update.log" >&2
	die "apt-get update from the signed repository failed (log above)"
}
in_root apt-get install -y -q edge-agent >"$work/install.log" 2>&1 || {
	cat "$work/install.log" >&2
	die "apt-get install edge-agent from the signed repository failed (log above)"
}
[ "$(installed)" = "$v1" ] || fail "installed $(installed), want $v1"

phase "2. unsigned and wrongly signed repositories are refused"
refused() { # refused NAME DIR: apt-get update from DIR must fail and install nothing new
	local name=$1 dir=$2
	rm -rf "$r/srv/$name"
	cp -r "$dir" "$r/srv/$name"
	echo "deb [signed-by=/usr/share/keyrings/edge-agent-archive-keyring.gpg] file:/srv/$name stable main" >"$r/etc/apt/$name.list"
	if in_root apt-get update -q -o Dir::Etc::sourcelist="/etc/apt/$name.list" -o Dir::Etc::sourceparts=- \
		-o Dir::State::Lists="/var/lib/apt/lists-$name" >"$work/$name.log" 2>&1; then
		fail "$name repository: apt-get update succeeded; it must refuse it"
	fi
	grep -Eq "$3" "$work/$name.log" || fail "$name repository: apt's error does not say why: $(tail -3 "$work/$name.log")"
}
mkdir -p "$r/var/lib/apt/lists-unsigned/partial" "$r/var/lib/apt/lists-impostor/partial"
unsigned="$work/repo-unsigned"
cp -r "$repo" "$unsigned"
rm -f "$unsigned/dists/stable/InRelease" "$unsigned/dists/stable/Release.gpg"
refused unsigned "$unsigned" "is not signed"
impostor="$work/repo-impostor"
cp -r "$repo" "$impostor"
APT_REPO_KEY=impostor@edge-agent.invalid "$here/apt-repo.sh" publish "$impostor" "$deb1" >/dev/null
refused impostor "$impostor" "NO_PUBKEY|signatures couldn't be verified|not signed|invalid"

phase "3. phasing: 0 % keeps $v2 back, 100 % applies it"
publish "$deb2"
set_phase "$v2" 0
sync_repo
in_root apt-get update -q >/dev/null 2>&1 || fail "apt-get update after publishing $v2"
apt_ns upgrade -y -q >"$work/upgrade0.log" 2>&1 || fail "apt-get upgrade at 0 %: $(tail -3 "$work/upgrade0.log")"
[ "$(installed)" = "$v1" ] || {
	cat "$work/upgrade0.log" >&2
	apt_ns -s -o Debug::Phasing=1 upgrade >&2 || true
	fail "at 0 % the device upgraded to $(installed); it must keep $v1"
}
grep -q "kept back" "$work/upgrade0.log" || fail "at 0 %: apt does not say it kept edge-agent back"

# A healthy daemon for the gate to find: a simulated counter, the file
# uplink, the status socket where the service user can make it.
cat >"$r/etc/edge-agent/config.toml" <<'EOF'
version = 1
[device]
key = "file:/var/lib/edge-agent/device.key"
data_dir = "/var/lib/edge-agent"
[status]
socket = "/var/lib/edge-agent/status.sock"
metrics_listen = ""
[[drivers.sim]]
name = "count0"
kind = "counter"
interval = "100ms"
[uplinks.file]
enabled = true
EOF
mount -t proc proc "$r/proc"
# start_daemon runs the installed daemon as the service user; chroot and
# setpriv exec, so $! is the daemon itself.
start_daemon() {
	LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$r" setpriv --reuid=edge-agent --regid=edge-agent --init-groups \
		/usr/bin/edge-agent run -c /etc/edge-agent/config.toml >>"$work/daemon.log" 2>&1 &
	daemon_pid=$!
}
stop_daemon() {
	[ -n "$daemon_pid" ] || return 0
	kill -TERM "$daemon_pid" 2>/dev/null || true
	wait "$daemon_pid" 2>/dev/null || true
	daemon_pid=
}
start_daemon
sleep 2
stop_daemon

set_phase "$v2" 100
sync_repo
in_root apt-get update -q >/dev/null 2>&1 || fail "apt-get update after phasing $v2 to 100 %"
apt_ns upgrade -y -q >"$work/upgrade100.log" 2>&1 || fail "apt-get upgrade at 100 %: $(tail -3 "$work/upgrade100.log")"
[ "$(installed)" = "$v2" ] || fail "at 100 % the device runs $(installed); it must have upgraded to $v2"
[ -f "$r/var/lib/edge-agent/upgrade/pending" ] || fail "the upgrade to $v2 left no pending health check"
ls "$r/var/lib/edge-agent/upgrade/edge-agent_${v1}_"*.deb >/dev/null 2>&1 || fail "preinst did not keep $v1 for a rollback"

phase "3b. 1,000 machine ids at 10 %"
publish "$deb3"
set_phase "$v3" 10
sync_repo
in_root apt-get update -q >/dev/null 2>&1 || fail "apt-get update after publishing $v3"
for i in $(seq 1 1000); do printf 'fleet-machine-%s' "$i" | sha256sum | cut -c1-32; done >"$r/tmp/machine-ids"
cat >"$r/tmp/count-phased.sh" <<'EOF'
n=0
while read -r id; do
	if apt-get -s -o APT::Machine-ID="$id" upgrade 2>/dev/null | grep -q '^Inst edge-agent'; then n=$((n + 1)); fi
done <"$1"
echo "$n"
EOF
split -n l/2 -d "$r/tmp/machine-ids" "$r/tmp/ids."
n=0
for part in "$r"/tmp/ids.*; do
	env -u SOURCE_DATE_EPOCH DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		unshare --pid --fork --mount --root="$r" --mount-proc /bin/sh /tmp/count-phased.sh "/tmp/$(basename "$part")" >"$part.count" &
done
wait
for c in "$r"/tmp/ids.*.count; do n=$((n + $(cat "$c"))); done
echo "phasing at 10 %: $n of 1000 simulated devices would upgrade"
{ [ "$n" -ge 70 ] && [ "$n" -le 130 ]; } || fail "phasing at 10 %: $n of 1000 devices upgrade, want 100 +- 30"
set_phase "$v3" 0 # keep the sample from upgrading the test root
sync_repo
in_root apt-get update -q >/dev/null 2>&1 || true

phase "4a. health gate: $v2 is healthy"
start_daemon
EDGE_AGENT_GATE_TIMEOUT=30s in_root /usr/lib/edge-agent/health-gate >"$work/gate-ok.log" 2>&1 || {
	cat "$work/gate-ok.log" "$work/daemon.log" >&2
	fail "the health gate failed a healthy $v2"
}
stop_daemon
[ "$(installed)" = "$v2" ] || fail "after a healthy gate the device runs $(installed), want $v2"
[ ! -e "$r/var/lib/edge-agent/upgrade/pending" ] || fail "a healthy gate left its pending file"
if ls "$r"/var/lib/edge-agent/upgrade/*.deb >/dev/null 2>&1; then fail "a healthy gate kept the previous package"; fi

phase "4b. health gate: the broken $vbad rolls back by itself"
publish "$debbad"
set_phase "$vbad" 100
sync_repo
in_root apt-get update -q >/dev/null 2>&1 || fail "apt-get update after publishing $vbad"
apt_ns install -y -q edge-agent="$vbad" >"$work/upgrade-bad.log" 2>&1 || fail "installing $vbad: $(tail -3 "$work/upgrade-bad.log")"
[ "$(installed)" = "$vbad" ] || fail "the broken release was not installed ($(installed))"
start_daemon # the broken binary exits at once, as a bad release in the field would
t_bad=$(date +%s)
EDGE_AGENT_GATE_TIMEOUT=5s in_root /usr/lib/edge-agent/health-gate >"$work/gate-bad.log" 2>&1 &&
	fail "the health gate passed a release whose daemon cannot start"
t_restored=$(date +%s)
stop_daemon
[ "$(installed)" = "$v2" ] || { cat "$work/gate-bad.log" >&2; fail "after the rollback the device runs $(installed), want $v2"; }
grep -q "Pin: version $vbad" "$r/etc/apt/preferences.d/edge-agent-rollback" 2>/dev/null || fail "the failed release is not pinned away"
grep -q "\"from\":\"$vbad\"" "$r/var/lib/edge-agent/upgrade/rollback.json" 2>/dev/null || fail "no rollback.json naming $vbad"
echo "bad release to restored service: $((t_restored - t_bad))s (gate timeout 5s)"
apt_ns upgrade -y -q >"$work/upgrade-again.log" 2>&1 || true
[ "$(installed)" = "$v2" ] || fail "apt upgraded to the pinned-away release again ($(installed))"

phase "4c. the restored release signs the rollback and keeps the chain"
start_daemon
sleep 2
stop_daemon
in_root /usr/bin/edge-agent queue export -c /etc/edge-agent/config.toml --out /tmp/outbox.cbor >"$work/export.log" 2>&1 ||
	fail "queue export failed: $(tail -2 "$work/export.log")"
cat "$r"/var/lib/edge-agent/spool/*.cbor "$r/tmp/outbox.cbor" 2>/dev/null >"$work/all.cbor"
cp "$work/all.cbor" "$r/tmp/all.cbor"
if ! in_root /usr/bin/edge-agent verify --partial /tmp/all.cbor >"$work/verify.txt" 2>&1; then
	cat "$work/verify.txt" >&2
	fail "the device's records do not verify after the rollback"
fi
chains=$(grep -c '^  chain ' "$work/verify.txt" || true)
[ "$chains" = 1 ] || fail "the device has $chains chains after upgrade and rollback; want 1 (verify output in $work/verify.txt)"
in_root /usr/bin/edge-agent verify --json --partial /tmp/all.cbor >"$work/all.json" 2>/dev/null || true
grep -q '"rollback"' "$work/all.json" || fail "no signed agent.update rollback record"
[ -f "$r/var/lib/edge-agent/upgrade/rollback.reported.json" ] || fail "the rollback was not marked reported"

umount "$r/proc" 2>/dev/null || true
phase "done"
if [ "$failures" -gt 0 ]; then
	echo "test-fleet: $failures failure(s)" >&2
	exit 1
fi
echo "test-fleet: all passed in $(($(date +%s) - t0))s"
