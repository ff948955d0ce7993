#!/usr/bin/env bash
# End-to-end check (run by scripts/test.sh, as root): virtual routers carry real Linux traffic
# between namespaced hypervisors. scripts/lab/ovs_netns_overlay.sh builds 3 hypervisors "bare"
# (own ovsdb-server + ovs-vswitchd each, userspace datapath, a 1500-byte underlay, 4 VM
# namespaces each, no br-int); `strowger serve` provisions br-int and the VXLAN mesh over OVSDB.
# Two tenants with the same subnets and the same IPs; per tenant a router joining two bridges
# (10.0.1.0/24, 10.0.2.0/24) and 6 VMs spread over the 3 hosts:
#
#   host  VM (A / B)  subnet  address    configured by
#   hv1   vm1 / vm3   net1    10.0.1.11  DHCP, busybox udhcpc
#   hv1   vm2 / vm4   net2    10.0.2.21  DHCP, busybox udhcpc
#   hv2   vm1 / vm3   net2    10.0.2.12  DHCP, busybox udhcpc
#   hv2   vm2 / vm4   net1    10.0.1.22  DHCP, ISC dhclient
#   hv3   vm1 / vm3   net1    10.0.1.13  DHCP, busybox udhcpc
#   hv3   vm2 / vm4   net2    10.0.2.23  by hand (no DHCP host: the router must ARP for it)
#
# Checked with real tools only:
#  - a real DHCP client in every DHCP VM (busybox udhcpc; ISC dhclient in one per tenant) gets its
#    static lease: address, default route via the router port, MTU 1400 (VXLAN on the 1500-byte
#    underlay), DNS, server id, lease time, the option-121 route, host name;
#  - every cross-subnet pair of a tenant pings through the router, across hosts; iperf3 TCP
#    across subnets between two hosts;
#  - traceroute -n (UDP) shows the router port as hop 1 and the destination as hop 2;
#  - a ping to an address with no route gets "Destination Net Unreachable" from the router port;
#    a 1500-byte DF ping gets "Frag needed" with the network's MTU (1400) from the router port;
#  - tenants are isolated: with tenant B's 10.0.2.12 down, A still reaches its own 10.0.2.12 and
#    B does not; each router's ARP table holds its own tenant's MAC for 10.0.2.23;
#  - the ARP tables (REST and `strowger router arp-table`) show the entry the router resolved.
# Every wait is a poll with a deadline; everything started is stopped by PID, every namespace
# deleted, also on failure. Exit status non-zero on any failure (the controller log is printed).
set -u -o pipefail
cd "$(dirname "$0")/../.."
for tool in udhcpc dhclient traceroute iperf3 curl python3 bc; do
  command -v "$tool" >/dev/null || { echo "engine_router_netns: $tool missing (bash scripts/setup.sh)"; exit 1; }
done
export NHV=3 NVM=4 UL_MTU=1500
# shellcheck source=../lab/strowger_check.sh
source scripts/lab/strowger_check.sh
check_init router-check stwr

# The VMs: "host vm subnet address how" for tenant A; tenant B uses vm+2 with the same rest.
layout="1 1 1 10.0.1.11 udhcpc
1 2 2 10.0.2.21 udhcpc
2 1 2 10.0.2.12 udhcpc
2 2 1 10.0.1.22 dhclient
3 1 1 10.0.1.13 udhcpc
3 2 2 10.0.2.23 static"
gw() { echo "10.0.$1.1"; }                                        # gateway of subnet S
vm_j() { if [ "$2" = A ]; then echo "$1"; else echo $(($1 + 2)); fi; }  # vm_j VM TENANT → J
vm_ns() { vmns "$1" "$(vm_j "$2" "$3")"; }                       # vm_ns HOST VM TENANT
ns_mac() { ip -n "$1" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }

