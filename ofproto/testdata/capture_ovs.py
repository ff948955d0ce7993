#!/usr/bin/env python3
"""Records what a real Open vSwitch (3.1) sends to an OpenFlow 1.3 controller.

Starts a private, unprivileged OVS sandbox (ovsdb-server + ovs-vswitchd --enable-dummy, a
dummy-datapath bridge with dummy ports), plays a scripted controller on a unix socket inside
the sandbox, and writes every message OVS sends, one `NAME HEX` line each, to the output file
(default: ovs31_switch_messages.txt next to this script). The ofproto unit tests parse every
line and check that re-emitting gives the same bytes.

Usage: python3 capture_ovs.py [OUT]      (needs openvswitch-switch installed; no root)

Re-running it changes xids and durations: update the literal expectations in
ofproto/src/msg/tests.rs (flow_stats_display_matches_ovs_ofctl) with `ovs-ofctl ofp-print`.
"""
import os, shutil, socket, struct, subprocess, sys, tempfile, time

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "ovs31_switch_messages.txt")
D = tempfile.mkdtemp(prefix="ofcap-")
ENV = dict(os.environ, OVS_RUNDIR=D, OVS_LOGDIR=D, OVS_DBDIR=D, OVS_SYSCONFDIR=D)
NAMES = {0: "HELLO", 1: "ERROR", 2: "ECHO_REQUEST", 3: "ECHO_REPLY", 4: "EXPERIMENTER", 6: "FEATURES_REPLY",
         8: "GET_CONFIG_REPLY", 10: "PACKET_IN", 11: "FLOW_REMOVED", 12: "PORT_STATUS", 19: "MULTIPART_REPLY",
         21: "BARRIER_REPLY", 23: "QUEUE_GET_CONFIG_REPLY", 25: "ROLE_REPLY", 27: "GET_ASYNC_REPLY"}

def sh(*args):
    subprocess.run(args, env=ENV, check=True, stdout=subprocess.DEVNULL)

def daemon(*args):
    sh(*args, "--detach", "--no-chdir", "--pidfile", "--log-file", "-vconsole:off")

def cleanup():
    for p in ("ovs-vswitchd", "ovsdb-server"):
        try:
            with open(os.path.join(D, p + ".pid")) as f:
                os.kill(int(f.read().strip()), 15)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    time.sleep(0.2)
    shutil.rmtree(D, ignore_errors=True)

xid = 100
def msg(typ, body=b""):
    global xid
    xid += 1
    return struct.pack("!BBHI", 4, typ, 8 + len(body), xid) + body

def mp(mtype, body=b""):
    return msg(18, struct.pack("!HH4x", mtype, 0) + body)

EMPTY_MATCH = bytes.fromhex("0001000400000000")
FLOW_REQ = struct.pack("!B3xII4xQQ", 0xff, 0xffffffff, 0xffffffff, 0, 0) + EMPTY_MATCH

