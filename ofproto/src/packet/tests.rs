//! Packet views and builders pinned by literal frames (made by `ovs-ofctl compose-packet`) and proptests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use smoltcp::wire::{DhcpMessageType as WireType, DhcpPacket, DhcpRepr, EthernetAddress};

use super::*;

/// ARP who-has 10.0.0.254 tell 10.0.0.1, broadcast.
const ARP_REQUEST_HEX: &str =
    "ffffffffffff000000000001080600010800060400010000000000010a0000010000000000000a0000fe";
/// ICMP echo request 10.0.0.1 → 10.0.0.2 in VLAN 10 PCP 3, 64 bytes of data.
const VLAN_PING_HEX: &str = "0000000000020000000000018100600a08004500005c000000004001669f0a0000010a000002080013fc00000000000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
/// TCP SYN 2001:db8::1:1234 → 2001:db8::2:80.
const TCP6_SYN_HEX: &str = "00000000000200000000000186dd600000000014060020010db800000000000000000000000120010db800000000000000000000000204d200500000000000000000500200004f4c0000";
/// UDP 10.0.0.1:5000 → 10.0.0.2:53, TOS 32 (DSCP 8), TTL 9.
const UDP4_HEX: &str = "00000000000200000000000108004520005c0000000009119d6f0a0000010a000002138800350048f39a000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
/// ICMPv6 echo request 2001:db8::1 → 2001:db8::2.
const PING6_HEX: &str = "00000000000200000000000186dd6000000000483a0020010db800000000000000000000000120010db80000000000000000000000028000400400000000000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

const MAC1: [u8; 6] = [0, 0, 0, 0, 0, 1];
const MAC2: [u8; 6] = [0, 0, 0, 0, 0, 2];
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

fn frame(hex: &str) -> Vec<u8> {
    hex::decode(hex).expect("test literal is valid hex")
}

/// Checks IPv4 header and L4 checksums with etherparse's strict slicer, as a receiver would.
fn assert_checksums_valid(frame: &[u8]) {
    let pkt = SlicedPacket::from_ethernet(frame).expect("strictly parseable frame");
    match (&pkt.net, &pkt.transport) {
        (Some(etherparse::NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "ipv4 checksum");
            let hdr = icmp.header();
            assert_eq!(
                hdr.checksum,
                hdr.icmp_type.calc_checksum(icmp.payload()),
                "icmp checksum"
            );
        }
        (Some(etherparse::NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(udp))) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "ipv4 checksum");
            let calc = udp
                .to_header()
                .calc_checksum_ipv4(&h, udp.payload())
                .expect("udp fits");
            assert_eq!(udp.checksum(), calc, "udp checksum");
        }
        (Some(etherparse::NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) => {
            assert!(
                icmp.is_checksum_valid(ip.header().source(), ip.header().destination()),
                "icmpv6 checksum"
            );
        }
        (Some(etherparse::NetSlice::Arp(_)), None) => {}
        other => panic!("unexpected layers {other:?}"),
    }
}

#[test]
fn arp_request_literal() {
    let view = PacketView::parse(&frame(ARP_REQUEST_HEX)).expect("ethernet");
    assert_eq!(view.eth_dst, [0xff; 6]);
    assert_eq!(view.eth_src, MAC1);
    assert_eq!(view.eth_type, ETH_TYPE_ARP);
    assert!(view.is_multicast());
    assert_eq!(
        view.arp,
        Some(ArpView {
            op: ARP_REQUEST,
            sha: MAC1,
            spa: Ipv4Addr::new(10, 0, 0, 1),
            tha: [0; 6],
            tpa: Ipv4Addr::new(10, 0, 0, 254),
        })
    );
    assert_eq!((view.ip, view.l4, view.dhcp), (None, None, None));
    assert_eq!(
        view.to_string(),
        "dl_src=00:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,dl_type=0x0806,arp_op=1,\
         arp_spa=10.0.0.1,arp_tpa=10.0.0.254,arp_sha=00:00:00:00:00:01,arp_tha=00:00:00:00:00:00"
    );
}

#[test]
fn arp_reply_answers_request() {
    let reply = arp_reply(&frame(ARP_REQUEST_HEX), ROUTER_MAC).expect("a request");
    // Pinned bytes: Ethernet to the asker, ARP is-at 10.0.0.254 = 02:00:00:00:00:fe.
    assert_eq!(
        hex::encode(&reply),
        "0000000000010200000000fe080600010800060400020200000000fe0a0000fe0000000000010a000001"
    );
    let view = PacketView::parse(&reply).expect("ethernet");
    assert_eq!(
        view.arp,
        Some(ArpView {
            op: ARP_REPLY,
            sha: ROUTER_MAC,
            spa: Ipv4Addr::new(10, 0, 0, 254),
            tha: MAC1,
            tpa: Ipv4Addr::new(10, 0, 0, 1),
        })
    );
    // A reply is not answered again.
    assert_eq!(arp_reply(&reply, ROUTER_MAC), None);
}

