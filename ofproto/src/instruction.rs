//! Instructions (`ofp_instruction_*`): the six OpenFlow 1.3 instructions plus experimenter
//! instructions kept as opaque bytes.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::action::{self, Action};
use crate::codec::{pad8, patch_len, put_len_placeholder, put_zeros, ser, Reader};
use crate::error::{Ctx, Error};

/// `OFPIT_*` instruction type numbers.
#[allow(missing_docs)]
pub mod instruction_type {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Instruction {
    /// Continue the pipeline at this table.
    GotoTable(u8),
    /// Write `metadata` under `mask`.
    WriteMetadata {
        /// Value.
        metadata: u64,
        /// Which bits to write.
        mask: u64,
    },
    /// Merge these actions into the action set.
    WriteActions(Vec<Action>),
    /// Apply these actions now.
    ApplyActions(Vec<Action>),
    /// Clear the action set.
    ClearActions,
    /// Apply this meter.
    Meter(u32),
    /// Experimenter instruction; `data` is everything after the experimenter id.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Body after the experimenter id.
        #[serde(serialize_with = "ser::hex")]
        data: Bytes,
    },
}

impl Instruction {
    /// Bytes on the wire.
    pub fn encoded_len(&self) -> usize {
        match self {
            Instruction::GotoTable(_) | Instruction::ClearActions | Instruction::Meter(_) => 8,
            Instruction::WriteMetadata { .. } => 24,
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => 8 + Action::list_len(a),
            Instruction::Experimenter { data, .. } => {
                let l = 8 + data.len();
                l + pad8(l)
            }
        }
    }

