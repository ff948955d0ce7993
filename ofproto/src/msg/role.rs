//! ROLE request/reply and GET/SET_ASYNC: multi-controller coordination.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::codec::{put_zeros, Reader};
use crate::error::{enum_with_unknown, Error};

enum_with_unknown! {
    /// `OFPCR_ROLE_*`.
    pub enum ControllerRole(u32) {
        /// Don't change current role.
        NoChange = 0,
        /// Default role, full access.
        Equal = 1,
        /// Full access, at most one master.
        Master = 2,
        /// Read-only access.
        Slave = 3,
    }
}

/// ROLE_REQUEST / ROLE_REPLY body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Role {
    /// The role asked for / granted.
    pub role: ControllerRole,
    /// Master election generation id.
    pub generation_id: u64,
}

impl Role {
    pub(crate) const LEN: usize = 16;

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u32(self.role.into());
        put_zeros(out, 4);
        out.put_u64(self.generation_id);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Role, Error> {
        let role = r.u32()?.into();
        r.pad(4)?;
        Ok(Role {
            role,
            generation_id: r.u64()?,
        })
    }
}

/// GET_ASYNC_REPLY / SET_ASYNC body: which asynchronous messages each role receives.
/// Index 0 is master/equal, index 1 is slave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AsyncConfig {
    /// Bitmasks of `OFPR_*` values.
    pub packet_in_mask: [u32; 2],
    /// Bitmasks of `OFPPR_*` values.
    pub port_status_mask: [u32; 2],
    /// Bitmasks of `OFPRR_*` values.
    pub flow_removed_mask: [u32; 2],
}

impl AsyncConfig {
    pub(crate) const LEN: usize = 24;

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        for m in [
            self.packet_in_mask,
            self.port_status_mask,
            self.flow_removed_mask,
        ] {
            out.put_u32(m[0]);
            out.put_u32(m[1]);
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<AsyncConfig, Error> {
        let mut pair = || -> Result<[u32; 2], Error> { Ok([r.u32()?, r.u32()?]) };
        Ok(AsyncConfig {
            packet_in_mask: pair()?,
            port_status_mask: pair()?,
            flow_removed_mask: pair()?,
        })
    }
}
