# What the comparison scripts share (sourced by ofload-compare.sh and engine-compare.sh, after
# they set NICE, CTL_CPU, GEN_CPU and OUT): pinning a process to one CPU at a nice level, the
# controller under test started and stopped by PID, a free port, waiting until it listens.

if [ "$NICE" -lt 0 ] && ! nice -n "$NICE" true 2>/dev/null; then
  echo "nice -n $NICE failed (not root?): rerun with NICE=0" >&2; exit 1
fi

# Prefixes that pin a command to one CPU at nice $NICE, in a new session whose autogroup nice
# is $NICE too. setsid, nice and taskset exec what they run (a script's background job is no
# process-group leader, so setsid does not fork), so a background job's $! is the controller.
PINNED=(setsid bash -c 'n=$1 cpu=$2; shift 2; echo "$n" >/proc/self/autogroup 2>/dev/null
  exec nice -n "$n" taskset -c "$cpu" "$@"' pinned "$NICE")
PIN_CTL=("${PINNED[@]}" "$CTL_CPU")
PIN_GEN=("${PINNED[@]}" "$GEN_CPU")

# --- process handling -----------------------------------------------------------------------
CTL_PID=
stop_controller() {
  if [ -n "$CTL_PID" ] && kill -0 "$CTL_PID" 2>/dev/null; then
    kill "$CTL_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$CTL_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CTL_PID" 2>/dev/null || true
    wait "$CTL_PID" 2>/dev/null || true
  fi
  CTL_PID=
}
trap stop_controller EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Polls (no connection, so the controller sees no stray switch) until PORT listens; 20 s deadline.
wait_listening() {
  local port=$1 deadline=$((SECONDS + 20))
  until ss -Hltn "sport = :$port" | grep -q LISTEN; do
    kill -0 "$CTL_PID" 2>/dev/null || { echo "controller exited; see $OUT" >&2; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "nothing listens on $port after 20 s" >&2; return 1; }
    sleep 0.1
  done
}
