//! Router, ARP and ICMP tests: fixture + frames → frames and flows, on the in-memory fabric.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use ipnet::IpNet;
use ofproto::{Action, Instruction, OxmField};
use topology::model::{Port, Route, RouteType, Router};
use uuid::Uuid;

use super::*;
use crate::harness::fixtures::{self, bridge_port, host, router_port};
use crate::harness::{frames, Fabric};

fn vm_mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0xaa, n]
}

fn router(name: &str) -> Router {
    Router {
        tenant_id: Some("acme".into()),
        ..fixtures::router(name)
    }
}

const RP1_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const RP2_MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];

/// hv1, hv2, hv3; router r: rp1 10.0.1.1/24 ↔ net1, rp2 10.0.2.1/24 ↔ net2.
/// VMs: a on net1 at hv1 (10.0.1.10), b on net2 at hv2 (10.0.2.20), c on net2 at hv1
/// (10.0.2.30), d on net1 at hv3 (10.0.1.40).
struct Lab {
    f: Fabric,
    hv: [u64; 3],
    r: Uuid,
    rp: [Uuid; 2],
    net: [Uuid; 2],
    /// a, b, c, d: logical port and ofport.
    vm: [(Uuid, u32); 4],
}

fn lab() -> Lab {
    lab_with(Config::default())
}

fn lab_with(config: Config) -> Lab {
    let network = topology::Network::open(Arc::new(topology::MemStore::new())).unwrap();
    let (hosts, r, rp, net, vms) = network
        .write(|t| {
            let hosts = [
                t.create_host(host("hv1"))?.id,
                t.create_host(host("hv2"))?.id,
                t.create_host(host("hv3"))?.id,
            ];
            let r = t.create_router(router("r"))?.id;
            let net = [
                t.create_bridge(fixtures::bridge("net1", Some("acme")))?.id,
                t.create_bridge(fixtures::bridge("net2", Some("acme")))?.id,
            ];
            let rp = [
                t.create_port(r, router_port("10.0.1.1/24", RP1_MAC))?.id,
                t.create_port(r, router_port("10.0.2.1/24", RP2_MAC))?.id,
            ];
            for i in 0..2 {
                let bp = t.create_port(net[i], bridge_port())?.id;
                t.link(rp[i], bp)?;
            }
            let on = [0, 1, 1, 0];
            let mut vms = [Uuid::nil(); 4];
            for (i, v) in vms.iter_mut().enumerate() {
                *v = t.create_port(net[on[i]], bridge_port())?.id;
            }
            Ok((hosts, r, rp, net, vms))
        })
        .unwrap()
        .0;
    let mut f = Fabric::new(network, Engine::new(config));
    f.sync();
    let hv = hosts.map(|h| f.add_switch(h));
    f.mesh();
    let place = [0, 1, 0, 2];
    let mut vm = [(Uuid::nil(), 0); 4];
    for i in 0..4 {
        vm[i] = (
            vms[i],
            f.plug(hv[place[i]], &format!("vm{i}"), Some(vms[i])),
        );
    }
    Lab {
        f,
        hv,
        r,
        rp,
        net,
        vm,
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn udp(src: [u8; 6], dst: [u8; 6], ip_src: &str, ip_dst: &str, ttl: u8, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src, dst)
        .ipv4(ip(ip_src).octets(), ip(ip_dst).octets(), ttl)
        .udp(40000, dport);
    let mut out = Vec::new();
    b.write(&mut out, b"strowger-payload").unwrap();
    out
}

fn echo(src: [u8; 6], dst: [u8; 6], ip_src: &str, ip_dst: &str, ttl: u8) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src, dst)
        .ipv4(ip(ip_src).octets(), ip(ip_dst).octets(), ttl)
        .icmpv4_echo_request(7, 1);
    let mut out = Vec::new();
    b.write(&mut out, b"ping").unwrap();
    out
}

fn arp_reply(sha: [u8; 6], spa: &str, tha: [u8; 6], tpa: &str) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&ip(spa).octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&ip(tpa).octets());
    f
}

/// The ICMP (type, code) of a frame, and its IPv4 source and destination.
fn icmp_of(frame: &[u8]) -> Option<(u8, u8, Ipv4Addr, Ipv4Addr)> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return None;
    };
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        return None;
    };
    // The checksum must be right: a real host drops the frame otherwise.
    let want = icmp.icmp_type().calc_checksum(icmp.payload());
    assert_eq!(icmp.checksum(), want, "ICMP checksum");
    Some((
        icmp.type_u8(),
        icmp.code_u8(),
        ip.header().source_addr(),
        ip.header().destination_addr(),
    ))
}

/// Delivered frames that are ARP requests, as (dpid, ofport, target).
fn arp_requests(got: &[(u64, u32, Vec<u8>)]) -> Vec<(u64, u32, Ipv4Addr)> {
    got.iter()
        .filter_map(|(d, p, f)| {
            let h = flowkey::Header::parse(f)?;
            let a = h.arp?;
            (a.op == 1).then_some((*d, *p, a.tpa))
        })
        .collect()
}

impl Lab {
    /// b answers the router's ARP for 10.0.2.20.
    fn b_answers(&mut self) {
        let (hv, of) = (self.hv[1], self.vm[1].1);
        self.f.send(
            hv,
            of,
            arp_reply(vm_mac(2), "10.0.2.20", RP2_MAC, "10.0.2.1"),
        );
    }
}

#[test]
fn first_packet_parks_until_arp_answers_then_is_routed_with_ttl_and_macs_rewritten() {
    let mut l = lab();
    let (hv1, hv2) = (l.hv[0], l.hv[1]);
    let frame = udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64, 5001);
    l.f.send(hv1, l.vm[0].1, frame.clone());
    // The router asks for 10.0.2.20 on net2: b (hv2) and c (hv1) hear it; nothing else moves.
    let got = l.f.take_delivered();
    let mut reqs = arp_requests(&got);
    reqs.sort();
    let mut want = vec![
        (hv1, l.vm[2].1, ip("10.0.2.20")),
        (hv2, l.vm[1].1, ip("10.0.2.20")),
    ];
    want.sort();
    assert_eq!(reqs, want, "{got:?}");
    assert_eq!(got.len(), 2);
    let req = &got[0].2;
    assert_eq!(&req[6..12], &RP2_MAC, "asked from the egress port's MAC");
    assert_eq!(&req[28..32], &[10, 0, 2, 1], "and its address");
    assert!(
        l.f.cache(hv1).is_empty(),
        "a parked packet installs nothing"
    );

    l.b_answers();
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1, "{got:?}");
    let (d, p, out) = &got[0];
    assert_eq!((*d, *p), (hv2, l.vm[1].1));
    // Byte for byte: new MACs, TTL 63, checksum updated, the rest untouched.
    let mut expect = frame.clone();
    expect[0..6].copy_from_slice(&vm_mac(2));
    expect[6..12].copy_from_slice(&RP2_MAC);
    expect[22] = 63;
    let ip_hdr = etherparse::Ipv4HeaderSlice::from_slice(&expect[14..]).unwrap();
    let ck = ip_hdr.to_header().calc_header_checksum();
    expect[24..26].copy_from_slice(&ck.to_be_bytes());
    assert_eq!(out, &expect);

    // The flow on hv1: dec_ttl first, MACs, one tunnel copy to b's key; dst exact (on-link).
    let cache = l.f.cache(hv1);
    assert_eq!(cache.len(), 1);
    let acts = cache[0].actions();
    assert_eq!(acts[0], Action::DecNwTtl);
    assert!(acts.contains(&Action::SetField(OxmField::EthDst {
        value: vm_mac(2),
        mask: None
    })));
    assert!(cache[0].match_.fields.contains(&OxmField::Ipv4Dst {
        value: ip("10.0.2.20"),
        mask: None
    }));
    // The source MAC is the ingress bridge's (learning); routing reads no source address.
    assert!(
        !cache[0]
            .match_
            .fields
            .iter()
            .any(|f| matches!(f, OxmField::Ipv4Src { .. })),
        "{:?}",
        cache[0].match_
    );
    // The next packet goes by the flow.
    let n = l.f.packet_ins;
    l.f.send(hv1, l.vm[0].1, frame);
    assert_eq!(l.f.packet_ins, n);
    assert_eq!(l.f.take_delivered().len(), 1);
    assert_eq!(l.f.oracle(), 1);
    // The ARP table shows it.
    let Some(crate::Answer::ArpTable(t)) =
        l.f.engine
            .query(l.f.now, &crate::Query::ArpTable { router: l.r })
    else {
        panic!("no ARP table");
    };
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].ip, t[0].mac, t[0].state),
        (ip("10.0.2.20"), Some(vm_mac(2)), crate::ArpState::Reachable)
    );
}

