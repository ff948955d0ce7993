//! `ovs-ofctl`-style text, so logs and `strowger ofp decode --text` read like OVS: matches,
//! actions, instructions, flow mods and flow stats here (the `dump-flows` vocabulary); one line
//! per message, as `ovs-ofctl ofp-print` would print it, in `msg` and `multipart`.

use std::fmt::{self, Display, Formatter, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::action::{Action, NX_OFPP_IN_PORT};
use crate::instruction::Instruction;
use crate::msg::flow::{FlowMod, FlowModCommand};
use crate::multipart::FlowStats;
use crate::oxm::{Match, OxmField};
use crate::{consts, port_no};

mod msg;
mod multipart;

/// A MAC address printed as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl Display for Mac {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address (expected aa:bb:cc:dd:ee:ff)")]
pub struct MacParseError;

impl std::str::FromStr for Mac {
    type Err = MacParseError;

    /// `aa:bb:cc:dd:ee:ff` (or with `-`), the one MAC spelling REST, logs and the CLI share.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let p = parts.next().ok_or(MacParseError)?;
            if p.len() != 2 {
                return Err(MacParseError);
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| MacParseError)?;
        }
        match parts.next() {
            Some(_) => Err(MacParseError),
            None => Ok(Mac(out)),
        }
    }
}

/// A datapath id as OVS prints it: 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dpid(pub u64);

impl Display for Dpid {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Dpid {
    type Err = std::num::ParseIntError;

    /// Decimal (`1`), `0x`-prefixed hex, or exactly the 16 hex digits [`Dpid`] prints.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            return u64::from_str_radix(hex, 16).map(Dpid);
        }
        if s.len() == 16 {
            return u64::from_str_radix(s, 16).map(Dpid);
        }
        s.parse().map(Dpid)
    }
}

/// The reserved port numbers by the names OVS (and `ofctl_rest`) give them.
pub const RESERVED_PORTS: &[(&str, u32)] = &[
    ("IN_PORT", port_no::IN_PORT),
    ("TABLE", port_no::TABLE),
    ("NORMAL", port_no::NORMAL),
    ("FLOOD", port_no::FLOOD),
    ("ALL", port_no::ALL),
    ("CONTROLLER", port_no::CONTROLLER),
    ("LOCAL", port_no::LOCAL),
    ("ANY", port_no::ANY),
];

/// A 32-bit port number as OVS prints it (`LOCAL`, `CONTROLLER`, or the number).
pub struct PortName(pub u32);

impl PortName {
    /// The name of a reserved port, `None` for the others.
    pub fn reserved(port: u32) -> Option<&'static str> {
        RESERVED_PORTS
            .iter()
            .find(|(_, n)| *n == port)
            .map(|(name, _)| *name)
    }

    /// The reserved port named `name` (any case).
    pub fn from_reserved(name: &str) -> Option<u32> {
        RESERVED_PORTS
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(name))
            .map(|(_, n)| *n)
    }
}

impl Display for PortName {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match PortName::reserved(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

fn ipv4_masked(f: &mut Formatter<'_>, v: Ipv4Addr, m: Option<Ipv4Addr>) -> fmt::Result {
    match m {
        None => write!(f, "{v}"),
        Some(m) => {
            let bits = u32::from(m);
            if bits.leading_ones() + bits.trailing_zeros() == 32 {
                write!(f, "{v}/{}", bits.leading_ones())
            } else {
                write!(f, "{v}/{m}")
            }
        }
    }
}

/// An IPv6 address as OVS prints it (glibc `inet_ntop`): hex groups with the longest run of
/// zero groups compressed.
pub struct Ipv6(pub Ipv6Addr);

impl Display for Ipv6 {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let g = self.0.segments();
        // Longest run (first wins) of at least two zero groups.
        let (mut best, mut cur) = ((0, 0), (0, 0));
        for (i, w) in g.iter().enumerate() {
            if *w == 0 {
                cur = if cur.1 == 0 {
                    (i, 1)
                } else {
                    (cur.0, cur.1 + 1)
                };
                if cur.1 > best.1 {
                    best = cur;
                }
            } else {
                cur = (0, 0);
            }
        }
        if best.1 < 2 {
            best = (8, 0);
        }
        let join = |f: &mut Formatter<'_>, groups: &[u16]| -> fmt::Result {
            for (i, w) in groups.iter().enumerate() {
                if i > 0 {
                    f.write_char(':')?;
                }
                write!(f, "{w:x}")?;
            }
            Ok(())
        };
        // glibc's inet_ntop (which OVS uses) writes IPv4-compatible and IPv4-mapped
        // addresses with a dotted-quad tail.
        if best.0 == 0 && (best.1 == 6 || (best.1 == 5 && g[5] == 0xffff)) {
            let [.., a, b, c, d] = self.0.octets();
            let prefix = if best.1 == 5 { "::ffff:" } else { "::" };
            return write!(f, "{prefix}{a}.{b}.{c}.{d}");
        }
        join(f, &g[..best.0])?;
        if best.1 > 0 {
            f.write_str("::")?;
            join(f, &g[best.0 + best.1..])?;
        }
        Ok(())
    }
}

