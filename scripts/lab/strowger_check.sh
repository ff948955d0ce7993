#!/usr/bin/env bash
# Shared by the end-to-end checks that run `strowger serve` against the namespaced lab
# (scripts/checks/engine_*.sh). Source it first, then call, in this order:
#
#   check_init NAME PREFIX   root check, free ports for the controller (CTL_PORT, MGR_PORT,
#                            API_PORT, OVSDB_PORT), the lab sourced with P=PREFIX and
#                            B=/run/strowger-NAME, a work directory, the cleanup trap
#   lab_up TYPE              the lab up bare (lab_s: its time), fill_tunnel_neighbours, serve,
#                            add_hosts TYPE; or each of those:
#   serve                    start the controller (PID in ctl_pid), wait for its REST API; its
#                            store is $DATA_DIR if set (a restart keeps it), else in memory
#   add_hosts TYPE           a tunnel zone of TYPE and every hypervisor as a host in it
#   wait_pipelines           wait until every br-int has the engine's pipeline
#   plug HV IFACE=PORT...    VIFs on HV's br-int, bound by iface-id (one OVSDB transaction)
#   finish_check             the controller alive, no panic, RESULT line; exits with FAIL
#
# REST helpers ($api is the API's base URL): rest METHOD PATH [JSON], post PATH JSON, del PATH,
# modify PATH JSON (read, merge, PUT back); jget picks a field out of a JSON answer.
#
# Cleanup (the EXIT trap, also on INT/TERM): every PID in bg_pids, the iperf3 pidfile in the
# work directory, the controller, then the lab's own `down` (its daemons by pidfile, its
# namespaces); the controller log is printed when anything failed.
# Every wait is a poll with a deadline (wait_for), never a sleep as synchronisation.

# The interpreter itself, found once: a version manager's shim (pyenv's) costs ~0.2 s a call on a
# busy machine, and a check makes dozens of calls.
PY=$(python3 -c 'import sys; print(sys.executable)')
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

check_init() {
  check_name=$1
  [ "$(id -u)" = 0 ] || { echo "$check_name: needs root (namespaces)"; exit 1; }
  export P=$2 B=/run/strowger-$1 OVSDB_TCP_BASE=0
  CTL_PORT=$(free_port); MGR_PORT=$(free_port); API_PORT=$(free_port); OVSDB_PORT=$(free_port)
  export CTL_PORT MGR_PORT
  # shellcheck source=ovs_netns_overlay.sh
  source scripts/lab/ovs_netns_overlay.sh
  BIN=${STROWGER_BIN:-$(pwd)/target/debug/strowger}
  [ -x "$BIN" ] || { echo "$check_name: $BIN missing (cargo build -p strowger)"; exit 1; }
  work=$(mktemp -d "/tmp/strowger-$1.XXXXXX")
  log=$work/controller.log
  api="http://127.0.0.1:$API_PORT/api/v1"
  ctl_pid="" bg_pids=()
  trap check_cleanup EXIT
  trap "exit 130" INT TERM   # so that the cleanup runs on an interrupt too
}

check_cleanup() {
  local rc=$? p
  set +e   # a check may stop under `set -e`: the cleanup must not stop at its first failing kill
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -f "$work/iperf3.pid" ] && kill "$(cat "$work/iperf3.pid")" 2>/dev/null
  [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null && wait "$ctl_pid" 2>/dev/null
  if [ "$FAIL" != 0 ] || [ "$rc" != 0 ]; then
    echo "--- controller log, last 80 lines:"; tail -n 80 "$log"
  fi
  down
  rm -rf "$work"
}

