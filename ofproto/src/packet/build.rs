//! Frames a controller answers with: ARP, ICMP/ICMPv6 echo replies and errors (etherparse builders).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
use etherparse::icmpv6::{DestUnreachableCode, TimeExceededCode as TimeExceededCode6};
use etherparse::{
    ArpEthIpv4Packet, ArpOperation, EtherType, Ethernet2Header, IcmpEchoHeader, Icmpv4Type,
    Icmpv6Type, LaxNetSlice, LaxSlicedPacket, PacketBuilder, SingleVlanHeader, TransportSlice,
    VlanId, VlanPcp,
};

use super::view::{ArpView, PacketView, Vlan};
use super::{ARP_REPLY, ARP_REQUEST};

/// The Ethernet envelope of a frame to build: addresses and up to two VLAN tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2 {
    /// Source MAC.
    pub src: [u8; 6],
    /// Destination MAC.
    pub dst: [u8; 6],
    /// Tag to insert after the addresses; replies mirror the request's tags.
    pub vlan: Option<Vlan>,
    /// A second tag after `vlan` (QinQ); ignored when `vlan` is `None`.
    pub inner_vlan: Option<Vlan>,
}

/// IPv4 TTL / IPv6 hop limit of the frames we originate (Linux's default).
const DEFAULT_TTL: u8 = 64;
/// RFC 1812 §4.3.2.3: an ICMPv4 error carries as much of the original datagram as fits in 576 bytes.
const ICMPV4_ERROR_MAX: usize = 576;
/// RFC 4443 §2.4(c): an ICMPv6 error must not exceed the minimum IPv6 MTU.
const ICMPV6_ERROR_MAX: usize = 1280;

impl L2 {
    /// Writes the Ethernet header (and VLAN tags) for a payload of `ether_type`.
    pub(crate) fn write(&self, ether_type: EtherType, out: &mut Vec<u8>) {
        let tags: Vec<Vlan> = self
            .vlan
            .into_iter()
            .chain(self.vlan.and(self.inner_vlan))
            .collect();
        // Each header names what follows it: the first tag's TPID, the next tag's, the payload.
        let next = |i: usize| tags.get(i).map_or(ether_type, |t| EtherType(t.tpid));
        let eth = Ethernet2Header {
            source: self.src,
            destination: self.dst,
            ether_type: next(0),
        };
        // Writing into a Vec cannot fail: the only io::Error a Vec writer returns is on allocation
        // failure, which aborts instead.
        let _ = eth.write(out);
        for (i, tag) in tags.iter().enumerate() {
            let header = SingleVlanHeader {
                pcp: VlanPcp::try_new(tag.pcp & 0x7).unwrap_or(VlanPcp::ZERO),
                drop_eligible_indicator: false,
                vlan_id: VlanId::try_new(tag.vid & 0x0fff).unwrap_or(VlanId::ZERO),
                ether_type: next(i + 1),
            };
            let _ = header.write(out);
        }
    }

    /// The envelope of a reply to `view` from `src`: to the request's source, in the request's
    /// VLAN tags (a reply must come back on the segment the request came from).
    pub fn reply_to(view: &PacketView, src: [u8; 6]) -> L2 {
        L2 {
            src,
            dst: view.eth_src,
            vlan: view.vlan,
            inner_vlan: view.inner_vlan,
        }
    }
}

/// Builds an Ethernet/IPv4 ARP frame.
pub fn arp_frame(l2: L2, arp: &ArpView) -> Vec<u8> {
    let packet = ArpEthIpv4Packet {
        operation: ArpOperation(arp.op),
        sender_mac: arp.sha,
        sender_ipv4: arp.spa.octets(),
        target_mac: arp.tha,
        target_ipv4: arp.tpa.octets(),
    };
    let mut out = Vec::with_capacity(64);
    l2.write(EtherType::ARP, &mut out);
    out.extend_from_slice(&packet.to_bytes());
    out
}

/// Answers an ARP request for `request.tpa` with `mac` (proxy ARP for a virtual port or router).
///
/// `None` unless the frame is an Ethernet/IPv4 ARP request.
pub fn arp_reply(request: &[u8], mac: [u8; 6]) -> Option<Vec<u8>> {
    let view = PacketView::parse(request)?;
    let arp = view.arp?;
    if arp.op != ARP_REQUEST {
        return None;
    }
    let reply = ArpView {
        op: ARP_REPLY,
        sha: mac,
        spa: arp.tpa,
        tha: arp.sha,
        tpa: arp.spa,
    };
    let l2 = L2 {
        dst: arp.sha,
        ..L2::reply_to(&view, mac)
    };
    Some(arp_frame(l2, &reply))
}

