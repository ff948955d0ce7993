//! Builders shared by the in-crate tests of the session layer and the REST API.

use ofproto::{FeaturesReply, Port};

/// A plain port `p{no}` with MAC `02:00:00:00:00:{no}`.
pub fn port(no: u32) -> Port {
    Port {
        port_no: no,
        hw_addr: [2, 0, 0, 0, 0, no as u8],
        name: format!("p{no}"),
        config: 0,
        state: 0,
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 0,
        max_speed: 0,
    }
}

/// The FEATURES_REPLY of an OVS-like switch with datapath id `dpid`.
pub fn features(dpid: u64) -> FeaturesReply {
    FeaturesReply {
        datapath_id: dpid,
        n_buffers: 0,
        n_tables: 254,
        auxiliary_id: 0,
        capabilities: 0x4f,
    }
}
