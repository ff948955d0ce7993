#!/usr/bin/env bash
# Plug → first answered ping, before and after the host session's step burst: two binaries
# interleaved, Strowger alone (ovn-compare.sh takes the bench lock). Usage: ab.sh OLD NEW [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
old=$1 new=$2 rounds=${3:-2}
: > "$here/summary.txt"
for r in $(seq 1 "$rounds"); do
  for which in old new; do
    bin=$old; [ "$which" = new ] && bin=$new
    out=$here/$which-$r
    rc=0
    env STROWGER_BIN="$bin" SYSTEMS=strowger OUT="$out" bash "$root/bench/ovn-compare.sh" > "$out.log" 2>&1 || rc=$?
    echo "$(date -u +%H:%M) $which $r rc=$rc | $(grep -F 'plug → first' "$out/table.md" | head -1) | $(grep -F 'first − steady' "$out/table.md" | head -1)" | tee -a "$here/summary.txt"
  done
done
