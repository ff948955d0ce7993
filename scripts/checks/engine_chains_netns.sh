#!/usr/bin/env bash
# End-to-end check (run by scripts/test.sh, as root): rule chains, exact route invalidation, port
# admin state, VM moves and groups, on real Linux VMs over namespaced hypervisors
# (scripts/lab/ovs_netns_overlay.sh, 3 hosts "bare", 2 VM namespaces each; `strowger serve`
# provisions br-int and the VXLAN mesh). One tenant: router r joining net1 (10.0.1.0/24) and net2
# (10.0.2.0/24); VMs configured by hand (MTU 1400 for TCP over VXLAN on the 1500-byte underlay):
#
#   host  VM   subnet  address    role
#   hv1   vm1  net1    10.0.1.11  client A (ping, iperf3)
#   hv1   vm2  net2    10.0.2.21  client B (ping towards net1)
#   hv2   vm1  net2    10.0.2.12  server S (iperf3 on 5201 and 5202)
#   hv2   vm2  net1    10.0.1.22  the port set admin-down
#   hv3   vm1  net1    10.0.1.13  the member of the port and address groups
#   hv3   vm2  net2    10.0.2.23  the VM moved to hv2
#
# Checked with real tools only, every wait a poll with a deadline:
#  1. a chain as r's inbound filter (made with the CLI): with A pinging S every 50 ms, a drop
#     rule for TCP 5201 makes iperf3 (20 Mbit/s) to 5201 fail while the ping goes on (never two
#     lost in a row) and iperf3 to 5202 still runs; deleting the rule restores 5201. A reject rule for TCP: "Connection refused" at once
#     (TCP RST); for ICMP: ping says "Packet filtered"; for UDP: traceroute shows !X.
#  2. exact route invalidation, read in hv1's and hv2's flow cache (table 20, cookies and
#     n_packets): with pings both ways through r, blackhole routes that overlap no flow's
#     destination (198.51.100.0/24; 10.0.2.128/25, inside net2: a connected destination is
#     matched exactly) leave every routed entry with its cookie and a growing packet count; a
#     route for 10.0.2.12/32 (on-link, so traffic goes on) takes exactly the entry towards
#     10.0.2.12 (10.0.2.21's, in the same subnet, stays), the ping goes on through a new entry,
#     and deleting the route takes that entry and nothing else. No ping loses two in a row.
#  3. a port set admin-down (PUT /ports/{id}) stops its VM's routed traffic at once (no answer
#     0.2 s after the PUT returned), up again restores it; another VM's entries keep their cookies.
#  4. a VM moved from hv3 to hv2 (VIF deleted there, a VIF with the same MAC, IP and iface-id
#     plugged here) answers pings from the other subnet again within 1 s of the plug, and no flow
#     on any host still sends its tunnel key to hv3, nor uses its old ofport on hv3.
#  5. an address group in a drop rule on r (ip_addr_group_src): adding a VM's IP cuts its routed
#     traffic at once (others keep theirs, it keeps its own subnet), removing it restores it; a
#     port group in a drop rule on net1's inbound filter (port_group_id) cuts the member's
#     traffic even on its own subnet, and only its.
#  6. kill -9 of the controller and a restart on the same store: a VIF unplugged while it was
#     down leaves no entry behind; the flow-cache entries of the old run are read back and those
#     left on any host are exactly what the restarted controller would install (each explained
#     consistent), and routed traffic flows again.
# Everything started is stopped by PID, every namespace deleted, also on failure.
set -u -o pipefail
cd "$(dirname "$0")/../.."
for tool in iperf3 traceroute curl python3 bc; do
  command -v "$tool" >/dev/null || { echo "engine_chains_netns: $tool missing (bash scripts/setup.sh)"; exit 1; }
done
export NHV=3 NVM=2 UL_MTU=1500
# shellcheck source=../lab/strowger_check.sh
source scripts/lab/strowger_check.sh
check_init chains-check stwc
DATA_DIR=$work/store   # the controller keeps its store across the restart of step 6

