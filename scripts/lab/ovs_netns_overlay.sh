#!/usr/bin/env bash
# (Copied from the team lab recipes, ../shared/lab/ovs_netns_overlay.sh, so the checks run from a clean clone.)
# Recipe 2 - multi-hypervisor overlay on one machine, real packets (root needed).
#
#   root netns:  only unix sockets + socat relays (no interface, no address is added here)
#   $P-ul        "underlay switch": a Linux bridge br0 joining every hypervisor's eth0
#   $P-hvI       one "hypervisor": its OWN ovsdb-server + ovs-vswitchd (userspace datapath,
#                datapath_type=netdev), state in $B/hvI/ (OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR);
#                br-phy (eth0 + underlay IP 192.168.100.I on its internal port, as in OVS's
#                Documentation/howto/userspace-tunneling.rst), br-int (secure, OpenFlow13)
#                with one veth per VM, VXLAN ports vxK and GRE ports greK to every other host
#   $P-hvI-vmJ   one "VM": a namespace with eth0 (10.10.0.IJ/24, MAC 02:00:00:00:0I:0J)
#
# Usage (env: NHV=3 hypervisors, NVM=2 VMs each, P=sdnlab name prefix, B=/run/sdnlab state,
#        CTL_PORT=6653, MGR_PORT=6640, OVSDB_TCP_BASE=6640 (hv I -> 127.0.0.1:6640+I),
#        UL_MTU=1600, EXTERNAL_CTL=1 to use your own controller on 127.0.0.1:$CTL_PORT,
#        CTL_BRIDGE=br-probe the bridge connected to it in the check (br-int: see controller_check),
#        VERBOSE=1 to echo every ovs-vsctl/ovs-ofctl/ovs-appctl command):
#   bash ovs_netns_overlay.sh demo [keep]   up + VXLAN test + GRE test + controller/OVSDB checks
#                                           + down (unless keep); exit 1 on any failure
#   bash ovs_netns_overlay.sh up [bare]     build it (bare: no br-int/tunnels/flows - what a
#                                           controller should create over OVSDB)
#   bash ovs_netns_overlay.sh flows vxlan|gre   (re)program the hand-written overlay flows
#   bash ovs_netns_overlay.sh ping          all-pairs VM ping check
#   bash ovs_netns_overlay.sh as I CMD...   run an OVS tool against hypervisor I, e.g.
#                                           hvdo 1 ovs-ofctl -O OpenFlow13 dump-flows br-int
#   bash ovs_netns_overlay.sh down          kill what this script started (by pidfile), delete
#                                           its namespaces and $B; idempotent
#   source ovs_netns_overlay.sh             use the functions from a test harness
#
# How the namespaced hypervisors reach the root namespace (only loopback is used):
#   OVSDB     unix:$B/hvI/db.sock       (a path: usable from any netns)
#             tcp:127.0.0.1:$((OVSDB_TCP_BASE+I)) (root-ns socat -> that unix socket)
#   OpenFlow  br-int controller tcp:127.0.0.1:$CTL_PORT *inside* the hypervisor: a socat in
#             the hv netns listens there and forwards through a unix socket to a socat in
#             the root netns that connects to 127.0.0.1:$CTL_PORT, where the controller is.
#             Every host therefore uses the same controller target as a real deployment.
#   Dial-in   `set-manager tcp:127.0.0.1:$MGR_PORT` on a host reaches a controller's OVSDB
#             listener on root 127.0.0.1:$MGR_PORT the same way.
#
# MGMT=1 (used by bench/ovn-compare.sh): a management network instead of the OpenFlow and
# dial-in relays, as on real hosts, whose controller is across a NIC, not behind two userspace
# relays (each relay is a process wake-up per message and direction, ~60 us here). A second
# bridge mg0 in $P-ul joins each hypervisor's mgmt0 ($(mgmtip I) = 10.254.0.I/24) and the
# eth0 of a controller namespace $P-ctl (10.254.0.254): run the controller there
# (`ip netns exec $P-ctl CMD...`, which execs: $! is CMD's PID), listening on $(mgmtip 254); `root_port PORT` makes a port it listens on
# at 127.0.0.1 in $P-ctl reachable as root 127.0.0.1:PORT (for REST, off the measured path).
set -u -o pipefail   # note: with pipefail, "producer | grep -q" fails when grep quits early (SIGPIPE)
NHV=${NHV:-3}; NVM=${NVM:-2}; P=${P:-sdnlab}; B=${B:-/run/sdnlab}; MGMT=${MGMT:-0}
CTL_PORT=${CTL_PORT:-6653}; MGR_PORT=${MGR_PORT:-6640}; OVSDB_TCP_BASE=${OVSDB_TCP_BASE:-6640}
UL_MTU=${UL_MTU:-1600}; VNI=${VNI:-5}; VERBOSE=${VERBOSE:-0}; CTL_BRIDGE=${CTL_BRIDGE:-br-probe}
SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
FAIL=0; T_START=$(date +%s.%N)

ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; FAIL=1; }
now() { date +%s.%N; }
since() { printf '%.2f' "$(echo "$(now) - $1" | bc)"; }
ulip() { echo "192.168.100.$1"; }                        # underlay IP of hypervisor I
vmip() { echo "10.10.0.$(( $1 * 10 + $2 ))"; }           # overlay IP of VM J on host I
vmmac() { printf '02:00:00:00:%02x:%02x' "$1" "$2"; }
vmns() { echo "$P-hv$1-vm$2"; }
mgmtip() { echo "10.254.0.$1"; }                          # management IP of hv I (254: controller)
tunport() { [ "$1" = vxlan ] && echo $((100 + $2)) || echo $((200 + $2)); }  # ofport to host K

