//! The properties every fuzz target checks, shared with `tests/fuzz_corpus.rs` so the committed
//! corpora replay in the ordinary test suite: parse, re-emit, re-parse, compare; never panic.
//!
//! Included with `#[path]` by the fuzz targets and by the corpus test (it is not part of the
//! library, so the crate's public API stays free of test scaffolding).

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use ofproto::packet::{self, DhcpLease, DhcpMessageType, Icmpv4Error, Icmpv6Error, PacketView, L2};

const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

/// `PacketView::parse` on any bytes, then every reply builder; what they build must parse back
/// to the fields they were asked to write.
pub fn packet_view(data: &[u8]) {
    let Some(view) = PacketView::parse(data) else {
        assert!(data.len() < 14, "an Ethernet header was not read");
        return;
    };
    assert_eq!(
        PacketView::parse(data),
        Some(view),
        "parse is deterministic"
    );
    let _ = view.to_string();

    if let Some(arp) = view.arp {
        let l2 = L2 {
            src: view.eth_src,
            dst: view.eth_dst,
            vlan: view.vlan,
        };
        let again = PacketView::parse(&packet::arp_frame(l2, &arp)).expect("built ARP parses");
        assert_eq!(
            (again.eth_src, again.eth_dst, again.vlan, again.arp),
            (view.eth_src, view.eth_dst, view.vlan, Some(arp)),
            "ARP re-emitted from its view"
        );
    }
    if let Some(reply) = packet::arp_reply(data, ROUTER_MAC) {
        let r = PacketView::parse(&reply).expect("ARP reply parses");
        let (req, rep) = (view.arp.expect("a request"), r.arp.expect("a reply"));
        assert_eq!(
            (rep.op, rep.spa, rep.tpa, rep.tha),
            (2, req.tpa, req.spa, req.sha)
        );
    }
    if let Some(reply) = packet::icmpv4_echo_reply(data) {
        let r = PacketView::parse(&reply).expect("echo reply parses");
        assert_eq!(r.icmp(), Some((0, 0)));
        assert_eq!((r.ip_src(), r.ip_dst()), (view.ip_dst(), view.ip_src()));
    }
    if let Some(reply) = packet::icmpv6_echo_reply(data) {
        let r = PacketView::parse(&reply).expect("echo reply parses");
        assert_eq!(r.icmp(), Some((129, 0)));
        assert_eq!((r.ip_src(), r.ip_dst()), (view.ip_dst(), view.ip_src()));
    }
    let router4 = Ipv4Addr::new(10, 0, 0, 254);
    if let Some(err) = packet::icmpv4_error(data, Icmpv4Error::TtlExceeded, ROUTER_MAC, router4) {
        let r = PacketView::parse(&err).expect("ICMP error parses");
        assert_eq!(r.icmp(), Some((11, 0)));
        assert_eq!(r.ip_dst(), view.ip_src());
        assert!(err.len() <= 14 + 4 + 576, "RFC 1812 size cap");
    }
    let router6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
    if let Some(err) = packet::icmpv6_error(data, Icmpv6Error::NoRoute, ROUTER_MAC, router6) {
        let r = PacketView::parse(&err).expect("ICMPv6 error parses");
        assert_eq!(r.icmp(), Some((1, 0)));
        assert_eq!(r.ip_dst(), view.ip_src());
        assert!(err.len() <= 14 + 4 + 1280, "RFC 4443 size cap");
    }
    let lease = DhcpLease {
        server_mac: ROUTER_MAC,
        server_ip: router4,
        client_ip: Ipv4Addr::new(10, 0, 0, 5),
        subnet_mask: Ipv4Addr::new(255, 255, 255, 0),
        router: Some(router4),
        dns_servers: vec![router4],
        lease_secs: 3600,
        mtu: Some(1400),
        domain_name: Some("example".into()),
    };
    if let Some(reply) = packet::dhcp_reply(data, &lease) {
        let r = PacketView::parse(&reply).expect("DHCP reply parses");
        let dhcp = r.dhcp.expect("a DHCP reply");
        assert!(matches!(
            dhcp.message_type,
            Some(DhcpMessageType::Offer | DhcpMessageType::Ack | DhcpMessageType::Nak)
        ));
        assert_eq!(Some(dhcp.xid), view.dhcp.map(|d| d.xid));
    }
}
