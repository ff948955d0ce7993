#!/bin/bash
# first packet at 100 hosts: plain vs underlay learned, 2 rounds, with the breakdown
cd /work/main
for r in 1 2; do
  for mode in plain learn; do
    if [ $mode = learn ]; then export STROWGER_SCALE_UL_LEARN=1; else unset STROWGER_SCALE_UL_LEARN; fi
    STROWGER_SCALE_BREAKDOWN=1 flock /tmp/strowger-bench.lock /work/tgt-rel/release/examples/scale --hosts 100 > /tmp/fp/$mode-$r.log 2>&1
    echo "$(date -u +%H:%M) $mode $r: $(grep -E 'packet-in counted|flood flow|^\| 100' /tmp/fp/$mode-$r.log | tr '\n' ' ')" >> /tmp/fp/summary.txt
  done
done
echo done >> /tmp/fp/summary.txt