#[test]
fn vlan_ping_literal_and_echo_reply() {
    let req = frame(VLAN_PING_HEX);
    let view = PacketView::parse(&req).expect("ethernet");
    assert_eq!(
        view.vlan,
        Some(Vlan {
            tpid: ETH_TYPE_VLAN,
            vid: 10,
            pcp: 3
        })
    );
    assert_eq!(view.eth_type, ETH_TYPE_IPV4);
    let ip = view.ip.expect("ipv4");
    assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(ip.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(
        (ip.proto, ip.ttl, ip.fragmented),
        (IP_PROTO_ICMP, 64, false)
    );
    assert_eq!(view.icmp(), Some((8, 0)));
    assert_eq!(view.l4_ports(), None);

    let reply = icmpv4_echo_reply(&req).expect("an echo request");
    assert_checksums_valid(&reply);
    let rv = PacketView::parse(&reply).expect("ethernet");
    assert_eq!((rv.eth_src, rv.eth_dst, rv.vlan), (MAC2, MAC1, view.vlan));
    assert_eq!(rv.ip_src(), view.ip_dst());
    assert_eq!(rv.ip_dst(), view.ip_src());
    assert_eq!(rv.icmp(), Some((0, 0)));
    // Same id, sequence and data: everything after the ICMP type/code/checksum is equal.
    let icmp_at = 14 + 4 + 20;
    assert_eq!(reply[icmp_at + 4..], req[icmp_at + 4..]);
    assert_eq!(icmpv4_echo_reply(&reply), None, "a reply is not answered");
}

#[test]
fn echo_reply_refuses_truncated_and_broadcast_requests() {
    let req = frame(VLAN_PING_HEX);
    assert_eq!(icmpv4_echo_reply(&req[..req.len() - 1]), None);
    let mut bcast = req.clone();
    bcast[..6].copy_from_slice(&[0xff; 6]);
    assert_eq!(icmpv4_echo_reply(&bcast), None);
}

#[test]
fn tcp6_literal() {
    let view = PacketView::parse(&frame(TCP6_SYN_HEX)).expect("ethernet");
    assert_eq!(view.eth_type, ETH_TYPE_IPV6);
    let ip = view.ip.expect("ipv6");
    assert_eq!(ip.src, "2001:db8::1".parse::<IpAddr>().expect("literal"));
    assert_eq!(ip.dst, "2001:db8::2".parse::<IpAddr>().expect("literal"));
    assert_eq!(ip.proto, IP_PROTO_TCP);
    assert_eq!(
        view.l4,
        Some(L4View::Tcp {
            src: 1234,
            dst: 80,
            flags: 0x002
        })
    );
}

#[test]
fn udp4_literal() {
    let view = PacketView::parse(&frame(UDP4_HEX)).expect("ethernet");
    let ip = view.ip.expect("ipv4");
    assert_eq!((ip.proto, ip.ttl, ip.dscp, ip.ecn), (IP_PROTO_UDP, 9, 8, 0));
    assert_eq!(view.l4_ports(), Some((5000, 53)));
    assert_eq!(view.dhcp, None);
    assert_eq!(
        view.to_string(),
        "dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,dl_type=0x0800,nw_src=10.0.0.1,\
         nw_dst=10.0.0.2,nw_proto=17,nw_ttl=9,nw_tos=32,tp_src=5000,tp_dst=53"
    );
}

#[test]
fn ping6_literal_and_echo_reply() {
    let req = frame(PING6_HEX);
    let view = PacketView::parse(&req).expect("ethernet");
    assert_eq!(view.icmp(), Some((128, 0)));
    let reply = icmpv6_echo_reply(&req).expect("an echo request");
    assert_checksums_valid(&reply);
    let rv = PacketView::parse(&reply).expect("ethernet");
    assert_eq!(rv.icmp(), Some((129, 0)));
    assert_eq!((rv.ip_src(), rv.ip_dst()), (view.ip_dst(), view.ip_src()));
    assert_eq!(reply[14 + 40 + 4..], req[14 + 40 + 4..]);
}

#[test]
fn icmpv4_port_unreachable_quotes_original() {
    let orig = frame(UDP4_HEX);
    let router_ip = Ipv4Addr::new(10, 0, 0, 2);
    let err = icmpv4_error(&orig, Icmpv4Error::PortUnreachable, ROUTER_MAC, router_ip)
        .expect("an error is due");
    assert_checksums_valid(&err);
    let view = PacketView::parse(&err).expect("ethernet");
    assert_eq!((view.eth_src, view.eth_dst), (ROUTER_MAC, MAC1));
    assert_eq!(view.ip_src(), Some(IpAddr::V4(router_ip)));
    assert_eq!(view.ip_dst(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(view.icmp(), Some((3, 3)));
    // The whole original datagram (92 bytes < 548) is quoted after the 8-byte ICMP header.
    assert_eq!(err[14 + 20 + 8..], orig[14..]);
    // No error about an error.
    assert_eq!(
        icmpv4_error(&err, Icmpv4Error::HostUnreachable, ROUTER_MAC, router_ip),
        None
    );
}

#[test]
fn icmpv4_time_exceeded_and_frag_needed_codes() {
    let orig = frame(VLAN_PING_HEX);
    let ip = Ipv4Addr::new(10, 0, 0, 254);
    let te = icmpv4_error(&orig, Icmpv4Error::TtlExceeded, ROUTER_MAC, ip).expect("due");
    let view = PacketView::parse(&te).expect("ethernet");
    assert_eq!(view.icmp(), Some((11, 0)));
    assert_eq!(view.vlan.map(|v| v.vid), Some(10), "VLAN tag mirrored");
    let fragn = icmpv4_error(
        &orig,
        Icmpv4Error::FragmentationNeeded { next_hop_mtu: 1400 },
        ROUTER_MAC,
        ip,
    )
    .expect("due");
    assert_checksums_valid(&fragn);
    let icmp_at = 14 + 4 + 20;
    assert_eq!(fragn[icmp_at..icmp_at + 2], [3, 4]);
    assert_eq!(fragn[icmp_at + 6..icmp_at + 8], 1400u16.to_be_bytes());
}

#[test]
fn icmpv4_error_quote_is_capped_at_576_bytes() {
    let payload = vec![0xab; 1400];
    let mut orig = Vec::new();
    PacketBuilder::ethernet2(MAC1, MAC2)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 1)
        .udp(1000, 2000)
        .write(&mut orig, &payload)
        .expect("fits");
    let err = icmpv4_error(
        &orig,
        Icmpv4Error::TtlExceeded,
        ROUTER_MAC,
        Ipv4Addr::new(10, 0, 0, 254),
    )
    .expect("due");
    assert_eq!(err.len(), 14 + 576);
    assert_eq!(err[14 + 28..], orig[14..14 + 548]);
}

#[test]
fn icmpv4_error_suppressed_for_broadcast_and_fragments() {
    let mut orig = frame(UDP4_HEX);
    let ip = Ipv4Addr::new(10, 0, 0, 254);
    orig[..6].copy_from_slice(&[0xff; 6]);
    assert_eq!(
        icmpv4_error(&orig, Icmpv4Error::PortUnreachable, ROUTER_MAC, ip),
        None
    );
    let mut frag = frame(UDP4_HEX);
    // Fragment offset 8 (in 8-byte units): a later fragment has no header to report on.
    frag[14 + 6..14 + 8].copy_from_slice(&1u16.to_be_bytes());
    assert_eq!(
        icmpv4_error(&frag, Icmpv4Error::PortUnreachable, ROUTER_MAC, ip),
        None
    );
    assert_eq!(
        icmpv4_error(
            &frame(ARP_REQUEST_HEX),
            Icmpv4Error::PortUnreachable,
            ROUTER_MAC,
            ip
        ),
        None
    );
}

#[test]
fn icmpv6_errors() {
    let orig = frame(TCP6_SYN_HEX);
    let ip: Ipv6Addr = "2001:db8::fe".parse().expect("literal");
    let err = icmpv6_error(&orig, Icmpv6Error::PortUnreachable, ROUTER_MAC, ip).expect("due");
    assert_checksums_valid(&err);
    let view = PacketView::parse(&err).expect("ethernet");
    assert_eq!(view.icmp(), Some((1, 4)));
    assert_eq!(err[14 + 40 + 8..], orig[14..]);
    let ptb = icmpv6_error(
        &orig,
        Icmpv6Error::PacketTooBig { mtu: 1280 },
        ROUTER_MAC,
        ip,
    )
    .expect("due");
    assert_eq!(PacketView::parse(&ptb).and_then(|v| v.icmp()), Some((2, 0)));
    assert_eq!(
        icmpv6_error(&err, Icmpv6Error::NoRoute, ROUTER_MAC, ip),
        None,
        "no error about an error"
    );
}

/// A client message as smoltcp's DHCP client would send it.
fn dhcp_client_frame(
    msg_type: WireType,
    requested_ip: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
    broadcast: bool,
) -> Vec<u8> {
    let repr = DhcpRepr {
        message_type: msg_type,
        transaction_id: 0x1234_5678,
        secs: 0,
        client_hardware_address: EthernetAddress(MAC1),
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: Ipv4Addr::UNSPECIFIED,
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast,
        requested_ip,
        client_identifier: Some(EthernetAddress(MAC1)),
        server_identifier: server_id,
        parameter_request_list: Some(&[1, 3, 6, 15, 26]),
        dns_servers: None,
        max_size: Some(1500),
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let mut payload = vec![0; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
        .expect("fits");
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC1, [0xff; 6])
        .ipv4([0, 0, 0, 0], [255, 255, 255, 255], 64)
        .udp(DHCP_CLIENT_PORT, DHCP_SERVER_PORT)
        .write(&mut out, &payload)
        .expect("fits");
    out
}

/// A server frame with every field and option set, in two VLAN tags.
fn full_frame() -> DhcpFrame {
    DhcpFrame {
        l2: L2 {
            src: ROUTER_MAC,
            dst: MAC1,
            vlan: Some(Vlan {
                tpid: 0x88a8,
                vid: 100,
                pcp: 1,
            }),
            inner_vlan: Some(Vlan {
                tpid: ETH_TYPE_VLAN,
                vid: 10,
                pcp: 3,
            }),
        },
        src_ip: Ipv4Addr::new(10, 0, 0, 254),
        dst_ip: Ipv4Addr::new(10, 0, 0, 5),
        dst_port: DHCP_CLIENT_PORT,
        message_type: DhcpMessageType::Ack,
        xid: 0x1234_5678,
        chaddr: MAC1,
        ciaddr: Ipv4Addr::new(10, 0, 0, 5),
        yiaddr: Ipv4Addr::new(10, 0, 0, 5),
        giaddr: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        options: DhcpOptions {
            server_id: Some(Ipv4Addr::new(10, 0, 0, 254)),
            subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            router: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dns_servers: vec![
                Ipv4Addr::new(10, 0, 0, 53),
                Ipv4Addr::new(8, 8, 8, 8),
                Ipv4Addr::new(8, 8, 4, 4),
                Ipv4Addr::new(1, 1, 1, 1),
            ],
            lease_secs: Some(86_400),
            renew_secs: Some(43_200),
            rebind_secs: Some(75_600),
            mtu: Some(1450),
            domain_name: Some("tenant.example".into()),
            host_name: Some("vm-5".into()),
            classless_routes: vec![
                ClasslessRoute {
                    dest: Ipv4Addr::new(169, 254, 169, 254),
                    prefix_len: 32,
                    gateway: Ipv4Addr::new(10, 0, 0, 2),
                },
                ClasslessRoute {
                    dest: Ipv4Addr::UNSPECIFIED,
                    prefix_len: 0,
                    gateway: Ipv4Addr::new(10, 0, 0, 1),
                },
            ],
        },
    }
}

/// The raw options of a DHCP frame, as `(code, data)`, read with smoltcp's option iterator
/// (not with the builder's code).
fn reply_options(frame: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let payload = build::udp_payload(frame).expect("udp");
    let pkt = DhcpPacket::new_checked(payload).expect("dhcp");
    pkt.options().map(|o| (o.kind, o.data.to_vec())).collect()
}

fn option(frame: &[u8], code: u8) -> Option<Vec<u8>> {
    reply_options(frame)
        .into_iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| d)
}

#[test]
fn dhcp_client_messages_are_read() {
    let discover = dhcp_client_frame(WireType::Discover, None, None, true);
    let view = PacketView::parse(&discover).expect("ethernet");
    let dhcp = view.dhcp.expect("dhcp");
    assert_eq!(dhcp.message_type, Some(DhcpMessageType::Discover));
    assert_eq!((dhcp.op, dhcp.xid, dhcp.chaddr), (1, 0x1234_5678, MAC1));
    assert!(dhcp.broadcast);
    assert_eq!((dhcp.requested_ip, dhcp.server_id), (None, None));
    assert!(view.to_string().ends_with(",dhcp=discover"));

    let server = Ipv4Addr::new(10, 0, 0, 254);
    let wanted = Ipv4Addr::new(10, 0, 0, 5);
    let request = dhcp_client_frame(WireType::Request, Some(wanted), Some(server), false);
    let dhcp = PacketView::parse(&request)
        .and_then(|v| v.dhcp)
        .expect("dhcp");
    assert_eq!(dhcp.message_type, Some(DhcpMessageType::Request));
    assert_eq!(
        (dhcp.requested_ip, dhcp.server_id),
        (Some(wanted), Some(server))
    );
    assert!(!dhcp.broadcast);
    // Not DHCP at all: UDP to port 53.
    assert_eq!(
        PacketView::parse(&frame(UDP4_HEX)).and_then(|v| v.dhcp),
        None
    );
}

#[test]
fn dhcp_frame_writes_every_field_and_option() {
    let f = full_frame();
    let built = dhcp_frame(&f).expect("encodes");
    assert_checksums_valid(&built);
    let view = PacketView::parse(&built).expect("ethernet");
    assert_eq!(
        (view.eth_src, view.eth_dst, view.vlan, view.inner_vlan),
        (f.l2.src, f.l2.dst, f.l2.vlan, f.l2.inner_vlan)
    );
    assert_eq!(view.ip_src(), Some(IpAddr::V4(f.src_ip)));
    assert_eq!(view.ip_dst(), Some(IpAddr::V4(f.dst_ip)));
    assert_eq!(view.l4_ports(), Some((DHCP_SERVER_PORT, DHCP_CLIENT_PORT)));
    assert_eq!(
        view.dhcp,
        Some(DhcpView {
            op: 2,
            xid: f.xid,
            chaddr: f.chaddr,
            ciaddr: f.ciaddr,
            yiaddr: f.yiaddr,
            giaddr: f.giaddr,
            broadcast: false,
            message_type: Some(DhcpMessageType::Ack),
            requested_ip: None,
            server_id: Some(Ipv4Addr::new(10, 0, 0, 254)),
        })
    );
    let payload = build::udp_payload(&built).expect("udp");
    assert!(payload.len() >= 300, "BOOTP minimum, RFC 1542");
    let pkt = DhcpPacket::new_checked(payload).expect("dhcp");
    let repr = DhcpRepr::parse(&pkt).expect("smoltcp's client accepts it");
    assert_eq!(repr.message_type, WireType::Ack);
    assert_eq!(pkt.server_ip(), Ipv4Addr::UNSPECIFIED, "siaddr");

    let dns: Vec<u8> = [[10, 0, 0, 53], [8, 8, 8, 8], [8, 8, 4, 4], [1, 1, 1, 1]].concat();
    let routes: Vec<u8> = [
        &[32, 169, 254, 169, 254, 10, 0, 0, 2][..],
        &[0, 10, 0, 0, 1][..],
    ]
    .concat();
    let want: Vec<(u8, Vec<u8>)> = vec![
        (53, vec![5]),
        (1, vec![255, 255, 255, 0]),
        (3, vec![10, 0, 0, 1]),
        (6, dns),
        (12, b"vm-5".to_vec()),
        (15, b"tenant.example".to_vec()),
        (26, 1450u16.to_be_bytes().to_vec()),
        (51, 86_400u32.to_be_bytes().to_vec()),
        (54, vec![10, 0, 0, 254]),
        (58, 43_200u32.to_be_bytes().to_vec()),
        (59, 75_600u32.to_be_bytes().to_vec()),
        (121, routes),
    ];
    assert_eq!(reply_options(&built), want, "every option, in code order");
}

#[test]
fn dhcp_frame_leaves_out_what_is_not_given() {
    let nak = DhcpFrame {
        l2: L2 {
            dst: [0xff; 6],
            vlan: None,
            inner_vlan: None,
            ..full_frame().l2
        },
        dst_ip: Ipv4Addr::BROADCAST,
        message_type: DhcpMessageType::Nak,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::new(10, 0, 9, 1),
        broadcast: true,
        options: DhcpOptions {
            server_id: Some(Ipv4Addr::new(10, 0, 0, 254)),
            ..DhcpOptions::default()
        },
        ..full_frame()
    };
    let built = dhcp_frame(&nak).expect("encodes");
    assert_eq!(
        reply_options(&built),
        vec![(53, vec![6]), (54, vec![10, 0, 0, 254])]
    );
    let d = PacketView::parse(&built)
        .and_then(|v| v.dhcp)
        .expect("dhcp");
    assert_eq!((d.op, d.broadcast, d.giaddr), (2, true, nak.giaddr));
    assert_eq!(
        (d.ciaddr, d.yiaddr),
        (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)
    );

    // A type smoltcp does not know (FORCERENEW, RFC 3203) is still sent as a server's reply.
    let force = DhcpFrame {
        message_type: DhcpMessageType::Unknown(9),
        ..nak
    };
    let built = dhcp_frame(&force).expect("encodes");
    let d = PacketView::parse(&built)
        .and_then(|v| v.dhcp)
        .expect("dhcp");
    assert_eq!(
        (d.op, d.message_type),
        (2, Some(DhcpMessageType::Unknown(9)))
    );
}

/// RFC 3442 §5's table of destination descriptors, byte for byte, each followed by its router.
#[test]
fn classless_routes_encode_as_rfc_3442_says() {
    let gw = Ipv4Addr::new(192, 0, 2, 1);
    let examples: [(Ipv4Addr, u8, &[u8]); 7] = [
        (Ipv4Addr::new(0, 0, 0, 0), 0, &[0]),
        (Ipv4Addr::new(10, 0, 0, 0), 8, &[8, 10]),
        (Ipv4Addr::new(10, 0, 0, 0), 24, &[24, 10, 0, 0]),
        (Ipv4Addr::new(10, 17, 0, 0), 16, &[16, 10, 17]),
        (Ipv4Addr::new(10, 27, 129, 0), 24, &[24, 10, 27, 129]),
        (Ipv4Addr::new(10, 229, 0, 128), 25, &[25, 10, 229, 0, 128]),
        (Ipv4Addr::new(10, 198, 122, 47), 32, &[32, 10, 198, 122, 47]),
    ];
    let mut all = Vec::new();
    let mut want_all = Vec::new();
    for (dest, prefix_len, descriptor) in examples {
        let route = ClasslessRoute {
            dest,
            prefix_len,
            gateway: gw,
        };
        let f = DhcpFrame {
            options: DhcpOptions {
                classless_routes: vec![route],
                ..DhcpOptions::default()
            },
            ..full_frame()
        };
        let mut want = descriptor.to_vec();
        want.extend_from_slice(&[192, 0, 2, 1]);
        let built = dhcp_frame(&f).expect("encodes");
        assert_eq!(
            option(&built, 121),
            Some(want.clone()),
            "{dest}/{prefix_len}"
        );
        all.push(route);
        want_all.extend(want);
    }
    // Several routes are concatenated in order in one option.
    let f = DhcpFrame {
        options: DhcpOptions {
            classless_routes: all,
            ..DhcpOptions::default()
        },
        ..full_frame()
    };
    assert_eq!(
        option(&dhcp_frame(&f).expect("encodes"), 121),
        Some(want_all)
    );
    // Host bits beyond the prefix are not sent: 10.0.0.77/8 is 10.0.0.0/8.
    let sloppy = DhcpFrame {
        options: DhcpOptions {
            classless_routes: vec![ClasslessRoute {
                dest: Ipv4Addr::new(10, 1, 2, 77),
                prefix_len: 12,
                gateway: gw,
            }],
            ..DhcpOptions::default()
        },
        ..full_frame()
    };
    assert_eq!(
        option(&dhcp_frame(&sloppy).expect("encodes"), 121),
        Some(vec![12, 10, 0, 192, 0, 2, 1])
    );
}

#[test]
fn dhcp_frame_refuses_what_does_not_encode() {
    let with = |options: DhcpOptions| {
        dhcp_frame(&DhcpFrame {
            options,
            ..full_frame()
        })
    };
    let name = |n: usize| DhcpOptions {
        host_name: Some("x".repeat(n)),
        ..DhcpOptions::default()
    };
    assert!(with(name(255)).is_some());
    assert_eq!(with(name(256)), None, "an option holds at most 255 bytes");
    let domain = DhcpOptions {
        domain_name: Some("d".repeat(256)),
        ..DhcpOptions::default()
    };
    assert_eq!(with(domain), None);
    let dns = |n: u32| DhcpOptions {
        dns_servers: (0..n).map(Ipv4Addr::from).collect(),
        ..DhcpOptions::default()
    };
    assert!(with(dns(63)).is_some());
    assert_eq!(with(dns(64)), None);
    // A /32 route takes 9 bytes: 28 fit in 252, 29 do not.
    let routes = |n: usize| DhcpOptions {
        classless_routes: vec![
            ClasslessRoute {
                dest: Ipv4Addr::new(10, 0, 0, 1),
                prefix_len: 32,
                gateway: Ipv4Addr::new(10, 0, 0, 254),
            };
            n
        ],
        ..DhcpOptions::default()
    };
    assert!(with(routes(28)).is_some());
    assert_eq!(with(routes(29)), None);
    let bad_prefix = DhcpOptions {
        classless_routes: vec![ClasslessRoute {
            dest: Ipv4Addr::new(10, 0, 0, 1),
            prefix_len: 33,
            gateway: Ipv4Addr::new(10, 0, 0, 254),
        }],
        ..DhcpOptions::default()
    };
    assert_eq!(with(bad_prefix), None);
}

#[test]
fn every_prefix_of_every_literal_parses_without_panic() {
    for hex in [
        ARP_REQUEST_HEX,
        VLAN_PING_HEX,
        TCP6_SYN_HEX,
        UDP4_HEX,
        PING6_HEX,
    ] {
        let f = frame(hex);
        for n in 0..=f.len() {
            let view = PacketView::parse(&f[..n]);
            assert_eq!(view.is_some(), n >= 14, "prefix {n} of {hex}");
            let _ = icmpv4_echo_reply(&f[..n]);
            let _ = icmpv6_echo_reply(&f[..n]);
            let _ = arp_reply(&f[..n], ROUTER_MAC);
            let _ = icmpv4_error(
                &f[..n],
                Icmpv4Error::TtlExceeded,
                ROUTER_MAC,
                Ipv4Addr::LOCALHOST,
            );
        }
    }
    // A packet-in cut at 64 bytes still yields the L2–L4 headers.
    let cut = &frame(UDP4_HEX)[..64];
    assert_eq!(
        PacketView::parse(cut).and_then(|v| v.l4_ports()),
        Some((5000, 53))
    );
}

fn arb_vlan() -> impl Strategy<Value = Option<Vlan>> {
    proptest::option::of((0u16..4096, 0u8..8).prop_map(|(vid, pcp)| Vlan {
        tpid: ETH_TYPE_VLAN,
        vid,
        pcp,
    }))
}

fn arb_unicast_v4() -> impl Strategy<Value = Ipv4Addr> {
    (1u8..224, any::<[u8; 3]>()).prop_map(|(a, [b, c, d])| Ipv4Addr::new(a, b, c, d))
}

fn arb_unicast_mac() -> impl Strategy<Value = [u8; 6]> {
    any::<[u8; 6]>().prop_map(|mut m| {
        m[0] &= 0xfe;
        m
    })
}

fn arb_route() -> impl Strategy<Value = ClasslessRoute> {
    (any::<[u8; 4]>(), 0u8..=32, any::<[u8; 4]>()).prop_map(|(dest, prefix_len, gw)| {
        ClasslessRoute {
            dest: dest.into(),
            prefix_len,
            gateway: gw.into(),
        }
    })
}

fn arb_name() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z0-9.-]{0,64}")
}

