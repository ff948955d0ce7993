#!/usr/bin/env bash
# The README's main command (a fresh Debian 12 machine, as root): installs what is missing
# (scripts/setup.sh: Open vSwitch, Mininet, iperf3, …; starts the system OVS), builds the
# controller, starts it, runs the demo labs in Mininet and shows what the controller did, step
# by step. Cleans up after itself: the controller is stopped by PID, every Mininet switch and
# host is removed. The controller's log stays in $DEMO_DIR (default /var/tmp/strowger-demo;
# not /tmp/*.log, which `mn -c` deletes).
#
#   bash scripts/demo.sh                                   # everything
#   bash scripts/demo.sh --cli                             # + a Mininet CLI after each lab
#   bash scripts/demo.sh --controller ovs-testcontroller   # the labs against OVS's learning switch
#
# The demo is a list of acts (functions `act_*`, run in the order of DEMO_ACTS); the
# virtual-network demo will be more acts after the learning-switch labs.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,14s/^# \{0,1\}//p' "$0"; }
controller=strowger
lab_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --cli) lab_args+=(--cli) ;;
    --controller) controller=${2:?--controller needs strowger or ovs-testcontroller}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "demo: run as root (Mininet and Open vSwitch need it)" >&2; exit 1; }
source mininet/lab.sh

DEMO_DIR=${DEMO_DIR:-/var/tmp/strowger-demo}
DEMO_ACTS=(setup build controller l2switch_labs tls)
if [ -t 1 ]; then bold=$'\e[1m' plain=$'\e[0m'; else bold='' plain=''; fi
act_no=0
say() { act_no=$((act_no + 1)); printf '\n%s[%d/%d] %s%s\n' "$bold" "$act_no" "${#DEMO_ACTS[@]}" "$*" "$plain"; }
recap=()

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

act_controller() {
  say "Start the controller in the background: $controller"
  mkdir -p "$DEMO_DIR"
  # The usual ports when they are free, other free ones otherwise.
  LAB_OF_PORT_WANTED=6653 LAB_API_PORT_WANTED=8080 lab_controller_start "$controller" "$DEMO_DIR/controller.log"
  if [ -n "$LAB_API_URL" ] && command -v curl >/dev/null; then
    echo "+ curl -s $LAB_API_URL/api/v1/health"
    curl -s -w '  (HTTP %{http_code})\n' "$LAB_API_URL/api/v1/health" || true
  fi
  recap+=("controller pid $LAB_CTL_PID on OpenFlow 127.0.0.1:$LAB_OF_PORT${LAB_API_URL:+, REST $LAB_API_URL}")
}

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
      recap+=("FAILED $topo lab: $(tr '\n' ' ' <"$out" 2>/dev/null)")
      demo_failed=1
    fi
    lab_controller_alive || { recap+=("FAILED: the controller died (log: $DEMO_DIR/controller.log)"); demo_failed=1; return; }
  done
}

finish() {
  local status=$?
  if lab_controller_alive; then
    if lab_controller_stop; then
      recap+=("stopped the controller (SIGTERM); log: $DEMO_DIR/controller.log")
    else
      recap+=("FAILED: the controller ignored SIGTERM and was killed; log: $DEMO_DIR/controller.log")
      demo_failed=1
    fi
  fi
  printf '\n%sWhat the demo did%s\n' "$bold" "$plain"
  printf '  - %s\n' "${recap[@]}"
  if [ "$status" != 0 ] || [ "${demo_failed:-0}" = 1 ]; then
    echo "DEMO FAILED"
    exit 1
  fi
  echo "DEMO OK"
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
trap 'exit 130' INT TERM

for act in "${DEMO_ACTS[@]}"; do "act_$act"; done