/// Answers an ICMPv4 echo request with an echo reply carrying the same id, sequence and data.
///
/// `None` unless the frame is a whole (not truncated, not fragmented) echo request sent to a
/// unicast MAC and unicast IPv4 address, which become the reply's sources.
pub fn icmpv4_echo_reply(request: &[u8]) -> Option<Vec<u8>> {
    let (view, pkt) = sliced(request)?;
    let Some(LaxNetSlice::Ipv4(ip)) = &pkt.net else {
        return None;
    };
    if ip.payload().incomplete || ip.is_payload_fragmented() || view.is_multicast() {
        return None;
    }
    let Some(TransportSlice::Icmpv4(icmp)) = &pkt.transport else {
        return None;
    };
    let Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
        return None;
    };
    let (src, dst) = (ip.header().destination_addr(), ip.header().source_addr());
    if !is_unicast_v4(src) {
        return None;
    }
    let mut out = Vec::with_capacity(request.len());
    L2::reply_to(&view, view.eth_dst).write(EtherType::IPV4, &mut out);
    PacketBuilder::ipv4(src.octets(), dst.octets(), DEFAULT_TTL)
        .icmpv4(Icmpv4Type::EchoReply(echo))
        .write(&mut out, icmp.payload())
        .ok()?;
    Some(out)
}

/// Answers an ICMPv6 echo request with an echo reply carrying the same id, sequence and data.
///
/// `None` unless the frame is a whole echo request to a unicast MAC and unicast IPv6 address.
pub fn icmpv6_echo_reply(request: &[u8]) -> Option<Vec<u8>> {
    let (view, pkt) = sliced(request)?;
    let Some(LaxNetSlice::Ipv6(ip)) = &pkt.net else {
        return None;
    };
    if ip.payload().incomplete || ip.is_payload_fragmented() || view.is_multicast() {
        return None;
    }
    let Some(TransportSlice::Icmpv6(icmp)) = &pkt.transport else {
        return None;
    };
    let Icmpv6Type::EchoRequest(echo) = icmp.icmp_type() else {
        return None;
    };
    let (src, dst) = (ip.header().destination_addr(), ip.header().source_addr());
    if src.is_multicast() || src.is_unspecified() {
        return None;
    }
    let mut out = Vec::with_capacity(request.len());
    L2::reply_to(&view, view.eth_dst).write(EtherType::IPV6, &mut out);
    PacketBuilder::ipv6(src.octets(), dst.octets(), DEFAULT_TTL)
        .icmpv6(Icmpv6Type::EchoReply(IcmpEchoHeader {
            id: echo.id,
            seq: echo.seq,
        }))
        .write(&mut out, icmp.payload())
        .ok()?;
    Some(out)
}

/// Answers an IPv4 TCP segment with the RST its destination would send (RFC 793 §3.4): from
/// the segment's destination to its source, `seq` = the segment's ACK number when it has one,
/// else `seq` 0 with an ACK of everything the segment occupied.
///
/// `None` unless the frame is a whole unicast IPv4 TCP segment that is not itself a RST.
pub fn tcp_reset(original: &[u8]) -> Option<Vec<u8>> {
    let (view, pkt) = sliced(original)?;
    let Some(LaxNetSlice::Ipv4(ip)) = &pkt.net else {
        return None;
    };
    let Some(TransportSlice::Tcp(tcp)) = &pkt.transport else {
        return None;
    };
    let h = ip.header();
    if ip.payload().incomplete
        || ip.is_payload_fragmented()
        || view.is_multicast()
        || tcp.rst()
        || !is_unicast_v4(h.source_addr())
        || !is_unicast_v4(h.destination_addr())
    {
        return None;
    }
    let mut out = Vec::with_capacity(14 + 4 + 40);
    L2::reply_to(&view, view.eth_dst).write(EtherType::IPV4, &mut out);
    let b = PacketBuilder::ipv4(h.destination(), h.source(), DEFAULT_TTL);
    let b = if tcp.ack() {
        b.tcp(
            tcp.destination_port(),
            tcp.source_port(),
            tcp.acknowledgment_number(),
            0,
        )
        .rst()
    } else {
        let occupied = tcp.payload().len() as u32 + u32::from(tcp.syn()) + u32::from(tcp.fin());
        b.tcp(tcp.destination_port(), tcp.source_port(), 0, 0)
            .rst()
            .ack(tcp.sequence_number().wrapping_add(occupied))
    };
    b.write(&mut out, &[]).ok()?;
    Some(out)
}