prop_compose! {
    fn arb_dhcp_options()(
        server_id in proptest::option::of(any::<[u8; 4]>()),
        subnet_mask in proptest::option::of(0u32..=32),
        router in proptest::option::of(any::<[u8; 4]>()),
        dns_servers in proptest::collection::vec(any::<[u8; 4]>(), 0..8),
        lease_secs in proptest::option::of(any::<u32>()),
        renew_secs in proptest::option::of(any::<u32>()),
        rebind_secs in proptest::option::of(any::<u32>()),
        mtu in proptest::option::of(any::<u16>()),
        domain_name in arb_name(),
        host_name in arb_name(),
        classless_routes in proptest::collection::vec(arb_route(), 0..8),
    ) -> DhcpOptions {
        DhcpOptions {
            server_id: server_id.map(Into::into),
            subnet_mask: subnet_mask
                .map(|p| Ipv4Addr::from(u32::MAX.checked_shl(32 - p).unwrap_or(0))),
            router: router.map(Into::into),
            dns_servers: dns_servers.into_iter().map(Into::into).collect(),
            lease_secs,
            renew_secs,
            rebind_secs,
            mtu,
            domain_name,
            host_name,
            classless_routes,
        }
    }
}

/// Decodes option 121 (RFC 3442 §5) independently of the builder, for the round trip.
fn decode_classless_routes(mut data: &[u8]) -> Option<Vec<ClasslessRoute>> {
    let mut out = Vec::new();
    while let Some((&prefix_len, rest)) = data.split_first() {
        let n = usize::from(prefix_len).div_ceil(8);
        if prefix_len > 32 || rest.len() < n + 4 {
            return None;
        }
        let mut dest = [0u8; 4];
        dest[..n].copy_from_slice(&rest[..n]);
        let gateway: [u8; 4] = rest[n..n + 4].try_into().ok()?;
        out.push(ClasslessRoute {
            dest: dest.into(),
            prefix_len,
            gateway: gateway.into(),
        });
        data = &rest[n + 4..];
    }
    Some(out)
}

