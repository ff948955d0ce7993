//! The packet as the simulation sees it: header fields behind getters that record what was read.
//!
//! The installed flow matches exactly the fields some device *read* (MidoNet's "seen fields"),
//! so a flow is as wildcarded as it can be while still correct. Unlike MidoNet's getters, there
//! is no way around the record: the fields are private, every read goes through a getter that
//! marks the field, and forks union what their branches read (a flood branch's reads count).
//! Writes (a router rewriting MACs, TTL) do not mark: they become actions from the header diff.

use std::net::Ipv4Addr;

use ofproto::packet::{L4View, PacketView};
use ofproto::{Action, Match, OxmField};

/// One matchable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Field {
    /// `eth_src`
    EthSrc = 0,
    /// `eth_dst`
    EthDst,
    /// `eth_type`
    EthType,
    /// `ipv4_src`
    Ipv4Src,
    /// `ipv4_dst`
    Ipv4Dst,
    /// `ip_proto`
    IpProto,
    /// `tcp/udp_src`
    TpSrc,
    /// `tcp/udp_dst`
    TpDst,
    /// `icmpv4_type`
    IcmpType,
    /// `icmpv4_code`
    IcmpCode,
    /// `arp_op`
    ArpOp,
    /// `arp_spa`
    ArpSpa,
    /// `arp_tpa`
    ArpTpa,
}

/// A set of [`Field`]s (bit `f as u8`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FieldSet(u16);

impl FieldSet {
    /// No field.
    pub const EMPTY: FieldSet = FieldSet(0);

    /// Adds a field.
    pub fn insert(&mut self, f: Field) {
        self.0 |= 1 << f as u8;
    }
    /// Whether `f` is in the set.
    pub fn contains(self, f: Field) -> bool {
        self.0 & (1 << f as u8) != 0
    }
    /// The union.
    pub fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }
    /// The raw bits: distinct sets have distinct bits (flow priorities are derived from them).
    pub fn bits(self) -> u16 {
        self.0
    }
}

/// Transport ports, as OpenFlow splits them by protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4 {
    /// TCP ports.
    Tcp(u16, u16),
    /// UDP ports.
    Udp(u16, u16),
    /// ICMP type and code.
    Icmp(u8, u8),
    /// Another protocol, or a later fragment.
    Other,
}

/// IPv4 header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4 {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// Protocol.
    pub proto: u8,
    /// TTL.
    pub ttl: u8,
}

/// ARP fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arp {
    /// Operation.
    pub op: u16,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

/// The header values of one packet (no tracking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Source MAC.
    pub eth_src: [u8; 6],
    /// Destination MAC.
    pub eth_dst: [u8; 6],
    /// EtherType (after VLAN tags).
    pub eth_type: u16,
    /// IPv4, when `eth_type` is IPv4 and the header is readable.
    pub ipv4: Option<Ipv4>,
    /// ARP, when `eth_type` is ARP.
    pub arp: Option<Arp>,
    /// Transport.
    pub l4: L4,
}

impl Header {
    /// The header of an Ethernet frame; `None` when shorter than an Ethernet header.
    pub fn parse(frame: &[u8]) -> Option<Header> {
        let v = PacketView::parse(frame)?;
        Some(Header::from_view(&v))
    }

    /// The header of a parsed packet.
    pub fn from_view(v: &PacketView) -> Header {
        let ipv4 = v.ip.as_ref().and_then(|ip| match (ip.src, ip.dst) {
            (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) => Some(Ipv4 {
                src,
                dst,
                proto: ip.proto,
                ttl: ip.ttl,
            }),
            _ => None,
        });
        let arp = v.arp.as_ref().map(|a| Arp {
            op: a.op,
            spa: a.spa,
            tpa: a.tpa,
        });
        let l4 = match v.l4 {
            Some(L4View::Tcp { src, dst, .. }) => L4::Tcp(src, dst),
            Some(L4View::Udp { src, dst }) => L4::Udp(src, dst),
            Some(L4View::Icmpv4 { typ, code }) => L4::Icmp(typ, code),
            _ => L4::Other,
        };
        Header {
            eth_src: v.eth_src,
            eth_dst: v.eth_dst,
            eth_type: v.eth_type,
            ipv4,
            arp,
            l4,
        }
    }

    /// A header of only Ethernet fields (tests, traces).
    pub fn ethernet(eth_src: [u8; 6], eth_dst: [u8; 6], eth_type: u16) -> Header {
        Header {
            eth_src,
            eth_dst,
            eth_type,
            ipv4: None,
            arp: None,
            l4: L4::Other,
        }
    }

