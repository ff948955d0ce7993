#!/usr/bin/env bash
# End-to-end check (run by scripts/test.sh): Mininet through the controller's l2switch. One
# controller on free loopback ports (so a user's controller on 6653/8080 is not disturbed), then
# a linear (4 switches x 2 hosts) and a tree (depth 3, fanout 2: 7 switches, 8 hosts) lab
# against it, one after the other: each needs pingall with zero loss, forwarding flows, no
# flood storm, an iperf3 pair and, after a MAC moves to another switch, every host reaching it
# at its new port (mininet/lab.py). Reusing the controller for the second lab
# also exercises switches going away and datapath ids coming back with other ports.
# The controller must survive, log no panic, and exit on SIGTERM.
#   LAB_CONTROLLER=ovs-testcontroller bash scripts/checks/mininet_l2switch.sh   # the stand-in
# Exit status non-zero on any failure; the controller log is printed then.
set -euo pipefail
cd "$(dirname "$0")/../.."
source mininet/lab.sh
lab_require

# Two runs of this check at once would fight over the same switch names: take turns.
exec 9>/run/lock/strowger-mininet-check.lock
flock -w 300 9

kind=${LAB_CONTROLLER:-strowger}
work=$(mktemp -d /tmp/strowger-check-mininet.XXXXXX)
log=$work/controller.log
failed=()
finish() {
  lab_controller_stop || failed+=("controller did not exit on SIGTERM")
  if [ ${#failed[@]} -gt 0 ]; then
    printf 'FAIL: %s\n' "${failed[@]}"
    echo "--- controller log ($kind), last 60 lines:"
    tail -n 60 "$log" 2>/dev/null || true
    rm -rf "$work"
    exit 1
  fi
  rm -rf "$work"
}
trap finish EXIT
trap 'failed+=("interrupted"); exit 1' INT TERM

# Moving a MAC to another switch needs a controller that invalidates flows towards the old
# port; OVS's stand-in does not (it fails that step), so it skips it unless asked.
extra=()
if [ "${LAB_MAC_MOVE:-$([ "$kind" = ovs-testcontroller ] && echo 0 || echo 1)}" = 1 ]; then
  extra+=(--mac-move)
fi

start=$SECONDS
lab_controller_start "$kind" "$log"
for topo in linear tree; do
  echo "== $topo"
  # The prefix keeps the check's switches (cks1…) and hosts (ckh1…) apart from a user's lab.
  lab_run "$topo" --prefix ck --quiet --max-flows 8 --timeout 120 ${extra[@]+"${extra[@]}"} ||
    failed+=("$topo lab")
  lab_controller_alive || { failed+=("the controller died during the $topo lab"); break; }
done
if grep -n 'panicked at' "$log"; then failed+=("the controller panicked"); fi
echo "mininet checks: $((SECONDS - start)) s"