# The VMs: "host vm subnet address".
layout="1 1 1 10.0.1.11
1 2 2 10.0.2.21
2 1 2 10.0.2.12
2 2 1 10.0.1.22
3 1 1 10.0.1.13
3 2 2 10.0.2.23"
A=$(vmns 1 1) Bv=$(vmns 1 2) S=$(vmns 2 1) D=$(vmns 2 2) G=$(vmns 3 1) M=$(vmns 3 2)
cli() { STROWGER_API="http://127.0.0.1:$API_PORT" "$BIN" "$@"; }
pings() { ip netns exec "$1" ping -c1 -W1 -q "$2" >/dev/null 2>&1 </dev/null; }
no_ping() { ! ip netns exec "$1" ping -c1 -W0.3 -q "$2" >/dev/null 2>&1 </dev/null; }

lab_up vxlan
set -e
router=$(post /routers '{"name":"r"}' | jget "['id']")
declare -A net port key rport
for s in 1 2; do
  net[$s]=$(post /bridges "{\"name\":\"net$s\"}" | jget "['id']")
  rport[$s]=$(post "/routers/$router/ports" "{\"address\":\"10.0.$s.1/24\"}" | jget "['id']")
  bp=$(post "/bridges/${net[$s]}/ports" '{}' | jget "['id']")
  post "/ports/${rport[$s]}/link" "{\"peer_id\":\"$bp\"}" >/dev/null
done
while read -r i j s ip; do
  p=$(post "/bridges/${net[$s]}/ports" '{}')
  port[$i$j]=$(echo "$p" | jget "['id']"); key[$i$j]=$(echo "$p" | jget "['tunnel_key']")
done <<<"$layout"
set +e

t0=$(now)
wait_pipelines
for i in 1 2 3; do plug "$i" vm1="${port[${i}1]}" vm2="${port[${i}2]}"; done
for i in 1 2 3; do for j in 1 2; do
  wait_for 20 bound "$i" "${key[$i$j]}" || bad "hv$i: VIF vm$j not classified"
done; done
ok "6 VIFs bound by iface-id ($(since "$t0") s after the hosts were created)"

# vm_config NS ADDRESS: the VM's address, MTU 1400 and default route via its subnet's router port.
vm_config() {
  ip -n "$1" -4 addr flush dev eth0
  ip -n "$1" link set eth0 mtu 1400
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" route add default via "${2%.*}.1"
}
while read -r i j s ip; do vm_config "$(vmns "$i" "$j")" "$ip"; done <<<"$layout"

t0=$(now)
first_s=none
if wait_for 15 pings "$A" 10.0.2.12; then first_s=$(since "$t0"); ok "first routed ping 10.0.1.11 (hv1) → 10.0.2.12 (hv2) after $first_s s"
else bad "10.0.1.11 cannot ping 10.0.2.12 through the router"; fi
n=0 pids=()
while read -r i j s ip; do   # every pair at once, a file per failure
  while read -r k l s2 ip2; do
    [ "$s" = "$s2" ] && continue
    n=$((n + 1))
    { wait_for 5 pings "$(vmns "$i" "$j")" "$ip2" || echo "$ip (hv$i) cannot ping $ip2 (hv$k)" >"$work/pair.$n"; } &
    pids+=($!)
  done <<<"$layout"
done <<<"$layout"
wait "${pids[@]}"
if ls "$work"/pair.* >/dev/null 2>&1; then for f in "$work"/pair.*; do bad "$(cat "$f")"; done
else ok "all $n cross-subnet pairs ping through the router"; fi