/// Reads a frame's options back into `DhcpOptions` with smoltcp's iterator.
fn read_dhcp_options(frame: &[u8]) -> DhcpOptions {
    let ip = |d: &[u8]| Ipv4Addr::from(<[u8; 4]>::try_from(d).expect("4 bytes"));
    let u32_of = |d: &[u8]| u32::from_be_bytes(d.try_into().expect("4 bytes"));
    let text = |d: &[u8]| String::from_utf8(d.to_vec()).expect("utf-8");
    let mut o = DhcpOptions::default();
    for (code, data) in reply_options(frame) {
        match code {
            1 => o.subnet_mask = Some(ip(&data)),
            3 => o.router = Some(ip(&data)),
            6 => o.dns_servers = data.chunks(4).map(ip).collect(),
            12 => o.host_name = Some(text(&data)),
            15 => o.domain_name = Some(text(&data)),
            26 => o.mtu = Some(u16::from_be_bytes(data[..].try_into().expect("2 bytes"))),
            51 => o.lease_secs = Some(u32_of(&data)),
            54 => o.server_id = Some(ip(&data)),
            58 => o.renew_secs = Some(u32_of(&data)),
            59 => o.rebind_secs = Some(u32_of(&data)),
            121 => o.classless_routes = decode_classless_routes(&data).expect("RFC 3442"),
            53 => {}
            other => panic!("unexpected option {other}"),
        }
    }
    o
}

