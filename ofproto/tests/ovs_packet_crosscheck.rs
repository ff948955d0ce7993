//! `PacketView` and the reply builders against OVS's own flow extractor (`ovs-ofctl parse-pcap`).
//!
//! A few hundred generated frames (random headers made with etherparse, plus the ARP, ICMP and
//! DHCP replies our builders make from them) go into one pcap; OVS prints the flow it extracts
//! from each; every field OVS shows must equal what `PacketView` read.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    EtherType, Ethernet2Header, IpDscp, IpEcn, IpHeaders, Ipv4Extensions, Ipv4Header,
    Ipv6Extensions, Ipv6Header, PacketBuilder, SingleVlanHeader, VlanId, VlanPcp,
};
use ofproto::display::Mac;
use ofproto::packet::{
    self, ArpView, ClasslessRoute, DhcpFrame, DhcpMessageType, DhcpOptions, Icmpv4Error,
    Icmpv6Error, L4View, PacketView, Vlan, L2,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

#[derive(Debug, Clone)]
enum L4 {
    Tcp { src: u16, dst: u16, flags: u16 },
    Udp { src: u16, dst: u16 },
    Echo { id: u16, seq: u16 },
}

#[derive(Debug, Clone)]
struct Spec {
    src: [u8; 6],
    dst: [u8; 6],
    vlan: Option<(u16, u8)>,
    /// An 802.1ad service tag (VID) in front of `vlan`, making the frame QinQ.
    outer: Option<u16>,
    v6: bool,
    ip_src: [u8; 16],
    ip_dst: [u8; 16],
    ttl: u8,
    dscp: u8,
    ecn: u8,
    l4: L4,
    payload: Vec<u8>,
}

fn arb_l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), 0u16..0x200).prop_map(|(src, dst, flags)| L4::Tcp {
            src,
            dst,
            flags
        }),
        (any::<u16>(), any::<u16>()).prop_map(|(src, dst)| L4::Udp { src, dst }),
        (any::<u16>(), any::<u16>()).prop_map(|(id, seq)| L4::Echo { id, seq }),
    ]
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    (
        any::<[u8; 6]>().prop_map(|mut m| {
            m[0] &= 0xfe;
            m
        }),
        any::<[u8; 6]>().prop_map(|mut m| {
            m[0] &= 0xfe;
            m
        }),
        (
            proptest::option::of((1u16..4095, 0u8..8)),
            proptest::option::of(1u16..4095),
        ),
        any::<bool>(),
        (1u8..224, any::<[u8; 15]>()),
        (1u8..224, any::<[u8; 15]>()),
        (1u8..=255, 0u8..64, 0u8..4),
        arb_l4(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(src, dst, (vlan, outer), v6, (s0, s), (d0, d), (ttl, dscp, ecn), l4, payload)| {
                let addr = |first: u8, rest: [u8; 15]| {
                    let mut a = [0u8; 16];
                    a[0] = first;
                    a[1..].copy_from_slice(&rest);
                    if v6 {
                        // 2000::/3, global unicast.
                        a[0] = 0x20 | (first & 0x1f);
                    }
                    a
                };
                Spec {
                    src,
                    dst,
                    vlan,
                    outer: outer.filter(|_| vlan.is_some()),
                    v6,
                    ip_src: addr(s0, s),
                    ip_dst: addr(d0, d),
                    ttl,
                    dscp,
                    ecn,
                    l4,
                    payload,
                }
            },
        )
}

fn link(src: [u8; 6], dst: [u8; 6], vlan: Option<(u16, u8)>, ether_type: EtherType) -> Vec<u8> {
    qinq_link(src, dst, None, vlan, ether_type)
}