#[test]
fn a_hundred_packets_while_unresolved_cause_one_request_then_host_unreachable() {
    let mut l = lab();
    let hv1 = l.hv[0];
    for i in 0..100u16 {
        let frame = udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.99", 64, 6000 + i);
        l.f.send(hv1, l.vm[0].1, frame);
    }
    let got = l.f.take_delivered();
    assert_eq!(arp_requests(&got).len(), 2, "one request, heard by b and c");
    assert_eq!(got.len(), 2);
    assert_eq!(l.f.engine.arp().parked(), 4);
    // Retries: one per interval, whatever arrives meanwhile.
    let mut requests = 1;
    for _ in 0..40 {
        l.f.advance(Duration::from_millis(250));
        let frame = udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.99", 64, 7000);
        l.f.send(hv1, l.vm[0].1, frame);
        let got = l.f.take_delivered();
        requests += arp_requests(&got).len() / 2;
        let unreachable: Vec<_> = got
            .iter()
            .filter_map(|(_, p, f)| icmp_of(f).map(|i| (*p, i)))
            .collect();
        if !unreachable.is_empty() {
            // Failed: every parked packet is answered host unreachable from the ingress port.
            assert!(unreachable.iter().all(|(p, (t, c, s, d))| *p == l.vm[0].1
                && (*t, *c) == (3, 1)
                && *s == ip("10.0.1.1")
                && *d == ip("10.0.1.10")));
            // The 4 parked ones; the packet sent in the same tick already meets the drop flow.
            assert_eq!(unreachable.len(), 4);
            break;
        }
    }
    assert_eq!(requests, 3, "three attempts");
    // A short drop flow now holds the rest back, tagged with the entry.
    let cache = l.f.cache(hv1);
    assert_eq!(cache.len(), 1);
    assert!(cache[0].actions().is_empty());
    assert_eq!(l.f.oracle(), 1);
    // When the address answers after all (a gratuitous ARP is not enough; a reply to us is),
    // the drop flow goes.
    l.f.send(
        l.hv[1],
        l.vm[1].1,
        arp_reply(vm_mac(9), "10.0.2.99", RP2_MAC, "10.0.2.1"),
    );
    assert!(
        l.f.cache(hv1).is_empty(),
        "the failed entry's drop flow is invalidated"
    );
}

#[test]
fn ttl_one_gets_time_exceeded_from_the_ingress_port_also_through_an_installed_flow() {
    let mut l = lab();
    let hv1 = l.hv[0];
    let a = l.vm[0].1;
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64, 1),
    );
    l.b_answers();
    l.f.take_delivered();
    assert_eq!(l.f.cache(hv1).len(), 1);
    // A traceroute probe with TTL 1 matches the flow: its dec_ttl hands it to the controller.
    let n = l.f.packet_ins;
    let probe = udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 1, 1);
    l.f.send(hv1, a, probe.clone());
    assert_eq!(l.f.packet_ins, n + 1);
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, a);
    let (t, c, s, d) = icmp_of(&got[0].2).expect("ICMP");
    assert_eq!((t, c, s, d), (11, 0, ip("10.0.1.1"), ip("10.0.1.10")));
    assert_eq!(&got[0].2[6..12], &RP1_MAC);
    // It quotes the probe's IP header and 8 bytes of UDP (traceroute matches on them).
    let quoted = &got[0].2[14 + 20 + 8..];
    assert_eq!(&quoted[..28], &probe[14..14 + 28]);
    assert_eq!(l.f.cache(hv1).len(), 1, "no flow for the expired packet");
    assert_eq!(l.f.oracle(), 1);
}

#[test]
fn the_router_answers_arp_and_echo_for_its_addresses() {
    let mut l = lab();
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    l.f.send(
        hv1,
        a,
        frames::arp_request(vm_mac(1), [10, 0, 1, 10], [10, 0, 1, 1]),
    );
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1);
    let h = flowkey::Header::parse(&got[0].2).unwrap();
    let arp = h.arp.unwrap();
    assert_eq!((arp.op, arp.sha, arp.spa), (2, RP1_MAC, ip("10.0.1.1")));
    assert_eq!(h.eth_dst, vm_mac(1));
    // Echo to the near and the far address of the router.
    for target in ["10.0.1.1", "10.0.2.1"] {
        l.f.send(hv1, a, echo(vm_mac(1), RP1_MAC, "10.0.1.10", target, 64));
        let got = l.f.take_delivered();
        assert_eq!(got.len(), 1, "{target}");
        let (t, c, s, d) = icmp_of(&got[0].2).unwrap();
        assert_eq!((t, c, s, d), (0, 0, ip(target), ip("10.0.1.10")));
        assert_eq!(&got[0].2[6..12], &RP1_MAC);
    }
    // UDP to the router: port unreachable (traceroute's last hop when it is the router).
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.1", 64, 33434),
    );
    let got = l.f.take_delivered();
    assert_eq!(icmp_of(&got[0].2).map(|i| (i.0, i.1)), Some((3, 3)));
    // The ARP and echo answers install flows that send what they match here (so OVS caches
    // their fields exactly); the port unreachable, which a TTL might have decided, none.
    let answers = l.f.cache(hv1);
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(answers.iter().all(|e| e.is_answer_flow()), "{answers:?}");
    assert_eq!(*l.f.engine.stats().answers.get("echo_reply").unwrap(), 2);
    // Another echo comes by its answer's flow, is answered again, and its flow is not re-sent.
    let (n, installed) = (l.f.packet_ins, l.f.engine.stats().flows_installed);
    l.f.send(
        hv1,
        a,
        echo(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.1", 64),
    );
    assert_eq!(l.f.take_delivered().len(), 1);
    assert_eq!(l.f.packet_ins, n + 1);
    assert_eq!(l.f.engine.stats().flows_installed, installed);
    assert_eq!(l.f.oracle(), 3);
    // From outside the subnet: no answer (flooded on net1 like any ARP: d hears it).
    l.f.send(
        hv1,
        a,
        frames::arp_request(vm_mac(1), [10, 9, 9, 9], [10, 0, 1, 1]),
    );
    let got = l.f.take_delivered();
    assert!(got
        .iter()
        .all(|(_, _, f)| flowkey::Header::parse(f).unwrap().arp.unwrap().op == 1));
    assert_eq!(got.len(), 1, "d hears it");
    assert_eq!(l.f.oracle(), 1 + l.f.answer_flows());
}

/// A route to `dst` from anywhere, weight 100.
fn route(dst: &str, rtype: RouteType, port: Option<Uuid>, gw: Option<&str>) -> Route {
    Route {
        id: Uuid::nil(),
        router_id: Uuid::nil(),
        dst: dst.parse().unwrap(),
        src: "0.0.0.0/0".parse().unwrap(),
        next_hop_port: port,
        next_hop_gateway: gw.map(|g| g.parse().unwrap()),
        route_type: rtype,
        weight: 100,
    }
}

fn add_route(l: &mut Lab, dst: &str, rtype: RouteType, port: Option<Uuid>, gw: Option<&str>) {
    let r = l.r;
    l.f.write(|t| t.create_route(r, route(dst, rtype, port, gw)));
}

#[test]
fn no_route_blackhole_and_reject() {
    let mut l = lab();
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "8.8.8.8", 64, 53),
    );
    let got = l.f.take_delivered();
    assert_eq!(
        icmp_of(&got[0].2).map(|i| (i.0, i.1, i.2)),
        Some((3, 0, ip("10.0.1.1")))
    );
    add_route(&mut l, "8.8.0.0/16", RouteType::Reject, None, None);
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "8.8.8.8", 64, 53),
    );
    let got = l.f.take_delivered();
    assert_eq!(icmp_of(&got[0].2).map(|i| (i.0, i.1)), Some((3, 13)));
    add_route(&mut l, "8.8.8.0/24", RouteType::Blackhole, None, None);
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "8.8.8.8", 64, 53),
    );
    assert!(l.f.take_delivered().is_empty(), "blackholes are silent");
    let cache = l.f.cache(hv1);
    assert_eq!(cache.len(), 1);
    assert!(cache[0].actions().is_empty());
    assert!(cache[0].match_.fields.contains(&OxmField::Ipv4Dst {
        value: ip("8.8.8.0"),
        mask: Some(ip("255.255.255.0"))
    }));
    assert_eq!(l.f.oracle(), 1);
    // A new route changes the router: its flows go.
    add_route(&mut l, "8.8.8.8/32", RouteType::Reject, None, None);
    assert!(l.f.cache(hv1).is_empty());
}

#[test]
fn a_gateway_route_matches_the_prefix_not_the_address() {
    let mut l = lab();
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    // c (hv1, net2) is the gateway to 192.168.0.0/16.
    let rp2 = l.rp[1];
    add_route(
        &mut l,
        "192.168.0.0/16",
        RouteType::Normal,
        Some(rp2),
        Some("10.0.2.30"),
    );
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "192.168.1.1", 64, 1),
    );
    l.f.take_delivered();
    l.f.send(
        l.hv[0],
        l.vm[2].1,
        arp_reply(vm_mac(3), "10.0.2.30", RP2_MAC, "10.0.2.1"),
    );
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].1, &got[0].2[0..6]), (l.vm[2].1, &vm_mac(3)[..]));
    // Another address under the prefix takes the same flow.
    let n = l.f.packet_ins;
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "192.168.77.5", 64, 1),
    );
    assert_eq!(l.f.packet_ins, n);
    assert_eq!(l.f.take_delivered().len(), 1);
    let cache = l.f.cache(hv1);
    assert_eq!(cache.len(), 1);
    assert!(cache[0].match_.fields.contains(&OxmField::Ipv4Dst {
        value: ip("192.168.0.0"),
        mask: Some(ip("255.255.0.0"))
    }));
    assert_eq!(l.f.oracle(), 1);
}

#[test]
fn ecmp_spreads_by_five_tuple_and_is_stable() {
    let mut l = lab();
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    let rp2 = l.rp[1];
    add_route(
        &mut l,
        "172.16.0.0/12",
        RouteType::Normal,
        Some(rp2),
        Some("10.0.2.20"),
    );
    let rp2 = l.rp[1];
    add_route(
        &mut l,
        "172.16.0.0/12",
        RouteType::Normal,
        Some(rp2),
        Some("10.0.2.30"),
    );
    l.f.send(
        l.hv[1],
        l.vm[1].1,
        arp_reply(vm_mac(2), "10.0.2.20", RP2_MAC, "10.0.2.1"),
    );
    l.f.send(
        hv1,
        l.vm[2].1,
        arp_reply(vm_mac(3), "10.0.2.30", RP2_MAC, "10.0.2.1"),
    );
    l.f.take_delivered();
    let mut via = std::collections::BTreeMap::new();
    for port in 0..32u16 {
        for _ in 0..2 {
            let f = udp(
                vm_mac(1),
                RP1_MAC,
                "10.0.1.10",
                "172.16.5.5",
                64,
                1000 + port,
            );
            l.f.send(hv1, a, f);
            let got = l.f.take_delivered();
            assert_eq!(got.len(), 1);
            let prev = via.insert(port, got[0].2[0..6].to_vec());
            assert!(
                prev.is_none_or(|p| p == got[0].2[0..6]),
                "a flow changed its path"
            );
        }
    }
    let distinct: std::collections::BTreeSet<_> = via.values().collect();
    assert_eq!(distinct.len(), 2, "both next hops carry traffic");
    assert_eq!(l.f.oracle(), 32);
}