    /// Appends the instruction.
    pub fn emit(&self, out: &mut BytesMut) {
        use instruction_type as t;
        match self {
            Instruction::GotoTable(table) => {
                out.put_u16(t::GOTO_TABLE);
                out.put_u16(8);
                out.put_u8(*table);
                put_zeros(out, 3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                out.put_u16(t::WRITE_METADATA);
                out.put_u16(24);
                put_zeros(out, 4);
                out.put_u64(*metadata);
                out.put_u64(*mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                let start = out.len();
                out.put_u16(if matches!(self, Instruction::WriteActions(_)) {
                    t::WRITE_ACTIONS
                } else {
                    t::APPLY_ACTIONS
                });
                let at = put_len_placeholder(out);
                put_zeros(out, 4);
                Action::emit_list(a, out);
                patch_len(out, at, start);
            }
            Instruction::ClearActions => {
                out.put_u16(t::CLEAR_ACTIONS);
                out.put_u16(8);
                put_zeros(out, 4);
            }
            Instruction::Meter(m) => {
                out.put_u16(t::METER);
                out.put_u16(8);
                out.put_u32(*m);
            }
            Instruction::Experimenter { experimenter, data } => {
                out.put_u16(t::EXPERIMENTER);
                out.put_u16(self.encoded_len() as u16);
                out.put_u32(*experimenter);
                out.put_slice(data);
                put_zeros(out, pad8(8 + data.len()));
            }
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Instruction, Error> {
        use instruction_type as t;
        let typ = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len % 8 != 0 {
            return Err(Error::BadLength {
                ctx: Ctx::Instruction,
                length: len,
            });
        }
        let mut b = r.sub(len - 4, Ctx::Instruction)?;
        let fixed = |want: usize| -> Result<(), Error> {
            if len == want {
                Ok(())
            } else {
                Err(Error::BadLength {
                    ctx: Ctx::Instruction,
                    length: len,
                })
            }
        };
        let i = match typ {
            t::GOTO_TABLE => {
                fixed(8)?;
                let table = b.u8()?;
                b.pad(3)?;
                Instruction::GotoTable(table)
            }
            t::WRITE_METADATA => {
                fixed(24)?;
                b.pad(4)?;
                Instruction::WriteMetadata {
                    metadata: b.u64()?,
                    mask: b.u64()?,
                }
            }
            t::WRITE_ACTIONS | t::APPLY_ACTIONS => {
                b.pad(4)?;
                let mut actions = b.rest_reader(Ctx::Action);
                let list = action::read_list(&mut actions)?;
                if typ == t::WRITE_ACTIONS {
                    Instruction::WriteActions(list)
                } else {
                    Instruction::ApplyActions(list)
                }
            }
            t::CLEAR_ACTIONS => {
                fixed(8)?;
                b.pad(4)?;
                Instruction::ClearActions
            }
            t::METER => {
                fixed(8)?;
                Instruction::Meter(b.u32()?)
            }
            t::EXPERIMENTER => Instruction::Experimenter {
                experimenter: b.u32()?,
                data: b.rest(),
            },
            _ => return Err(Error::BadInstructionType { typ }),
        };
        b.finish()?;
        Ok(i)
    }

    /// Parses an instruction list that fills `buf` exactly.
    pub fn parse_list(buf: &[u8]) -> Result<Vec<Instruction>, Error> {
        let buf = Bytes::copy_from_slice(buf);
        read_list(&mut Reader::new(&buf, Ctx::Instruction))
    }

    /// Appends a list of instructions.
    pub fn emit_list(list: &[Instruction], out: &mut BytesMut) {
        for i in list {
            i.emit(out);
        }
    }

    /// Wire length of a list of instructions.
    pub fn list_len(list: &[Instruction]) -> usize {
        list.iter().map(Instruction::encoded_len).sum()
    }
}

/// Reads instructions until `r` is exhausted.
pub(crate) fn read_list(r: &mut Reader) -> Result<Vec<Instruction>, Error> {
    r.list(Instruction::read)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::arb;
    use crate::error::{BadInstructionCode, ErrorType};

    #[test]
    fn instructions_as_ovs_encodes_them() {
        // meter:2,clear_actions,write_actions(output:3,pop_vlan),write_metadata:0x10/0xff,goto_table:5
        let hex = "000600080000000200050008000000000003002000000000000000100000000300000000000000000012000800000000\
                   0002001800000000000000000000001000000000000000ff0001000805000000";
        let b = hex::decode(hex).unwrap();
        let list = Instruction::parse_list(&b).unwrap();
        assert_eq!(
            list,
            vec![
                Instruction::Meter(2),
                Instruction::ClearActions,
                Instruction::WriteActions(vec![
                    Action::Output {
                        port: 3,
                        max_len: 0
                    },
                    Action::PopVlan
                ]),
                Instruction::WriteMetadata {
                    metadata: 0x10,
                    mask: 0xff
                },
                Instruction::GotoTable(5),
            ]
        );
        let mut out = BytesMut::new();
        Instruction::emit_list(&list, &mut out);
        assert_eq!(&out[..], &b[..]);
        assert_eq!(Instruction::list_len(&list), b.len());
    }

    #[test]
    fn malformed_instructions() {
        let bad = |hex: &str| Instruction::parse_list(&hex::decode(hex).unwrap()).unwrap_err();
        assert_eq!(
            bad("0063000800000000").ofp_error(),
            Some(ErrorType::BadInstruction(BadInstructionCode::UnknownInst))
        );
        assert_eq!(
            bad("0001000400000000").ofp_error(),
            Some(ErrorType::BadInstruction(BadInstructionCode::BadLen))
        );
        assert_eq!(
            bad("000100100500000000000000").ofp_error(),
            Some(ErrorType::BadInstruction(BadInstructionCode::BadLen))
        );
        // An apply-actions whose action is broken reports the action's code.
        assert_eq!(
            bad("0004001000000000 0063000800000000"
                .replace(' ', "")
                .as_str()),
            Error::BadActionType { typ: 0x63 }
        );
    }

    proptest! {
        #[test]
        fn instruction_list_roundtrip(list in arb::instructions()) {
            let mut out = BytesMut::new();
            Instruction::emit_list(&list, &mut out);
            prop_assert_eq!(out.len(), Instruction::list_len(&list));
            prop_assert_eq!(Instruction::parse_list(&out), Ok(list));
        }
    }
}
