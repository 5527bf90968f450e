#!/usr/bin/env bash
# Installs the Debian packages the tests talk to for real. Idempotent: it
# only calls apt-get when something is missing. Fails loudly, never skips.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have mosquitto || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
have mosquitto_passwd || need+=(mosquitto-clients)
have gpsd || [ -x /usr/sbin/gpsd ] || need+=(gpsd)
have gcc || need+=(gcc)                     # go test -race needs cgo
have lintian || need+=(lintian)
have debootstrap || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
have systemd-analyze || need+=(systemd)
have qemu-aarch64-static || need+=(qemu-user-static)
[ -x /usr/bin/time ] || need+=(time)
# collect/pgstore tests start their own PostgreSQL (initdb, pg_ctl) in a temp dir.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-test-deps: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "install-test-deps: ok"