def main():
    if shutil.which("ovs-vswitchd") is None:
        sys.exit("ovs-vswitchd not found: install openvswitch-switch")
    try:
        sh("ovsdb-tool", "create", os.path.join(D, "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
        daemon("ovsdb-server", "--remote=punix:" + os.path.join(D, "db.sock"), os.path.join(D, "conf.db"))
        sh("ovs-vsctl", "--no-wait", "init")
        daemon("ovs-vswitchd", "--enable-dummy", "--disable-system", "--disable-system-route")
        ctl = os.path.join(D, "ctl.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(ctl)
        srv.listen(1)
        sh("ovs-vsctl", "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=dummy",
           "protocols=OpenFlow13", "fail-mode=secure", "other-config:datapath-id=0000000000000abc",
           "--", "add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=dummy", "ofport_request=1",
           "--", "add-port", "br0", "p2", "--", "set", "Interface", "p2", "type=dummy", "ofport_request=2",
           "--", "set-controller", "br0", "unix:" + ctl)
        srv.settimeout(10)
        conn, _ = srv.accept()
        conn.settimeout(0.3)
        got = []
        buf = b""

        def pump(seconds):
            nonlocal buf
            end = time.time() + seconds
            while time.time() < end:
                try:
                    d = conn.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    return
                buf += d
                while len(buf) >= 8:
                    l = struct.unpack("!H", buf[2:4])[0]
                    if len(buf) < l:
                        break
                    m, buf = buf[:l], buf[l:]
                    if m[1] == 2:  # answer echo requests so the session stays up
                        conn.sendall(struct.pack("!BBHI", 4, 3, l, struct.unpack("!I", m[4:8])[0]) + m[8:])
                    got.append(m)

        send = conn.sendall
        send(bytes.fromhex("04000010000000010001000800000010"))  # HELLO, OF1.3 bitmap
        send(msg(5))                                              # FEATURES_REQUEST
        send(msg(7))                                              # GET_CONFIG_REQUEST
        send(msg(9, struct.pack("!HH", 0, 128)))                  # SET_CONFIG miss_send_len=128
        send(msg(2, b"ping"))                                     # ECHO_REQUEST
        send(msg(24, struct.pack("!I4xQ", 2, 1)))                 # ROLE_REQUEST master
        send(msg(26))                                             # GET_ASYNC_REQUEST
        send(msg(22, struct.pack("!I4x", 1)))                     # QUEUE_GET_CONFIG_REQUEST
        # A select group, a meter and flows that reference them, one with a short timeout.
        send(bytes.fromhex("040f00500000000200000100000000010020000affffffffffffffff00000000000000100000000100000000000000000020001400000002ffffffff0000000000000010000000020000000000000000"))
        send(bytes.fromhex("041d0020000000020000000d0000000100010010000003e80000006400000000"))
        send(bytes.fromhex("040e005000000002000000000000000000000000000000000000000000000000ffffffffffffffffffffffff000000000001000400000000000400180000000000000010fffffffdffff000000000000"))
        send(bytes.fromhex("040e008800000002000000000000000000000000000000000000000000000064ffffffffffffffffffffffff0000000000010029800000040000000180000a020800800019080a000000ffffff00800014010680001c02005000000000000000000400280000000000000010000000020000000000000000ffff001000002320000efff803000000"))
        send(bytes.fromhex("040e007000000002000000000000000000000000000000000000000000000005ffffffffffffffffffffffff000000000001002380000a020800800014010680001b041000f000ffff55084f4e4600000200020000000000000400180000000000000010000000010000000000000000"))
        fm = bytearray(bytes.fromhex("040e005800000002000000000000000000000000000000000000000000000005ffffffffffffffffffffffff000000000001000c800000040000000200000000000400180000000000000010000000010000000000000000"))
        fm[28:30] = struct.pack("!H", 1)   # hard_timeout=1
        fm[44:46] = struct.pack("!H", 1)   # OFPFF_SEND_FLOW_REM
        send(bytes(fm))
        send(bytes.fromhex("040e005800000002000000000000000000000000000000000000000000000001ffffffffffffffffffffffff000000000001000c800000040000000300000000000400180000000000000010fffffffd0080000000000000"))
        # Errors: an unknown message type, and a tcp_dst match without its prerequisites.
        send(msg(0x63))
        send(msg(14, struct.pack("!QQBBHHHIIIH2x", 0, 0, 0, 0, 0, 0, 5, 0xffffffff, 0xffffffff, 0xffffffff, 0) + bytes.fromhex("0001000a80001c020050000000000000")))
        send(msg(20))                                             # BARRIER_REQUEST
        pump(0.5)
        for t in (0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 12):
            body = {1: FLOW_REQ, 2: FLOW_REQ, 4: struct.pack("!I4x", 0xffffffff),
                    5: struct.pack("!II", 0xffffffff, 0xffffffff), 6: struct.pack("!I4x", 0xfffffffc),
                    9: struct.pack("!I4x", 0xffffffff), 10: struct.pack("!I4x", 0xffffffff)}.get(t, b"")
            send(mp(t, body))
        send(mp(1, FLOW_REQ))
        send(mp(2, FLOW_REQ))
        pump(1.0)
        # A packet-in (table-miss to controller) and a port status.
        arp = "ffffffffffff000000000001080600010800060400010000000000010a0000010000000000000a000002"
        sh("ovs-appctl", "netdev-dummy/receive", "p1", arp)
        sh("ovs-appctl", "netdev-dummy/receive", "p1",
           "0000000000020000000000010800450000540000400040010000c0a80101c0a8010208000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000")
        sh("ovs-vsctl", "add-port", "br0", "p3", "--", "set", "Interface", "p3", "type=dummy", "ofport_request=3")
        pump(3.0)  # long enough for the hard_timeout=1 flow to expire -> FLOW_REMOVED
        with open(OUT, "w") as f:
            f.write("# Messages Open vSwitch 3.1 sent to an OpenFlow 1.3 controller; made by capture_ovs.py\n")
            for m in got:
                name = NAMES.get(m[1], "TYPE_%d" % m[1])
                if m[1] == 19:
                    name += "/%d%s" % (struct.unpack("!H", m[8:10])[0], "/MORE" if m[11] & 1 else "")
                f.write("%s %s\n" % (name, m.hex()))
        print("wrote %d messages to %s" % (len(got), OUT))
    except BaseException:
        log = os.path.join(D, "ovs-vswitchd.log")
        if os.path.exists(log):
            sys.stderr.write(open(log).read()[-3000:])
        raise
    finally:
        cleanup()

main()
