#!/usr/bin/env bash
# schemathesis against the topology API's own OpenAPI document: a fresh in-memory controller on
# a free port, property-based requests on every operation, and no 5xx, every status documented,
# every body matching its schema. Exits non-zero on any failure. Needs PyPI (installs
# schemathesis into a venv under /tmp, reused across runs).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${STROWGER_ST_VENV:-/tmp/strowger-schemathesis-venv}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
if [ ! -x "$VENV/bin/st" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'schemathesis>=4,<5'
fi

BIN=${STROWGER_BIN:-${CARGO_TARGET_DIR:-target}/release/strowger}
if [ ! -x "$BIN" ]; then
  cargo build --release -p strowger
fi

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$(mktemp /tmp/strowger-st-log.XXXXXX)
REPORT=$(mktemp -d /tmp/strowger-st-report.XXXXXX)
"$BIN" serve --in-memory --api-listen "127.0.0.1:$PORT" \
  --openflow-listen 127.0.0.1:0 --ovsdb-listen 127.0.0.1:0 >"$LOG" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  rm -rf "$LOG" "$REPORT"
}
trap cleanup EXIT

URL="http://127.0.0.1:$PORT/api/v1/openapi.json"
for _ in $(seq 1 100); do
  if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$URL" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "strowger serve died:"; cat "$LOG"; exit 1; fi
  sleep 0.1
done

"$VENV/bin/st" run "$URL" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${STROWGER_ST_EXAMPLES:-15}" \
  --workers 2 \
  --max-time "${STROWGER_ST_MAX_TIME:-120}" \
  --generation-database none \
  --no-color \
  --report junit --report-dir "$REPORT"
