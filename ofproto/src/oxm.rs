//! `ofp_match` (OFPMT_OXM) and its OXM TLVs: every OpenFlow-basic field, plus the Nicira
//! extension fields OVS uses for overlays in OpenFlow 1.3 (`reg0`–`reg7` as `NXM_NX_REG0..7`,
//! `tun_src`/`tun_dst` as `NXM_NX_TUN_IPV4_SRC/DST`, all in class `0x0001`).
//!
//! A TLV whose class/field we do not know, or a known field carrying a mask the spec does not
//! allow (OVS sends masked transport ports, for instance), is kept as [`OxmField::Unknown`] so it
//! round-trips. A known field with the wrong payload length is an error (`OFPBMC_BAD_LEN`).
//! Decoding refuses what a switch refuses in any match: a typed field twice (`OFPBMC_DUP_FIELD`)
//! and a masked `in_port` (`OFPBMC_BAD_MASK`). The other semantic checks (prerequisites,
//! mask/value consistency) live in [`Match::validate_prerequisites`], which the controller
//! calls before sending. [`OxmField::to_text`]/[`OxmField::from_text`] spell every typed field
//! by its table name, for REST.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use smallvec::SmallVec;

use crate::codec::{pad8, patch_len, put_len_placeholder, put_zeros, ser, Reader};
use crate::error::{Ctx, Error};

/// `OFPXMC_OPENFLOW_BASIC`.
pub const OFPXMC_OPENFLOW_BASIC: u16 = 0x8000;
/// `OFPXMC_NXM_1`: Nicira extension fields (registers, tunnel metadata).
pub const OFPXMC_NXM_1: u16 = 0x0001;
/// `OFPXMC_EXPERIMENTER`.
pub const OFPXMC_EXPERIMENTER: u16 = 0xffff;
/// `OFPMT_OXM`.
pub const OFPMT_OXM: u16 = 1;
/// `NXM_NX_TUN_IPV4_SRC` field number in class `0x0001`.
pub const NXM_NX_TUN_IPV4_SRC: u8 = 31;
/// `NXM_NX_TUN_IPV4_DST` field number in class `0x0001`.
pub const NXM_NX_TUN_IPV4_DST: u8 = 32;

/// An OXM class and field number: identifies a match field whatever its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct OxmKey {
    /// OXM class.
    pub class: u16,
    /// Field number within the class (7 bits).
    pub field: u8,
}

/// A fixed-width value as it sits in an OXM payload.
trait OxmValue: Sized + Copy {
    const LEN: usize;
    fn get(r: &mut Reader) -> Result<Self, Error>;
    fn put(self, out: &mut impl BufMut);
}

impl OxmValue for u8 {
    const LEN: usize = 1;
    fn get(r: &mut Reader) -> Result<Self, Error> {
        r.u8()
    }
    fn put(self, out: &mut impl BufMut) {
        out.put_u8(self)
    }
}
impl OxmValue for u16 {
    const LEN: usize = 2;
    fn get(r: &mut Reader) -> Result<Self, Error> {
        r.u16()
    }
    fn put(self, out: &mut impl BufMut) {
        out.put_u16(self)
    }
}
impl OxmValue for u32 {
    const LEN: usize = 4;
    fn get(r: &mut Reader) -> Result<Self, Error> {
        r.u32()
    }
    fn put(self, out: &mut impl BufMut) {
        out.put_u32(self)
    }
}
impl OxmValue for u64 {
    const LEN: usize = 8;
    fn get(r: &mut Reader) -> Result<Self, Error> {
        r.u64()
    }
    fn put(self, out: &mut impl BufMut) {
        out.put_u64(self)
    }
}
impl OxmValue for [u8; 6] {
    const LEN: usize = 6;
    fn get(r: &mut Reader) -> Result<Self, Error> {
        r.array()
    }
    fn put(self, out: &mut impl BufMut) {
        out.put_slice(&self)
    }
}
impl OxmValue for Ipv4Addr {
    const LEN: usize = 4;
    fn get(r: &mut Reader) -> Result<Self, Error> {
        Ok(Ipv4Addr::from(r.array::<4>()?))
    }
    fn put(self, out: &mut impl BufMut) {
        out.put_slice(&self.octets())
    }
}
impl OxmValue for Ipv6Addr {
    const LEN: usize = 16;
    fn get(r: &mut Reader) -> Result<Self, Error> {
        Ok(Ipv6Addr::from(r.array::<16>()?))
    }
    fn put(self, out: &mut impl BufMut) {
        out.put_slice(&self.octets())
    }
}