fn ipv6_masked(f: &mut Formatter<'_>, v: Ipv6Addr, m: Option<Ipv6Addr>) -> fmt::Result {
    match m {
        None => write!(f, "{}", Ipv6(v)),
        Some(m) => {
            let bits = u128::from(m);
            if bits.leading_ones() + bits.trailing_zeros() == 128 {
                write!(f, "{}/{}", Ipv6(v), bits.leading_ones())
            } else {
                write!(f, "{}/{}", Ipv6(v), Ipv6(m))
            }
        }
    }
}

fn hex_masked<T: fmt::LowerHex>(f: &mut Formatter<'_>, v: T, m: Option<T>) -> fmt::Result {
    match m {
        None => write!(f, "{v:#x}"),
        Some(m) => write!(f, "{v:#x}/{m:#x}"),
    }
}

fn mac_masked(f: &mut Formatter<'_>, v: [u8; 6], m: Option<[u8; 6]>) -> fmt::Result {
    match m {
        None => write!(f, "{}", Mac(v)),
        Some(m) => write!(f, "{}/{}", Mac(v), Mac(m)),
    }
}

/// Prints one field as `name=value` with the OVS field names used by `ovs-ofctl`.
impl Display for OxmField {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        use OxmField::*;
        match self {
            InPort(p) => write!(f, "in_port={}", PortName(*p)),
            InPhyPort(p) => write!(f, "in_phy_port={}", PortName(*p)),
            Metadata { value, mask } => {
                f.write_str("metadata=")?;
                hex_masked(f, *value, *mask)
            }
            EthDst { value, mask } => {
                f.write_str("dl_dst=")?;
                mac_masked(f, *value, *mask)
            }
            EthSrc { value, mask } => {
                f.write_str("dl_src=")?;
                mac_masked(f, *value, *mask)
            }
            EthType(t) => write!(f, "dl_type={t:#06x}"),
            // OVS shows OpenFlow's 13-bit vlan_vid through its own vlan_tci (same bit layout
            // for VID and "present"), and an exact present VID as dl_vlan.
            VlanVid { value, mask } => match mask {
                None if value & consts::OFPVID_PRESENT != 0 => {
                    write!(f, "dl_vlan={}", value & 0x0fff)
                }
                None => write!(f, "vlan_tci={value:#06x}/0x1fff"),
                Some(m) => write!(f, "vlan_tci={value:#06x}/{m:#06x}"),
            },
            VlanPcp(p) => write!(f, "dl_vlan_pcp={p}"),
            IpDscp(d) => write!(f, "nw_tos={}", u16::from(*d) << 2),
            IpEcn(e) => write!(f, "nw_ecn={e}"),
            IpProto(p) => write!(f, "nw_proto={p}"),
            Ipv4Src { value, mask } => {
                f.write_str("nw_src=")?;
                ipv4_masked(f, *value, *mask)
            }
            Ipv4Dst { value, mask } => {
                f.write_str("nw_dst=")?;
                ipv4_masked(f, *value, *mask)
            }
            TcpSrc(p) | UdpSrc(p) | SctpSrc(p) => write!(f, "tp_src={p}"),
            TcpDst(p) | UdpDst(p) | SctpDst(p) => write!(f, "tp_dst={p}"),
            Icmpv4Type(t) | Icmpv6Type(t) => write!(f, "icmp_type={t}"),
            Icmpv4Code(c) | Icmpv6Code(c) => write!(f, "icmp_code={c}"),
            ArpOp(o) => write!(f, "arp_op={o}"),
            ArpSpa { value, mask } => {
                f.write_str("arp_spa=")?;
                ipv4_masked(f, *value, *mask)
            }
            ArpTpa { value, mask } => {
                f.write_str("arp_tpa=")?;
                ipv4_masked(f, *value, *mask)
            }
            ArpSha { value, mask } => {
                f.write_str("arp_sha=")?;
                mac_masked(f, *value, *mask)
            }
            ArpTha { value, mask } => {
                f.write_str("arp_tha=")?;
                mac_masked(f, *value, *mask)
            }
            Ipv6Src { value, mask } => {
                f.write_str("ipv6_src=")?;
                ipv6_masked(f, *value, *mask)
            }
            Ipv6Dst { value, mask } => {
                f.write_str("ipv6_dst=")?;
                ipv6_masked(f, *value, *mask)
            }
            Ipv6Flabel { value, mask } => {
                f.write_str("ipv6_label=")?;
                hex_masked(f, *value, *mask)
            }
            Ipv6NdTarget(a) => write!(f, "nd_target={}", Ipv6(*a)),
            Ipv6NdSll(m) => write!(f, "nd_sll={}", Mac(*m)),
            Ipv6NdTll(m) => write!(f, "nd_tll={}", Mac(*m)),
            MplsLabel(l) => write!(f, "mpls_label={l}"),
            MplsTc(t) => write!(f, "mpls_tc={t}"),
            MplsBos(b) => write!(f, "mpls_bos={b}"),
            PbbIsid { value, mask } => {
                f.write_str("pbb_isid=")?;
                hex_masked(f, *value, *mask)
            }
            TunnelId { value, mask } => {
                f.write_str("tun_id=")?;
                hex_masked(f, *value, *mask)
            }
            Ipv6Exthdr { value, mask } => {
                f.write_str("ipv6_exthdr=")?;
                hex_masked(f, *value, *mask)
            }
            TunIpv4Src { value, mask } => {
                f.write_str("tun_src=")?;
                ipv4_masked(f, *value, *mask)
            }
            TunIpv4Dst { value, mask } => {
                f.write_str("tun_dst=")?;
                ipv4_masked(f, *value, *mask)
            }
            Reg { idx, value, mask } => {
                write!(f, "reg{idx}=")?;
                hex_masked(f, *value, *mask)
            }
            Unknown {
                class,
                field,
                hasmask,
                value,
            } => {
                write!(f, "oxm({class:#06x}:{field}")?;
                if *hasmask {
                    f.write_str("/masked")?;
                }
                f.write_str(")=0x")?;
                for b in value.iter() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// The protocol shorthand OVS prints in place of `dl_type`/`nw_proto` (`tcp`, `arp`, ...),
/// and which of those two fields it absorbs.
fn shorthand(m: &Match) -> Option<(&'static str, bool)> {
    let proto = m.ip_proto();
    Some(match (m.eth_type()?, proto) {
        (0x0800, Some(1)) => ("icmp", true),
        (0x0800, Some(6)) => ("tcp", true),
        (0x0800, Some(17)) => ("udp", true),
        (0x0800, Some(132)) => ("sctp", true),
        (0x0800, _) => ("ip", false),
        (0x86dd, Some(58)) => ("icmp6", true),
        (0x86dd, Some(6)) => ("tcp6", true),
        (0x86dd, Some(17)) => ("udp6", true),
        (0x86dd, Some(132)) => ("sctp6", true),
        (0x86dd, _) => ("ipv6", false),
        (0x0806, _) => ("arp", false),
        (0x8035, _) => ("rarp", false),
        (0x8847, _) => ("mpls", false),
        (0x8848, _) => ("mplsm", false),
        _ => return None,
    })
}

/// Where OVS's `match_format` prints a field; fields of equal rank keep wire order.
fn ovs_rank(f: &OxmField) -> u16 {
    use OxmField::*;
    match f {
        Reg { idx, .. } => 10 + u16::from(*idx),
        TunnelId { .. } => 30,
        TunIpv4Src { .. } => 31,
        TunIpv4Dst { .. } => 32,
        Metadata { .. } => 40,
        InPort(_) => 50,
        InPhyPort(_) => 51,
        VlanVid { .. } => 60,
        VlanPcp(_) => 61,
        EthSrc { .. } => 70,
        EthDst { .. } => 71,
        EthType(_) => 80,
        Ipv6Src { .. } => 90,
        Ipv6Dst { .. } => 91,
        Ipv6Flabel { .. } => 92,
        Ipv4Src { .. } | ArpSpa { .. } => 100,
        Ipv4Dst { .. } | ArpTpa { .. } => 101,
        IpProto(_) | ArpOp(_) => 110,
        ArpSha { .. } => 111,
        ArpTha { .. } => 112,
        IpDscp(_) => 120,
        IpEcn(_) => 121,
        MplsLabel(_) => 130,
        MplsTc(_) => 131,
        MplsBos(_) => 132,
        TcpSrc(_) | UdpSrc(_) | SctpSrc(_) => 140,
        TcpDst(_) | UdpDst(_) | SctpDst(_) => 141,
        Icmpv4Type(_) | Icmpv6Type(_) => 150,
        Icmpv4Code(_) | Icmpv6Code(_) => 151,
        Ipv6NdTarget(_) => 160,
        Ipv6NdSll(_) => 161,
        Ipv6NdTll(_) => 162,
        PbbIsid { .. } => 170,
        Ipv6Exthdr { .. } => 171,
        Unknown { .. } => 200,
    }
}

/// The match as OVS's `match_format` prints it: `priority=N` first unless it is the default
/// 0x8000 (`priority: None` leaves it out), then the protocol shorthand, then the fields in
/// OVS's order.
fn match_format(f: &mut Formatter<'_>, priority: Option<u16>, m: &Match) -> fmt::Result {
    let short = shorthand(m);
    let mut first = true;
    let mut sep = |f: &mut Formatter<'_>| -> fmt::Result {
        if !first {
            f.write_char(',')?;
        }
        first = false;
        Ok(())
    };
    if let Some(p) = priority.filter(|p| *p != DEFAULT_PRIORITY) {
        sep(f)?;
        write!(f, "priority={p}")?;
    }
    if let Some((name, _)) = short {
        sep(f)?;
        f.write_str(name)?;
    }
    let mut fields: Vec<&OxmField> = m
        .fields
        .iter()
        .filter(|field| match field {
            OxmField::EthType(_) => short.is_none(),
            OxmField::IpProto(_) => !short.is_some_and(|(_, p)| p),
            field => !matches_anything(field),
        })
        .collect();
    fields.sort_by_key(|field| ovs_rank(field));
    for field in fields {
        sep(f)?;
        write!(f, "{field}")?;
    }
    Ok(())
}

/// A field whose mask is all zeros matches every packet. It stays on the wire as received (so
/// `emit(parse(b)) == b`), but OVS leaves it out of its text and so do we: `nw_dst=0.0.0.0/0`
/// says nothing a reader needs.
fn matches_anything(field: &OxmField) -> bool {
    use OxmField::*;
    match field {
        Metadata { mask, .. } | TunnelId { mask, .. } => *mask == Some(0),
        EthDst { mask, .. } | EthSrc { mask, .. } | ArpSha { mask, .. } | ArpTha { mask, .. } => {
            *mask == Some([0; 6])
        }
        VlanVid { mask, .. } | Ipv6Exthdr { mask, .. } => *mask == Some(0),
        Ipv4Src { mask, .. }
        | Ipv4Dst { mask, .. }
        | ArpSpa { mask, .. }
        | ArpTpa { mask, .. }
        | TunIpv4Src { mask, .. }
        | TunIpv4Dst { mask, .. } => *mask == Some(Ipv4Addr::UNSPECIFIED),
        Ipv6Src { mask, .. } | Ipv6Dst { mask, .. } => *mask == Some(Ipv6Addr::UNSPECIFIED),
        Ipv6Flabel { mask, .. } | PbbIsid { mask, .. } | Reg { mask, .. } => *mask == Some(0),
        _ => false,
    }
}

/// Whether `match_format` prints anything for this priority and match.
fn match_is_printed(priority: Option<u16>, m: &Match) -> bool {
    priority.is_some_and(|p| p != DEFAULT_PRIORITY) || m.fields.iter().any(|f| !matches_anything(f))
}

/// OpenFlow's default flow priority, which OVS leaves out of its text.
const DEFAULT_PRIORITY: u16 = 0x8000;

/// `tcp,in_port=1,tp_dst=80`; an empty match prints nothing.
impl Display for Match {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match_format(f, None, self)
    }
}

/// Prints a set-field the way OVS does, `set_field:VALUE->FIELD`, with OVS's field names
/// (`eth_dst`, `ip_src`, ...), which differ from the match shorthands (`dl_dst`, `nw_src`).
fn set_field(f: &mut Formatter<'_>, field: &OxmField) -> fmt::Result {
    use OxmField::*;
    let name = match field {
        EthDst { mask: None, .. } => "eth_dst",
        EthSrc { mask: None, .. } => "eth_src",
        Ipv4Src { mask: None, .. } => "ip_src",
        Ipv4Dst { mask: None, .. } => "ip_dst",
        TcpSrc(_) => "tcp_src",
        TcpDst(_) => "tcp_dst",
        UdpSrc(_) => "udp_src",
        UdpDst(_) => "udp_dst",
        SctpSrc(_) => "sctp_src",
        SctpDst(_) => "sctp_dst",
        VlanVid { value, mask: None } => return write!(f, "set_field:{value}->vlan_vid"),
        VlanPcp(p) => return write!(f, "set_field:{p}->vlan_pcp"),
        IpDscp(d) => return write!(f, "set_field:{d}->ip_dscp"),
        Icmpv4Type(_) | Icmpv4Code(_) | Icmpv6Type(_) | Icmpv6Code(_) => field.name(),
        _ => "",
    };
    let text = field.to_string();
    match text.split_once('=') {
        Some((match_name, value)) => {
            let name = if name.is_empty() { match_name } else { name };
            write!(f, "set_field:{value}->{name}")
        }
        None => write!(f, "set_field:{text}"),
    }
}

impl Display for Action {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output { port, max_len } => match *port {
                port_no::CONTROLLER => write!(f, "CONTROLLER:{max_len}"),
                p if p > port_no::MAX => write!(f, "{}", PortName(p)),
                p => write!(f, "output:{p}"),
            },
            Action::CopyTtlOut => f.write_str("copy_ttl_out"),
            Action::CopyTtlIn => f.write_str("copy_ttl_in"),
            Action::SetMplsTtl(t) => write!(f, "set_mpls_ttl({t})"),
            Action::DecMplsTtl => f.write_str("dec_mpls_ttl"),
            Action::PushVlan(e) => write!(f, "push_vlan:{e:#06x}"),
            Action::PopVlan => f.write_str("pop_vlan"),
            Action::PushMpls(e) => write!(f, "push_mpls:{e:#06x}"),
            Action::PopMpls(e) => write!(f, "pop_mpls:{e:#06x}"),
            Action::SetQueue(q) => write!(f, "set_queue:{q}"),
            Action::Group(g) => write!(f, "group:{g}"),
            Action::SetNwTtl(t) => write!(f, "mod_nw_ttl:{t}"),
            Action::DecNwTtl => f.write_str("dec_ttl"),
            Action::SetField(field) => set_field(f, field),
            Action::PushPbb(e) => write!(f, "push_pbb:{e:#06x}"),
            Action::PopPbb => f.write_str("pop_pbb"),
            Action::NxResubmit { in_port, table } => match table {
                None if *in_port != NX_OFPP_IN_PORT => write!(f, "resubmit:{in_port}"),
                _ => {
                    f.write_str("resubmit(")?;
                    if *in_port != NX_OFPP_IN_PORT {
                        write!(f, "{in_port}")?;
                    }
                    f.write_char(',')?;
                    if let Some(t) = table {
                        write!(f, "{t}")?;
                    }
                    f.write_char(')')
                }
            },
            a @ Action::Experimenter { .. } if a.as_nx_check_pkt_larger().is_some() => {
                let (len, reg, bit) = a.as_nx_check_pkt_larger().unwrap_or_default();
                write!(f, "check_pkt_larger({len})->NXM_NX_REG{reg}[{bit}]")
            }
            Action::Experimenter { experimenter, data } => {
                write!(f, "experimenter({experimenter:#010x},0x")?;
                for b in data.iter() {
                    write!(f, "{b:02x}")?;
                }
                f.write_char(')')
            }
        }
    }
}