# ---- background pings: per run a file of replies, stopped by PID ----
# ping_start NAME NS DST: a ping every 50 ms; ping_stop NAME: stop it, print "SENT RECEIVED GAP"
# where GAP is the largest run of sequence numbers lost between two answered ones (a packet in
# flight when the ping stops is not a loss).
declare -A ping_pid
ping_start() {
  ip netns exec "$2" ping -D -O -i 0.05 -W1 "$3" >"$work/ping.$1" 2>&1 </dev/null &
  ping_pid[$1]=$!; bg_pids+=($!)
  wait_for 3 grep -q 'icmp_seq=' "$work/ping.$1"
}
ping_stop() {
  kill -INT "${ping_pid[$1]}" 2>/dev/null; wait "${ping_pid[$1]}" 2>/dev/null
  "$PY" - "$work/ping.$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
seqs = sorted({int(m) for m in re.findall(r"bytes from .*icmp_seq=(\d+)", text)})
gap = max([b - a - 1 for a, b in zip(seqs, seqs[1:])] or [0])
lost = sorted(set(range(seqs[0], seqs[-1])) - set(seqs)) if seqs else []
m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
print(m.group(1) if m else 0, m.group(2) if m else 0, gap, ",".join(map(str, lost[:20])) or "-")
EOF
}
replies() { sed -n 's/^\[\([0-9.]*\)\] .*bytes from.*/\1/p' "$work/ping.$1"; }   # their times
answered_after() { replies "$1" | awk -v t="$2" '$1 > t {f=1} END{exit !f}'; }     # NAME TIME
silent() { [ "$(tail -n "$2" "$work/ping.$1" | grep -c 'no answer yet')" = "$2" ]; }  # NAME N: N lost last
# toggle NAME NS DST WHAT CUT RESTORE: with NS pinging DST every 50 ms, the function CUT (a REST
# change) must stop the answers at once — none later than 0.2 s after its PUT returned — and
# RESTORE bring them back.
toggle() {
  local t t_done last first
  ping_start "$1" "$2" "$3"
  t=$(now); $5 >/dev/null || bad "$4: $5 failed"; t_done=$(now)
  if wait_for 3 silent "$1" 6; then
    last=$(replies "$1" | tail -n1)
    [ "$(echo "$last < $t_done + 0.2" | bc)" = 1 ] \
      && ok "$4: $3 stops answering at once (last answer $(rel "$t_done" "$last") the PUT returned, which took $(dt "$t" "$t_done") s)" \
      || bad "$4: $3 answered until $(dt "$t_done" "$last") s after the PUT returned"
  else bad "$4: $3 still answers"; fi
  t=$(now); $6 >/dev/null || bad "$4: $6 failed"; t_done=$(now)
  if wait_for 3 answered_after "$1" "$t_done"; then
    first=$(replies "$1" | awk -v t="$t_done" '$1 > t {print; exit}')
    ok "$4 undone: $3 answers again $(dt "$t_done" "$first") s after the PUT returned"
  else bad "$4 undone: $3 does not answer again"; fi
  ping_stop "$1" >/dev/null
}
dt() { printf '%.2f' "$(echo "$2 - $1" | bc)"; }   # dt FROM TO: seconds between two times
rel() { local d; d=$(dt "$1" "$2"); case $d in -*) echo "${d#-} s before" ;; *) echo "$d s after" ;; esac; }
# ping_ok NAME WHAT: stop the ping and assert it lost at most one packet in a row.
ping_ok() {
  local sent rcvd gap lost
  read -r sent rcvd gap lost < <(ping_stop "$1")
  if [ "$rcvd" -gt 0 ] && [ "$gap" -le 1 ]; then ok "$2: ping went on ($rcvd/$sent answered, at most $gap lost in a row)"
  else bad "$2: the ping was interrupted ($rcvd/$sent answered, $gap lost in a row; icmp_seq lost: $lost)"; fi
}

# ---- 1. a chain as the router's inbound filter ----
for p in 5201 5202; do
  ip netns exec "$S" iperf3 -s -p "$p" -D -I "$work/iperf3-$p.pid" >/dev/null 2>&1
  wait_for 5 test -s "$work/iperf3-$p.pid" && bg_pids+=("$(cat "$work/iperf3-$p.pid")")
  wait_for 5 sh -c "ip netns exec $S ss -ltn 'sport = :$p' | grep -q $p"
done
# tcp_to PORT: 1 MB of iperf3 from A to S; prints the receiver's rate or the error. Capped at
# 20 Mbit/s: at full speed the userspace datapath on a busy 2-core machine drops pings by itself
# (seen: 9 of 43 lost, 3 in a row, with no change at all), which would hide what a rule does.
tcp_to() {
  ip netns exec "$A" timeout 10 iperf3 -c 10.0.2.12 -p "$1" -n 1M -b 20M --connect-timeout 1000 2>&1 </dev/null \
    | awk '/receiver/{print $7" "$8; found=1} /error/{print; found=1} END{if(!found) print "no result"}'
}
tcp_works() { case $(tcp_to "$1") in *bits/sec) return 0 ;; *) return 1 ;; esac; }

