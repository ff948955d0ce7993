//! The engine's virtual router end to end on real OVS: three sandbox hypervisors over VXLAN (one
//! test over GRE), the `strowger serve` binary, a router between two bridges and VMs on
//! different hosts. Frames are injected with `netdev-dummy/receive` and what reaches each VM is
//! read back from its `tx_pcap`: routed packets byte for byte against frames computed here,
//! answers (ARP, ICMP, DHCP) parsed with etherparse and smoltcp, checksums verified. What OVS
//! shows (`dump-flows`, `ofproto/trace`) must agree.
//!
//! The logical network (one per test):
//!
//! ```text
//!   a 10.0.1.10 (hv1) ─┐                          ┌─ b 10.0.2.20 (hv2)
//!   d 10.0.1.30 (hv3) ─┴─ net1 ── r1 [router] r2 ── net2
//!                          10.0.1.1/24   10.0.2.1/24
//! ```

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::lab::{
    arp_frame, arp_request, assert_tunnels_to, flow_field, hex, mac_str, poll, poll_within, unhex,
    Lab, Vm, LAB_WAIT,
};
use serde_json::{json, Value};
use smoltcp::wire::{DhcpMessageType, DhcpPacket, DhcpRepr};

const R1_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 1, 1];
const R1_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const R2_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 2, 1];
const R2_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const BROADCAST: [u8; 6] = [0xff; 6];
/// The MTU of net2, which has no DHCP subnet naming one: the engine's default for VXLAN on a
/// 1500-byte underlay.
const MTU: u16 = 1450;

/// A VM with the addresses it uses.
struct Guest {
    vm: Vm,
    mac: [u8; 6],
    ip: Ipv4Addr,
}

/// The routed network above, built and plugged.
struct Routed {
    lab: Lab,
    router: String,
    net1: String,
    net2: String,
    a: Guest,
    b: Guest,
    d: Guest,
}

impl Routed {
    async fn start(tunnel: &str) -> Routed {
        Routed::start_args(tunnel, &[]).await
    }

    /// [`Routed::start`], with more arguments for `strowger serve`.
    async fn start_args(tunnel: &str, serve: &[&str]) -> Routed {
        let lab = Lab::start_args(tunnel, 3, None, serve).await;
        let (router, nets) = lab
            .routed(
                "r",
                "acme",
                &[
                    ("net1", R1_MAC, "10.0.1.1/24"),
                    ("net2", R2_MAC, "10.0.2.1/24"),
                ],
            )
            .await;
        let guest = |vm, mac, ip| Guest { vm, mac, ip };
        let a = guest(
            lab.port(&nets[0], 0, "a").await,
            [2, 0, 0, 0, 1, 0x0a],
            Ipv4Addr::new(10, 0, 1, 10),
        );
        let b = guest(
            lab.port(&nets[1], 1, "b").await,
            [2, 0, 0, 0, 2, 0x14],
            Ipv4Addr::new(10, 0, 2, 20),
        );
        let d = guest(
            lab.port(&nets[0], 2, "d").await,
            [2, 0, 0, 0, 1, 0x1e],
            Ipv4Addr::new(10, 0, 1, 30),
        );
        lab.plug(&[&a.vm, &b.vm, &d.vm]).await;
        Routed {
            lab,
            router,
            net1: nets[0].clone(),
            net2: nets[1].clone(),
            a,
            b,
            d,
        }
    }

    /// The router's ARP cache entry for `ip` (REST), if any.
    async fn arp_entry(&self, ip: Ipv4Addr) -> Option<Value> {
        let table = self
            .lab
            .api
            .get(&format!("/routers/{}/arp_table", self.router))
            .await?;
        table
            .as_array()?
            .iter()
            .find(|e| e["ip"] == ip.to_string())
            .cloned()
    }

    /// Sends a UDP packet from a to b (id `id`, TTL 64) and returns the ARP request the
    /// router sends for b, as it arrives at b.
    async fn ask_b(&self, id: u16) -> Arp {
        let (lab, a, b) = (&self.lab, &self.a, &self.b);
        lab.send(&a.vm, &udp_from(a, R1_MAC, b.ip, 64, id));
        lab.arrives(&b.vm, "the router's ARP request for b", |f| {
            Arp::parse(f).filter(|x| x.op == 1 && x.tpa == b.ip)
        })
        .await
    }

    /// b answers the router's ARP request; the packet parked for it (id `id`) arrives at b.
    async fn answer_b(&self, id: u16) {
        let (lab, a, b) = (&self.lab, &self.a, &self.b);
        lab.send(&b.vm, &arp_frame(2, (b.mac, b.ip), (R2_MAC, R2_IP), R2_MAC));
        let routed = udp((R2_MAC, b.mac), (a.ip, b.ip), 63, id);
        lab.arrives(&b.vm, "the parked packet at b", |f| {
            (f == routed.as_slice()).then_some(())
        })
        .await;
    }

