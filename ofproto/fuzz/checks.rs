//! The properties every fuzz target checks, shared with `tests/fuzz_corpus.rs` so the committed
//! corpora replay in the ordinary test suite: parse, re-emit, re-parse, compare; never panic.
//!
//! Included with `#[path]` by the fuzz targets and by the corpus test (it is not part of the
//! library, so the crate's public API stays free of test scaffolding).

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use ofproto::packet::{
    self, DhcpFrame, DhcpOptions, DhcpView, Icmpv4Error, Icmpv6Error, PacketView, L2,
};
use ofproto::{Action, Decoder, Instruction, Match, Message, OfMessage};

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
            inner_vlan: view.inner_vlan,
        };
        let again = PacketView::parse(&packet::arp_frame(l2, &arp)).expect("built ARP parses");
        assert_eq!(
            (
                again.eth_src,
                again.eth_dst,
                again.vlan,
                again.inner_vlan,
                again.arp
            ),
            (
                view.eth_src,
                view.eth_dst,
                view.vlan,
                view.inner_vlan,
                Some(arp)
            ),
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
    // A DHCP message re-emitted from its view, as a server would echo it, reads back the same.
    if let (Some(dhcp), Some(message_type)) = (view.dhcp, view.dhcp.and_then(|d| d.message_type)) {
        let frame = DhcpFrame {
            l2: L2::reply_to(&view, ROUTER_MAC),
            src_ip: router4,
            dst_ip: Ipv4Addr::BROADCAST,
            dst_port: packet::DHCP_CLIENT_PORT,
            message_type,
            xid: dhcp.xid,
            chaddr: dhcp.chaddr,
            ciaddr: dhcp.ciaddr,
            yiaddr: dhcp.yiaddr,
            giaddr: dhcp.giaddr,
            broadcast: dhcp.broadcast,
            options: DhcpOptions {
                server_id: dhcp.server_id,
                ..DhcpOptions::default()
            },
        };
        let built = packet::dhcp_frame(&frame).expect("a view's fields always encode");
        let again = PacketView::parse(&built)
            .and_then(|v| v.dhcp)
            .expect("DHCP frame parses");
        assert!(matches!(again.op, 1 | 2), "op follows the message type");
        // `op` follows the type rather than the input's op; option 50 is a client's.
        assert_eq!(
            DhcpView {
                op: dhcp.op,
                requested_ip: dhcp.requested_ip,
                ..again
            },
            dhcp,
            "DHCP re-emitted from its view"
        );
    }
}

/// One OpenFlow message: what parses re-emits to the same bytes and parses to the same value;
/// what does not parse yields an error that can name the ERROR a switch would send.
pub fn message(data: &[u8]) {
    match OfMessage::parse(data) {
        Ok(m) => {
            let bytes = m.to_bytes();
            assert_eq!(&bytes[..], data, "emit(parse(b)) == b for {m:?}");
            assert_eq!(m.encoded_len(), data.len());
            assert_eq!(
                OfMessage::parse(&bytes).as_ref(),
                Ok(&m),
                "parse(emit(m)) == m"
            );
            let _ = format!("{m:?}");
            if let Message::FlowMod(fm) = &m.body {
                let _ = fm.to_string();
                let _ = fm.match_.validate_prerequisites();
            }
        }
        Err(e) => {
            let _ = (e.to_string(), e.ofp_error(), e.is_fatal());
        }
    }
}

/// One padded `ofp_match`.
pub fn match_(data: &[u8]) {
    if let Ok(m) = Match::parse(data) {
        let mut out = BytesMut::new();
        m.emit(&mut out);
        assert_eq!(&out[..], data, "emit(parse(b)) == b for {m:?}");
        assert_eq!(m.encoded_len(), data.len());
        assert_eq!(Match::parse(&out).as_ref(), Ok(&m));
        let _ = (m.to_string(), m.validate_prerequisites());
    }
}

/// An action list and, over the same bytes, an instruction list.
pub fn actions(data: &[u8]) {
    if let Ok(list) = Action::parse_list(data) {
        let mut out = BytesMut::new();
        Action::emit_list(&list, &mut out);
        assert_eq!(&out[..], data, "emit(parse(b)) == b for {list:?}");
        assert_eq!(Action::list_len(&list), data.len());
        assert_eq!(Action::parse_list(&out).as_ref(), Ok(&list));
        for a in &list {
            let _ = a.to_string();
        }
    }
    if let Ok(list) = Instruction::parse_list(data) {
        let mut out = BytesMut::new();
        Instruction::emit_list(&list, &mut out);
        assert_eq!(&out[..], data, "emit(parse(b)) == b for {list:?}");
        assert_eq!(Instruction::list_len(&list), data.len());
        assert_eq!(Instruction::parse_list(&out).as_ref(), Ok(&list));
        for i in &list {
            let _ = i.to_string();
        }
    }
}

/// What the decoder yields for a stream, message by message, until it needs more bytes or
/// meets a fatal error: each message with the raw bytes it consumed, or the error text.
fn drain(
    decoder: &mut Decoder,
    buf: &mut BytesMut,
    out: &mut Vec<Result<(OfMessage, Vec<u8>), String>>,
) -> bool {
    loop {
        let before = buf.clone();
        match decoder.decode(buf) {
            Ok(Some(m)) => {
                let used = before.len() - buf.len();
                out.push(Ok((m, before[..used].to_vec())));
            }
            Ok(None) => {
                assert!(decoder.needed(buf) > 0, "no message, yet nothing needed");
                assert_eq!(&before[..], &buf[..], "Ok(None) consumed bytes");
                return true;
            }
            Err(e) if e.is_fatal() => {
                assert_eq!(&before[..], &buf[..], "a fatal error consumed bytes");
                out.push(Err(e.to_string()));
                return false;
            }
            Err(e) => {
                let used = before.len() - buf.len();
                assert!(used >= 8, "a non-fatal error must consume the message");
                assert_eq!(
                    decoder.rejected().map(|r| &r[..]),
                    Some(&before[..used]),
                    "rejected() holds the consumed message"
                );
                out.push(Err(e.to_string()));
            }
        }
    }
}

/// Stream framing: the stream fed in arbitrary chunks yields exactly what it yields when fed
/// whole, every message re-emits to the bytes it was cut from, and `needed()` never asks for
/// more than it takes.
pub fn framing(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let mut whole = Vec::new();
    let mut buf = BytesMut::from(stream);
    drain(&mut Decoder::new(), &mut buf, &mut whole);

    let mut chunked = Vec::new();
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::new();
    let mut rest = stream;
    let mut step = usize::from(seed % 17) + 1;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        step = (step * 7 + 3) % 61 + 1;
        if !drain(&mut decoder, &mut buf, &mut chunked) {
            break;
        }
    }
    assert_eq!(whole, chunked, "chunking changed what the decoder yields");
    for (m, raw) in whole.iter().flatten() {
        assert_eq!(&m.to_bytes()[..], &raw[..], "re-emit of a framed message");
    }
}