set -e
chain=$(cli chain --json create filter | jget "['id']")
cli router update r inbound_filter_id=filter >/dev/null
set +e
[ "$(curl -sf "$api/routers/$router" | jget "['inbound_filter_id']")" = "$chain" ] \
  && ok "chain 'filter' is r's inbound filter (strowger chain create, router update)" \
  || bad "r's inbound_filter_id is not the chain"
bw=$(tcp_to 5201)
case $bw in *bits/sec) ok "iperf3 10.0.1.11 → 10.0.2.12:5201 through the (empty) filter: $bw" ;;
  *) bad "iperf3 to 5201 fails before any rule: $bw" ;; esac

ping_start chain "$A" 10.0.2.12
t0=$(now)
rule=$(cli rule --json add filter action=drop nw_proto=6 tp_dst=5201 | jget "['id']")
out=$(tcp_to 5201)
case $out in *bits/sec) bad "iperf3 to 5201 still runs with the drop rule: $out" ;;
  *) ok "drop rule nw_proto=6 tp_dst=5201: iperf3 to 5201 fails ($out)" ;; esac
bw=$(tcp_to 5202)
case $bw in *bits/sec) ok "…while iperf3 to 5202 runs: $bw" ;; *) bad "iperf3 to 5202 fails under the 5201 rule: $bw" ;; esac
cli rule delete "$rule" >/dev/null || bad "strowger rule delete failed"
if wait_for 5 tcp_works 5201; then ok "rule deleted: iperf3 to 5201 runs again"
else bad "iperf3 to 5201 does not come back after the rule is deleted"; fi
ping_ok chain "drop rule added and deleted ($(since "$t0") s)"

rule=$(post "/chains/$chain/rules" '{"action":"reject","nw_proto":6,"tp_dst":{"start":5201,"end":5201}}' | jget "['id']")
t0=$(now); out=$(tcp_to 5201); reject_s=$(since "$t0")
if echo "$out" | grep -q "Connection refused" && [ "$(echo "$reject_s < 0.9" | bc)" = 1 ]; then
  ok "reject rule for TCP 5201: iperf3 'Connection refused' after $reject_s s (TCP RST)"
else bad "reject rule for TCP 5201: no fast refusal ($out after $reject_s s)"; fi
del "/rules/$rule" >/dev/null
rule=$(post "/chains/$chain/rules" '{"action":"reject","nw_proto":1}' | jget "['id']")
out=$(ip netns exec "$A" ping -c1 -W2 10.0.2.12 2>&1 </dev/null)
echo "$out" | grep -q "From 10.0.1.1 .*Packet filtered" \
  && ok "reject rule for ICMP: ping gets 'Packet filtered' (admin prohibited) from 10.0.1.1" \
  || { bad "reject rule for ICMP: no admin prohibited"; echo "$out"; }
del "/rules/$rule" >/dev/null
rule=$(post "/chains/$chain/rules" '{"action":"reject","nw_proto":17}' | jget "['id']")
out=$(ip netns exec "$A" traceroute -n -w 1 -q 1 -m 3 10.0.2.12 2>&1 </dev/null)
echo "$out" | grep -Eq '^ *1 +10\.0\.1\.1 .*!X' \
  && ok "reject rule for UDP: traceroute shows !X (admin prohibited) from 10.0.1.1" \
  || { bad "reject rule for UDP: traceroute shows no !X at hop 1"; echo "$out"; }
del "/rules/$rule" >/dev/null
wait_for 5 pings "$A" 10.0.2.12 && ok "reject rules deleted: ping answered again" || bad "no ping after the reject rules are gone"