    /// a sends b a DF packet one byte over net2's MTU (id `id`); fragmentation needed comes
    /// back from r1, naming that MTU.
    async fn frag_needed_for_one_too_big(&self, id: u16) {
        let (lab, a, b) = (&self.lab, &self.a, &self.b);
        let big = udp_of_len((a.mac, R1_MAC), (a.ip, b.ip), 64, id, usize::from(MTU) + 1);
        lab.send(&a.vm, &big);
        let rest = lab
            .arrives(&a.vm, "fragmentation needed", |f| {
                icmp_error_about(f, a, (R1_MAC, R1_IP), (3, 4), &big)
            })
            .await;
        assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), MTU, "next-hop MTU");
    }

    /// hv1's flow-cache entry that routes a's packets to b.
    fn flow_a_to_b(&self) -> Option<String> {
        let flows = self.lab.flows(0, &["table=20"]);
        flows
            .lines()
            .find(|l| {
                l.contains("cookie=0x53548")
                    && l.contains(&format!("metadata={:#x}", self.a.vm.key))
                    && flow_field(l, "nw_dst=") == Some(&self.b.ip.to_string())
            })
            .map(str::to_string)
    }
}

/// How many frames that are not the router's ARP requests reached `vm` (a request is retried
/// after a second: a slow machine may see two).
fn beyond_arp(lab: &Lab, vm: &Vm) -> usize {
    lab.sent(vm)
        .iter()
        .filter(|h| Arp::parse(&unhex(h)).is_none_or(|x| x.op != 1))
        .count()
}

// ---- frames, built and checked here (not with the code under test) ----

/// The Internet checksum (RFC 1071) of `data`; 0 over a block that carries a valid one.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4 frame (DF set, no options) carrying `l4` as protocol `proto`.
fn ipv4(
    src: [u8; 6],
    dst: [u8; 6],
    (ip_src, ip_dst): (Ipv4Addr, Ipv4Addr),
    ttl: u8,
    id: u16,
    proto: u8,
    l4: &[u8],
) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0x40, 0, ttl, proto, 0, 0]);
    h.extend_from_slice(&ip_src.octets());
    h.extend_from_slice(&ip_dst.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(l4);
    f
}

/// A UDP datagram 40000 → 5000 whose payload names `id` (the checksum covers the pseudo
/// header, which routing does not change).
fn udp(
    (src, dst): ([u8; 6], [u8; 6]),
    (ip_src, ip_dst): (Ipv4Addr, Ipv4Addr),
    ttl: u8,
    id: u16,
) -> Vec<u8> {
    udp_of_len((src, dst), (ip_src, ip_dst), ttl, id, 0)
}

/// [`udp`], its payload padded so that the IP packet is at least `ip_len` bytes long.
fn udp_of_len(
    (src, dst): ([u8; 6], [u8; 6]),
    (ip_src, ip_dst): (Ipv4Addr, Ipv4Addr),
    ttl: u8,
    id: u16,
    ip_len: usize,
) -> Vec<u8> {
    let mut payload = format!("strowger routed datagram #{id:05}").into_bytes();
    payload.resize(payload.len().max(ip_len.saturating_sub(28)), b'.');
    let len = (8 + payload.len()) as u16;
    let mut u = 40000u16.to_be_bytes().to_vec();
    u.extend_from_slice(&5000u16.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(&payload);
    let mut pseudo = ip_src.octets().to_vec();
    pseudo.extend_from_slice(&ip_dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&u);
    let c = match checksum(&pseudo) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, (ip_src, ip_dst), ttl, id, 17, &u)
}

/// A UDP packet from `g` to `dst_ip` through the gateway MAC `gw`.
fn udp_from(g: &Guest, gw: [u8; 6], dst_ip: Ipv4Addr, ttl: u8, id: u16) -> Vec<u8> {
    udp((g.mac, gw), (g.ip, dst_ip), ttl, id)
}

/// An ICMP echo request from `g` to `dst_ip` through the gateway MAC `gw`.
fn ping_from(g: &Guest, gw: [u8; 6], dst_ip: Ipv4Addr, seq: u16) -> Vec<u8> {
    echo_from(g, gw, dst_ip, 8, 0x4000 + seq, seq)
}

/// An ICMP echo (`icmp_type` 8 request, 0 reply) from `g` to `dst_ip` through `gw`, IP id `id`.
fn echo_from(
    g: &Guest,
    gw: [u8; 6],
    dst_ip: Ipv4Addr,
    icmp_type: u8,
    id: u16,
    seq: u16,
) -> Vec<u8> {
    let mut icmp = vec![icmp_type, 0, 0, 0, 0x51, 0x0e];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"0123456789abcdefghijklmnopqrstuv");
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(g.mac, gw, (g.ip, dst_ip), 64, id, 1, &icmp)
}

/// An ARP frame as it arrived.
#[derive(Debug, PartialEq, Eq)]
struct Arp {
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    op: u16,
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
}

impl Arp {
    fn parse(f: &[u8]) -> Option<Arp> {
        let eth = etherparse::Ethernet2Slice::from_slice_without_fcs(f).ok()?;
        if eth.ether_type() != etherparse::EtherType::ARP {
            return None;
        }
        let p = eth.payload_slice();
        // Ethernet/IPv4 ARP only: htype 1, ptype 0x0800, hlen 6, plen 4.
        if p.len() < 28 || p[..6] != [0, 1, 8, 0, 6, 4] {
            return None;
        }
        let mac = |at: usize| <[u8; 6]>::try_from(&p[at..at + 6]).unwrap();
        let ip = |at: usize| Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3]);
        Some(Arp {
            eth_src: eth.source(),
            eth_dst: eth.destination(),
            op: u16::from_be_bytes([p[6], p[7]]),
            sha: mac(8),
            spa: ip(14),
            tha: mac(18),
            tpa: ip(24),
        })
    }
}