lab_up vxlan
set -e
declare -A router net port key mac
for t in A B; do
  router[$t]=$(post /routers "{\"name\":\"r$t\",\"tenant_id\":\"tenant-$t\"}" | jget "['id']")
  for s in 1 2; do
    net[$t$s]=$(post /bridges "{\"name\":\"net$s-$t\",\"tenant_id\":\"tenant-$t\"}" | jget "['id']")
    rp=$(post "/routers/${router[$t]}/ports" "{\"address\":\"$(gw $s)/24\"}" | jget "['id']")
    bp=$(post "/bridges/${net[$t$s]}/ports" '{}' | jget "['id']")
    post "/ports/$rp/link" "{\"peer_id\":\"$bp\"}" >/dev/null
    sub=$(post "/bridges/${net[$t$s]}/dhcp" "{\"subnet\":\"10.0.$s.0/24\",\"gateway\":\"$(gw $s)\",
      \"dns_servers\":[\"10.0.0.53\",\"10.0.0.54\"],\"mtu\":1400,
      \"opt121_routes\":[{\"dest\":\"192.168.50.0/24\",\"gateway\":\"$(gw $s)\"}],\"enabled\":true}" | jget "['id']")
    declare "subnet_$t$s=$sub"
  done
  while read -r i j s ip mode; do
    ns=$(vm_ns "$i" "$j" "$t"); mac[$ns]=$(ns_mac "$ns")
    p=$(post "/bridges/${net[$t$s]}/ports" '{}')
    port[$ns]=$(echo "$p" | jget "['id']"); key[$ns]=$(echo "$p" | jget "['tunnel_key']")
    if [ "$mode" != static ]; then
      sub_var=subnet_$t$s
      post "/bridges/${net[$t$s]}/dhcp/${!sub_var}/hosts" \
        "{\"mac\":\"${mac[$ns]}\",\"ip\":\"$ip\",\"name\":\"${t,,}-hv$i-vm$(vm_j "$j" "$t")\"}" >/dev/null
    fi
  done <<<"$layout"
done
set +e

t0=$(now)
wait_pipelines
for i in 1 2 3; do
  a=(); for j in 1 2 3 4; do a+=("vm$j=${port[$(vmns "$i" "$j")]}"); done
  plug "$i" "${a[@]}"
done
for i in 1 2 3; do for j in 1 2 3 4; do
  wait_for 20 bound "$i" "${key[$(vmns "$i" "$j")]}" || bad "hv$i: VIF vm$j not classified"
done; done
ok "12 VIFs bound by iface-id ($(since "$t0") s after the hosts were created)"

