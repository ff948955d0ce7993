#!/usr/bin/env bash
# First packet and convergence, Strowger against OVN, in one run (issue 13).
#
# Each system gets a freshly built namespaced lab (scripts/lab/ovs_netns_overlay.sh, 3 hypervisors
# "bare": own ovsdb-server + ovs-vswitchd each, userspace datapath, no br-int), then the same
# logical topology: net1 10.0.1.0/24 and net2 10.0.2.0/24 joined by router r1, every VM's MAC and
# address known to the system (Strowger: DHCP static hosts; OVN: the logical port's addresses),
# VMs addressed by hand (10.0.S.(10·host+vm)/24, default route via 10.0.S.1):
#
#   hv1  vm1..vm6  net1      vm1 is plugged during the run (a); vm2..vm6 are first-ping sources
#   hv2  vm1..vm3  net1, vm4..vm6 net2; vm1..vm3 are plugged during the run (a)
#   hv3  vm1..vm6  net2      vm1 answers (a); vm2..vm6 answer the first pings
#
# Every measured path goes net1 → router → tunnel → hv3/net2, and back.
#   (a) plug → first answered ping, for hv1-vm1, hv2-vm1, hv2-vm2, hv2-vm3 in turn: the VM pings
#       10.0.2.31 (hv3-vm1) every 2 ms from before its VIF exists; t0 is just before
#       `ovs-vsctl add-port br-int vmJ … external_ids:iface-id=…` (the logical port exists
#       already); the figure is the timestamp (`ping -D`) of the first reply − t0. The
#       VM's neighbour entry for its gateway is set by hand beforehand (`ip neigh replace … nud
#       permanent`, the router port's MAC): a real ARP would be retried by Linux at ≥ 10 ms (12 ms
#       seen) intervals, 1 s by default, and quantise the figure.
#   (b) first-ping RTT on a pair that has never talked (PAIRS pairs, hv1-vmK → hv3-vmK, one ping
#       each, `ping -c1`); every VM pinged its gateway once before (a real ARP exchange): the VMs'
#       ARP for the gateway is resolved, both systems alike; the router knows the destination's
#       MAC from the topology in both systems, so no router ARP is in the path.
#   (c) steady RTT: per pair, right after (b), STEADY+WARM pings 20 ms apart; the median of the
#       last STEADY.
#   (d) first − steady per pair; median, min, max over the pairs.
#   (e) flows on each br-int at the end (`ovs-ofctl -O OpenFlow13 dump-flows br-int`, flow lines).
#   (f) CPU seconds (utime + stime, /proc/PID/stat) of the control plane from its start to the end
#       of the measurements: strowger; ovn-northd, each ovn-controller, the NB and SB
#       ovsdb-servers; the hypervisors' ovs-vswitchd beside them (the datapath, both systems). RSS
#       (VmRSS and peak VmHWM) at the end.
#
# Encapsulation: VXLAN for Strowger (its tunnel zone), Geneve for OVN (its default; OVN_ENCAP).
# OVN: Debian's ovn-central + ovn-host (apt-get install ovn-central ovn-host); NB/SB
# ovsdb-servers, ovn-northd and one ovn-controller per hypervisor run in the root namespace with
# their rundirs and databases under a private temporary directory (recipe: ../shared/lab/README.md,
# "OVN as a peer on the namespaced lab"). Everything started is stopped by PID, the namespaces
# deleted, on success, failure or Ctrl-C. Nothing runs in CI: it is a benchmark.
#
# Usage: bash bench/ovn-compare.sh   (env: PAIRS=5 STEADY=50 WARM=10 OVN_ENCAP=geneve
#          CAPTURE=0 (1: tcpdump every first ping, for the breakdown) SYSTEMS="strowger ovn"
#          OUT=bench/results/ovn-DATE/run-HHMM STROWGER_BIN RUST_LOG=warn
#          LOCK=/tmp/strowger-bench.lock: the measured part runs under flock on it)
#        bash bench/ovn-compare.sh table RAW        the tables again from a run's raw.txt
#        bash bench/ovn-compare.sh pooled RAW…      the latency figures of several runs together
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

PAIRS=${PAIRS:-5}
CAPTURE=${CAPTURE:-0}
STEADY=${STEADY:-50}
WARM=${WARM:-10}
OVN_ENCAP=${OVN_ENCAP:-geneve}
SYSTEMS=${SYSTEMS:-strowger ovn}
LOCK=${LOCK:-/tmp/strowger-bench.lock}
OUT=${OUT:-$ROOT/bench/results/ovn-$(date -u +%Y-%m-%d)/run-$(date -u +%H%M)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export RUST_LOG=${RUST_LOG:-warn}
NICE=0 CTL_CPU=0 GEN_CPU=1   # bench/lib.sh wants them; nothing is pinned here (see BENCHMARKS.md)

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'ovn-compare: %s\n' "$*" >&2; exit 1; }