fn qinq_link(
    src: [u8; 6],
    dst: [u8; 6],
    outer: Option<u16>,
    vlan: Option<(u16, u8)>,
    ether_type: EtherType,
) -> Vec<u8> {
    let mut out = Ethernet2Header {
        source: src,
        destination: dst,
        ether_type: match (outer, vlan) {
            (Some(_), Some(_)) => EtherType::PROVIDER_BRIDGING,
            (None, Some(_)) => EtherType::VLAN_TAGGED_FRAME,
            _ => ether_type,
        },
    }
    .to_bytes()
    .to_vec();
    if let (Some(vid), Some(_)) = (outer, vlan) {
        out.extend_from_slice(
            &SingleVlanHeader {
                pcp: VlanPcp::ZERO,
                drop_eligible_indicator: false,
                vlan_id: VlanId::try_new(vid).expect("12 bits"),
                ether_type: EtherType::VLAN_TAGGED_FRAME,
            }
            .to_bytes(),
        );
    }
    if let Some((vid, pcp)) = vlan {
        out.extend_from_slice(
            &SingleVlanHeader {
                pcp: VlanPcp::try_new(pcp).expect("3 bits"),
                drop_eligible_indicator: false,
                vlan_id: VlanId::try_new(vid).expect("12 bits"),
                ether_type,
            }
            .to_bytes(),
        );
    }
    out
}

fn build(spec: &Spec) -> Vec<u8> {
    let ip = if spec.v6 {
        IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: spec.dscp << 2 | spec.ecn,
                hop_limit: spec.ttl,
                source: spec.ip_src,
                destination: spec.ip_dst,
                ..Default::default()
            },
            Ipv6Extensions::default(),
        )
    } else {
        let mut h = Ipv4Header {
            dscp: IpDscp::try_new(spec.dscp).expect("6 bits"),
            ecn: IpEcn::try_new(spec.ecn).expect("2 bits"),
            time_to_live: spec.ttl,
            ..Default::default()
        };
        h.source.copy_from_slice(&spec.ip_src[..4]);
        h.destination.copy_from_slice(&spec.ip_dst[..4]);
        IpHeaders::Ipv4(h, Ipv4Extensions::default())
    };
    let ether_type = if spec.v6 {
        EtherType::IPV6
    } else {
        EtherType::IPV4
    };
    let mut out = qinq_link(spec.src, spec.dst, spec.outer, spec.vlan, ether_type);
    let b = PacketBuilder::ip(ip);
    let res = match spec.l4 {
        L4::Tcp { src, dst, flags } => {
            let mut t = b.tcp(src, dst, 1, 1024);
            let bit = |n: u16| flags & (1 << n) != 0;
            if bit(0) {
                t = t.fin();
            }
            if bit(1) {
                t = t.syn();
            }
            if bit(2) {
                t = t.rst();
            }
            if bit(3) {
                t = t.psh();
            }
            if bit(4) {
                t = t.ack(7);
            }
            if bit(5) {
                t = t.urg(0);
            }
            if bit(6) {
                t = t.ece();
            }
            if bit(7) {
                t = t.cwr();
            }
            if bit(8) {
                t = t.ns();
            }
            t.write(&mut out, &spec.payload)
        }
        L4::Udp { src, dst } => b.udp(src, dst).write(&mut out, &spec.payload),
        L4::Echo { id, seq } if spec.v6 => b
            .icmpv6_echo_request(id, seq)
            .write(&mut out, &spec.payload),
        L4::Echo { id, seq } => b
            .icmpv4_echo_request(id, seq)
            .write(&mut out, &spec.payload),
    };
    res.expect("small frames always build");
    out
}

fn arb_arp() -> impl Strategy<Value = (L2, ArpView)> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        proptest::option::of((1u16..4095, 0u8..8)),
        1u16..3,
        any::<([u8; 6], [u8; 4], [u8; 6], [u8; 4])>(),
    )
        .prop_map(|(src, dst, vlan, op, (sha, spa, tha, tpa))| {
            (
                L2 {
                    src,
                    dst,
                    vlan: vlan.map(|(vid, pcp)| Vlan {
                        tpid: 0x8100,
                        vid,
                        pcp,
                    }),
                    inner_vlan: None,
                },
                ArpView {
                    op,
                    sha,
                    spa: spa.into(),
                    tha,
                    tpa: tpa.into(),
                },
            )
        })
}