# ---- DHCP: real clients in the DHCP VMs, the static VMs configured by hand ----
# One event script for both clients (dhclient's variables are first renamed to udhcpc's): it
# applies address, MTU, default route and option-121 routes, and keeps the lease's options in
# $LEASE_OUT (dns=, serverid=, hostname=, lease=) for the checks below.
cat >"$work/dhcp.script" <<'EOF'
#!/bin/sh
if [ -n "${reason:-}" ]; then   # ISC dhclient
  case "$reason" in
    PREINIT) set -- deconfig ;;
    BOUND|RENEW|REBIND|REBOOT) set -- bound ;;
    *) exit 0 ;;
  esac
  ip=$new_ip_address mask=$new_subnet_mask mtu=${new_interface_mtu:-} router=${new_routers:-}
  dns=${new_domain_name_servers:-} serverid=${new_dhcp_server_identifier:-}
  hostname=${new_host_name:-} lease=${new_dhcp_lease_time:-} staticroutes=""
  # RFC 3442 as dhclient passes it: width, the significant octets, the gateway's 4 octets.
  set -- "$1" ${new_rfc3442_classless_static_routes:-}
  event=$1; shift
  while [ $# -ge 5 ]; do
    w=$1; shift; n=$(( (w + 7) / 8 )); d=""
    for k in 1 2 3 4; do
      if [ "$k" -le "$n" ]; then d="$d${d:+.}$1"; shift; else d="$d${d:+.}0"; fi
    done
    staticroutes="$staticroutes $d/$w $1.$2.$3.$4"; shift 4
  done
  set -- "$event"
fi
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "${mtu:-}" ] && ip link set "$interface" mtu "$mtu"
    for r in ${router:-}; do ip route replace default via "$r" dev "$interface"; break; done
    set -- ${staticroutes:-}
    while [ $# -ge 2 ]; do
      [ "$1" = 0.0.0.0/0 ] || ip route replace "$1" via "$2" dev "$interface"
      shift 2
    done
    { echo "dns=${dns:-}"; echo "serverid=${serverid:-}"; echo "hostname=${hostname:-}"
      echo "lease=${lease:-}"; } >"$LEASE_OUT"
    ;;
esac
exit 0
EOF
cat >"$work/dhclient.conf" <<'EOF'
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, routers, domain-name-servers, host-name, interface-mtu,
  rfc3442-classless-static-routes;
EOF
chmod +x "$work/dhcp.script"
t_dhcp=$(now)
declare -A dhcp_pid
for t in A B; do
  while read -r i j s ip mode; do
    ns=$(vm_ns "$i" "$j" "$t")
    ip -n "$ns" -4 addr flush dev eth0
    if [ "$mode" = static ]; then
      ip -n "$ns" link set eth0 mtu 1400
      ip -n "$ns" addr add "$ip/24" dev eth0
      ip -n "$ns" route add default via "$(gw $s)"
      continue
    fi
    if [ "$mode" = udhcpc ]; then
      LEASE_OUT=$work/lease.$ns timeout 30 ip netns exec "$ns" udhcpc -i eth0 -f -q -n -t 20 -T 1 \
        -O mtu -O staticroutes -s "$work/dhcp.script" >"$work/client.$ns.log" 2>&1 &
      dhcp_pid[$ns]=$!
    else
      # dhclient keeps running to hold its lease (-d: in the foreground, so $! is its PID).
      ip netns exec "$ns" dhclient -4 -d -1 -cf "$work/dhclient.conf" -sf "$work/dhcp.script" \
        -e LEASE_OUT="$work/lease.$ns" -lf "$work/dhclient.$ns.leases" -pf "$work/dhclient.$ns.pid" \
        eth0 >"$work/client.$ns.log" 2>&1 &
    fi
    bg_pids+=($!)
  done <<<"$layout"
done
for ns in "${!dhcp_pid[@]}"; do
  wait "${dhcp_pid[$ns]}" || { bad "$ns: udhcpc got no lease"; cat "$work/client.$ns.log"; }
done
for t in A B; do
  ns=$(vm_ns 2 2 "$t")
  wait_for 30 test -s "$work/lease.$ns" || { bad "$ns: dhclient got no lease"; cat "$work/client.$ns.log"; }
done
dhcp_s=$(since "$t_dhcp")
ok "10 DHCP leases in $dhcp_s s (8 udhcpc, 2 dhclient, in parallel)"
lease() { sed -n "s/^$2=//p" "$work/lease.$1" 2>/dev/null; }
for t in A B; do
  while read -r i j s ip mode; do
    [ "$mode" = static ] && continue
    ns=$(vm_ns "$i" "$j" "$t"); g=$(gw "$s"); why=""
    ip -n "$ns" -4 addr show eth0 | grep -q "inet $ip/24 " || why+=" address"
    ip -n "$ns" route show default | grep -q "^default via $g dev eth0" || why+=" default-route"
    ip -n "$ns" link show eth0 | grep -q " mtu 1400 " || why+=" mtu"
    ip -n "$ns" route show 192.168.50.0/24 | grep -q "via $g" || why+=" option-121"
    [ "$(lease "$ns" dns | xargs)" = "10.0.0.53 10.0.0.54" ] || why+=" dns"
    [ "$(lease "$ns" serverid)" = "$g" ] || why+=" server-id"
    [ "$(lease "$ns" hostname)" = "${t,,}-hv$i-vm$(vm_j "$j" "$t")" ] || why+=" host-name"
    [ "$(lease "$ns" lease)" -gt 0 ] 2>/dev/null || why+=" lease-time"
    [ -z "$why" ] && ok "$t hv$i: $ip/24 via $g, mtu 1400, DNS, server id, lease, option 121, host name ($mode)" \
      || { bad "$ns: DHCP lease wrong:$why"; cat "$work/lease.$ns" 2>/dev/null; ip -n "$ns" addr; ip -n "$ns" route; }
  done <<<"$layout"
done

# ---- routing: every cross-subnet pair of each tenant, across hosts ----
pings() { ip netns exec "$1" ping -c1 -W1 -q "$2" >/dev/null 2>&1 </dev/null; }
t0=$(now)
first_s=none
if wait_for 15 pings "$(vm_ns 1 1 A)" 10.0.2.12; then first_s=$(since "$t0"); ok "first routed ping A 10.0.1.11 (hv1) → 10.0.2.12 (hv2) after $first_s s"
else bad "A: 10.0.1.11 cannot ping 10.0.2.12 through the router"; fi
for t in A B; do
  n=0 failed=0
  while read -r i j s ip _; do
    while read -r k l s2 ip2 _; do
      [ "$s" = "$s2" ] && continue
      n=$((n + 1))
      wait_for 5 pings "$(vm_ns "$i" "$j" "$t")" "$ip2" || { failed=$((failed + 1)); bad "$t: $ip (hv$i) cannot ping $ip2 (hv$k)"; }
    done <<<"$layout"
  done <<<"$layout"
  [ "$failed" = 0 ] && ok "$t: all $n cross-subnet pairs ping through the router"
done

# TCP across subnets and hosts (MTU 1400 from DHCP keeps the VXLAN frames under the underlay's 1500).
src=$(vm_ns 1 1 A) dst=$(vm_ns 2 1 A)
ip netns exec "$dst" iperf3 -s -1 -D -I "$work/iperf3.pid" >/dev/null 2>&1
wait_for 5 sh -c "ip netns exec $dst ss -ltn 'sport = :5201' | grep -q 5201"
bw=$(ip netns exec "$src" timeout 20 iperf3 -c 10.0.2.12 -t 2 2>/dev/null | awk '/receiver/{print $7" "$8}')
if [ -n "$bw" ] && [ "$(echo "$bw" | awk '{print ($1 > 0)}')" = 1 ]; then ok "A: iperf3 TCP 10.0.1.11 (hv1) → 10.0.2.12 (hv2) $bw"
else bad "A: iperf3 TCP across the router failed (${bw:-no session})"; fi
[ -f "$work/iperf3.pid" ] && kill "$(cat "$work/iperf3.pid")" 2>/dev/null

# traceroute (UDP): hop 1 is the router port on the source's subnet, hop 2 the destination.
hops_ok() {
  local out; out=$(ip netns exec "$(vm_ns 1 1 A)" traceroute -n -w 1 -m 4 10.0.2.12 2>&1)
  echo "$out" >"$work/traceroute.out"
  echo "$out" | grep -Eq '^ *1 +10\.0\.1\.1 ' && echo "$out" | grep -Eq '^ *2 +10\.0\.2\.12 ' \
    && ! echo "$out" | grep -Eq '^ *3 '
}
if wait_for 15 hops_ok; then ok "traceroute -n 10.0.2.12: hop 1 10.0.1.1 (router), hop 2 10.0.2.12"
else bad "traceroute does not show router then destination"; cat "$work/traceroute.out"; fi

# No route: the router answers net unreachable from its port.
out=$(ip netns exec "$(vm_ns 1 1 A)" ping -c1 -W2 192.0.2.1 2>&1)
echo "$out" | grep -q "From 10.0.1.1 .*Destination Net Unreachable" \
  && ok "ping 192.0.2.1 (no route): Destination Net Unreachable from 10.0.1.1" \
  || { bad "no net unreachable for 192.0.2.1"; echo "$out"; }

# Path MTU: a VM that ignores the DHCP MTU sends 1500-byte DF packets; the router refuses them
# with "fragmentation needed" naming the network's MTU, and the VM's kernel learns it.
ns=$(vm_ns 1 1 A)
ip -n "$ns" link set eth0 mtu 1500
out=$(ip netns exec "$ns" ping -c1 -W2 -M do -s 1472 10.0.2.12 2>&1)
echo "$out" | grep -q "From 10.0.1.1 .*Frag needed and DF set (mtu = 1400)" \
  && ip netns exec "$ns" ip route get 10.0.2.12 | grep -q "mtu 1400" \
  && ok "1500-byte DF ping: Frag needed (mtu = 1400) from 10.0.1.1, path MTU learned" \
  || { bad "no fragmentation needed for a 1500-byte DF packet"; echo "$out"; ip netns exec "$ns" ip route get 10.0.2.12; }
ip -n "$ns" link set eth0 mtu 1400

# ---- tenant isolation with overlapping addresses ----
# B's 10.0.2.12 goes down: B loses it, A keeps its own 10.0.2.12.
ip -n "$(vm_ns 2 1 B)" link set eth0 down
if ip netns exec "$(vm_ns 1 1 B)" ping -c3 -i0.2 -W1 -q 10.0.2.12 >/dev/null 2>&1; then
  bad "B reaches 10.0.2.12 with its own VM down: tenant A answered"
else ok "B cannot reach 10.0.2.12 once its own VM is down"; fi
pings "$(vm_ns 1 1 A)" 10.0.2.12 && ok "A still reaches its own 10.0.2.12" || bad "A lost its 10.0.2.12"
ip -n "$(vm_ns 2 1 B)" link set eth0 up

# ---- ARP tables: 10.0.2.23 has no DHCP host, so each router resolved it by ARP ----
for t in A B; do
  want=${mac[$(vm_ns 3 2 "$t")]}
  got=$(curl -sf "$api/routers/${router[$t]}/arp_table" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["ip"] == "10.0.2.23":
        print(e["mac"], e["state"])')
  case $got in
    "$want reachable"|"$want stale") ok "$t: REST arp_table 10.0.2.23 → $got (its own tenant's VM)" ;;
    *) bad "$t: REST arp_table 10.0.2.23 is '$got', want $want" ;;
  esac
