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
# The debug binary that `cargo test` just built serves the checks: they test behaviour, not
# speed, and a release build would add minutes to every CI run.
cargo build --locked -p strowger
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$(pwd)/$target_dir ;; esac
export STROWGER_BIN=${STROWGER_BIN:-$target_dir/debug/strowger}
passed=0 failed=0
for check in scripts/checks/*.sh; do
  [ -e "$check" ] || continue
  echo "== $check"
  start=$SECONDS
  if bash "$check"; then
    echo "ok $check ($((SECONDS - start)) s)"; passed=$((passed + 1))
  else
    echo "FAILED $check ($((SECONDS - start)) s)"; failed=$((failed + 1))
  fi
done
echo "checks: $passed passed, $failed failed"
[ "$failed" = 0 ]