fn dhcp_client(msg_type: u8, requested: Option<Ipv4Addr>, broadcast: bool) -> Vec<u8> {
    use smoltcp_free_dhcp::*;
    client_frame(msg_type, requested, broadcast)
}

/// DHCP client frames written field by field (the shape RFC 2131 §2 draws), so the test does
/// not build them with the library under test.
mod smoltcp_free_dhcp {
    use super::*;

    pub fn client_frame(msg_type: u8, requested: Option<Ipv4Addr>, broadcast: bool) -> Vec<u8> {
        let mut bootp = vec![1u8, 1, 6, 0];
        bootp.extend_from_slice(&0xabcd_0001u32.to_be_bytes());
        bootp.extend_from_slice(&0u16.to_be_bytes());
        bootp.extend_from_slice(&(if broadcast { 0x8000u16 } else { 0 }).to_be_bytes());
        bootp.extend_from_slice(&[0; 16]); // ciaddr yiaddr siaddr giaddr
        bootp.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 7]);
        bootp.extend_from_slice(&[0; 10 + 64 + 128]);
        bootp.extend_from_slice(&0x6382_5363u32.to_be_bytes());
        bootp.extend_from_slice(&[53, 1, msg_type]);
        if let Some(ip) = requested {
            bootp.extend_from_slice(&[50, 4]);
            bootp.extend_from_slice(&ip.octets());
        }
        bootp.push(255);
        let mut out = link([0x52, 0x54, 0, 0, 0, 7], [0xff; 6], None, EtherType::IPV4);
        PacketBuilder::ipv4([0; 4], [255; 4], 64)
            .udp(68, 67)
            .write(&mut out, &bootp)
            .expect("fits");
        out
    }
}