done
cli=$(STROWGER_API="http://127.0.0.1:$API_PORT" "$BIN" router arp-table rA 2>&1)
echo "$cli" | grep "10.0.2.23" | grep -q "${mac[$(vm_ns 3 2 A)]}" \
  && ok "strowger router arp-table rA lists 10.0.2.23 with A's MAC" \
  || { bad "strowger router arp-table rA misses 10.0.2.23"; echo "$cli"; }

# What OVS shows agrees: hv1's flow cache routes A's 10.0.1.11 → 10.0.2.12 with dec_ttl, and the
# trace of that packet tunnels to hv2 with the destination port's key.
f1=$(flows_of 1 table=20)
echo "$f1" | grep 'nw_dst=10.0.2.12[ ,]' | grep -q 'dec_ttl' \
  && ok "hv1 flow cache: a routed flow to 10.0.2.12 with dec_ttl" || { bad "hv1: no routed flow with dec_ttl"; echo "$f1"; }
a_of=$(hvdo 1 ovs-vsctl get Interface vm1 ofport)
rmac=$(curl -sf "$api/routers/${router[A]}/ports" | python3 -c '
import json, sys
print(next(p["mac"] for p in json.load(sys.stdin) if p["address"] == "10.0.1.1/24"))')
kc=$(printf '%#x' "${key[$(vm_ns 2 1 A)]}")
tr=$(hvdo 1 ovs-appctl ofproto/trace br-int "icmp,in_port=$a_of,dl_src=${mac[$(vm_ns 1 1 A)]},dl_dst=$rmac,nw_src=10.0.1.11,nw_dst=10.0.2.12,nw_ttl=64")
echo "$tr" | grep '^Datapath actions' | grep -q "tnl_push.*vni=$kc" \
  && ok "ofproto/trace A 10.0.1.11 → 10.0.2.12 on hv1: tunnel with key $kc" \
  || { bad "ofproto/trace A 10.0.1.11 → 10.0.2.12 does not tunnel with key $kc"; echo "$tr"; }

echo "timings: lab up $lab_s s, DHCP $dhcp_s s, first routed ping $first_s s, iperf3 ${bw:-none}"
finish_check