/// A route as it reads back: host bits beyond the prefix are not sent.
fn masked(r: ClasslessRoute) -> ClasslessRoute {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(r.prefix_len))
        .unwrap_or(0);
    ClasslessRoute {
        dest: Ipv4Addr::from(u32::from(r.dest) & mask),
        ..r
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let view = PacketView::parse(&bytes);
        prop_assert_eq!(view.is_some(), bytes.len() >= 14);
        let _ = icmpv4_echo_reply(&bytes);
        let _ = icmpv6_echo_reply(&bytes);
        let _ = arp_reply(&bytes, ROUTER_MAC);
        let _ = icmpv4_error(&bytes, Icmpv4Error::PortUnreachable, ROUTER_MAC, Ipv4Addr::LOCALHOST);
        let _ = icmpv6_error(&bytes, Icmpv6Error::NoRoute, ROUTER_MAC, Ipv6Addr::LOCALHOST);
    }

    /// Prefixing random bytes with a plausible Ethernet/IPv4/UDP:67 header drives them into the
    /// DHCP parser, which plain random bytes rarely reach.
    #[test]
    fn arbitrary_dhcp_payload_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC1, MAC2)
            .ipv4([0, 0, 0, 0], [255, 255, 255, 255], 64)
            .udp(DHCP_CLIENT_PORT, DHCP_SERVER_PORT)
            .write(&mut f, &payload)
            .expect("fits");
        let view = PacketView::parse(&f).expect("ethernet");
        if let Some(d) = view.dhcp {
            // What the view read is what the bytes say.
            prop_assert!(payload.len() >= 240);
            prop_assert_eq!(d.xid, u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]));
        }
    }

    #[test]
    fn arp_frame_round_trips(
        src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(), vlan in arb_vlan(), inner in arb_vlan(),
        op in any::<u16>(), sha in any::<[u8; 6]>(), tha in any::<[u8; 6]>(),
        spa in any::<[u8; 4]>(), tpa in any::<[u8; 4]>(),
    ) {
        let arp = ArpView { op, sha, spa: spa.into(), tha, tpa: tpa.into() };
        // An 802.1ad service tag outside the customer tag, when both are drawn.
        let (vlan, inner_vlan) = match (vlan, inner) {
            (Some(outer), Some(inner)) => (Some(Vlan { tpid: 0x88a8, ..outer }), Some(inner)),
            (vlan, _) => (vlan, None),
        };
        let f = arp_frame(L2 { src, dst, vlan, inner_vlan }, &arp);
        let view = PacketView::parse(&f).expect("ethernet");
        prop_assert_eq!(
            (view.eth_src, view.eth_dst, view.vlan, view.inner_vlan),
            (src, dst, vlan, inner_vlan)
        );
        prop_assert_eq!(view.eth_type, ETH_TYPE_ARP);
        prop_assert_eq!(view.arp, Some(arp));
    }

    #[test]
    fn echo_reply_round_trips(
        mac_a in arb_unicast_mac(), mac_b in arb_unicast_mac(), vlan in arb_vlan(),
        inner in arb_vlan(),
        ip_a in arb_unicast_v4(), ip_b in arb_unicast_v4(),
        id in any::<u16>(), seq in any::<u16>(),
        data in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut req = Vec::new();
        let inner_vlan = vlan.and(inner);
        L2 { src: mac_a, dst: mac_b, vlan, inner_vlan }.write(etherparse::EtherType::IPV4, &mut req);
        PacketBuilder::ipv4(ip_a.octets(), ip_b.octets(), 64)
            .icmpv4_echo_request(id, seq)
            .write(&mut req, &data)
            .expect("fits");
        let reply = icmpv4_echo_reply(&req).expect("an echo request");
        assert_checksums_valid(&reply);
        let view = PacketView::parse(&reply).expect("ethernet");
        prop_assert_eq!(
            (view.eth_src, view.eth_dst, view.vlan, view.inner_vlan),
            (mac_b, mac_a, vlan, inner_vlan)
        );
        prop_assert_eq!(view.ip_src(), Some(IpAddr::V4(ip_b)));
        prop_assert_eq!(view.ip_dst(), Some(IpAddr::V4(ip_a)));
        prop_assert_eq!(view.icmp(), Some((0, 0)));
        let pkt = SlicedPacket::from_ethernet(&reply).expect("strict");
        let Some(TransportSlice::Icmpv4(icmp)) = pkt.transport else {
            return Err(TestCaseError::fail("no icmp"));
        };
        prop_assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader { id, seq })
        );
        prop_assert_eq!(icmp.payload(), &data[..]);
    }

    /// Every field and option the builder is given reads back unchanged (route destinations
    /// with their host bits cleared).
    #[test]
    fn dhcp_frame_round_trips(
        src in arb_unicast_mac(), dst in any::<[u8; 6]>(), vlan in arb_vlan(), inner in arb_vlan(),
        src_ip in arb_unicast_v4(), dst_ip in any::<[u8; 4]>(),
        to_relay in any::<bool>(), code in 1u8..20, xid in any::<u32>(),
        chaddr in arb_unicast_mac(), ciaddr in any::<[u8; 4]>(), yiaddr in any::<[u8; 4]>(),
        giaddr in any::<[u8; 4]>(), broadcast in any::<bool>(), options in arb_dhcp_options(),
    ) {
        let f = DhcpFrame {
            l2: L2 { src, dst, vlan, inner_vlan: vlan.and(inner) },
            src_ip,
            dst_ip: dst_ip.into(),
            dst_port: if to_relay { DHCP_SERVER_PORT } else { DHCP_CLIENT_PORT },
            message_type: code.into(),
            xid,
            chaddr,
            ciaddr: ciaddr.into(),
            yiaddr: yiaddr.into(),
            giaddr: giaddr.into(),
            broadcast,
            options,
        };
        let Some(built) = dhcp_frame(&f) else {
            // Only an over-long option refuses to encode.
            let too_long = f.options.dns_servers.len() > 63
                || f.options.classless_routes.iter().map(|r| 5 + usize::from(r.prefix_len).div_ceil(8)).sum::<usize>() > 255;
            prop_assert!(too_long);
            return Ok(());
        };
        assert_checksums_valid(&built);
        let view = PacketView::parse(&built).expect("ethernet");
        prop_assert_eq!(
            (view.eth_src, view.eth_dst, view.vlan, view.inner_vlan),
            (f.l2.src, f.l2.dst, f.l2.vlan, f.l2.inner_vlan)
        );
        prop_assert_eq!(view.ip_src(), Some(IpAddr::V4(f.src_ip)));
        prop_assert_eq!(view.ip_dst(), Some(IpAddr::V4(f.dst_ip)));
        prop_assert_eq!(view.l4_ports(), Some((DHCP_SERVER_PORT, f.dst_port)));
        let d = view.dhcp.expect("dhcp");
        let client_type = matches!(code, 1 | 3 | 4 | 7 | 8);
        prop_assert_eq!(d.op, if client_type { 1 } else { 2 });
        prop_assert_eq!(
            (d.xid, d.chaddr, d.ciaddr, d.yiaddr, d.giaddr, d.broadcast),
            (f.xid, f.chaddr, f.ciaddr, f.yiaddr, f.giaddr, f.broadcast)
        );
        prop_assert_eq!(d.message_type, Some(f.message_type));
        prop_assert_eq!(d.server_id, f.options.server_id);
        let want = DhcpOptions {
            classless_routes: f.options.classless_routes.iter().copied().map(masked).collect(),
            ..f.options.clone()
        };
        prop_assert_eq!(read_dhcp_options(&built), want);
    }
}