# hvdo I CMD...: run an OVS tool against hypervisor I (the tools find everything through these)
hvdo() {
  local i=$1; shift
  [ "$VERBOSE" = 1 ] && echo "+ [hv$i] $*" >&2
  echo "[hv$i] $*" >>"$B/commands.log"
  OVS_RUNDIR=$B/hv$i OVS_LOGDIR=$B/hv$i OVS_DBDIR=$B/hv$i OVS_SYSCONFDIR=$B/hv$i "$@"
}
# bg NAME CMD...: start a long-running helper, remember its pid in $B/pids/NAME.pid
bg() { local n=$1; shift; "$@" >"$B/pids/$n.log" 2>&1 & echo $! >"$B/pids/$n.pid"; }

down() {
  local f p ns
  # 1. our own processes, by pidfile only (helpers first, then OVS)
  for f in "$B"/pids/*.pid "$B"/hv*/ovs-vswitchd.pid "$B"/hv*/ovsdb-server.pid; do
    [ -f "$f" ] || continue; p=$(cat "$f"); [ -n "$p" ] && kill "$p" 2>/dev/null
  done
  sleep 0.3
  for f in "$B"/pids/*.pid "$B"/hv*/ovs-vswitchd.pid "$B"/hv*/ovsdb-server.pid; do
    [ -f "$f" ] || continue; p=$(cat "$f"); [ -n "$p" ] && kill -9 "$p" 2>/dev/null
  done
  # 2. our namespaces (this removes every veth and OVS tap inside them)
  for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns"; done
  rm -rf "$B"
}

# loopback_bridge PORT: make root-netns 127.0.0.1:PORT reachable as 127.0.0.1:PORT inside
# every hypervisor netns (one root socat + one socat per hypervisor). Both TCP ends are `nodelay`,
# as ovs-vswitchd's and a controller's own sockets are: without it the root socat's Nagle held a
# packet-in behind an unacknowledged BARRIER_REPLY until the controller's delayed ACK, 40 ms.
loopback_bridge() {
  local port=$1 i
  bg "lo$port-root" socat UNIX-LISTEN:"$B/lo$port.sock",fork,unlink-early TCP:127.0.0.1:"$port",nodelay
  for i in $(seq 1 "$NHV"); do
    bg "lo$port-hv$i" ip netns exec "$P-hv$i" socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork,nodelay \
      UNIX-CONNECT:"$B/lo$port.sock"
  done
}

