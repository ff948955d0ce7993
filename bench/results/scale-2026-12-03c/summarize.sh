#!/bin/sh
# Summarizes a controller log of the scale benchmark (STROWGER_LOG=info): why OpenFlow
# sessions closed, why OVSDB host sessions ended, and what was counted instead of closing.
# Usage: summarize.sh CONTROLLER_LOG
log=$1
echo "# $(basename "$log"): controller log summary (first line $(head -1 "$log" | cut -c1-24), last $(tail -1 "$log" | cut -c1-24))"
echo "## OpenFlow sessions closed, by reason (WARN lines)"
grep -o 'closing switch connection: .*' "$log" | sed -e 's/closing switch connection: //' -e 's/[0-9][0-9.]*m\?s/Ns/g' -e 's/ peer=.*//' | sort | uniq -c | sort -rn
echo "## OpenFlow connections switches gave up on (summary lines: in the accept queue, dropped unread / during the handshake)"
grep 'switches gave up on' "$log" | sed -n 's/.*abandoned=\([0-9]*\) in_handshake=\([0-9]*\).*/\1 \2/p' | awk '{a+=$1; h+=$2} END {printf "   %d abandoned in the accept queue, %d during the handshake\n", a, h}'
echo "## OVSDB host sessions ended, by error (and what ended the connection under them)"
grep -E 'session ended|monitor failed' "$log" | sed -n 's/.*error=\(.*\)$/\1/p' | sed -e 's/[0-9][0-9.]*m\?s/Ns/g' -e 's/ peer=.*//' | sort | uniq -c | sort -rn
echo "## OVSDB requests without an answer in time that kept their session (outcome unknown)"
grep 'no answer in time, outcome unknown' "$log" | sed -n 's/.*method=\([a-z_]*\).*/\1/p' | sort | uniq -c | sort -rn
echo "## OVSDB: timed out / echo, anywhere in the log"
printf '   %s lines "timed out", %s lines "echo"\n' "$(grep -c 'timed out' "$log")" "$(grep -c 'echo' "$log")"
