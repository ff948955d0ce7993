#!/usr/bin/env bash
# The control plane over TLS, as a user sets it up (README, Security), on private OVS
# sandboxes (no root, nothing touches the system OVS): a PKI made with ovs-pki, the
# controller with --tls-* and a token file, a switch that connects over ssl:, one whose
# certificate comes from another CA and one speaking plain TCP (both refused, as the log
# shows), and the CLI with a reader's and an admin's token. Everything it starts is stopped by
# PID; its files stay in $TLS_DEMO_DIR (default: a fresh directory under /var/tmp).
#
#   bash scripts/tls-demo.sh            # builds the controller (debug) unless STROWGER_BIN is set
set -euo pipefail
cd "$(dirname "$0")/.."

for prog in ovs-pki ovsdb-server ovs-vswitchd ovs-vsctl openssl; do
  command -v "$prog" >/dev/null || { echo "tls-demo: $prog missing (apt-get install openvswitch-switch openssl)" >&2; exit 1; }
done
if [ -z "${STROWGER_BIN:-}" ]; then
  echo "+ cargo build --locked -p strowger"
  cargo build --locked -q -p strowger
  STROWGER_BIN=${CARGO_TARGET_DIR:-target}/debug/strowger
fi
D=${TLS_DEMO_DIR:-$(mktemp -d /var/tmp/strowger-tls-demo.XXXXXX)}
mkdir -p "$D"
# A second run in the same directory starts afresh: only what this script makes is removed.
rm -rf "$D/pki" "$D/other-pki" "$D/other" "$D/good" "$D/rogue" "$D/plain" "$D"/*.pem "$D/tokens"
pids=()
sandboxes=()
cleanup() {
  for sb in "${sandboxes[@]}"; do
    for d in ovs-vswitchd ovsdb-server; do
      [ -f "$sb/$d.pid" ] && kill "$(cat "$sb/$d.pid")" 2>/dev/null || true
    done
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
step() { printf '\n== %s\n' "$*"; }
run() { echo "+ $*"; "$@"; }

# A sandbox: its own ovsdb-server (with the SSL table wired in, as Debian's ovs-ctl does) and
# ovs-vswitchd with the dummy datapath; `sb NAME ovs-vsctl …` runs a tool against it.
sandbox() {
  local sb=$D/$1
  mkdir -p "$sb"
  sandboxes+=("$sb")
  OVS_RUNDIR=$sb OVS_LOGDIR=$sb OVS_DBDIR=$sb OVS_SYSCONFDIR=$sb bash -c "
    ovsdb-tool create $sb/conf.db /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server --detach --no-chdir --pidfile --log-file -vconsole:off --remote=punix:$sb/db.sock \
      --private-key=db:Open_vSwitch,SSL,private_key --certificate=db:Open_vSwitch,SSL,certificate \
      --ca-cert=db:Open_vSwitch,SSL,ca_cert $sb/conf.db
    ovs-vsctl --db=unix:$sb/db.sock --no-wait init
    ovs-vswitchd --detach --no-chdir --pidfile --log-file -vconsole:off --enable-dummy=system unix:$sb/db.sock" 2>/dev/null
}
vsctl() { local sb=$D/$1; shift; echo "+ [$(basename "$sb")] ovs-vsctl $*"; OVS_RUNDIR=$sb ovs-vsctl --db="unix:$sb/db.sock" "$@"; }

step "1. A PKI with ovs-pki: switchca signs switches and hosts, controllerca the controller"
cd "$D"
run ovs-pki --dir="$D/pki" --log="$D/ovs-pki.log" init >/dev/null
run ovs-pki --dir="$D/pki" --log="$D/ovs-pki.log" req+sign ctl controller >/dev/null
run ovs-pki --dir="$D/pki" --log="$D/ovs-pki.log" req+sign sw1 switch >/dev/null
run ovs-pki --dir="$D/other-pki" --log="$D/ovs-pki.log" init >/dev/null
(mkdir -p other && cd other && ovs-pki --dir="$D/other-pki" --log="$D/ovs-pki.log" req+sign rogue switch >/dev/null)
openssl x509 -in sw1-cert.pem -noout -subject
cd - >/dev/null

step "2. Tokens: an admin's, and a reader's kept only as its SHA-256"
admin=$(openssl rand -hex 32)
reader=$(openssl rand -hex 32)
printf 'admin:%s\nreader:sha256:%s\n' "$admin" "$(printf %s "$reader" | sha256sum | cut -d' ' -f1)" > "$D/tokens"
sed 's/^admin:.*/admin:<secret>/' "$D/tokens"

