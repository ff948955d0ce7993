//! OpenFlow 1.3 wire codec: bytes in, typed messages out, and back. Knows no socket and no runtime.
//!
//! # Shape
//!
//! - [`OfMessage`] is one whole message: `version`, `xid` and a typed [`Message`] body. The
//!   header length is never stored; it is computed on emit.
//! - [`Decoder`] frames a byte stream into messages (`Ok(None)` = need more bytes).
//! - [`Match`]/[`OxmField`], [`Action`], [`Instruction`] are the flow-table vocabulary, each with
//!   `parse`/`emit`/`encoded_len`, and an `ovs-ofctl`-style `Display`.
//!
//! # Guarantees
//!
//! Parsing never panics and never allocates more than a small multiple of its input: every
//! length is checked against the bytes that remain, every length-prefixed part is read through a
//! bounded sub-reader that rejects leftovers, and padding must be zero. As a result
//! `emit(parse(b)) == b` for every `b` that parses, and `parse(emit(m)) == m` for every `m`
//! built from canonical values (unknown codes stored as `Unknown` only when they are unknown).
//! Emitting panics only on a caller bug: a message whose encoding exceeds 65535 bytes (use
//! [`OfMessage::try_emit`] when the size is not known to fit).

pub mod action;
#[cfg(test)]
mod arb;
mod codec;
pub mod decoder;
pub mod display;
pub mod error;
pub mod header;
pub mod instruction;
pub mod msg;
pub mod multipart;
pub mod oxm;
pub mod packet;

pub use action::Action;
pub use decoder::Decoder;
pub use error::{Ctx, Error, ErrorType};
pub use header::Header;
pub use instruction::Instruction;
pub use msg::*;
pub use multipart::*;
pub use oxm::{Match, OxmField};

/// OpenFlow 1.3 wire version.
pub const OFP_VERSION: u8 = 0x04;
/// Size of the common header.
pub const OFP_HEADER_LEN: usize = 8;
/// `buffer_id` meaning "the packet is not buffered; data is in the message".
pub const OFP_NO_BUFFER: u32 = 0xffff_ffff;
/// Largest message the 16-bit length field can describe.
pub const OFP_MAX_LEN: usize = 0xffff;

/// Reserved port numbers (`OFPP_*`).
pub mod port_no {
    /// Maximum number of physical and logical switch ports.
    pub const MAX: u32 = 0xffff_ff00;
    /// Send the packet out the input port.
    pub const IN_PORT: u32 = 0xffff_fff8;
    /// Submit the packet to the first flow table (packet-out only).
    pub const TABLE: u32 = 0xffff_fff9;
    /// Forward using non-OpenFlow pipeline.
    pub const NORMAL: u32 = 0xffff_fffa;
    /// Flood using non-OpenFlow pipeline.
    pub const FLOOD: u32 = 0xffff_fffb;
    /// All standard ports except input port.
    pub const ALL: u32 = 0xffff_fffc;
    /// Send to controller.
    pub const CONTROLLER: u32 = 0xffff_fffd;
    /// Local openflow "port".
    pub const LOCAL: u32 = 0xffff_fffe;
    /// Wildcard port used only for flow mod (delete) and flow stats requests.
    pub const ANY: u32 = 0xffff_ffff;
}