fn action_list(f: &mut impl Write, actions: &[Action]) -> fmt::Result {
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{a}")?;
    }
    Ok(())
}

/// An action list as OVS prints it after `actions=`: `drop` when empty.
fn action_list_or_drop(f: &mut impl Write, actions: &[Action]) -> fmt::Result {
    if actions.is_empty() {
        f.write_str("drop")
    } else {
        action_list(f, actions)
    }
}

impl Display for Instruction {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Instruction::GotoTable(t) => write!(f, "goto_table:{t}"),
            Instruction::WriteMetadata { metadata, mask } => {
                if *mask == u64::MAX {
                    write!(f, "write_metadata:{metadata:#x}")
                } else {
                    write!(f, "write_metadata:{metadata:#x}/{mask:#x}")
                }
            }
            Instruction::WriteActions(a) => {
                f.write_str("write_actions(")?;
                action_list(f, a)?;
                f.write_char(')')
            }
            Instruction::ApplyActions(a) => action_list(f, a),
            Instruction::ClearActions => f.write_str("clear_actions"),
            Instruction::Meter(m) => write!(f, "meter:{m}"),
            Instruction::Experimenter { experimenter, data } => {
                write!(f, "experimenter_instruction({experimenter:#010x},0x")?;
                for b in data.iter() {
                    write!(f, "{b:02x}")?;
                }
                f.write_char(')')
            }
        }
    }
}