# MGMT=1: the management network (see the header); after every hv_up.
mgmt_up() {
  local i
  ip -n "$P-ul" link add mg0 type bridge; ip -n "$P-ul" link set mg0 up
  ip netns add "$P-ctl"; ip -n "$P-ctl" link set lo up
  ip link add eth0 netns "$P-ctl" type veth peer name ctl netns "$P-ul"
  ip -n "$P-ul" link set ctl master mg0 up
  ip -n "$P-ctl" addr add "$(mgmtip 254)/24" dev eth0; ip -n "$P-ctl" link set eth0 up
  for i in $(seq 1 "$NHV"); do
    ip link add mgmt0 netns "$P-hv$i" type veth peer name "mg$i" netns "$P-ul"
    ip -n "$P-ul" link set "mg$i" master mg0 up
    ip -n "$P-hv$i" addr add "$(mgmtip "$i")/24" dev mgmt0; ip -n "$P-hv$i" link set mgmt0 up
  done
}
# root_port PORT: root 127.0.0.1:PORT -> 127.0.0.1:PORT in $P-ctl (two socats, as loopback_bridge)
root_port() {
  local port=$1
  bg "ctl$port-ns" ip netns exec "$P-ctl" socat UNIX-LISTEN:"$B/ctl$port.sock",fork,unlink-early TCP:127.0.0.1:"$port",nodelay
  bg "ctl$port-root" socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork,nodelay UNIX-CONNECT:"$B/ctl$port.sock"
}

hv_up() {   # hv_up I: namespace, OVS daemons, br-phy with the underlay IP
  local i=$1 ns=$P-hv$1 d=$B/hv$1
  mkdir -p "$d"; ip netns add "$ns"; ip -n "$ns" link set lo up
  # underlay cable: eth0 in the hypervisor <-> hvI on the underlay bridge (made in place:
  # nothing is created in the root netns, so no clash with its eth0)
  ip link add eth0 netns "$ns" mtu "$UL_MTU" type veth peer name "hv$i" netns "$P-ul" mtu "$UL_MTU"
  ip -n "$P-ul" link set "hv$i" master br0 up
  ip -n "$ns" link set eth0 up
  # its own OVS: database + switch daemon, both inside the netns (ovs-vswitchd MUST be: it
  # opens the netdevs of its netns; ovsdb-server could live anywhere, its socket is a path)
  ovsdb-tool create "$d/conf.db" "$SCHEMA"
  hvdo "$i" ip netns exec "$ns" ovsdb-server "$d/conf.db" --remote=punix:"$d/db.sock" \
    --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
    --pidfile --detach --no-chdir --log-file -vconsole:off
  hvdo "$i" ovs-vsctl --no-wait init
  hvdo "$i" ip netns exec "$ns" ovs-vswitchd unix:"$d/db.sock" --pidfile --detach --no-chdir --log-file -vconsole:off
  # ---- from here on: exactly what a controller does over OVSDB (plus `ip` for the IP) ----
  hvdo "$i" ovs-vsctl set Open_vSwitch . external_ids:system-id="hv$i" external_ids:hostname="hv$i"
  hvdo "$i" ovs-vsctl add-br br-phy -- set Bridge br-phy datapath_type=netdev fail-mode=standalone \
      -- set Interface br-phy mtu_request="$UL_MTU" -- add-port br-phy eth0
  # the underlay IP lives on br-phy's internal port (a tap in the netdev datapath)
  ip -n "$ns" addr add "$(ulip "$i")/24" dev br-phy; ip -n "$ns" link set br-phy up
  # OVS learns the kernel's connected route by itself (ovs/route/show: "Cached: ... br-phy");
  # the explicit route of the howto is harmless and needed only without a kernel route.
  hvdo "$i" ovs-appctl ovs/route/add "$(ulip "$i")/24" br-phy >/dev/null
}