# table RAW: the Markdown tables from the raw lines (`bash bench/ovn-compare.sh table RAW` redoes them).
table() {
  python3 - "$1" <<'EOF'
import collections, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
systems = [s for s in ("strowger", "ovn") if any(r[0] == s for r in rows)]
d = {s: collections.defaultdict(list) for s in systems}
for r in rows:
    s = r[0]
    if r[1] == "plug":
        d[s]["plug"].append(float(r[4])); d[s]["plug_rtt"].append(float(r[6]))
    elif r[1] == "pair":
        f, st = float(r[4]), float(r[6])
        d[s]["first"].append(f); d[s]["steady"].append(st); d[s]["delta"].append(f - st)
    elif r[1] == "flows":
        d[s]["flows"].append(int(r[3]))
    elif r[1] in ("cpu", "cpu_dp"):
        d[s][r[1]].append((r[2], float(r[3]), int(r[4]), int(r[5])))
    elif r[1] == "logical_flows":
        d[s]["lflows"].append(int(r[2]))

def mmm(v, fmt="{:.2f}", unit="ms"):
    if not v:
        return "–"
    if len(v) == 1:
        return f"{fmt.format(v[0])} {unit}"
    return f"{fmt.format(statistics.median(v))} {unit} ({fmt.format(min(v))}–{fmt.format(max(v))})"

def med(s, k):
    return statistics.median(d[s][k]) if s and d[s][k] else None

def cpu(s, k="cpu"):
    return sum(x[1] for x in d[s][k])

def rss(s):
    return sum(x[2] for x in d[s]["cpu"]) / 1024

a, b = (systems + [None, None])[:2]
def ratio(x, y):
    return f"{x / y:.2f}×" if b and x and y else "–"

print(f"| measure | {' | '.join(systems)} |" + (" Strowger / OVN |" if b else ""))
print("|---|" + "---:|" * (len(systems) + (1 if b else 0)))
def line(name, cells, r):
    print(f"| {name} | {' | '.join(cells)} |" + (f" {r} |" if b else ""))

n = max(len(d[s]["first"]) for s in systems)
np = max(len(d[s]["plug"]) for s in systems)
line(f"(a) plug → first answered ping: median (min–max) of {np}", [mmm(d[s]["plug"], "{:.1f}") for s in systems],
     ratio(med(a, "plug"), med(b, "plug")))
line("(a) RTT of that first answer", [mmm(d[s]["plug_rtt"]) for s in systems],
     ratio(med(a, "plug_rtt"), med(b, "plug_rtt")))
line(f"(b) first-ping RTT, fresh pair: median (min–max) of {n}", [mmm(d[s]["first"]) for s in systems],
     ratio(med(a, "first"), med(b, "first")))
line("(c) steady RTT: median of the pairs' medians (min–max)", [mmm(d[s]["steady"], "{:.3f}") for s in systems],
     ratio(med(a, "steady"), med(b, "steady")))
line("(d) **first − steady**", [f"**{mmm(d[s]['delta'])}**" for s in systems],
     ratio(med(a, "delta"), med(b, "delta")))
line("(e) OpenFlow flows on br-int, hv1 / hv2 / hv3", [" / ".join(map(str, d[s]["flows"])) for s in systems],
     ratio(sum(d[a]["flows"]), sum(d[b]["flows"]) if b else 0))
if b and d[b]["lflows"]:
    line("OVN logical flows (southbound)", ["–" if s != b else str(d[s]["lflows"][0]) for s in systems], "–")
line("(f) control-plane CPU seconds, whole run", [f"{cpu(s):.2f} s" for s in systems],
     ratio(cpu(a), cpu(b) if b else 0))
line("control-plane RSS at the end (sum)", [f"{rss(s):.1f} MiB" for s in systems],
     ratio(rss(a), rss(b) if b else 0))
line("ovs-vswitchd CPU seconds, 3 hosts (datapath, beside)", [f"{cpu(s, 'cpu_dp'):.2f} s" for s in systems],
     ratio(cpu(a, "cpu_dp"), cpu(b, "cpu_dp") if b else 0))
print()
print("| system | process | CPU s | RSS MiB | peak RSS MiB |")
print("|---|---|---:|---:|---:|")
for s in systems:
    for k in ("cpu", "cpu_dp"):
        for name, c, r, h in d[s][k]:
            print(f"| {s} | {name} | {c:.2f} | {r / 1024:.1f} | {h / 1024:.1f} |")
EOF
}
if [ "${1:-}" = table ]; then table "${2:?usage: ovn-compare.sh table RAW}"; exit; fi
# pooled RAW…: the latency figures of several runs together (median, quartiles, min–max, ratio).
pooled() {
  python3 - "$@" <<'EOF'
import statistics, sys
d = {}
for f in sys.argv[1:]:
    for line in open(f):
        r = line.split()
        if r[1] == "plug":
            d.setdefault((r[0], "plug"), []).append(float(r[4]))
            d.setdefault((r[0], "plug_rtt"), []).append(float(r[6]))
        elif r[1] == "pair":
            first, steady = float(r[4]), float(r[6])
            d.setdefault((r[0], "first"), []).append(first)
            d.setdefault((r[0], "steady"), []).append(steady)
            d.setdefault((r[0], "delta"), []).append(first - steady)
names = {"plug": "(a) plug → first answered ping", "plug_rtt": "(a) RTT of that first answer",
         "first": "(b) first-ping RTT", "steady": "(c) steady RTT (pair medians)",
         "delta": "(d) **first − steady**"}
print(f"| pooled over {len(sys.argv) - 1} runs, ms | Strowger: median (quartiles; min–max; n) | OVN | Strowger / OVN (medians) |")
print("|---|---|---|---:|")
def cell(v):
    q = statistics.quantiles(v, n=4)
    return f"{statistics.median(v):.2f} ({q[0]:.2f}–{q[2]:.2f}; {min(v):.2f}–{max(v):.2f}; {len(v)})"
for k, name in names.items():
    a, b = d.get(("strowger", k)), d.get(("ovn", k))
    if not a or not b or len(a) < 2 or len(b) < 2:
        continue
    print(f"| {name} | {cell(a)} | {cell(b)} | {statistics.median(a) / statistics.median(b):.2f}× |")
EOF
}
if [ "${1:-}" = pooled ]; then shift; pooled "$@"; exit; fi

