//! [`PacketView`]: the header fields a controller reads from a packet-in frame, parsed without panics.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use etherparse::{LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, LinkSlice, TransportSlice};
use serde::{Serialize, Serializer};

use super::dhcp::DhcpView;
use super::{DHCP_CLIENT_PORT, DHCP_SERVER_PORT};
use crate::display::Mac;

/// Serializes a raw `[u8; 6]` field as `"aa:bb:cc:dd:ee:ff"`, so JSON output stays readable.
pub(crate) fn ser_mac<S: Serializer>(mac: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Mac(*mac))
}

/// One VLAN tag (802.1Q, or 802.1ad / QinQ when `tpid` says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Vlan {
    /// The tag protocol identifier in front of the tag (0x8100 for 802.1Q, 0x88a8 for 802.1ad).
    pub tpid: u16,
    /// VLAN identifier, 12 bits.
    pub vid: u16,
    /// Priority code point, 3 bits.
    pub pcp: u8,
}

/// An Ethernet/IPv4 ARP packet (the only kind OpenFlow's `arp_*` fields describe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ArpView {
    /// Operation: 1 request, 2 reply (`arp_op`).
    pub op: u16,
    /// Sender hardware address (`arp_sha`).
    #[serde(serialize_with = "ser_mac")]
    pub sha: [u8; 6],
    /// Sender protocol address (`arp_spa`).
    pub spa: Ipv4Addr,
    /// Target hardware address (`arp_tha`).
    #[serde(serialize_with = "ser_mac")]
    pub tha: [u8; 6],
    /// Target protocol address (`arp_tpa`).
    pub tpa: Ipv4Addr,
}

/// The IPv4 or IPv6 header fields OpenFlow can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct IpView {
    /// Source address (`ipv4_src` / `ipv6_src`).
    pub src: IpAddr,
    /// Destination address (`ipv4_dst` / `ipv6_dst`).
    pub dst: IpAddr,
    /// Protocol of the payload after any IPv6 extension headers (`ip_proto`).
    pub proto: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Differentiated services code point, 6 bits (`ip_dscp`).
    pub dscp: u8,
    /// Explicit congestion notification, 2 bits (`ip_ecn`).
    pub ecn: u8,
    /// The payload is a fragment, so no L4 header is read from it.
    pub fragmented: bool,
    /// An IPv4 fragment other than the first (offset > 0): it carries no transport header at
    /// all, where a first fragment carries one (OVS's `nw_frag=later`). Always false for IPv6.
    pub later_fragment: bool,
    /// The datagram's length by its header (IPv4 total length; IPv6 40 + payload length), which
    /// a switch's truncation of the frame does not change: what a router's MTU check compares.
    pub total_len: u16,
    /// The sender forbids fragmentation in transit (IPv4 DF; always true for IPv6).
    pub dont_fragment: bool,
}

/// The transport (or ICMP) header fields OpenFlow can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "proto", rename_all = "snake_case")]
pub enum L4View {
    /// TCP ports and the 9 flag bits (`tcp_flags`: FIN=0x001 … NS=0x100).
    Tcp { src: u16, dst: u16, flags: u16 },
    /// UDP ports.
    Udp { src: u16, dst: u16 },
    /// ICMPv4 type and code (`icmpv4_type`, `icmpv4_code`).
    Icmpv4 { typ: u8, code: u8 },
    /// ICMPv6 type and code (`icmpv6_type`, `icmpv6_code`).
    Icmpv6 { typ: u8, code: u8 },
}

/// What a controller needs to know about a frame: a summary of its L2–L4 (and DHCP) headers.
///
/// Built by [`PacketView::parse`], which never panics: a layer that is absent, truncated or
/// malformed is `None` and the layers above it are not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PacketView {
    /// Destination MAC (`eth_dst`).
    #[serde(serialize_with = "ser_mac")]
    pub eth_dst: [u8; 6],
    /// Source MAC (`eth_src`).
    #[serde(serialize_with = "ser_mac")]
    pub eth_src: [u8; 6],
    /// EtherType after any VLAN tags (`eth_type`, as OpenFlow defines it).
    pub eth_type: u16,
    /// The outermost VLAN tag (the one `vlan_vid` / `vlan_pcp` match).
    pub vlan: Option<Vlan>,
    /// The second tag of a QinQ frame (OVS's `vlan_tci1`).
    pub inner_vlan: Option<Vlan>,
    /// The ARP packet, when `eth_type` is ARP for Ethernet/IPv4.
    pub arp: Option<ArpView>,
    /// The IP header, when `eth_type` is IPv4 or IPv6 and the header is readable.
    pub ip: Option<IpView>,
    /// The TCP, UDP, ICMP or ICMPv6 header, when present and not in a later fragment.
    pub l4: Option<L4View>,
    /// The DHCPv4 message, when UDP between ports 67 and 68 carries a whole one.
    pub dhcp: Option<DhcpView>,
}

