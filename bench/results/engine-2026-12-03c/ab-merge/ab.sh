#!/usr/bin/env bash
# Interleaved A/B of two strowger binaries on one topology, with the responder before and after.
# usage: ab.sh OUT TOPO ROUNDS BIN_A BIN_B
set -euo pipefail
OUT=$1 TOPO=$2 ROUNDS=$3 A=$4 B=$5
NICE=${NICE:--20} CTL_CPU=0 GEN_CPU=1
mkdir -p "$OUT"
cd "$(dirname "$0")/../../../.."
source bench/lib.sh
DUR=${DURATION:-10}
one() { # label bin kind(throughput|latency) topo
  local label=$1 bin=$2 kind=$3 topo=$4 api_port
  PORT=$(free_port); api_port=$(free_port)
  if [ "$topo" = responder ]; then
    "${PIN_CTL[@]}" "$bin" bench responder --listen "127.0.0.1:$PORT" >"$OUT/$label-$kind.log" 2>&1 &
    CTL_PID=$!; wait_listening "$PORT"
    gen=(--macs 1000)
  else
    "${PIN_CTL[@]}" env RUST_LOG=warn "$bin" serve --in-memory --no-tunnel-local-ip --packet-in-rate 0 \
      --openflow-listen "127.0.0.1:$PORT" --api-listen "127.0.0.1:$api_port" --ovsdb-listen 127.0.0.1:0 >"$OUT/$label-$kind.log" 2>&1 &
    CTL_PID=$!; wait_listening "$PORT"; wait_listening "$api_port"
    gen=(--topology "$topo" --api "http://127.0.0.1:$api_port" --vms 64 --tp-ports 16)
  fi
  if [ "$kind" = latency ]; then gen+=(--mode latency); else gen+=(--in-flight 64); fi
  "${PIN_GEN[@]}" "$bin" bench ofload --threads 1 --json --quiet --switches 16 --warmup 3 --duration "$DUR" \
     --controller "127.0.0.1:$PORT" "${gen[@]}" >"$OUT/$label-$kind.json" 2>"$OUT/$label-$kind.err" || cat "$OUT/$label-$kind.err" >&2
  stop_controller
  python3 -c "
import json,sys; d=json.load(open('$OUT/$label-$kind.json')); t=d['totals']
print('$label $kind', round(d['responses_per_sec']), 'p50', d['latency']['p50_us'], 'mismatched', t.get('mismatched'), 'lost', t['lost'])"
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
one resp0 "$A" throughput responder
one resp0 "$A" latency responder
for r in $(seq "$ROUNDS"); do
  one "A$r" "$A" throughput "$TOPO"
  one "B$r" "$B" throughput "$TOPO"
  one "B$r" "$B" latency "$TOPO"
  one "A$r" "$A" latency "$TOPO"
done
one resp1 "$A" throughput responder
one resp1 "$A" latency responder
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
