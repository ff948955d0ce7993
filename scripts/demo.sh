#!/usr/bin/env bash
# The README's main command (a fresh Debian 12 machine, as root): installs what is missing
# (scripts/setup.sh), builds the controller and shows the product: a virtual network over three
# hypervisors, each a Mininet node running its own Open vSwitch (mininet/vnet.py), driven by
# Strowger over OVSDB and OpenFlow. Built with the CLI: tenant A, router r1 between a-net1
# (10.0.1.0/24) and a-net2 (10.0.2.0/24), VMs on three hosts; tenant B, b-net1 with the same
# 10.0.1.0/24, VMs on two hosts. VMs get their addresses by DHCP; ping within and across subnets
# and hosts, iperf3 across the router and a tunnel, tenant isolation, a firewall rule added live
# cuts a TCP stream (ping goes on) and removed restores it, a packet trace, annotated flows.
# Every step says what it shows and fails the demo when it fails; every wait polls with a
# deadline. Cleans up after itself by PID (also on failure or Ctrl-C); ends with a summary. Logs
# stay in $DEMO_DIR (default /var/tmp/strowger-demo; not /tmp/*.log, which `mn -c` deletes).
#
#   bash scripts/demo.sh                                   # everything (release build)
#   bash scripts/demo.sh --no-build                        # no setup, no build: $STROWGER_BIN
#                                                          # (or DEMO_SKIP_BUILD=1); CI's way
#   bash scripts/demo.sh --l2switch [--cli]                # the former learning-switch labs
#   bash scripts/demo.sh --controller ovs-testcontroller   # those labs against OVS's stand-in
#
# The demo is a list of acts (functions `act_*`, run in the order of DEMO_ACTS).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,21s/^# \{0,1\}//p' "$0"; }
controller=strowger
mode=vnet
skip_build=${DEMO_SKIP_BUILD:-}
lab_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --cli) lab_args+=(--cli) ;;
    --l2switch|--app=l2switch) mode=l2switch ;;
    --app) [ "${2:-}" = l2switch ] && mode=l2switch || [ "${2:-}" = engine ] || { echo "demo: --app engine|l2switch" >&2; exit 2; }; shift ;;
    --controller) controller=${2:?--controller needs strowger or ovs-testcontroller}; mode=l2switch; shift ;;
    --no-build) skip_build=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ ${#lab_args[@]} = 0 ] || [ "$mode" = l2switch ] || { echo "demo: --cli goes with --l2switch" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "demo: run as root (Mininet and Open vSwitch need it)" >&2; exit 1; }
source mininet/lab.sh

DEMO_DIR=${DEMO_DIR:-/var/tmp/strowger-demo}
if [ "$mode" = l2switch ]; then
  DEMO_ACTS=(setup build controller l2switch_labs tls)
else
  DEMO_ACTS=(setup build lab controller hosts network plug dhcp ping iperf isolation firewall trace flows tls)
fi
if [ -n "$skip_build" ]; then
  DEMO_ACTS=("${DEMO_ACTS[@]:2}")
  [ "$controller" != strowger ] || [ -x "${STROWGER_BIN:-}" ] \
    || { echo "demo: --no-build needs STROWGER_BIN=<path of a built strowger>" >&2; exit 1; }
fi
if [ -t 1 ]; then bold=$'\e[1m' plain=$'\e[0m'; else bold='' plain=''; fi
act_no=0
say() { act_no=$((act_no + 1)); printf '\n%s[%d/%d] %s%s\n' "$bold" "$act_no" "${#DEMO_ACTS[@]}" "$*" "$plain"; }
recap=()
t_start=$EPOCHREALTIME

# ---- helpers ----
fail() { echo "FAIL: $*" >&2; demo_failed=1; exit 1; }
ok() { echo "ok $*"; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
# wait_for SECONDS WHAT CMD...: poll CMD every 0.1 s until it succeeds; fail the demo with WHAT
# after SECONDS. The one place the demo waits for the controller: when the CLI gets `--wait`,
# this is what to swap. Sets $waited (seconds it took).
wait_for() {
  local limit=$1 what=$2 t0=$EPOCHREALTIME; shift 2
  until "$@" >/dev/null 2>&1; do
    awk -v a="$t0" -v b="$EPOCHREALTIME" -v l="$limit" 'BEGIN { exit !(b - a < l) }' \
      || fail "$what: not after $limit s"
    sleep 0.1
  done
  waited=$(since "$t0")
}
join() { local IFS=,; echo "$*" | sed 's/,/, /g'; }
jget() { "$LAB_PYTHON" -c "import json,sys; print(json.load(sys.stdin)$1)"; }
cli() { "$STROWGER_BIN" "$@"; }
# run ARGS...: shows the CLI command, runs it, shows its output.
run() { echo "+ strowger $*"; cli "$@" | sed 's/^/  /'; }
# mk ARGS...: a CLI create, shown as one line; prints the new object's id.
mk() {
  local id
  id=$(cli "$1" --json "${@:2}" | jget "['id']") || fail "strowger $*"
  echo "+ strowger $*   # id ${id:0:8}" >&2
  echo "$id"
}
# on NODE CMD...: a command inside a lab node (hypervisor or VM), by its PID's namespaces.
on() { mnexec -a "${node_pid[$1]:?unknown node $1}" "${@:2}"; }
# bg_on OUT NODE CMD...: the same in the background, output to OUT; its PID (mnexec execs the
# command, so it is the command's own) in $bg_pid and bg_pids, for the cleanup.
bg_pids=()
bg_on() {
  mnexec -a "${node_pid[$2]:?unknown node $2}" "${@:3}" </dev/null >"$1" 2>&1 &
  bg_pid=$!; bg_pids+=("$bg_pid")
}

if [ "$mode" = vnet ]; then
  # The VMs: name tenant hypervisor bridge address.
  vms="a1 A hv1 a-net1 10.0.1.11
a2 A hv2 a-net1 10.0.1.12
a3 A hv2 a-net2 10.0.2.12
a4 A hv3 a-net2 10.0.2.13
b1 B hv1 b-net1 10.0.1.11
b2 B hv3 b-net1 10.0.1.12"
  declare -A vm_hv vm_net vm_ip vm_mac port node_pid lease host_name
  n=0
  while read -r v t h b ip; do
    n=$((n + 1))
    vm_hv[$v]=$h vm_net[$v]=$b vm_ip[$v]=$ip vm_mac[$v]=$(printf '52:54:00:%02x:00:%02x' "$(printf %d "'$t")" "$n")
  done <<<"$vms"
  VNET=(env "$LAB_PYTHON" mininet/vnet.py --base /run/strowger-vnet --mgmt-if stw-vnet0)
  UL_NET=172.31.213 MGMT_NET=172.31.214
  vnet_pid=
fi

act_setup() {
  say "Install what is missing and start Open vSwitch (scripts/setup.sh)"
  bash scripts/setup.sh
  lab_require
  echo "ok $(ovs-vswitchd --version | head -1), Mininet $("$LAB_PYTHON" -c 'import mininet.net as m; print(m.VERSION)')"
  recap+=("dependencies checked, system Open vSwitch running")
}

act_build() {
  say "Build the controller (cargo build --release)"
  if [ "$controller" != strowger ]; then
    echo "skipped: the labs run against $controller"
    return
  fi
  echo "+ cargo build --locked --release -p strowger"
  cargo build --locked --release -p strowger
  STROWGER_BIN=$(lab_strowger_bin)
  echo "ok $STROWGER_BIN ($("$STROWGER_BIN" --version))"
  recap+=("built $STROWGER_BIN")
}

# ---------------- the virtual-network demo ----------------

act_lab() {
  say "Three hypervisors in Mininet, each running its own ovsdb-server and ovs-vswitchd (userspace datapath); no br-int yet"
  local c
  for c in mnexec udhcpc iperf3 ethtool ovs-vswitchd ovsdb-server; do
    command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || fail "$c missing: run scripts/setup.sh"
  done
  "$LAB_PYTHON" -c 'import mininet.net' 2>/dev/null || fail "Debian's python3 has no Mininet: run scripts/setup.sh"
  mkdir -p "$DEMO_DIR"
  rm -rf "$DEMO_DIR/work" && mkdir -p "$DEMO_DIR/work"
  t_lab=$(now)
  local args=() v
  for v in a1 a2 a3 a4 b1 b2; do args+=(--vm "$v,${vm_hv[$v]},${vm_mac[$v]}"); done
  echo "+ /usr/bin/python3 mininet/vnet.py up --hv 3 ${args[*]} &"
  "${VNET[@]}" up --hv 3 --ul-net $UL_NET --mgmt-net $MGMT_NET "${args[@]}" >"$DEMO_DIR/vnet.log" 2>&1 &
  vnet_pid=$!
  # (vnet.py runs one lab at a time on a machine: it may first wait for another's to end)
  wait_for 330 "the Mininet lab (log: $DEMO_DIR/vnet.log)" lab_ready
  sed 's/^/  /' "$DEMO_DIR/vnet.log"
  local name kind pid
  while read -r name kind pid _; do node_pid[$name]=$pid; done </run/strowger-vnet/nodes
  echo "+ hv1# ovs-vsctl show        (br-phy carries the underlay; nothing else)"
  on hv1 ovs-vsctl show | grep -E 'Bridge|Port|Manager|Controller' | sed 's/^/  /'
  on hv1 ovs-vsctl br-exists br-int && fail "hv1 has a br-int before the controller knows it"
  ok "lab up in $(since "$t_lab") s"
  recap+=("lab: 3 hypervisors (own OVS, netdev), underlay $UL_NET.0/24, management $MGMT_NET.0/24, 6 VMs")
}
lab_ready() { [ -f /run/strowger-vnet/ready ] || { kill -0 "$vnet_pid" 2>/dev/null || fail "vnet.py exited: $(tail -n 5 "$DEMO_DIR/vnet.log")"; return 1; }; }

act_controller() {
  if [ "$mode" = l2switch ]; then act_controller_l2switch; return; fi
  say "Start the controller on its embedded store: OpenFlow on the management network, REST on loopback"
  local of_port api_port ovsdb_port
  of_port=$(lab_pick_port 6653) api_port=$(lab_pick_port 8080) ovsdb_port=$(lab_pick_port)
  rm -rf "$DEMO_DIR/store"
  local cmd=("$STROWGER_BIN" serve --data-dir "$DEMO_DIR/store" --openflow-listen "$MGMT_NET.254:$of_port"
             --api-listen "127.0.0.1:$api_port" --ovsdb-listen "127.0.0.1:$ovsdb_port")
  echo "+ strowger ${cmd[*]:1} &"
  NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} "${cmd[@]}" >"$DEMO_DIR/controller.log" 2>&1 &
  LAB_CTL_PID=$!
  export STROWGER_API=http://127.0.0.1:$api_port
  api=$STROWGER_API/api/v1
  wait_for 30 "the controller's REST API" curl -sf "$api/health"
  echo "+ curl -s $api/health"
  curl -s "$api/health"; echo
  ok "controller pid $LAB_CTL_PID, store $DEMO_DIR/store, log $DEMO_DIR/controller.log"
  recap+=("controller pid $LAB_CTL_PID: embedded store, OpenFlow $MGMT_NET.254:$of_port, REST $STROWGER_API")
}

act_controller_l2switch() {
  say "Start the controller in the background: $controller"
  lab_require || fail "the learning-switch labs need the system Open vSwitch"
  mkdir -p "$DEMO_DIR"
  # The usual ports when they are free, other free ones otherwise.
  LAB_OF_PORT_WANTED=6653 LAB_API_PORT_WANTED=8080 lab_controller_start "$controller" "$DEMO_DIR/controller.log"
  if [ -n "$LAB_API_URL" ] && command -v curl >/dev/null; then
    echo "+ curl -s $LAB_API_URL/api/v1/health"
    curl -s -w '  (HTTP %{http_code})\n' "$LAB_API_URL/api/v1/health" || true
  fi
  recap+=("controller pid $LAB_CTL_PID on OpenFlow 127.0.0.1:$LAB_OF_PORT${LAB_API_URL:+, REST $LAB_API_URL}")
}

pipeline_in() { on "$1" ovs-ofctl -O OpenFlow13 dump-flows br-int table=20 | grep 'actions=CONTROLLER' >/dev/null; }
tunnels_in() { [ "$(on "$1" ovs-vsctl --bare --columns=name find Interface type=vxlan | grep -c .)" = 2 ]; }

act_hosts() {
  say "Register the hypervisors (strowger host create): over OVSDB the controller creates br-int, its controller target and the VXLAN mesh"
  local t0 i h
  t0=$(now)
  mk tunnel-zone create tz type=vxlan >/dev/null
  for i in 1 2 3; do
    h=$(mk host create "hv$i" "ovsdb=unix:/run/strowger-vnet/hv$i/run/db.sock" datapath_type=netdev "tunnel_ip=$UL_NET.$i")
    host_name[$h]=hv$i
    echo "+ strowger member add tz hv$i $UL_NET.$i"
    cli member add tz "hv$i" "$UL_NET.$i" >/dev/null
  done
  for i in 1 2 3; do
    wait_for 30 "hv$i: br-int with the engine's pipeline" pipeline_in "hv$i"
    wait_for 30 "hv$i: two VXLAN tunnels" tunnels_in "hv$i"
  done
  provision_s=$(since "$t0")
  run host list
  echo "+ hv1# ovs-vsctl show        (made by the controller: br-int, its controller, one tunnel per peer)"
  on hv1 ovs-vsctl show | grep -E 'Bridge|Controller|is_connected|type: vxlan|options:' | sed 's/^/  /'
  ok "3 hosts provisioned: br-int, controller target, pipeline and tunnel mesh in $provision_s s"
  recap+=("hosts: br-int + pipeline + VXLAN mesh on 3 hypervisors over OVSDB in $provision_s s")
}

act_network() {
  say "Build two tenants with the CLI: A = r1 between a-net1 and a-net2, B = b-net1 with the same 10.0.1.0/24; a port and a DHCP lease per VM"
  local rp bp s v t h b ip sub
  mk router create r1 tenant_id=tenant-a >/dev/null
  for s in 1 2; do
    mk bridge create "a-net$s" tenant_id=tenant-a >/dev/null
    rp=$(mk port create r1 "address=10.0.$s.1/24")
    bp=$(mk port create "a-net$s")
    echo "+ strowger port link ${rp:0:8} ${bp:0:8}"
    cli port link "$rp" "$bp" >/dev/null
    sub=$(mk dhcp create "a-net$s" "subnet=10.0.$s.0/24" "gateway=10.0.$s.1" 'dns_servers=["10.0.0.53"]' mtu=1400)
    declare -g "subnet_a_net$s=$sub"
  done
  mk bridge create b-net1 tenant_id=tenant-b >/dev/null
  sub=$(mk dhcp create b-net1 subnet=10.0.1.0/24 'dns_servers=["10.0.0.53"]' mtu=1400)
  declare -g "subnet_b_net1=$sub"
  while read -r v t h b ip; do
    port[$v]=$(mk port create "$b")
    local sv=subnet_${b//-/_}
    echo "+ strowger dhcp-host add $b ${!sv:0:8} ${vm_mac[$v]} $ip $v"
    cli dhcp-host add "$b" "${!sv}" "${vm_mac[$v]}" "$ip" "$v" >/dev/null
  done <<<"$vms"
  run bridge list
  ok "tenant A: r1, a-net1, a-net2, 4 VM ports; tenant B: b-net1, 2 VM ports; 6 static DHCP leases"
  recap+=("topology by CLI: A = r1 + a-net1 10.0.1.0/24 + a-net2 10.0.2.0/24; B = b-net1 10.0.1.0/24 (overlapping)")
}

port_bound() {   # port_bound ID: the port's live binding is up, on an ofport
  curl -sf "$api/ports/$1" | "$LAB_PYTHON" -c 'import json, sys; p = json.load(sys.stdin); sys.exit(0 if p.get("up") and p.get("ofport") else 1)'
}

act_plug() {
  say "Plug the VMs into br-int: the interface's external_ids:iface-id names its logical port, which binds it"
  local v plugs=()
  for v in a1 a2 a3 a4 b1 b2; do plugs+=("$v=${port[$v]}"); done
  echo "+ /usr/bin/python3 mininet/vnet.py plug ${plugs[*]}"
  echo "  (on each hypervisor: ovs-vsctl add-port br-int <vm-if> -- set Interface <vm-if> external_ids:iface-id=<port id>)"
  "${VNET[@]}" plug "${plugs[@]}"
  local t0; t0=$(now)
  for v in a1 a2 a3 a4 b1 b2; do wait_for 20 "$v's port bound" port_bound "${port[$v]}"; done
  echo "+ strowger port show <port id>     (each VM's port, with its live binding)"
  local key hid ifn ofp up
  for v in a1 a2 a3 a4 b1 b2; do
    read -r key hid ifn ofp up < <(cli port show "${port[$v]}" --json | "$LAB_PYTHON" -c '
import json, sys
p = json.load(sys.stdin)
print(p["tunnel_key"], p.get("host_id"), p.get("interface_name"), p.get("ofport"), p.get("up"))')
    printf '  %s  port %s  tunnel key %-3s bound to %s:%s, ofport %s, up %s\n' "$v" "${port[$v]:0:8}" "$key" \
      "${host_name[$hid]:-$hid}" "$ifn" "$ofp" "$up"
  done
  ok "6 VIFs bound by iface-id ($(since "$t0") s after the plug)"
}

cat_dhcp_script() {
  cat <<'EOF'
#!/bin/sh
# udhcpc event script: applies the lease (address, MTU, default route) and records it.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "${mtu:-}" ] && ip link set "$interface" mtu "$mtu"
    for r in ${router:-}; do ip route replace default via "$r" dev "$interface"; break; done
    echo "ip=$ip mask=$mask router=${router:-} mtu=${mtu:-} dns=${dns:-} server=${serverid:-} name=${hostname:-} lease=${lease:-}" >"$LEASE_OUT"
    ;;
esac
exit 0
EOF
}

act_dhcp() {
  say "DHCP: every VM runs a real client (busybox udhcpc) and gets its static lease from the controller"
  local v pids=() t0 w
  w=$DEMO_DIR/work
  cat_dhcp_script >"$w/dhcp.script"; chmod +x "$w/dhcp.script"
  t0=$(now)
  for v in a1 a2 a3 a4 b1 b2; do
    LEASE_OUT=$w/lease.$v bg_on "$w/udhcpc.$v.log" "$v" timeout 30 udhcpc -i "$v-eth0" -f -q -n \
      -t 20 -T 1 -O mtu -x "hostname:$v" -s "$w/dhcp.script"
    pids+=("$bg_pid")
  done
  echo "+ <vm># udhcpc -i <vm>-eth0 -q -O mtu -s dhcp.script     (6 VMs at once)"
  local i=0
  for v in a1 a2 a3 a4 b1 b2; do
    wait "${pids[$i]}" || fail "$v got no DHCP lease: $(cat "$w/udhcpc.$v.log")"
    i=$((i + 1))
  done
  dhcp_s=$(since "$t0")
  local want_gw why
  for v in a1 a2 a3 a4 b1 b2; do
    lease[$v]=$(cat "$w/lease.$v")
    echo "  $v (${vm_hv[$v]}, ${vm_mac[$v]}): ${lease[$v]}"
    why=
    on "$v" ip -4 addr show "$v-eth0" | grep "inet ${vm_ip[$v]}/24 " >/dev/null || why+=" address"
    on "$v" ip link show "$v-eth0" | grep " mtu 1400 " >/dev/null || why+=" mtu"
    case $v in a*) want_gw=10.0.${vm_ip[$v]:5:1}.1
      on "$v" ip route show default | grep "via $want_gw" >/dev/null || why+=" default-route" ;; esac
    [ -z "$why" ] || fail "$v: lease not applied:$why"
  done
  ok "6 leases in $dhcp_s s: address, MTU 1400 (VXLAN on a 1500-byte underlay), gateway (tenant A), DNS"
  recap+=("DHCP: 6 leases from the controller in $dhcp_s s (busybox udhcpc in every VM)")
}

pings() { on "$1" ping -c1 -W1 -q "$2" </dev/null; }
rtt() { on "$1" ping -c5 -i0.2 -W1 -q "$2" </dev/null | awk -F/ '/^rtt/ {print $5}'; }
ping_case() {   # ping_case FROM TO WHAT
  wait_for 10 "$1 → $2 ($3)" pings "$1" "${vm_ip[$2]}"
  local first=$waited r
  r=$(rtt "$1" "${vm_ip[$2]}")
  [ -n "$r" ] || fail "$1 → $2: no replies to 5 pings after the first"
  printf '  %-3s (%s) → %-3s %-10s (%s)  %-26s first reply after %5s s, then avg %s ms\n' \
    "$1" "${vm_hv[$1]}" "$2" "${vm_ip[$2]}" "${vm_hv[$2]}" "$3" "$first" "$r"
  case $3 in routed*) ping_routed+=("$1→$2 $r") ;; *) ping_bridged+=("$1→$2 $r") ;; esac
}

act_ping() {
  say "Ping within a subnet across hosts, across the router r1 (from hv1 to hv2 and hv3), and in tenant B"
  ping_bridged=() ping_routed=()
  echo "+ <vm># ping <address>        (the first packet of a flow goes to the controller, which installs it)"
  ping_case a1 a2 "a-net1, hv1→hv2"
  ping_case a1 a3 "routed by r1, hv1→hv2"
  ping_case a1 a4 "routed by r1, hv1→hv3"
  ping_case a4 a2 "routed by r1, hv3→hv2"
  ping_case b1 b2 "b-net1, hv1→hv3"
  ok "tenant A pings within a-net1 and across r1 on three hosts, tenant B within b-net1"
  recap+=("ping across hosts, avg RTT in ms: bridged $(join "${ping_bridged[@]}"); routed by r1 $(join "${ping_routed[@]}")")
}

iperf_run() {   # iperf_run FROM TO → prints the receiver's Mbit/s
  local out
  out=$(on "$1" timeout 20 iperf3 -c "${vm_ip[$2]}" -t 2 -f m --connect-timeout 3000 </dev/null 2>&1) || { echo "$out" >&2; return 1; }
  echo "$out" | awk '/receiver/ {print $7; found=1} END {exit !found}'
}
server_up() { on "$1" ss -Hltn 'sport = :5201' | grep 5201 >/dev/null; }
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
declare -A iperf_pid
iperf_server() {   # iperf_server VM [ARGS]: iperf3 -s on 5201 (PID in iperf_pid and bg_pids)
  bg_on "$DEMO_DIR/work/iperf3-server.$1" "$1" iperf3 -s -p 5201 "${@:2}"
  iperf_pid[$1]=$bg_pid
  wait_for 5 "iperf3 server on $1 listening" server_up "$1"
}
stop_pid() {   # stop_pid PID: SIGTERM, then poll until it is gone (SIGKILL after 5 s)
  kill "$1" 2>/dev/null || true
  local t0=$EPOCHREALTIME
  until gone "$1"; do
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 5) }' || { kill -KILL "$1" 2>/dev/null || true; break; }
    sleep 0.05
  done
  wait "$1" 2>/dev/null || true
}

