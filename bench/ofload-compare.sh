#!/usr/bin/env bash
# Reproduces the side-by-side OpenFlow 1.3 controller table of BENCHMARKS.md in one run, with the
# same `strowger bench ofload` parameters for every controller:
#   responder        the generator's own ceiling (`strowger bench responder`, answers at once)
#   strowger         `strowger serve --app l2switch` (release build)
#   os-ken           bench/osken_simple_switch_13.py under os-ken 3.1.1's osken-manager
#   ovs-testcontroller  OVS's C learning switch (`-O OpenFlow13`)
# For each: peak throughput (K packet-ins in flight per switch), then latency percentiles paced
# at half that peak (smooth pacing, then 1 ms bursts), then latency mode (one packet-in in
# flight per switch, cbench -l).
#
# The controller runs pinned on CPU $CTL_CPU and the generator on CPU $GEN_CPU (one core each),
# so every controller gets exactly one core whatever its threading; on a 2-core machine that is
# all there is. Both run at nice $NICE (default -20, needs root; NICE=0 turns it off), each in a
# session of its own whose autogroup gets the same nice: with autogroup scheduling (Debian's
# default) a plain `nice` only ranks processes within their own session, so a build in another
# session would still get half of each core. Not SCHED_FIFO: a real-time task that keeps its
# core busy (both ends do, at half the peak rate) is throttled by the kernel for 50 ms of every
# second (sched_rt_runtime_us), which put a 45–50 ms stall into every p99.9 of earlier runs.
# Results (JSON per run, logs, table.md) go to $OUT.
#
# Usage: bash bench/ofload-compare.sh        (env: SWITCHES MACS IN_FLIGHT DURATION WARMUP
#                                             CTL_CPU GEN_CPU NICE VENV OUT CONTROLLERS
#                                             STROWGER_BIN SWEEP)
# SWEEP="100000 200000 …" also runs each controller paced (smooth) at each of those rates and
# writes the p99-against-rate table to $OUT/sweep.md.
# STROWGER_BIN skips the build and uses that binary (release build of this tree).
set -euo pipefail
cd "$(dirname "$0")/.."

SWITCHES=${SWITCHES:-16}
MACS=${MACS:-1000}
IN_FLIGHT=${IN_FLIGHT:-64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CTL_CPU=${CTL_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
NICE=${NICE:--20}
VENV=${VENV:-/tmp/strowger-bench-venv}
CONTROLLERS=${CONTROLLERS:-"responder strowger os-ken ovs-testcontroller"}
OUT=${OUT:-$(mktemp -d /tmp/ofload-compare.XXXXXX)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$OUT"

say() { printf '== %s\n' "$*" >&2; }

# --- prerequisites ------------------------------------------------------------------------
if [ -n "${STROWGER_BIN:-}" ]; then
  BIN=$STROWGER_BIN
else
  say "building strowger (release)"
  cargo build --release --locked -p strowger >&2
  BIN=$CARGO_TARGET_DIR/release/strowger
fi
case " $CONTROLLERS " in *" os-ken "*)
  if [ ! -x "$VENV/bin/osken-manager" ]; then
    say "installing os-ken 3.1.1 into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'os-ken==3.1.1'
  fi ;;
esac
case " $CONTROLLERS " in *" ovs-testcontroller "*)
  command -v ovs-testcontroller >/dev/null || {
    echo "ovs-testcontroller not found: apt-get install openvswitch-testcontroller" >&2; exit 1; } ;;
esac
for tool in taskset ss python3; do
  command -v $tool >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
source "$(dirname "$0")/lib.sh"   # pinning, stop_controller (on EXIT), free_port, wait_listening

# Polls until no connection to PORT is left from the previous run (20 s deadline):
# ovs-testcontroller serves at most 16 switches and refuses the 17th, so a run must not overlap
# the previous run's closing connections.
wait_idle() {
  local port=$1 deadline=$((SECONDS + 20))
  while [ -n "$(ss -Htn state established state close-wait "( sport = :$port )")" ]; do
    [ $SECONDS -lt $deadline ] || { echo "connections to $port still open after 20 s" >&2; return 1; }
    sleep 0.1
  done
}

start_controller() {
  local name=$1 port=$2 cmd
  case $name in
    responder)
      cmd=("$BIN" bench responder --listen "127.0.0.1:$port") ;;
    strowger)
      cmd=(env RUST_LOG=warn "$BIN" serve --app l2switch --in-memory
        --openflow-listen "127.0.0.1:$port" --api-listen "127.0.0.1:$(free_port)"
        --ovsdb-listen "127.0.0.1:$(free_port)") ;;
    os-ken)
      cmd=("$VENV/bin/osken-manager" --ofp-tcp-listen-port "$port"
        --ofp-listen-host 127.0.0.1 bench/osken_simple_switch_13.py) ;;
    ovs-testcontroller)
      cmd=(ovs-testcontroller -O OpenFlow13 "ptcp:$port:127.0.0.1") ;;
    *) echo "unknown controller $name" >&2; return 1 ;;
  esac
  "${PIN_CTL[@]}" "${cmd[@]}" >"$OUT/$name.log" 2>&1 &
  CTL_PID=$!
  wait_listening "$port"
}