[ "$(id -u)" = 0 ] || die "needs root (namespaces)"
[ "$CAPTURE" = 0 ] || command -v tcpdump >/dev/null || die "CAPTURE=1 needs tcpdump"
{ [ "$PAIRS" -ge 1 ] && [ "$PAIRS" -le 5 ]; } || die "PAIRS must be 1..5 (hv1-vm2..vm6)"
for tool in ovn-northd ovn-controller ovn-nbctl ovn-sbctl; do
  command -v $tool >/dev/null || die "$tool missing: apt-get install ovn-central ovn-host"
done
for tool in ovsdb-server ovs-vswitchd socat ethtool curl python3 bc flock; do
  command -v $tool >/dev/null || die "$tool missing (bash scripts/setup.sh)"
done

# Re-entered under the lock: the measured part never overlaps another engineer's benchmark.
if [ -z "${OVNC_LOCKED:-}" ]; then
  if [ -n "${STROWGER_BIN:-}" ]; then
    BIN=$STROWGER_BIN
  else
    say "building strowger (release)"
    cargo build --release --locked -p strowger >&2 || die "build failed"
    BIN=$CARGO_TARGET_DIR/release/strowger
  fi
  say "waiting for $LOCK"
  OVNC_LOCKED=1 STROWGER_BIN=$BIN OUT=$OUT exec flock "$LOCK" bash "$ROOT/bench/ovn-compare.sh" "$@"
fi
BIN=$STROWGER_BIN
[ -x "$BIN" ] || die "$BIN missing"

# The lab: a private name prefix and state directory, ports found free, no root-netns TCP relays
# to the hypervisors' OVSDBs (the unix sockets suffice).
export NHV=3 NVM=6 P=ovnc B=/run/ovnc-bench OVSDB_TCP_BASE=0
# MGMT=1 (the default): Strowger runs in a controller namespace and the switches reach it over a
# management network (veths and a bridge), as real hosts reach a controller across a NIC;
# MGMT=0: through the lab's two socat relays per connection, as before 2026-12-03 18:00 UTC.
# OVN's daemons use unix sockets either way (its ovn-controllers are local to the switches).
export MGMT=${MGMT:-1}
source "$ROOT/bench/lib.sh"   # free_port, stop_controller (CTL_PID)
# (strowger_check.sh's serve reads API_PORT and OVSDB_PORT)
CTL_PORT=$(free_port); MGR_PORT=$(free_port); API_PORT=$(free_port); OVSDB_PORT=$(free_port)
export CTL_PORT MGR_PORT API_PORT OVSDB_PORT
# shellcheck source=scripts/lab/ovs_netns_overlay.sh
source "$ROOT/scripts/lab/ovs_netns_overlay.sh"
# shellcheck source=scripts/lab/strowger_check.sh
source "$ROOT/scripts/lab/strowger_check.sh"   # serve, add_hosts, post, jget, wait_for, plug, bound, …

work=$(mktemp -d /tmp/ovnc-bench.XXXXXX)
OVN_DIR=$work/ovn
log=$work/strowger.log
export api="http://127.0.0.1:$API_PORT/api/v1"   # the REST helpers' base
ctl_pid="" ping_pid="" cap_pids=()
mkdir -p "$OUT"