/// The ICMPv4 errors a virtual router sends (RFC 792 / RFC 1812 codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Error {
    /// Type 3 code 0: no route to the network.
    NetUnreachable,
    /// Type 3 code 1: the host does not answer ARP.
    HostUnreachable,
    /// Type 3 code 2.
    ProtocolUnreachable,
    /// Type 3 code 3.
    PortUnreachable,
    /// Type 3 code 4: DF set and the packet exceeds `next_hop_mtu`.
    FragmentationNeeded { next_hop_mtu: u16 },
    /// Type 3 code 13: dropped by a filter (a chain rule with `reject`).
    AdminProhibited,
    /// Type 11 code 0: TTL reached zero in transit.
    TtlExceeded,
    /// Type 11 code 1.
    ReassemblyTimeExceeded,
}

impl Icmpv4Error {
    fn icmp_type(self) -> Icmpv4Type {
        use DestUnreachableHeader as D;
        match self {
            Self::NetUnreachable => Icmpv4Type::DestinationUnreachable(D::Network),
            Self::HostUnreachable => Icmpv4Type::DestinationUnreachable(D::Host),
            Self::ProtocolUnreachable => Icmpv4Type::DestinationUnreachable(D::Protocol),
            Self::PortUnreachable => Icmpv4Type::DestinationUnreachable(D::Port),
            Self::FragmentationNeeded { next_hop_mtu } => {
                Icmpv4Type::DestinationUnreachable(D::FragmentationNeeded { next_hop_mtu })
            }
            Self::AdminProhibited => Icmpv4Type::DestinationUnreachable(D::FilterProhibited),
            Self::TtlExceeded => Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
            Self::ReassemblyTimeExceeded => {
                Icmpv4Type::TimeExceeded(TimeExceededCode::FragmentReassemblyTimeExceeded)
            }
        }
    }
}

/// Builds the ICMPv4 error `error` about the IPv4 frame `original`, sent from the router port
/// `(mac, ip)` back to the original sender, quoting its IP header and as much of its payload as
/// fits in 576 bytes (RFC 1812 §4.3.2.3).
///
/// `None` where RFC 1812 §4.3.2.7 forbids an error: the original is not IPv4, is itself an
/// ICMP error, is a non-initial fragment, was sent to a link-layer or IP broadcast/multicast
/// address, or comes from an address that does not name one host.
pub fn icmpv4_error(
    original: &[u8],
    error: Icmpv4Error,
    mac: [u8; 6],
    ip: Ipv4Addr,
) -> Option<Vec<u8>> {
    let (view, pkt) = sliced(original)?;
    let Some(LaxNetSlice::Ipv4(orig_ip)) = &pkt.net else {
        return None;
    };
    let h = orig_ip.header();
    if view.is_multicast()
        || !is_unicast_v4(h.source_addr())
        || !is_unicast_v4(h.destination_addr())
        || h.fragments_offset().value() != 0
        || matches!(view.l4, Some(super::L4View::Icmpv4 { typ, .. }) if is_icmpv4_error(typ))
    {
        return None;
    }
    let quoted = ip_datagram(&pkt, usize::from(h.total_len()))?;
    let room = ICMPV4_ERROR_MAX - 20 - 8;
    let quoted = &quoted[..quoted.len().min(room)];
    let mut out = Vec::with_capacity(14 + 4 + ICMPV4_ERROR_MAX);
    L2::reply_to(&view, mac).write(EtherType::IPV4, &mut out);
    PacketBuilder::ipv4(ip.octets(), h.source(), DEFAULT_TTL)
        .icmpv4(error.icmp_type())
        .write(&mut out, quoted)
        .ok()?;
    Some(out)
}

/// The ICMPv6 errors a virtual router sends (RFC 4443 codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Error {
    /// Type 1 code 0.
    NoRoute,
    /// Type 1 code 1: dropped by a filter.
    AdminProhibited,
    /// Type 1 code 3: neighbour discovery failed.
    AddressUnreachable,
    /// Type 1 code 4.
    PortUnreachable,
    /// Type 2: the packet exceeds `mtu`.
    PacketTooBig { mtu: u32 },
    /// Type 3 code 0: hop limit reached zero in transit.
    HopLimitExceeded,
    /// Type 3 code 1.
    ReassemblyTimeExceeded,
}

impl Icmpv6Error {
    fn icmp_type(self) -> Icmpv6Type {
        use DestUnreachableCode as D;
        match self {
            Self::NoRoute => Icmpv6Type::DestinationUnreachable(D::NoRoute),
            Self::AdminProhibited => Icmpv6Type::DestinationUnreachable(D::Prohibited),
            Self::AddressUnreachable => Icmpv6Type::DestinationUnreachable(D::Address),
            Self::PortUnreachable => Icmpv6Type::DestinationUnreachable(D::Port),
            Self::PacketTooBig { mtu } => Icmpv6Type::PacketTooBig { mtu },
            Self::HopLimitExceeded => Icmpv6Type::TimeExceeded(TimeExceededCode6::HopLimitExceeded),
            Self::ReassemblyTimeExceeded => {
                Icmpv6Type::TimeExceeded(TimeExceededCode6::FragmentReassemblyTimeExceeded)
            }
        }
    }
}