# ---- 2. exact route invalidation ----
# routed_flows HV...: "HV COOKIE N_PACKETS NW_DST" for every routed entry of the flow cache.
routed_flows() {
  local i
  for i in "$@"; do
    flows_of "$i" table=20 | grep dec_ttl | sed -n "s/.*cookie=\([0-9a-fx]*\),.*n_packets=\([0-9]*\),.*nw_dst=\([0-9./]*\).*/$i \1 \2 \3/p"
  done
}
# grown OLD NEW: the entries of NEW that OLD has (same host and cookie) with more packets now.
grown() {
  awk 'FILENAME == ARGV[1] {n[$1" "$2] = $3; next} ($1" "$2) in n && $3 > n[$1" "$2]' \
    <(echo "$1") <(echo "$2")
}
# kept BEFORE PATTERN: every entry of BEFORE towards PATTERN is there with its cookie, counting.
kept() {
  [ "$(grown "$1" "$(routed_flows 1 2 3)" | grep -cE " $2\$")" = "$(echo "$1" | grep -cE " $2\$")" ]
}
# gone BEFORE PATTERN: no cookie of BEFORE's entries towards PATTERN is left.
gone() {
  ! awk 'FILENAME == ARGV[1] {c[$1" "$2] = 1; next} ($1" "$2) in c' \
    <(echo "$1" | grep -E " $2\$") <(routed_flows 1 2 3) | grep -q .
}
ping_start a "$A" 10.0.2.12
ping_start b "$Bv" 10.0.1.22
to1=' 10\.0\.1\.[0-9./]*' to2=' 10\.0\.2\.[0-9./]*'
# track, then active: $before becomes the entries whose packet count grew since track (those the
# running pings use). OVS refreshes flow counters only every ~0.5 s, so the baseline stays put
# (it only gains entries that appear later) rather than moving with every poll.
track() { base=$(routed_flows 1 2 3); }
active() {
  local cur; cur=$(routed_flows 1 2 3)
  before=$(grown "$base" "$cur")
  base=$(printf '%s\n%s\n' "$base" "$cur" | awk 'NF && !seen[$1" "$2]++')
}
# The entries of the two pings, requests on hv1 and replies on hv2.
both_ways() {
  active
  [ "$(echo "$before" | grep -cE "${to1}\$")" -ge 2 ] && [ "$(echo "$before" | grep -cE "${to2}\$")" -ge 2 ]
}
track
if wait_for 5 both_ways; then
  ok "routed flows of the two pings cached both ways: $(echo "$before" | wc -l) entries on hv1/hv2, counting"
else bad "routed flows not cached both ways"; echo "$before"; routed_flows 1 2 3; fi
# keeps_all DST PROBE WHAT: a blackhole route for DST overlaps none of the pings' entries: once
# the engine has taken it (A's packet to PROBE meets its drop flow on hv1), every entry keeps
# its cookie and keeps counting.
keeps_all() {
  local t0 id; t0=$(now)
  id=$(post "/routers/$router/routes" "{\"dst\":\"$1\",\"type\":\"blackhole\"}" | jget "['id']")
  routes+=("$id")
  wait_for 5 blackholed "$2" "$1" || bad "no blackhole flow for $1"
  if wait_for 3 kept "$before" "(${to1#\ }|${to2#\ })"; then
    ok "route $1 ($3): all $(echo "$before" | wc -l) entries keep their cookies, counting ($(since "$t0") s)"
  else bad "route $1 ($3) changed routed flows"; show_flows; fi
}
show_flows() { echo "before:"; echo "$before"; echo "now:"; routed_flows 1 2 3; }
# blackholed PROBE PREFIX: A's packet to PROBE meets a drop flow for PREFIX on hv1.
blackholed() {
  ip netns exec "$A" ping -c1 -W0.3 -q "$1" >/dev/null 2>&1 </dev/null
  flows_of 1 table=20 | grep -q "nw_dst=$2[ ,]"
}
routes=()
keeps_all 198.51.100.0/24 198.51.100.1 "outside both subnets"
# A connected destination is matched exactly (it is its own next hop), so a route inside net2
# that none of the destinations falls in leaves all four entries alone too.
track
wait_for 5 both_ways || { bad "the two pings' entries are not all counting"; echo "$before"; }
keeps_all 10.0.2.128/25 10.0.2.200 "inside net2, no flow's destination"

# A route for 10.0.2.12 itself (on-link through r's net2 port: traffic keeps flowing): it takes
# exactly hv1's entry towards 10.0.2.12; the entry towards 10.0.2.21, in the same subnet, and
# those towards net1 keep their cookies and counters.
track
wait_for 5 both_ways || { bad "the two pings' entries are not all counting"; echo "$before"; }
t0=$(now)
r32=$(post "/routers/$router/routes" "{\"dst\":\"10.0.2.12/32\",\"next_hop_port\":\"${rport[2]}\"}" | jget "['id']")
if wait_for 3 gone "$before" '10\.0\.2\.12'; then
  ok "route 10.0.2.12/32 took hv1's entry towards 10.0.2.12 ($(since "$t0") s)"
