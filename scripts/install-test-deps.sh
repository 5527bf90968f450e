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
# issue 15: shells the generated completions are checked with, the man page
# linter, and the reference verifiers' runtimes (Python from Debian, Node with
# its CBOR package from the committed lockfile).
have zsh || need+=(zsh)
have fish || need+=(fish)
have man || need+=(man-db)
/usr/bin/python3 -c 'import cbor2, cryptography' 2>/dev/null || need+=(python3-cbor2 python3-cryptography)
have node || need+=(nodejs)
have npm || need+=(npm)
have chattr || need+=(e2fsprogs)            # hostile-conditions tests: a file that refuses writes
# collect/pgstore tests start their own PostgreSQL (initdb, pg_ctl) in a temp dir.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# Hardware keys (#13): a software TPM for tpm: keys (Python's cryptography,
# for the independent verifier of ES256 and session records, is above).
have swtpm || need+=(swtpm)
have swtpm_setup || need+=(swtpm-tools)
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
# The JavaScript reference verifier's one dependency (cborg), exactly as the
# committed lockfile pins it; again whenever the lockfile changes.
js=$(cd "$(dirname "$0")/../verifiers/js" && pwd)
if [ ! -f "$js/node_modules/.package-lock.json" ] || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
  echo "install-test-deps: npm ci in verifiers/js"
  (cd "$js" && npm ci --no-audit --no-fund >/dev/null)
fi

# The js-libp2p interop test (uplink/p2p TestJSInterop): Node.js 20+ and the
# exact packages pinned in its package-lock.json, installed with npm ci
# (again only when the lock file changed).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "install-test-deps: Node.js $(node --version) is too old for js-libp2p 2.x; install Node.js 20 or later" >&2
  exit 1
fi
p2pjs="$(cd "$(dirname "$0")/.." && pwd)/uplink/p2p/testdata/js"
if ! cmp -s "$p2pjs/package-lock.json" "$p2pjs/node_modules/.edge-agent-lock" 2>/dev/null; then
  echo "install-test-deps: npm ci in $p2pjs"
  (cd "$p2pjs" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$p2pjs/package-lock.json" "$p2pjs/node_modules/.edge-agent-lock"
fi
echo "install-test-deps: ok"