step "3. The controller with TLS on OpenFlow and OVSDB, and tokens on REST"
of=$(free_port) api=$(free_port) ovsdb=$(free_port)
echo "+ strowger serve --in-memory --openflow-listen 127.0.0.1:$of --ovsdb-listen 127.0.0.1:$ovsdb --api-listen 127.0.0.1:$api \\"
echo "    --tls-key ctl-privkey.pem --tls-cert ctl-cert.pem --tls-ca pki/switchca/cacert.pem --api-token-file tokens"
"$STROWGER_BIN" serve --in-memory --openflow-listen "127.0.0.1:$of" --ovsdb-listen "127.0.0.1:$ovsdb" \
  --api-listen "127.0.0.1:$api" --tls-key "$D/ctl-privkey.pem" --tls-cert "$D/ctl-cert.pem" \
  --tls-ca "$D/pki/switchca/cacert.pem" --api-token-file "$D/tokens" 2> "$D/controller.log" &
pids+=($!)
export STROWGER_API=http://127.0.0.1:$api
for _ in $(seq 100); do curl -sf "$STROWGER_API/api/v1/health" >/dev/null && break; sleep 0.1; done

step "4. A switch with a certificate from our CA: set-ssl, then set-controller ssl:"
sandbox good
vsctl good set-ssl "$D/sw1-privkey.pem" "$D/sw1-cert.pem" "$D/pki/controllerca/cacert.pem"
vsctl good add-br br0 -- set Bridge br0 fail_mode=secure protocols=OpenFlow13 other_config:datapath-id=00000000000000a1
vsctl good set-controller br0 "ssl:127.0.0.1:$of"

step "5. A switch whose certificate comes from another CA, and one speaking plain TCP"
sandbox rogue
vsctl rogue set-ssl "$D/other/rogue-privkey.pem" "$D/other/rogue-cert.pem" "$D/pki/controllerca/cacert.pem"
vsctl rogue add-br br0 -- set Bridge br0 fail_mode=secure protocols=OpenFlow13 other_config:datapath-id=00000000000000b2
vsctl rogue set-controller br0 "ssl:127.0.0.1:$of"
sandbox plain
vsctl plain add-br br0 -- set Bridge br0 fail_mode=secure protocols=OpenFlow13 other_config:datapath-id=00000000000000c3
vsctl plain set-controller br0 "tcp:127.0.0.1:$of"

for _ in $(seq 100); do
  [ "$(grep -c 'refused a switch:' "$D/controller.log" || true)" -ge 2 ] && grep -q 'switch connected' "$D/controller.log" && break
  sleep 0.1
done
echo "controller log:"
sed 's/\x1b\[[0-9;]*m//g' "$D/controller.log" | grep -E 'authenticated|switch connected|refused a switch:' | cut -c1-220

step "6. The CLI: no token, a reader's, an admin's"
echo "+ strowger host list"
STROWGER_TOKEN= "$STROWGER_BIN" host list || true
echo "+ STROWGER_TOKEN=<reader> strowger host create hv1"
STROWGER_TOKEN=$reader "$STROWGER_BIN" host create hv1 || true
echo "+ STROWGER_TOKEN=<admin> strowger host create hv1 && strowger host list"
STROWGER_TOKEN=$admin "$STROWGER_BIN" host create hv1 >/dev/null
STROWGER_TOKEN=$reader "$STROWGER_BIN" host list
echo "+ curl -H 'Authorization: Bearer <reader>' \$STROWGER_API/api/v1/switches"
curl -s -H "Authorization: Bearer $reader" "$STROWGER_API/api/v1/switches" | head -c 300; echo

connected=$(curl -s -H "Authorization: Bearer $reader" "$STROWGER_API/api/v1/switches" | grep -o '"dpid":[0-9]*' | tr '\n' ' ')
refused=$(grep -c 'refused a switch:' "$D/controller.log" || true)
echo
if [ "$connected" = '"dpid":161 ' ] && [ "$refused" -ge 2 ]; then
  echo "RESULT: PASS (one switch connected over TLS, $refused refused; files in $D)"
else
  echo "RESULT: FAIL (connected: $connected; refused: $refused; log: $D/controller.log)"
  exit 1
fi