/// The frames to cross-check: generated ones and everything our builders answer them with.
fn frames() -> Vec<Vec<u8>> {
    let mut runner = TestRunner::deterministic();
    let mut gen = |s: &dyn Fn(&mut TestRunner) -> Vec<u8>| s(&mut runner);
    let mut frames = Vec::new();
    let spec = arb_spec();
    let arp = arb_arp();
    for _ in 0..150 {
        let f = gen(&|r| build(&spec.new_tree(r).expect("strategy").current()));
        frames.push(f);
    }
    for _ in 0..40 {
        let f = gen(&|r| {
            let (l2, a) = arp.new_tree(r).expect("strategy").current();
            packet::arp_frame(l2, &a)
        });
        frames.push(f);
    }
    let v4 = Ipv4Addr::new(192, 0, 2, 1);
    let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let mut replies = Vec::new();
    for f in &frames {
        replies.extend(packet::arp_reply(f, ROUTER_MAC));
        replies.extend(packet::icmpv4_echo_reply(f));
        replies.extend(packet::icmpv6_echo_reply(f));
        replies.extend(packet::icmpv4_error(
            f,
            Icmpv4Error::PortUnreachable,
            ROUTER_MAC,
            v4,
        ));
        replies.extend(packet::icmpv4_error(
            f,
            Icmpv4Error::FragmentationNeeded { next_hop_mtu: 1400 },
            ROUTER_MAC,
            v4,
        ));
        replies.extend(packet::icmpv4_error(
            f,
            Icmpv4Error::TtlExceeded,
            ROUTER_MAC,
            v4,
        ));
        replies.extend(packet::icmpv6_error(
            f,
            Icmpv6Error::HopLimitExceeded,
            ROUTER_MAC,
            v6,
        ));
        replies.extend(packet::icmpv6_error(
            f,
            Icmpv6Error::PacketTooBig { mtu: 1280 },
            ROUTER_MAC,
            v6,
        ));
    }
    // Server messages as the engine sends them: OFFER broadcast and unicast, ACK, NAK, one to a
    // relay agent (port 67 both ways) and one in a VLAN, with every option the engine writes.
    let (server, client) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 7));
    let options = DhcpOptions {
        server_id: Some(server),
        subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
        router: Some(server),
        dns_servers: vec![server, Ipv4Addr::new(8, 8, 8, 8)],
        lease_secs: Some(600),
        renew_secs: Some(300),
        rebind_secs: Some(525),
        mtu: Some(1400),
        domain_name: None,
        host_name: Some("vm7".into()),
        classless_routes: vec![ClasslessRoute {
            dest: Ipv4Addr::new(169, 254, 169, 254),
            prefix_len: 32,
            gateway: server,
        }],
    };
    let chaddr = [0x52, 0x54, 0, 0, 0, 7];
    let base = DhcpFrame {
        l2: L2 {
            src: ROUTER_MAC,
            dst: [0xff; 6],
            vlan: None,
            inner_vlan: None,
        },
        src_ip: server,
        dst_ip: Ipv4Addr::BROADCAST,
        dst_port: 68,
        message_type: DhcpMessageType::Offer,
        xid: 0xabcd_0001,
        chaddr,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: client,
        giaddr: Ipv4Addr::UNSPECIFIED,
        broadcast: true,
        options,
    };
    let unicast = DhcpFrame {
        l2: L2 {
            dst: chaddr,
            ..base.l2
        },
        dst_ip: client,
        broadcast: false,
        ..base.clone()
    };
    let relay = Ipv4Addr::new(10, 0, 9, 1);
    let replies_dhcp = [
        base.clone(),
        unicast.clone(),
        DhcpFrame {
            message_type: DhcpMessageType::Ack,
            ..unicast.clone()
        },
        DhcpFrame {
            message_type: DhcpMessageType::Nak,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            options: DhcpOptions {
                server_id: Some(server),
                ..DhcpOptions::default()
            },
            ..base.clone()
        },
        DhcpFrame {
            dst_ip: relay,
            dst_port: 67,
            giaddr: relay,
            ..unicast.clone()
        },
        DhcpFrame {
            l2: L2 {
                vlan: Some(Vlan {
                    tpid: 0x8100,
                    vid: 10,
                    pcp: 3,
                }),
                ..unicast.l2
            },
            ..unicast
        },
    ];
    for reply in &replies_dhcp {
        replies.push(packet::dhcp_frame(reply).expect("a DHCP frame"));
    }
    for (t, req, bcast) in [
        (1, None, true),
        (1, None, false),
        (3, Some(client), false),
        (3, Some(Ipv4Addr::new(10, 0, 0, 99)), false),
    ] {
        frames.push(dhcp_client(t, req, bcast));
    }
    assert!(replies.len() > 100, "builders answered {}", replies.len());
    frames.extend(replies);
    frames
}

/// `ovs-ofctl`'s TCP flag names, bit 0 first.
const TCP_FLAGS: [&str; 9] = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"];

