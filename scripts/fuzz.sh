#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each.
# Go fuzzes one target per invocation, so this finds them and loops.
set -euo pipefail
fuzztime=${1:-4s}
cd "$(dirname "$0")/.."
targets=$(grep -rlE '^func Fuzz[A-Za-z0-9_]+\(' --include='*_test.go' . | sort)
[ -n "$targets" ] || { echo "fuzz.sh: no fuzz targets found" >&2; exit 1; }
n=0
for file in $targets; do
  pkg=./$(dirname "${file#./}")
  for fn in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | awk '{print $2}'); do
    echo "fuzz $pkg $fn ($fuzztime)"
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; exit 1; }
    n=$((n+1))
  done
done
echo "fuzz: $n targets passed"