fn big(payload: usize, df: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(vm_mac(1), RP1_MAC)
        .ipv4(ip("10.0.1.10").octets(), ip("10.0.2.20").octets(), 64)
        .udp(1, 2);
    let mut f = Vec::new();
    b.write(&mut f, &vec![0u8; payload]).unwrap();
    if df {
        f[14 + 6] |= 0x40;
    }
    let ck = etherparse::Ipv4HeaderSlice::from_slice(&f[14..])
        .unwrap()
        .to_header()
        .calc_header_checksum();
    f[24..26].copy_from_slice(&ck.to_be_bytes());
    f
}

#[test]
fn df_packets_larger_than_the_network_mtu_get_fragmentation_needed() {
    let mut l = lab();
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    let too_big = big(1472, true); // 1500 bytes of IP
    l.f.send(hv1, a, too_big.clone());
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1);
    let (t, c, _, _) = icmp_of(&got[0].2).unwrap();
    assert_eq!((t, c), (3, 4));
    // Next-hop MTU in bytes 6..8 of the ICMP header.
    assert_eq!(&got[0].2[14 + 20 + 6..14 + 20 + 8], &1450u16.to_be_bytes());
    // A small packet installs the routed flow; it checks the length of what follows.
    l.f.send(hv1, a, big(100, true));
    l.b_answers();
    let got = l.f.take_delivered();
    let routed = |g: &&(u64, u32, Vec<u8>)| {
        (g.0, g.1) == (l.hv[1], l.vm[1].1) && flowkey::Header::parse(&g.2).unwrap().arp.is_none()
    };
    assert_eq!(got.iter().filter(routed).count(), 1, "routed after the ARP");
    let cache = l.f.cache(hv1);
    assert_eq!(cache.len(), 1);
    assert!(matches!(
        cache[0].instructions[..],
        [
            Instruction::ApplyActions(_),
            Instruction::WriteActions(_),
            Instruction::GotoTable(21)
        ]
    ));
    // Exactly the MTU passes by the flow; one byte more is sent to the controller (table 21),
    // which answers fragmentation needed.
    let n = l.f.packet_ins;
    l.f.send(hv1, a, big(1450 - 28, true));
    assert_eq!(l.f.packet_ins, n);
    assert_eq!(l.f.take_delivered()[0].2.len(), 14 + 1450);
    l.f.send(hv1, a, big(1450 - 28 + 1, true));
    assert_eq!(l.f.packet_ins, n + 1);
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(icmp_of(&got[0].2).map(|i| (i.0, i.1)), Some((3, 4)));
    // Without DF the router passes it on (the slow way: it cannot fragment).
    l.f.send(hv1, a, big(1472, false));
    let got = l.f.take_delivered();
    assert_eq!((got.len(), got[0].1), (1, l.vm[1].1));
    assert_eq!(l.f.oracle(), 1);
}

/// r (tenant) ↔ provider router p over a router-to-router link; p routes to net3 (hv3).
#[test]
fn two_routers_in_a_row_route_across_their_link() {
    let mut l = lab();
    let (r, hv3) = (l.r, l.hv[2]);
    let (p, e, net3) = l.f.write(|t| {
        let p = t.create_router(router("provider"))?.id;
        let up = t
            .create_port(r, router_port("169.254.0.1/30", [2, 0, 0, 0, 9, 1]))?
            .id;
        let down = t
            .create_port(p, router_port("169.254.0.2/30", [2, 0, 0, 0, 9, 2]))?
            .id;
        t.link(up, down)?;
        let net3 = t.create_bridge(fixtures::bridge("ext", None))?.id;
        let pp = t
            .create_port(p, router_port("203.0.113.1/24", [2, 0, 0, 0, 9, 3]))?
            .id;
        let bp = t.create_port(net3, bridge_port())?.id;
        t.link(pp, bp)?;
        let e = t.create_port(net3, bridge_port())?.id;
        let default = route(
            "0.0.0.0/0",
            RouteType::Normal,
            Some(up),
            Some("169.254.0.2"),
        );
        t.create_route(r, default)?;
        Ok((p, e, net3))
    });
    let _ = (p, net3);
    let eo = l.f.plug(hv3, "ext0", Some(e));
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "203.0.113.7", 64, 9),
    );
    // p resolves 203.0.113.7 on ext; the external host answers.
    let got = l.f.take_delivered();
    assert_eq!(arp_requests(&got), vec![(hv3, eo, ip("203.0.113.7"))]);
    l.f.send(
        hv3,
        eo,
        arp_reply(vm_mac(7), "203.0.113.7", [2, 0, 0, 0, 9, 3], "203.0.113.1"),
    );
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2[22], 62, "two hops, two decrements");
    assert_eq!(&got[0].2[6..12], &[2, 0, 0, 0, 9, 3]);
    let acts = l.f.cache(hv1)[0].actions();
    assert_eq!(&acts[..2], &[Action::DecNwTtl, Action::DecNwTtl]);
    assert_eq!(l.f.oracle(), 1);
    // TTL 2: the second router's dec_ttl expires it in the first simulation.
    let n = l.f.packet_ins;
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "203.0.113.7", 2, 9),
    );
    assert_eq!(l.f.packet_ins, n + 1);
    let got = l.f.take_delivered();
    assert_eq!(icmp_of(&got[0].2).map(|i| (i.0, i.1)), Some((11, 0)));
}

#[test]
fn bad_input_gets_a_defined_answer_never_a_storm() {
    let mut l = lab();
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    // Truncated ARP to the router's MAC.
    let mut arp = frames::arp_request(vm_mac(1), [10, 0, 1, 10], [10, 0, 1, 1]);
    arp[0..6].copy_from_slice(&RP1_MAC);
    arp.truncate(30);
    l.f.send(hv1, a, arp);
    // Truncated IPv4 to the router's MAC.
    let mut t = udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64, 1);
    t.truncate(20);
    l.f.send(hv1, a, t);
    assert!(l.f.cache(hv1).is_empty(), "garbage installs no flow");
    // A routing loop between two routers: an error drop, not a storm.
    let r = l.r;
    let (up, p) = l.f.write(|t| {
        let p = t.create_router(router("other"))?.id;
        let up = t
            .create_port(r, router_port("169.254.1.1/30", [2, 0, 0, 0, 8, 1]))?
            .id;
        let down = t
            .create_port(p, router_port("169.254.1.2/30", [2, 0, 0, 0, 8, 2]))?
            .id;
        t.link(up, down)?;
        for (router, port, gw) in [(r, up, "169.254.1.2"), (p, down, "169.254.1.1")] {
            t.create_route(
                router,
                route("0.0.0.0/0", RouteType::Normal, Some(port), Some(gw)),
            )?;
        }
        Ok((up, p))
    });
    let _ = (up, p);
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "1.1.1.1", 64, 1),
    );
    assert!(l.f.take_delivered().is_empty());
    assert_eq!(*l.f.engine.stats().drops.get("loop").unwrap(), 1);
    assert_eq!(l.f.cache(hv1).len(), 1, "a short error drop");
    // An admin-down router port drops, tagged: bringing it up removes the drop.
    let rp1 = l.rp[0];
    let mut port = Port::clone(l.f.network.snapshot().get::<Port>(rp1).unwrap());
    port.admin_state_up = false;
    l.f.write(|t| t.update_port(port.clone()));
    l.f.send(
        hv1,
        a,
        echo(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.1.1", 64),
    );
    assert!(l.f.take_delivered().is_empty());
    assert_eq!(*l.f.engine.stats().drops.get("port_down").unwrap(), 1);
    port.admin_state_up = true;
    l.f.write(|t| t.update_port(port));
    l.f.send(
        hv1,
        a,
        echo(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.1.1", 64),
    );
    assert_eq!(l.f.take_delivered().len(), 1);
    let _ = IpNet::default();
}

#[test]
fn tenants_with_overlapping_subnets_route_apart() {
    // Two copies of the same tenant topology: each VM reaches only its own router's side.
    let mut l = lab();
    let hv1 = l.hv[0];
    let (r2, rp2, vms) = l.f.write(|t| {
        let r2 = t.create_router(router("r2"))?.id;
        let n1 = t.create_bridge(fixtures::bridge("n1", Some("other")))?.id;
        let n2 = t.create_bridge(fixtures::bridge("n2", Some("other")))?.id;
        let p1 = t
            .create_port(r2, router_port("10.0.1.1/24", [2, 0, 0, 0, 7, 1]))?
            .id;
        let p2 = t
            .create_port(r2, router_port("10.0.2.1/24", [2, 0, 0, 0, 7, 2]))?
            .id;
        let b1 = t.create_port(n1, bridge_port())?.id;
        let b2 = t.create_port(n2, bridge_port())?.id;
        t.link(p1, b1)?;
        t.link(p2, b2)?;
        let v1 = t.create_port(n1, bridge_port())?.id;
        let v2 = t.create_port(n2, bridge_port())?.id;
        Ok((r2, [p1, p2], [v1, v2]))
    });
    let _ = (r2, rp2);
    let o1 = l.f.plug(hv1, "o1", Some(vms[0]));
    let o2 = l.f.plug(l.hv[1], "o2", Some(vms[1]));
    // The other tenant's 10.0.1.10 (same IP, different MAC) to its 10.0.2.20.
    l.f.send(
        hv1,
        o1,
        udp(
            vm_mac(0x11),
            [2, 0, 0, 0, 7, 1],
            "10.0.1.10",
            "10.0.2.20",
            64,
            1,
        ),
    );
    let got = l.f.take_delivered();
    assert_eq!(arp_requests(&got), vec![(l.hv[1], o2, ip("10.0.2.20"))]);
    l.f.send(
        l.hv[1],
        o2,
        arp_reply(vm_mac(0x22), "10.0.2.20", [2, 0, 0, 0, 7, 2], "10.0.2.1"),
    );
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, got[0].1), (l.hv[1], o2));
    // And tenant acme's b never heard any of it; its own router never learned 10.0.2.20.
    assert!(l.f.engine.arp().neighbour(l.r, ip("10.0.2.20")).is_none());
    let _ = l.net;
    assert_eq!(l.f.oracle(), 1);
}