else bad "the entry towards 10.0.2.12 survives a route for 10.0.2.12/32"; show_flows; fi
if wait_for 3 kept "$before" '(10\.0\.2\.21|10\.0\.1\.[0-9./]*)'; then
  ok "…and the entries towards 10.0.2.21, 10.0.1.11 and 10.0.1.22 keep their cookies, counting"
else bad "entries the route does not overlap lost their cookies or stopped counting"; show_flows; fi
# The ping goes on through a new entry: hv1 towards 10.0.2.12, a cookie not seen before, counting.
renewed() {
  active
  fresh=$(echo "$before" | grep -E '^1 .* 10\.0\.2\.12$' | grep -v -F "$old")
  [ -n "$fresh" ]
}
old=$(echo "$before" | awk '{print $2}')
track
wait_for 3 renewed && ok "hv1 routes 10.0.1.11 → 10.0.2.12 through a new entry ($(echo "$fresh" | awk '{print $2}' | head -1))" \
  || { bad "no new entry towards 10.0.2.12 on hv1"; routed_flows 1; }
# Deleting that route takes the flows that chose it, and only those.
track
wait_for 5 both_ways || { bad "the two pings' entries are not all counting"; echo "$before"; }
t0=$(now)
del "/routes/$r32" >/dev/null || bad "DELETE route 10.0.2.12/32 failed"
if wait_for 3 gone "$before" '10\.0\.2\.12' && wait_for 3 kept "$before" '(10\.0\.2\.21|10\.0\.1\.[0-9./]*)'; then
  ok "route 10.0.2.12/32 deleted: the entry that chose it is gone, the other three keep their cookies ($(since "$t0") s)"
else bad "deleting route 10.0.2.12/32 was not exact"; show_flows; fi
ping_ok a "10.0.1.11 → 10.0.2.12 across both routes"
ping_ok b "10.0.2.21 → 10.0.1.22 across both routes"
for id in "${routes[@]}"; do del "/routes/$id" >/dev/null || bad "route $id not deleted"; done

# ---- 3. admin state ----
port_down() { modify "/ports/${port[22]}" '{"admin_state_up":false}'; }
port_up() { modify "/ports/${port[22]}" '{"admin_state_up":true}'; }
# Meanwhile A pings S: its two entries (hv1 → 10.0.2.12, hv2 → 10.0.1.11) cross no port of
# 10.0.1.22, so they keep their cookies and counters through both changes.
ping_start a "$A" 10.0.2.12
a_flows() {
  active
  before=$(echo "$before" | grep -E '^(1 .* 10\.0\.2\.12|2 .* 10\.0\.1\.11)$')
  [ "$(echo "$before" | grep -c .)" = 2 ]
}
track
wait_for 5 a_flows || { bad "10.0.1.11 ↔ 10.0.2.12 not cached"; routed_flows 1 2 3; }
toggle down "$Bv" 10.0.1.22 "port of 10.0.1.22 (hv2) admin-down" port_down port_up
if wait_for 3 kept "$before" '10\.0\.(2\.12|1\.11)'; then
  ok "…10.0.1.11 ↔ 10.0.2.12 kept both its entries (cookies, counters) through the port's down and up"
else bad "the port's state took flows that did not cross it"; show_flows; fi
ping_ok a "10.0.1.11 → 10.0.2.12 while 10.0.1.22's port went down and up"

# ---- 4. a VM moves from hv3 to hv2 ----
tun_to() {   # tun_to HV PEER: ofport of HV's tunnel to PEER
  hvdo "$1" ovs-vsctl --bare --columns=ofport find Interface "options:remote_ip=\"$(ulip "$2")\""
}
old_of=$(hvdo 3 ovs-vsctl get Interface vm2 ofport)
kc=$(printf '%#x' "${key[32]}")
mmac=$(vmmac 3 2)
# old_place: the flows that send the VM's key to hv3 (hv1, hv2), or that deliver, classify or
# output by its key or ofport on hv3.
old_place() {
  local i t3
  for i in 1 2; do
    t3=$(tun_to "$i" 3)
    flows_of "$i" | grep -E "set_field:$kc->tun_id,output:$t3([^0-9]|\$)" | sed "s/^/hv$i: /"
  done
  flows_of 3 | grep -E "tun_id=$kc[ ,]|output:$old_of([^0-9]|\$)|in_port=$old_of[ ,]|write_metadata:$kc[ ,/]" | sed "s/^/hv3: /"
}
ping_start move "$A" 10.0.2.23
# Before the move the grep finds hv1's routed entry towards the VM and hv3's delivery of its key.
before=$(old_place)
echo "$before" | grep -q '^hv1: ' && echo "$before" | grep -q '^hv3: ' \
  && ok "before the move: hv1 tunnels key $kc to hv3, hv3 delivers it to ofport $old_of" \
  || { bad "before the move, the flows to the VM's place are not where expected"; echo "$before"; }