/// `actions=...` as OVS prints it; no instructions is `drop`. OVS lists the meter first and
/// goto_table last, whatever the wire order.
fn instructions(f: &mut Formatter<'_>, list: &[Instruction]) -> fmt::Result {
    f.write_str("actions=")?;
    let printed: Vec<&Instruction> = list
        .iter()
        .filter(|i| !matches!(i, Instruction::ApplyActions(a) if a.is_empty()))
        .collect();
    if printed.is_empty() {
        return f.write_str("drop");
    }
    for (i, ins) in printed.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{ins}")?;
    }
    Ok(())
}

/// `ADD table:1 priority=100,in_port=1 cookie:0x5 idle:10 actions=output:2`: the text
/// `ovs-ofctl ofp-print` prints after `OFPT_FLOW_MOD (OF1.3) (xid=..): `.
impl Display for FlowMod {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.command {
            FlowModCommand::Add => f.write_str("ADD")?,
            FlowModCommand::Modify => f.write_str("MOD")?,
            FlowModCommand::ModifyStrict => f.write_str("MOD_STRICT")?,
            FlowModCommand::Delete => f.write_str("DEL")?,
            FlowModCommand::DeleteStrict => f.write_str("DEL_STRICT")?,
            FlowModCommand::Unknown(c) => write!(f, "cmd:{c}")?,
        }
        if self.table_id != 0 {
            write!(f, " table:{}", self.table_id)?;
        }
        if match_is_printed(Some(self.priority), &self.match_) {
            f.write_char(' ')?;
            match_format(f, Some(self.priority), &self.match_)?;
        }
        // As OVS: in OpenFlow 1.3 only ADD sets the flow's cookie; modify/delete use the
        // cookie only to select flows, and only when the mask is non-zero.
        if self.command == FlowModCommand::Add && self.cookie != 0 {
            write!(f, " cookie:{:#x}", self.cookie)?;
        }
        if self.cookie_mask != 0 {
            write!(f, " cookie:{:#x}/{:#x}", self.cookie, self.cookie_mask)?;
        }
        if self.idle_timeout != 0 {
            write!(f, " idle:{}", self.idle_timeout)?;
        }
        if self.hard_timeout != 0 {
            write!(f, " hard:{}", self.hard_timeout)?;
        }
        if self.buffer_id != crate::OFP_NO_BUFFER {
            write!(f, " buf:{:#x}", self.buffer_id)?;
        }
        if self.out_port != port_no::ANY {
            write!(f, " out_port:{}", PortName(self.out_port))?;
        }
        // OVS's text leaves out out_group; so do we, to stay byte-identical with it.
        flags(f, self.flags)?;
        f.write_char(' ')?;
        instructions(f, &self.instructions)
    }
}