mod dhcp_fabric {
    use super::*;
    use smoltcp::wire::{DhcpMessageType as WireType, DhcpPacket, DhcpRepr, EthernetAddress};
    use topology::model::{DhcpHost, DhcpSubnet};

    pub(super) fn subnet(prefix: &str, gateway: &str) -> DhcpSubnet {
        DhcpSubnet {
            id: Uuid::nil(),
            bridge_id: Uuid::nil(),
            subnet: prefix.parse().unwrap(),
            gateway: Some(gateway.parse().unwrap()),
            server_addr: None,
            dns_servers: vec!["10.0.0.53".parse().unwrap()],
            mtu: Some(1400),
            opt121_routes: vec![],
            enabled: true,
            hosts: vec![],
        }
    }

    /// net1 serves 10.0.1.0/24 (a → .10), net2 10.0.2.0/24 (b → .20); gateways are the
    /// router ports, so the router port is each subnet's DHCP server.
    fn lab_with_dhcp() -> Lab {
        lab_with_dhcp_and(Config::default())
    }

    fn lab_with_dhcp_and(config: Config) -> Lab {
        let mut l = lab_with(config);
        let (n1, n2) = (l.net[0], l.net[1]);
        l.f.write(|t| {
            for (net, prefix, gw, m, addr) in [
                (n1, "10.0.1.0/24", "10.0.1.1", vm_mac(1), "10.0.1.10"),
                (n2, "10.0.2.0/24", "10.0.2.1", vm_mac(2), "10.0.2.20"),
            ] {
                let s = t.create_dhcp_subnet(net, subnet(prefix, gw))?.id;
                let host = DhcpHost {
                    mac: topology::model::MacAddr(m),
                    ip: addr.parse().unwrap(),
                    name: None,
                };
                t.put_dhcp_host(s, host, false)?;
            }
            Ok(())
        });
        l
    }

    fn client(
        msg: WireType,
        mac: [u8; 6],
        requested: Option<&str>,
        ciaddr: &str,
        to: ([u8; 6], &str),
    ) -> Vec<u8> {
        let repr = DhcpRepr {
            message_type: msg,
            transaction_id: 0x1234,
            secs: 0,
            client_hardware_address: EthernetAddress(mac),
            client_ip: ip(ciaddr),
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: requested.map(ip),
            client_identifier: None,
            server_identifier: None,
            parameter_request_list: Some(&[1, 3, 6, 26, 121]),
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut payload = vec![0; repr.buffer_len()];
        repr.emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
            .unwrap();
        let b = PacketBuilder::ethernet2(mac, to.0)
            .ipv4(ip(ciaddr).octets(), ip(to.1).octets(), 64)
            .udp(68, 67);
        let mut out = Vec::new();
        b.write(&mut out, &payload).unwrap();
        out
    }

    /// (message type, yiaddr) of a delivered DHCP reply.
    fn reply(frame: &[u8]) -> (u8, Ipv4Addr) {
        let v = ofproto::packet::PacketView::parse(frame).unwrap();
        let d = v.dhcp.expect("a DHCP reply");
        (u8::from(d.message_type.unwrap()), d.yiaddr)
    }

    #[test]
    fn a_vm_gets_offer_and_ack_from_its_bridge_and_renews_through_the_gateway() {
        let mut l = lab_with_dhcp();
        let (hv1, a) = (l.hv[0], l.vm[0].1);
        let bcast = ([0xff; 6], "255.255.255.255");
        l.f.send(
            hv1,
            a,
            client(WireType::Discover, vm_mac(1), None, "0.0.0.0", bcast),
        );
        let got = l.f.take_delivered();
        assert_eq!(got.len(), 1, "only the client hears the answer: {got:?}");
        assert_eq!(got[0].1, a);
        assert_eq!(reply(&got[0].2), (2, ip("10.0.1.10")));
        assert_eq!(&got[0].2[6..12], &RP1_MAC, "from the gateway's MAC");
        let req = client(
            WireType::Request,
            vm_mac(1),
            Some("10.0.1.10"),
            "0.0.0.0",
            bcast,
        );
        l.f.send(hv1, a, req);
        let got = l.f.take_delivered();
        assert_eq!(reply(&got[0].2), (5, ip("10.0.1.10")));
        // Renewing: unicast to the server, which is the router port.
        let renew = client(
            WireType::Request,
            vm_mac(1),
            None,
            "10.0.1.10",
            (RP1_MAC, "10.0.1.1"),
        );
        l.f.send(hv1, a, renew);
        let got = l.f.take_delivered();
        assert_eq!(got.len(), 1);
        assert_eq!(reply(&got[0].2), (5, ip("10.0.1.10")));
        let answers = l.f.cache(hv1);
        assert!(
            !answers.is_empty() && answers.iter().all(|e| e.is_answer_flow()),
            "DHCP installs only flows to the controller: {answers:?}"
        );
        // A MAC with no lease gets nothing, and it is counted.
        l.f.send(
            hv1,
            a,
            client(WireType::Discover, vm_mac(0x77), None, "0.0.0.0", bcast),
        );
        assert!(l.f.take_delivered().is_empty());
        assert_eq!(
            l.f.engine.stats().unanswered.get("unknown_client"),
            Some(&1)
        );
        assert_eq!(l.f.engine.stats().answers.get("dhcp"), Some(&3));
    }

    fn echo_reply(src: [u8; 6], dst: [u8; 6], ip_src: &str, ip_dst: &str) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(src, dst)
            .ipv4(ip(ip_src).octets(), ip(ip_dst).octets(), 64)
            .icmpv4_echo_reply(7, 1);
        let mut out = Vec::new();
        b.write(&mut out, b"ping").unwrap();
        out
    }

    /// A ping across the router and a tunnel: its echo request installs, besides its own flow on
    /// a's host, the flow of b's echo reply on b's host, so the reply goes by that flow and never
    /// reaches the controller. That flow is what the reply's own packet-in would install (the
    /// oracle re-simulates its predicted packet); a prediction that would have to learn
    /// something is not made. The request itself goes out of b's port from hv2, once hv2 has
    /// answered a barrier behind the reply's flow.
    #[test]
    fn a_pings_reply_flow_goes_to_the_destination_host_with_the_request() {
        let mut l = lab_with_dhcp();
        let (hv1, hv2) = (l.hv[0], l.hv[1]);
        let (a, b) = (l.vm[0].1, l.vm[1].1);
        // b has not spoken: its MAC is not learned on net2, so nothing is predicted.
        l.f.send(
            hv1,
            a,
            echo(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64),
        );
        l.f.take_delivered();
        assert!(l.f.cache(hv2).is_empty());
        assert_eq!(l.f.engine.stats().replies_predicted, 0);
        // b speaks (its MAC learned on its port): now a's ping predicts b's reply.
        l.f.send(
            hv2,
            b,
            frames::arp_request(vm_mac(2), [10, 0, 2, 20], [10, 0, 2, 1]),
        );
        l.f.take_delivered();
        // The first flow (cached before b spoke) flooded net2: it went when b's MAC was learned.
        let logged = l.f.log.len();
        let (n, tunnelled) = (l.f.packet_ins, l.f.tunnelled);
        l.f.send(
            hv1,
            a,
            echo(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64),
        );
        assert_eq!(l.f.engine.stats().replies_predicted, 1);
        assert_eq!(l.f.engine.stats().delivered_at_destination, 1);
        // In order: a's flow, b's reply flow, and the request out of hv2 behind it on hv2's
        // own connection, unheld (b's answered ARP installed its answer's flow: see
        // `FlowKind::Answer`).
        assert_eq!(l.f.engine.stats().packets_held, 0);
        assert_eq!(l.f.answer_barriers(), 0);
        let sent: Vec<_> = l.f.log[logged..]
            .iter()
            .map(|o| (o.dpid, o.message.name()))
            .collect();
        assert_eq!(
            sent,
            [(hv1, "FLOW_MOD"), (hv2, "FLOW_MOD"), (hv2, "PACKET_OUT")]
        );
        assert_eq!(l.f.packet_ins, n + 1);
        assert_eq!(
            l.f.tunnelled, tunnelled,
            "the first request took the tunnel"
        );
        let got = l.f.take_delivered();
        assert_eq!(
            got.iter().map(|(h, p, _)| (*h, *p)).collect::<Vec<_>>(),
            vec![(hv2, b)]
        );
        let first = got[0].2.clone();
        // Routed on its way: b's MAC from the router's port, TTL 63.
        assert_eq!(&first[0..12], &[vm_mac(2), RP2_MAC].concat()[..]);
        assert_eq!(first[22], 63);
        l.f.slow_barriers = false;
        // The next request goes by a's flow and the tunnel, and arrives the same, byte for byte.
        l.f.send(
            hv1,
            a,
            echo(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64),
        );
        assert_eq!(
            l.f.packet_ins,
            n + 1,
            "the second request came to the controller"
        );
        assert!(
            l.f.tunnelled > tunnelled,
            "the second request did not take the tunnel"
        );
        let got = l.f.take_delivered();
        assert_eq!(
            got.iter()
                .map(|(h, p, f)| (*h, *p, f.clone()))
                .collect::<Vec<_>>(),
            vec![(hv2, b, first)]
        );
        let predicted = l.f.forwarding(hv2);
        assert_eq!(predicted.len(), 1, "{predicted:?}");
        assert!(predicted[0].actions().contains(&Action::DecNwTtl));
        // b's reply goes by it: no packet-in, routed to a (TTL 63, a's MAC).
        let n = l.f.packet_ins;
        l.f.send(
            hv2,
            b,
            echo_reply(vm_mac(2), RP2_MAC, "10.0.2.20", "10.0.1.10"),
        );
        assert_eq!(l.f.packet_ins, n, "the reply came to the controller");
        let got = l.f.take_delivered();
        assert_eq!(got.len(), 1, "{got:?}");
        let (d, p, frame) = &got[0];
        assert_eq!((*d, *p), (hv1, a));
        assert_eq!(&frame[0..12], &[vm_mac(1), RP1_MAC].concat()[..]);
        assert_eq!(frame[22], 63);
        assert_eq!(icmp_of(frame).map(|i| (i.0, i.1)), Some((0, 0)));
        // Both flows are what the engine would install now, predicted one included (and answers' flows).
        assert_eq!(l.f.oracle(), 2 + l.f.answer_flows());
        // A second request (the switch asked twice) predicts nothing more.
        let before = l.f.engine.stats().flows_installed;
        let sim = l.f.engine.dry_run(
            hv1,
            l.vm[0].0,
            a,
            flowkey::Header::parse(&echo(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64))
                .unwrap(),
        );
        assert_eq!(sim.simulation.egress.len(), 1);
        assert_eq!(l.f.engine.stats().flows_installed, before);
    }