act_iperf() {
  say "iperf3 (TCP): over a tunnel within a-net1 (a1 hv1 → a2 hv2), and across r1 and a tunnel (a1 hv1 → a4 hv3)"
  iperf_server a2; iperf_server a4
  echo "+ a1# iperf3 -c 10.0.1.12 -t 2"
  bw_l2=$(iperf_run a1 a2) || fail "iperf3 a1 → a2"
  echo "  a1 → a2 (bridged, VXLAN hv1→hv2): $bw_l2 Mbit/s"
  echo "+ a1# iperf3 -c 10.0.2.13 -t 2"
  bw_l3=$(iperf_run a1 a4) || fail "iperf3 a1 → a4"
  echo "  a1 → a4 (routed by r1, VXLAN hv1→hv3): $bw_l3 Mbit/s"
  awk -v a="$bw_l2" -v b="$bw_l3" 'BEGIN { exit !(a > 0 && b > 0) }' || fail "iperf3 moved no data"
  ok "TCP through the flows the controller installed, at datapath speed (userspace OVS, 2 shared cores)"
  recap+=("iperf3: bridged over a tunnel $bw_l2 Mbit/s, routed by r1 over a tunnel $bw_l3 Mbit/s")
}

neigh_mac() { on "$1" ip neigh show "$2" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'; }
no_ping() { ! on "$1" ping -c2 -i0.3 -W1 -q "$2" </dev/null >/dev/null 2>&1; }

act_isolation() {
  say "Tenant isolation: A and B use the same addresses (a1 and b1 are both 10.0.1.11 on hv1; a2 and b2 both 10.0.1.12)"
  local m
  m=$(neigh_mac a1 10.0.1.12)
  [ "$m" = "${vm_mac[a2]}" ] || fail "a1's 10.0.1.12 is $m, not a2 (${vm_mac[a2]})"
  echo "  a1's neighbour 10.0.1.12 is $m: a2 (tenant A, hv2)"
  m=$(neigh_mac b1 10.0.1.12)
  [ "$m" = "${vm_mac[b2]}" ] || fail "b1's 10.0.1.12 is $m, not b2 (${vm_mac[b2]})"
  echo "  b1's neighbour 10.0.1.12 is $m: b2 (tenant B, hv3)"
  echo "+ a2# ip link set a2-eth0 down;  a1# ping 10.0.1.12      (b2 has that address too)"
  on a2 ip link set a2-eth0 down
  no_ping a1 10.0.1.12 || fail "a1 reached 10.0.1.12 with a2 down: tenant B answered"
  echo "  a1 → 10.0.1.12: no answer: B's 10.0.1.12 is unreachable from A"
  pings b1 10.0.1.12 >/dev/null || fail "b1 lost its 10.0.1.12"
  echo "  b1 → 10.0.1.12: answered by b2 meanwhile"
  on a2 ip link set a2-eth0 up
  wait_for 10 "a1 reaches a2 again" pings a1 10.0.1.12
  ok "overlapping subnets, each tenant reaches only its own VMs"
  recap+=("isolation: same IPs in A and B; with a2 down, A's ping to 10.0.1.12 gets no answer from B's b2")
}

# ---- the firewall act: a 20 Mbit/s stream a1 → a4:5201 through r1, a ping beside it ----
# The server reports every 0.2 s; a line with "0.00 bits/sec" is an interval with no data.
intervals() { grep -E '^\[ *[0-9]+\] +[0-9.]+-[0-9.]+ +sec' "$DEMO_DIR/work/stream.server" | grep -v -E 'sender|receiver' || true; }
stream_runs() { intervals | tail -n 2 | grep -v ' 0.00 bits/sec' | grep -q .; }
stream_cut() { [ "$(intervals | tail -n 3 | grep -c ' 0.00 bits/sec')" = 3 ]; }
stream_back() { intervals | tail -n +"$1" | grep -v ' 0.00 bits/sec' | grep -q .; }
replies_after() { sed -n 's/^\[\([0-9.]*\)\] .*bytes from.*/\1/p' "$DEMO_DIR/work/fw.ping" | awk -v t="$1" '$1 > t {n++} END {print n + 0}'; }

act_firewall() {
  say "A firewall rule added live: dropping TCP 5201 in r1's inbound filter cuts a running iperf3 stream while ping goes on; deleting it restores the stream"
  local w=$DEMO_DIR/work rule t_rule t_del n_cut spid cpid ppid got sent
  run chain create a-fw
  run router update r1 inbound_filter_id=a-fw
  stop_pid "${iperf_pid[a4]}"   # the throughput test's server gives 5201 to the stream's
  bg_on "$w/stream.server" a4 iperf3 -s -1 -p 5201 -i 0.2 --forceflush
  spid=$bg_pid
  wait_for 5 "stream server on a4" server_up a4
  echo "+ a1# iperf3 -c 10.0.2.13 -t 60 -b 20M &     a1# ping -i 0.1 10.0.2.13 &"
  bg_on "$w/stream.client" a1 iperf3 -c 10.0.2.13 -t 60 -b 20M -f m
  cpid=$bg_pid
  bg_on "$w/fw.ping" a1 ping -D -O -i 0.1 -W1 10.0.2.13
  ppid=$bg_pid
  wait_for 10 "the stream a1 → a4:5201 flows" stream_runs
  echo "  stream flowing: $(intervals | tail -n 1 | awk '{print $7, $8}') (server, last 0.2 s)"
  t_rule=$(now)
  # --wait: the CLI returns once every host has applied the change (flows invalidated, barrier
  # answered), like ovn-nbctl --wait=hv.
  rule=$(mk rule add a-fw action=drop nw_proto=6 tp_dst=5201 --wait)
  applied_s=$(since "$t_rule")
  echo "  rule add --wait returned after $applied_s s: every host has applied it"
  wait_for 10 "the drop rule cuts the stream" stream_cut
  cut_s=$(since "$t_rule")
  echo "  stream cut: 3 intervals of 0.00 bits/sec, $cut_s s after the rule was added"
  wait_for 5 "ping answered under the rule" test "$(replies_after "$t_rule")" -ge 5
  echo "  ping: $(replies_after "$t_rule") replies since the rule, the ICMP flow is not cut"
  n_cut=$(intervals | wc -l)
  t_del=$(now)
  echo "+ strowger rule delete ${rule:0:8}"
  cli rule delete "$rule" --wait >/dev/null
  wait_for 15 "the stream comes back once the rule is deleted" stream_back "$((n_cut + 1))"
  restore_s=$(since "$t_del")
  echo "  stream back: $(intervals | tail -n 1 | awk '{print $7, $8}'), $restore_s s after the rule was deleted (TCP retransmission backoff included)"
  # (a background job ignores SIGINT, so ping's own statistics are not asked for: counted here)
  stop_pid "$ppid"
  read -r sent got < <(sed -n 's/.*icmp_seq=\([0-9]*\).*/\1 &/p' "$w/fw.ping" \
    | awk '$1 > max {max = $1} /bytes from/ {n++} END {print max + 0, n + 0}')
  stop_pid "$cpid"
  wait_for 10 "the stream's server exits" gone "$spid"
  ok "rule added: stream cut in $cut_s s; deleted: back in $restore_s s; ping $got/$sent answered throughout"
  recap+=("firewall: drop tcp/5201 on r1 (rule add --wait: applied everywhere in $applied_s s) cut a live iperf3 stream in $cut_s s, ping went on ($got/$sent); deleted: stream back in $restore_s s")
}

act_trace() {
  say "Trace one packet: strowger trace shows the path the controller's simulation takes (a1 → a4 through r1)"
  local out
  echo "+ strowger trace ${port[a1]} \"icmp,nw_src=10.0.1.11,nw_dst=10.0.2.13\""
  out=$(cli trace "${port[a1]}" "icmp,nw_src=10.0.1.11,nw_dst=10.0.2.13") || fail "strowger trace"
  echo "$out" | sed 's/^/  /'
  echo "$out" | grep -E 'r1|a-net2' >/dev/null || fail "the trace does not show r1 or a-net2"
  ok "the packet's path: a-net1 → r1 → a-net2 → a4's port on hv3"
  recap+=("trace: a1 → 10.0.2.13 through a-net1, r1, a-net2 ($(echo "$out" | wc -l) lines)")
}

act_flows() {
  say "What the controller installed: dump-flows of hv1 annotated with each flow's logical path (strowger flows hv1), flows per host"
  local i counts=()
  for i in 1 2 3; do counts+=("hv$i $(on "hv$i" ovs-ofctl -O OpenFlow13 dump-flows br-int | grep -c 'table=')"); done
  local out
  echo "+ strowger flows hv1"
  out=$(cli flows hv1) || fail "strowger flows hv1"
  echo "$out" | head -n 40 | sed 's/^/  /'
  echo "$out" | grep 'table=20' >/dev/null || fail "strowger flows hv1 shows no flow-cache entry"
  echo "$out" | grep -E '# from .*a-net1 -> r1 -> a-net2' >/dev/null \
    || fail "strowger flows hv1 does not annotate the routed flow a-net1 -> r1 -> a-net2"
  echo "  (each flow-cache entry says which port its packets come from and the logical path they take)"
  echo "  flows on br-int: ${counts[*]}"
  ok "flows per host: ${counts[*]}"
  recap+=("flows on br-int: ${counts[*]}")
}

# ---------------- the learning-switch labs (--l2switch) ----------------

act_l2switch_labs() {
  say "Mininet labs through the learning switch: linear, then tree"
  local topo out
  # A MAC moving to another switch (a VM migration) needs a controller that invalidates the
  # flows towards the old port: Strowger's l2switch does, OVS's stand-in does not.
  [ "$controller" = ovs-testcontroller ] || lab_args+=(--mac-move)
  for topo in linear tree; do
    out=$DEMO_DIR/lab-$topo.summary
    echo "+ /usr/bin/python3 mininet/lab.py --topo $topo --port $LAB_OF_PORT${LAB_API_URL:+ --api $LAB_API_URL} ${lab_args[*]:-}"
    rm -f "$out"
    if lab_run "$topo" --summary-file "$out" ${lab_args[@]+"${lab_args[@]}"}; then
      recap+=("$(head -1 "$out"); switches and hosts removed")
    else
      recap+=("FAILED $topo lab: $(tr '\n' ' ' <"$out" 2>/dev/null || echo "no summary")")
      demo_failed=1
    fi
    lab_controller_alive || { recap+=("FAILED: the controller died (log: $DEMO_DIR/controller.log)"); demo_failed=1; return; }
  done
}

# ---------------- cleanup and summary ----------------

vm_table() {
  local v t h b l
  printf '  %-3s %-6s %-4s %-7s %-17s %s\n' VM tenant host bridge MAC "DHCP lease"
  while read -r v t h b _; do
    l=$(echo "${lease[$v]:-}" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["ip"] == "") print "none"; else printf "%s/%s gateway %s mtu %s\n", f["ip"], f["mask"], f["router"] == "" ? "-" : f["router"], f["mtu"] }')
    printf '  %-3s %-6s %-4s %-7s %-17s %s\n' "$v" "$t" "$h" "$b" "${vm_mac[$v]}" "$l"
  done <<<"$vms"
}