/// Flag and reserved-value constants, with their OpenFlow 1.3.5 names.
pub mod consts {
    /// Send flow removed message when flow expires or is deleted.
    pub const OFPFF_SEND_FLOW_REM: u16 = 1 << 0;
    /// Check for overlapping entries first.
    pub const OFPFF_CHECK_OVERLAP: u16 = 1 << 1;
    /// Reset flow packet and byte counts.
    pub const OFPFF_RESET_COUNTS: u16 = 1 << 2;
    /// Don't keep track of packet count.
    pub const OFPFF_NO_PKT_COUNTS: u16 = 1 << 3;
    /// Don't keep track of byte count.
    pub const OFPFF_NO_BYT_COUNTS: u16 = 1 << 4;
    /// `max_len` of an output to the controller meaning "send the whole packet, unbuffered".
    pub const OFPCML_NO_BUFFER: u16 = 0xffff;
    /// Largest `max_len` that asks the switch to buffer.
    pub const OFPCML_MAX: u16 = 0xffe5;
    /// More multipart requests follow.
    pub const OFPMPF_REQ_MORE: u16 = 1 << 0;
    /// More multipart replies follow.
    pub const OFPMPF_REPLY_MORE: u16 = 1 << 0;
    /// Last usable table number.
    pub const OFPTT_MAX: u8 = 0xfe;
    /// Wildcard table used for table config, flow stats and flow deletes.
    pub const OFPTT_ALL: u8 = 0xff;
    /// Last usable group number.
    pub const OFPG_MAX: u32 = 0xffff_ff00;
    /// Represents all groups for group delete commands.
    pub const OFPG_ALL: u32 = 0xffff_fffc;
    /// Wildcard group used only for flow stats requests.
    pub const OFPG_ANY: u32 = 0xffff_ffff;
    /// Last usable meter.
    pub const OFPM_MAX: u32 = 0xffff_0000;
    /// Meter for slow datapath.
    pub const OFPM_SLOWPATH: u32 = 0xffff_fffd;
    /// Meter for controller connection.
    pub const OFPM_CONTROLLER: u32 = 0xffff_fffe;
    /// Represents all meters for stat requests commands.
    pub const OFPM_ALL: u32 = 0xffff_ffff;
    /// All queues (queue stats request).
    pub const OFPQ_ALL: u32 = 0xffff_ffff;
    /// `OFPVID_PRESENT`: bit set in `vlan_vid` when a VLAN tag is present.
    pub const OFPVID_PRESENT: u16 = 0x1000;
    /// `OFPVID_NONE`: no VLAN id was set.
    pub const OFPVID_NONE: u16 = 0x0000;
    /// Nicira (NX) experimenter id.
    pub const NX_VENDOR_ID: u32 = 0x0000_2320;
    /// ONF experimenter id.
    pub const ONF_VENDOR_ID: u32 = 0x4f4e_4600;
    /// Switch config: no special handling for fragments.
    pub const OFPC_FRAG_NORMAL: u16 = 0;
    /// Switch config: drop fragments.
    pub const OFPC_FRAG_DROP: u16 = 1;
    /// Switch config: reassemble (only if OFPC_IP_REASM set).
    pub const OFPC_FRAG_REASM: u16 = 2;
    /// Capabilities: flow statistics.
    pub const OFPC_FLOW_STATS: u32 = 1 << 0;
    /// Capabilities: table statistics.
    pub const OFPC_TABLE_STATS: u32 = 1 << 1;
    /// Capabilities: port statistics.
    pub const OFPC_PORT_STATS: u32 = 1 << 2;
    /// Capabilities: group statistics.
    pub const OFPC_GROUP_STATS: u32 = 1 << 3;
    /// Capabilities: can reassemble IP fragments.
    pub const OFPC_IP_REASM: u32 = 1 << 5;
    /// Capabilities: queue statistics.
    pub const OFPC_QUEUE_STATS: u32 = 1 << 6;
    /// Capabilities: switch will block looping ports.
    pub const OFPC_PORT_BLOCKED: u32 = 1 << 8;
    /// Port config: port is administratively down.
    pub const OFPPC_PORT_DOWN: u32 = 1 << 0;
    /// Port config: drop all packets received by port.
    pub const OFPPC_NO_RECV: u32 = 1 << 2;
    /// Port config: drop packets forwarded to port.
    pub const OFPPC_NO_FWD: u32 = 1 << 5;
    /// Port config: do not send packet-in msgs for port.
    pub const OFPPC_NO_PACKET_IN: u32 = 1 << 6;
    /// Port state: no physical link present.
    pub const OFPPS_LINK_DOWN: u32 = 1 << 0;
    /// Port state: port is blocked.
    pub const OFPPS_BLOCKED: u32 = 1 << 1;
    /// Port state: live for fast failover group.
    pub const OFPPS_LIVE: u32 = 1 << 2;
}

#[cfg(test)]
mod layering_tests {
    /// ofproto is the sans-IO layer: its manifest must not pull a runtime or a socket crate.
    #[test]
    fn manifest_has_no_io_dependencies() {
        let manifest = include_str!("../Cargo.toml");
        let mut in_deps = false;
        let forbidden = [
            "tokio",
            "mio",
            "async-std",
            "async_std",
            "smol",
            "socket2",
            "async-io",
            "nix",
        ];
        let mut checked = 0;
        for line in manifest.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                in_deps = t == "[dependencies]" || t.starts_with("[dependencies.");
                continue;
            }
            if !in_deps || t.is_empty() || t.starts_with('#') {
                continue;
            }
            let name = t
                .split(['=', '.', ' '])
                .next()
                .unwrap_or_default()
                .trim_matches('"');
            checked += 1;
            assert!(
                !forbidden.contains(&name),
                "ofproto must stay sans-IO, but depends on {name}"
            );
        }
        assert!(checked > 0, "no [dependencies] found in ofproto/Cargo.toml");
    }

    /// Tidy: every source file opens with a `//!` line saying what it owns.
    #[test]
    fn every_file_has_a_module_doc() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).expect("readable src dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 10, "found only {files:?}");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("readable source");
            assert!(
                text.starts_with("//!"),
                "{} does not start with a //! line",
                f.display()
            );
        }
    }
}
