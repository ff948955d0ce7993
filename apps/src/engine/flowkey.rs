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
    /// OVS's `nw_frag` (Nicira `NXM_NX_IP_FRAG`): not a fragment, first, later.
    IpFrag,
}

impl Field {
    /// Every field, in declaration order (`ALL[f as usize] == f`).
    pub const ALL: [Field; 14] = [
        Field::EthSrc,
        Field::EthDst,
        Field::EthType,
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
        Field::IpFrag,
    ];
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
    /// Total length by the header (what an MTU check compares).
    pub total_len: u16,
    /// Don't fragment.
    pub df: bool,
    /// OVS's `nw_frag` bits: 1 a fragment, 2 a later one (no transport header).
    pub frag: u8,
}

/// ARP fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arp {
    /// Operation.
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
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

/// What a simulation read: the fields, and for the IPv4 addresses how many leading bits (a
/// route decides on a prefix, so its flow matches the prefix, not the address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Seen {
    /// The fields read.
    pub fields: FieldSet,
    /// Leading bits of `ipv4_src` read (meaningful when `fields` has it).
    pub nw_src_len: u8,
    /// Leading bits of `ipv4_dst` read.
    pub nw_dst_len: u8,
}

impl Seen {
    /// Nothing read.
    pub const EMPTY: Seen = Seen {
        fields: FieldSet::EMPTY,
        nw_src_len: 0,
        nw_dst_len: 0,
    };

    /// What either read (forks: every branch's reads shape the one flow).
    pub fn union(self, o: Seen) -> Seen {
        Seen {
            fields: self.fields.union(o.fields),
            nw_src_len: self.nw_src_len.max(o.nw_src_len),
            nw_dst_len: self.nw_dst_len.max(o.nw_dst_len),
        }
    }

    /// Whether `f` was read.
    pub fn contains(self, f: Field) -> bool {
        self.fields.contains(f)
    }
}

/// `NXM_NX_IP_FRAG`, field 26 of the Nicira class: OpenFlow 1.3 has no fragment match, OVS has
/// this one (`nw_frag`). Kept as the codec's raw field, which round-trips byte for byte.
const NXM_NX_IP_FRAG: u8 = 26;

/// The `nw_frag` match of the two fragment bits, exact (`nw_frag=no|first|later`).
pub fn nw_frag(bits: u8) -> OxmField {
    OxmField::Unknown {
        class: ofproto::oxm::OFPXMC_NXM_1,
        field: NXM_NX_IP_FRAG,
        hasmask: true,
        value: bytes::Bytes::copy_from_slice(&[bits & 3, 3]),
    }
}

/// The fragment bits an `nw_frag` match asks for, if `f` is one.
pub fn as_nw_frag(f: &OxmField) -> Option<(u8, u8)> {
    match f {
        OxmField::Unknown {
            class: ofproto::oxm::OFPXMC_NXM_1,
            field: NXM_NX_IP_FRAG,
            hasmask: true,
            value,
        } if value.len() == 2 => Some((value[0], value[1])),
        _ => None,
    }
}

