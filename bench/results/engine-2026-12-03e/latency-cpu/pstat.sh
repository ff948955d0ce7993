#!/usr/bin/env bash
# Profiles `strowger serve --app l2switch` under `strowger bench ofload` the way BENCHMARKS.md
# § "Where Strowger's time goes" did: controller pinned to CPU 0, generator to CPU 1, then
#   - the CPU share of each process over 3 s of the measured window (/proc/PID/stat),
#   - `perf record` of the controller over the same kind of window, top symbols and DSOs,
#   - the generator's JSON result (rate reached, latency percentiles).
# Usage: bash bench/profile-controller.sh [RATE [PACING]]   (no RATE: closed loop, 64 in flight)
# env: STROWGER_BIN (default target/release/strowger, built if missing), OUT (default a mktemp dir),
#      TOPOLOGY=bridge|router|router-chain profiles the engine (`serve --packet-in-rate 0`) under
#      `ofload --topology` instead (its set-up over REST and OVSDB takes longer: SETTLE seconds
#      before sampling, default 4, or 12 with a topology); TP_PORTS (default 16) as ofload's
#      --tp-ports; PERF_ARGS (default `-F 999`, e.g. `-F 999 -g --call-graph dwarf` for inclusive
#      costs) and PERF_SECONDS (default 2) for the `perf record`; MODE=latency: one packet-in in
#      flight per switch (ofload --mode latency)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-}
PACING=${2:-smooth}
BIN=${STROWGER_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/strowger}
TOPOLOGY=${TOPOLOGY:-}
OUT=${OUT:-$(mktemp -d /tmp/strowger-profile.XXXXXX)}
[ -x "$BIN" ] || cargo build --release --locked -p strowger >&2
command -v perf >/dev/null || { echo "perf is required (apt-get install linux-perf)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
api=$(free_port)
if [ -n "$TOPOLOGY" ]; then
  app=(--packet-in-rate 0 --no-tunnel-local-ip)
else
  app=(--app l2switch)
fi
if [ -n "${RESPONDER:-}" ]; then
RUST_LOG=warn taskset -c 0 "$BIN" bench responder --listen "127.0.0.1:$port" >"$OUT/controller.log" 2>&1 &
rctl=$!
python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); import time; time.sleep(1000)' $api &
else
RUST_LOG=warn taskset -c 0 "$BIN" serve "${app[@]}" --in-memory --openflow-listen "127.0.0.1:$port" \
  --api-listen "127.0.0.1:$api" --ovsdb-listen 127.0.0.1:0 >"$OUT/controller.log" 2>&1 &
fi
ctl=$!
[ -n "${RESPONDER:-}" ] && ctl=$rctl
gen=
cleanup() {
  [ -n "$gen" ] && kill "$gen" 2>/dev/null || true
  kill "$ctl" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
deadline=$((SECONDS + 20))
until ss -Hltn "sport = :$port" | grep -q LISTEN; do
  [ $SECONDS -lt $deadline ] || { echo "controller not listening after 20 s" >&2; exit 1; }
  sleep 0.1
done
args=(--threads 1 --json --quiet --switches 16 --macs 1000 --warmup 2
  --duration "$([ -n "$TOPOLOGY" ] && echo 20 || echo 8)"
  --controller "127.0.0.1:$port" --in-flight 64)
[ -n "$RATE" ] && args+=(--rate "$RATE" --pacing "$PACING")
[ -n "${MODE:-}" ] && args+=(--mode "$MODE")
[ -n "$TOPOLOGY" ] && args+=(--topology "$TOPOLOGY" --api "http://127.0.0.1:$api" --vms 64 --tp-ports "${TP_PORTS:-16}")
until ss -Hltn "sport = :$api" | grep -q LISTEN; do sleep 0.1; done
taskset -c 1 "$BIN" bench ofload "${args[@]}" >"$OUT/ofload.json" &
gen=$!
# The learning round and warm-up take ~3 s (plus the topology's set-up); sample inside the
# measured window.
sleep "${SETTLE:-$([ -n "$TOPOLOGY" ] && echo 12 || echo 4)}"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
c0=$(ticks "$ctl"); g0=$(ticks "$gen"); sleep 3; c1=$(ticks "$ctl"); g1=$(ticks "$gen")
hz=$(getconf CLK_TCK)
echo "CPU over 3 s: controller $(( (c1 - c0) * 100 / hz / 3 )) %, generator $(( (g1 - g0) * 100 / hz / 3 )) %"
perf stat -e raw_syscalls:sys_enter,context-switches,task-clock -p "$ctl" -- sleep 3 2>&1 | grep -E "sys_enter|context|task-clock" & perf stat -e raw_syscalls:sys_enter,context-switches,task-clock -p "$gen" -- sleep 3 2>&1 | grep -E "sys_enter|context|task-clock"; wait %perf 2>/dev/null; sleep 0.5
perf trace -s -p "$gen" -- sleep 1 2>&1 | grep -E "^ +[a-z_]+ +[0-9]" | head -12
wait "$gen"; gen=
# `head` closes the pipe early: under pipefail that would end the script before the summary.
perf report -i "$OUT/perf.data" --no-children --stdio --sort dso 2>/dev/null | grep -E '^ +[0-9]' | head -5 || true
perf report -i "$OUT/perf.data" --no-children --stdio --sort sym 2>/dev/null | grep -E '^ +[0-9]' | head -25 || true
python3 - "$OUT/ofload.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); l = d["latency"]
print(f"reached {d['responses_per_sec']:,.0f} answers/s; latency p50 {l['p50_us']:.0f} / p99 {l['p99_us']:.0f} / p99.9 {l['p999_us']:.0f} µs")
PY
echo "perf data and logs in $OUT"
