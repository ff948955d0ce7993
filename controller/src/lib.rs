//! The Strowger controller: the tokio runtime around the sans-IO crates. It owns every socket
//! (OpenFlow switch sessions, OVSDB host sessions, the REST API) and no simulation logic.

pub mod accept;
pub mod api;
pub mod applied;
pub mod bench;
pub mod bindings;
pub mod cli;
pub mod metrics;
pub mod ofp_cmd;
pub mod openflow;
pub mod provision;
pub mod serve;
pub mod tls;
