#!/usr/bin/env bash
# The virtual network engine through real sessions and virtual topologies, beside the
# generator's ceiling and the learning switch, in one run (issue 13), plus the end-to-end
# invalidation figures (issue 11):
#   responder        `strowger bench responder`: the generator's ceiling (classic ofload)
#   l2switch         `strowger serve --app l2switch` (classic ofload, as bench/ofload-compare.sh)
#   engine-bridge    `strowger serve` (engine) under `ofload --topology bridge`
#   engine-router    … `--topology router` (bridge → router → bridge)
#   engine-chain     … `--topology router-chain` (the router's inbound filter has 10 rules)
# For each: peak throughput (K in flight per switch), latency paced at half that peak (smooth
# arrivals), latency mode (one in flight per switch). The engine runs with `--packet-in-rate 0`
# (no per-port packet-in budget: the generator sends each VIF far more than a VM would).
# Then, per FLOWS in $INVALIDATE: a fresh engine, FLOWS flows installed through two emulated
# hosts (100 source VIFs to FLOWS/100 MACs behind a sink), one source port set admin-down over
# REST; the time from the request to the last of its flows' deletes at the emulated switch.
#
# Each controller is started fresh per run (the virtual-topology runs register hosts and build
# their topology over REST; the emulated hosts are an ovsdb-server each, see BENCHMARKS.md).
# The controller runs pinned on CPU $CTL_CPU and the generator (with the emulated hosts'
# ovsdb-servers, idle while measuring) on CPU $GEN_CPU, both at nice $NICE in their own
# autogroup (see ofload-compare.sh for why not SCHED_FIFO).
#
# Usage: bash bench/engine-compare.sh   (env: SWITCHES MACS VMS TP_PORTS IN_FLIGHT DURATION
#        WARMUP CTL_CPU GEN_CPU NICE OUT STROWGER_BIN RUNS INVALIDATE)
set -euo pipefail
cd "$(dirname "$0")/.."

SWITCHES=${SWITCHES:-16}
MACS=${MACS:-1000}
VMS=${VMS:-64}
TP_PORTS=${TP_PORTS:-16}
IN_FLIGHT=${IN_FLIGHT:-64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CTL_CPU=${CTL_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
NICE=${NICE:--20}
RUNS=${RUNS-"responder l2switch engine-bridge engine-router engine-chain"}
INVALIDATE=${INVALIDATE-"1000 10000 100000"}
OUT=${OUT:-$(mktemp -d /tmp/engine-compare.XXXXXX)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$OUT"

say() { printf '== %s\n' "$*" >&2; }

if [ -n "${STROWGER_BIN:-}" ]; then
  BIN=$STROWGER_BIN
else
  say "building strowger (release)"
  cargo build --release --locked -p strowger >&2
  BIN=$CARGO_TARGET_DIR/release/strowger
fi
for tool in taskset ss python3 ovsdb-server ovsdb-tool; do
  command -v $tool >/dev/null || { echo "$tool is required (ovsdb-*: apt-get install openvswitch-switch)" >&2; exit 1; }
done
source "$(dirname "$0")/lib.sh"   # pinning, stop_controller (on EXIT), free_port, wait_listening

# start_controller NAME LOG: sets PORT (OpenFlow) and API (REST base URL).
start_controller() {
  local name=$1 log=$2 api_port cmd
  PORT=$(free_port); api_port=$(free_port); API=http://127.0.0.1:$api_port
  case $name in
    responder) cmd=("$BIN" bench responder --listen "127.0.0.1:$PORT") ;;
    l2switch) cmd=(env RUST_LOG=warn "$BIN" serve --app l2switch --in-memory
      --openflow-listen "127.0.0.1:$PORT" --api-listen "127.0.0.1:$api_port" --ovsdb-listen 127.0.0.1:0) ;;
    # SERVE_ARGS: more arguments for the engine's `strowger serve` (split on spaces).
    # shellcheck disable=SC2206
    engine*) cmd=(env RUST_LOG=warn "$BIN" serve --in-memory --no-tunnel-local-ip --packet-in-rate 0
      --openflow-listen "127.0.0.1:$PORT" --api-listen "127.0.0.1:$api_port" --ovsdb-listen 127.0.0.1:0
      ${SERVE_ARGS:-}) ;;
  esac
  "${PIN_CTL[@]}" "${cmd[@]}" >"$log" 2>&1 &
  CTL_PID=$!
  wait_listening "$PORT"
  [ "$name" = responder ] || wait_listening "$api_port"
}

topology_of() {
  case $1 in
    engine-bridge) echo bridge ;; engine-router) echo router ;; engine-chain) echo router-chain ;;
    *) echo "" ;;
  esac
}