    /// A lab with `config` where b has spoken (its MAC learned on net2) and a then pings it,
    /// hv2 slow to answer barriers: the lab, and what the engine sent for the ping, in order.
    fn ping_once_b_spoke(config: Config) -> (Lab, Vec<(u64, &'static str)>) {
        let mut l = lab_with_dhcp_and(config);
        l.f.send(
            l.hv[1],
            l.vm[1].1,
            frames::arp_request(vm_mac(2), [10, 0, 2, 20], [10, 0, 2, 1]),
        );
        l.f.take_delivered();
        l.f.slow_barriers = true;
        let logged = l.f.log.len();
        l.f.send(
            l.hv[0],
            l.vm[0].1,
            echo(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64),
        );
        let sent = l.f.log[logged..]
            .iter()
            .map(|o| (o.dpid, o.message.name()))
            .collect();
        (l, sent)
    }

    fn sent_through_ingress() -> Config {
        Config {
            deliver_at_destination: false,
            ..Config::default()
        }
    }

    /// Sent through the ingress switch instead, the request waits until hv2 has answered a
    /// barrier behind the reply's flow.
    #[test]
    fn through_the_ingress_a_ping_waits_for_the_destinations_barrier() {
        // hv2's switch is slow to answer barriers: the ping waits until it has b's reply flow.
        let (mut l, sent) = ping_once_b_spoke(sent_through_ingress());
        let (hv1, hv2) = (l.hv[0], l.hv[1]);
        let b = l.vm[1].1;
        assert_eq!(
            l.f.take_delivered(),
            vec![],
            "the ping left before its reply's flow"
        );
        assert_eq!(l.f.engine.stats().replies_predicted, 1);
        assert_eq!(l.f.engine.stats().packets_held, 1);
        assert_eq!(l.f.engine.stats().delivered_at_destination, 0);
        // In order: a's flow, b's reply flow, the barrier behind it, and nothing for hv1 yet.
        assert_eq!(
            sent,
            [
                (hv1, "FLOW_MOD"),
                (hv2, "FLOW_MOD"),
                (hv2, "BARRIER_REQUEST")
            ]
        );
        let tunnelled = l.f.tunnelled;
        assert_eq!(l.f.answer_barriers(), 1);
        let got = l.f.take_delivered();
        assert_eq!(
            got.iter().map(|(h, p, _)| (*h, *p)).collect::<Vec<_>>(),
            vec![(hv2, b)]
        );
        assert!(l.f.tunnelled > tunnelled, "released through the tunnel");
        l.f.slow_barriers = false;
        let n = l.f.packet_ins;
        l.f.send(
            hv2,
            b,
            echo_reply(vm_mac(2), RP2_MAC, "10.0.2.20", "10.0.1.10"),
        );
        assert_eq!(l.f.packet_ins, n, "the reply came to the controller");
        assert_eq!(l.f.oracle(), 2 + l.f.answer_flows());
    }

    #[test]
    fn a_held_ping_goes_at_its_deadline_or_when_the_destination_leaves() {
        // a pings b once b has spoken, hv2 never answering the barrier.
        let held_ping = || {
            let (mut l, _) = ping_once_b_spoke(sent_through_ingress());
            assert_eq!(l.f.take_delivered(), vec![]);
            assert_eq!(l.f.engine.stats().packets_held, 1);
            l
        };
        // It waits out its hold, then goes all the same.
        let mut l = held_ping();
        l.f.advance(crate::engine::hold::HOLD_LIMIT - Duration::from_millis(1));
        assert_eq!(l.f.take_delivered(), vec![]);
        l.f.advance(Duration::from_millis(1));
        let got = l.f.take_delivered();
        assert_eq!(
            got.iter().map(|(h, p, _)| (*h, *p)).collect::<Vec<_>>(),
            vec![(l.hv[1], l.vm[1].1)]
        );
        assert_eq!(l.f.engine.stats().holds_expired, 1);
        // The late answer releases nothing twice.
        assert_eq!(l.f.answer_barriers(), 1);
        assert_eq!(l.f.take_delivered(), vec![]);
        // Or hv2's session ends: nothing will answer, so it goes at once.
        let mut l = held_ping();
        let mut out = Vec::new();
        let hv2 = l.hv[1];
        l.f.engine
            .handle(l.f.now, &Event::SwitchDown { dpid: hv2 }, &mut out);
        let released: Vec<_> = out.iter().map(|o| (o.dpid, o.message.name())).collect();
        assert_eq!(released, [(l.hv[0], "PACKET_OUT")]);
        assert_eq!(l.f.engine.stats().holds_expired, 0);
    }

    /// Without the hold, the request goes out of b's port from hv2 at once, behind the reply's
    /// flow on hv2's own connection; and a request held to go out there goes through hv1 and
    /// the tunnel instead if hv2's session ends first.
    #[test]
    fn delivered_at_the_destination_unheld_or_through_the_ingress_when_it_leaves() {
        let (mut l, sent) = ping_once_b_spoke(Config {
            hold_for_reply_flow: false,
            ..Config::default()
        });
        let (hv1, hv2) = (l.hv[0], l.hv[1]);
        assert_eq!(
            sent,
            [(hv1, "FLOW_MOD"), (hv2, "FLOW_MOD"), (hv2, "PACKET_OUT")]
        );
        let got = l.f.take_delivered();
        assert_eq!(
            got.iter().map(|(h, p, _)| (*h, *p)).collect::<Vec<_>>(),
            vec![(hv2, l.vm[1].1)]
        );
        assert_eq!(l.f.engine.stats().delivered_at_destination, 1);
        assert_eq!(l.f.engine.stats().packets_held, 0);
        // The default is the same: at the destination, the answers' flows make the hold moot.
        let (l, sent) = ping_once_b_spoke(Config::default());
        let (hv1, hv2) = (l.hv[0], l.hv[1]);
        assert_eq!(
            sent,
            [(hv1, "FLOW_MOD"), (hv2, "FLOW_MOD"), (hv2, "PACKET_OUT")]
        );
        assert_eq!(l.f.engine.stats().packets_held, 0);
        // Without them it is held, and hv2 leaves before answering.
        let (mut l, _) = ping_once_b_spoke(Config {
            answer_flows: false,
            ..Config::default()
        });
        let (hv1, hv2) = (l.hv[0], l.hv[1]);
        assert_eq!(l.f.engine.stats().packets_held, 1);
        let mut out = Vec::new();
        l.f.engine
            .handle(l.f.now, &Event::SwitchDown { dpid: hv2 }, &mut out);
        let released: Vec<_> = out.iter().map(|o| (o.dpid, o.message.name())).collect();
        assert_eq!(released, [(hv1, "PACKET_OUT")]);
    }

    #[test]
    fn leases_answer_arp_and_resolve_next_hops_without_asking() {
        let mut l = lab_with_dhcp();
        // d asks for a's leased address: the bridge answers with a's MAC; a hears nothing.
        let (hv3, d) = (l.hv[2], l.vm[3].1);
        l.f.send(
            hv3,
            d,
            frames::arp_request(vm_mac(4), [10, 0, 1, 40], [10, 0, 1, 10]),
        );
        let got = l.f.take_delivered();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, d);
        let arp = flowkey::Header::parse(&got[0].2).unwrap().arp.unwrap();
        assert_eq!((arp.op, arp.sha), (2, vm_mac(1)));
        // A gratuitous ARP is flooded, not answered.
        l.f.send(
            hv3,
            d,
            frames::arp_request(vm_mac(4), [10, 0, 1, 40], [10, 0, 1, 40]),
        );
        let got = l.f.take_delivered();
        assert_eq!(
            got.iter().map(|(h, p, _)| (*h, *p)).collect::<Vec<_>>(),
            vec![(l.hv[0], l.vm[0].1)]
        );
        // The router routes to b's leased address at once: no ARP, no parking.
        let (hv1, a) = (l.hv[0], l.vm[0].1);
        l.f.send(
            hv1,
            a,
            udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64, 1),
        );
        // b has not spoken yet, so net2 floods the unicast to b and c, as a switch does.
        let got = l.f.take_delivered();
        let mut to: Vec<_> = got.iter().map(|(h, p, _)| (*h, *p)).collect();
        to.sort();
        let mut want = vec![(l.hv[1], l.vm[1].1), (l.hv[0], l.vm[2].1)];
        want.sort();
        assert_eq!(to, want);
        assert!(got.iter().all(|(_, _, f)| f[0..6] == vm_mac(2)));
        assert_eq!(l.f.engine.arp().stats().requests, 0);
        assert_eq!(l.f.oracle(), 1 + l.f.answer_flows());
        // Changing the lease changes the router's flows (the bridge's DHCP is part of them).
        let n2 = l.net[1];
        let s =
            l.f.network
                .snapshot()
                .dhcp_subnets_of(n2)
                .next()
                .unwrap()
                .id;
        l.f.write(|t| {
            t.delete_dhcp_host(s, topology::model::MacAddr(vm_mac(2)))?;
            Ok(())
        });
        assert!(
            l.f.cache(hv1).is_empty(),
            "the routed flow went with the lease"
        );
    }
}

