#!/usr/bin/env bash
# End-to-end check (run by scripts/test.sh, as root): the README's main command, the
# virtual-network demo (scripts/demo.sh), run non-interactively with the binary already built
# ($STROWGER_BIN; no setup, no build). It builds the two-tenant network with the CLI over three
# Mininet hypervisors (mininet/vnet.py) and fails on any failed step: DHCP, pings within and
# across subnets and hosts, iperf3 across the router and a tunnel, tenant isolation, the live
# firewall rule cutting and restoring a TCP stream, the packet trace, the annotated flows. The
# demo cleans up by PID itself (also on failure or a signal); the lab's names are fixed, so
# vnet.py runs one lab at a time on the machine (a lock), and removes leftovers of a killed run.
# Exit status non-zero on any failure (the demo prints the controller log then).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${STROWGER_BIN:-$(pwd)/target/debug/strowger}
[ -x "$bin" ] || { echo "demo_vnet: $bin missing (cargo build -p strowger)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo_vnet: needs root (Mininet, namespaces)"; exit 1; }
work=$(mktemp -d /var/tmp/strowger-check-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The demo's own deadlines are far shorter; this one only bounds a hang outside them.
STROWGER_BIN=$bin DEMO_DIR=$work timeout --signal=TERM 600 bash scripts/demo.sh --no-build </dev/null
# The demo passing is not enough: a switch refusing what the controller sent is a bug even when
# traffic flows (a refused delete leaves flows behind).
if grep -E 'switch refused|WARN .*(OFPET_|Eperm)' "$work/controller.log"; then
  echo "demo_vnet: a switch refused a message of the controller's (above)"; exit 1
fi