/// Builds the ICMPv6 error `error` about the IPv6 frame `original`, from the router port
/// `(mac, ip)` to the original sender, quoting as much of the original as fits in 1280 bytes.
///
/// `None` where RFC 4443 §2.4(e) forbids an error: the original is not IPv6, is an ICMPv6
/// error, was sent to a multicast address (except Packet Too Big), or has an unspecified or
/// multicast source.
pub fn icmpv6_error(
    original: &[u8],
    error: Icmpv6Error,
    mac: [u8; 6],
    ip: Ipv6Addr,
) -> Option<Vec<u8>> {
    let (view, pkt) = sliced(original)?;
    let Some(LaxNetSlice::Ipv6(orig_ip)) = &pkt.net else {
        return None;
    };
    let h = orig_ip.header();
    let to_group = view.is_multicast() || h.destination_addr().is_multicast();
    if (to_group && !matches!(error, Icmpv6Error::PacketTooBig { .. }))
        || h.source_addr().is_multicast()
        || h.source_addr().is_unspecified()
        || matches!(view.l4, Some(super::L4View::Icmpv6 { typ, .. }) if typ < 128)
    {
        return None;
    }
    let quoted = ip_datagram(&pkt, 40 + usize::from(h.payload_length()))?;
    let room = ICMPV6_ERROR_MAX - 40 - 8;
    let quoted = &quoted[..quoted.len().min(room)];
    let mut out = Vec::with_capacity(14 + 4 + ICMPV6_ERROR_MAX);
    L2::reply_to(&view, mac).write(EtherType::IPV6, &mut out);
    PacketBuilder::ipv6(ip.octets(), h.source(), DEFAULT_TTL)
        .icmpv6(error.icmp_type())
        .write(&mut out, quoted)
        .ok()?;
    Some(out)
}

/// The frame's summary and its etherparse slices, or `None` when a reply could not mirror the
/// frame faithfully: the view stops at a MACsec header (as OpenFlow does) while the slicer reads
/// on through it, and a builder must never answer a layer the controller's view did not see.
fn sliced(frame: &[u8]) -> Option<(PacketView, LaxSlicedPacket<'_>)> {
    let view = PacketView::parse(frame)?;
    let pkt = LaxSlicedPacket::from_ethernet(frame).ok()?;
    // Replies reproduce at most two VLAN tags (what OpenFlow and OVS handle), so a frame with
    // more is not answered rather than answered with a tag missing.
    if pkt.link_exts.len() > 2
        || pkt
            .link_exts
            .iter()
            .any(|ext| matches!(ext, etherparse::LaxLinkExtSlice::Macsec(_)))
    {
        return None;
    }
    Some((view, pkt))
}

/// Builds an Ethernet/IPv4/UDP frame (DHCP replies).
pub(crate) fn udp_v4(
    l2: L2,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(14 + 4 + 28 + payload.len());
    l2.write(EtherType::IPV4, &mut out);
    PacketBuilder::ipv4(src.octets(), dst.octets(), DEFAULT_TTL)
        .udp(src_port, dst_port)
        .write(&mut out, payload)
        .ok()?;
    Some(out)
}

/// The UDP payload of a frame, if it has one.
#[cfg(test)]
pub(crate) fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let (_, pkt) = sliced(frame)?;
    match pkt.transport {
        Some(TransportSlice::Udp(udp)) => Some(udp.payload()),
        _ => None,
    }
}

/// The IP datagram inside a frame (from the IP header on), without Ethernet padding: at most
/// `ip_len` bytes, fewer if the switch truncated the frame.
fn ip_datagram<'a>(pkt: &LaxSlicedPacket<'a>, ip_len: usize) -> Option<&'a [u8]> {
    let payload = pkt.ether_payload()?.payload;
    payload.get(..ip_len.min(payload.len()))
}

/// ICMPv4 types that report errors (RFC 1812 §4.3.2.7 forbids an error about them).
fn is_icmpv4_error(typ: u8) -> bool {
    matches!(typ, 3 | 4 | 5 | 11 | 12)
}

/// An address naming one host: not unspecified, broadcast, multicast or class E.
fn is_unicast_v4(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.octets()[0] >= 240)
}

/// Convenience for callers holding an [`IpAddr`]: whether it could be an error's destination.
pub fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_unicast_v4(v4),
        IpAddr::V6(v6) => !(v6.is_multicast() || v6.is_unspecified()),
    }
}