impl PacketView {
    /// Parses an Ethernet II frame. `None` only when it is shorter than an Ethernet header.
    pub fn parse(frame: &[u8]) -> Option<PacketView> {
        let pkt = LaxSlicedPacket::from_ethernet(frame).ok()?;
        let Some(LinkSlice::Ethernet2(eth)) = &pkt.link else {
            return None;
        };
        let mut view = PacketView {
            eth_dst: eth.destination(),
            eth_src: eth.source(),
            eth_type: eth.ether_type().0,
            vlan: None,
            inner_vlan: None,
            arp: None,
            ip: None,
            l4: None,
            dhcp: None,
        };
        for ext in &pkt.link_exts {
            match ext {
                LaxLinkExtSlice::Vlan(tag) => {
                    let vlan = Some(Vlan {
                        tpid: view.eth_type,
                        vid: tag.vlan_identifier().value(),
                        pcp: tag.priority_code_point().value(),
                    });
                    if view.vlan.is_none() {
                        view.vlan = vlan;
                    } else if view.inner_vlan.is_none() {
                        view.inner_vlan = vlan;
                    }
                    view.eth_type = tag.ether_type().0;
                }
                // OpenFlow (and OVS) stop at a MACsec header: eth_type is MACsec's and nothing
                // inside is visible to a match, so the summary does not look further either.
                LaxLinkExtSlice::Macsec(_) => return Some(view),
            }
        }
        match &pkt.net {
            Some(LaxNetSlice::Arp(arp)) => view.arp = arp_view(arp),
            Some(LaxNetSlice::Ipv4(ip)) => {
                let h = ip.header();
                view.ip = Some(IpView {
                    src: h.source_addr().into(),
                    dst: h.destination_addr().into(),
                    proto: h.protocol().0,
                    ttl: h.ttl(),
                    dscp: h.dcp().value(),
                    ecn: h.ecn().value(),
                    fragmented: ip.is_payload_fragmented(),
                    later_fragment: h.fragments_offset().value() != 0,
                    total_len: h.total_len(),
                    dont_fragment: h.dont_fragment(),
                });
            }
            Some(LaxNetSlice::Ipv6(ip)) => {
                let h = ip.header();
                view.ip = Some(IpView {
                    src: h.source_addr().into(),
                    dst: h.destination_addr().into(),
                    proto: ip.payload().ip_number.0,
                    ttl: h.hop_limit(),
                    dscp: h.dscp().value(),
                    ecn: h.ecn().value(),
                    fragmented: ip.is_payload_fragmented(),
                    // Read for IPv4 only (documented on the field).
                    later_fragment: false,
                    total_len: 40u16.saturating_add(h.payload_length()),
                    dont_fragment: true,
                });
            }
            None => {}
        }
        view.l4 = match &pkt.transport {
            Some(TransportSlice::Tcp(tcp)) => Some(L4View::Tcp {
                src: tcp.source_port(),
                dst: tcp.destination_port(),
                flags: u16::from(tcp.fin())
                    | u16::from(tcp.syn()) << 1
                    | u16::from(tcp.rst()) << 2
                    | u16::from(tcp.psh()) << 3
                    | u16::from(tcp.ack()) << 4
                    | u16::from(tcp.urg()) << 5
                    | u16::from(tcp.ece()) << 6
                    | u16::from(tcp.cwr()) << 7
                    | u16::from(tcp.ns()) << 8,
            }),
            Some(TransportSlice::Udp(udp)) => {
                let (src, dst) = (udp.source_port(), udp.destination_port());
                // Client↔server and, for relayed exchanges, server↔relay (67↔67).
                let dhcp_port = |p| p == DHCP_CLIENT_PORT || p == DHCP_SERVER_PORT;
                let v4 = matches!(view.ip.map(|ip| ip.src), Some(IpAddr::V4(_)));
                if v4 && dhcp_port(src) && dhcp_port(dst) {
                    view.dhcp = DhcpView::parse(udp.payload());
                }
                Some(L4View::Udp { src, dst })
            }
            Some(TransportSlice::Icmpv4(icmp)) => Some(L4View::Icmpv4 {
                typ: icmp.type_u8(),
                code: icmp.code_u8(),
            }),
            Some(TransportSlice::Icmpv6(icmp)) => Some(L4View::Icmpv6 {
                typ: icmp.type_u8(),
                code: icmp.code_u8(),
            }),
            Some(TransportSlice::Igmp(_)) | None => None,
        };
        Some(view)
    }