/// OVS names of the `OFPFF_*` bits set in `flags`.
fn flag_names(flags: u16) -> impl Iterator<Item = &'static str> {
    [
        (consts::OFPFF_SEND_FLOW_REM, "send_flow_rem"),
        (consts::OFPFF_CHECK_OVERLAP, "check_overlap"),
        (consts::OFPFF_RESET_COUNTS, "reset_counts"),
        (consts::OFPFF_NO_PKT_COUNTS, "no_packet_counts"),
        (consts::OFPFF_NO_BYT_COUNTS, "no_byte_counts"),
    ]
    .into_iter()
    .filter(move |(bit, _)| flags & bit != 0)
    .map(|(_, name)| name)
}

fn flags(f: &mut Formatter<'_>, flags: u16) -> fmt::Result {
    for name in flag_names(flags) {
        write!(f, " {name}")?;
    }
    Ok(())
}

/// `cookie=0x0, duration=1.5s, table=0, n_packets=0, n_bytes=0, priority=100,in_port=1
/// actions=output:2` (the dump-flows shape).
impl Display for FlowStats {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cookie={:#x}, duration={}.{:03}s, table={}, n_packets={}, n_bytes={}, ",
            self.cookie,
            self.duration_sec,
            self.duration_nsec / 1_000_000,
            self.table_id,
            self.packet_count,
            self.byte_count
        )?;
        if self.idle_timeout != 0 {
            write!(f, "idle_timeout={}, ", self.idle_timeout)?;
        }
        if self.hard_timeout != 0 {
            write!(f, "hard_timeout={}, ", self.hard_timeout)?;
        }
        for name in flag_names(self.flags) {
            write!(f, "{name} ")?;
        }
        if match_is_printed(Some(self.priority), &self.match_) {
            match_format(f, Some(self.priority), &self.match_)?;
            f.write_char(' ')?;
        }
        instructions(f, &self.instructions)
    }
}