/// An IPv4 frame as it arrived: addresses and the IP payload, its header checksum verified.
#[derive(Debug)]
struct Ip {
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload: Vec<u8>,
}

impl Ip {
    fn parse(f: &[u8]) -> Option<Ip> {
        let eth = etherparse::Ethernet2Slice::from_slice_without_fcs(f).ok()?;
        if eth.ether_type() != etherparse::EtherType::IPV4 {
            return None;
        }
        let ip = etherparse::Ipv4Slice::from_slice(eth.payload_slice()).ok()?;
        let h = ip.header();
        assert_eq!(checksum(h.slice()), 0, "IPv4 header checksum of {}", hex(f));
        Some(Ip {
            eth_src: eth.source(),
            eth_dst: eth.destination(),
            src: h.source_addr(),
            dst: h.destination_addr(),
            proto: h.protocol().0,
            payload: ip.payload().payload.to_vec(),
        })
    }

    /// `(type, code, rest)` of an ICMP message, its checksum verified.
    fn icmp(&self) -> Option<(u8, u8, &[u8])> {
        if self.proto != 1 || self.payload.len() < 8 {
            return None;
        }
        assert_eq!(checksum(&self.payload), 0, "ICMP checksum of {:?}", self);
        Some((self.payload[0], self.payload[1], &self.payload[4..]))
    }

    /// The UDP payload from `sport` to `dport`, its checksum (when present) verified.
    fn udp(&self, sport: u16, dport: u16) -> Option<&[u8]> {
        let u = &self.payload;
        if self.proto != 17 || u.len() < 8 {
            return None;
        }
        let port = |at: usize| u16::from_be_bytes([u[at], u[at + 1]]);
        if (port(0), port(2)) != (sport, dport) {
            return None;
        }
        if port(6) != 0 {
            let mut pseudo = self.src.octets().to_vec();
            pseudo.extend_from_slice(&self.dst.octets());
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(u.len() as u16).to_be_bytes());
            pseudo.extend_from_slice(u);
            assert_eq!(checksum(&pseudo), 0, "UDP checksum of {:?}", self);
        }
        Some(&u[8..usize::from(port(4))])
    }
}

/// An ICMP error of `(typ, code)` at `g` from the router port `(mac, ip)`, about the packet
/// `original` (a frame): it must quote its IP header and first 8 bytes of data. Returns the
/// 4 bytes after the ICMP checksum (the next-hop MTU of "fragmentation needed" is in them).
fn icmp_error_about(
    f: &[u8],
    g: &Guest,
    (mac, ip): ([u8; 6], Ipv4Addr),
    (typ, code): (u8, u8),
    original: &[u8],
) -> Option<[u8; 4]> {
    let reply = Ip::parse(f)?;
    let (t, c, rest) = reply.icmp()?;
    if (t, c) != (typ, code) {
        return None;
    }
    assert_eq!(
        (reply.eth_src, reply.eth_dst, reply.src, reply.dst),
        (mac, g.mac, ip, g.ip),
        "ICMP {typ}/{code} addressing"
    );
    let quoted = &rest[4..];
    let header_and_8 = &original[14..14 + 20 + 8];
    (quoted.len() >= header_and_8.len() && &quoted[..28] == header_and_8)
        .then(|| [rest[0], rest[1], rest[2], rest[3]])
}

// ---- the tests ----

