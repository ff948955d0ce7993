#!/usr/bin/python3
"""The virtual-network lab: hypervisors as Mininet nodes, each running its own Open vSwitch,
driven by Strowger over OVSDB and OpenFlow like real hosts (scripts/demo.sh's main job).

    ul            underlay: a Linux bridge in its own namespace (MTU --ul-mtu, 1500)
    mg            management network: a Linux bridge in its own namespace, with one veth into
                  the root namespace (--mgmt-if, address <mgmt-net>.254) where the controller
                  listens; the hypervisors reach it there (out-of-band: not through br-int)
    hv1..hvN      hypervisors: a Mininet Switch in its own network AND mount namespace
                  (privateDirs over /var/run/openvswitch, /var/log/openvswitch,
                  /etc/openvswitch), running its OWN ovsdb-server + ovs-vswitchd (userspace
                  datapath). eth1: underlay, in br-phy (fail-mode standalone), which carries
                  the underlay address <ul-net>.I; eth2: management, <mgmt-net>.I; eth3..: VMs.
                  There is NO br-int and no flow: the controller creates br-int, its
                  controller target and the tunnel mesh over OVSDB (unix socket
                  <base>/hvI/run/db.sock, visible from the root namespace).
    VMs           plain Mininet hosts (--vm NAME,HV,MAC), no address (DHCP gives it), TX
                  checksum offload off (TCP over the userspace datapath), IPv6 off.

Commands (root, Debian's /usr/bin/python3 which has Mininet):
    vnet.py up --hv 3 --vm a1,hv1,52:54:00:0a:01:11 …   build, write <base>/nodes and
                   <base>/ready, then hold the lab until SIGTERM/SIGINT (or --cli: a Mininet
                   CLI), and tear everything down
    vnet.py plug VM=IFACE_ID …   once the controller made br-int on the VM's hypervisor (polled
                   with a deadline, --timeout), plug the VM's interface into it with
                   external_ids:iface-id=IFACE_ID (the logical port id): one OVSDB
                   transaction per hypervisor
    vnet.py unplug VM …          take the VM's interface out of br-int
    vnet.py clean                leftovers of a killed run: daemons and node shells by PID,
                   the root veth, <base> (nothing while a running lab holds the lock)

<base>/nodes has one line per node: `NAME KIND PID [HV HV_IF VM_IF MAC]` (KIND hv, vm, bridge);
run a command in a node with `mnexec -a PID CMD` (a hypervisor's own OVS tools then work with
their default paths). Exit status of `up`: 1 if the lab could not be built.
Deliberately not `mn -c` (it kills unrelated processes): everything here carries its own names.
"""
import argparse
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import Switch
from mininet.topo import Topo

SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'


class NsBridge(Switch):
    """A plain Linux bridge in its own namespace: an L2 segment with no controller."""

    def __init__(self, name, mtu=1500, **params):
        params['inNamespace'] = True
        self.mtu = mtu
        Switch.__init__(self, name, **params)

    def start(self, controllers):
        self.cmd('ip link set lo up; ip link add br0 type bridge && ip link set br0 up')
        for intf in self.intfList():
            if intf.name != 'lo':
                self.cmd('ip link set %s mtu %d master br0 up' % (intf, self.mtu))

    def connected(self):
        return True