/// A flow as `ovs-ofctl add-flow` takes it and `dump-flows` prints it, without the counters:
/// `table=20, priority=1043,metadata=0x5,ip,nw_dst=10.0.1.0/24 actions=dec_ttl,output:3`.
#[derive(Debug, Clone, Copy)]
pub struct FlowText<'a> {
    /// The table.
    pub table_id: u8,
    /// The priority.
    pub priority: u16,
    /// The match.
    pub match_: &'a Match,
    /// The instructions.
    pub instructions: &'a [Instruction],
}

impl Display for FlowText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "table={}, ", self.table_id)?;
        if match_is_printed(Some(self.priority), self.match_) {
            match_format(f, Some(self.priority), self.match_)?;
            f.write_char(' ')?;
        }
        instructions(f, self.instructions)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use crate::msg::flow::FlowMod;
    use crate::oxm::{Match, OxmField};

    /// A field with an all-zero mask matches anything; OVS leaves it out, so do we.
    #[test]
    fn all_zero_masks_are_left_out() {
        let anything = Match::new()
            .with(OxmField::EthType(0x0800))
            .with(OxmField::Ipv4Dst {
                value: Ipv4Addr::UNSPECIFIED,
                mask: Some(Ipv4Addr::UNSPECIFIED),
            })
            .with(OxmField::Reg {
                idx: 1,
                value: 0,
                mask: Some(0),
            })
            .with(OxmField::EthSrc {
                value: [0; 6],
                mask: Some([0; 6]),
            });
        assert_eq!(anything.to_string(), "ip");
        let only_zero = Match::new().with(OxmField::Metadata {
            value: 0,
            mask: Some(0),
        });
        assert_eq!(only_zero.to_string(), "");
        let fm = FlowMod {
            match_: only_zero,
            ..FlowMod::default()
        };
        assert_eq!(fm.to_string(), "ADD actions=drop");
    }
}

