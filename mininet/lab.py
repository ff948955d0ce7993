#!/usr/bin/python3
"""Mininet lab against an OpenFlow 1.3 controller on 127.0.0.1:PORT (Strowger's `l2switch` by
default; any OF1.3 learning switch works, e.g. `ovs-testcontroller -O OpenFlow13 ptcp:PORT`).

Builds a linear or tree topology of userspace OVS switches
(`OVSSwitch(datapath='user', protocols='OpenFlow13')`, fail_mode=secure, the controller as a
`RemoteController`), then checks, printing each step:

  1. every switch got its table-miss flow from the controller (the controller is really there);
  2. pingall between every pair of hosts with zero loss;
  3. the controller installed forwarding flows (not only packet-outs);
  4. an iperf3 TCP pair across the longest path moves data, and meanwhile hardly any packet
     reaches the controller (no packet-out-only forwarding, no flood loop);
  5. prints `ovs-ofctl -O OpenFlow13 dump-flows` of one switch;
  6. with --api: the controller's REST API lists every switch, and its flows of that switch
     are the ones `ovs-ofctl` shows;
  7. with --mac-move: a host's MAC and IP move to another switch (gratuitous ARP from the new
     port) and every other host reaches it at once (the controller invalidated stale flows).

Exits 1 on any failure, 0 otherwise; the last line is `RESULT: PASS|FAIL`, the one before a
`summary:` (also written to --summary-file). Run as root with Debian's python3 (Mininet's
module lives there, not in a pyenv python):

    /usr/bin/python3 mininet/lab.py --topo linear --port 6653
    /usr/bin/python3 mininet/lab.py --topo tree --port 6653 --api http://127.0.0.1:8080
    /usr/bin/python3 mininet/lab.py --topo linear --cli        # Mininet CLI after the checks
    /usr/bin/python3 mininet/lab.py --clean                    # remove leftovers of a killed run

Names are `{prefix}s1..` and `{prefix}h1..` (--prefix, default none, i.e. s1/h1 as in every
Mininet tutorial); the acceptance checks use a prefix so they never touch a user's lab. The lab
refuses to start while a lab with the same names runs. Cleanup: net.stop() always runs (also on
SIGINT/SIGTERM and on the --timeout deadline), then whatever carries our names is removed;
leftovers of a SIGKILLed run are removed at the next start. Deliberately NOT `mn -c`: it kills
unrelated processes, deletes every bridge of the system OVS and `rm -f /tmp/*.log`.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch, RemoteController
from mininet.topo import Topo

OFCTL = ['ovs-ofctl', '-O', 'OpenFlow13']


class LinearTopo(Topo):
    """k switches in a line (s1 - s2 - ... - sk), n hosts on each."""

    def build(self, prefix='', k=4, n=2):
        prev = None
        for s in range(1, k + 1):
            # An explicit dpid: Mininet would otherwise take the first number in the name.
            sw = self.addSwitch('%ss%d' % (prefix, s), dpid='%016x' % s)
            for j in range(1, n + 1):
                self.addLink(self.addHost('%sh%d' % (prefix, (s - 1) * n + j)), sw)
            if prev:
                self.addLink(prev, sw)
            prev = sw


class TreeTopo(Topo):
    """A tree of switches `depth` levels deep, `fanout` children per switch, hosts as leaves
    (Mininet's TreeTopo numbering: s1 is the root, switches and hosts numbered depth-first)."""

    def build(self, prefix='', depth=3, fanout=2):
        self.prefix, self.switches_made, self.hosts_made = prefix, 0, 0
        self.add_subtree(depth, fanout)

    def add_subtree(self, depth, fanout):
        if depth == 0:
            self.hosts_made += 1
            return self.addHost('%sh%d' % (self.prefix, self.hosts_made))
        self.switches_made += 1
        sw = self.addSwitch('%ss%d' % (self.prefix, self.switches_made),
                            dpid='%016x' % self.switches_made)
        for _ in range(fanout):
            self.addLink(sw, self.add_subtree(depth - 1, fanout))
        return sw


class Controller(RemoteController):
    """The controller at 127.0.0.1:PORT, without Mininet's reachability probe: that runs
    `echo A | telnet -e A IP PORT` in a shell and was seen to hang the lab for good (the
    controller closed the handshake-less connection after 10 s; telnet never returned).
    main() checks with `ss` that something listens instead."""

    def checkListening(self):
        pass


def make_topo(a):
    if a.topo == 'linear':
        return LinearTopo(prefix=a.prefix, k=a.switches, n=a.hosts_per_switch)
    return TreeTopo(prefix=a.prefix, depth=a.depth, fanout=a.fanout)


def step(text):
    print('\n=== %s' % text, flush=True)


def port_open(port):
    """Whether something listens on TCP `port`: asked of the kernel (`ss`), not by connecting,
    which a controller would log as a switch that vanished."""
    return bool(run(['ss', '-Hltn', 'sport = :%d' % port]).stdout.strip())


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def clean(prefix):
    """Remove bridges and veths carrying this lab's names (only those: `{prefix}s<N>` bridges,
    `{prefix}[sh]<N>-eth<M>` links). Idempotent; returns what it removed."""
    removed = []
    bridge = re.compile(r'^%ss\d+$' % re.escape(prefix))
    for br in run(['ovs-vsctl', '--timeout=5', 'list-br']).stdout.split():
        if bridge.match(br):
            run(['ovs-vsctl', '--timeout=5', '--if-exists', 'del-br', br])
            removed.append(br)
    link = re.compile(r'^\d+: (%s[sh]\d+-eth\d+)[@:]' % re.escape(prefix))
    for line in run(['ip', '-o', 'link', 'show']).stdout.splitlines():
        m = link.match(line)
        if m and run(['ip', 'link', 'del', m.group(1)]).returncode == 0:
            removed.append(m.group(1))
    return removed


def live_lab_pids(prefix):
    """PIDs of Mininet node shells (`bash ... mininet:NAME`) carrying this lab's names: a lab
    with the same names is running, and its bridges are not leftovers."""
    name = re.compile(r'^mininet:%s[sh]\d+$' % re.escape(prefix))
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                args = f.read().decode(errors='replace').split('\0')
        except OSError:
            continue  # gone meanwhile
        if any(name.match(arg) for arg in args):
            pids.append(int(pid))
    return pids


def flows_of(switch):
    """Flow lines of `ovs-ofctl dump-flows` (without the reply header)."""
    out = run(OFCTL + ['dump-flows', switch]).stdout
    return [l.strip() for l in out.splitlines() if 'actions=' in l]


def is_table_miss(flow):
    return 'priority=0 ' in flow and 'actions=CONTROLLER' in flow


def packets(flow):
    m = re.search(r'n_packets=(\d+)', flow)
    return int(m.group(1)) if m else 0


def table_miss_packets(switch):
    return sum(packets(f) for f in flows_of(switch) if is_table_miss(f))


def show_flows(switch, limit):
    """Prints the switch's flows, the busiest first, at most `limit` of them (0: all)."""
    flows = sorted(flows_of(switch), key=packets, reverse=True)
    shown = flows if limit == 0 else flows[:limit]
    print('\n'.join(' ' + f for f in shown))
    if len(shown) < len(flows):
        print(' ... %d more, the busiest shown (all: ovs-ofctl -O OpenFlow13 dump-flows %s)'
              % (len(flows) - len(shown), switch))


def wait_for_table_miss(switches, timeout):
    """The controller installs the table-miss flow when a switch connects: that is the sign
    that the OpenFlow session is up (OVSDB's Controller.is_connected lags ~5 s behind it, and
    with fail_mode=secure nothing forwards before the controller acts)."""
    deadline = time.time() + timeout
    waiting = list(switches)
    while waiting and time.time() < deadline:
        waiting = [s for s in waiting if not any(is_table_miss(f) for f in flows_of(s.name))]
        if waiting:
            time.sleep(0.1)
    return waiting


def garp_frame(mac, ip):
    """A gratuitous ARP request (sender = target = ip) broadcast from mac, as a migrated VM's
    hypervisor sends it so that every switch relearns where the MAC now lives."""
    hw = bytes.fromhex(mac.replace(':', ''))
    addr = socket.inet_aton(ip)
    return (b'\xff' * 6 + hw + b'\x08\x06' + bytes.fromhex('0001080006040001') + hw + addr
            + b'\x00' * 6 + addr)


def switch_of(host):
    link = host.defaultIntf().link
    return (link.intf2 if link.intf1.node is host else link.intf1).node


def move_mac(net, failures):
    """A host's MAC and IP move to another switch (a VM migration): the first host falls
    silent under a new MAC, the last host takes over its MAC and IP and announces it with a
    gratuitous ARP. Every other host must reach the moved address at once, through the flows
    the controller had installed towards the old port: it must invalidate them on the move."""
    old, new = net.hosts[0], net.hosts[-1]
    mac, ip = old.MAC(), old.IP()
    prefixlen = int(old.defaultIntf().prefixLen)
    step('7. MAC move: %s (%s, %s) moves from %s to %s\'s port on %s; the others ping it'
         % (old, mac, ip, switch_of(old), new, switch_of(new)))
    oi, ni = old.defaultIntf().name, new.defaultIntf().name
    old.cmd('ip addr flush dev %s; ip link set dev %s address 02:00:00:00:ff:01' % (oi, oi))
    new.cmd('ip addr flush dev %s; ip link set dev %s address %s; ip addr add %s/%d dev %s; '
            'ip neigh flush dev %s' % (ni, ni, mac, ip, prefixlen, ni, ni))
    # Sent from inside the host's namespace with a raw socket: no arping needed.
    new.cmd("%s -c 'import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
            "s.bind((\"%s\", 0)); s.send(bytes.fromhex(\"%s\"))'"
            % (sys.executable, ni, garp_frame(mac, ip).hex()))
    # Three tries 0.2 s apart: the controller handles the announcement's packet-ins while the
    # first ping may already be on its way. With stale flows every try is lost.
    unreachable = []
    for h in net.hosts[1:-1]:
        if not re.search(r' [1-9]\d* received', h.cmd('ping -c3 -i0.2 -W1 %s' % ip)):
            unreachable.append(h.name)
    if unreachable:
        failures.append('after the MAC move, %s cannot reach %s at its new port (stale flows?)'
                        % (' '.join(unreachable), ip))
        print('FAIL %d of %d hosts cannot reach the moved address'
              % (len(unreachable), len(net.hosts) - 2))
    else:
        print('ok all %d other hosts reach %s at its new port' % (len(net.hosts) - 2, ip))


def iperf3_pair(client, server, seconds):
    """One TCP iperf3 run client -> server; returns (Mbit/s received, error or None)."""
    # `timeout` bounds both ends even if this script is SIGKILLed mid-run.
    srv = server.popen(['timeout', str(seconds + 20), 'iperf3', '-s', '-1', '-p', '5201'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 5
        while ':5201' not in server.cmd('ss -Hltn sport = :5201'):
            if time.time() > deadline or srv.poll() is not None:
                return 0.0, 'iperf3 server did not start in %s' % server
            time.sleep(0.05)
        out = client.cmd('timeout %d iperf3 -J -c %s -p 5201 -t %d --connect-timeout 3000'
                         % (seconds + 15, server.IP(), seconds))
        try:
            res = json.loads(out)
        except ValueError:
            return 0.0, 'iperf3 printed no JSON: %r' % out[-300:]
        if res.get('error'):
            return 0.0, 'iperf3: %s' % res['error']
        bps = res.get('end', {}).get('sum_received', {}).get('bits_per_second', 0.0)
        return bps / 1e6, None if bps > 0 else 'iperf3 moved no data'
    finally:
        if srv.poll() is None:
            srv.terminate()             # `timeout` passes SIGTERM on to iperf3
        try:
            srv.wait(timeout=5)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


def http_get(url):
    """GET url -> (status, parsed JSON or text)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            status, body = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode(errors='replace')
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def show_json_list(items, limit):
    """A JSON list, one compact element per line, at most `limit` of them."""
    for item in items[:limit]:
        print('  ' + json.dumps(item, separators=(',', ':')))
    if len(items) > limit:
        print('  ... %d more' % (len(items) - limit))


def dpid_of(entry):
    """A switch's datapath id from one element of GET /switches: os-ken ofctl_rest lists bare
    dpids, richer APIs list objects with a `dpid` field."""
    return entry.get('dpid') if isinstance(entry, dict) else entry


def same_dpid(shown, want):
    """Whether a dpid as the API shows it (a number, decimal or hex text, with or without
    colons) is the integer `want`."""
    if isinstance(shown, int):
        return shown == want
    text = str(shown).replace(':', '').lower()
    text = text[2:] if text.startswith('0x') else text
    values = {int(text, 16)} if re.fullmatch(r'[0-9a-f]+', text) else set()
    if text.isdigit():
        values.add(int(text))
    return want in values


def show_rest(api, net, dump_switch, failures):
    """Prints what the controller's REST API says and checks it against the network: every
    switch listed, the dumped switch's flows the same as `ovs-ofctl` shows. A route the
    controller does not serve (404) is reported, anything else unexpected is a failure."""
    url = '%s/api/v1/switches' % api.rstrip('/')
    print('$ curl -s %s' % url)
    status, switches = http_get(url)
    if status == 404:
        print('(not served by this controller: 404)')
        return
    if status != 200 or not isinstance(switches, list):
        failures.append('GET /api/v1/switches: HTTP %d %r' % (status, switches))
        return
    show_json_list(switches, 8)
    listed = [dpid_of(s) for s in switches]
    missing = [sw.name for sw in net.switches
               if not any(same_dpid(d, int(sw.dpid, 16)) for d in listed)]
    if missing:
        failures.append('GET /api/v1/switches does not list %s' % ' '.join(missing))
        return
    print('ok all %d switches listed (%d in all)' % (len(net.switches), len(switches)))
    dpid = next(d for d in listed if same_dpid(d, int(dump_switch.dpid, 16)))
    url = '%s/api/v1/switches/%s/flows' % (api.rstrip('/'), dpid)
    print('$ curl -s %s' % url)
    status, flows = http_get(url)
    if status == 404 and not isinstance(flows, dict):
        print('(not served by this controller: 404)')
        return
    if status != 200 or not isinstance(flows, list):
        failures.append('GET %s: HTTP %d %r' % (url, status, flows))
        return
    show_json_list(flows, 3)
    # The network is quiet and idle timeouts are far: both views must agree.
    ofctl = len(flows_of(dump_switch.name))
    if len(flows) != ofctl:
        failures.append('GET %s lists %d flows, ovs-ofctl dump-flows %s shows %d'
                        % (url, len(flows), dump_switch, ofctl))
    else:
        print('ok %d flows in all, as ovs-ofctl dump-flows %s shows' % (len(flows), dump_switch))


def exercise(net, a, failures, results):
    """Steps 1-7 on a started network; appends to `failures`, fills `results`."""
    t0 = time.time()
    step('1. waiting for the controller to configure every switch (table-miss flow)')
    waiting = wait_for_table_miss(net.switches, a.connect_timeout)
    if waiting:
        failures.append('no table-miss flow after %.0fs on %s: is the controller at '
                        '127.0.0.1:%d up and speaking OpenFlow 1.3?'
                        % (a.connect_timeout, ' '.join(s.name for s in waiting), a.port))
        return
    print('ok all %d switches connected (%.2fs after start)'
          % (len(net.switches), time.time() - t0))

    step('2. pingall')
    t_ping = time.time()
    loss = net.pingAll(timeout=2)
    results['loss'] = '%g%%' % loss
    print('%s pingall: %g%% loss between %d hosts (%.2fs)'
          % ('ok' if loss == 0 else 'FAIL', loss, len(net.hosts), time.time() - t_ping))
    if loss != 0:
        failures.append('pingall loss %g%%' % loss)

    step('3. forwarding flows the controller installed')
    total_fwd = 0
    for s in net.switches:
        fwd = [f for f in flows_of(s.name) if not is_table_miss(f)]
        total_fwd += len(fwd)
        print('  %-6s %3d flows besides the table-miss flow' % (s.name, len(fwd)))
    if total_fwd == 0:
        failures.append('the controller installed no forwarding flow (packet-out only?)')
    else:
        print('ok %d forwarding flows installed' % total_fwd)

    first, last = net.hosts[0], net.hosts[-1]
    step('4. iperf3 %s -> %s (%ds, TCP, across the whole topology), counting what reaches '
         'the controller meanwhile' % (first, last, a.iperf_seconds))
    before = {s.name: table_miss_packets(s.name) for s in net.switches}
    mbps, err = iperf3_pair(first, last, a.iperf_seconds)
    if err:
        failures.append('iperf3 %s -> %s: %s' % (first, last, err))
        print('FAIL ' + err)
    else:
        print('ok iperf3 %s -> %s: %.0f Mbit/s' % (first, last, mbps))
        results['iperf3'] = '%.0fMbit/s' % mbps
    # With flows in place iperf3's packets stay in the datapath; a packet-out-only controller
    # or a flood loop sends thousands per second to the controller. The table-miss counters lag
    # (the revalidators credit datapath hits every ~0.5 s), so late pingall packets may still
    # land in this window: the bound leaves room for them.
    bound = 10 * len(net.hosts) ** 2 + 100
    flooded = []
    for s in net.switches:
        during = table_miss_packets(s.name) - before[s.name]
        print('  %-6s %6d packets sent to the controller during iperf3' % (s.name, during))
        if during > bound:
            flooded.append('%s sent %d packets to the controller during iperf3 (bound %d): '
                           'flows not used, or a flood loop' % (s.name, during, bound))
    failures.extend(flooded)
    print('%s at most %d packets per switch to the controller during iperf3'
          % ('FAIL not' if flooded else 'ok', bound))

    # The first switch the iperf3 flow crossed: s1 (an edge of the line, the tree's root).
    dump_switch = net.switches[0]
    step('5. ovs-ofctl -O OpenFlow13 dump-flows %s' % dump_switch)
    show_flows(dump_switch.name, a.max_flows)
    if a.api:
        step('6. the controller\'s REST API')
        show_rest(a.api, net, dump_switch, failures)
    if a.mac_move:
        move_mac(net, failures)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--port', type=int, default=6653, help='controller OpenFlow port on 127.0.0.1')
    ap.add_argument('--topo', choices=['linear', 'tree'], default='linear')
    ap.add_argument('--switches', '-k', type=int, default=4, help='linear: switches in the line')
    ap.add_argument('--hosts-per-switch', '-n', type=int, default=2,
                    help='linear: hosts per switch')
    ap.add_argument('--depth', type=int, default=3, help='tree: levels of switches')
    ap.add_argument('--fanout', type=int, default=2, help='tree: children per switch')
    ap.add_argument('--prefix', default='', help='prefix of switch and host names')
    ap.add_argument('--iperf-seconds', type=int, default=2)
    ap.add_argument('--connect-timeout', type=float, default=20,
                    help='seconds for every switch to get its table-miss flow')
    ap.add_argument('--max-flows', type=int, default=20,
                    help='flows of the dumped switch to print, busiest first (0: all)')
    ap.add_argument('--mac-move', action='store_true',
                    help='also move a MAC to another switch and check every host follows it')
    ap.add_argument('--api', help='the controller REST API base URL, e.g. http://127.0.0.1:8080')
    ap.add_argument('--timeout', type=int, default=120,
                    help='seconds the checks may take before the lab gives up (not with --cli)')
    ap.add_argument('--summary-file', help='write the summary line and failures there too')
    ap.add_argument('--clean', action='store_true', help='remove leftovers and exit')
    ap.add_argument('--cli', action='store_true', help='open the Mininet CLI after the checks')
    ap.add_argument('--quiet', action='store_true', help='less Mininet chatter')
    a = ap.parse_args()

    # Leftovers are removed by name, so a running lab with the same names must be left alone.
    live = live_lab_pids(a.prefix)
    if live:
        print('FAIL: a Mininet lab with the same names (%ss1, %sh1, ...) is running (pids %s): '
              'stop it or pick another --prefix' % (a.prefix, a.prefix, ' '.join(map(str, live))))
        print('RESULT: FAIL')
        return 1
    if a.clean:
        removed = clean(a.prefix)
        print('removed: %s' % (' '.join(removed) or 'nothing'))
        return 0
    # SIGTERM (a CI timeout, the demo's trap) and our own deadline must still run net.stop().
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    def deadline(_signum, frame):
        traceback.print_stack(frame)    # where it hung: a Mininet command that never returned?
        sys.exit('FAIL: the lab took more than %d s\nRESULT: FAIL' % a.timeout)
    signal.signal(signal.SIGALRM, deadline)
    setLogLevel('warning' if a.quiet else 'info')

    failures, results = [], {'loss': 'n/a', 'iperf3': 'n/a'}
    t0 = time.time()
    removed = clean(a.prefix)
    if removed:
        print('removed leftovers of an earlier run: %s' % ' '.join(removed))
    if not port_open(a.port):
        print('FAIL: no controller listens on 127.0.0.1:%d' % a.port)
        print('RESULT: FAIL')
        return 1

    topo = make_topo(a)
    step('%s topology: %d switches, %d hosts; OpenFlow 1.3 controller at 127.0.0.1:%d'
         % (a.topo, len(topo.switches()), len(topo.hosts()), a.port))

    # datapath='user': datapath_type=netdev (no kernel module needed); protocols pins the
    # bridge to OpenFlow 1.3; fail_mode=secure so nothing forwards without the controller.
    def switch(name, **kw):
        return OVSSwitch(name, datapath='user', protocols='OpenFlow13', failMode='secure', **kw)

    net = None
    try:
        signal.alarm(a.timeout)
        # Mininet() already creates the hosts and links: inside the try, so that an interrupt
        # there still gets cleaned up.
        net = Mininet(topo=topo, switch=switch, controller=None, autoSetMacs=True,
                      waitConnected=False)
        net.addController(Controller('c0', ip='127.0.0.1', port=a.port))
        net.start()
        # The userspace datapath never completes TX checksum offload on veths: without this
        # ICMP works and TCP stalls.
        for h in net.hosts:
            for intf in h.intfList():
                h.cmd('ethtool -K %s tx off >/dev/null 2>&1' % intf.name)

        try:
            exercise(net, a, failures, results)
        except Exception as e:  # pylint: disable=broad-except
            # A bug here or a host that stopped answering: report it, still clean up.
            traceback.print_exc()
            failures.append('the lab broke: %r' % e)
        if a.cli:
            signal.alarm(0)
            from mininet.cli import CLI
            CLI(net)
    finally:
        # Cleanup must finish even on a second Ctrl-C, or with stdout gone (a pipe whose reader
        # died): net.stop() prints, and an exception there must not skip clean().
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_error = None
        try:
            if net is not None:
                net.stop()
        except Exception as e:  # pylint: disable=broad-except
            stop_error = e
        removed = clean(a.prefix)
        if stop_error:
            print('net.stop() failed (%r); removed by name instead: %s'
                  % (stop_error, ' '.join(removed) or 'nothing left'))
        elif removed:
            print('removed what net.stop() left: %s' % ' '.join(removed))
    summary = ('topo=%s switches=%d hosts=%d pingall_loss=%s iperf3=%s wall=%.1fs failures=%d'
               % (a.topo, len(topo.switches()), len(topo.hosts()), results['loss'],
                  results['iperf3'], time.time() - t0, len(failures)))
    print('\nsummary: ' + summary)
    if a.summary_file:
        with open(a.summary_file, 'w') as f:
            f.write(summary + ''.join('\nFAIL: ' + x for x in failures) + '\n')
    for f in failures:
        print('FAIL: ' + f)
    print('RESULT: %s' % ('FAIL' if failures else 'PASS'))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