/// One match field (OXM TLV).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[allow(missing_docs)] // Each variant is the OpenFlow 1.3.5 field of the same name.
pub enum OxmField {
    InPort(u32),
    InPhyPort(u32),
    Metadata {
        value: u64,
        mask: Option<u64>,
    },
    EthDst {
        #[serde(serialize_with = "ser::mac")]
        value: [u8; 6],
        #[serde(serialize_with = "ser::opt_mac")]
        mask: Option<[u8; 6]>,
    },
    EthSrc {
        #[serde(serialize_with = "ser::mac")]
        value: [u8; 6],
        #[serde(serialize_with = "ser::opt_mac")]
        mask: Option<[u8; 6]>,
    },
    EthType(u16),
    /// VLAN id with `OFPVID_PRESENT` (0x1000) set when a tag is present.
    VlanVid {
        value: u16,
        mask: Option<u16>,
    },
    VlanPcp(u8),
    IpDscp(u8),
    IpEcn(u8),
    IpProto(u8),
    Ipv4Src {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    Ipv4Dst {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    TcpSrc(u16),
    TcpDst(u16),
    UdpSrc(u16),
    UdpDst(u16),
    SctpSrc(u16),
    SctpDst(u16),
    Icmpv4Type(u8),
    Icmpv4Code(u8),
    ArpOp(u16),
    ArpSpa {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    ArpTpa {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    ArpSha {
        #[serde(serialize_with = "ser::mac")]
        value: [u8; 6],
        #[serde(serialize_with = "ser::opt_mac")]
        mask: Option<[u8; 6]>,
    },
    ArpTha {
        #[serde(serialize_with = "ser::mac")]
        value: [u8; 6],
        #[serde(serialize_with = "ser::opt_mac")]
        mask: Option<[u8; 6]>,
    },
    Ipv6Src {
        value: Ipv6Addr,
        mask: Option<Ipv6Addr>,
    },
    Ipv6Dst {
        value: Ipv6Addr,
        mask: Option<Ipv6Addr>,
    },
    Ipv6Flabel {
        value: u32,
        mask: Option<u32>,
    },
    Icmpv6Type(u8),
    Icmpv6Code(u8),
    Ipv6NdTarget(Ipv6Addr),
    Ipv6NdSll(#[serde(serialize_with = "ser::mac")] [u8; 6]),
    Ipv6NdTll(#[serde(serialize_with = "ser::mac")] [u8; 6]),
    MplsLabel(u32),
    MplsTc(u8),
    MplsBos(u8),
    /// 24-bit I-SID; only the low 24 bits of `value`/`mask` are on the wire.
    PbbIsid {
        value: u32,
        mask: Option<u32>,
    },
    TunnelId {
        value: u64,
        mask: Option<u64>,
    },
    Ipv6Exthdr {
        value: u16,
        mask: Option<u16>,
    },
    /// Nicira `NXM_NX_TUN_IPV4_SRC` (OVS `tun_src`).
    TunIpv4Src {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    /// Nicira `NXM_NX_TUN_IPV4_DST` (OVS `tun_dst`).
    TunIpv4Dst {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    /// Nicira `NXM_NX_REG0..7` (OVS `reg0`..`reg7`): class 0x0001, field = `idx`.
    Reg {
        idx: u8,
        value: u32,
        mask: Option<u32>,
    },
    /// A field we have no type for; `value` is the whole payload (value then mask if
    /// `hasmask`, including the experimenter id for class 0xffff).
    Unknown {
        class: u16,
        field: u8,
        hasmask: bool,
        #[serde(serialize_with = "ser::hex")]
        value: Bytes,
    },
}

fn check_len(class: u16, field: u8, len: u8, want: usize) -> Result<(), Error> {
    if usize::from(len) == want {
        Ok(())
    } else {
        Err(Error::BadOxmLength {
            class,
            field,
            length: len,
        })
    }
}

/// An OXM TLV header: class, field, hasmask bit and payload length in one 32-bit word.
const fn oxm_header(class: u16, field: u8, hasmask: bool, len: usize) -> u32 {
    ((class as u32) << 16) | ((field as u32) << 9) | ((hasmask as u32) << 8) | len as u32
}

/// Generates the typed parse/emit arms for the fixed-width fields of one OXM class.
macro_rules! oxm_fields {
    (
        $class:expr;
        exact { $( $ev:ident = $ef:literal : $et:ty, $ek:ident, $en:literal; )* }
        masked { $( $mv:ident = $mf:literal : $mt:ty, $mk:ident, $mn:literal; )* }
    ) => {
        /// Keys of the typed OpenFlow-basic fields.
        pub mod key {
            use super::{OxmKey, OFPXMC_OPENFLOW_BASIC, OFPXMC_NXM_1, NXM_NX_TUN_IPV4_SRC, NXM_NX_TUN_IPV4_DST};
            $( #[allow(missing_docs)] pub const $ek: OxmKey = OxmKey { class: $class, field: $ef }; )*
            $( #[allow(missing_docs)] pub const $mk: OxmKey = OxmKey { class: $class, field: $mf }; )*
            /// `PBB_ISID`.
            pub const PBB_ISID: OxmKey = OxmKey { class: OFPXMC_OPENFLOW_BASIC, field: 37 };
            /// Nicira `tun_src`.
            pub const TUN_IPV4_SRC: OxmKey = OxmKey { class: OFPXMC_NXM_1, field: NXM_NX_TUN_IPV4_SRC };
            /// Nicira `tun_dst`.
            pub const TUN_IPV4_DST: OxmKey = OxmKey { class: OFPXMC_NXM_1, field: NXM_NX_TUN_IPV4_DST };
            /// Nicira `reg<idx>`.
            pub const fn reg(idx: u8) -> OxmKey { OxmKey { class: OFPXMC_NXM_1, field: idx } }
        }

        fn parse_basic(field: u8, hasmask: bool, len: u8, p: &mut Reader) -> Option<Result<OxmField, Error>> {
            let class = $class;
            match field {
                $( $ef if !hasmask => Some(
                    check_len(class, field, len, <$et as OxmValue>::LEN)
                        .and_then(|()| Ok(OxmField::$ev(<$et as OxmValue>::get(p)?)))
                ), )*
                $( $mf => Some(
                    check_len(class, field, len, <$mt as OxmValue>::LEN * (1 + usize::from(hasmask)))
                        .and_then(|()| {
                            let value = <$mt as OxmValue>::get(p)?;
                            let mask = if hasmask { Some(<$mt as OxmValue>::get(p)?) } else { None };
                            Ok(OxmField::$mv { value, mask })
                        })
                ), )*
                _ => None,
            }
        }

        impl OxmField {
            /// (class, field, hasmask, payload length) of the typed basic fields.
            fn basic_header(&self) -> Option<(u16, u8, bool, usize)> {
                match self {
                    $( OxmField::$ev(_) => Some(($class, $ef, false, <$et as OxmValue>::LEN)), )*
                    $( OxmField::$mv { mask, .. } => Some((
                        $class, $mf, mask.is_some(),
                        <$mt as OxmValue>::LEN * (1 + usize::from(mask.is_some())),
                    )), )*
                    _ => None,
                }
            }

            /// Writes a typed basic field's whole TLV, header and payload, in one match on the
            /// variant: the header's words are constants of each arm. Emitting the header and
            /// the payload through two matches cost two indirect jumps per field, and with the
            /// fields of a flow-mod varying from one to the next they were mispredicted: OXM
            /// emission was the second hottest symbol of the engine's packet-in.
            fn emit_basic(&self, out: &mut impl BufMut) -> bool {
                match self {
                    $( OxmField::$ev(v) => {
                        out.put_u32(oxm_header($class, $ef, false, <$et as OxmValue>::LEN));
                        v.put(out);
                    } )*
                    $( OxmField::$mv { value, mask } => match mask {
                        None => {
                            out.put_u32(oxm_header($class, $mf, false, <$mt as OxmValue>::LEN));
                            value.put(out);
                        }
                        Some(m) => {
                            out.put_u32(oxm_header($class, $mf, true, 2 * <$mt as OxmValue>::LEN));
                            value.put(out);
                            m.put(out);
                        }
                    }, )*
                    _ => return false,
                }
                true
            }

            /// The OVS name of this field (`in_port`, `eth_dst`, `reg3`, ...).
            pub fn name(&self) -> &'static str {
                match self {
                    $( OxmField::$ev(_) => $en, )*
                    $( OxmField::$mv { .. } => $mn, )*
                    OxmField::PbbIsid { .. } => "pbb_isid",
                    OxmField::TunIpv4Src { .. } => "tun_src",
                    OxmField::TunIpv4Dst { .. } => "tun_dst",
                    OxmField::Reg { idx, .. } => REG_NAMES.get(usize::from(*idx)).copied().unwrap_or("reg?"),
                    OxmField::Unknown { .. } => "unknown",
                }
            }

            /// The table's field named `name` from text: `None` if no field of the table has
            /// that name, `Some(None)` if the value (or a mask on an exact field) does not fit.
            fn basic_from_text(name: &str, value: &str, mask: Option<&str>) -> Option<Option<OxmField>> {
                Some(match name {
                    $( $en => match mask {
                        None => <$et as OxmText>::from_text(value).map(OxmField::$ev),
                        Some(_) => None,
                    }, )*
                    $( $mn => masked_from_text::<$mt>(value, mask)
                        .map(|(value, mask)| OxmField::$mv { value, mask }), )*
                    _ => return None,
                })
            }

            fn basic_text(&self) -> Option<FieldText> {
                Some(match self {
                    $( OxmField::$ev(v) => FieldText::exact($en, v), )*
                    $( OxmField::$mv { value, mask } => FieldText::masked($mn, value, mask.as_ref()), )*
                    _ => return None,
                })
            }

            fn basic_examples(out: &mut Vec<OxmField>) {
                $( out.push(OxmField::$ev(<$et as OxmText>::example())); )*
                $(
                    out.push(OxmField::$mv { value: <$mt as OxmText>::example(), mask: None });
                    out.push(OxmField::$mv {
                        value: <$mt as OxmText>::example(),
                        mask: Some(<$mt as OxmText>::example_mask()),
                    });
                )*
            }
        }
    };
}

const REG_NAMES: [&str; 8] = [
    "reg0", "reg1", "reg2", "reg3", "reg4", "reg5", "reg6", "reg7",
];

oxm_fields! {
    OFPXMC_OPENFLOW_BASIC;
    exact {
        InPort = 0: u32, IN_PORT, "in_port";
        InPhyPort = 1: u32, IN_PHY_PORT, "in_phy_port";
        EthType = 5: u16, ETH_TYPE, "eth_type";
        VlanPcp = 7: u8, VLAN_PCP, "vlan_pcp";
        IpDscp = 8: u8, IP_DSCP, "ip_dscp";
        IpEcn = 9: u8, IP_ECN, "ip_ecn";
        IpProto = 10: u8, IP_PROTO, "ip_proto";
        TcpSrc = 13: u16, TCP_SRC, "tcp_src";
        TcpDst = 14: u16, TCP_DST, "tcp_dst";
        UdpSrc = 15: u16, UDP_SRC, "udp_src";
        UdpDst = 16: u16, UDP_DST, "udp_dst";
        SctpSrc = 17: u16, SCTP_SRC, "sctp_src";
        SctpDst = 18: u16, SCTP_DST, "sctp_dst";
        Icmpv4Type = 19: u8, ICMPV4_TYPE, "icmpv4_type";
        Icmpv4Code = 20: u8, ICMPV4_CODE, "icmpv4_code";
        ArpOp = 21: u16, ARP_OP, "arp_op";
        Icmpv6Type = 29: u8, ICMPV6_TYPE, "icmpv6_type";
        Icmpv6Code = 30: u8, ICMPV6_CODE, "icmpv6_code";
        Ipv6NdTarget = 31: Ipv6Addr, IPV6_ND_TARGET, "nd_target";
        Ipv6NdSll = 32: [u8; 6], IPV6_ND_SLL, "nd_sll";
        Ipv6NdTll = 33: [u8; 6], IPV6_ND_TLL, "nd_tll";
        MplsLabel = 34: u32, MPLS_LABEL, "mpls_label";
        MplsTc = 35: u8, MPLS_TC, "mpls_tc";
        MplsBos = 36: u8, MPLS_BOS, "mpls_bos";
    }
    masked {
        Metadata = 2: u64, METADATA, "metadata";
        EthDst = 3: [u8; 6], ETH_DST, "eth_dst";
        EthSrc = 4: [u8; 6], ETH_SRC, "eth_src";
        VlanVid = 6: u16, VLAN_VID, "vlan_vid";
        Ipv4Src = 11: Ipv4Addr, IPV4_SRC, "ipv4_src";
        Ipv4Dst = 12: Ipv4Addr, IPV4_DST, "ipv4_dst";
        ArpSpa = 22: Ipv4Addr, ARP_SPA, "arp_spa";
        ArpTpa = 23: Ipv4Addr, ARP_TPA, "arp_tpa";
        ArpSha = 24: [u8; 6], ARP_SHA, "arp_sha";
        ArpTha = 25: [u8; 6], ARP_THA, "arp_tha";
        Ipv6Src = 26: Ipv6Addr, IPV6_SRC, "ipv6_src";
        Ipv6Dst = 27: Ipv6Addr, IPV6_DST, "ipv6_dst";
        Ipv6Flabel = 28: u32, IPV6_FLABEL, "ipv6_label";
        TunnelId = 38: u64, TUNNEL_ID, "tun_id";
        Ipv6Exthdr = 39: u16, IPV6_EXTHDR, "ipv6_exthdr";
    }
}

fn get_u24(r: &mut Reader) -> Result<u32, Error> {
    let b = r.array::<3>()?;
    Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
}

fn put_u24(out: &mut impl BufMut, v: u32) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

impl OxmField {
    /// Parses one OXM TLV.
    pub(crate) fn read(r: &mut Reader) -> Result<OxmField, Error> {
        let header = r.u32()?;
        // `in_port` leads the match of every packet-in: decode it without the table walk
        // (the same result `parse_basic` gives, a third of the OXM decoding cost).
        if header == (u32::from(OFPXMC_OPENFLOW_BASIC) << 16) | 4 {
            return Ok(OxmField::InPort(r.u32()?));
        }
        let class = (header >> 16) as u16;
        let field = ((header >> 9) & 0x7f) as u8;
        let hasmask = header & 0x100 != 0;
        let len = (header & 0xff) as u8;
        if class == OFPXMC_OPENFLOW_BASIC && field == 0 && hasmask {
            // A switch answers a masked in_port with BAD_MASK; kept raw it would pass for an
            // unknown field and the packet-in would seem to come from no port.
            return Err(Error::BadMask { field: "in_port" });
        }
        let mut p = r.sub(len.into(), Ctx::Match)?;
        let typed = match class {
            OFPXMC_OPENFLOW_BASIC if field == 37 => Some(
                check_len(class, field, len, 3 * (1 + usize::from(hasmask))).and_then(|()| {
                    let value = get_u24(&mut p)?;
                    let mask = if hasmask {
                        Some(get_u24(&mut p)?)
                    } else {
                        None
                    };
                    Ok(OxmField::PbbIsid { value, mask })
                }),
            ),
            OFPXMC_OPENFLOW_BASIC => parse_basic(field, hasmask, len, &mut p),
            OFPXMC_NXM_1 => {
                let want = 4 * (1 + usize::from(hasmask));
                let read = |p: &mut Reader| -> Result<(u32, Option<u32>), Error> {
                    check_len(class, field, len, want)?;
                    let v = p.u32()?;
                    let m = if hasmask { Some(p.u32()?) } else { None };
                    Ok((v, m))
                };
                match field {
                    0..=7 => Some(read(&mut p).map(|(value, mask)| OxmField::Reg {
                        idx: field,
                        value,
                        mask,
                    })),
                    NXM_NX_TUN_IPV4_SRC => Some(read(&mut p).map(|(v, m)| OxmField::TunIpv4Src {
                        value: v.into(),
                        mask: m.map(Ipv4Addr::from),
                    })),
                    NXM_NX_TUN_IPV4_DST => Some(read(&mut p).map(|(v, m)| OxmField::TunIpv4Dst {
                        value: v.into(),
                        mask: m.map(Ipv4Addr::from),
                    })),
                    _ => None,
                }
            }
            _ => None,
        };
        match typed {
            Some(f) => {
                let f = f?;
                p.finish()?;
                Ok(f)
            }
            None => Ok(OxmField::Unknown {
                class,
                field,
                hasmask,
                value: p.rest(),
            }),
        }
    }

    /// Parses exactly one OXM TLV from `buf` (set-field payloads, fuzzing).
    pub fn parse(buf: &[u8]) -> Result<OxmField, Error> {
        let buf = Bytes::copy_from_slice(buf);
        let mut r = Reader::new(&buf, Ctx::Match);
        let f = OxmField::read(&mut r)?;
        r.finish()?;
        Ok(f)
    }

    /// (class, field, hasmask, payload length).
    fn wire_header(&self) -> (u16, u8, bool, usize) {
        if let Some(h) = self.basic_header() {
            return h;
        }
        let masked = |m: bool, w: usize| w * (1 + usize::from(m));
        match self {
            OxmField::PbbIsid { mask, .. } => (
                OFPXMC_OPENFLOW_BASIC,
                37,
                mask.is_some(),
                masked(mask.is_some(), 3),
            ),
            OxmField::TunIpv4Src { mask, .. } => (
                OFPXMC_NXM_1,
                NXM_NX_TUN_IPV4_SRC,
                mask.is_some(),
                masked(mask.is_some(), 4),
            ),
            OxmField::TunIpv4Dst { mask, .. } => (
                OFPXMC_NXM_1,
                NXM_NX_TUN_IPV4_DST,
                mask.is_some(),
                masked(mask.is_some(), 4),
            ),
            OxmField::Reg { idx, mask, .. } => (
                OFPXMC_NXM_1,
                *idx & 0x7f,
                mask.is_some(),
                masked(mask.is_some(), 4),
            ),
            OxmField::Unknown {
                class,
                field,
                hasmask,
                value,
            } => (*class, *field & 0x7f, *hasmask, value.len().min(255)),
            _ => unreachable!("typed basic fields are handled by basic_header"),
        }
    }

    /// Class and field number.
    pub fn key(&self) -> OxmKey {
        let (class, field, _, _) = self.wire_header();
        OxmKey { class, field }
    }

    /// Whether the TLV carries a mask.
    pub fn has_mask(&self) -> bool {
        self.wire_header().2
    }

    /// Bytes this TLV takes on the wire (4-byte header + payload).
    pub fn encoded_len(&self) -> usize {
        4 + self.wire_header().3
    }

    /// Appends the TLV (to any buffer: the engine keys its flows by these bytes, built on the
    /// stack).
    pub fn emit(&self, out: &mut impl BufMut) {
        if self.emit_basic(out) {
            return;
        }
        let (class, field, hasmask, len) = self.wire_header();
        out.put_u32(oxm_header(class, field, hasmask, len));
        match self {
            OxmField::PbbIsid { value, mask } => {
                put_u24(out, *value);
                if let Some(m) = mask {
                    put_u24(out, *m);
                }
            }
            OxmField::TunIpv4Src { value, mask } | OxmField::TunIpv4Dst { value, mask } => {
                out.put_slice(&value.octets());
                if let Some(m) = mask {
                    out.put_slice(&m.octets());
                }
            }
            OxmField::Reg { value, mask, .. } => {
                out.put_u32(*value);
                if let Some(m) = mask {
                    out.put_u32(*m);
                }
            }
            OxmField::Unknown { value, .. } => out.put_slice(&value[..len]),
            _ => {}
        }
    }
}

/// `ofp_match` of type `OFPMT_OXM`: an ordered list of OXM fields. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Match {
    /// The fields, in wire order. One field is held inline: most packet-ins carry only
    /// `in_port`, and the heap allocation a `Vec` needs was a fifth of the packet-in parse.
    pub fields: SmallVec<[OxmField; 1]>,
}

/// A match of these fields, in this order, allocated once (`with` after `with` may grow the
/// field list more than once: a measurable part of building a learning switch's flow).
impl FromIterator<OxmField> for Match {
    fn from_iter<I: IntoIterator<Item = OxmField>>(fields: I) -> Match {
        Match {
            fields: fields.into_iter().collect(),
        }
    }
}

impl Match {
    /// The match-all match.
    pub fn new() -> Match {
        Match::default()
    }

    /// Builder: appends a field.
    pub fn with(mut self, f: OxmField) -> Match {
        self.fields.push(f);
        self
    }

    /// The first field with this key, if any.
    pub fn get(&self, key: OxmKey) -> Option<&OxmField> {
        self.fields.iter().find(|f| f.key() == key)
    }

    /// `in_port`, if matched.
    pub fn in_port(&self) -> Option<u32> {
        self.fields.iter().find_map(|f| match f {
            OxmField::InPort(p) => Some(*p),
            _ => None,
        })
    }

    /// `eth_type`, if matched.
    pub fn eth_type(&self) -> Option<u16> {
        self.fields.iter().find_map(|f| match f {
            OxmField::EthType(t) => Some(*t),
            _ => None,
        })
    }

    /// `ip_proto`, if matched.
    pub fn ip_proto(&self) -> Option<u8> {
        self.fields.iter().find_map(|f| match f {
            OxmField::IpProto(p) => Some(*p),
            _ => None,
        })
    }

    /// Length of the `ofp_match` without trailing padding (what its `length` field says).
    fn unpadded_len(&self) -> usize {
        4 + self.fields.iter().map(OxmField::encoded_len).sum::<usize>()
    }

    /// Bytes on the wire, padding included.
    pub fn encoded_len(&self) -> usize {
        let l = self.unpadded_len();
        l + pad8(l)
    }

    /// Appends the `ofp_match`, padded to a multiple of 8.
    pub fn emit(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u16(OFPMT_OXM);
        let at = put_len_placeholder(out);
        for f in &self.fields {
            f.emit(out);
        }
        patch_len(out, at, start);
        put_zeros(out, pad8(out.len() - start));
    }

    /// Reads an `ofp_match` and its padding.
    pub(crate) fn read(r: &mut Reader) -> Result<Match, Error> {
        let [t0, t1, l0, l1] = r.array()?;
        let typ = u16::from_be_bytes([t0, t1]);
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if typ != OFPMT_OXM {
            return Err(Error::BadMatchType { typ });
        }
        if len < 4 {
            return Err(Error::BadLength {
                ctx: Ctx::Match,
                length: len,
            });
        }
        let mut body = r.sub(len - 4, Ctx::Match)?;
        let mut fields = SmallVec::new();
        // Typed fields seen so far, one bit per field number of each class we know: a field
        // twice is DUP_FIELD, as a switch answers (OF1.3.5 §7.2.3.7). Unknown fields are
        // kept raw, not judged.
        let (mut basic, mut nicira) = (0u128, 0u128);
        body.each(|r| {
            let f = OxmField::read(r)?;
            if !matches!(f, OxmField::Unknown { .. }) {
                let key = f.key();
                let seen = match key.class {
                    OFPXMC_OPENFLOW_BASIC => &mut basic,
                    _ => &mut nicira,
                };
                let bit = 1u128 << (key.field & 0x7f);
                if *seen & bit != 0 {
                    return Err(Error::DuplicateField { field: f.name() });
                }
                *seen |= bit;
            }
            fields.push(f);
            Ok(())
        })?;
        r.sub(pad8(len), Ctx::Match)?.pad(pad8(len))?;
        Ok(Match { fields })
    }

    /// Parses exactly one padded `ofp_match` from `buf`.
    pub fn parse(buf: &[u8]) -> Result<Match, Error> {
        let buf = Bytes::copy_from_slice(buf);
        let mut r = Reader::new(&buf, Ctx::Match);
        let m = Match::read(&mut r)?;
        r.finish()?;
        Ok(m)
    }

    /// Checks what a switch checks before accepting the match (OpenFlow 1.3.5 §7.2.3.6–8):
    /// every field's prerequisites are matched exactly, no field appears twice, masked values
    /// have no bits outside their mask, register indexes are 0–7.
    pub fn validate_prerequisites(&self) -> Result<(), Error> {
        let mut seen: Vec<OxmKey> = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let k = f.key();
            if seen.contains(&k) {
                return Err(Error::DuplicateField { field: f.name() });
            }
            seen.push(k);
            if !mask_consistent(f) {
                return Err(Error::BadWildcards { field: f.name() });
            }
            if let OxmField::Reg { idx, .. } = f {
                if *idx > 7 {
                    return Err(Error::BadField { field: f.name() });
                }
            }
            self.check_prereq(f)?;
        }
        Ok(())
    }

    fn check_prereq(&self, f: &OxmField) -> Result<(), Error> {
        use OxmField::*;
        let eth = self.eth_type();
        let proto = self.ip_proto();
        let is_ip = matches!(eth, Some(0x0800) | Some(0x86dd));
        let fail = |requires| {
            Err(Error::BadPrerequisite {
                field: f.name(),
                requires,
            })
        };
        let icmpv6_type = self.fields.iter().find_map(|f| match f {
            Icmpv6Type(t) => Some(*t),
            _ => None,
        });
        match f {
            InPhyPort(_) if self.in_port().is_none() => fail("in_port"),
            VlanPcp(_) => {
                let present = self.fields.iter().any(|f| match f {
                    VlanVid { value, mask } => mask.is_some() || *value != 0,
                    _ => false,
                });
                if present {
                    Ok(())
                } else {
                    fail("vlan_vid != OFPVID_NONE")
                }
            }
            IpDscp(_) | IpEcn(_) | IpProto(_) if !is_ip => fail("eth_type=0x0800 or 0x86dd"),
            Ipv4Src { .. } | Ipv4Dst { .. } if eth != Some(0x0800) => fail("eth_type=0x0800"),
            TcpSrc(_) | TcpDst(_) if !is_ip || proto != Some(6) => fail("ip_proto=6"),
            UdpSrc(_) | UdpDst(_) if !is_ip || proto != Some(17) => fail("ip_proto=17"),
            SctpSrc(_) | SctpDst(_) if !is_ip || proto != Some(132) => fail("ip_proto=132"),
            Icmpv4Type(_) | Icmpv4Code(_) if eth != Some(0x0800) || proto != Some(1) => {
                fail("eth_type=0x0800,ip_proto=1")
            }
            ArpOp(_) | ArpSpa { .. } | ArpTpa { .. } | ArpSha { .. } | ArpTha { .. }
                if eth != Some(0x0806) =>
            {
                fail("eth_type=0x0806")
            }
            Ipv6Src { .. } | Ipv6Dst { .. } | Ipv6Flabel { .. } | Ipv6Exthdr { .. }
                if eth != Some(0x86dd) =>
            {
                fail("eth_type=0x86dd")
            }
            Icmpv6Type(_) | Icmpv6Code(_) if eth != Some(0x86dd) || proto != Some(58) => {
                fail("eth_type=0x86dd,ip_proto=58")
            }
            Ipv6NdTarget(_)
                if eth != Some(0x86dd)
                    || proto != Some(58)
                    || !matches!(icmpv6_type, Some(135) | Some(136)) =>
            {
                fail("icmpv6_type=135 or 136")
            }
            Ipv6NdSll(_)
                if eth != Some(0x86dd) || proto != Some(58) || icmpv6_type != Some(135) =>
            {
                fail("icmpv6_type=135")
            }
            Ipv6NdTll(_)
                if eth != Some(0x86dd) || proto != Some(58) || icmpv6_type != Some(136) =>
            {
                fail("icmpv6_type=136")
            }
            MplsLabel(_) | MplsTc(_) | MplsBos(_)
                if !matches!(eth, Some(0x8847) | Some(0x8848)) =>
            {
                fail("eth_type=0x8847 or 0x8848")
            }
            PbbIsid { .. } if eth != Some(0x88e7) => fail("eth_type=0x88e7"),
            _ => Ok(()),
        }
    }
}

/// True unless a masked field has value bits where its mask is 0.
fn mask_consistent(f: &OxmField) -> bool {
    fn ok<const N: usize>(v: [u8; N], m: Option<[u8; N]>) -> bool {
        m.is_none_or(|m| v.iter().zip(m.iter()).all(|(v, m)| v & !m == 0))
    }
    use OxmField::*;
    match f {
        Metadata { value, mask } | TunnelId { value, mask } => {
            ok(value.to_be_bytes(), mask.map(u64::to_be_bytes))
        }
        EthDst { value, mask }
        | EthSrc { value, mask }
        | ArpSha { value, mask }
        | ArpTha { value, mask } => ok(*value, *mask),
        VlanVid { value, mask } | Ipv6Exthdr { value, mask } => {
            ok(value.to_be_bytes(), mask.map(u16::to_be_bytes))
        }
        Ipv4Src { value, mask }
        | Ipv4Dst { value, mask }
        | ArpSpa { value, mask }
        | ArpTpa { value, mask }
        | TunIpv4Src { value, mask }
        | TunIpv4Dst { value, mask } => ok(value.octets(), mask.map(|m| m.octets())),
        Ipv6Src { value, mask } | Ipv6Dst { value, mask } => {
            ok(value.octets(), mask.map(|m| m.octets()))
        }
        Ipv6Flabel { value, mask } | PbbIsid { value, mask } | Reg { value, mask, .. } => {
            ok(value.to_be_bytes(), mask.map(u32::to_be_bytes))
        }
        _ => true,
    }
}

/// How a field value is spelled as text (REST, CLI): integers in decimal or `0x` hex (masked
/// ones print in hex), MACs as `aa:bb:cc:dd:ee:ff`, IP addresses as usual, and IP masks also as
/// prefix lengths. One spelling per value type, so every field the table knows has one.
trait OxmText: Sized + Copy {
    /// Whether an exact value is best shown as a number.
    const INTEGER: bool;
    fn to_text(&self) -> String;
    /// The spelling next to a mask (integers: hex, where the bits show).
    fn to_masked_text(&self) -> String {
        self.to_text()
    }
    fn from_text(s: &str) -> Option<Self>;
    fn mask_from_text(s: &str) -> Option<Self> {
        Self::from_text(s)
    }
    fn example() -> Self;
    fn example_mask() -> Self;
}

macro_rules! int_text {
    ($($t:ty),*) => {$(
        impl OxmText for $t {
            const INTEGER: bool = true;
            fn to_text(&self) -> String {
                self.to_string()
            }
            fn to_masked_text(&self) -> String {
                format!("{self:#x}")
            }
            fn from_text(s: &str) -> Option<Self> {
                match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    Some(hex) => <$t>::from_str_radix(hex, 16).ok(),
                    None => s.parse().ok(),
                }
            }
            fn example() -> Self {
                1
            }
            fn example_mask() -> Self {
                0x0f
            }
        }
    )*};
}
int_text!(u8, u16, u32, u64);

impl OxmText for [u8; 6] {
    const INTEGER: bool = false;
    fn to_text(&self) -> String {
        crate::display::Mac(*self).to_string()
    }
    fn from_text(s: &str) -> Option<Self> {
        s.parse::<crate::display::Mac>().ok().map(|m| m.0)
    }
    fn example() -> Self {
        [0x02, 0, 0, 0, 0, 0x01]
    }
    fn example_mask() -> Self {
        [0xff, 0xff, 0xff, 0, 0, 0]
    }
}

impl OxmText for Ipv4Addr {
    const INTEGER: bool = false;
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn from_text(s: &str) -> Option<Self> {
        s.parse().ok()
    }
    fn mask_from_text(s: &str) -> Option<Self> {
        match s.parse::<u32>() {
            Ok(len) if len <= 32 => Some(u32::MAX.checked_shl(32 - len).unwrap_or(0).into()),
            Ok(_) => None,
            Err(_) => s.parse().ok(),
        }
    }
    fn example() -> Self {
        Ipv4Addr::new(10, 0, 0, 1)
    }
    fn example_mask() -> Self {
        Ipv4Addr::new(255, 255, 255, 0)
    }
}

impl OxmText for Ipv6Addr {
    const INTEGER: bool = false;
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn from_text(s: &str) -> Option<Self> {
        s.parse().ok()
    }
    fn mask_from_text(s: &str) -> Option<Self> {
        match s.parse::<u32>() {
            Ok(len) if len <= 128 => Some(u128::MAX.checked_shl(128 - len).unwrap_or(0).into()),
            Ok(_) => None,
            Err(_) => s.parse().ok(),
        }
    }
    fn example() -> Self {
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)
    }
    fn example_mask() -> Self {
        Ipv6Addr::new(0xffff, 0xffff, 0, 0, 0, 0, 0, 0)
    }
}

fn masked_from_text<T: OxmText>(value: &str, mask: Option<&str>) -> Option<(T, Option<T>)> {
    let value = T::from_text(value)?;
    let mask = match mask {
        None => None,
        Some(m) => Some(T::mask_from_text(m)?),
    };
    Some((value, mask))
}

/// A typed field spelled as text: its name from the field table, its value and mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldText {
    /// The OVS name (`in_port`, `ipv6_src`, `reg3`, ...), as [`OxmField::name`].
    pub name: &'static str,
    /// Whether the value is an integer (a JSON number when exact).
    pub integer: bool,
    /// The value.
    pub value: String,
    /// The mask, if the field carries one.
    pub mask: Option<String>,
}

impl FieldText {
    fn exact<T: OxmText>(name: &'static str, v: &T) -> Self {
        Self {
            name,
            integer: T::INTEGER,
            value: v.to_text(),
            mask: None,
        }
    }

    fn masked<T: OxmText>(name: &'static str, v: &T, mask: Option<&T>) -> Self {
        match mask {
            None => Self::exact(name, v),
            Some(m) => Self {
                name,
                integer: T::INTEGER,
                value: v.to_masked_text(),
                mask: Some(m.to_masked_text()),
            },
        }
    }
}

/// Why [`OxmField::from_text`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldTextError {
    /// No typed field has this name.
    #[error("unknown match field")]
    UnknownField,
    /// The value or mask does not fit the field (or the field cannot be masked).
    #[error("value does not fit the field")]
    BadValue,
}

impl OxmField {
    /// This field as text, named as the field table names it; `None` for an unknown field.
    pub fn to_text(&self) -> Option<FieldText> {
        if let Some(t) = self.basic_text() {
            return Some(t);
        }
        Some(match self {
            OxmField::PbbIsid { value, mask } => {
                FieldText::masked("pbb_isid", value, mask.as_ref())
            }
            OxmField::TunIpv4Src { value, mask } => {
                FieldText::masked("tun_src", value, mask.as_ref())
            }
            OxmField::TunIpv4Dst { value, mask } => {
                FieldText::masked("tun_dst", value, mask.as_ref())
            }
            OxmField::Reg { value, mask, .. } => {
                FieldText::masked(self.name(), value, mask.as_ref())
            }
            _ => return None,
        })
    }

    /// The typed field `name` (as [`OxmField::name`] spells it) with `value` and `mask` spelled
    /// as [`OxmField::to_text`] writes them: `from_text` reads back what `to_text` wrote.
    pub fn from_text(
        name: &str,
        value: &str,
        mask: Option<&str>,
    ) -> Result<OxmField, FieldTextError> {
        let field = match OxmField::basic_from_text(name, value, mask) {
            Some(f) => f,
            None => match name {
                "pbb_isid" => masked_from_text::<u32>(value, mask)
                    .filter(|(v, m)| *v < 1 << 24 && m.is_none_or(|m| m < 1 << 24))
                    .map(|(value, mask)| OxmField::PbbIsid { value, mask }),
                "tun_src" => masked_from_text(value, mask)
                    .map(|(value, mask)| OxmField::TunIpv4Src { value, mask }),
                "tun_dst" => masked_from_text(value, mask)
                    .map(|(value, mask)| OxmField::TunIpv4Dst { value, mask }),
                _ => {
                    let idx = REG_NAMES
                        .iter()
                        .position(|r| *r == name)
                        .ok_or(FieldTextError::UnknownField)?;
                    masked_from_text(value, mask).map(|(value, mask)| OxmField::Reg {
                        idx: idx as u8,
                        value,
                        mask,
                    })
                }
            },
        };
        field.ok_or(FieldTextError::BadValue)
    }

    /// One example of every typed field, exact and (where the field can be masked) masked:
    /// generated from the field table, so a new field is covered where this is used (the REST
    /// round-trip test).
    pub fn examples() -> Vec<OxmField> {
        let mut out = Vec::new();
        OxmField::basic_examples(&mut out);
        for mask in [None, Some(0x00ff_ff00)] {
            out.push(OxmField::PbbIsid { value: 0x12, mask });
        }
        for mask in [None, Some(Ipv4Addr::new(255, 255, 0, 0))] {
            let value = Ipv4Addr::new(192, 0, 2, 1);
            out.push(OxmField::TunIpv4Src { value, mask });
            out.push(OxmField::TunIpv4Dst { value, mask });
        }
        for idx in 0..8 {
            for mask in [None, Some(0xffff)] {
                out.push(OxmField::Reg {
                    idx,
                    value: 7,
                    mask,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::arb;

    fn tlv(hex: &str) -> OxmField {
        let f = OxmField::parse(&hex::decode(hex).unwrap()).unwrap();
        let mut out = BytesMut::new();
        f.emit(&mut out);
        assert_eq!(hex::encode(&out), hex, "re-emit of {f:?}");
        assert_eq!(f.encoded_len(), hex.len() / 2);
        f
    }

    #[test]
    fn basic_and_nicira_tlvs_as_ovs_encodes_them() {
        assert_eq!(tlv("8000000400000001"), OxmField::InPort(1));
        assert_eq!(tlv("80000a020800"), OxmField::EthType(0x0800));
        assert_eq!(
            tlv("800019080a000000ffffff00"),
            OxmField::Ipv4Dst {
                value: Ipv4Addr::new(10, 0, 0, 0),
                mask: Some(Ipv4Addr::new(255, 255, 255, 0))
            }
        );
        // OVS 3.1, `reg0=0x5,reg3=0x10/0xf0,tun_src=1.2.3.4,tun_dst=10.0.0.0/8` in OF1.3.
        assert_eq!(
            tlv("0001000400000005"),
            OxmField::Reg {
                idx: 0,
                value: 5,
                mask: None
            }
        );
        assert_eq!(
            tlv("0001070800000010000000f0"),
            OxmField::Reg {
                idx: 3,
                value: 0x10,
                mask: Some(0xf0)
            }
        );
        assert_eq!(
            tlv("00013e0401020304"),
            OxmField::TunIpv4Src {
                value: Ipv4Addr::new(1, 2, 3, 4),
                mask: None
            }
        );
        assert_eq!(
            tlv("000141080a000000ff000000"),
            OxmField::TunIpv4Dst {
                value: Ipv4Addr::new(10, 0, 0, 0),
                mask: Some(Ipv4Addr::new(255, 0, 0, 0))
            }
        );
        assert_eq!(
            tlv("80004c080000000000000064"),
            OxmField::TunnelId {
                value: 100,
                mask: None
            }
        );
        assert_eq!(
            tlv("80004a03abcdef"),
            OxmField::PbbIsid {
                value: 0xabcdef,
                mask: None
            }
        );
        assert_eq!(
            tlv("80000c02100a"),
            OxmField::VlanVid {
                value: 0x100a,
                mask: None
            }
        );
    }

    #[test]
    fn unknown_fields_are_kept_and_bad_lengths_rejected() {
        // Masked tcp_src (not maskable in the spec, but OVS sends it) and an ONF field.
        assert!(matches!(
            tlv("80001b041000f000"),
            OxmField::Unknown {
                class: 0x8000,
                field: 13,
                hasmask: true,
                ..
            }
        ));
        assert!(matches!(
            tlv("ffff55084f4e460000020002"),
            OxmField::Unknown {
                class: 0xffff,
                field: 42,
                ..
            }
        ));
        // in_port with a 2-byte payload.
        let e = OxmField::parse(&hex::decode("800000020001").unwrap()).unwrap_err();
        assert_eq!(
            e,
            Error::BadOxmLength {
                class: 0x8000,
                field: 0,
                length: 2
            }
        );
        assert_eq!(
            e.ofp_error(),
            Some(crate::ErrorType::BadMatch(
                crate::error::BadMatchCode::BadLen
            ))
        );
        // A payload running past the buffer.
        assert!(matches!(
            OxmField::parse(&hex::decode("80000004000000").unwrap()),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn a_duplicate_or_masked_in_port_is_refused_as_a_switch_would() {
        use crate::error::BadMatchCode;
        // ofp_match: type 1, length 4 + 8 + 8, in_port=1 twice, padding to 24.
        let twice = hex::decode("000100148000000400000001800000040000000200000000").unwrap();
        let e = Match::parse(&twice).unwrap_err();
        assert_eq!(e, Error::DuplicateField { field: "in_port" });
        assert_eq!(
            e.ofp_error(),
            Some(crate::ErrorType::BadMatch(BadMatchCode::DupField))
        );
        // Any other typed field twice too (here a masked and an exact eth_dst).
        let eth_twice: Match = [
            OxmField::EthDst {
                value: [2; 6],
                mask: Some([0xff; 6]),
            },
            OxmField::EthDst {
                value: [2; 6],
                mask: None,
            },
        ]
        .into_iter()
        .collect();
        let mut out = BytesMut::new();
        eth_twice.emit(&mut out);
        assert_eq!(
            Match::parse(&out),
            Err(Error::DuplicateField { field: "eth_dst" })
        );
        // in_port with a mask: length 4 + 12, padding to 16.
        let masked = hex::decode("000100108000010800000001ffffffff").unwrap();
        let e = Match::parse(&masked).unwrap_err();
        assert_eq!(e, Error::BadMask { field: "in_port" });
        assert_eq!(
            e.ofp_error(),
            Some(crate::ErrorType::BadMatch(BadMatchCode::BadMask))
        );
        // The same in a PACKET_IN: the message is refused with that error.
        let pi = crate::PacketIn {
            buffer_id: crate::OFP_NO_BUFFER,
            total_len: 0,
            reason: crate::PacketInReason::NoMatch,
            table_id: 0,
            cookie: 0,
            match_: Match::new()
                .with(OxmField::InPort(1))
                .with(OxmField::InPort(2)),
            data: Bytes::new(),
        };
        let raw = crate::OfMessage::new(1, crate::Message::PacketIn(pi)).to_bytes();
        assert_eq!(
            crate::OfMessage::parse(&raw).unwrap_err(),
            Error::DuplicateField { field: "in_port" }
        );
        // Unknown fields are not judged: two of them are kept.
        let unknown = hex::decode("00010014ffff5504000000aaffff5504000000bb00000000").unwrap();
        assert_eq!(Match::parse(&unknown).map(|m| m.fields.len()), Ok(2));
    }

    #[test]
    fn match_padding_and_length() {
        let m = Match::new().with(OxmField::InPort(1));
        let mut out = BytesMut::new();
        m.emit(&mut out);
        // type=OXM, length=12 (header + one 8-byte TLV), 4 bytes of padding.
        assert_eq!(hex::encode(&out), "0001000c800000040000000100000000");
        assert_eq!(Match::parse(&out).unwrap(), m);
        // Missing padding, non-zero padding, wrong type.
        assert!(Match::parse(&out[..12]).is_err());
        let mut bad = out.to_vec();
        bad[15] = 1;
        assert_eq!(
            Match::parse(&bad),
            Err(Error::NonZeroPadding { ctx: Ctx::Match })
        );
        assert_eq!(
            Match::parse(&hex::decode("0000000400000000").unwrap()),
            Err(Error::BadMatchType { typ: 0 })
        );
        assert_eq!(
            Match::parse(&hex::decode("0001000400000000").unwrap()),
            Ok(Match::new())
        );
    }

    #[test]
    fn prerequisites() {
        use OxmField::*;
        let ok = |m: Match| m.validate_prerequisites().unwrap();
        let err = |m: Match| m.validate_prerequisites().unwrap_err();
        ok(Match::new()
            .with(EthType(0x0800))
            .with(IpProto(6))
            .with(TcpDst(80)));
        ok(Match::new()
            .with(EthType(0x86dd))
            .with(IpProto(58))
            .with(Icmpv6Type(135))
            .with(Ipv6NdSll([1; 6])));
        ok(Match::new()
            .with(Reg {
                idx: 7,
                value: 1,
                mask: None,
            })
            .with(TunIpv4Dst {
                value: Ipv4Addr::LOCALHOST,
                mask: None,
            }));
        assert!(matches!(
            err(Match::new().with(TcpDst(80))),
            Error::BadPrerequisite {
                field: "tcp_dst",
                ..
            }
        ));
        assert!(matches!(
            err(Match::new()
                .with(EthType(0x0800))
                .with(IpProto(17))
                .with(TcpDst(80))),
            Error::BadPrerequisite { .. }
        ));
        assert!(matches!(
            err(Match::new().with(Ipv4Src {
                value: Ipv4Addr::LOCALHOST,
                mask: None
            })),
            Error::BadPrerequisite { .. }
        ));
        assert!(matches!(
            err(Match::new().with(EthType(0x0800)).with(ArpOp(1))),
            Error::BadPrerequisite { .. }
        ));
        assert!(matches!(
            err(Match::new()
                .with(EthType(0x86dd))
                .with(IpProto(58))
                .with(Icmpv6Type(136))
                .with(Ipv6NdSll([1; 6]))),
            Error::BadPrerequisite {
                field: "nd_sll",
                ..
            }
        ));
        assert!(matches!(
            err(Match::new().with(VlanPcp(1))),
            Error::BadPrerequisite { .. }
        ));
        assert!(matches!(
            err(Match::new()
                .with(VlanVid {
                    value: 0,
                    mask: None
                })
                .with(VlanPcp(1))),
            Error::BadPrerequisite { .. }
        ));
        ok(Match::new()
            .with(VlanVid {
                value: 0x1001,
                mask: None,
            })
            .with(VlanPcp(1)));
        assert!(matches!(
            err(Match::new().with(InPhyPort(1))),
            Error::BadPrerequisite { .. }
        ));
        let e = err(Match::new().with(InPort(1)).with(InPort(2)));
        assert_eq!(e, Error::DuplicateField { field: "in_port" });
        assert_eq!(
            e.ofp_error(),
            Some(crate::ErrorType::BadMatch(
                crate::error::BadMatchCode::DupField
            ))
        );
        let e = err(Match::new().with(Metadata {
            value: 0x11,
            mask: Some(0x10),
        }));
        assert_eq!(e, Error::BadWildcards { field: "metadata" });
        assert!(matches!(
            err(Match::new().with(Reg {
                idx: 9,
                value: 0,
                mask: None
            })),
            Error::BadField { .. }
        ));
    }

    proptest! {
        #[test]
        fn match_roundtrip(m in arb::match_()) {
            let mut out = BytesMut::new();
            m.emit(&mut out);
            prop_assert_eq!(out.len(), m.encoded_len());
            prop_assert_eq!(Match::parse(&out), Ok(m));
        }

        #[test]
        fn match_bytes_fixed_point(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut b = vec![0, 1, 0, (4 + body.len()) as u8];
            b.extend_from_slice(&body);
            b.resize(b.len() + pad8(b.len()), 0);
            if let Ok(m) = Match::parse(&b) {
                let mut out = BytesMut::new();
                m.emit(&mut out);
                prop_assert_eq!(&out[..], &b[..]);
            }
        }
    }
}
