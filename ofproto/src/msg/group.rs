//! GROUP_MOD and the bucket list it shares with the group-description multipart reply.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::action::{self, Action};
use crate::codec::{patch_len, put_len_placeholder, put_zeros, Reader};
use crate::error::{enum_with_unknown, Ctx, Error};

enum_with_unknown! {
    /// `OFPGC_*`.
    pub enum GroupModCommand(u16) {
        /// New group.
        Add = 0,
        /// Modify all matching groups.
        Modify = 1,
        /// Delete all matching groups.
        Delete = 2,
    }
}

enum_with_unknown! {
    /// `OFPGT_*`.
    pub enum GroupType(u8) {
        /// All (multicast/broadcast) group.
        All = 0,
        /// Select group.
        Select = 1,
        /// Indirect group.
        Indirect = 2,
        /// Fast failover group.
        FastFailover = 3,
    }
}

/// `ofp_bucket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Relative weight (select groups).
    pub weight: u16,
    /// Port whose liveness decides (fast failover).
    pub watch_port: u32,
    /// Group whose liveness decides (fast failover).
    pub watch_group: u32,
    /// Actions.
    pub actions: Vec<Action>,
}

impl Bucket {
    /// Bytes on the wire.
    pub fn encoded_len(&self) -> usize {
        16 + Action::list_len(&self.actions)
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        let start = out.len();
        let at = put_len_placeholder(out);
        out.put_u16(self.weight);
        out.put_u32(self.watch_port);
        out.put_u32(self.watch_group);
        put_zeros(out, 4);
        Action::emit_list(&self.actions, out);
        patch_len(out, at, start);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Bucket, Error> {
        let len = usize::from(r.u16()?);
        if len < 16 {
            return Err(Error::BadLength {
                ctx: Ctx::Group,
                length: len,
            });
        }
        let mut b = r.sub(len - 2, Ctx::Group)?;
        let weight = b.u16()?;
        let watch_port = b.u32()?;
        let watch_group = b.u32()?;
        b.pad(4)?;
        let actions = action::read_list(&mut b.rest_reader(Ctx::Action))?;
        Ok(Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        })
    }
}

pub(crate) fn buckets_len(b: &[Bucket]) -> usize {
    b.iter().map(Bucket::encoded_len).sum()
}

/// GROUP_MOD body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMod {
    /// Command.
    pub command: GroupModCommand,
    /// Group type.
    pub group_type: GroupType,
    /// Group id.
    pub group_id: u32,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    pub(crate) fn encoded_len(&self) -> usize {
        8 + buckets_len(&self.buckets)
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u16(self.command.into());
        out.put_u8(self.group_type.into());
        put_zeros(out, 1);
        out.put_u32(self.group_id);
        for b in &self.buckets {
            b.emit(out);
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<GroupMod, Error> {
        let command = r.u16()?.into();
        let group_type = r.u8()?.into();
        r.pad(1)?;
        let group_id = r.u32()?;
        let buckets = r.list(Bucket::read)?;
        Ok(GroupMod {
            command,
            group_type,
            group_id,
            buckets,
        })
    }
}
