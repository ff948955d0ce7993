//! FLOW_MOD and FLOW_REMOVED.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::codec::{put_zeros, Reader};
use crate::error::{enum_with_unknown, Error};
use crate::instruction::{self, Instruction};
use crate::oxm::Match;
use crate::{consts, port_no, OFP_NO_BUFFER};

enum_with_unknown! {
    /// `OFPFC_*`.
    pub enum FlowModCommand(u8) {
        /// New flow.
        Add = 0,
        /// Modify all matching flows.
        Modify = 1,
        /// Modify entry strictly matching wildcards and priority.
        ModifyStrict = 2,
        /// Delete all matching flows.
        Delete = 3,
        /// Delete entry strictly matching wildcards and priority.
        DeleteStrict = 4,
    }
}

/// FLOW_MOD body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowMod {
    /// Opaque controller-issued identifier.
    pub cookie: u64,
    /// Cookie bits that must match (modify/delete).
    pub cookie_mask: u64,
    /// Table, or `OFPTT_ALL` for deletes.
    pub table_id: u8,
    /// Command.
    pub command: FlowModCommand,
    /// Idle time before discarding (seconds).
    pub idle_timeout: u16,
    /// Max time before discarding (seconds).
    pub hard_timeout: u16,
    /// Priority.
    pub priority: u16,
    /// Buffered packet to apply to, or `OFP_NO_BUFFER`.
    pub buffer_id: u32,
    /// For deletes: require an output to this port.
    pub out_port: u32,
    /// For deletes: require an output to this group.
    pub out_group: u32,
    /// `OFPFF_*`.
    pub flags: u16,
    /// Match.
    pub match_: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
}

impl Default for FlowMod {
    /// An ADD into table 0, priority 0x8000 (the OpenFlow default), unbuffered, matching
    /// everything, with no instructions (drop).
    fn default() -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id: 0,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: 0x8000,
            buffer_id: OFP_NO_BUFFER,
            out_port: port_no::ANY,
            out_group: consts::OFPG_ANY,
            flags: 0,
            match_: Match::new(),
            instructions: Vec::new(),
        }
    }
}

impl FlowMod {
    pub(crate) fn encoded_len(&self) -> usize {
        40 + self.match_.encoded_len() + Instruction::list_len(&self.instructions)
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u64(self.cookie);
        out.put_u64(self.cookie_mask);
        out.put_u8(self.table_id);
        out.put_u8(self.command.into());
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u16(self.priority);
        out.put_u32(self.buffer_id);
        out.put_u32(self.out_port);
        out.put_u32(self.out_group);
        out.put_u16(self.flags);
        put_zeros(out, 2);
        self.match_.emit(out);
        Instruction::emit_list(&self.instructions, out);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<FlowMod, Error> {
        let cookie = r.u64()?;
        let cookie_mask = r.u64()?;
        let table_id = r.u8()?;
        let command = r.u8()?.into();
        let idle_timeout = r.u16()?;
        let hard_timeout = r.u16()?;
        let priority = r.u16()?;
        let buffer_id = r.u32()?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        let flags = r.u16()?;
        r.pad(2)?;
        let match_ = Match::read(r)?;
        let instructions = instruction::read_list(r)?;
        Ok(FlowMod {
            cookie,
            cookie_mask,
            table_id,
            command,
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            match_,
            instructions,
        })
    }
}

enum_with_unknown! {
    /// `OFPRR_*`: why a flow was removed.
    pub enum FlowRemovedReason(u8) {
        /// Flow idle time exceeded idle_timeout.
        IdleTimeout = 0,
        /// Time exceeded hard_timeout.
        HardTimeout = 1,
        /// Evicted by a DELETE flow mod.
        Delete = 2,
        /// Group was removed.
        GroupDelete = 3,
    }
}

/// FLOW_REMOVED body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRemoved {
    /// Cookie of the flow.
    pub cookie: u64,
    /// Priority of the flow.
    pub priority: u16,
    /// Why.
    pub reason: FlowRemovedReason,
    /// Table.
    pub table_id: u8,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds alive beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Idle timeout from the flow mod.
    pub idle_timeout: u16,
    /// Hard timeout from the flow mod.
    pub hard_timeout: u16,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// The flow's match.
    pub match_: Match,
}

impl FlowRemoved {
    pub(crate) fn encoded_len(&self) -> usize {
        40 + self.match_.encoded_len()
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u64(self.cookie);
        out.put_u16(self.priority);
        out.put_u8(self.reason.into());
        out.put_u8(self.table_id);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        self.match_.emit(out);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<FlowRemoved, Error> {
        Ok(FlowRemoved {
            cookie: r.u64()?,
            priority: r.u16()?,
            reason: r.u8()?.into(),
            table_id: r.u8()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
            idle_timeout: r.u16()?,
            hard_timeout: r.u16()?,
            packet_count: r.u64()?,
            byte_count: r.u64()?,
            match_: Match::read(r)?,
        })
    }
}
