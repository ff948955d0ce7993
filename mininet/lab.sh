# shellcheck shell=bash
# Shell helpers for the Mininet labs, sourced by scripts/demo.sh and scripts/checks/mininet_*.sh:
# start a controller on free loopback ports with its log outside /tmp/*.log (`mn -c` deletes
# those), wait until it listens, stop it by PID. Nothing here kills by name.
#
# Controller kinds (LAB_CONTROLLER or the first argument of lab_controller_start):
#   strowger             the release binary (built if missing), `serve --app l2switch --in-memory`
#   ovs-testcontroller   OVS's C learning switch, the stand-in (OpenFlow 1.3, no REST API)
#   anything else        a command template; {of_port} and {api_port} are substituted, e.g.
#                        LAB_CONTROLLER='my-ctl --listen 127.0.0.1:{of_port}'
# After lab_controller_start: LAB_CTL_PID, LAB_OF_PORT, LAB_API_PORT, and LAB_API_URL (empty
# when the controller has no REST API).

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Mininet's Python module belongs to Debian's python3, not to a pyenv python3 first on PATH.
LAB_PYTHON=/usr/bin/python3

lab_port_free() { # PORT -> status 0 when nothing listens on PORT
  # Asks the kernel instead of connecting: a controller logs every probe as a vanished switch.
  [ -z "$(ss -Hltn "sport = :$1")" ]
}

lab_pick_port() { # [PREFERRED] -> prints PREFERRED if free, else a port the kernel picks
  if [ -n "${1:-}" ] && lab_port_free "$1"; then
    echo "$1"
  else
    "$LAB_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  fi
}

lab_require() { # fails with what to install when the lab cannot run here
  local missing=() c
  [ "$(id -u)" = 0 ] || { echo "lab: Mininet needs root" >&2; return 1; }
  for c in ovs-vsctl ovs-ofctl mn iperf3 ethtool ping ss; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  "$LAB_PYTHON" -c 'import mininet.net' 2>/dev/null || missing+=("python3-mininet")
  if [ ${#missing[@]} -gt 0 ]; then
    echo "lab: missing ${missing[*]}: run scripts/setup.sh (openvswitch-switch, mininet, iperf3, ethtool, iputils-ping)" >&2
    return 1
  fi
  ovs-vsctl --timeout=5 show >/dev/null 2>&1 || {
    echo "lab: the system Open vSwitch is not running: run scripts/setup.sh" >&2
    return 1
  }
}

lab_strowger_bin() { # prints the release binary path (CARGO_TARGET_DIR aware)
  local target=${CARGO_TARGET_DIR:-$LAB_ROOT/target}
  case $target in /*) ;; *) target=$LAB_ROOT/$target ;; esac
  echo "$target/release/strowger"
}

lab_wait_listen() { # PORT PID SECONDS -> 0 once 127.0.0.1:PORT accepts, 1 if PID died or timed out
  local deadline=$((SECONDS + $3))
  until ! lab_port_free "$1"; do
    kill -0 "$2" 2>/dev/null || return 1
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

lab_controller_start() { # KIND LOGFILE
  local kind=$1 log=$2 cmd bin
  LAB_OF_PORT=$(lab_pick_port "${LAB_OF_PORT_WANTED:-}")
  LAB_API_PORT=$(lab_pick_port "${LAB_API_PORT_WANTED:-}")
  LAB_API_URL=
  case $kind in
    strowger)
      bin=${STROWGER_BIN:-$(lab_strowger_bin)}
      if [ ! -x "$bin" ]; then
        echo "lab: building $bin"
        (cd "$LAB_ROOT" && cargo build --locked --release -p strowger) || return 1
      fi
      cmd=("$bin" serve --openflow-listen "127.0.0.1:$LAB_OF_PORT"
           --api-listen "127.0.0.1:$LAB_API_PORT" --in-memory --app l2switch)
      # Keep the OVSDB listener off a user's port too (and off 0.0.0.0).
      if "$bin" serve --help 2>/dev/null | grep -q -- '--ovsdb-listen'; then
        cmd+=(--ovsdb-listen "127.0.0.1:$(lab_pick_port)")
      fi
      LAB_API_URL=http://127.0.0.1:$LAB_API_PORT
      ;;
    ovs-testcontroller)
      cmd=(ovs-testcontroller -O OpenFlow13 "ptcp:$LAB_OF_PORT:127.0.0.1")
      ;;
    *)
      kind=${kind//\{of_port\}/$LAB_OF_PORT}
      kind=${kind//\{api_port\}/$LAB_API_PORT}
      cmd=(bash -c "exec $kind")
      ;;
  esac
  mkdir -p "$(dirname "$log")"
  echo "+ ${cmd[*]} >$log 2>&1 &"
  # NO_COLOR: the log is a file, and tracing's formatter colours by default.
  NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} "${cmd[@]}" >"$log" 2>&1 &
  LAB_CTL_PID=$!
  if ! lab_wait_listen "$LAB_OF_PORT" "$LAB_CTL_PID" 30; then
    echo "lab: the controller (pid $LAB_CTL_PID) is not listening on 127.0.0.1:$LAB_OF_PORT; its log:" >&2
    tail -n 30 "$log" >&2
    lab_controller_stop >/dev/null 2>&1 || true
    return 1
  fi
  if [ -n "$LAB_API_URL" ] && ! lab_wait_listen "$LAB_API_PORT" "$LAB_CTL_PID" 10; then
    echo "lab: the controller's REST API is not listening on 127.0.0.1:$LAB_API_PORT" >&2
    lab_controller_stop >/dev/null 2>&1 || true
    return 1
  fi
  echo "controller pid $LAB_CTL_PID: OpenFlow 127.0.0.1:$LAB_OF_PORT${LAB_API_URL:+, REST $LAB_API_URL}, log $log"
}

lab_controller_alive() { [ -n "${LAB_CTL_PID:-}" ] && kill -0 "$LAB_CTL_PID" 2>/dev/null; }

lab_controller_stop() { # SIGTERM, then SIGKILL after 10 s; status 1 if SIGKILL was needed
  [ -n "${LAB_CTL_PID:-}" ] || return 0
  local pid=$LAB_CTL_PID deadline=$((SECONDS + 10)) status=0
  LAB_CTL_PID=
  kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "lab: controller pid $pid ignored SIGTERM for 10 s: killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
    status=1
  fi
  wait "$pid" 2>/dev/null || true
  return $status
}

lab_run() { # TOPO [lab.py args...] -> runs one Mininet lab against the started controller
  local topo=$1
  shift
  "$LAB_PYTHON" "$LAB_ROOT/mininet/lab.py" --topo "$topo" --port "$LAB_OF_PORT" \
    ${LAB_API_URL:+--api "$LAB_API_URL"} "$@"
}
