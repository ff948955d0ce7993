//! Actions (`ofp_action_*`): every OpenFlow 1.3 action, Nicira `resubmit` /
//! `resubmit(,table)` exactly as OVS encodes them, and any other experimenter action kept as
//! opaque bytes so it round-trips.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::codec::{pad8, put_zeros, ser, Reader};
use crate::consts::NX_VENDOR_ID;
use crate::error::{Ctx, Error};
use crate::oxm::OxmField;

/// `OFPAT_*` action type numbers.
#[allow(missing_docs)]
pub mod action_type {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// `NXAST_RESUBMIT`: resubmit to `in_port`, same table.
pub const NXAST_RESUBMIT: u16 = 1;
/// `NXAST_RESUBMIT_TABLE`: resubmit to `in_port` in `table`.
pub const NXAST_RESUBMIT_TABLE: u16 = 14;
/// OVS's 16-bit `OFPP_IN_PORT`, used by `resubmit(,N)` to mean "the current in_port".
pub const NX_OFPP_IN_PORT: u16 = 0xfff8;
/// `NXAST_CHECK_PKT_LARGER`: set a register bit when the packet is longer than a length.
pub const NXAST_CHECK_PKT_LARGER: u16 = 49;

impl Action {
    /// OVS's `check_pkt_larger(pkt_len)->NXM_NX_REG<reg>[bit]`: sets that bit when the whole
    /// frame is longer than `pkt_len` bytes (what a router's MTU check needs, OpenFlow itself
    /// has no way to match a packet's length). Built as the [`Action::Experimenter`] it parses
    /// back to, so the round trip stays byte for byte; `ovs-ofctl ofp-print` shows it by name.
    ///
    /// `reg` above 7 or `bit` above 31 name no register bit: the caller's bug, masked to range.
    pub fn nx_check_pkt_larger(pkt_len: u16, reg: u8, bit: u16) -> Action {
        let mut data = BytesMut::with_capacity(16);
        data.put_u16(NXAST_CHECK_PKT_LARGER);
        data.put_u16(pkt_len);
        data.put_u16(bit & 31);
        // NXM_NX_REG<n>: class 0x0001, field n, no mask, 4 bytes.
        data.put_u32(0x0001_0000 | u32::from(reg & 7) << 9 | 4);
        put_zeros(&mut data, 6);
        Action::Experimenter {
            experimenter: NX_VENDOR_ID,
            data: data.freeze(),
        }
    }

    /// The `(pkt_len, reg, bit)` of an [`Action::nx_check_pkt_larger`].
    pub fn as_nx_check_pkt_larger(&self) -> Option<(u16, u8, u16)> {
        let Action::Experimenter { experimenter, data } = self else {
            return None;
        };
        let d = &data[..];
        if *experimenter != NX_VENDOR_ID || d.len() != 16 {
            return None;
        }
        let word = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
        let dst = u32::from_be_bytes([d[6], d[7], d[8], d[9]]);
        if word(0) != NXAST_CHECK_PKT_LARGER || dst >> 16 != 1 || dst & 0x1ff != 4 {
            return None;
        }
        Some((word(2), ((dst >> 9) & 0x7f) as u8, word(4)))
    }
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Action {
    /// Output to `port`; `max_len` bytes go to the controller when `port` is CONTROLLER.
    Output {
        /// Output port.
        port: u32,
        /// Max bytes to send to the controller.
        max_len: u16,
    },
    /// Copy TTL "outwards".
    CopyTtlOut,
    /// Copy TTL "inwards".
    CopyTtlIn,
    /// Set MPLS TTL.
    SetMplsTtl(u8),
    /// Decrement MPLS TTL.
    DecMplsTtl,
    /// Push a VLAN tag with this ethertype.
    PushVlan(u16),
    /// Pop the outer VLAN tag.
    PopVlan,
    /// Push an MPLS tag with this ethertype.
    PushMpls(u16),
    /// Pop the outer MPLS tag, setting this ethertype.
    PopMpls(u16),
    /// Set queue id.
    SetQueue(u32),
    /// Apply group.
    Group(u32),
    /// Set IP TTL.
    SetNwTtl(u8),
    /// Decrement IP TTL.
    DecNwTtl,
    /// Set a header field (the OXM must be unmasked).
    SetField(OxmField),
    /// Push a PBB service tag with this ethertype.
    PushPbb(u16),
    /// Pop the outer PBB service tag.
    PopPbb,
    /// Nicira `resubmit(PORT,TABLE)`, encoded as OVS 3.x does: always `NXAST_RESUBMIT_TABLE`,
    /// with table 255 meaning "the current table" (`table: None`; `Some(255)` is not used) and
    /// port `NX_OFPP_IN_PORT` (0xfff8) meaning "the packet's in_port". The older
    /// `NXAST_RESUBMIT` encoding parses as an opaque [`Action::Experimenter`].
    NxResubmit {
        /// 16-bit port (`NX_OFPP_IN_PORT` = the packet's in_port).
        in_port: u16,
        /// Target table; `None` = the current table.
        table: Option<u8>,
    },
    /// Any other experimenter action: `data` is everything after the experimenter id
    /// (subtype and padding included), so it re-emits byte for byte.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Body after the experimenter id.
        #[serde(serialize_with = "ser::hex")]
        data: Bytes,
    },
}

impl Action {
    /// Bytes on the wire.
    pub fn encoded_len(&self) -> usize {
        match self {
            Action::Output { .. } | Action::NxResubmit { .. } => 16,
            Action::SetField(f) => {
                let l = 4 + f.encoded_len();
                l + pad8(l)
            }
            Action::Experimenter { data, .. } => {
                let l = 8 + data.len();
                l + pad8(l)
            }
            _ => 8,
        }
    }