/// Found by the `packet_view` fuzz target: a reply to a relay goes to port 67 on both sides, and
/// must still read as DHCP.
#[test]
fn relayed_dhcp_reply_reads_as_dhcp() {
    let relay = Ipv4Addr::new(10, 0, 9, 1);
    let offer = DhcpFrame {
        dst_ip: relay,
        dst_port: DHCP_SERVER_PORT,
        giaddr: relay,
        message_type: DhcpMessageType::Offer,
        ..full_frame()
    };
    let view = PacketView::parse(&dhcp_frame(&offer).expect("encodes")).expect("ethernet");
    assert_eq!(view.l4_ports(), Some((DHCP_SERVER_PORT, DHCP_SERVER_PORT)));
    assert_eq!(view.ip_dst(), Some(IpAddr::V4(relay)));
    assert_eq!(
        view.dhcp.and_then(|d| d.message_type),
        Some(DhcpMessageType::Offer)
    );
}

/// Found by the `packet_view` fuzz target: an unencrypted MACsec frame hides its inner IPv4 from
/// the view (as from an OpenFlow match), so no builder may answer that inner packet either.
#[test]
fn builders_do_not_answer_what_macsec_hides() {
    let f = frame(
        "000010000002000000000001 88e5 60006e6d6dffff00603a 8100600a 0800 \
         45400000000000000001669f 2d0a00015b0a000002 08000000000100020000020800000000010002"
            .replace(' ', "")
            .as_str(),
    );
    let view = PacketView::parse(&f).expect("ethernet");
    assert_eq!((view.eth_type, view.ip), (0x88e5, None));
    assert_eq!(icmpv4_echo_reply(&f), None);
    assert_eq!(
        icmpv4_error(
            &f,
            Icmpv4Error::TtlExceeded,
            ROUTER_MAC,
            Ipv4Addr::LOCALHOST
        ),
        None
    );
}