#[test]
fn the_loop_guard_counts_one_path_not_every_branch_of_a_flood() {
    // A bridge shared by 14 routers (a provider network): a broadcast reaches all of them.
    let mut l = lab();
    let net = l.net[0];
    l.f.write(|t| {
        for i in 0..14u8 {
            let r = t.create_router(router(&format!("tenant{i}")))?.id;
            let rp = t
                .create_port(
                    r,
                    router_port(&format!("10.0.1.{}/24", 100 + i), [2, 0, 0, 5, 0, i]),
                )?
                .id;
            let bp = t.create_port(net, bridge_port())?.id;
            t.link(rp, bp)?;
        }
        Ok(())
    });
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    // An ARP request for an address nobody has: flooded to d, heard by every router.
    let frame = frames::arp_request(vm_mac(1), [10, 0, 1, 10], [10, 0, 1, 250]);
    let header = flowkey::Header::parse(&frame).unwrap();
    let sim = l.f.engine.dry_run(hv1, l.vm[0].0, a, header).simulation;
    assert_eq!(sim.drop, None, "{sim:?}");
    l.f.send(hv1, a, frame);
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1, "d hears it");
    assert_eq!(l.f.oracle(), 1);
}

#[test]
fn a_host_probing_for_its_own_lease_gets_no_answer_but_others_do() {
    use topology::model::{DhcpHost, MacAddr};
    let mut l = lab();
    let net = l.net[0];
    l.f.write(|t| {
        let s = t.create_dhcp_subnet(net, dhcp_fabric::subnet("10.0.1.0/24", "10.0.1.1"))?;
        let host = DhcpHost {
            mac: MacAddr(vm_mac(4)),
            ip: "10.0.1.40".parse().unwrap(),
            name: None,
        };
        t.put_dhcp_host(s.id, host, false)?;
        Ok(())
    });
    // d (vm_mac(4)) probes for its own lease: RFC 5227, sender address 0.0.0.0.
    let (hv3, d) = (l.hv[2], l.vm[3].1);
    l.f.send(
        hv3,
        d,
        frames::arp_request(vm_mac(4), [0; 4], [10, 0, 1, 40]),
    );
    let got = l.f.take_delivered();
    assert!(got.iter().all(|(h, p, _)| (*h, *p) != (hv3, d)), "{got:?}");
    // a asks for it: the bridge answers with d's MAC.
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    l.f.send(
        hv1,
        a,
        frames::arp_request(vm_mac(1), [10, 0, 1, 10], [10, 0, 1, 40]),
    );
    let got = l.f.take_delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(
        flowkey::Header::parse(&got[0].2).unwrap().arp.unwrap().sha,
        vm_mac(4)
    );
    assert_eq!(got[0].1, a);
}

mod chains {
    use super::*;
    use topology::model::{Chain, Condition, IpAddrGroup, PortGroup, PortRange, Rule, RuleAction};

    pub(super) fn rule(action: RuleAction, condition: Condition) -> Rule {
        Rule {
            id: Uuid::nil(),
            chain_id: Uuid::nil(),
            position: 0,
            action,
            jump_chain_id: None,
            nat_targets: vec![],
            condition,
        }
    }

    pub(super) fn chain(name: &str) -> Chain {
        Chain {
            id: Uuid::nil(),
            name: name.into(),
            rule_ids: vec![],
        }
    }

