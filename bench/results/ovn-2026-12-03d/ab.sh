#!/usr/bin/env bash
# First packet, three modes interleaved, Strowger alone, every run under the bench lock
# (ovn-compare.sh takes it), CAPTURE=1 for the per-hop timeline:
#   relay-old  main 6061109 (barrier answer through a spawned task), switches through the lab's
#              socat relays (MGMT=0), as every earlier run
#   mgmt-old   the same binary, switches over the management network (MGMT=1)
#   mgmt-new   the barrier's answer handed to the app by the connection task that read it,
#              over the management network
# and, with PUNT_BIN (answers install flows to the controller, `Compiled::punt`), over the
# management network:
#   punt-held      the default: the request held for the destination's barrier
#   punt-unheld    `--no-reply-hold`
#   noflows-unheld `--no-answer-flows --no-reply-hold`: what the answers' flows change
# and with FINAL_BIN (commit 489773c: a request delivered at its destination is not held):
#   final          its defaults, over the management network
# and with YIELD_BIN (the connection task whose event sent other switches output yields before
# writing its own, so the destination's flow-mod and request go first):
#   yield          its defaults, over the management network (yielding after any output to
#                  other switches: it cost the engine's closed-loop p99, see BENCHMARKS.md)
#   yield2         the same, yielding only after a packet for another switch (the commit kept)
# CAPTURE=0 runs without the captures (the tcpdumps cost the first ping ~0.3 ms).
# Usage: OLD_BIN=… NEW_BIN=… PUNT_BIN=… FINAL_BIN=… YIELD_BIN=… YIELD2_BIN=… [CAPTURE=0] bash ab.sh [ROUNDS] [MODES]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
rounds=${1:-3}
modes=${2:-relay-old mgmt-old mgmt-new}
summary=$here/ab-summary.txt
for r in $(seq 1 "$rounds"); do
  for mode in $modes; do
    args=""
    case $mode in
      relay-old) bin=$OLD_BIN mgmt=0 ;;
      mgmt-old) bin=$OLD_BIN mgmt=1 ;;
      relay-new) bin=$NEW_BIN mgmt=0 ;;
      mgmt-new) bin=$NEW_BIN mgmt=1 ;;
      punt-held) bin=$PUNT_BIN mgmt=1 ;;
      punt-unheld) bin=$PUNT_BIN mgmt=1 args="--no-reply-hold" ;;
      noflows-unheld) bin=$PUNT_BIN mgmt=1 args="--no-answer-flows --no-reply-hold" ;;
      final) bin=$FINAL_BIN mgmt=1 ;;
      yield) bin=$YIELD_BIN mgmt=1 ;;
      yield2) bin=$YIELD2_BIN mgmt=1 ;;
    esac
    out=$here/ab-$mode-$r
    [ "${CAPTURE:-1}" = 1 ] || out=$here/nocap-$mode-$r
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    rc=0
    env STROWGER_BIN="$bin" MGMT=$mgmt SERVE_ARGS="$args" SYSTEMS=strowger CAPTURE=${CAPTURE:-1} OUT="$out" \
      bash "$root/bench/ovn-compare.sh" > "$out.log" 2>&1 || rc=$?
    d=$(grep -F "first − steady" "$out/table.md" 2>/dev/null | head -1 || true)
    to_ctl=$(grep -c "reply: packet-in at controller's socket" "$out/timeline.txt" 2>/dev/null || true)
    echo "$(date -u +%H:%M) $mode $r rc=$rc load average before: $load | $d | replies to controller: ${to_ctl:-?}" | tee -a "$summary"
  done
done
echo done | tee -a "$summary"