fn prefix_mask(len: u8) -> Ipv4Addr {
    Ipv4Addr::from(
        u32::MAX
            .checked_shl(32 - u32::from(len.min(32)))
            .unwrap_or(0),
    )
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
                total_len: ip.total_len,
                df: ip.dont_fragment,
                frag: u8::from(ip.fragmented) | u8::from(ip.later_fragment) << 1,
            }),
            _ => None,
        });
        let arp = v.arp.as_ref().map(|a| Arp {
            op: a.op,
            sha: a.sha,
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

    /// The match on what was `seen` of this header, after `metadata`, with the prerequisites
    /// OpenFlow requires (`eth_type` before IP or ARP fields, `ip_proto` before transport ports).
    /// IPv4 addresses read as a prefix are matched with that prefix's mask.
    pub fn to_match(&self, metadata: u64, seen: Seen) -> Match {
        let fields = seen.fields;
        // One allocation: metadata, every field read and the prerequisites they imply (a
        // routed, filtered flow has 8 fields; the vector used to grow from 4: a second
        // allocation and copy per packet-in).
        let mut m: Vec<OxmField> = Vec::with_capacity(3 + fields.bits().count_ones() as usize);
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
        // Everything after the Ethernet header needs its EtherType matched.
        let l3 = &Field::ALL[Field::Ipv4Src as usize..];
        let needs_type = l3.iter().any(|f| fields.contains(*f));
        if fields.contains(Field::EthType) || needs_type {
            m.push(OxmField::EthType(self.eth_type));
        }
        if let Some(ip) = &self.ipv4 {
            let prefix = |addr: Ipv4Addr, len: u8| {
                let mask = prefix_mask(len);
                let value = Ipv4Addr::from(u32::from(addr) & u32::from(mask));
                (value, (len < 32).then_some(mask))
            };
            if fields.contains(Field::Ipv4Src) && seen.nw_src_len > 0 {
                let (value, mask) = prefix(ip.src, seen.nw_src_len);
                m.push(OxmField::Ipv4Src { value, mask });
            }
            if fields.contains(Field::Ipv4Dst) && seen.nw_dst_len > 0 {
                let (value, mask) = prefix(ip.dst, seen.nw_dst_len);
                m.push(OxmField::Ipv4Dst { value, mask });
            }
            let l4 = [Field::TpSrc, Field::TpDst, Field::IcmpType, Field::IcmpCode];
            if fields.contains(Field::IpProto) || l4.iter().any(|f| fields.contains(*f)) {
                m.push(OxmField::IpProto(ip.proto));
            }
            if fields.contains(Field::IpFrag) {
                m.push(nw_frag(ip.frag));
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
        // Reuses the Vec's buffer instead of collecting into a second one.
        Match {
            fields: smallvec::SmallVec::from_vec(m),
        }
    }

    /// A header the flow with match `m` matches, with its metadata: the matched values, and
    /// for what the match leaves out values no flow depends on (the simulation did not read
    /// them, so any value decides the same: TTL 64, no DF, zeros). The inverse of
    /// [`Header::to_match`] over the fields it wrote; what the engine re-simulates to check a
    /// flow it finds on a switch after a restart. `None` without metadata.
    pub fn from_match(m: &Match) -> Option<(u64, Header)> {
        let mut metadata = None;
        let mut h = Header::ethernet([0; 6], [0; 6], 0);
        let (mut src, mut dst, mut proto, mut frag) = (None, None, None, 0);
        let (mut tp, mut icmp) = ((0u16, 0u16), (0u8, 0u8));
        let (mut op, mut spa, mut tpa) = (0u16, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
        for f in &m.fields {
            match f {
                OxmField::Metadata { value, .. } => metadata = Some(*value),
                OxmField::EthSrc { value, .. } => h.eth_src = *value,
                OxmField::EthDst { value, .. } => h.eth_dst = *value,
                OxmField::EthType(t) => h.eth_type = *t,
                OxmField::Ipv4Src { value, .. } => src = Some(*value),
                OxmField::Ipv4Dst { value, .. } => dst = Some(*value),
                OxmField::IpProto(p) => proto = Some(*p),
                OxmField::TcpSrc(p) | OxmField::UdpSrc(p) => tp.0 = *p,
                OxmField::TcpDst(p) | OxmField::UdpDst(p) => tp.1 = *p,
                OxmField::Icmpv4Type(t) => icmp.0 = *t,
                OxmField::Icmpv4Code(c) => icmp.1 = *c,
                OxmField::ArpOp(o) => op = *o,
                OxmField::ArpSpa { value, .. } => spa = *value,
                OxmField::ArpTpa { value, .. } => tpa = *value,
                other => {
                    if let Some((bits, _)) = as_nw_frag(other) {
                        frag = bits;
                    }
                }
            }
        }
        match h.eth_type {
            0x0800 => {
                let proto = proto.unwrap_or(0);
                h.ipv4 = Some(Ipv4 {
                    src: src.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    dst: dst.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    proto,
                    ttl: 64,
                    total_len: 64,
                    df: false,
                    frag,
                });
                h.l4 = match proto {
                    _ if frag & 2 != 0 => L4::Other,
                    6 => L4::Tcp(tp.0, tp.1),
                    17 => L4::Udp(tp.0, tp.1),
                    1 => L4::Icmp(icmp.0, icmp.1),
                    _ => L4::Other,
                };
            }
            0x0806 => {
                h.arp = Some(Arp {
                    op,
                    sha: h.eth_src,
                    spa,
                    tpa,
                });
            }
            _ => {}
        }
        Some((metadata?, h))
    }

    /// The actions that turn `self` into `to`: `dec_ttl` once per router hop first, then the
    /// `set_field`s of Ethernet and IPv4 addresses.
    ///
    /// TTL first: a switch that finds TTL ≤ 1 at a `dec_ttl` stops there and hands the packet
    /// to the controller (OFPR_INVALID_TTL), and it must arrive as it entered, not half
    /// rewritten, so that the simulation can answer it with time exceeded.
    pub fn diff(&self, to: &Header, out: &mut Vec<Action>) {
        if let (Some(a), Some(b)) = (&self.ipv4, &to.ipv4) {
            for _ in b.ttl..a.ttl {
                out.push(Action::DecNwTtl);
            }
        }
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
        }
    }
}

/// A packet under simulation: its header now, which fields have been read, and which were
/// written (a field a device wrote no longer depends on the packet, so reading it later marks
/// nothing: a bridge after a router reads the MACs the router set, not the packet's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    header: Header,
    seen: Seen,
    written: FieldSet,
}

impl Tracked {
    /// Starts tracking `header` with nothing read.
    pub fn new(header: Header) -> Tracked {
        Tracked {
            header,
            seen: Seen::EMPTY,
            written: FieldSet::EMPTY,
        }
    }

    /// What has been read so far.
    pub fn seen(&self) -> Seen {
        self.seen
    }

    /// Adds what a branch read (forks: every branch's reads shape the one flow).
    pub fn absorb(&mut self, seen: Seen) {
        self.seen = self.seen.union(seen);
    }

    /// The header as it is now, without marking anything read (for emitting, not deciding).
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn mark(&mut self, f: Field) {
        if !self.written.contains(f) {
            self.seen.fields.insert(f);
        }
    }

    /// `eth_src`, marked read.
    pub fn eth_src(&mut self) -> [u8; 6] {
        self.mark(Field::EthSrc);
        self.header.eth_src
    }

    /// `eth_dst`, marked read.
    pub fn eth_dst(&mut self) -> [u8; 6] {
        self.mark(Field::EthDst);
        self.header.eth_dst
    }

    /// `eth_type`, marked read.
    pub fn eth_type(&mut self) -> u16 {
        self.mark(Field::EthType);
        self.header.eth_type
    }

    /// `ip_proto`, marked read; `None` when not IPv4.
    pub fn ip_proto(&mut self) -> Option<u8> {
        let Some(ip) = self.header.ipv4 else {
            // Whether there is an IPv4 header is the EtherType's to say.
            self.mark(Field::EthType);
            return None;
        };
        self.mark(Field::IpProto);
        Some(ip.proto)
    }

    /// The first `len` bits of `ipv4_dst`, marked read (the rest of the address is returned
    /// but must not decide anything).
    pub fn ipv4_dst_prefix(&mut self, len: u8) -> Option<Ipv4Addr> {
        let Some(ip) = self.header.ipv4 else {
            self.mark(Field::EthType);
            return None;
        };
        if len > 0 && !self.written.contains(Field::Ipv4Dst) {
            self.seen.fields.insert(Field::Ipv4Dst);
            self.seen.nw_dst_len = self.seen.nw_dst_len.max(len.min(32));
        }
        Some(ip.dst)
    }

    /// `ipv4_dst`, all of it, marked read.
    pub fn ipv4_dst(&mut self) -> Option<Ipv4Addr> {
        self.ipv4_dst_prefix(32)
    }

    /// The first `len` bits of `ipv4_src`, marked read.
    pub fn ipv4_src_prefix(&mut self, len: u8) -> Option<Ipv4Addr> {
        let Some(ip) = self.header.ipv4 else {
            self.mark(Field::EthType);
            return None;
        };
        if len > 0 && !self.written.contains(Field::Ipv4Src) {
            self.seen.fields.insert(Field::Ipv4Src);
            self.seen.nw_src_len = self.seen.nw_src_len.max(len.min(32));
        }
        Some(ip.src)
    }

    /// `ipv4_src`, all of it, marked read.
    pub fn ipv4_src(&mut self) -> Option<Ipv4Addr> {
        self.ipv4_src_prefix(32)
    }

    /// TCP/UDP source port, marked read; `None` for other protocols.
    pub fn tp_src(&mut self) -> Option<u16> {
        match self.header.l4 {
            L4::Tcp(s, _) | L4::Udp(s, _) => {
                self.mark(Field::IpProto);
                self.mark(Field::TpSrc);
                Some(s)
            }
            // Not TCP/UDP: the protocol (or, without IPv4, the EtherType) said so — or, for a
            // later fragment, the fragment bits.
            _ => {
                self.no_l4();
                None
            }
        }
    }

    /// TCP/UDP destination port, marked read; `None` for other protocols.
    pub fn tp_dst(&mut self) -> Option<u16> {
        match self.header.l4 {
            L4::Tcp(_, d) | L4::Udp(_, d) => {
                self.mark(Field::IpProto);
                self.mark(Field::TpDst);
                Some(d)
            }
            _ => {
                self.no_l4();
                None
            }
        }
    }

    /// ICMP type, marked read; `None` when not ICMP.
    pub fn icmp_type(&mut self) -> Option<u8> {
        match self.header.l4 {
            L4::Icmp(t, _) => {
                self.mark(Field::IpProto);
                self.mark(Field::IcmpType);
                Some(t)
            }
            _ => {
                self.no_l4();
                None
            }
        }
    }

    /// Why a transport getter found nothing: the protocol (or the EtherType), or being a later
    /// fragment — a flow that stood for the later fragment must not also match whole packets.
    fn no_l4(&mut self) {
        if self.ip_proto().is_some() && self.header.ipv4.is_some_and(|ip| ip.frag & 2 != 0) {
            self.mark(Field::IpFrag);
        }
    }

    /// The `nw_frag` bits (1 a fragment, 2 a later one), marked read; `None` when not IPv4.
    pub fn ip_frag(&mut self) -> Option<u8> {
        let Some(ip) = self.header.ipv4 else {
            self.mark(Field::EthType);
            return None;
        };
        self.mark(Field::IpFrag);
        Some(ip.frag)
    }

    /// An ARP field, marked read; without ARP the EtherType said so (marked instead).
    fn arp_field<T>(&mut self, f: Field, get: fn(&Arp) -> T) -> Option<T> {
        let Some(a) = self.header.arp else {
            self.mark(Field::EthType);
            return None;
        };
        self.mark(f);
        Some(get(&a))
    }

    /// `arp_op`, marked read; `None` when not ARP.
    pub fn arp_op(&mut self) -> Option<u16> {
        self.arp_field(Field::ArpOp, |a| a.op)
    }

    /// `arp_spa`, marked read.
    pub fn arp_spa(&mut self) -> Option<Ipv4Addr> {
        self.arp_field(Field::ArpSpa, |a| a.spa)
    }

    /// `arp_tpa`, marked read.
    pub fn arp_tpa(&mut self) -> Option<Ipv4Addr> {
        self.arp_field(Field::ArpTpa, |a| a.tpa)
    }

    /// The IPv4 TTL, *not* marked read: flows never match TTL. A forwarded flow carries
    /// `dec_ttl`, and the switch hands a packet whose TTL runs out to the controller, which
    /// simulates it again and answers time exceeded; only that simulation looks at the TTL.
    pub fn ttl_unmatched(&self) -> Option<u8> {
        self.header.ipv4.map(|ip| ip.ttl)
    }

    /// Whether the EtherType promises a header the packet does not carry readably (truncated or
    /// malformed IPv4 or ARP): a decision on such a packet must not become a flow, which would
    /// also match every well-formed packet of that type.
    pub fn malformed(&self) -> bool {
        match self.header.eth_type {
            0x0800 => self.header.ipv4.is_none(),
            0x0806 => self.header.arp.is_none(),
            _ => false,
        }
    }

    /// Rewrites the Ethernet addresses (no read).
    pub fn set_eth(&mut self, src: [u8; 6], dst: [u8; 6]) {
        self.header.eth_src = src;
        self.header.eth_dst = dst;
        self.written.insert(Field::EthSrc);
        self.written.insert(Field::EthDst);
    }

    /// Decrements the TTL (a router hop; becomes `dec_ttl`).
    pub fn dec_ttl(&mut self) {
        if let Some(ip) = &mut self.header.ipv4 {
            ip.ttl = ip.ttl.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_listed_at_its_own_index() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i, "{f:?}");
        }
    }

    #[test]
    fn reads_are_recorded_and_match_only_them() {
        let h = Header::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 0x0800);
        let mut t = Tracked::new(h);
        assert_eq!(t.seen(), Seen::EMPTY);
        let _ = t.header();
        assert_eq!(t.seen(), Seen::EMPTY);
        t.eth_dst();
        let m = h.to_match(7, t.seen());
        assert_eq!(m.fields.len(), 2);
        m.validate_prerequisites().unwrap();
        t.set_eth([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 2]);
        assert!(!t.seen().contains(Field::EthSrc));
        // A written field read later marks nothing: it no longer depends on the packet.
        t.eth_src();
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
        let mut t = Tracked::new(h);
        t.tp_dst();
        let m = h.to_match(1, t.seen());
        m.validate_prerequisites().unwrap();
        assert!(m.ip_proto() == Some(17) && m.eth_type() == Some(0x0800));
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::*;

    /// Every match `to_match` makes comes back from `from_match` as a header that makes the
    /// same match again (what the engine's read-back reconcile relies on).
    #[test]
    fn from_match_inverts_to_match() {
        use proptest::prelude::*;
        let mac = any::<[u8; 6]>();
        let l4 = prop_oneof![
            (any::<u16>(), any::<u16>()).prop_map(|(a, b)| L4::Tcp(a, b)),
            (any::<u16>(), any::<u16>()).prop_map(|(a, b)| L4::Udp(a, b)),
            (any::<u8>(), any::<u8>()).prop_map(|(a, b)| L4::Icmp(a, b)),
            Just(L4::Other),
        ];
        let header = (
            mac,
            mac,
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            l4,
            0u8..4,
            any::<bool>(),
        )
            .prop_map(|(s, d, a, b, l4, frag, arp)| {
                let mut h = Header::ethernet(s, d, if arp { 0x0806 } else { 0x0800 });
                if arp {
                    h.arp = Some(Arp {
                        op: 1,
                        sha: s,
                        spa: a.into(),
                        tpa: b.into(),
                    });
                } else {
                    let frag = frag & 1 | (frag & 2);
                    let proto = match l4 {
                        L4::Tcp(..) => 6,
                        L4::Udp(..) => 17,
                        L4::Icmp(..) => 1,
                        L4::Other => 47,
                    };
                    h.ipv4 = Some(Ipv4 {
                        src: a.into(),
                        dst: b.into(),
                        proto,
                        ttl: 9,
                        total_len: 1500,
                        df: true,
                        frag: if frag & 2 != 0 { 3 } else { frag },
                    });
                    h.l4 = if frag & 2 != 0 { L4::Other } else { l4 };
                }
                h
            });
        let seen = (any::<u16>(), 0u8..=32, 0u8..=32).prop_map(|(bits, s, d)| {
            let mut f = FieldSet::default();
            for i in 0..14u8 {
                if bits & (1 << i) != 0 {
                    f.insert(Field::ALL[usize::from(i)]);
                }
            }
            Seen {
                fields: f,
                nw_src_len: s,
                nw_dst_len: d,
            }
        });
        proptest!(|(h in header, seen in seen, md in any::<u64>())| {
            // Only what a walk can read: transport fields of the transport the packet has
            // (`Tracked` reads the protocol or the fragment bits instead).
            let mut seen = seen;
            let keep = |f: Field| match (f, h.l4) {
                (Field::TpSrc | Field::TpDst, L4::Tcp(..) | L4::Udp(..)) => true,
                (Field::IcmpType | Field::IcmpCode, L4::Icmp(..)) => true,
                (Field::TpSrc | Field::TpDst | Field::IcmpType | Field::IcmpCode, _) => false,
                _ => true,
            };
            let mut fields = FieldSet::default();
            for i in 0..14u8 {
                let f = Field::ALL[usize::from(i)];
                if seen.fields.contains(f) && keep(f) {
                    fields.insert(f);
                }
            }
            seen.fields = fields;
            let m = h.to_match(md, seen);
            let (md2, back) = Header::from_match(&m).expect("metadata");
            prop_assert_eq!(md2, md);
            prop_assert_eq!(back.to_match(md, seen), m);
        });
    }

    #[test]
    fn a_prefix_read_matches_the_prefix_and_the_longest_read_wins() {
        let frame = crate::harness::frames::udp(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            [10, 0, 0, 1],
            [10, 1, 2, 3],
            1000,
            53,
        );
        let h = Header::parse(&frame).unwrap();
        let mut t = Tracked::new(h);
        t.ipv4_dst_prefix(16);
        let m = h.to_match(1, t.seen());
        assert!(m.fields.contains(&OxmField::Ipv4Dst {
            value: Ipv4Addr::new(10, 1, 0, 0),
            mask: Some(Ipv4Addr::new(255, 255, 0, 0)),
        }));
        t.ipv4_dst_prefix(8);
        assert_eq!(t.seen().nw_dst_len, 16);
        t.ipv4_dst();
        let m = h.to_match(1, t.seen());
        assert!(m.fields.contains(&OxmField::Ipv4Dst {
            value: Ipv4Addr::new(10, 1, 2, 3),
            mask: None,
        }));
        m.validate_prerequisites().unwrap();
    }

    #[test]
    fn ttl_goes_first_in_the_actions_and_is_never_matched() {
        let frame = crate::harness::frames::udp(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            [10, 0, 0, 1],
            [10, 1, 2, 3],
            1000,
            53,
        );
        let h = Header::parse(&frame).unwrap();
        let mut t = Tracked::new(h);
        assert_eq!(t.ttl_unmatched(), Some(64));
        t.set_eth([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4]);
        t.dec_ttl();
        assert_eq!(t.seen(), Seen::EMPTY);
        let mut acts = vec![];
        h.diff(t.header(), &mut acts);
        assert_eq!(acts[0], Action::DecNwTtl);
        assert_eq!(acts.len(), 3);
    }
}