    fn tcp(dport: u16) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(vm_mac(1), RP1_MAC)
            .ipv4(ip("10.0.1.10").octets(), ip("10.0.2.30").octets(), 64)
            .tcp(40000, dport, 1, 64240)
            .syn();
        let mut out = Vec::new();
        b.write(&mut out, &[]).unwrap();
        out
    }

    /// The lab with c's (10.0.2.30, hv1) MAC known and a chain as r's inbound filter.
    pub(super) fn lab_with_router_filter(rules: Vec<Rule>) -> (Lab, Uuid) {
        let mut l = lab();
        let r = l.r;
        let fw = l.f.write(|t| {
            let fw = t.create_chain(chain("fw"))?.id;
            for rl in rules {
                t.create_rule(fw, rl)?;
            }
            let mut router = Router::clone(t.snapshot().get::<Router>(r).unwrap());
            router.inbound_filter_id = Some(fw);
            t.update_router(router)?;
            Ok(fw)
        });
        let (hv1, c) = (l.hv[0], l.vm[2].1);
        l.f.send(
            hv1,
            c,
            arp_reply(vm_mac(3), "10.0.2.30", RP2_MAC, "10.0.2.1"),
        );
        l.f.take_delivered();
        (l, fw)
    }

    fn ssh() -> Condition {
        Condition {
            nw_proto: Some(6),
            tp_dst: Some(PortRange { start: 22, end: 22 }),
            ..Condition::default()
        }
    }

    #[test]
    fn a_drop_rule_cuts_exactly_its_traffic_and_reads_only_its_fields() {
        let (mut l, _) = lab_with_router_filter(vec![rule(RuleAction::Drop, ssh())]);
        let (hv1, a) = (l.hv[0], l.vm[0].1);
        l.f.send(hv1, a, tcp(22));
        assert!(l.f.take_delivered().is_empty(), "ssh is dropped");
        l.f.send(hv1, a, tcp(80));
        assert_eq!(l.f.take_delivered().len(), 1, "http passes");
        l.f.send(
            hv1,
            a,
            udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.30", 64, 22),
        );
        assert_eq!(l.f.take_delivered().len(), 1, "udp/22 passes");
        let cache = l.f.cache(hv1);
        assert_eq!(cache.len(), 3);
        let reads =
            |e: &&crate::harness::Entry, f: fn(&OxmField) -> bool| e.match_.fields.iter().any(f);
        for e in &cache {
            let proto = e.match_.ip_proto();
            assert!(
                proto.is_some(),
                "every flow read the protocol: {:?}",
                e.match_
            );
            // Only TCP flows read the port (the rule stopped at the protocol for UDP).
            let port = reads(e, |f| {
                matches!(f, OxmField::TcpDst(_) | OxmField::UdpDst(_))
            });
            assert_eq!(port, proto == Some(6), "{:?}", e.match_);
            assert!(!reads(e, |f| matches!(
                f,
                OxmField::TcpSrc(_) | OxmField::UdpSrc(_)
            )));
        }
        assert_eq!(l.f.oracle(), 3);
        // Removing the rule brings ssh back (the chain's flows go).
        let rid = l.f.network.snapshot().list::<Rule>().next().unwrap().id;
        l.f.write(|t| t.delete_rule(rid));
        assert!(
            l.f.cache(hv1).is_empty(),
            "every flow through the chain went"
        );
        l.f.send(hv1, a, tcp(22));
        assert_eq!(l.f.take_delivered().len(), 1);
    }

    #[test]
    fn reject_answers_tcp_with_a_reset_and_the_rest_with_admin_prohibited() {
        let any_to_30 = Condition {
            nw_dst: Some("10.0.2.30/32".parse().unwrap()),
            ..Condition::default()
        };
        let (mut l, _) = lab_with_router_filter(vec![rule(RuleAction::Reject, any_to_30)]);
        let (hv1, a) = (l.hv[0], l.vm[0].1);
        l.f.send(hv1, a, tcp(22));
        let got = l.f.take_delivered();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, a);
        let h = flowkey::Header::parse(&got[0].2).unwrap();
        assert!(matches!(h.l4, flowkey::L4::Tcp(22, 40000)));
        assert_eq!(got[0].2[14 + 20 + 13] & 0x04, 0x04, "RST");
        l.f.send(
            hv1,
            a,
            udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.30", 64, 53),
        );
        let got = l.f.take_delivered();
        let (t, c, s, _) = icmp_of(&got[0].2).unwrap();
        assert_eq!((t, c, s), (3, 13, ip("10.0.1.1")));
        assert!(l.f.cache(hv1).is_empty(), "rejects answer every packet");
        // The trace shows the router, the rule and the answer.
        let frame = udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.30", 64, 53);
        let t = l.f.engine.trace(l.vm[0].0, Header::parse(&frame).unwrap());
        let steps: Vec<_> = t.steps.iter().map(|s| s.step).collect();
        assert!(
            steps.iter().any(|s| matches!(
                s,
                trace::Step::Rule {
                    action: RuleAction::Reject,
                    ..
                }
            )),
            "{steps:?}"
        );
        assert!(
            steps
                .iter()
                .any(|s| matches!(s, trace::Step::Answer { .. })),
            "{steps:?}"
        );
    }

    #[test]
    fn jump_return_continue_invert_and_the_depth_guard() {
        let mut l = lab();
        let r = l.r;
        let (fw, sub) = l.f.write(|t| {
            let fw = t.create_chain(chain("fw"))?.id;
            let sub = t.create_chain(chain("sub"))?.id;
            // sub: return for 10.0.2.30, drop everything else.
            t.create_rule(
                sub,
                rule(
                    RuleAction::Return,
                    Condition {
                        nw_dst: Some("10.0.2.30/32".parse().unwrap()),
                        ..Condition::default()
                    },
                ),
            )?;
            t.create_rule(sub, rule(RuleAction::Drop, Condition::default()))?;
            // fw: continue (no effect), jump to sub for anything *not* from 10.9.0.0/16.
            t.create_rule(fw, rule(RuleAction::Continue, Condition::default()))?;
            let mut j = rule(
                RuleAction::Jump,
                Condition {
                    nw_src: Some("10.9.0.0/16".parse().unwrap()),
                    inv_nw_src: true,
                    ..Condition::default()
                },
            );
            j.jump_chain_id = Some(sub);
            t.create_rule(fw, j)?;
            let mut router = Router::clone(t.snapshot().get::<Router>(r).unwrap());
            router.inbound_filter_id = Some(fw);
            t.update_router(router)?;
            Ok((fw, sub))
        });
        let (hv1, a, c) = (l.hv[0], l.vm[0].1, l.vm[2].1);
        l.f.send(
            hv1,
            c,
            arp_reply(vm_mac(3), "10.0.2.30", RP2_MAC, "10.0.2.1"),
        );
        l.f.take_delivered();
        l.f.send(
            hv1,
            a,
            udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.30", 64, 1),
        );
        assert_eq!(l.f.take_delivered().len(), 1, "returned from sub, accepted");
        l.f.send(
            hv1,
            a,
            udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.77", 64, 1),
        );
        assert!(l.f.take_delivered().is_empty(), "sub dropped it");
        // The source prefix was read as a /16, not the address.
        assert!(l
            .f
            .cache(hv1)
            .iter()
            .all(|e| e.match_.fields.contains(&OxmField::Ipv4Src {
                value: ip("10.0.0.0"),
                mask: Some(ip("255.255.0.0")),
            })));
        assert_eq!(l.f.oracle(), 2);
        // sub jumping back to fw would be a cycle: the topology refuses it.
        let cycle = l.f.network.write(|t| {
            let mut back = rule(RuleAction::Jump, Condition::default());
            back.jump_chain_id = Some(fw);
            t.create_rule(sub, back)
        });
        assert!(cycle.is_err());
        // Nesting deeper than the guard (no cycle) ends as an error drop, not a stack overflow.
        l.f.write(|t| {
            let mut next = sub;
            for i in 0..=chain::MAX_JUMPS {
                let c = t.create_chain(chain(&format!("deep{i}")))?.id;
                let mut j = rule(RuleAction::Jump, Condition::default());
                j.jump_chain_id = Some(next);
                t.create_rule(c, j)?;
                next = c;
            }
            let mut j = rule(RuleAction::Jump, Condition::default());
            j.jump_chain_id = Some(next);
            j.position = 1;
            t.create_rule(fw, j)?;
            Ok(())
        });
        l.f.send(
            hv1,
            a,
            udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.30", 64, 1),
        );
        assert!(l.f.take_delivered().is_empty());
        assert!(l.f.engine.stats().drops.contains_key("loop"));
    }

    #[test]
    fn port_and_address_groups_resolve_and_their_changes_invalidate() {
        let mut l = lab();
        let (net1, a_port) = (l.net[0], l.vm[0].0);
        let (pg, ag) = l.f.write(|t| {
            let pg = t
                .create_port_group(PortGroup {
                    id: Uuid::nil(),
                    name: "quarantine".into(),
                    stateful: false,
                    port_ids: vec![],
                })?
                .id;
            let ag = t
                .create_ip_addr_group(IpAddrGroup {
                    id: Uuid::nil(),
                    name: "blocked".into(),
                    addresses: vec!["10.0.1.99".parse().unwrap()],
                })?
                .id;
            let fw = t.create_chain(chain("fw"))?.id;
            let in_group = Condition {
                port_group_id: Some(pg),
                ..Condition::default()
            };
            let to_blocked = Condition {
                ip_addr_group_dst: Some(ag),
                ..Condition::default()
            };
            t.create_rule(fw, rule(RuleAction::Drop, in_group))?;
            t.create_rule(fw, rule(RuleAction::Drop, to_blocked))?;
            let mut b = topology::model::Bridge::clone(
                t.snapshot().get::<topology::model::Bridge>(net1).unwrap(),
            );
            b.inbound_filter_id = Some(fw);
            t.update_bridge(b)?;
            Ok((pg, ag))
        });
        let (hv1, a) = (l.hv[0], l.vm[0].1);
        let (hv3, d) = (l.hv[2], l.vm[3].1);
        let to_d = udp(vm_mac(1), vm_mac(4), "10.0.1.10", "10.0.1.40", 64, 1);
        l.f.send(hv1, a, to_d.clone());
        assert_eq!(l.f.take_delivered().len(), 1, "flooded to d (and only d)");
        // a joins the quarantine group: its flows go, its traffic stops.
        l.f.write(|t| {
            let mut g = PortGroup::clone(t.snapshot().get::<PortGroup>(pg).unwrap());
            g.port_ids.push(a_port);
            t.update_port_group(g)
        });
        assert!(l.f.cache(hv1).is_empty());
        l.f.send(hv1, a, to_d.clone());
        assert!(l.f.take_delivered().is_empty());
        // d to a blocked address is dropped; changing the group lets it through.
        let to_99 = udp(vm_mac(4), vm_mac(9), "10.0.1.40", "10.0.1.99", 64, 1);
        l.f.send(hv3, d, to_99.clone());
        assert!(l.f.take_delivered().is_empty());
        assert_eq!(l.f.cache(hv3).len(), 1);
        l.f.write(|t| {
            let mut g = IpAddrGroup::clone(t.snapshot().get::<IpAddrGroup>(ag).unwrap());
            g.addresses.clear();
            t.update_ip_addr_group(g)
        });
        assert!(l.f.cache(hv3).is_empty());
        l.f.send(hv3, d, to_99);
        assert!(!l.f.take_delivered().is_empty());
        assert!(l.f.oracle() >= 1);
    }

    #[test]
    fn port_filters_apply_on_the_way_in_and_out() {
        let mut l = lab();
        let d_port = l.vm[3].0;
        l.f.write(|t| {
            // d accepts nothing from a's MAC.
            let out = t.create_chain(chain("d-out"))?.id;
            t.create_rule(
                out,
                rule(
                    RuleAction::Drop,
                    Condition {
                        dl_src: Some(topology::model::MacAddr(vm_mac(1))),
                        ..Condition::default()
                    },
                ),
            )?;
            let mut p = Port::clone(t.snapshot().get::<Port>(d_port).unwrap());
            p.outbound_filter_id = Some(out);
            t.update_port(p)?;
            Ok(())
        });
        let (hv1, a) = (l.hv[0], l.vm[0].1);
        let (hv3, d) = (l.hv[2], l.vm[3].1);
        l.f.send(
            hv1,
            a,
            udp(vm_mac(1), vm_mac(4), "10.0.1.10", "10.0.1.40", 64, 1),
        );
        assert!(
            l.f.take_delivered().is_empty(),
            "d's outbound filter drops it"
        );
        // d's own traffic leaves (its inbound side has no filter).
        l.f.send(
            hv3,
            d,
            udp(vm_mac(4), vm_mac(1), "10.0.1.40", "10.0.1.10", 64, 1),
        );
        assert_eq!(l.f.take_delivered().len(), 1);
        // Learning d's MAC retired a's flood towards it; d's flow to a stands.
        assert_eq!(l.f.oracle(), 1);
    }
}

#[test]
fn a_new_route_replaces_only_the_flows_it_captures() {
    let mut l = lab();
    let (hv1, a) = (l.hv[0], l.vm[0].1);
    let rp2 = l.rp[1];
    add_route(
        &mut l,
        "192.168.0.0/16",
        RouteType::Normal,
        Some(rp2),
        Some("10.0.2.30"),
    );
    add_route(
        &mut l,
        "172.16.0.0/12",
        RouteType::Normal,
        Some(rp2),
        Some("10.0.2.30"),
    );
    l.f.send(
        hv1,
        l.vm[2].1,
        arp_reply(vm_mac(3), "10.0.2.30", RP2_MAC, "10.0.2.1"),
    );
    l.b_answers();
    for dst in ["192.168.1.1", "172.16.9.9", "10.0.2.20"] {
        l.f.send(hv1, a, udp(vm_mac(1), RP1_MAC, "10.0.1.10", dst, 64, 7));
    }
    l.f.take_delivered();
    let cookies = |l: &Lab| -> Vec<(u64, String)> {
        let mut v: Vec<_> =
            l.f.cache(l.hv[0])
                .iter()
                .map(|e| (e.cookie, format!("{:?}", e.match_)))
                .collect();
        v.sort();
        v
    };
    let before = cookies(&l);
    assert_eq!(before.len(), 3);
    // A route under 192.168/16: the /16 flow goes (it covers the new prefix); the flows to
    // 172.16/12 and to the connected 10.0.2.20 keep their cookies.
    add_route(&mut l, "192.168.1.0/24", RouteType::Blackhole, None, None);
    let after = cookies(&l);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().all(|c| before.contains(c)));
    assert!(after.iter().all(|(_, m)| !m.contains("192.168")));
    // Traffic now takes the new route where it applies, the old one elsewhere.
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "192.168.1.1", 64, 7),
    );
    assert!(l.f.take_delivered().is_empty(), "blackholed");
    l.f.send(
        hv1,
        a,
        udp(vm_mac(1), RP1_MAC, "10.0.1.10", "192.168.200.1", 64, 7),
    );
    assert_eq!(l.f.take_delivered().len(), 1);
    assert_eq!(l.f.oracle(), 4);
    // Deleting a route takes exactly the flows that chose it.
    let before = cookies(&l);
    let wide =
        l.f.network
            .snapshot()
            .list::<Route>()
            .find(|r| r.dst.to_string() == "172.16.0.0/12")
            .unwrap()
            .id;
    l.f.write(|t| t.delete_route(wide));
    let after = cookies(&l);
    assert_eq!(after.len(), before.len() - 1);
    assert!(after.iter().all(|(_, m)| !m.contains("172.16")));
    assert_eq!(l.f.oracle(), 3);
}