#[cfg(test)]
mod spelling_tests {
    use super::*;

    #[test]
    fn macs_datapath_ids_and_reserved_ports_read_back_as_printed() {
        let mac = Mac([0x02, 0xab, 0, 0, 0x10, 0xff]);
        assert_eq!(mac.to_string(), "02:ab:00:00:10:ff");
        assert_eq!(mac.to_string().parse(), Ok(mac));
        assert_eq!("02-AB-00-00-10-FF".parse(), Ok(mac));
        for bad in [
            "",
            "02:ab:00:00:10",
            "02:ab:00:00:10:ff:00",
            "2:ab:00:00:10:ff",
            "zz:ab:00:00:10:ff",
        ] {
            assert_eq!(bad.parse::<Mac>(), Err(MacParseError), "{bad:?}");
        }
        let dpid = Dpid(0xabc);
        assert_eq!(dpid.to_string(), "0000000000000abc");
        for spelling in ["0000000000000abc", "0xabc", "2748"] {
            assert_eq!(spelling.parse(), Ok(dpid), "{spelling}");
        }
        assert!("abc".parse::<Dpid>().is_err());
        for (name, port) in RESERVED_PORTS {
            assert_eq!(PortName(*port).to_string(), *name);
            assert_eq!(PortName::from_reserved(&name.to_lowercase()), Some(*port));
        }
        assert_eq!(PortName(7).to_string(), "7");
        assert_eq!(PortName::reserved(7), None);
    }
}