vm_up() {   # vm_up I J: the VM namespace and its veth; the hv end is called vmJ
  local i=$1 j=$2 ns; ns=$(vmns "$1" "$2")
  ip netns add "$ns"; ip -n "$ns" link set lo up
  ip link add "vm$j" netns "$P-hv$i" type veth peer name eth0 netns "$ns"
  ip -n "$ns" link set eth0 address "$(vmmac "$i" "$j")" mtu 1500
  ip -n "$ns" addr add "$(vmip "$i" "$j")/24" dev eth0; ip -n "$ns" link set eth0 up
  # TCP through the userspace datapath: the veth leaves TX checksums to "hardware" that
  # never computes them (ICMP is fine, TCP is dropped by the receiver). Turn it off.
  ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
  ip -n "$P-hv$i" link set "vm$j" up
}

brint_up() {   # brint_up I: br-int, VM ports, one VXLAN and one GRE port per peer host
  # One ovs-vsctl call = one OVSDB transaction (what a controller would send); per-port calls
  # each wait for ovs-vswitchd to reconfigure and make 24 hosts take ~2x longer to build.
  local i=$1 j k a=()
  a+=(add-br br-int -- set Bridge br-int datapath_type=netdev fail-mode=secure
      protocols=OpenFlow13 other-config:datapath-id="$(printf '%016x' "$i")"
      other-config:disable-in-band=true)
  for j in $(seq 1 "$NVM"); do
    a+=(-- add-port br-int "vm$j" -- set Interface "vm$j" ofport_request="$j"
        external_ids:iface-id="hv$i-vm$j" external_ids:attached-mac="$(vmmac "$i" "$j")")
  done
  for k in $(seq 1 "$NHV"); do [ "$k" = "$i" ] && continue
    a+=(-- add-port br-int "vx$k" -- set Interface "vx$k" type=vxlan
        ofport_request="$(tunport vxlan "$k")" options:remote_ip="$(ulip "$k")"
        options:local_ip="$(ulip "$i")" options:key=flow)
    a+=(-- add-port br-int "gre$k" -- set Interface "gre$k" type=gre
        ofport_request="$(tunport gre "$k")" options:remote_ip="$(ulip "$k")"
        options:local_ip="$(ulip "$i")" options:key=flow)
  done
  hvdo "$i" ovs-vsctl "${a[@]}"
}

# flows TYPE: one L2 segment (VNI $VNI) over all VMs, by hand, through TYPE tunnels.
# Saved as $B/hvI/flows-TYPE.txt and applied atomically-ish with replace-flows (idempotent).
flows() {
  local t=$1 i j jj k f vms tuns
  for i in $(seq 1 "$NHV"); do
    f=$B/hv$i/flows-$t.txt; : >"$f"; tuns=""
    for k in $(seq 1 "$NHV"); do [ "$k" = "$i" ] || tuns="$tuns,output:$(tunport "$t" "$k")"; done
    for j in $(seq 1 "$NVM"); do
      vms=""; for jj in $(seq 1 "$NVM"); do [ "$jj" = "$j" ] || vms="$vms,output:$jj"; done
      # broadcast/multicast from a local VM: the other local VMs + every remote host
      echo "table=0,priority=100,in_port=$j,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=${vms#,}${vms:+,}set_field:$VNI->tun_id${tuns}" >>"$f"
      # unicast to a local VM (from a VM or from a tunnel)
      echo "table=0,priority=50,dl_dst=$(vmmac "$i" "$j"),actions=output:$j" >>"$f"
    done
    vms=""; for jj in $(seq 1 "$NVM"); do vms="$vms,output:$jj"; done
    for k in $(seq 1 "$NHV"); do [ "$k" = "$i" ] && continue
      # broadcast from a tunnel: local VMs only (split horizon, no loops in the full mesh)
      echo "table=0,priority=100,in_port=$(tunport "$t" "$k"),tun_id=$VNI,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=${vms#,}" >>"$f"
      for j in $(seq 1 "$NVM"); do
        # unicast to a VM on host k: set the key, out the tunnel to k
        echo "table=0,priority=50,dl_dst=$(vmmac "$k" "$j"),actions=set_field:$VNI->tun_id,output:$(tunport "$t" "$k")" >>"$f"
      done
    done
    echo "table=0,priority=0,actions=drop" >>"$f"
    hvdo "$i" ovs-ofctl -O OpenFlow13 replace-flows br-int "$f"
  done
}