rest() {   # rest METHOD PATH [JSON] → prints the body; fails on a non-2xx status
  local out code
  out=$(curl -s -w '\n%{http_code}' -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "$api$2")
  code=${out##*$'\n'}; out=${out%$'\n'*}
  case $code in 2*) echo "$out" ;; *) echo "$1 $2 ${3:-} -> $code $out" >&2; return 1 ;; esac
}
post() { rest POST "$@"; }   # post PATH JSON
del() { rest DELETE "$1"; }  # del PATH
# modify PATH JSON: GET the resource, merge JSON's fields into it, PUT it back (a PUT replaces
# the whole record, so the fields not named keep their values this way).
modify() {
  local cur
  cur=$(curl -sf "$api$1") || { echo "GET $1 failed" >&2; return 1; }
  rest PUT "$1" "$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(json.loads(sys.argv[2])); print(json.dumps(d))' "$cur" "$2")"
}
jget() { "$PY" -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# wait_for SECONDS CMD...: poll CMD until it succeeds (no sleeps as synchronisation).
wait_for() {
  local t=$1 t0; shift; t0=$(now)
  until "$@" >/dev/null 2>&1; do
    [ "$(echo "$(now) - $t0 < $t" | bc)" = 1 ] || return 1
    sleep 0.1
  done
}

serve() {   # the store in $DATA_DIR when a check sets it (restarts keep it), else in memory;
  # SERVE_ARGS: more arguments for `strowger serve` (split on spaces)
  local store=(--in-memory) extra
  [ -n "${DATA_DIR:-}" ] && store=(--data-dir "$DATA_DIR")
  read -r -a extra <<<"${SERVE_ARGS:-}"
  if [ "${MGMT:-0}" = 1 ]; then   # in the controller namespace, switches over the management network
    [ -f "$B/pids/ctl$API_PORT-root.pid" ] || root_port "$API_PORT"
    RUST_LOG=${RUST_LOG:-info} ip netns exec "$P-ctl" "$BIN" serve "${store[@]}" "${extra[@]}" --openflow-listen "$(mgmtip 254):$CTL_PORT" \
      --api-listen "127.0.0.1:$API_PORT" --ovsdb-listen "$(mgmtip 254):$OVSDB_PORT" >>"$log" 2>&1 &
  else
    RUST_LOG=${RUST_LOG:-info} "$BIN" serve "${store[@]}" "${extra[@]}" --openflow-listen "127.0.0.1:$CTL_PORT" \
      --api-listen "127.0.0.1:$API_PORT" --ovsdb-listen "127.0.0.1:$OVSDB_PORT" >>"$log" 2>&1 &
  fi
  ctl_pid=$!
  wait_for 20 curl -sf "$api/health" || { bad "REST never came up"; exit 1; }
}

add_hosts() {   # add_hosts TYPE: prints nothing; fails the check on a REST error
  local zone h i
  zone=$(post /tunnel_zones "{\"name\":\"tz\",\"type\":\"$1\"}" | jget "['id']") || exit 1
  for i in $(seq 1 "$NHV"); do
    h=$(post /hosts "{\"name\":\"hv$i\",\"ovsdb\":\"unix:$B/hv$i/db.sock\",\"datapath_type\":\"netdev\"}" | jget "['id']") || exit 1
    post "/tunnel_zones/$zone/members" "{\"host_id\":\"$h\",\"ip\":\"$(ulip "$i")\"}" >/dev/null || exit 1
  done
}

# Native tunnelling drops packets while a remote underlay IP is unresolved (lab gotchas): fill
# every hypervisor's tunnel neighbour table once the lab is up, so that a first ping measures
# the controller and not the underlay's ARP (unfilled, the first ping is lost: ~1.1 s).
fill_tunnel_neighbours() {
  local i k mac
  for k in $(seq 1 "$NHV"); do
    mac=$(ip -n "$P-hv$k" -o link show br-phy | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
    for i in $(seq 1 "$NHV"); do
      [ "$i" = "$k" ] && continue
      hvdo "$i" ovs-appctl tnl/neigh/set br-phy "$(ulip "$k")" "$mac" >/dev/null \
        || bad "hv$i: tunnel neighbour $(ulip "$k") not set"
    done
  done
}

lab_up() {   # lab_up TYPE
  local t0; t0=$(now)
  up bare >/dev/null || { bad "lab up"; exit 1; }
  lab_s=$(since "$t0")
  ok "$NHV bare hypervisors with $((NHV * NVM)) VM namespaces up ($lab_s s, underlay MTU $UL_MTU)"
  fill_tunnel_neighbours
  serve
  add_hosts "$1"
}

plug() {   # plug HV IFACE=PORT_ID...
  local hv=$1 a=() x; shift
  for x in "$@"; do
    a+=(-- add-port br-int "${x%%=*}" -- set Interface "${x%%=*}" external_ids:iface-id="${x#*=}")
  done
  hvdo "$hv" ovs-vsctl "${a[@]}"
}

flows_of() { hvdo "$1" ovs-ofctl -O OpenFlow13 dump-flows br-int "${@:2}"; }
pipeline_in() { flows_of "$1" | grep 'table=20' | grep -q 'actions=CONTROLLER'; }
bound() { flows_of "$1" table=0 | grep -q "write_metadata:$(printf '%#x' "$2")"; }   # bound HV KEY

wait_pipelines() {
  local t0 i; t0=$(now)
  for i in $(seq 1 "$NHV"); do
    wait_for 30 pipeline_in "$i" || bad "hv$i: no br-int with the engine's pipeline"
  done
  ok "br-int provisioned and the pipeline installed on $NHV hosts ($(since "$t0") s)"
}

finish_check() {
  kill -0 "$ctl_pid" 2>/dev/null && ok "controller alive" || bad "controller died"
  grep -q "panicked" "$log" && bad "controller log shows a panic"
  [ "$FAIL" = 0 ] && echo "RESULT: PASS" || echo "RESULT: FAIL"
  exit "$FAIL"
}