    /// Appends the action.
    pub fn emit(&self, out: &mut BytesMut) {
        use action_type as t;
        let small = |out: &mut BytesMut, typ: u16| {
            out.put_u16(typ);
            out.put_u16(8);
        };
        match self {
            Action::Output { port, max_len } => {
                out.put_u16(t::OUTPUT);
                out.put_u16(16);
                out.put_u32(*port);
                out.put_u16(*max_len);
                put_zeros(out, 6);
            }
            Action::CopyTtlOut => {
                small(out, t::COPY_TTL_OUT);
                put_zeros(out, 4);
            }
            Action::CopyTtlIn => {
                small(out, t::COPY_TTL_IN);
                put_zeros(out, 4);
            }
            Action::SetMplsTtl(ttl) => {
                small(out, t::SET_MPLS_TTL);
                out.put_u8(*ttl);
                put_zeros(out, 3);
            }
            Action::DecMplsTtl => {
                small(out, t::DEC_MPLS_TTL);
                put_zeros(out, 4);
            }
            Action::PushVlan(e) => {
                small(out, t::PUSH_VLAN);
                out.put_u16(*e);
                put_zeros(out, 2);
            }
            Action::PopVlan => {
                small(out, t::POP_VLAN);
                put_zeros(out, 4);
            }
            Action::PushMpls(e) => {
                small(out, t::PUSH_MPLS);
                out.put_u16(*e);
                put_zeros(out, 2);
            }
            Action::PopMpls(e) => {
                small(out, t::POP_MPLS);
                out.put_u16(*e);
                put_zeros(out, 2);
            }
            Action::SetQueue(q) => {
                small(out, t::SET_QUEUE);
                out.put_u32(*q);
            }
            Action::Group(g) => {
                small(out, t::GROUP);
                out.put_u32(*g);
            }
            Action::SetNwTtl(ttl) => {
                small(out, t::SET_NW_TTL);
                out.put_u8(*ttl);
                put_zeros(out, 3);
            }
            Action::DecNwTtl => {
                small(out, t::DEC_NW_TTL);
                put_zeros(out, 4);
            }
            Action::SetField(f) => {
                out.put_u16(t::SET_FIELD);
                out.put_u16(self.encoded_len() as u16);
                f.emit(out);
                put_zeros(out, pad8(4 + f.encoded_len()));
            }
            Action::PushPbb(e) => {
                small(out, t::PUSH_PBB);
                out.put_u16(*e);
                put_zeros(out, 2);
            }
            Action::PopPbb => {
                small(out, t::POP_PBB);
                put_zeros(out, 4);
            }
            Action::NxResubmit { in_port, table } => {
                out.put_u16(t::EXPERIMENTER);
                out.put_u16(16);
                out.put_u32(NX_VENDOR_ID);
                out.put_u16(NXAST_RESUBMIT_TABLE);
                out.put_u16(*in_port);
                out.put_u8(table.unwrap_or(0xff));
                put_zeros(out, 3);
            }
            Action::Experimenter { experimenter, data } => {
                out.put_u16(t::EXPERIMENTER);
                out.put_u16(self.encoded_len() as u16);
                out.put_u32(*experimenter);
                out.put_slice(data);
                put_zeros(out, pad8(8 + data.len()));
            }
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Action, Error> {
        use action_type as t;
        let typ = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len % 8 != 0 {
            return Err(Error::BadLength {
                ctx: Ctx::Action,
                length: len,
            });
        }
        let mut b = r.sub(len - 4, Ctx::Action)?;
        // Fixed-size actions must have exactly their size; `fixed` checks it up front so the
        // error is BAD_LEN rather than a confusing trailing-bytes report.
        let fixed = |want: usize| -> Result<(), Error> {
            if len == want {
                Ok(())
            } else {
                Err(Error::BadLength {
                    ctx: Ctx::Action,
                    length: len,
                })
            }
        };
        let a = match typ {
            t::OUTPUT => {
                fixed(16)?;
                let port = b.u32()?;
                let max_len = b.u16()?;
                b.pad(6)?;
                Action::Output { port, max_len }
            }
            t::COPY_TTL_OUT
            | t::COPY_TTL_IN
            | t::DEC_MPLS_TTL
            | t::POP_VLAN
            | t::DEC_NW_TTL
            | t::POP_PBB => {
                fixed(8)?;
                b.pad(4)?;
                match typ {
                    t::COPY_TTL_OUT => Action::CopyTtlOut,
                    t::COPY_TTL_IN => Action::CopyTtlIn,
                    t::DEC_MPLS_TTL => Action::DecMplsTtl,
                    t::POP_VLAN => Action::PopVlan,
                    t::DEC_NW_TTL => Action::DecNwTtl,
                    _ => Action::PopPbb,
                }
            }
            t::SET_MPLS_TTL | t::SET_NW_TTL => {
                fixed(8)?;
                let ttl = b.u8()?;
                b.pad(3)?;
                if typ == t::SET_MPLS_TTL {
                    Action::SetMplsTtl(ttl)
                } else {
                    Action::SetNwTtl(ttl)
                }
            }
            t::PUSH_VLAN | t::PUSH_MPLS | t::POP_MPLS | t::PUSH_PBB => {
                fixed(8)?;
                let e = b.u16()?;
                b.pad(2)?;
                match typ {
                    t::PUSH_VLAN => Action::PushVlan(e),
                    t::PUSH_MPLS => Action::PushMpls(e),
                    t::POP_MPLS => Action::PopMpls(e),
                    _ => Action::PushPbb(e),
                }
            }
            t::SET_QUEUE => {
                fixed(8)?;
                Action::SetQueue(b.u32()?)
            }
            t::GROUP => {
                fixed(8)?;
                Action::Group(b.u32()?)
            }
            t::SET_FIELD => {
                let f = OxmField::read(&mut b)?;
                let p = b.remaining();
                if p != pad8(4 + f.encoded_len()) {
                    return Err(Error::BadLength {
                        ctx: Ctx::Action,
                        length: len,
                    });
                }
                b.pad(p)?;
                Action::SetField(f)
            }
            t::EXPERIMENTER => {
                let experimenter = b.u32()?;
                let data = b.rest();
                nx_resubmit(experimenter, &data)
                    .unwrap_or(Action::Experimenter { experimenter, data })
            }
            _ => return Err(Error::BadActionType { typ }),
        };
        b.finish()?;
        Ok(a)
    }

    /// Parses an action list that fills `buf` exactly.
    pub fn parse_list(buf: &[u8]) -> Result<Vec<Action>, Error> {
        let buf = Bytes::copy_from_slice(buf);
        read_list(&mut Reader::new(&buf, Ctx::Action))
    }

    /// Appends a list of actions.
    pub fn emit_list(actions: &[Action], out: &mut BytesMut) {
        for a in actions {
            a.emit(out);
        }
    }

    /// Wire length of a list of actions.
    pub fn list_len(actions: &[Action]) -> usize {
        actions.iter().map(Action::encoded_len).sum()
    }
}

/// Reads actions until `r` is exhausted.
pub(crate) fn read_list(r: &mut Reader) -> Result<Vec<Action>, Error> {
    r.list(Action::read)
}

/// Recognises `NXAST_RESUBMIT_TABLE`; anything else (including non-zero padding, which would
/// not re-emit identically) stays an opaque experimenter action.
fn nx_resubmit(experimenter: u32, data: &[u8]) -> Option<Action> {
    if experimenter != NX_VENDOR_ID || data.len() != 8 || data[5..8] != [0, 0, 0] {
        return None;
    }
    let subtype = u16::from_be_bytes([data[0], data[1]]);
    let in_port = u16::from_be_bytes([data[2], data[3]]);
    (subtype == NXAST_RESUBMIT_TABLE).then_some(Action::NxResubmit {
        in_port,
        table: (data[4] != 0xff).then_some(data[4]),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::arb;
    use crate::error::{BadActionCode, ErrorType};

    fn one(hex: &str) -> Action {
        let list = Action::parse_list(&hex::decode(hex).unwrap()).unwrap();
        assert_eq!(list.len(), 1, "{list:?}");
        let mut out = BytesMut::new();
        Action::emit_list(&list, &mut out);
        assert_eq!(hex::encode(&out), hex);
        list[0].clone()
    }

    #[test]
    fn actions_as_ovs_encodes_them() {
        assert_eq!(
            one("00000010000000020000000000000000"),
            Action::Output {
                port: 2,
                max_len: 0
            }
        );
        assert_eq!(
            one("00000010fffffffdffff000000000000"),
            Action::Output {
                port: crate::port_no::CONTROLLER,
                max_len: 0xffff
            }
        );
        assert_eq!(one("0011000881000000"), Action::PushVlan(0x8100));
        assert_eq!(one("0012000800000000"), Action::PopVlan);
        assert_eq!(one("0018000800000000"), Action::DecNwTtl);
        assert_eq!(one("0017000809000000"), Action::SetNwTtl(9));
        assert_eq!(one("0016000800000007"), Action::Group(7));
        assert_eq!(
            one("0019001080000606aabbccddeeff0000"),
            Action::SetField(OxmField::EthDst {
                value: [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
                mask: None
            })
        );
        // resubmit(,3), resubmit:4, resubmit(5,6) from ovs-ofctl 3.1.
        assert_eq!(
            one("ffff001000002320000efff803000000"),
            Action::NxResubmit {
                in_port: 0xfff8,
                table: Some(3)
            }
        );
        assert_eq!(
            one("ffff001000002320000e0004ff000000"),
            Action::NxResubmit {
                in_port: 4,
                table: None
            }
        );
        assert_eq!(
            one("ffff001000002320000e000506000000"),
            Action::NxResubmit {
                in_port: 5,
                table: Some(6)
            }
        );
        // note:aabb and the legacy NXAST_RESUBMIT encoding stay opaque.
        assert!(matches!(
            one("ffff0010000023200008aabb00000000"),
            Action::Experimenter {
                experimenter: NX_VENDOR_ID,
                ..
            }
        ));
        assert!(matches!(
            one("ffff0010000023200001000400000000"),
            Action::Experimenter { .. }
        ));
    }

    #[test]
    fn malformed_actions() {
        let bad = |hex: &str| Action::parse_list(&hex::decode(hex).unwrap()).unwrap_err();
        // Zero and non-multiple-of-8 lengths, and an output action of the wrong size.
        assert_eq!(
            bad("0000000000000000").ofp_error(),
            Some(ErrorType::BadAction(BadActionCode::BadLen))
        );
        assert_eq!(
            bad("0000000c000000020000000000000000").ofp_error(),
            Some(ErrorType::BadAction(BadActionCode::BadLen))
        );
        assert_eq!(
            bad("0000000800000002").ofp_error(),
            Some(ErrorType::BadAction(BadActionCode::BadLen))
        );
        // Length beyond the list.
        assert!(matches!(bad("0000001800000002"), Error::Truncated { .. }));
        // Unknown type (OF1.0's SET_VLAN_VID number is not an OF1.3 action).
        assert_eq!(bad("0001000800000000"), Error::BadActionType { typ: 1 });
        // Set-field whose padding does not match its TLV.
        assert!(bad("00190018800000040000000100000000000000000000000000")
            .ofp_error()
            .is_some());
    }

    proptest! {
        #[test]
        fn action_list_roundtrip(list in arb::actions()) {
            let mut out = BytesMut::new();
            Action::emit_list(&list, &mut out);
            prop_assert_eq!(out.len(), Action::list_len(&list));
            prop_assert_eq!(Action::parse_list(&out), Ok(list));
        }

        #[test]
        fn action_bytes_fixed_point(b in proptest::collection::vec(any::<u8>(), 0..48)) {
            if let Ok(list) = Action::parse_list(&b) {
                let mut out = BytesMut::new();
                Action::emit_list(&list, &mut out);
                prop_assert_eq!(&out[..], &b[..]);
            }
        }
    }
}