# ping_all: every VM pings every other VM once (in parallel per source); prints failures
ping_all() {
  local i j k l n=0 bad_pairs="" pids=() out=$B/ping
  mkdir -p "$out"; rm -f "$out"/*
  for i in $(seq 1 "$NHV"); do for j in $(seq 1 "$NVM"); do
    ( for k in $(seq 1 "$NHV"); do for l in $(seq 1 "$NVM"); do
        [ "$i$j" = "$k$l" ] && continue
        ip netns exec "$(vmns "$i" "$j")" ping -c1 -W2 -q "$(vmip "$k" "$l")" >/dev/null 2>&1 \
          || echo "hv$i-vm$j->hv$k-vm$l" >>"$out/bad.$i.$j"
      done; done ) & pids+=($!)
  done; done
  wait "${pids[@]}"
  cat "$out"/bad.* 2>/dev/null
  ! ls "$out"/bad.* >/dev/null 2>&1
}

# first_ping TIMEOUT_S: repeat a cross-host ping hv1-vm1 -> hvN-vm1 until it answers
first_ping() {
  local t0; t0=$(now)
  while [ "$(echo "$(now) - $t0 < $1" | bc)" = 1 ]; do
    ip netns exec "$(vmns 1 1)" ping -c1 -W1 -q "$(vmip "$NHV" 1)" >/dev/null 2>&1 && return 0
  done
  return 1
}

check_tunnel() {   # check_tunnel TYPE: flows, first ping, all pairs, MTU, TCP, encapsulation
  local t=$1 t0 src dst proto
  t0=$(now); flows "$t"
  if first_ping 10; then
    ok "$t: first cross-host ping answered $(since "$t0") s after the flows, $(since "$T_START") s after start"
  else bad "$t: no cross-host ping in 10 s"; fi
  t0=$(now)
  if ping_all; then ok "$t: all $((NHV*NVM*(NHV*NVM-1))) VM pairs ping ($(since "$t0") s)"
  else bad "$t: some VM pairs do not ping (above)"; fi
  # a full 1500-byte IP packet, DF set: needs underlay MTU >= 1550 (VXLAN) / 1542 (GRE+key)
  src=$(vmns 1 1); dst=$(vmip "$NHV" "$NVM")
  ip netns exec "$src" ping -c1 -W2 -q -M do -s 1472 "$dst" >/dev/null \
    && ok "$t: 1500-byte packets cross (underlay MTU $UL_MTU)" || bad "$t: 1500-byte ping fails"
  # TCP (shows the checksum-offload fix is in place)
  ip netns exec "$(vmns "$NHV" "$NVM")" iperf3 -s -1 -D -I "$B/pids/iperf3-$t.pid" >/dev/null 2>&1; sleep 0.3
  local bw; bw=$(ip netns exec "$src" timeout 15 iperf3 -c "$dst" -t 2 2>/dev/null | awk '/receiver/{print $7" "$8}')
  # "0.00 bits/sec" is what an MTU or checksum problem looks like: the session opens, no data
  if [ -n "$bw" ] && [ "$(echo "$bw" | awk '{print ($1 > 0)}')" = 1 ]; then ok "$t: TCP (iperf3 2 s) $bw"
  else bad "$t: TCP through the tunnel fails (${bw:-no session})"; fi
  # the datapath really encapsulates with the right header
  [ "$t" = vxlan ] && proto='udp(src=0,dst=4789)' || proto='gre((flags=0x2000,proto=0x6558),key=0x5)'
  hvdo 1 ovs-appctl dpctl/dump-flows | grep "tnl_push.*$(printf '%s' "$proto" | sed 's/[()]/./g')" >/dev/null \
    && ok "$t: hv1 datapath shows tnl_push with $proto" || bad "$t: no $t tnl_push in hv1's datapath"
}

up() {   # up [bare]
  local mode=${1:-full} i j
  command -v socat >/dev/null && command -v iperf3 >/dev/null && command -v ethtool >/dev/null \
    || apt-get install -y -qq socat iperf3 ethtool >/dev/null
  down; mkdir -p "$B/pids"
  ip netns add "$P-ul"; ip -n "$P-ul" link set lo up
  ip -n "$P-ul" link add br0 type bridge; ip -n "$P-ul" link set br0 up
  for i in $(seq 1 "$NHV"); do hv_up "$i"; done
  for i in $(seq 1 "$NHV"); do for j in $(seq 1 "$NVM"); do vm_up "$i" "$j"; done; done
  [ "$mode" = bare ] || for i in $(seq 1 "$NHV"); do brint_up "$i"; done
  # management plane: controller and dial-in OVSDB reachable as 127.0.0.1 in every hv
  # (MGMT=1: at $(mgmtip 254) over the management network instead), each hv's OVSDB reachable
  # as 127.0.0.1:OVSDB_TCP_BASE+I from the root netns
  if [ "$MGMT" = 1 ]; then mgmt_up; else loopback_bridge "$CTL_PORT"; loopback_bridge "$MGR_PORT"; fi
  if [ "$OVSDB_TCP_BASE" != 0 ]; then
    for i in $(seq 1 "$NHV"); do
      bg "ovsdb-tcp-hv$i" socat TCP-LISTEN:$((OVSDB_TCP_BASE + i)),bind=127.0.0.1,reuseaddr,fork,nodelay UNIX-CONNECT:"$B/hv$i/db.sock"
    done
  fi
}

summary() {
  local i
  echo "--- hypervisors (OVSDB remotes usable from the root netns)"
  for i in $(seq 1 "$NHV"); do
    echo "hv$i: netns $P-hv$i  underlay $(ulip "$i")  ovsdb unix:$B/hv$i/db.sock | tcp:127.0.0.1:$((OVSDB_TCP_BASE + i))  vswitchd pid $(cat "$B/hv$i/ovs-vswitchd.pid") RSS $(ps -o rss= -p "$(cat "$B/hv$i/ovs-vswitchd.pid")") KiB"
  done
}

controller_check() {
  local i t0 n ctl=""
  if [ "${EXTERNAL_CTL:-0}" != 1 ]; then
    if (exec 3<>/dev/tcp/127.0.0.1/"$CTL_PORT") 2>/dev/null; then
      bad "127.0.0.1:$CTL_PORT already taken: set CTL_PORT or EXTERNAL_CTL=1"; return
    fi
    bg testcontroller ovs-testcontroller -O OpenFlow13 ptcp:"$CTL_PORT":127.0.0.1 -vconsole:off
    sleep 0.3
  fi
  # The stand-in controller is a learning switch: on connect it deletes every flow and then
  # FLOODs, and flooding over a full mesh of tunnels loops (seen: >1500 packet-ins/s, a
  # broadcast storm). So by default the check uses an empty probe bridge: same vswitchd,
  # same path to the controller. Set CTL_BRIDGE=br-int for a controller that owns br-int.
  t0=$(now)
  for i in $(seq 1 "$NHV"); do
    hvdo "$i" ovs-vsctl --may-exist add-br "$CTL_BRIDGE" -- set Bridge "$CTL_BRIDGE" \
        datapath_type=netdev fail-mode=secure protocols=OpenFlow13 \
        -- set-controller "$CTL_BRIDGE" tcp:127.0.0.1:"$CTL_PORT" \
        -- set Controller "$CTL_BRIDGE" connection-mode=out-of-band
  done
  if [ "${EXTERNAL_CTL:-0}" != 1 ]; then
    # ovs-testcontroller installs "priority=0 actions=CONTROLLER:128" right after the
    # OpenFlow handshake: the quickest proof that the session is up
    for _ in $(seq 1 100); do
      n=0; for i in $(seq 1 "$NHV"); do
        hvdo "$i" ovs-ofctl -O OpenFlow13 dump-flows "$CTL_BRIDGE" 2>/dev/null | grep CONTROLLER:128 >/dev/null && n=$((n + 1))
      done
      [ "$n" = "$NHV" ] && break; sleep 0.1
    done
    [ "$n" = "$NHV" ] && ok "all $NHV hosts' $CTL_BRIDGE completed the OpenFlow handshake with root 127.0.0.1:$CTL_PORT ($(since "$t0") s)" \
      || bad "only $n/$NHV hosts reached the controller"
  fi
  # OVSDB's view (Controller.is_connected) is refreshed by ovs-vswitchd only periodically
  for _ in $(seq 1 150); do
    n=0; for i in $(seq 1 "$NHV"); do
      [ "$(hvdo "$i" ovs-vsctl get Controller "$CTL_BRIDGE" is_connected)" = true ] && n=$((n + 1))
    done
    [ "$n" = "$NHV" ] && break; sleep 0.1
  done
  [ "$n" = "$NHV" ] && ok "Controller.is_connected=true on all hosts ($(since "$t0") s: OVSDB status lags)" \
    || bad "Controller.is_connected not true everywhere"
  # OVSDB over TCP from the root netns
  n=0; for i in $(seq 1 "$NHV"); do
    [ "$(ovs-vsctl --timeout=5 --db=tcp:127.0.0.1:$((OVSDB_TCP_BASE + i)) get Open_vSwitch . external_ids:system-id 2>/dev/null | tr -d '"')" = "hv$i" ] && n=$((n + 1))
  done
  [ "$n" = "$NHV" ] && ok "OVSDB of every host answers on tcp:127.0.0.1:$((OVSDB_TCP_BASE + 1))..$((OVSDB_TCP_BASE + NHV))" \
    || bad "OVSDB over TCP: only $n/$NHV"
  # host dials in: hv1's ovsdb-server connects out to an OVSDB listener on root 127.0.0.1:MGR_PORT
  if ! (exec 3<>/dev/tcp/127.0.0.1/"$MGR_PORT") 2>/dev/null; then
    hvdo 1 ovs-vsctl set-manager tcp:127.0.0.1:"$MGR_PORT"
    if timeout 15 ovsdb-client list-dbs ptcp:"$MGR_PORT":127.0.0.1 2>/dev/null | grep Open_vSwitch >/dev/null; then
      ok "dial-in: hv1's ovsdb-server (set-manager tcp:127.0.0.1:$MGR_PORT) reached a root-netns listener"
    else bad "dial-in OVSDB did not arrive"; fi
    hvdo 1 ovs-vsctl del-manager
  else echo "skip dial-in check: 127.0.0.1:$MGR_PORT is taken"; fi
}

demo() {
  local t0 keep=${1:-}
  t0=$(now); T_START=$t0
  up full
  ok "$NHV hypervisors x $NVM VMs up in $(since "$t0") s"
  for i in $(seq 1 "$NHV"); do
    hvdo "$i" ovs-vsctl --columns=name,error find Interface 'error!=[]' | grep error >/dev/null \
      && bad "hv$i has interfaces in error: $(hvdo "$i" ovs-vsctl --columns=name,error find Interface 'error!=[]')"
  done
  check_tunnel vxlan
  check_tunnel gre
  if [ "$VERBOSE" = 1 ]; then
    hvdo 1 ovs-appctl ovs/route/show; hvdo 1 ovs-appctl tnl/neigh/show; hvdo 1 ovs-appctl tnl/ports/show
  fi
  controller_check
  summary
  echo "total $(since "$t0") s"
  if [ "$keep" = keep ]; then echo "kept; remove with: $0 down"; else down; fi
  [ "$FAIL" = 0 ] && echo "RESULT: PASS" || echo "RESULT: FAIL"
  return "$FAIL"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ "$(id -u)" = 0 ] || { echo "needs root (namespaces, veths)"; exit 2; }
  cmd=${1:-demo}; shift || true
  case "$cmd" in
    demo) demo "${1:-}"; exit $? ;;
    up) up "${1:-full}"; summary ;;
    flows) flows "${1:?vxlan|gre}" ;;
    ping) ping_all && echo "RESULT: PASS" || { echo "RESULT: FAIL"; exit 1; } ;;
    as|hvdo) hvdo "$@" ;;
    down) down ;;
    *) sed -n '2,40p' "$0"; exit 2 ;;
  esac
fi