# run NAME KIND ARGS…: one ofload run against a fresh controller, JSON to $OUT/NAME-KIND.json.
run() {
  local name=$1 kind=$2 topo; shift 2
  topo=$(topology_of "$name")
  start_controller "$name" "$OUT/$name-$kind.log"
  local gen=("$BIN" bench ofload --threads 1 --json --quiet --switches "$SWITCHES"
    --warmup "$WARMUP" --duration "$DURATION" --controller "127.0.0.1:$PORT")
  if [ -n "$topo" ]; then
    gen+=(--topology "$topo" --api "$API" --vms "$VMS" --tp-ports "$TP_PORTS")
  else
    gen+=(--macs "$MACS")
  fi
  "${PIN_GEN[@]}" "${gen[@]}" "$@" >"$OUT/$name-$kind.json" 2>"$OUT/$name-$kind.err" \
    || { echo "ofload failed; see $OUT/$name-$kind.err" >&2; cat "$OUT/$name-$kind.err" >&2; stop_controller; return 1; }
  stop_controller
}

json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel: $(uname -r)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "strowger: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
  echo "parameters: switches=$SWITCHES macs=$MACS (classic) vms=$VMS tp_ports=$TP_PORTS (virtual) in_flight=$IN_FLIGHT warmup=${WARMUP}s duration=${DURATION}s; controller on CPU $CTL_CPU, generator on CPU $GEN_CPU, nice $NICE; engine --packet-in-rate 0"
} | tee "$OUT/machine.txt" >&2

for name in $RUNS; do
  say "$name: peak"
  run "$name" throughput --in-flight "$IN_FLIGHT"
  peak=$(json_field "$OUT/$name-throughput.json" responses_per_sec)
  half=$(python3 -c "print(max(1.0, $peak / 2))")
  say "$name: peak $peak responses/s; pacing at $half"
  run "$name" halfrate --in-flight "$IN_FLIGHT" --rate "$half" --pacing smooth
  say "$name: latency mode"
  run "$name" latency --mode latency
done
for flows in $INVALIDATE; do
  say "invalidation with $flows flows"
  start_controller engine-inval "$OUT/invalidation-$flows.log"
  "${PIN_GEN[@]}" "$BIN" bench ofload --threads 1 --json --quiet --controller "127.0.0.1:$PORT" \
    --api "$API" --topology bridge --invalidate "$flows" --in-flight "$IN_FLIGHT" --warmup 0 \
    >"$OUT/invalidation-$flows.json" 2>"$OUT/invalidation-$flows.err" \
    || { cat "$OUT/invalidation-$flows.err" >&2; exit 1; }
  stop_controller
done

python3 - "$OUT" "$RUNS" "$INVALIDATE" <<'EOF' | tee "$OUT/table.md"
import json, sys, os
out, names, inval = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def load(n, kind):
    with open(os.path.join(out, f"{n}-{kind}.json")) as f:
        return json.load(f)
base = load("responder", "throughput")["responses_per_sec"] if "responder" in names else None
base_lat = load("responder", "latency")["latency"]["p50_us"] if "responder" in names else None
print("| run | responses/s (peak) | vs responder | ½ peak, smooth: achieved/s, p50 / p99 / p99.9 µs | latency mode: responses/s, p50 / p99 µs | p50 vs responder | answers checked wrong | lost |")
print("|---|---:|---:|---|---|---:|---:|---:|")
for n in names:
    t, h, l = (load(n, k) for k in ("throughput", "halfrate", "latency"))
    ratio = f"{t['responses_per_sec'] / base:.0%}" if base else "–"
    hl, ll = h["latency"], l["latency"]
    lr = f"{ll['p50_us'] / base_lat:.2f}×" if base_lat else "–"
    virtual = t["params"].get("topology") is not None
    wrong = sum(r["totals"].get("mismatched", 0) for r in (t, h, l)) if virtual else "–"
    lost = sum(r["totals"]["lost"] for r in (t, h, l))
    print(f"| {n} | {t['responses_per_sec']:,.0f} | {ratio} | {h['responses_per_sec']:,.0f}, "
          f"{hl['p50_us']:.0f} / {hl['p99_us']:.0f} / {hl['p999_us']:.0f} | "
          f"{l['responses_per_sec']:,.0f}, {ll['p50_us']:.0f} / {ll['p99_us']:.0f} | {lr} | {wrong} | {lost} |")
if inval:
    print()
    print("| flows installed | affected (1 %) | REST answered | first delete | last affected delete | affected deleted | unaffected deleted | other deletes | answers checked wrong |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in inval:
        with open(os.path.join(out, f"invalidation-{n}.json")) as f:
            d = json.load(f)
        i = d["invalidation"]
        print(f"| {i['flows_installed']:,} | {i['affected']:,} | {i['rest_reply_ms']:.2f} ms | {i['first_delete_ms']:.2f} ms | "
              f"**{i['last_delete_ms']:.2f} ms** | {i['affected_deleted']:,} | {i['unaffected_deleted']} | {i['other_deleted']} | {d['totals']['mismatched']} |")
EOF
say "results in $OUT"
