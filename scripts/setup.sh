#!/usr/bin/env bash
# Installs what Strowger's build, tests and demo need on a fresh Debian machine (as root), and
# starts the system Open vSwitch if it is not running. Idempotent: a second run changes nothing.
set -euo pipefail

need=()
for pair in ovs-vsctl:openvswitch-switch ovs-testcontroller:openvswitch-testcontroller \
            mn:mininet iperf3:iperf3 ethtool:ethtool socat:socat bc:bc ip:iproute2 \
            ping:iputils-ping curl:curl taskset:util-linux udhcpc:udhcpc \
            dhclient:isc-dhcp-client traceroute:traceroute ovs-pki:openvswitch-common \
            openssl:openssl; do
  cmd=${pair%%:*} pkg=${pair#*:}
  # DHCP clients and traceroute live in /usr/sbin, which a non-root PATH may lack.
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/sbin/$cmd" ] || need+=("$pkg")
done
/usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages: ${need[*]} (run as root, or: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The system OVS is what Mininet drives. There is no systemd here: start it through ovs-ctl.
# Private sandboxes used by most tests do not need it.
if [ "$(id -u)" = 0 ] && ! ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
  echo "setup: starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random --no-monitor >/dev/null 2>&1 || \
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (rustup)" >&2; exit 1; }
echo "setup: ok"