/// A QinQ frame (802.1ad S-tag 100 around the 802.1Q tag 10) is read to the inner tag, and a
/// reply carries both tags back; a third tag is beyond what replies mirror, so none is built.
#[test]
fn qinq_tags_are_read_and_mirrored() {
    let single = frame(VLAN_PING_HEX);
    let mut qinq = single[..12].to_vec();
    qinq.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64]);
    qinq.extend_from_slice(&single[12..]);
    let view = PacketView::parse(&qinq).expect("ethernet");
    let s_tag = Vlan {
        tpid: 0x88a8,
        vid: 100,
        pcp: 0,
    };
    let c_tag = Vlan {
        tpid: ETH_TYPE_VLAN,
        vid: 10,
        pcp: 3,
    };
    assert_eq!((view.vlan, view.inner_vlan), (Some(s_tag), Some(c_tag)));
    assert_eq!(view.eth_type, ETH_TYPE_IPV4);
    assert!(view
        .to_string()
        .contains("dl_vlan=100,dl_vlan_pcp=0,dl_vlan1=10,dl_vlan_pcp1=3"));
    let reply = icmpv4_echo_reply(&qinq).expect("an echo request");
    assert_eq!(reply[12..20], qinq[12..20], "both tags mirrored");
    let rv = PacketView::parse(&reply).expect("ethernet");
    assert_eq!(
        (rv.vlan, rv.inner_vlan, rv.icmp()),
        (Some(s_tag), Some(c_tag), Some((0, 0)))
    );

    let mut triple = qinq[..12].to_vec();
    triple.extend_from_slice(&[0x88, 0xa8, 0x00, 0x65]);
    triple.extend_from_slice(&qinq[12..]);
    assert_eq!(icmpv4_echo_reply(&triple), None);
}

