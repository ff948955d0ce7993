#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, then runs every test against real
# Open vSwitch and Mininet. Tests that need OVS fail with a message when it is absent; none skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export STROWGER_REQUIRE_OVS=1
cargo test --workspace --locked

# End-to-end checks that only look at the network (Mininet, namespaces, schemathesis): each
# script in scripts/checks/ exits non-zero on failure.
cargo build --locked --release -p strowger
status=0
for check in scripts/checks/*.sh; do
  [ -e "$check" ] || continue
  echo "== $check"
  if bash "$check"; then echo "ok $check"; else echo "FAILED $check"; status=1; fi
done
exit $status
