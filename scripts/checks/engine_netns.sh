#!/usr/bin/env bash
# End-to-end check (run by scripts/test.sh, as root): the virtual network engine carries real
# Linux traffic between namespaced hypervisors. scripts/lab/ovs_netns_overlay.sh (the proven lab
# recipe) builds 3 hypervisors "bare": each its own ovsdb-server + ovs-vswitchd (userspace
# datapath), an underlay, br-phy, and 2 VM namespaces — but no br-int. `strowger serve` does the
# rest as on real hosts: over OVSDB it creates br-int and the VXLAN mesh, and the VIFs plugged
# with external_ids:iface-id=<logical port id> bind themselves.
# Two tenants, the same subnet and the same IPs in both (10.0.0.1-3, one VM of each per host):
#  - every pair inside a tenant pings across hosts; iperf3 TCP between two hosts;
#  - nothing crosses tenants: ARP resolves to the own tenant's MAC, and with tenant B's
#    10.0.0.3 down, B cannot reach 10.0.0.3 while A still can;
#  - dump-flows shows the engine's pipeline and flow cache, and ofproto/trace of a known pair
#    tunnels with the destination port's key, as the engine's flow says.
# Exit status non-zero on any failure (the controller log is printed then).
set -u -o pipefail
cd "$(dirname "$0")/../.."
export NHV=3 NVM=2
# shellcheck source=../lab/strowger_check.sh
source scripts/lab/strowger_check.sh
check_init engine-check stwe

lab_up vxlan
# The same IPs in both tenants: VM 1 of each host is tenant A, VM 2 tenant B; 10.0.0.I.
for i in 1 2 3; do for j in 1 2; do
  ip -n "$(vmns $i $j)" addr flush dev eth0
  ip -n "$(vmns $i $j)" addr add "10.0.0.$i/24" dev eth0
done; done

set -e
declare -A port key
for t in A B; do
  br=$(post /bridges "{\"name\":\"net-$t\",\"tenant_id\":\"tenant-$t\"}" | jget "['id']")
  for i in 1 2 3; do
    p=$(post "/bridges/$br/ports" '{}')
    port[$t$i]=$(echo "$p" | jget "['id']"); key[$t$i]=$(echo "$p" | jget "['tunnel_key']")
  done
done
set +e

t0=$(now)
wait_pipelines
for i in 1 2 3; do plug "$i" vm1="${port[A$i]}" vm2="${port[B$i]}"; done
for i in 1 2 3; do
  for t in A B; do wait_for 20 bound "$i" "${key[$t$i]}" || bad "hv$i: VIF of $t$i not classified"; done
done
ok "VIFs bound by iface-id ($(since "$t0") s after the hosts were created)"

vm() { vmns "$1" "$([ "$2" = A ] && echo 1 || echo 2)"; }   # vm I TENANT → its namespace
pings() { ip netns exec "$(vm "$1" "$3")" ping -c1 -W1 -q "10.0.0.$2" >/dev/null 2>&1; }
t0=$(now)
if wait_for 15 pings 1 3 A; then ok "first ping A hv1→hv3 answered after $(since "$t0") s"
else bad "A hv1 cannot ping hv3"; fi
for t in A B; do
  for i in 1 2 3; do for k in 1 2 3; do
    [ "$i" = "$k" ] && continue
    wait_for 5 pings "$i" "$k" "$t" && ok "$t: hv$i → hv$k" || bad "$t: hv$i cannot ping hv$k"
  done; done
done

# Isolation 1: each tenant's ARP entry for 10.0.0.2 is its own tenant's VM on hv2.
for t in A B; do
  j=$([ "$t" = A ] && echo 1 || echo 2)
  got=$(ip -n "$(vm 1 $t)" neigh show 10.0.0.2 | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}')
  [ "$got" = "$(vmmac 2 $j)" ] && ok "$t: 10.0.0.2 resolves to its own VM ($got)" \
    || bad "$t: 10.0.0.2 resolves to '$got', not $(vmmac 2 $j)"
done
# Isolation 2: B's 10.0.0.3 goes down; B loses it, A keeps its own 10.0.0.3.
ip -n "$(vm 3 B)" link set eth0 down
ip -n "$(vm 1 B)" neigh flush all
if ip netns exec "$(vm 1 B)" ping -c3 -i0.2 -W1 -q 10.0.0.3 >/dev/null 2>&1; then
  bad "B reaches 10.0.0.3 with its own VM down: tenant A answered"
else ok "B cannot reach 10.0.0.3 once its own VM is down"; fi
pings 1 3 A && ok "A still reaches its 10.0.0.3" || bad "A lost its 10.0.0.3"
ip -n "$(vm 3 B)" link set eth0 up

# TCP across hosts.
ip netns exec "$(vm 3 A)" iperf3 -s -1 -D -I "$work/iperf3.pid" >/dev/null 2>&1
wait_for 5 ip netns exec "$(vm 3 A)" ss -ltn 'sport = :5201' | grep -q 5201 2>/dev/null
bw=$(ip netns exec "$(vm 1 A)" timeout 20 iperf3 -c 10.0.0.3 -t 2 2>/dev/null | awk '/receiver/{print $7" "$8}')
if [ -n "$bw" ] && [ "$(echo "$bw" | awk '{print ($1 > 0)}')" = 1 ]; then ok "A: iperf3 TCP hv1 → hv3 $bw"
else bad "A: iperf3 TCP hv1 → hv3 failed (${bw:-no session})"; fi
[ -f "$work/iperf3.pid" ] && kill "$(cat "$work/iperf3.pid")" 2>/dev/null

# What OVS shows agrees with the engine: the pipeline, and the a→c flow tunnels with c's key.
f1=$(flows_of 1)
for tbl in 0 10 20; do
  echo "$f1" | grep "table=$tbl" | grep -q 'cookie=0x5354' && ok "hv1 table $tbl holds engine flows" \
    || bad "hv1 table $tbl has no engine flow"
done
n=$(echo "$f1" | grep 'table=20' | grep -c 'cookie=0x53548')
[ "$n" -gt 0 ] && ok "hv1 flow cache: $n reactive flows" || bad "hv1 flow cache is empty after pings"
a_of=$(hvdo 1 ovs-vsctl get Interface vm1 ofport)
kc=$(printf '%#x' "${key[A3]}")
tr=$(hvdo 1 ovs-appctl ofproto/trace br-int "in_port=$a_of,dl_src=$(vmmac 1 1),dl_dst=$(vmmac 3 1),dl_type=0x0800,nw_src=10.0.0.1,nw_dst=10.0.0.3,nw_proto=1")
echo "$tr" | grep -q "set_field:$kc->tun_id" && echo "$tr" | grep '^Datapath actions' | grep -q "tnl_push.*vni=$kc" \
  && ok "ofproto/trace A hv1 → hv3: the engine's flow, tunnel with key $kc" \
  || { bad "ofproto/trace A hv1 → hv3 does not tunnel with key $kc"; echo "$tr"; }
# Garbage from a VIF nobody bound is dropped by a flow, never sent to the controller.
hvdo 1 ovs-vsctl set Interface vm2 external_ids:iface-id=no-such-port
wait_for 10 sh -c "OVS_RUNDIR=$B/hv1 ovs-ofctl -O OpenFlow13 dump-flows br-int table=0 | grep -E 'in_port=\"?vm2\"? actions=drop|in_port=[0-9]+ actions=drop' >/dev/null" \
  && ok "an interface naming no port is dropped in table 0" || bad "no drop flow for the unbound interface"
summary >/dev/null
finish_check