    /// The match on `fields` of this header, after `metadata`, with the prerequisites OpenFlow
    /// requires (`eth_type` before IP or ARP fields, `ip_proto` before transport ports).
    pub fn to_match(&self, metadata: u64, fields: FieldSet) -> Match {
        let mut m: Vec<OxmField> = Vec::with_capacity(4);
        m.push(OxmField::Metadata {
            value: metadata,
            mask: None,
        });
        if fields.contains(Field::EthSrc) {
            m.push(OxmField::EthSrc {
                value: self.eth_src,
                mask: None,
            });
        }
        if fields.contains(Field::EthDst) {
            m.push(OxmField::EthDst {
                value: self.eth_dst,
                mask: None,
            });
        }
        let l3 = [
            Field::Ipv4Src,
            Field::Ipv4Dst,
            Field::IpProto,
            Field::TpSrc,
            Field::TpDst,
            Field::IcmpType,
            Field::IcmpCode,
            Field::ArpOp,
            Field::ArpSpa,
            Field::ArpTpa,
        ];
        let needs_type = l3.iter().any(|f| fields.contains(*f));
        if fields.contains(Field::EthType) || needs_type {
            m.push(OxmField::EthType(self.eth_type));
        }
        if let Some(ip) = &self.ipv4 {
            if fields.contains(Field::Ipv4Src) {
                m.push(OxmField::Ipv4Src {
                    value: ip.src,
                    mask: None,
                });
            }
            if fields.contains(Field::Ipv4Dst) {
                m.push(OxmField::Ipv4Dst {
                    value: ip.dst,
                    mask: None,
                });
            }
            let l4 = [Field::TpSrc, Field::TpDst, Field::IcmpType, Field::IcmpCode];
            if fields.contains(Field::IpProto) || l4.iter().any(|f| fields.contains(*f)) {
                m.push(OxmField::IpProto(ip.proto));
            }
            match self.l4 {
                L4::Tcp(s, d) => {
                    if fields.contains(Field::TpSrc) {
                        m.push(OxmField::TcpSrc(s));
                    }
                    if fields.contains(Field::TpDst) {
                        m.push(OxmField::TcpDst(d));
                    }
                }
                L4::Udp(s, d) => {
                    if fields.contains(Field::TpSrc) {
                        m.push(OxmField::UdpSrc(s));
                    }
                    if fields.contains(Field::TpDst) {
                        m.push(OxmField::UdpDst(d));
                    }
                }
                L4::Icmp(t, c) => {
                    if fields.contains(Field::IcmpType) {
                        m.push(OxmField::Icmpv4Type(t));
                    }
                    if fields.contains(Field::IcmpCode) {
                        m.push(OxmField::Icmpv4Code(c));
                    }
                }
                L4::Other => {}
            }
        }
        if let Some(arp) = &self.arp {
            if fields.contains(Field::ArpOp) {
                m.push(OxmField::ArpOp(arp.op));
            }
            if fields.contains(Field::ArpSpa) {
                m.push(OxmField::ArpSpa {
                    value: arp.spa,
                    mask: None,
                });
            }
            if fields.contains(Field::ArpTpa) {
                m.push(OxmField::ArpTpa {
                    value: arp.tpa,
                    mask: None,
                });
            }
        }
        m.into_iter().collect()
    }

    /// The `set_field` actions that turn `self` into `to` (Ethernet and IPv4 addresses), and
    /// `dec_ttl` when `to`'s TTL is lower.
    pub fn diff(&self, to: &Header, out: &mut Vec<Action>) {
        if self.eth_src != to.eth_src {
            out.push(Action::SetField(OxmField::EthSrc {
                value: to.eth_src,
                mask: None,
            }));
        }
        if self.eth_dst != to.eth_dst {
            out.push(Action::SetField(OxmField::EthDst {
                value: to.eth_dst,
                mask: None,
            }));
        }
        if let (Some(a), Some(b)) = (&self.ipv4, &to.ipv4) {
            if a.src != b.src {
                out.push(Action::SetField(OxmField::Ipv4Src {
                    value: b.src,
                    mask: None,
                }));
            }
            if a.dst != b.dst {
                out.push(Action::SetField(OxmField::Ipv4Dst {
                    value: b.dst,
                    mask: None,
                }));
            }
            for _ in b.ttl..a.ttl {
                out.push(Action::DecNwTtl);
            }
        }
    }
}

/// A packet under simulation: its header now, and which fields have been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    header: Header,
    seen: FieldSet,
}

impl Tracked {
    /// Starts tracking `header` with nothing read.
    pub fn new(header: Header) -> Tracked {
        Tracked {
            header,
            seen: FieldSet::EMPTY,
        }
    }

    /// What has been read so far.
    pub fn seen(&self) -> FieldSet {
        self.seen
    }

    /// Adds what a branch read (forks: every branch's reads shape the one flow).
    pub fn absorb(&mut self, seen: FieldSet) {
        self.seen = self.seen.union(seen);
    }

    /// The header as it is now, without marking anything read (for emitting, not deciding).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// `eth_src`, marked read.
    pub fn eth_src(&mut self) -> [u8; 6] {
        self.seen.insert(Field::EthSrc);
        self.header.eth_src
    }

    /// `eth_dst`, marked read.
    pub fn eth_dst(&mut self) -> [u8; 6] {
        self.seen.insert(Field::EthDst);
        self.header.eth_dst
    }

    /// `eth_type`, marked read.
    pub fn eth_type(&mut self) -> u16 {
        self.seen.insert(Field::EthType);
        self.header.eth_type
    }

    /// Rewrites the Ethernet addresses (no read).
    pub fn set_eth(&mut self, src: [u8; 6], dst: [u8; 6]) {
        self.header.eth_src = src;
        self.header.eth_dst = dst;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_recorded_and_match_only_them() {
        let h = Header::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 0x0800);
        let mut t = Tracked::new(h);
        assert_eq!(t.seen(), FieldSet::EMPTY);
        let _ = t.header();
        assert_eq!(t.seen(), FieldSet::EMPTY);
        t.eth_dst();
        let m = h.to_match(7, t.seen());
        assert_eq!(m.fields.len(), 2);
        m.validate_prerequisites().unwrap();
        t.set_eth([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 2]);
        assert!(!t.seen().contains(Field::EthSrc));
        let mut acts = vec![];
        h.diff(t.header(), &mut acts);
        assert_eq!(acts.len(), 1);
    }

    #[test]
    fn l4_fields_bring_their_prerequisites() {
        let frame = crate::harness::frames::udp(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            1000,
            53,
        );
        let h = Header::parse(&frame).unwrap();
        let mut s = FieldSet::EMPTY;
        s.insert(Field::TpDst);
        let m = h.to_match(1, s);
        m.validate_prerequisites().unwrap();
        assert!(m.ip_proto() == Some(17) && m.eth_type() == Some(0x0800));
    }
}
