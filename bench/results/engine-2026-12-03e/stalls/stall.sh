#!/bin/bash
# usage: stall.sh LABEL [env...]
B=${B:-/work/main/target/release/strowger}
L=$1; shift
env "$@" RUST_LOG=warn taskset -c 0 $B serve --in-memory --no-tunnel-local-ip --packet-in-rate 0 --openflow-listen 127.0.0.1:46653 --api-listen 127.0.0.1:48080 --ovsdb-listen 127.0.0.1:0 > /tmp/ctl.log 2>&1 & CTL=$!
sleep 1
taskset -c 1 $B bench ofload --threads 1 --json --quiet --switches 16 --warmup 2 --duration 8 --rate 150000 --pacing smooth --controller 127.0.0.1:46653 --in-flight 64 --topology router-chain --api http://127.0.0.1:48080 --vms 64 --tp-ports 16 > /tmp/of-$L.json 2>/tmp/of.err
curl -s http://127.0.0.1:48080/metrics | grep "packet_in_seconds_bucket" | awk -v L=$L '{print L, $0}' | grep -E 'le="0.000(256|512)"|le="0.00(1024|2048|4096|8192)"|le="0.0(16384|32768)"|Inf' | tr '\n' ' '; echo
kill $CTL; wait $CTL 2>/dev/null
python3 -c "
import json; d=json.load(open('/tmp/of-$L.json')); l=d['latency']; print('$L', round(d['responses_per_sec']), 'p50', l['p50_us'], 'p99', l['p99_us'], 'p999', l['p999_us'], 'max', l['max_us'])"