fn check(view: &PacketView, line: &str) -> Result<(), String> {
    let mut name = None;
    let mut kv = HashMap::new();
    for tok in line.split(',') {
        match tok.split_once('=') {
            Some((k, v)) => {
                kv.insert(k, v);
            }
            None => name = Some(tok),
        }
    }
    let want = |k: &str, v: String| match kv.get(k) {
        Some(got) if *got == v => Ok(()),
        got => Err(format!("{k}: OVS {got:?}, we {v}")),
    };
    want("dl_src", Mac(view.eth_src).to_string())?;
    want("dl_dst", Mac(view.eth_dst).to_string())?;
    match view.vlan {
        Some(v) => {
            want("dl_vlan", v.vid.to_string())?;
            want("dl_vlan_pcp", v.pcp.to_string())?;
        }
        None => want("vlan_tci", "0x0000".into())?,
    }
    match (view.vlan, view.inner_vlan) {
        (_, Some(v)) => {
            want("dl_vlan1", v.vid.to_string())?;
            want("dl_vlan_pcp1", v.pcp.to_string())?;
        }
        (Some(_), None) => want("vlan_tci1", "0x0000".into())?,
        (None, None) => {}
    }
    let expected_name = match (view.arp, view.ip, view.l4) {
        (Some(_), _, _) => "arp",
        (_, Some(ip), l4) => match (ip.src.is_ipv4(), l4) {
            (true, Some(L4View::Tcp { .. })) => "tcp",
            (true, Some(L4View::Udp { .. })) => "udp",
            (true, Some(L4View::Icmpv4 { .. })) => "icmp",
            (true, _) => "ip",
            (false, Some(L4View::Tcp { .. })) => "tcp6",
            (false, Some(L4View::Udp { .. })) => "udp6",
            (false, Some(L4View::Icmpv6 { .. })) => "icmp6",
            (false, _) => "ipv6",
        },
        _ => return Err(format!("unexpected non-IP, non-ARP frame {view}")),
    };
    if name != Some(expected_name) {
        return Err(format!("protocol: OVS {name:?}, we {expected_name}"));
    }
    if let Some(arp) = view.arp {
        want("arp_op", arp.op.to_string())?;
        want("arp_spa", arp.spa.to_string())?;
        want("arp_tpa", arp.tpa.to_string())?;
        want("arp_sha", Mac(arp.sha).to_string())?;
        want("arp_tha", Mac(arp.tha).to_string())?;
    }
    if let Some(ip) = view.ip {
        match (ip.src, ip.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                want("nw_src", s.to_string())?;
                want("nw_dst", d.to_string())?;
            }
            (s, d) => {
                want("ipv6_src", s.to_string())?;
                want("ipv6_dst", d.to_string())?;
            }
        }
        want("nw_ttl", ip.ttl.to_string())?;
        want("nw_tos", (ip.dscp << 2).to_string())?;
        want("nw_ecn", ip.ecn.to_string())?;
        want("nw_frag", if ip.fragmented { "first" } else { "no" }.into())?;
    }
    match view.l4 {
        Some(L4View::Tcp { src, dst, flags }) => {
            want("tp_src", src.to_string())?;
            want("tp_dst", dst.to_string())?;
            let names: Vec<&str> = (0..9)
                .filter(|b| flags & (1 << b) != 0)
                .map(|b| TCP_FLAGS[b])
                .collect();
            let ovs: Vec<&str> = kv
                .get("tcp_flags")
                .map(|f| f.split('|').filter(|n| *n != "0").collect())
                .unwrap_or_default();
            let (mut a, mut b) = (names.clone(), ovs.clone());
            a.sort_unstable();
            b.sort_unstable();
            if a != b {
                return Err(format!("tcp_flags: OVS {ovs:?}, we {names:?}"));
            }
        }
        Some(L4View::Udp { src, dst }) => {
            want("tp_src", src.to_string())?;
            want("tp_dst", dst.to_string())?;
        }
        Some(L4View::Icmpv4 { typ, code }) | Some(L4View::Icmpv6 { typ, code }) => {
            want("icmp_type", typ.to_string())?;
            want("icmp_code", code.to_string())?;
        }
        None => {}
    }
    Ok(())
}

#[test]
fn packet_view_matches_ovs_flow_extraction() {
    let frames = frames();
    let dir = common::TempDir::new("pcap");
    let pcap = dir.0.join("frames.pcap");
    common::write_pcap(&pcap, &frames);
    let out = common::ovs_ofctl(&["parse-pcap", pcap.to_str().expect("utf-8 temp path")]);
    assert!(
        out.status.success(),
        "ovs-ofctl parse-pcap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("ovs-ofctl prints text");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), frames.len(), "one flow per frame");
    let mut failures = Vec::new();
    for (i, (frame, line)) in frames.iter().zip(&lines).enumerate() {
        let view = PacketView::parse(frame).expect("generated frames are Ethernet");
        if let Err(e) = check(&view, line) {
            failures.push(format!(
                "frame {i} {}: {e}\n  OVS: {line}",
                hex::encode(frame)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} frames differ from OVS:\n{}",
        failures.len(),
        frames.len(),
        failures.join("\n")
    );
}