    /// IP source address, if the frame carries IP.
    pub fn ip_src(&self) -> Option<IpAddr> {
        self.ip.map(|ip| ip.src)
    }

    /// IP destination address, if the frame carries IP.
    pub fn ip_dst(&self) -> Option<IpAddr> {
        self.ip.map(|ip| ip.dst)
    }

    /// TCP or UDP `(source, destination)` ports.
    pub fn l4_ports(&self) -> Option<(u16, u16)> {
        match self.l4? {
            L4View::Tcp { src, dst, .. } | L4View::Udp { src, dst } => Some((src, dst)),
            L4View::Icmpv4 { .. } | L4View::Icmpv6 { .. } => None,
        }
    }

    /// ICMP or ICMPv6 `(type, code)`.
    pub fn icmp(&self) -> Option<(u8, u8)> {
        match self.l4? {
            L4View::Icmpv4 { typ, code } | L4View::Icmpv6 { typ, code } => Some((typ, code)),
            L4View::Tcp { .. } | L4View::Udp { .. } => None,
        }
    }

    /// The destination MAC is a group address (broadcast or multicast).
    pub fn is_multicast(&self) -> bool {
        self.eth_dst[0] & 1 == 1
    }
}

/// Reads an ARP packet when it is the Ethernet/IPv4 kind; other hardware or protocol types
/// have no OpenFlow fields, so they yield `None`.
fn arp_view(arp: &etherparse::ArpPacketSlice<'_>) -> Option<ArpView> {
    let sha: [u8; 6] = arp.sender_hw_addr().try_into().ok()?;
    let spa: [u8; 4] = arp.sender_protocol_addr().try_into().ok()?;
    let tha: [u8; 6] = arp.target_hw_addr().try_into().ok()?;
    let tpa: [u8; 4] = arp.target_protocol_addr().try_into().ok()?;
    if arp.hw_addr_type() != etherparse::ArpHardwareId::ETHERNET
        || arp.proto_addr_type() != etherparse::EtherType::IPV4
    {
        return None;
    }
    Some(ArpView {
        op: arp.operation().0,
        sha,
        spa: spa.into(),
        tha,
        tpa: tpa.into(),
    })
}

/// One line in ovs-ofctl's flow syntax, e.g.
/// `dl_src=…,dl_dst=…,dl_vlan=10,dl_type=0x0800,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_proto=6,tp_src=1,tp_dst=2`.
impl fmt::Display for PacketView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dl_src={},dl_dst={}",
            Mac(self.eth_src),
            Mac(self.eth_dst)
        )?;
        if let Some(vlan) = self.vlan {
            write!(f, ",dl_vlan={},dl_vlan_pcp={}", vlan.vid, vlan.pcp)?;
        }
        if let Some(vlan) = self.inner_vlan {
            write!(f, ",dl_vlan1={},dl_vlan_pcp1={}", vlan.vid, vlan.pcp)?;
        }
        write!(f, ",dl_type=0x{:04x}", self.eth_type)?;
        if let Some(arp) = self.arp {
            write!(
                f,
                ",arp_op={},arp_spa={},arp_tpa={},arp_sha={},arp_tha={}",
                arp.op,
                arp.spa,
                arp.tpa,
                Mac(arp.sha),
                Mac(arp.tha)
            )?;
        }
        if let Some(ip) = self.ip {
            let (src, dst) = match ip.src {
                IpAddr::V4(_) => ("nw_src", "nw_dst"),
                IpAddr::V6(_) => ("ipv6_src", "ipv6_dst"),
            };
            write!(
                f,
                ",{src}={},{dst}={},nw_proto={},nw_ttl={}",
                ip.src, ip.dst, ip.proto, ip.ttl
            )?;
            if ip.dscp != 0 {
                write!(f, ",nw_tos={}", ip.dscp << 2)?;
            }
            if ip.fragmented {
                f.write_str(",nw_frag=yes")?;
            }
        }
        match self.l4 {
            Some(L4View::Tcp { src, dst, flags }) => {
                write!(f, ",tp_src={src},tp_dst={dst},tcp_flags=0x{flags:03x}")?
            }
            Some(L4View::Udp { src, dst }) => write!(f, ",tp_src={src},tp_dst={dst}")?,
            Some(L4View::Icmpv4 { typ, code }) => write!(f, ",icmp_type={typ},icmp_code={code}")?,
            Some(L4View::Icmpv6 { typ, code }) => {
                write!(f, ",icmpv6_type={typ},icmpv6_code={code}")?
            }
            None => {}
        }
        if let Some(dhcp) = self.dhcp {
            match dhcp.message_type {
                Some(t) => write!(f, ",dhcp={t}")?,
                None => f.write_str(",dhcp=bootp")?,
            }
        }
        Ok(())
    }
}