ovn_pids() { local f; for f in "$OVN_DIR"/*.pid; do [ -f "$f" ] && cat "$f"; done; }
stop_ovn() {
  local p
  for p in $(ovn_pids); do kill "$p" 2>/dev/null; done
  for _ in $(seq 30); do
    local alive=0; for p in $(ovn_pids); do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break; sleep 0.1
  done
  for p in $(ovn_pids); do kill -9 "$p" 2>/dev/null; done
  rm -f "$OVN_DIR"/*.pid
}
stop_strowger() {
  [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null && wait "$ctl_pid" 2>/dev/null
  ctl_pid=""
}
cleanup() {
  local rc=$?
  set +e
  [ -n "$ping_pid" ] && kill "$ping_pid" 2>/dev/null
  [ ${#cap_pids[@]} -gt 0 ] && kill "${cap_pids[@]}" 2>/dev/null
  stop_strowger
  stop_ovn
  down
  [ "$rc" = 0 ] || { cp -r "$work" "$OUT/failed-logs" 2>/dev/null; echo "failed ($rc); logs in $OUT/failed-logs" >&2; }
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the layout ----------------------------------------------------------------------------
subnet_of() {   # subnet_of HOST VM → 1|2
  case $1 in 1) echo 1 ;; 3) echo 2 ;; 2) [ "$2" -le 3 ] && echo 1 || echo 2 ;; esac
}
addr_of() { echo "10.0.$(subnet_of "$1" "$2").$((10 * $1 + $2))"; }
gw_of() { echo "10.0.$(subnet_of "$1" "$2").1"; }
all_vms() { local i j; for i in 1 2 3; do for j in $(seq 1 "$NVM"); do echo "$i $j"; done; done; }

# The VMs' addresses by hand (the same for both systems); no IPv6, whose router solicitations and
# MLD reports would otherwise reach both systems (OVN floods them to every chassis, Strowger
# simulates them) in the middle of the measured pings.
vms_addressed() {
  local i j ns
  while read -r i j; do
    ns=$(vmns "$i" "$j")
    ip -n "$ns" -4 addr flush dev eth0
    ip -n "$ns" addr add "$(addr_of "$i" "$j")/24" dev eth0
    ip -n "$ns" route replace default via "$(gw_of "$i" "$j")"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done < <(all_vms)
}

# Every plugged VM pings its gateway once: the VMs' ARP for the gateway is resolved.
gateways_resolved() {
  local i j pids=() bad=0 p
  while read -r i j; do
    plugged_later "$i" "$j" && continue
    ip netns exec "$(vmns "$i" "$j")" ping -c1 -W3 -q "$(gw_of "$i" "$j")" >/dev/null 2>&1 &
    pids+=($!)
  done < <(all_vms)
  for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
  [ "$bad" = 0 ] || die "$bad VMs did not get an answer from their gateway"
}

# cpu_of PID → "cpu_seconds rss_kib hwm_kib"
cpu_of() {
  local stat tck; tck=$(getconf CLK_TCK)
  stat=$(cut -d')' -f2- "/proc/$1/stat") || { echo "nan nan nan"; return; }
  # fields after "pid (comm)": state is 1st, utime 12th, stime 13th
  echo "$stat" | awk -v t="$tck" -v r="$(awk '/VmRSS/{print $2}' "/proc/$1/status")" \
    -v h="$(awk '/VmHWM/{print $2}' "/proc/$1/status")" '{printf "%.2f %s %s\n", ($12 + $13) / t, r, h}'
}

# raw SYSTEM METRIC VALUE…: one line of the raw results
raw() { echo "$*" >>"$OUT/raw.txt"; }

flows_per_host() {
  local sys=$1 i n
  for i in 1 2 3; do
    n=$(hvdo "$i" ovs-ofctl -O OpenFlow13 dump-flows br-int | grep -c 'actions=')
    raw "$sys flows hv$i $n"
  done
}

cpu_all() {   # cpu_all SYSTEM NAME=PID…
  local sys=$1 x i; shift
  for x in "$@"; do raw "$sys cpu ${x%%=*} $(cpu_of "${x#*=}")"; done
  for i in 1 2 3; do raw "$sys cpu_dp ovs-vswitchd-hv$i $(cpu_of "$(cat "$B/hv$i/ovs-vswitchd.pid")")"; done
}

# The VMs plugged during the run, one after the other: each pings hv3-vm1 (10.0.2.31, net2).
PLUGGED="11 21 22 23"
plugged_later() { case " $PLUGGED " in *" $1$2 "*) return 0 ;; esac; return 1; }

# (a): plug hvI-vmJ with iface-id ID while it pings 10.0.2.31 every 2 ms; MAC: its gateway's.
measure_plug() {   # measure_plug SYSTEM I J ID MAC
  local sys=$1 i=$2 j=$3 id=$4 t0 line ns
  ns=$(vmns "$i" "$j")
  ip -n "$ns" neigh replace "$(gw_of "$i" "$j")" lladdr "$5" dev eth0 nud permanent
  ip netns exec "$ns" ping -D -n -i 0.002 -c 1 -w 20 "$(addr_of 3 1)" >"$work/plug-$sys.ping" 2>&1 &
  ping_pid=$!
  sleep 0.2   # the ping is sending before the VIF exists
  t0=$(now)
  hvdo "$i" ovs-vsctl add-port br-int "vm$j" -- set Interface "vm$j" external_ids:iface-id="$id"
  wait "$ping_pid"; ping_pid=""
  line=$(grep -m1 'bytes from' "$work/plug-$sys.ping") || { cat "$work/plug-$sys.ping" >&2; die "$sys: no answer after plugging hv$i-vm$j"; }
  # "[1764762000.123456] 64 bytes from 10.0.2.31: icmp_seq=12 ttl=62 time=1.23 ms"
  python3 - "$t0" "$line" "$sys hv$i-vm$j" <<'EOF' >>"$OUT/raw.txt"
import re, sys
t0, line, what = float(sys.argv[1]), sys.argv[2], sys.argv[3]
ts = float(re.search(r"^\[([0-9.]+)\]", line).group(1))
rtt = float(re.search(r"time=([0-9.]+)", line).group(1))
sys_, vm = what.split()
print(f"{sys_} plug {vm} plug_ms {(ts - t0) * 1000:.1f} first_rtt_ms {rtt} t0 {t0:.6f} reply_at {ts:.6f}")
EOF
}

# CAPTURE=1: per first ping, tcpdump where the packet goes (the two VMs' eth0, hv1's and hv3's
# underlay eth0, the OpenFlow relays' loopback in hv1 and hv3 and the controller's loopback in the
# root netns; Strowger only for the last three); the timeline and its breakdown go to $OUT.
capture_start() {   # capture_start SYSTEM K
  local sys=$1 k=$2 x name ns filter n
  [ "$CAPTURE" = 1 ] || return 0
  mkdir -p "$OUT/pcap"
  local where=("src $(vmns 1 "$k") eth0 icmp" "dst $(vmns 3 "$k") eth0 icmp"
    "hv1ul $P-hv1 eth0 udp" "hv3ul $P-hv3 eth0 udp")
  if [ "$sys" = strowger ] && [ "$MGMT" = 1 ]; then
    where+=("hv1lo $P-hv1 mgmt0 tcp.port.$CTL_PORT" "hv3lo $P-hv3 mgmt0 tcp.port.$CTL_PORT"
      "of $P-ctl eth0 tcp.port.$CTL_PORT")
  elif [ "$sys" = strowger ]; then
    where+=("hv1lo $P-hv1 lo tcp.port.$CTL_PORT" "hv3lo $P-hv3 lo tcp.port.$CTL_PORT"
      "of - lo tcp.port.$CTL_PORT")
  fi
  n=0
  for x in "${where[@]}"; do
    read -r name ns dev filter <<<"$x"
    local pre=(); [ "$ns" = - ] || pre=(ip netns exec "$ns")
    # shellcheck disable=SC2086 # the filter's words
    "${pre[@]}" tcpdump --immediate-mode -U -i "$dev" -w "$OUT/pcap/$name-$sys-$k.pcap" ${filter//./ } \
      2>"$work/tcpdump-$name.err" &
    cap_pids+=($!); n=$((n + 1))
  done
  wait_for 10 sh -c "[ \$(cat $work/tcpdump-*.err | grep -c 'listening on') -ge $n ]" || die "tcpdump did not start"
}
capture_stop() {
  [ "$CAPTURE" = 1 ] || return 0
  kill -INT "${cap_pids[@]}" 2>/dev/null; wait "${cap_pids[@]}" 2>/dev/null; cap_pids=()
  rm -f "$work"/tcpdump-*.err
}

# (b)–(d): per pair hv1-vmK → hv3-vmK, K = 2..PAIRS+1.
measure_pairs() {
  local sys=$1 k src dst out first
  for k in $(seq 2 $((PAIRS + 1))); do
    src=$(vmns 1 "$k"); dst=$(addr_of 3 "$k")
    capture_start "$sys" "$k"
    out=$(ip netns exec "$src" ping -n -c1 -W3 "$dst" 2>&1)
    capture_stop
    first=$(echo "$out" | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p')
    [ -n "$first" ] || { echo "$out" >&2; die "$sys: first ping hv1-vm$k → $dst unanswered"; }
    ip netns exec "$src" ping -n -c $((WARM + STEADY)) -i 0.02 -W1 "$dst" >"$work/steady-$sys-$k.ping" 2>&1
    python3 - "$sys" "$k" "$first" "$WARM" "$work/steady-$sys-$k.ping" <<'EOF' >>"$OUT/raw.txt"
import re, statistics, sys
name, k, first, warm, path = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rtts = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"icmp_seq=(\d+) .*time=([0-9.]+) ms", open(path).read())}
steady = [v for s, v in sorted(rtts.items()) if s > warm]
med = statistics.median(steady)
print(f"{name} pair {k} first_ms {first} steady_ms {med:.3f} answered {len(steady)}")
EOF
  done
}

# ---- Strowger --------------------------------------------------------------------------------
run_strowger() {
  local sys=strowger i j s rtr bp rp p mac gw1_mac x
  say "strowger: lab up"
  lab_up vxlan >"$work/strowger-lab.log" 2>&1 || die "strowger: lab up failed (see $work/strowger-lab.log)"
  vms_addressed
  declare -gA net subnet port key
  rtr=$(post /routers '{"name":"r1","tenant_id":"bench"}' | jget "['id']") || die "router"
  for s in 1 2; do
    net[$s]=$(post /bridges "{\"name\":\"net$s\",\"tenant_id\":\"bench\"}" | jget "['id']") || die "bridge"
    rp=$(post "/routers/$rtr/ports" "{\"address\":\"10.0.$s.1/24\"}") || die "router port"
    [ "$s" = 1 ] && gw1_mac=$(echo "$rp" | jget "['mac']")
    rp=$(echo "$rp" | jget "['id']")
    bp=$(post "/bridges/${net[$s]}/ports" '{}' | jget "['id']") || die "bridge port"
    post "/ports/$rp/link" "{\"peer_id\":\"$bp\"}" >/dev/null || die "link"
    subnet[$s]=$(post "/bridges/${net[$s]}/dhcp" "{\"subnet\":\"10.0.$s.0/24\",\"gateway\":\"10.0.$s.1\",\"enabled\":true}" | jget "['id']") || die "dhcp"
  done
  while read -r i j; do
    s=$(subnet_of "$i" "$j"); mac=$(vmmac "$i" "$j")
    p=$(post "/bridges/${net[$s]}/ports" '{}') || die "port"
    port[$i$j]=$(echo "$p" | jget "['id']"); key[$i$j]=$(echo "$p" | jget "['tunnel_key']")
    post "/bridges/${net[$s]}/dhcp/${subnet[$s]}/hosts" \
      "{\"mac\":\"$mac\",\"ip\":\"$(addr_of "$i" "$j")\",\"name\":\"hv$i-vm$j\"}" >/dev/null || die "dhcp host"
  done < <(all_vms)
  wait_pipelines >/dev/null
  for i in 1 2 3; do
    a=(); for j in $(seq 1 "$NVM"); do plugged_later "$i" "$j" || a+=("vm$j=${port[$i$j]}"); done
    plug "$i" "${a[@]}"
  done
  while read -r i j; do
    plugged_later "$i" "$j" && continue
    wait_for 20 bound "$i" "${key[$i$j]}" || die "strowger: hv$i-vm$j not bound"
  done < <(all_vms)
  gateways_resolved
  say "strowger: (a) plug → first answer"
  for x in $PLUGGED; do measure_plug "$sys" "${x:0:1}" "${x:1:1}" "${port[$x]}" "$gw1_mac"; done
  say "strowger: (b)–(d) first and steady pings over $PAIRS fresh pairs"
  measure_pairs "$sys"
  flows_per_host "$sys"
  cpu_all "$sys" strowger="$ctl_pid"
  cp "$log" "$OUT/strowger.log"
  stop_strowger
  down
}

# ---- OVN -------------------------------------------------------------------------------------
nbctl() { ovn-nbctl --db="unix:$OVN_DIR/nb.sock" "$@"; }
sbctl() { ovn-sbctl --db="unix:$OVN_DIR/sb.sock" "$@"; }

ovn_central() {
  local db
  mkdir -p "$OVN_DIR"
  for db in nb sb; do
    ovsdb-tool create "$OVN_DIR/$db.db" "/usr/share/ovn/ovn-$db.ovsschema"
    OVN_RUNDIR=$OVN_DIR ovsdb-server "$OVN_DIR/$db.db" --remote=punix:"$OVN_DIR/$db.sock" \
      --pidfile="$OVN_DIR/$db.pid" --unixctl="$OVN_DIR/$db.ctl" --log-file="$OVN_DIR/$db.log" \
      --detach --no-chdir -vconsole:off || die "ovn: $db ovsdb-server"
  done
  nbctl init
  OVN_RUNDIR=$OVN_DIR ovn-northd --ovnnb-db="unix:$OVN_DIR/nb.sock" --ovnsb-db="unix:$OVN_DIR/sb.sock" \
    --pidfile="$OVN_DIR/northd.pid" --unixctl="$OVN_DIR/northd.ctl" --log-file="$OVN_DIR/northd.log" \
    --detach --no-chdir -vconsole:off || die "ovn-northd"
}

ovn_chassis() {   # ovn_chassis I: the hypervisor's ovn-controller (root netns, unix sockets only)
  local i=$1 d=$OVN_DIR/hv$1
  mkdir -p "$d"
  hvdo "$i" ovs-vsctl set Open_vSwitch . external_ids:ovn-remote="unix:$OVN_DIR/sb.sock" \
    external_ids:ovn-encap-type="$OVN_ENCAP" external_ids:ovn-encap-ip="$(ulip "$i")" \
    external_ids:ovn-bridge-datapath-type=netdev
  OVS_RUNDIR=$B/hv$i OVN_RUNDIR=$d ovn-controller "unix:$B/hv$i/db.sock" \
    --pidfile="$OVN_DIR/controller-hv$i.pid" --log-file="$d/ovn-controller.log" \
    --detach --no-chdir -vconsole:off 2>>"$d/start.err" || die "ovn-controller hv$i"
}

run_ovn() {
  local sys=ovn i j s a pids x
  say "ovn: lab up"
  up bare >"$work/ovn-lab.log" 2>&1 || die "ovn: lab up failed"
  fill_tunnel_neighbours
  vms_addressed
  ovn_central
  for i in 1 2 3; do ovn_chassis "$i"; done
  nbctl lr-add r1
  for s in 1 2; do
    nbctl ls-add "net$s" \
      -- lrp-add r1 "r1-net$s" "00:00:5e:00:01:0$s" "10.0.$s.1/24" \
      -- lsp-add "net$s" "net$s-r1" -- lsp-set-type "net$s-r1" router \
      -- lsp-set-addresses "net$s-r1" router -- lsp-set-options "net$s-r1" router-port="r1-net$s"
  done
  a=()
  while read -r i j; do
    s=$(subnet_of "$i" "$j")
    a+=(-- lsp-add "net$s" "hv$i-vm$j" -- lsp-set-addresses "hv$i-vm$j" "$(vmmac "$i" "$j") $(addr_of "$i" "$j")")
  done < <(all_vms)
  nbctl "${a[@]:1}"
  wait_for 30 sh -c "[ \$(ovn-sbctl --db=unix:$OVN_DIR/sb.sock --bare --columns=name list Chassis | grep -c .) = 3 ]" \
    || die "ovn: not every chassis registered"
  for i in 1 2 3; do
    a=(); for j in $(seq 1 "$NVM"); do plugged_later "$i" "$j" || a+=("vm$j=hv$i-vm$j"); done
    wait_for 20 hvdo "$i" ovs-vsctl br-exists br-int || die "ovn: hv$i has no br-int"
    plug "$i" "${a[@]}"
  done
  timeout 60 ovn-nbctl --db="unix:$OVN_DIR/nb.sock" --wait=hv sync || die "ovn: --wait=hv sync"
  gateways_resolved
  say "ovn: (a) plug → first answer"
  for x in $PLUGGED; do measure_plug "$sys" "${x:0:1}" "${x:1:1}" "hv${x:0:1}-vm${x:1:1}" 00:00:5e:00:01:01; done
  say "ovn: (b)–(d) first and steady pings over $PAIRS fresh pairs"
  measure_pairs "$sys"
  flows_per_host "$sys"
  pids=(ovn-northd="$(cat "$OVN_DIR/northd.pid")" nb-ovsdb-server="$(cat "$OVN_DIR/nb.pid")"
    sb-ovsdb-server="$(cat "$OVN_DIR/sb.pid")")
  for i in 1 2 3; do pids+=("ovn-controller-hv$i=$(cat "$OVN_DIR/controller-hv$i.pid")"); done
  cpu_all "$sys" "${pids[@]}"
  sbctl --bare --columns=_uuid list Logical_Flow | grep -c . | sed 's/^/ovn logical_flows /' >>"$OUT/raw.txt"
  mkdir -p "$OUT/ovn-logs"; cp "$OVN_DIR"/*.log "$OUT/ovn-logs/"
  for i in 1 2 3; do cp "$OVN_DIR/hv$i/ovn-controller.log" "$OUT/ovn-logs/ovn-controller-hv$i.log"; done
  stop_ovn
  down
}

# ---- the run -------------------------------------------------------------------------------
: >"$OUT/raw.txt"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel: $(uname -r)"
  echo "ovs: $(ovs-vswitchd --version | head -1); ovn: $(ovn-northd --version | head -1)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "strowger: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' || echo ' (dirty)') $BIN"
  echo "parameters: pairs=$PAIRS steady=$STEADY after warm=$WARM (20 ms apart); strowger vxlan, ovn $OVN_ENCAP; underlay MTU 1600"
} | tee "$OUT/machine.txt" >&2

for sys in $SYSTEMS; do
  "run_$sys"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2

table "$OUT/raw.txt" | tee "$OUT/table.md"
if [ "$CAPTURE" = 1 ]; then
  python3 - "$OUT/pcap" "$CTL_PORT" "$OUT/timeline.txt" <<'EOF' | tee "$OUT/breakdown.md"
# The first ping's way, from the captures: every sighting of the request or the reply, in
# time order, from the request leaving hv1's VM to the reply reaching it; OpenFlow messages are
# recognised by the pair's addresses in them (packet-in, packet-out); flow-mods and barriers by type.
import collections, glob, os, re, socket, statistics, struct, sys
# Where the switches' OpenFlow connections were captured: their mgmt0 (MGMT=1) or the relays' loopback.
hop = "mgmt0" if os.environ.get("MGMT") == "1" else "relay"

def packets(path):
    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = struct.unpack("<I", data[:4])[0]
    ns = magic == 0xA1B23C4D
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        off += 16
        yield sec + frac / (1e9 if ns else 1e6), data[off:off + incl]
        off += incl

def ip_of(frame, at=14):
    if len(frame) < at + 20 or frame[at - 2:at] != b"\x08\x00":
        return None
    ihl = (frame[at] & 15) * 4
    return frame[at + 9], frame[at + 12:at + 16], frame[at + 16:at + 20], frame[at + ihl:]

def icmp_type(frame, at=14):
    ip = ip_of(frame, at)
    if not ip or ip[0] != 1:
        return None
    return ip[3][0], ip[1], ip[2]

def of_msgs(payload):
    """The OpenFlow 1.3 messages that start and end in one TCP segment's payload."""
    off = 0
    while off + 8 <= len(payload):
        ver, typ, ln = payload[off], payload[off + 1], struct.unpack("!H", payload[off + 2:off + 4])[0]
        if ver != 4 or ln < 8 or off + ln > len(payload):
            return
        yield typ, payload[off:off + ln]
        off += ln

def events(d, sys_, k, ctl_port, src_ip, dst_ip):
    pair = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip)
    back = socket.inet_aton(dst_ip) + socket.inet_aton(src_ip)
    ev = []
    for who, name in (("src", "hv1-vm"), ("dst", "hv3-vm")):
        for t, fr in packets(f"{d}/{who}-{sys_}-{k}.pcap"):
            x = icmp_type(fr)
            if x and x[1] + x[2] in (pair, back):
                ev.append((t, f"{name} {'request' if x[0] == 8 else 'reply'}"))
    for h in (1, 3):
        for t, fr in packets(f"{d}/hv{h}ul-{sys_}-{k}.pcap"):
            ip = ip_of(fr)
            if not ip or ip[0] != 17:
                continue
            udp = ip[3]
            port = struct.unpack("!H", udp[2:4])[0]
            if port == 4789:
                inner = udp[16:]
            elif port == 6081:
                inner = udp[8 + 8 + (udp[8] & 0x3F) * 4:]
            else:
                continue
            x = icmp_type(inner)
            if not x or x[1] + x[2] not in (pair, back):
                continue
            kind = "request" if x[0] == 8 else "reply"
            out = ip[1] == socket.inet_aton(f"192.168.100.{h}")
            ev.append((t, f"{kind} {'leaves' if out else 'reaches'} hv{h} (underlay)"))
    for where in ("hv1lo", "of", "hv3lo"):
        seen = set()
        for t, fr in packets(f"{d}/{where}-{sys_}-{k}.pcap"):
            ip = ip_of(fr)
            if not ip or ip[0] != 6:
                continue
            tcp = ip[3]
            sport, dport = struct.unpack("!HH", tcp[:4])
            payload = tcp[(tcp[12] >> 4) * 4:]
            place = {"of": "controller's socket", "hv1lo": f"hv1's {hop}", "hv3lo": f"hv3's {hop}"}[where]
            # The switch at the other end: its management address (MGMT=1); behind the relays,
            # every switch is 127.0.0.1.
            peer = ip[1] if dport == ctl_port else ip[2]
            sw = f"hv{peer[3]}" if peer[:3] == bytes([10, 254, 0]) else "a switch"
            for typ, msg in of_msgs(payload):
                label = None
                if typ in (10, 13) and (pair in msg or back in msg):
                    kind = "request" if pair in msg else "reply"
                    what = "packet-in" if typ == 10 else "packet-out"
                    label = f"{kind}: {what} at {place}"
                elif where == "of" and typ in (14, 20, 21):
                    label = {14: f"flow-mods to {sw}", 20: f"barrier request to {sw}",
                             21: f"barrier reply from {sw}"}[typ] + f" at {place}"
                if label and (t, label) not in seen:
                    seen.add((t, label))
                    ev.append((t, label))
    ev.sort()
    # The window: the request leaving the source VM → the reply reaching it.
    start = next((i for i, e in enumerate(ev) if e[1] == "hv1-vm request"), None)
    end = next((i for i, e in enumerate(ev) if e[1] == "hv1-vm reply"), None)
    if start is None or end is None:
        return []
    return ev[start:end + 1]

def main():
    d, ctl_port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    segs = collections.defaultdict(lambda: collections.defaultdict(list))
    order = collections.defaultdict(list)
    with open(out, "w") as f:
        for path in sorted(glob.glob(f"{d}/src-*-*.pcap")):
            m = re.match(r"src-(\w+)-(\d+)\.pcap", os.path.basename(path))
            sys_, k = m.group(1), int(m.group(2))
            ev = events(d, sys_, k, ctl_port, f"10.0.1.1{k}", f"10.0.2.3{k}")
            if not ev:
                continue
            t0 = ev[0][0]
            f.write(f"{sys_} pair {k}\n")
            for (t, name), (t2, name2) in zip(ev, ev[1:]):
                f.write(f"  {(t - t0) * 1e6:8.0f} µs  {name}\n")
                s = f"{name} → {name2}"
                segs[sys_][s].append((t2 - t) * 1e6)
                if s not in order[sys_]:
                    order[sys_].append(s)
            f.write(f"  {(ev[-1][0] - t0) * 1e6:8.0f} µs  {ev[-1][1]}\n")
    for sys_ in sorted(order, key=lambda x: x != "strowger"):
        n = max(len(v) for v in segs[sys_].values())
        print(f"\n{sys_}: where the first ping's round trip goes (µs, median (min–max) over {n} pairs)\n")
        print("| from → to | µs |")
        print("|---|---:|")
        for s in order[sys_]:
            v = segs[sys_][s]
            extra = f" (min {min(v):.0f}, max {max(v):.0f}, n={len(v)})" if len(v) > 1 else ""
            print(f"| {s} | {statistics.median(v):.0f}{extra} |")

main()
EOF
fi
say "results in $OUT"