mod fragments {
    use super::chains::{lab_with_router_filter, rule};
    use super::*;
    use topology::model::{Condition, FragmentPolicy, PortRange, RuleAction};

    /// A TCP frame to port 22, or a later fragment of one (offset 1480, no TCP header).
    fn tcp22(later: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(vm_mac(1), RP1_MAC)
            .ipv4(ip("10.0.1.10").octets(), ip("10.0.2.30").octets(), 64)
            .tcp(40000, 22, 1, 64240);
        let mut f = Vec::new();
        b.write(&mut f, &[0u8; 32]).unwrap();
        if later {
            f[20..22].copy_from_slice(&185u16.to_be_bytes()); // offset 1480, MF clear
            f[24] = 0;
            f[25] = 0;
            let ck = etherparse::Ipv4HeaderSlice::from_slice(&f[14..])
                .unwrap()
                .to_header()
                .calc_header_checksum();
            f[24..26].copy_from_slice(&ck.to_be_bytes());
        }
        f
    }

    #[test]
    fn a_later_fragments_flow_never_lets_whole_packets_past_a_port_rule() {
        let ssh = Condition {
            nw_proto: Some(6),
            tp_dst: Some(PortRange { start: 22, end: 22 }),
            ..Condition::default()
        };
        let (mut l, _) = lab_with_router_filter(vec![rule(RuleAction::Drop, ssh)]);
        let (hv1, a) = (l.hv[0], l.vm[0].1);
        // The later fragment has no port: the rule does not match, it passes...
        l.f.send(hv1, a, tcp22(true));
        assert_eq!(l.f.take_delivered().len(), 1);
        let cache = l.f.cache(hv1);
        assert!(cache[0]
            .match_
            .fields
            .iter()
            .any(|f| flowkey::as_nw_frag(f) == Some((3, 3))));
        // ...and its flow does not carry the whole segment to port 22.
        l.f.send(hv1, a, tcp22(false));
        assert!(l.f.take_delivered().is_empty());
        assert_eq!(l.f.oracle(), 2);
    }

    #[test]
    fn fragment_policy_selects_by_the_fragment_bits() {
        let later = Condition {
            fragment_policy: FragmentPolicy::Nonheader,
            ..Condition::default()
        };
        let (mut l, _) = lab_with_router_filter(vec![rule(RuleAction::Drop, later)]);
        let (hv1, a) = (l.hv[0], l.vm[0].1);
        l.f.send(hv1, a, tcp22(true));
        assert!(l.f.take_delivered().is_empty(), "later fragments dropped");
        l.f.send(hv1, a, tcp22(false));
        assert_eq!(l.f.take_delivered().len(), 1, "whole packets pass");
        assert_eq!(l.f.oracle(), 2);
    }
}

mod traces {
    use super::*;
    use crate::engine::trace::{NextHop, RouteTarget, Step, Via};

    fn kinds(t: &trace::Trace) -> Vec<&'static str> {
        t.steps
            .iter()
            .map(|s| match s.step {
                Step::Enter { .. } => "enter",
                Step::Filter { .. } => "filter",
                Step::Rule { .. } => "rule",
                Step::Learn { .. } => "learn",
                Step::MacHit { .. } => "mac",
                Step::Flood { .. } => "flood",
                Step::Route { .. } => "route",
                Step::NextHop { .. } => "next_hop",
                Step::Rewrite { .. } => "rewrite",
                Step::Leave { .. } => "leave",
                Step::Deliver { .. } => "deliver",
                Step::Unbound { .. } => "unbound",
                Step::Answer { .. } => "answer",
                Step::Drop { .. } => "drop",
            })
            .collect()
    }

    /// A trace is the simulation a packet-in runs, with its account: the same flow as a dry
    /// run, every device in walk order, and nothing learned, asked or installed.
    #[test]
    fn a_trace_walks_like_the_packet_and_changes_nothing() {
        let mut l = lab();
        let (hv1, a) = (l.hv[0], l.vm[0]);
        let frame = udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64, 5001);
        let header = Header::parse(&frame).unwrap();

        // Unresolved next hop: the trace says the packet would wait; no ARP request goes out.
        let t = l.f.engine.trace(a.0, header);
        assert_eq!(t.dpid, Some(hv1));
        assert!(t.steps.iter().any(|s| matches!(
            s.step,
            Step::NextHop {
                mac: NextHop::Unresolved,
                ..
            }
        )));
        assert!(t.compiled.simulation.resolve.is_some());
        assert!(l.f.take_delivered().is_empty(), "a trace sent something");
        assert!(l.f.engine.mac_table(l.net[0]).is_empty(), "a trace learned");
        let arp =
            l.f.engine
                .query(l.f.now, &crate::Query::ArpTable { router: l.r });
        assert_eq!(
            arp,
            Some(crate::Answer::ArpTable(vec![])),
            "a trace asked ARP"
        );

        // Resolved: the real packet parks, b answers; now the trace shows the whole path.
        l.f.send(hv1, a.1, frame.clone());
        l.b_answers();
        l.f.take_delivered();
        let flows = l.f.engine.flow_count();
        let t = l.f.engine.trace(a.0, header);
        assert_eq!(
            kinds(&t),
            [
                "enter", "learn", "mac", "leave", "enter", "route", "next_hop", "rewrite", "leave",
                "enter", "mac", "leave", "deliver"
            ]
        );
        let Step::Route { target, .. } = t.steps[5].step else {
            panic!()
        };
        assert_eq!(
            target,
            RouteTarget::Forward {
                port: l.rp[1],
                gateway: None
            }
        );
        // Depths: net1 (1), r (2), net2 (3).
        let depths: Vec<u8> = t.steps.iter().map(|s| s.depth).collect();
        assert_eq!(depths, [1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3]);
        // b is on hv2: a tunnel copy with b's key.
        assert_eq!(t.deliveries.len(), 1);
        assert!(matches!(t.deliveries[0].via, Via::Tunnel { .. }));
        assert_eq!(t.deliveries[0].dpid, Some(l.hv[1]));
        // The flow is the one a packet-in compiles (and the one installed).
        assert_eq!(t.compiled, l.f.engine.dry_run(hv1, a.0, a.1, header));
        let installed = &l.f.cache(hv1)[0];
        assert_eq!(
            (
                installed.priority,
                &installed.match_,
                installed.instructions.clone()
            ),
            (
                t.compiled.priority,
                &t.compiled.match_,
                t.compiled.instructions()
            )
        );
        assert_eq!(l.f.engine.flow_count(), flows, "a trace installed");

        // Explain: the installed flow traced again from its origin agrees; provenance names
        // the path in order.
        let cookie = installed.cookie;
        let (info, again) = l.f.engine.explain(cookie).unwrap();
        assert_eq!((info.port, info.dpid), (a.0, hv1));
        assert_eq!(again.compiled, t.compiled);
        let devices: Vec<Uuid> = info
            .tags
            .iter()
            .filter_map(|t| match t {
                Tag::Device(d) => Some(*d),
                _ => None,
            })
            .collect();
        assert_eq!(devices, [l.net[0], l.r, l.net[1]]);
        assert!(l.f.engine.explain(cookie ^ 0xffff).is_none());
        assert_eq!(l.f.engine.flows(Some(hv1)).len(), 1);
        assert!(l.f.engine.flows(Some(l.hv[2])).is_empty());
    }
}

/// After a restart, a routed flow through a next hop only ARP knew is read back and kept: the
/// ARP answer it was installed with comes back from its own actions.
#[test]
fn a_restart_keeps_routed_flows_and_their_arp_answers() {
    let mut l = lab();
    let (hv1, a) = (l.hv[0], l.vm[0]);
    let frame = udp(vm_mac(1), RP1_MAC, "10.0.1.10", "10.0.2.20", 64, 5001);
    l.f.send(hv1, a.1, frame.clone());
    l.b_answers();
    l.f.take_delivered();
    let cookie = l.f.cache(hv1)[0].cookie;
    l.f.engine = Engine::default();
    l.f.sync();
    for hv in l.hv {
        l.f.connect(hv);
    }
    let cache: Vec<u64> = l.f.cache(hv1).iter().map(|e| e.cookie).collect();
    assert_eq!(
        cache,
        [cookie],
        "the routed flow was not kept: {:?}",
        l.f.engine.stats()
    );
    assert_eq!(l.f.oracle(), 1);
    let Some(crate::Answer::ArpTable(t)) =
        l.f.engine
            .query(l.f.now, &crate::Query::ArpTable { router: l.r })
    else {
        panic!("no ARP table");
    };
    assert_eq!(
        t.iter().map(|e| (e.ip, e.mac)).collect::<Vec<_>>(),
        [(ip("10.0.2.20"), Some(vm_mac(2)))]
    );
    // The packets go on through it, with no packet-in and no ARP request.
    let n = l.f.packet_ins;
    l.f.send(hv1, a.1, frame);
    assert_eq!(l.f.packet_ins, n);
    assert_eq!(l.f.take_delivered().len(), 1);
}