class Hypervisor(Switch):
    """A hypervisor: own namespaces, own ovsdb-server + ovs-vswitchd, br-phy; no br-int."""

    def __init__(self, name, base, ul_ip, mgmt_ip, ul_mtu=1500, **params):
        self.state = os.path.join(base, name)
        shutil.rmtree(self.state, ignore_errors=True)
        for d in ('run', 'log', 'etc'):
            os.makedirs(os.path.join(self.state, d))
        params['inNamespace'] = True
        params['privateDirs'] = [('/var/run/openvswitch', self.state + '/run'),
                                 ('/var/log/openvswitch', self.state + '/log'),
                                 ('/etc/openvswitch', self.state + '/etc')]
        self.ul_ip, self.mgmt_ip, self.ul_mtu = ul_ip, mgmt_ip, ul_mtu
        Switch.__init__(self, name, **params)
        # If the bind mount failed, plain ovs-vsctl in this node would drive the SYSTEM OVS.
        inode = self.cmd('stat -L -c %i /var/run/openvswitch').strip()
        if inode != str(os.stat(self.state + '/run').st_ino):
            raise RuntimeError('%s: /var/run/openvswitch is not private' % name)

    def vsctl(self, *args):
        out = self.cmd('ovs-vsctl --timeout=10', *args)
        if 'ovs-vsctl:' in out:
            raise RuntimeError('%s: ovs-vsctl %s: %s' % (self.name, ' '.join(args), out))
        return out

    def intf_to(self, node):
        for intf in self.intfList():
            link = intf.link
            if link and node in (link.intf1.node, link.intf2.node) and node is not self:
                return intf
        raise RuntimeError('%s: no link to %s' % (self, node))

    def start(self, controllers):
        self.cmd('ip link set lo up')   # a namespaced Switch has lo down
        self.cmd('ovsdb-tool create /etc/openvswitch/conf.db', SCHEMA)
        self.cmd('ovsdb-server /etc/openvswitch/conf.db --remote=punix:/var/run/openvswitch/db.sock'
                 ' --remote=db:Open_vSwitch,Open_vSwitch,manager_options'
                 ' --pidfile --detach --no-chdir --log-file -vconsole:off')
        self.cmd('ovs-vsctl --no-wait init')
        self.cmd('ovs-vswitchd --pidfile --detach --no-chdir --log-file -vconsole:off')
        self.vsctl('set Open_vSwitch . external_ids:system-id=%s external_ids:hostname=%s'
                   % (self.name, self.name))

    def wire(self, ul, mg):
        """The underlay in br-phy (which carries the underlay address) and the management
        address on a plain kernel interface: after net.start(), once the links exist."""
        up, mgmt = self.intf_to(ul), self.intf_to(mg)
        self.cmd('ip link set %s mtu %d up' % (up, self.ul_mtu))
        self.vsctl('add-br br-phy -- set Bridge br-phy datapath_type=netdev fail-mode=standalone'
                   ' -- set Interface br-phy mtu_request=%d -- add-port br-phy %s' % (self.ul_mtu, up))
        self.cmd('ip addr add %s dev br-phy && ip link set br-phy up' % self.ul_ip)
        self.cmd('ip addr flush dev %s && ip addr add %s dev %s && ip link set %s up'
                 % (mgmt, self.mgmt_ip, mgmt, mgmt))

    def connected(self):
        return True

    def pid_of(self, daemon):
        try:
            with open(os.path.join(self.state, 'run', daemon + '.pid')) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self, deleteIntfs=True):
        for daemon in ('ovs-vswitchd', 'ovsdb-server'):
            pid = self.pid_of(daemon)
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        Switch.stop(self, deleteIntfs)


class VnetTopo(Topo):
    def build(self, base, nhv, vms, ul_net, mgmt_net, ul_mtu):
        ul = self.addSwitch('ul', cls=NsBridge, mtu=ul_mtu, dpid='%016x' % 0xfe01)
        mg = self.addSwitch('mg', cls=NsBridge, mtu=1500, dpid='%016x' % 0xfe02)
        for i in range(1, nhv + 1):
            hv = self.addSwitch('hv%d' % i, cls=Hypervisor, base=base, dpid='%016x' % i,
                                ul_ip='%s.%d/24' % (ul_net, i), mgmt_ip='%s.%d/24' % (mgmt_net, i),
                                ul_mtu=ul_mtu)
            self.addLink(hv, ul)
            self.addLink(hv, mg)
        for name, hv, mac in vms:
            self.addHost(name, ip=None, mac=mac)
            self.addLink(name, hv)


def read_nodes(base):
    nodes = {}
    with open(os.path.join(base, 'nodes')) as f:
        for line in f:
            w = line.split()
            if w:
                nodes[w[0]] = w
    return nodes


def clean(base, mgmt_if):
    """Leftovers of a killed run, ours only: daemons and node shells by PID, our veth, base."""
    if os.path.isdir(base):
        pids = []
        for node in os.listdir(base):
            for daemon in ('ovs-vswitchd', 'ovsdb-server'):
                try:
                    with open(os.path.join(base, node, 'run', daemon + '.pid')) as f:
                        pids.append(int(f.read().strip()))
                except (OSError, ValueError):
                    pass
        try:
            pids += [int(w[2]) for w in read_nodes(base).values()]
        except (OSError, ValueError, IndexError):
            pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        mounts = [os.path.join(base, n, d) for n in os.listdir(base) for d in ('run', 'log', 'etc')
                  if os.path.isdir(os.path.join(base, n, d))]
        if mounts:
            subprocess.run(['umount', '-l'] + mounts, stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)
    subprocess.run(['ip', 'link', 'del', mgmt_if], stderr=subprocess.DEVNULL)