ofload() {
  wait_idle "${port:?}"
  "${PIN_GEN[@]}" "$BIN" bench ofload --threads 1 --json --quiet \
    --switches "$SWITCHES" --macs "$MACS" --warmup "$WARMUP" --duration "$DURATION" "$@"
}

json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# --- machine facts ------------------------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel: $(uname -r)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "strowger: $(git rev-parse --short HEAD)"
  [ -x "$VENV/bin/python" ] && echo "os-ken: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("os-ken"))' 2>/dev/null || echo '?') on $("$VENV/bin/python" --version 2>&1)"
  echo "ovs-testcontroller: $(ovs-testcontroller --version 2>/dev/null | head -1 || echo absent)"
  echo "parameters: switches=$SWITCHES macs=$MACS in_flight=$IN_FLIGHT warmup=${WARMUP}s duration=${DURATION}s; controller on CPU $CTL_CPU, generator on CPU $GEN_CPU, nice $NICE"
} | tee "$OUT/machine.txt" >&2

# --- the runs -----------------------------------------------------------------------------
for name in $CONTROLLERS; do
  port=$(free_port)
  say "$name on 127.0.0.1:$port"
  start_controller "$name" "$port"
  addr=127.0.0.1:$port
  ofload --controller "$addr" --in-flight "$IN_FLIGHT" >"$OUT/$name-throughput.json"
  peak=$(json_field "$OUT/$name-throughput.json" responses_per_sec)
  half=$(python3 -c "print(max(1.0, $peak / 2))")
  say "$name: peak $peak responses/s; pacing at $half"
  ofload --controller "$addr" --in-flight "$IN_FLIGHT" --rate "$half" --pacing smooth >"$OUT/$name-halfrate.json"
  ofload --controller "$addr" --in-flight "$IN_FLIGHT" --rate "$half" --pacing tick >"$OUT/$name-halfrate-tick.json"
  ofload --controller "$addr" --mode latency >"$OUT/$name-latency.json"
  for rate in ${SWEEP:-}; do
    ofload --controller "$addr" --in-flight "$IN_FLIGHT" --rate "$rate" --pacing smooth >"$OUT/$name-sweep-$rate.json"
  done
  stop_controller
done

# --- the table ----------------------------------------------------------------------------
python3 - "$OUT" $CONTROLLERS <<'EOF' | tee "$OUT/table.md"
import json, sys, os
out, names = sys.argv[1], sys.argv[2:]
def load(n, kind):
    with open(os.path.join(out, f"{n}-{kind}.json")) as f:
        return json.load(f)
base = None
if "os-ken" in names:
    base = load("os-ken", "throughput")["responses_per_sec"]
print("| controller | responses/s (peak) | vs os-ken | ½ peak, smooth: achieved/s, p50 / p99 / p99.9 µs | ½ peak, 1 ms bursts: achieved/s, p50 / p99 / p99.9 µs | latency mode (1 in flight/switch): responses/s, p50 / p99 µs | flow_mods/s at peak | lost |")
print("|---|---:|---:|---|---|---|---:|---:|")
def lat(r):
    l = r["latency"]
    return f"{r['responses_per_sec']:,.0f}, {l['p50_us']:.0f} / {l['p99_us']:.0f} / {l['p999_us']:.0f}"
for n in names:
    t, h, b, l = (load(n, k) for k in ("throughput", "halfrate", "halfrate-tick", "latency"))
    ratio = f"{t['responses_per_sec'] / base:.1f}×" if base else "–"
    ll = l["latency"]
    lost = sum(r["totals"]["lost"] for r in (t, h, b, l))
    print(f"| {n} | {t['responses_per_sec']:,.0f} | {ratio} | {lat(h)} | {lat(b)} "
          f"| {l['responses_per_sec']:,.0f}, {ll['p50_us']:.0f} / {ll['p99_us']:.0f} "
          f"| {t['flow_mods_per_sec']:,.0f} | {lost} |")
EOF
if [ -n "${SWEEP:-}" ]; then
  python3 - "$OUT" "$SWEEP" $CONTROLLERS <<'EOF' | tee "$OUT/sweep.md"
import json, sys, os
out, rates, names = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
print("| controller | target/s | achieved/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for n in names:
    for r in rates:
        with open(os.path.join(out, f"{n}-sweep-{r}.json")) as f:
            d = json.load(f)
        l = d["latency"]
        print(f"| {n} | {int(r):,} | {d['responses_per_sec']:,.0f} | {l['p50_us']:.0f} | {l['p90_us']:.0f} "
              f"| {l['p99_us']:.0f} | {l['p999_us']:.0f} | {l['max_us']:.0f} |")
EOF
fi
say "results in $OUT"