finish() {
  local status=$? p deadline
  set +eu
  trap - ERR
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "${vnet_pid:-}" ]; then
    kill -TERM "$vnet_pid" 2>/dev/null
    deadline=$((SECONDS + 30))
    while kill -0 "$vnet_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if kill -0 "$vnet_pid" 2>/dev/null; then
      kill -KILL "$vnet_pid" 2>/dev/null
      recap+=("FAILED: the lab did not stop on SIGTERM: killed, leftovers removed (vnet.py clean)")
      demo_failed=1
    fi
    wait "$vnet_pid" 2>/dev/null
    "${VNET[@]}" clean
    recap+=("lab torn down: OVS daemons, Mininet nodes, namespaces, management veth")
  fi
  if lab_controller_alive; then
    if lab_controller_stop; then
      recap+=("stopped the controller (SIGTERM); log: $DEMO_DIR/controller.log")
    else
      recap+=("FAILED: the controller ignored SIGTERM and was killed; log: $DEMO_DIR/controller.log")
      demo_failed=1
    fi
  fi
  if [ "$mode" = vnet ] && grep -q panicked "$DEMO_DIR/controller.log" 2>/dev/null; then
    recap+=("FAILED: the controller log shows a panic"); demo_failed=1
  fi
  printf '\n%sWhat the demo did%s\n' "$bold" "$plain"
  [ "$mode" = vnet ] && [ ${#lease[@]} -gt 0 ] && vm_table
  [ ${#recap[@]} = 0 ] || printf '  - %s\n' "${recap[@]}"
  if [ "$status" != 0 ] || [ "${demo_failed:-0}" = 1 ]; then
    [ "$mode" = vnet ] && { echo "--- controller log, last 30 lines:"; tail -n 30 "$DEMO_DIR/controller.log" 2>/dev/null; }
    echo "DEMO FAILED after $(since "$t_start") s (act $act_no of ${#DEMO_ACTS[@]})"
    exit 1
  fi
  echo "DEMO OK in $(since "$t_start") s"
}
act_tls() {
  say "The control plane over TLS and REST tokens, on OVS sandboxes (scripts/tls-demo.sh; README, Security)"
  if [ "$controller" != strowger ]; then
    echo "skipped: the labs ran against $controller"
    return
  fi
  if STROWGER_BIN=$STROWGER_BIN TLS_DEMO_DIR=$DEMO_DIR/tls bash scripts/tls-demo.sh; then
    recap+=("TLS: a switch with our CA's certificate connected over ssl:, another CA's and plain TCP refused; tokens by role (files in $DEMO_DIR/tls)")
  else
    recap+=("FAILED TLS demo (log: $DEMO_DIR/tls/controller.log)")
    demo_failed=1
  fi
}

trap finish EXIT
trap 'recap+=("INTERRUPTED by a signal"); exit 130' INT TERM
trap 'echo "demo: line $LINENO failed: $BASH_COMMAND" >&2' ERR

for act in "${DEMO_ACTS[@]}"; do "act_$act"; done
