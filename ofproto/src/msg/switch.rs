//! Switch-level messages: FEATURES_REPLY, GET/SET_CONFIG, PORT_STATUS and the `ofp_port`
//! description, PORT_MOD, TABLE_MOD.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::codec::{put_fixed_str, put_zeros, ser, Reader};
use crate::error::{enum_with_unknown, Error};

/// FEATURES_REPLY body (`ofp_switch_features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeaturesReply {
    /// Datapath unique id.
    pub datapath_id: u64,
    /// Max packets buffered at once.
    pub n_buffers: u32,
    /// Number of tables.
    pub n_tables: u8,
    /// Auxiliary connection id (0 = main connection).
    pub auxiliary_id: u8,
    /// `OFPC_*` bitmap.
    pub capabilities: u32,
}

impl FeaturesReply {
    pub(crate) const LEN: usize = 24;

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u64(self.datapath_id);
        out.put_u32(self.n_buffers);
        out.put_u8(self.n_tables);
        out.put_u8(self.auxiliary_id);
        put_zeros(out, 2);
        out.put_u32(self.capabilities);
        put_zeros(out, 4); // reserved
    }

    pub(crate) fn read(r: &mut Reader) -> Result<FeaturesReply, Error> {
        let datapath_id = r.u64()?;
        let n_buffers = r.u32()?;
        let n_tables = r.u8()?;
        let auxiliary_id = r.u8()?;
        r.pad(2)?;
        let capabilities = r.u32()?;
        r.pad(4)?;
        Ok(FeaturesReply {
            datapath_id,
            n_buffers,
            n_tables,
            auxiliary_id,
            capabilities,
        })
    }
}

/// GET_CONFIG_REPLY / SET_CONFIG body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SwitchConfig {
    /// `OFPC_FRAG_*`.
    pub flags: u16,
    /// Max bytes of a new flow's packet sent to the controller.
    pub miss_send_len: u16,
}

impl SwitchConfig {
    pub(crate) const LEN: usize = 4;

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u16(self.flags);
        out.put_u16(self.miss_send_len);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<SwitchConfig, Error> {
        Ok(SwitchConfig {
            flags: r.u16()?,
            miss_send_len: r.u16()?,
        })
    }
}

/// `ofp_port`: a port description (64 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Port number.
    pub port_no: u32,
    /// MAC address.
    #[serde(serialize_with = "ser::mac")]
    pub hw_addr: [u8; 6],
    /// Name (at most 15 bytes on the wire plus NUL; longer names are cut on emit).
    pub name: String,
    /// `OFPPC_*` bitmap.
    pub config: u32,
    /// `OFPPS_*` bitmap.
    pub state: u32,
    /// Current features (`OFPPF_*`).
    pub curr: u32,
    /// Features advertised.
    pub advertised: u32,
    /// Features supported.
    pub supported: u32,
    /// Features advertised by peer.
    pub peer: u32,
    /// Current bitrate in kbps.
    pub curr_speed: u32,
    /// Max bitrate in kbps.
    pub max_speed: u32,
}

/// `OFP_MAX_PORT_NAME_LEN`.
pub const OFP_MAX_PORT_NAME_LEN: usize = 16;

impl Port {
    /// Size of `ofp_port`.
    pub const LEN: usize = 64;

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u32(self.port_no);
        put_zeros(out, 4);
        out.put_slice(&self.hw_addr);
        put_zeros(out, 2);
        put_fixed_str(out, &self.name, OFP_MAX_PORT_NAME_LEN);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            out.put_u32(v);
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Port, Error> {
        let port_no = r.u32()?;
        r.pad(4)?;
        let hw_addr = r.array()?;
        r.pad(2)?;
        let name = r.fixed_str(OFP_MAX_PORT_NAME_LEN)?;
        Ok(Port {
            port_no,
            hw_addr,
            name,
            config: r.u32()?,
            state: r.u32()?,
            curr: r.u32()?,
            advertised: r.u32()?,
            supported: r.u32()?,
            peer: r.u32()?,
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }
}

enum_with_unknown! {
    /// `OFPPR_*`: why a PORT_STATUS was sent.
    pub enum PortReason(u8) {
        /// The port was added.
        Add = 0,
        /// The port was removed.
        Delete = 1,
        /// Some attribute of the port has changed.
        Modify = 2,
    }
}

/// PORT_STATUS body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    /// Why.
    pub reason: PortReason,
    /// The port, as it is now.
    pub desc: Port,
}

impl PortStatus {
    pub(crate) const LEN: usize = 8 + Port::LEN;

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u8(self.reason.into());
        put_zeros(out, 7);
        self.desc.emit(out);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<PortStatus, Error> {
        let reason = r.u8()?.into();
        r.pad(7)?;
        Ok(PortStatus {
            reason,
            desc: Port::read(r)?,
        })
    }
}

/// PORT_MOD body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortMod {
    /// Port number.
    pub port_no: u32,
    /// Must match the port's MAC (a sanity check).
    #[serde(serialize_with = "ser::mac")]
    pub hw_addr: [u8; 6],
    /// `OFPPC_*` bits to set.
    pub config: u32,
    /// Which `OFPPC_*` bits to change.
    pub mask: u32,
    /// `OFPPF_*` to advertise, 0 = unchanged.
    pub advertise: u32,
}

impl PortMod {
    pub(crate) const LEN: usize = 32;

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u32(self.port_no);
        put_zeros(out, 4);
        out.put_slice(&self.hw_addr);
        put_zeros(out, 2);
        out.put_u32(self.config);
        out.put_u32(self.mask);
        out.put_u32(self.advertise);
        put_zeros(out, 4);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<PortMod, Error> {
        let port_no = r.u32()?;
        r.pad(4)?;
        let hw_addr = r.array()?;
        r.pad(2)?;
        let m = PortMod {
            port_no,
            hw_addr,
            config: r.u32()?,
            mask: r.u32()?,
            advertise: r.u32()?,
        };
        r.pad(4)?;
        Ok(m)
    }
}

/// TABLE_MOD body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableMod {
    /// Table, or `OFPTT_ALL`.
    pub table_id: u8,
    /// `OFPTC_*` bitmap (deprecated in 1.3; zero).
    pub config: u32,
}

impl TableMod {
    pub(crate) const LEN: usize = 8;

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u8(self.table_id);
        put_zeros(out, 3);
        out.put_u32(self.config);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<TableMod, Error> {
        let table_id = r.u8()?;
        r.pad(3)?;
        Ok(TableMod {
            table_id,
            config: r.u32()?,
        })
    }
}