t0=$(now)
hvdo 3 ovs-vsctl del-port br-int vm2
ip -n "$P-hv3" link del vm2
ip link add mv netns "$P-hv2" type veth peer name eth0 netns "$M"
ip -n "$M" link set eth0 address "$mmac"
ip netns exec "$M" ethtool -K eth0 tx off >/dev/null
ip -n "$M" link set eth0 up; ip -n "$P-hv2" link set mv up
vm_config "$M" 10.0.2.23
plug 2 mv="${port[32]}"
t_plug=$(now)
wait_for 5 bound 2 "${key[32]}" || bad "hv2: the moved VIF is not classified"
if wait_for 5 answered_after move "$t_plug"; then
  first=$(replies move | awk -v t="$t_plug" '$1 > t {print; exit}')
  move_s=$(dt "$t_plug" "$first")
  [ "$(echo "$move_s < 1" | bc)" = 1 ] \
    && ok "moved VM 10.0.2.23 (hv3 → hv2) answers 10.0.1.11's ping $move_s s after the plug ($(dt "$t0" "$first") s after the unplug)" \
    || bad "moved VM answers only $move_s s after the plug"
else bad "moved VM 10.0.2.23 unreachable from 10.0.1.11"; move_s=none; fi
ping_stop move >/dev/null
stale=$(old_place)
[ -z "$stale" ] && ok "no flow on any host points at the old place (key $kc to hv3, hv3 ofport $old_of)" \
  || { bad "flows still point at the moved VM's old place"; echo "$stale"; }
pings "$M" 10.0.1.13 && ok "the moved VM reaches 10.0.1.13 (hv3) from hv2" || bad "the moved VM cannot reach 10.0.1.13"

# ---- 5. address and port groups ----
# group_case DST WHAT ADD EMPTY SPARED: 10.0.1.13 pings DST; ADD (10.0.1.13 into a group a drop
# rule names) must cut it at once, EMPTY restore it; with ADD again, SPARED checks what the
# group leaves alone.
group_case() {
  wait_for 3 pings "$G" "$1" || bad "10.0.1.13 cannot ping $1 with the group empty"
  toggle group "$G" "$1" "$2" "$3" "$4"
  $3 >/dev/null; $5; $4 >/dev/null
}
set -e
ag=$(post /ip_addr_groups '{"name":"blocked","addresses":[]}' | jget "['id']")
grule=$(post "/chains/$chain/rules" "{\"action\":\"drop\",\"ip_addr_group_src\":\"$ag\"}" | jget "['id']")
set +e
ag_add() { modify "/ip_addr_groups/$ag" '{"addresses":["10.0.1.13"]}'; }
ag_empty() { modify "/ip_addr_groups/$ag" '{"addresses":[]}'; }
ag_spared() {
  pings "$A" 10.0.2.12 && ok "…10.0.1.11 reaches 10.0.2.12 while 10.0.1.13 is in the group" || bad "10.0.1.11 lost 10.0.2.12 with only 10.0.1.13 in the group"
  pings "$G" 10.0.1.11 && ok "…and 10.0.1.13 its own subnet (the group is on the router)" || bad "10.0.1.13 lost its own subnet (the group is on the router)"
}
group_case 10.0.2.12 "10.0.1.13 added to the address group of r's drop rule" ag_add ag_empty ag_spared
del "/rules/$grule" >/dev/null

