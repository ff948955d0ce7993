//! PACKET_IN and PACKET_OUT: the packet path between switch and controller. Packet data is a
//! zero-copy `Bytes` slice of the received message.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::action::{self, Action};
use crate::codec::{patch_len, put_len_placeholder, put_zeros, ser, Reader};
use crate::error::{enum_with_unknown, Ctx, Error};
use crate::oxm::Match;

enum_with_unknown! {
    /// `OFPR_*`: why a packet was sent to the controller.
    pub enum PacketInReason(u8) {
        /// No matching flow (table-miss flow entry).
        NoMatch = 0,
        /// Action explicitly output to controller.
        Action = 1,
        /// Packet has invalid TTL.
        InvalidTtl = 2,
    }
}

/// PACKET_IN body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketIn {
    /// Buffer id, or `OFP_NO_BUFFER`.
    pub buffer_id: u32,
    /// Full length of the frame.
    pub total_len: u16,
    /// Why.
    pub reason: PacketInReason,
    /// Table that was looked up.
    pub table_id: u8,
    /// Cookie of the flow entry that was looked up.
    pub cookie: u64,
    /// Packet metadata (`in_port`, tunnel fields, registers...).
    pub match_: Match,
    /// The frame (possibly truncated to `miss_send_len`/`max_len`).
    #[serde(serialize_with = "ser::hex")]
    pub data: Bytes,
}

impl PacketIn {
    pub(crate) fn encoded_len(&self) -> usize {
        16 + self.match_.encoded_len() + 2 + self.data.len()
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u32(self.buffer_id);
        out.put_u16(self.total_len);
        out.put_u8(self.reason.into());
        out.put_u8(self.table_id);
        out.put_u64(self.cookie);
        self.match_.emit(out);
        put_zeros(out, 2);
        out.put_slice(&self.data);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<PacketIn, Error> {
        // The fixed part in one bounds check: this is the hottest parse in the controller.
        let f: [u8; 16] = r.array()?;
        let be32 = |i: usize| u32::from_be_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
        let buffer_id = be32(0);
        let total_len = u16::from_be_bytes([f[4], f[5]]);
        let reason = f[6].into();
        let table_id = f[7];
        let cookie = (u64::from(be32(8)) << 32) | u64::from(be32(12));
        let match_ = Match::read(r)?;
        r.pad(2)?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            match_,
            data: r.rest(),
        })
    }
}

/// PACKET_OUT body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketOut {
    /// Buffer id, or `OFP_NO_BUFFER` when `data` carries the frame.
    pub buffer_id: u32,
    /// Ingress port the actions see (`OFPP_CONTROLLER` if none).
    pub in_port: u32,
    /// Actions to apply.
    pub actions: Vec<Action>,
    /// The frame, when not buffered.
    #[serde(serialize_with = "ser::hex")]
    pub data: Bytes,
}

impl PacketOut {
    pub(crate) fn encoded_len(&self) -> usize {
        16 + Action::list_len(&self.actions) + self.data.len()
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u32(self.buffer_id);
        out.put_u32(self.in_port);
        let at = put_len_placeholder(out);
        put_zeros(out, 6);
        let start = out.len();
        Action::emit_list(&self.actions, out);
        patch_len(out, at, start);
        out.put_slice(&self.data);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<PacketOut, Error> {
        let buffer_id = r.u32()?;
        let in_port = r.u32()?;
        let actions_len = usize::from(r.u16()?);
        r.pad(6)?;
        let actions = action::read_list(&mut r.sub(actions_len, Ctx::Action)?)?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions,
            data: r.rest(),
        })
    }
}