async fn routed_udp(tunnel: &str) {
    let net = Routed::start(tunnel).await;
    let (lab, a, b) = (&net.lab, &net.a, &net.b);

    // The first packet finds no MAC for b: the router parks it and asks, from its port on net2.
    let request = net.ask_b(1).await;
    assert_eq!(
        request,
        Arp {
            eth_src: R2_MAC,
            eth_dst: BROADCAST,
            op: 1,
            sha: R2_MAC,
            spa: R2_IP,
            tha: [0; 6],
            tpa: b.ip,
        }
    );
    let shown = net.arp_entry(b.ip).await.expect("an ARP entry for b");
    assert_eq!(shown["mac"], Value::Null, "{shown}");
    assert_eq!(shown["state"], "resolving", "{shown}");
    assert_eq!(shown["parked"], 1, "{shown}");
    // Only the request reached b (a retry, 1 s later, if the machine is slow: nothing else).
    let sent = lab.sent(&b.vm);
    assert!(
        !sent.is_empty()
            && sent
                .iter()
                .all(|h| { Arp::parse(&unhex(h)).is_some_and(|x| x.op == 1 && x.tpa == b.ip) }),
        "only the request reached b: {sent:?}"
    );
    // b answers; the parked packet follows, routed: MACs rewritten, TTL 63, checksum updated.
    net.answer_b(1).await;
    let shown = net.arp_entry(b.ip).await.expect("an ARP entry for b");
    assert_eq!(shown["mac"], mac_str(b.mac), "{shown}");
    assert_eq!(shown["state"], "reachable", "{shown}");
    assert_eq!(shown["parked"], 0, "{shown}");

    // A flow now routes a → b on hv1: TTL, MACs rewritten, b's key, b's address exactly (the
    // rewritten MAC is b's alone).
    let flow = poll("hv1's flow a → b", || net.flow_a_to_b()).await;
    for part in [
        "dec_ttl".to_string(),
        format!("set_field:{}->eth_src", mac_str(R2_MAC)),
        format!("set_field:{}->eth_dst", mac_str(b.mac)),
        format!("set_field:{:#x}->tun_id", b.vm.key),
    ] {
        assert!(flow.contains(&part), "{part} missing in {flow}");
    }
    // The second packet goes through that flow, not the controller.
    let second = udp((R2_MAC, b.mac), (a.ip, b.ip), 63, 2);
    lab.send(&a.vm, &udp_from(a, R1_MAC, b.ip, 64, 2));
    lab.arrives(&b.vm, "the second packet at b", |f| {
        (f == second.as_slice()).then_some(())
    })
    .await;
    let cookie = flow_field(&flow, "cookie=").unwrap().to_string();
    poll("the flow counting the second packet", || {
        let now = net.flow_a_to_b()?;
        (flow_field(&now, "cookie=") == Some(&cookie)
            && flow_field(&now, "n_packets=") == Some("1"))
        .then_some(())
    })
    .await;
    // b saw exactly the request and the two routed packets; a nothing.
    let first = udp((R2_MAC, b.mac), (a.ip, b.ip), 63, 1);
    let request_bytes = arp_frame(1, (R2_MAC, R2_IP), ([0; 6], b.ip), BROADCAST);
    assert_eq!(
        lab.sent(&b.vm),
        vec![hex(&request_bytes), hex(&first), hex(&second)]
    );
    assert_eq!(lab.sent(&a.vm), Vec::<String>::new());

    // ofproto/trace of that packet on hv1 takes the flow and tunnels it with b's key.
    let trace = lab.trace(
        0,
        &format!(
            "udp,in_port={},dl_src={},dl_dst={},nw_src={},nw_dst={},nw_ttl=64,udp_src=40000,udp_dst=5000",
            lab.ofport(&a.vm).unwrap(),
            mac_str(a.mac),
            mac_str(R1_MAC),
            a.ip,
            b.ip
        ),
    );
    assert!(trace.contains(&format!("cookie {cookie}")), "{trace}");
    assert_tunnels_to(&trace, tunnel, b.vm.key);
    assert!(lab.oracle().await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_udp_over_vxlan_parks_for_arp_then_flows() {
    routed_udp("vxlan").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_udp_over_gre_parks_for_arp_then_flows() {
    routed_udp("gre").await;
}

/// An ICMP echo reply from `g` to `dst_ip` through the gateway MAC `gw`.
fn pong_from(g: &Guest, gw: [u8; 6], dst_ip: Ipv4Addr, seq: u16) -> Vec<u8> {
    echo_from(g, gw, dst_ip, 0, 0x5000 + seq, seq)
}

/// A ping's reply flow reaches b's host with the request (the engine predicts the reply), so
/// b's reply goes by a flow instead of the controller: a first ping across a router and a
/// tunnel costs one trip to the controller, not two. Seen from OVS: the flow is on hv2 when the
/// ping reaches b (hv2 itself sent the ping out of b's port, behind that flow), it counts b's
/// reply, and it is what the engine would install for that reply; the next ping goes by a's
/// flow on hv1 and the tunnel, and reaches b byte for byte as the first did. Before, b's ping
/// to its gateway installs its answer's flow, and OVS's datapath caches such pings narrowly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pings_reply_goes_by_a_flow_installed_with_the_request() {
    let net = Routed::start("vxlan").await;
    let (lab, a, b) = (&net.lab, &net.a, &net.b);
    // Static leases tell the router a's and b's MACs (no ARP, and so no flow a→b or b→a
    // before the ping); b's MAC is learned on net2 as b asks for its gateway, as a VM does first.
    for (net, g, prefix, gw) in [
        (&net.net1, a, "10.0.1.0/24", R1_IP),
        (&net.net2, b, "10.0.2.0/24", R2_IP),
    ] {
        let sub = lab
            .api
            .post(
                &format!("/bridges/{net}/dhcp"),
                json!({"subnet": prefix, "gateway": gw.to_string(), "enabled": true}),
            )
            .await;
        lab.api
            .post(
                &format!("/bridges/{net}/dhcp/{}/hosts", sub["id"].as_str().unwrap()),
                json!({"mac": mac_str(g.mac), "ip": g.ip.to_string()}),
            )
            .await;
    }
    lab.send(
        &b.vm,
        &arp_frame(1, (b.mac, b.ip), ([0; 6], R2_IP), BROADCAST),
    );
    lab.arrives(&b.vm, "the gateway's ARP answer", |f| {
        Arp::parse(f).filter(|x| x.op == 2 && x.spa == R2_IP)
    })
    .await;
    // b pings its gateway, as a VM checks its network. The router answers, and the answer
    // installs a flow sending exactly such pings to the controller, so OVS caches them with
    // their destination: not as "every IPv4 packet of b's port to userspace", a datapath flow
    // that would take b's reply to a (a new kind of packet for that port) to the controller
    // until OVS revalidated it after the reply's flow came.
    let echo_reply = |f: &[u8]| (f.len() > 34 && f[23] == 1 && f[34] == 0).then_some(());
    lab.send(&b.vm, &ping_from(b, R2_MAC, R2_IP, 1));
    lab.arrives(&b.vm, "the gateway's echo reply", echo_reply)
        .await;
    let answer_flow = lab
        .flows(1, &["table=20"])
        .lines()
        .find(|l| {
            l.contains(&format!("metadata={:#x}", b.vm.key))
                && flow_field(l, "nw_dst=") == Some(&R2_IP.to_string())
        })
        .map(str::to_string)
        .expect("the answer's flow on hv2");
    assert!(answer_flow.contains("actions=CONTROLLER"), "{answer_flow}");
    // Seen from the datapath: b's next gateway ping (once OVS dropped the wide datapath flow
    // the first one cached before its answer's flow came) is cached with its destination.
    let narrow = |dp: &str| {
        dp.lines().any(|l| {
            l.contains(&format!("dst={R2_IP}")) && l.contains("proto=1") && l.contains("userspace(")
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for seq in 2.. {
        lab.send(&b.vm, &ping_from(b, R2_MAC, R2_IP, seq));
        lab.arrives(&b.vm, "the gateway's echo reply", echo_reply)
            .await;
        let dp = lab.hvs[1].appctl(&["dpctl/dump-flows"]).expect("dpctl");
        if narrow(&dp) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b's gateway pings never cached with their destination:\n{dp}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The engine's flow on host `hv` for packets from `from` to `to`, as dump-flows shows it.
    let cache_flow = |hv: usize, from: &Guest, to: &Guest| {
        lab.flows(hv, &["table=20"])
            .lines()
            .find(|l| {
                l.contains("cookie=0x53548")
                    && l.contains(&format!("metadata={:#x}", from.vm.key))
                    && flow_field(l, "nw_dst=") == Some(&to.ip.to_string())
            })
            .map(str::to_string)
    };
    let reply_flow = || cache_flow(1, b, a);
    assert_eq!(reply_flow(), None, "no reply flow before the ping");

    let before = lab.api.metrics().await;
    let request = |f: &[u8]| (f.len() > 34 && f[23] == 1 && f[34] == 8).then(|| f.to_vec());
    lab.send(&a.vm, &ping_from(a, R1_MAC, b.ip, 1));
    let first = lab.arrives(&b.vm, "the echo request at b", request).await;
    // Routed on its way: to b's MAC from the router's port, TTL 63.
    assert_eq!(&first[0..12], &[b.mac, R2_MAC].concat()[..]);
    assert_eq!(first[22], 63);
    // Not polled: hv2 sent the ping out of b's port behind this flow on the same connection,
    // so the reply cannot reach hv2's br-int before its flow does.
    let flow = reply_flow().expect("b's reply flow on hv2 before the ping reached b");
    for part in [
        "dec_ttl".to_string(),
        format!("set_field:{}->eth_dst", mac_str(a.mac)),
        format!("set_field:{:#x}->tun_id", a.vm.key),
    ] {
        assert!(flow.contains(&part), "{part} missing in {flow}");
    }
    assert!(flow.contains("n_packets=0"), "{flow}");
    // The ping went out at its destination (not through hv1 and the tunnel), unheld: no
    // barrier round trip (the answers' flows keep b's reply off the controller).
    let after = lab.api.metrics().await;
    let delta = |name: &str| after.count(name, &[]) - before.count(name, &[]);
    assert_eq!(delta("strowger_replies_predicted_total"), 1.0);
    assert_eq!(delta("strowger_delivered_at_destination_total"), 1.0);
    assert_eq!(delta("strowger_packets_held_total"), 0.0);
    assert_eq!(delta("strowger_holds_expired_total"), 0.0);
    let request_flow = || cache_flow(0, a, b);
    let on_hv1 = request_flow().expect("a's flow on hv1");
    assert!(on_hv1.contains("n_packets=0"), "{on_hv1}");
    // The next ping goes by that flow and the tunnel, and arrives as the first did.
    lab.send(&a.vm, &ping_from(a, R1_MAC, b.ip, 1));
    let second = lab
        .arrives(&b.vm, "the second echo request at b", request)
        .await;
    assert_eq!(second, first);
    // (OVS counts a flow's packets when its revalidators next run: polled.)
    poll("a's flow on hv1 counting the second ping", || {
        (flow_field(&request_flow()?, "n_packets=") == Some("1")).then_some(())
    })
    .await;
    let again = lab.api.metrics().await;
    assert_eq!(
        again.count("strowger_packet_ins_total", &[])
            - after.count("strowger_packet_ins_total", &[]),
        0.0,
        "the second ping came to the controller"
    );

    // b answers: the reply goes by that flow (it counts one packet) and reaches a, routed.
    lab.send(&b.vm, &pong_from(b, R2_MAC, a.ip, 1));
    lab.arrives(&a.vm, "b's echo reply at a", |f| {
        (f.len() > 34 && f[23] == 1 && f[34] == 0 && f[22] == 63 && f[0..6] == a.mac).then_some(())
    })
    .await;
    let cookie = flow_field(&flow, "cookie=").unwrap().to_string();
    poll("the reply flow counting b's reply", || {
        let now = reply_flow()?;
        (flow_field(&now, "cookie=") == Some(&cookie)
            && flow_field(&now, "n_packets=") == Some("1"))
        .then_some(())
    })
    .await;
    assert_eq!(
        lab.api
            .metrics()
            .await
            .count("strowger_packet_ins_total", &[])
            - again.count("strowger_packet_ins_total", &[]),
        0.0,
        "b's reply came to the controller"
    );
    assert!(lab.oracle().await >= 3);
}

/// A flow the switch idles out leaves the engine's records too: the engine recognises its own
/// flow in OVS's `FLOW_REMOVED` (by cookie, priority and match, whatever order the switch lists
/// the fields in). A record it did not recognise would stay for ever, in memory and in
/// `strowger_flows`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_the_switch_idles_out_leave_the_engine() {
    let net = Routed::start_args("vxlan", &["--flow-idle-timeout", "3"]).await;
    let lab = &net.lab;
    net.ask_b(1).await;
    net.answer_b(1).await;
    let flow = poll("hv1's flow a → b", || net.flow_a_to_b()).await;
    assert!(flow.contains("idle_timeout=3"), "{flow}");
    let cookie = flow_field(&flow, "cookie=").unwrap().to_string();
    let explain = |c: String| async move {
        lab.api
            .call(reqwest::Method::GET, &format!("/flows/{c}"), None)
            .await
            .0
    };
    assert_eq!(explain(cookie.clone()).await, reqwest::StatusCode::OK);
    // OVS removes it after 3 idle seconds (and its next idle sweep).
    poll_within(Duration::from_secs(60), || {
        net.flow_a_to_b().is_none().then_some(())
    })
    .await
    .expect("the flow idled out on hv1");
    let deadline = tokio::time::Instant::now() + LAB_WAIT;
    while explain(cookie.clone()).await != reqwest::StatusCode::NOT_FOUND {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the engine still has flow {cookie} after the switch removed it"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_one_gets_time_exceeded_with_and_without_a_flow() {
    let net = Routed::start("vxlan").await;
    let (lab, a, b) = (&net.lab, &net.a, &net.b);
    let r1 = (R1_MAC, R1_IP);

    // No flow yet: the packet-in is simulated and expires at the router.
    let expiring = udp_from(a, R1_MAC, b.ip, 1, 10);
    lab.send(&a.vm, &expiring);
    lab.arrives(&a.vm, "time exceeded for the first TTL 1 packet", |f| {
        icmp_error_about(f, a, r1, (11, 0), &expiring)
    })
    .await;

    // With the flow in, its dec_ttl finds TTL 1 and OVS hands the packet over as invalid_ttl.
    net.ask_b(11).await;
    net.answer_b(11).await;
    let flow = poll("hv1's flow a → b", || net.flow_a_to_b()).await;
    assert!(flow.contains("dec_ttl"), "{flow}");
    let cookie = flow_field(&flow, "cookie=").unwrap().to_string();
    let before: u64 = flow_field(&flow, "n_packets=").unwrap().parse().unwrap();
    let expiring = udp_from(a, R1_MAC, b.ip, 1, 12);
    lab.send(&a.vm, &expiring);
    lab.arrives(
        &a.vm,
        "time exceeded for the TTL 1 packet that met the flow",
        |f| icmp_error_about(f, a, r1, (11, 0), &expiring),
    )
    .await;
    poll("the flow counting the expired packet", || {
        let now = net.flow_a_to_b()?;
        let n: u64 = flow_field(&now, "n_packets=")?.parse().ok()?;
        (flow_field(&now, "cookie=") == Some(&cookie) && n == before + 1).then_some(())
    })
    .await;
    // Neither expired packet reached b: the one routed packet only (and ARP requests).
    assert_eq!(beyond_arp(lab, &b.vm), 1, "{:?}", lab.sent(&b.vm));
    lab.oracle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn df_packets_over_the_mtu_get_frag_needed_with_and_without_a_flow() {
    let net = Routed::start("vxlan").await;
    let (lab, a, b) = (&net.lab, &net.a, &net.b);
    // No flow yet: the simulation refuses it before even resolving b.
    net.frag_needed_for_one_too_big(20).await;
    // With the flow in, its length check hands the big packet over; a packet of exactly the
    // MTU still goes through the flow.
    net.ask_b(21).await;
    net.answer_b(21).await;
    let flow = poll("hv1's flow a → b", || net.flow_a_to_b()).await;
    let before: u64 = flow_field(&flow, "n_packets=").unwrap().parse().unwrap();
    net.frag_needed_for_one_too_big(22).await;
    let fits = udp_of_len((a.mac, R1_MAC), (a.ip, b.ip), 64, 23, usize::from(MTU));
    lab.send(&a.vm, &fits);
    let routed = udp_of_len((R2_MAC, b.mac), (a.ip, b.ip), 63, 23, usize::from(MTU));
    lab.arrives(&b.vm, "the packet of exactly the MTU at b", |f| {
        (f == routed.as_slice()).then_some(())
    })
    .await;
    poll("the flow counting both packets", || {
        let n: u64 = flow_field(&net.flow_a_to_b()?, "n_packets=")?
            .parse()
            .ok()?;
        (n == before + 2).then_some(())
    })
    .await;
    // b got the parked packet and the one that fits (and ARP requests): nothing too big.
    assert_eq!(beyond_arp(lab, &b.vm), 2, "{:?}", lab.sent(&b.vm));
    lab.oracle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_answers_arp_and_echo() {
    let net = Routed::start("vxlan").await;
    let (lab, a) = (&net.lab, &net.a);

    lab.send(&a.vm, &arp_request(a.mac, a.ip.octets(), R1_IP.octets()));
    let reply = lab
        .arrives(&a.vm, "the ARP reply for the gateway", |f| {
            Arp::parse(f).filter(|x| x.op == 2)
        })
        .await;
    assert_eq!(
        reply,
        Arp {
            eth_src: R1_MAC,
            eth_dst: a.mac,
            op: 2,
            sha: R1_MAC,
            spa: R1_IP,
            tha: a.mac,
            tpa: a.ip,
        }
    );

    // Echo to the router's address on a's side, then to its address on the other side.
    for (seq, ip) in [(1, R1_IP), (2, R2_IP)] {
        let request = ping_from(a, R1_MAC, ip, seq);
        lab.send(&a.vm, &request);
        let reply = lab
            .arrives(&a.vm, "the echo reply", |f| {
                let r = Ip::parse(f)?;
                (r.icmp()?.0 == 0 && r.src == ip).then_some(r)
            })
            .await;
        assert_eq!(
            (reply.eth_src, reply.eth_dst, reply.dst),
            (R1_MAC, a.mac, a.ip)
        );
        let (_, code, rest) = reply.icmp().unwrap();
        // Same identifier, sequence and data as the request.
        assert_eq!((code, rest), (0, &request[14 + 20 + 4..]));
    }
    assert_eq!(lab.sent(&a.vm).len(), 3, "one answer each");
    lab.oracle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_gets_net_unreachable_and_reject_admin_prohibited() {
    let net = Routed::start("vxlan").await;
    let (lab, a) = (&net.lab, &net.a);
    let r1 = (R1_MAC, R1_IP);

    let lost = ping_from(a, R1_MAC, Ipv4Addr::new(192, 0, 2, 1), 1);
    lab.send(&a.vm, &lost);
    lab.arrives(&a.vm, "net unreachable", |f| {
        icmp_error_about(f, a, r1, (3, 0), &lost)
    })
    .await;

    // A reject route answers 3/13. Written with `?wait=true`: when it answers, the engine has
    // the route and every switch has its invalidations, so the very next ping is refused.
    net.lab
        .api
        .post(
            &format!("/routers/{}/routes?wait=true", net.router),
            json!({"dst": "198.51.100.0/24", "type": "reject"}),
        )
        .await;
    let refused = ping_from(a, R1_MAC, Ipv4Addr::new(198, 51, 100, 7), 2);
    lab.send(&a.vm, &refused);
    lab.arrives(&a.vm, "3/13 for the rejected ping", |f| {
        icmp_error_about(f, a, r1, (3, 13), &refused)
    })
    .await;
    assert!(
        !lab.sent(&a.vm)
            .iter()
            .any(|h| icmp_error_about(&unhex(h), a, r1, (3, 0), &refused).is_some()),
        "net unreachable after the reject route was applied"
    );
}

/// A DHCP client message of type `typ` from `mac` (broadcast, no broadcast flag), with
/// options 50 (requested address) and 54 (server) when given.
fn dhcp_client(
    mac: [u8; 6],
    xid: u32,
    typ: u8,
    requested: Option<Ipv4Addr>,
    server: Option<Ipv4Addr>,
) -> Vec<u8> {
    let mut m = vec![1, 1, 6, 0];
    m.extend_from_slice(&xid.to_be_bytes());
    m.extend_from_slice(&[0; 4]); // secs, flags
    m.extend_from_slice(&[0; 16]); // ciaddr, yiaddr, siaddr, giaddr
    m.extend_from_slice(&mac);
    m.extend_from_slice(&[0; 10 + 64 + 128]); // chaddr padding, sname, file
    m.extend_from_slice(&[99, 130, 83, 99, 53, 1, typ]);
    for (code, ip) in [(50, requested), (54, server)] {
        if let Some(ip) = ip {
            m.extend_from_slice(&[code, 4]);
            m.extend_from_slice(&ip.octets());
        }
    }
    m.extend_from_slice(&[55, 6, 1, 3, 6, 26, 51, 121, 255]);
    let len = (8 + m.len()) as u16;
    let mut u = 68u16.to_be_bytes().to_vec();
    u.extend_from_slice(&67u16.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]); // no checksum (allowed over IPv4)
    u.extend_from_slice(&m);
    let mut f = ipv4(
        mac,
        BROADCAST,
        (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST),
        64,
        0,
        17,
        &u,
    );
    // DHCP clients do not set DF; clear it and fix the header checksum.
    f[20] = 0;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// A server's DHCP reply to `mac`, transaction `xid`: the IP layer and the raw BOOTP message.
fn dhcp_reply(f: &[u8], mac: [u8; 6], xid: u32) -> Option<(Ip, Vec<u8>)> {
    let ip = Ip::parse(f)?;
    let bootp = ip.udp(67, 68)?.to_vec();
    let p = DhcpPacket::new_checked(&bootp[..]).ok()?;
    (p.transaction_id() == xid && p.client_hardware_address().0 == mac).then_some((ip, bootp))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcp_offers_and_acks_static_hosts_only() {
    let net = Routed::start("vxlan").await;
    let (lab, a, d) = (&net.lab, &net.a, &net.d);
    let subnet = lab
        .api
        .post(
            &format!("/bridges/{}/dhcp?wait=true", net.net1),
            json!({
                "subnet": "10.0.1.0/24",
                "gateway": R1_IP.to_string(),
                "dns_servers": ["10.0.0.53", "10.0.0.54"],
                "mtu": 1400,
                "opt121_routes": [{"dest": "192.168.50.0/24", "gateway": R1_IP.to_string()}],
                "enabled": true,
            }),
        )
        .await;
    let sid = subnet["id"].as_str().unwrap();
    lab.api
        .post(
            &format!("/bridges/{}/dhcp/{sid}/hosts?wait=true", net.net1),
            json!({"mac": mac_str(d.mac), "ip": d.ip.to_string(), "name": "vm-d"}),
        )
        .await;

    // DISCOVER → OFFER. Both writes waited until applied: one DISCOVER is answered.
    let xid = 0x5354_0001;
    lab.send(&d.vm, &dhcp_client(d.mac, xid, 1, None, None));
    let (ip, bootp) = lab
        .arrives(&d.vm, "a DHCP OFFER", |f| dhcp_reply(f, d.mac, xid))
        .await;
    check_dhcp(&ip, &bootp, d, DhcpMessageType::Offer);

    // REQUEST for the offered address → ACK with the same lease.
    let xid = 0x5354_0002;
    lab.send(&d.vm, &dhcp_client(d.mac, xid, 3, Some(d.ip), Some(R1_IP)));
    let (ip, bootp) = lab
        .arrives(&d.vm, "the DHCP ACK", |f| dhcp_reply(f, d.mac, xid))
        .await;
    check_dhcp(&ip, &bootp, d, DhcpMessageType::Ack);

    // REQUEST for another address → NAK, by broadcast.
    let xid = 0x5354_0003;
    lab.send(
        &d.vm,
        &dhcp_client(
            d.mac,
            xid,
            3,
            Some(Ipv4Addr::new(10, 0, 1, 99)),
            Some(R1_IP),
        ),
    );
    let (ip, bootp) = lab
        .arrives(&d.vm, "the DHCP NAK", |f| dhcp_reply(f, d.mac, xid))
        .await;
    let p = DhcpPacket::new_checked(&bootp[..]).unwrap();
    let repr = DhcpRepr::parse(&p).expect("a DHCP message");
    assert_eq!(repr.message_type, DhcpMessageType::Nak);
    assert_eq!((ip.eth_dst, ip.dst), (BROADCAST, Ipv4Addr::BROADCAST));
    assert_eq!(repr.server_identifier, Some(R1_IP));

    // a's MAC is no static host: its DISCOVER gets no answer. The probe after it (an ARP for
    // the gateway) is handled after the DISCOVER, so once its answer is there, a DHCP reply
    // would be too.
    let xid = 0x5354_0004;
    lab.send(&a.vm, &dhcp_client(a.mac, xid, 1, None, None));
    lab.send(&a.vm, &arp_request(a.mac, a.ip.octets(), R1_IP.octets()));
    lab.arrives(&a.vm, "the probe's ARP reply", |f| {
        Arp::parse(f).filter(|x| x.op == 2)
    })
    .await;
    let replies: Vec<String> = lab
        .sent(&a.vm)
        .into_iter()
        .filter(|h| Ip::parse(&unhex(h)).is_some_and(|ip| ip.udp(67, 68).is_some()))
        .collect();
    assert_eq!(
        replies,
        Vec::<String>::new(),
        "DHCP answered an unknown MAC"
    );
    // Nor was the DISCOVER flooded to the other VM on the bridge.
    let flooded = lab
        .sent(&d.vm)
        .into_iter()
        .filter(|h| Ip::parse(&unhex(h)).is_some_and(|ip| ip.udp(68, 67).is_some()))
        .count();
    assert_eq!(flooded, 0, "a DISCOVER was flooded to d");
    lab.oracle().await;
}

/// Every field of an OFFER or ACK for `g` from the router port r1 as server.
fn check_dhcp(ip: &Ip, bootp: &[u8], g: &Guest, typ: DhcpMessageType) {
    // Unicast to the client's MAC and offered address (it did not ask for broadcast).
    assert_eq!(
        (ip.eth_src, ip.eth_dst, ip.src, ip.dst),
        (R1_MAC, g.mac, R1_IP, g.ip),
        "DHCP {typ:?} addressing"
    );
    let p = DhcpPacket::new_checked(bootp).expect("BOOTP");
    let repr = DhcpRepr::parse(&p).expect("a DHCP message");
    assert_eq!(repr.message_type, typ);
    assert_eq!(p.opcode(), smoltcp::wire::DhcpOpCode::Reply);
    assert_eq!(repr.your_ip, g.ip);
    assert_eq!(repr.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(repr.router, Some(R1_IP));
    assert_eq!(
        repr.dns_servers.as_deref(),
        Some(&[Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(10, 0, 0, 54)][..])
    );
    assert_eq!(repr.server_identifier, Some(R1_IP));
    let lease = repr.lease_duration.expect("a lease time");
    assert!(lease >= 60, "lease {lease}");
    assert_eq!(repr.renew_duration, Some(lease / 2));
    let option = |kind: u8| {
        p.options()
            .find(|o| o.kind == kind)
            .map(|o| o.data.to_vec())
    };
    assert_eq!(option(26), Some(1400u16.to_be_bytes().to_vec()), "MTU");
    assert_eq!(option(12).as_deref(), Some(&b"vm-d"[..]), "host name");
    // Option 121 (RFC 3442): the configured route, and the default route with it since a
    // client that takes 121 ignores option 3.
    let routes = option(121).expect("option 121");
    let mut want = vec![24, 192, 168, 50];
    want.extend_from_slice(&R1_IP.octets());
    want.push(0);
    want.extend_from_slice(&R1_IP.octets());
    assert_eq!(routes, want, "classless routes");
}