def parse_vm(spec):
    try:
        name, hv, mac = spec.split(',')
    except ValueError:
        raise argparse.ArgumentTypeError('--vm NAME,HV,MAC, not %r' % spec)
    return name, hv, mac


def lock(path, wait):
    """One lab at a time (its names are fixed): an exclusive flock held until the process
    exits, not inherited by children (Python's files are close-on-exec)."""
    f = open(path, 'w')
    deadline = time.time() + wait
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.time() > deadline:
                raise RuntimeError('%s still held after %d s: another lab runs' % (path, wait))
            time.sleep(0.2)


def up(a):
    try:
        held = lock(a.lock, a.lock_wait)   # noqa: F841 - held until exit
    except RuntimeError as e:
        print('vnet: %s' % e, file=sys.stderr)
        return 1
    clean(a.base, a.mgmt_if)
    os.makedirs(a.base)
    t0 = time.time()
    stop = []

    def on_signal(signum, _frame):
        stop.append(signum)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    net = Mininet(topo=VnetTopo(base=a.base, nhv=a.hv, vms=a.vm, ul_net=a.ul_net,
                                mgmt_net=a.mgmt_net, ul_mtu=a.ul_mtu),
                  controller=None, autoSetMacs=False, build=False)
    status = 0
    try:
        net.build()
        net.start()
        ul, mg = net.get('ul'), net.get('mg')
        hvs = [s for s in net.switches if isinstance(s, Hypervisor)]
        for hv in hvs:
            hv.wire(ul, mg)
        # The root namespace's end of the management network: where the controller listens.
        subprocess.run(['ip', 'link', 'add', a.mgmt_if, 'type', 'veth', 'peer', 'name', 'root',
                        'netns', str(mg.pid)], check=True)
        mg.cmd('ip link set root master br0 up')
        subprocess.run(['ip', 'addr', 'add', '%s.254/24' % a.mgmt_net, 'dev', a.mgmt_if], check=True)
        subprocess.run(['ip', 'link', 'set', a.mgmt_if, 'up'], check=True)
        # Native tunnelling drops packets while a peer's underlay address is unresolved:
        # fill every hypervisor's tunnel neighbour table now (the first ping then measures
        # the controller, not the underlay's ARP).
        macs = {hv: hv.cmd("ip -o link show br-phy | sed -n 's/.*link.ether \\([0-9a-f:]*\\).*/\\1/p'").strip()
                for hv in hvs}
        for hv in hvs:
            for other in hvs:
                if other is not hv:
                    hv.cmd('ovs-appctl tnl/neigh/set br-phy %s %s' % (other.ul_ip.split('/')[0], macs[other]))
        lines = ['%s bridge %d' % (n.name, n.pid) for n in (ul, mg)]
        lines += ['%s hv %d' % (hv.name, hv.pid) for hv in hvs]
        for vm in net.hosts:
            intf = vm.defaultIntf()
            hv = intf.link.intf2.node if intf.link.intf1 is intf else intf.link.intf1.node
            hv_if = intf.link.intf2 if intf.link.intf1 is intf else intf.link.intf1
            vm.cmd('ip -4 addr flush dev %s; ethtool -K %s tx off >/dev/null 2>&1;'
                   ' sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1'
                   ' net.ipv6.conf.%s.disable_ipv6=1' % (intf, intf, intf))
            lines.append('%s vm %d %s %s %s %s' % (vm.name, vm.pid, hv.name, hv_if.name, intf.name, vm.MAC()))
        with open(os.path.join(a.base, 'nodes'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        for hv in hvs:
            print('%s: OVSDB unix:%s/run/db.sock, underlay %s on br-phy, management %s'
                  % (hv.name, hv.state, hv.ul_ip, hv.mgmt_ip))
        for vm in net.hosts:
            print('%s: %s behind %s' % (vm.name, vm.MAC(), next(l.split()[3] for l in lines if l.startswith(vm.name + ' '))))
        with open(os.path.join(a.base, 'ready'), 'w') as f:
            f.write('%s.254\n' % a.mgmt_net)
        print('lab up in %.1f s: %d hypervisors, %d VMs; controller address %s.254 (%s)'
              % (time.time() - t0, len(hvs), len(net.hosts), a.mgmt_net, a.mgmt_if), flush=True)
        if a.cli:
            from mininet.cli import CLI
            CLI(net)
        else:
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
    except Exception as e:   # noqa: BLE001 - reported, then torn down
        print('vnet: %s' % e, file=sys.stderr)
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            net.stop()
        finally:
            clean(a.base, a.mgmt_if)
        print('lab down', flush=True)
    return status


def vsctl(base, hv, *args):
    return subprocess.run(['ovs-vsctl', '--db=unix:%s/run/db.sock' % os.path.join(base, hv),
                           '--timeout=10'] + list(args), capture_output=True, text=True)


def plug(a):
    nodes = read_nodes(a.base)
    per_hv = {}
    for spec in a.plugs:
        vm, _, iface_id = spec.partition('=')
        w = nodes.get(vm)
        if not w or w[1] != 'vm' or not iface_id:
            print('vnet plug: %r: want VM=IFACE_ID with a VM of the lab' % spec, file=sys.stderr)
            return 2
        per_hv.setdefault(w[3], []).append((w[4], iface_id, w[6]))
    deadline = time.time() + a.timeout
    for hv, ifs in sorted(per_hv.items()):
        while vsctl(a.base, hv, 'br-exists', 'br-int').returncode != 0:
            if time.time() > deadline:
                print('vnet plug: %s has no br-int after %d s (is the host created?)' % (hv, a.timeout),
                      file=sys.stderr)
                return 1
            time.sleep(0.1)
        args = []
        for intf, iface_id, mac in ifs:
            args += ['--', '--may-exist', 'add-port', 'br-int', intf, '--', 'set', 'Interface', intf,
                     'external_ids:iface-id=%s' % iface_id, 'external_ids:attached-mac=%s' % mac]
        r = vsctl(a.base, hv, *args)
        if r.returncode != 0:
            print('vnet plug: %s: %s' % (hv, r.stderr.strip()), file=sys.stderr)
            return 1
    return 0


def unplug(a):
    nodes = read_nodes(a.base)
    for vm in a.vms:
        w = nodes.get(vm)
        if not w or w[1] != 'vm':
            print('vnet unplug: %r is not a VM of the lab' % vm, file=sys.stderr)
            return 2
        r = vsctl(a.base, w[3], '--if-exists', 'del-port', 'br-int', w[4])
        if r.returncode != 0:
            print('vnet unplug: %s: %s' % (vm, r.stderr.strip()), file=sys.stderr)
            return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--base', default='/run/strowger-vnet', help='state directory (default %(default)s)')
    ap.add_argument('--mgmt-if', default='stw-vnet0', help='root end of the management network')
    ap.add_argument('--lock', default='/run/lock/strowger-vnet.lock',
                    help='held by a running lab: one at a time (its names are fixed)')
    sub = ap.add_subparsers(dest='cmd', required=True)
    u = sub.add_parser('up', help='build the lab and hold it until SIGTERM')
    u.add_argument('--hv', type=int, default=3)
    u.add_argument('--vm', type=parse_vm, action='append', default=[], help='NAME,HV,MAC')
    u.add_argument('--ul-net', default='172.31.213', help='underlay /24 (first three octets)')
    u.add_argument('--mgmt-net', default='172.31.214', help='management /24 (first three octets)')
    u.add_argument('--ul-mtu', type=int, default=1500)
    u.add_argument('--cli', action='store_true', help='a Mininet CLI instead of waiting for SIGTERM')
    u.add_argument('--lock-wait', type=int, default=300, help='seconds to wait for --lock')
    p = sub.add_parser('plug', help='plug VMs into br-int, bound to logical ports by iface-id')
    p.add_argument('plugs', nargs='+', metavar='VM=IFACE_ID')
    p.add_argument('--timeout', type=int, default=30)
    un = sub.add_parser('unplug', help='take VMs out of br-int')
    un.add_argument('vms', nargs='+', metavar='VM')
    sub.add_parser('clean', help='remove leftovers of a killed run')
    a = ap.parse_args()
    if os.geteuid() != 0:
        print('vnet: run as root', file=sys.stderr)
        return 1
    if a.cmd == 'up':
        setLogLevel('output' if a.cli else 'warning')   # 'warning' hides the CLI's output
        return up(a)
    if a.cmd in ('plug', 'unplug'):
        if not os.path.exists(os.path.join(a.base, 'ready')):
            print('vnet %s: no lab is up (%s/ready missing)' % (a.cmd, a.base), file=sys.stderr)
            return 1
        return plug(a) if a.cmd == 'plug' else unplug(a)
    try:   # a lab that runs holds the lock: its state is not a leftover
        held = lock(a.lock, 0)   # noqa: F841 - held until exit
    except RuntimeError as e:
        print('vnet clean: nothing removed: %s' % e, file=sys.stderr)
        return 0
    clean(a.base, a.mgmt_if)
    return 0


if __name__ == '__main__':
    sys.exit(main())