fn tcp_segment(syn: bool, ack: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 22, 1000, 64240);
    let b = if syn { b.syn() } else { b };
    let b = match ack {
        Some(n) => b.ack(n),
        None => b,
    };
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

#[test]
fn tcp_reset_answers_as_the_destination_would() {
    // A SYN: RST|ACK acknowledging the SYN, seq 0.
    let rst = tcp_reset(&tcp_segment(true, None, &[])).expect("a reset");
    let p = SlicedPacket::from_ethernet(&rst).unwrap();
    let (Some(etherparse::NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) =
        (&p.net, &p.transport)
    else {
        panic!("not TCP/IPv4");
    };
    let want = t
        .to_header()
        .calc_checksum_ipv4(&ip.header().to_header(), t.payload())
        .unwrap();
    assert_eq!(t.checksum(), want, "TCP checksum");
    assert_eq!(
        ip.header().to_header().calc_header_checksum(),
        ip.header().header_checksum()
    );
    assert!(t.rst() && t.ack() && !t.syn());
    assert_eq!((t.source_port(), t.destination_port()), (22, 40000));
    assert_eq!((t.sequence_number(), t.acknowledgment_number()), (0, 1001));
    assert_eq!(&rst[0..6], &[2, 0, 0, 0, 0, 1]);
    assert_eq!(&rst[6..12], &[2, 0, 0, 0, 0, 2]);
    // Data with an ACK: RST with seq = that ACK.
    let rst = tcp_reset(&tcp_segment(false, Some(7777), b"hello")).expect("a reset");
    let p = SlicedPacket::from_ethernet(&rst).unwrap();
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("not TCP");
    };
    assert!(t.rst() && !t.ack());
    assert_eq!(t.sequence_number(), 7777);
    // Never a reset for a reset, nor for UDP.
    assert!(tcp_reset(&rst).is_none());
    let udp = frame(UDP4_HEX);
    assert!(tcp_reset(&udp).is_none());
}
