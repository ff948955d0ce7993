#!/usr/bin/env bash
# First packet: the request delivered at its destination once the destination's switch has
# answered the barrier behind the reply's flow (default), against the same through the ingress
# switch and the tunnel (--no-deliver-at-destination) and delivered at the destination at once
# (--no-reply-hold); Strowger alone, the same binary, interleaved, every run under the bench
# lock (ovn-compare.sh takes it). Usage: STROWGER_BIN=… bash ab.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
rounds=${1:-3}
summary=$here/ab-summary.txt
: > "$summary"
for r in $(seq 1 "$rounds"); do
  for mode in dest ingress destnow; do
    case $mode in
      dest) args="" ;;
      ingress) args="--no-deliver-at-destination" ;;
      destnow) args="--no-reply-hold" ;;
    esac
    out=$here/ab-$mode-$r
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    rc=0
    env SERVE_ARGS="$args" SYSTEMS=strowger CAPTURE=1 OUT="$out" \
      bash "$root/bench/ovn-compare.sh" > "$out.log" 2>&1 || rc=$?
    d=$(grep -F "first − steady" "$out/table.md" 2>/dev/null | head -1 || true)
    to_ctl=$(grep -c "reply: packet-in at controller's socket" "$out/timeline.txt" 2>/dev/null || true)
    echo "$(date -u +%H:%M) $mode $r rc=$rc load average before: $load | $d | replies to controller: ${to_ctl:-?}" | tee -a "$summary"
  done
done
echo done | tee -a "$summary"