set -e
pg=$(post /port_groups '{"name":"quarantine","port_ids":[]}' | jget "['id']")
pchain=$(post /chains '{"name":"net1-in"}' | jget "['id']")
post "/chains/$pchain/rules" "{\"action\":\"drop\",\"port_group_id\":\"$pg\"}" >/dev/null
modify "/bridges/${net[1]}" "{\"inbound_filter_id\":\"$pchain\"}" >/dev/null
set +e
pg_add() { modify "/port_groups/$pg" "{\"port_ids\":[\"${port[31]}\"]}"; }
pg_empty() { modify "/port_groups/$pg" '{"port_ids":[]}'; }
pg_spared() {
  pings "$D" 10.0.1.11 && ok "…10.0.1.22 reaches 10.0.1.11 while 10.0.1.13's port is in the group" || bad "10.0.1.22 lost 10.0.1.11 with only 10.0.1.13's port in the group"
}
group_case 10.0.1.11 "10.0.1.13's port added to the port group of net1's drop rule" pg_add pg_empty pg_spared

# ---- 6. kill -9 of the controller and a restart on the same store ----
# While it is down the moved VM's VIF leaves hv2 (OVS keeps its classifier entry). After the
# restart that entry goes, and the flow-cache entries of the old run are read back: the ones
# still right stay (traffic keeps using them), the others go, so every entry left on any host
# is one the restarted controller explains as what it would install now. Then routed traffic
# flows again.
mv_of=$(hvdo 2 ovs-vsctl get Interface mv ofport)
# A routed flow that is still right after the restart: 10.0.1.11 (hv1) → 10.0.2.12 (hv2).
pings "$A" 10.0.2.12 || bad "no routed traffic before the restart"
kill -9 "$ctl_pid"; wait "$ctl_pid" 2>/dev/null
hvdo 2 ovs-vsctl del-port br-int mv
flows_of 2 | grep -q "in_port=$mv_of[ ,]" \
  && ok "controller killed (-9); hv2 still holds the unplugged VIF's entry (in_port=$mv_of)" \
  || bad "hv2 lost the unplugged VIF's entry before the restart: the step proves nothing"
t_restart=$(now)
serve
# old_cookies HV: the reactive entries of HV older than the restart.
old_cookies() {
  local lim; lim=$(since "$t_restart")
  flows_of "$1" table=20 | grep 'cookie=0x53548' \
    | awk -v lim="$lim" '{ for (k = 1; k <= NF; k++) if ($k ~ /^duration=/) { d = $k; gsub(/duration=|s,/, "", d); if (d + 0 > lim + 0) { c = $1; gsub(/cookie=|,/, "", c); print c } } }'
}
# left_over: what must not be left: the VIF's entry, any entry the controller does not explain
# as what it would install now (it has not checked it yet, or it is stale).
left_over() {
  local i c
  flows_of 2 | grep -E "in_port=$mv_of[ ,]" | sed 's/^/hv2: /'
  for i in 1 2 3; do
    for c in $(flows_of "$i" table=20 | grep -o 'cookie=0x53548[0-9a-f]*' | cut -d= -f2); do
      cli explain "$c" --json 2>/dev/null | grep -q '"consistent": true' || echo "hv$i: $c not explained consistent"
    done
  done
}
clean() { [ -z "$(left_over)" ] && pipeline_in 1 && pipeline_in 2 && pipeline_in 3; }
old_before=$(for i in 1 2 3; do flows_of "$i" table=20 | grep -c 'cookie=0x53548'; done | paste -sd+ | bc)
if wait_for 15 clean; then
  kept=$(for i in 1 2 3; do old_cookies "$i"; done | grep -c .)
  ok "restarted on the same store: the VIF's entry gone; of $old_before flow-cache entries of the old run, $kept kept (read back, still right: each explained consistent), the rest deleted ($(since "$t_restart") s)"
  [ "$kept" -ge 1 ] && ok "the routed flow 10.0.1.11 → 10.0.2.12 survived the restart (its ARP answer learned back from its actions)" \
    || bad "no flow of the old run was kept: the read-back proves nothing"
else bad "stale flows after the restart"; left_over; fi
wait_for 5 pings "$A" 10.0.2.12 && ok "after the restart 10.0.1.11 reaches 10.0.2.12 through the router" \
  || bad "no routed traffic after the restart"

echo "timings: lab up $lab_s s, first routed ping $first_s s, TCP reject $reject_s s, move ${move_s:-none} s, total $(since "$T_START") s"
finish_check
