//! Helpers shared by the OVS cross-check tests: finding `ovs-ofctl` and running it.

#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `ovs-ofctl ARGS`, failing the test with an install hint when OVS is absent: these tests
/// must never pass silently on a machine without Open vSwitch.
pub fn ovs_ofctl(args: &[&str]) -> Output {
    match Command::new("ovs-ofctl").args(args).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run ovs-ofctl ({e}): install openvswitch-switch \
             (apt-get install openvswitch-switch) to run the OVS cross-checks"
        ),
    }
}

/// Writes frames as a classic pcap file (Ethernet link type) for `ovs-ofctl parse-pcap`.
pub fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, GMT offset, accuracy, snaplen, LINKTYPE_ETHERNET.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for field in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    for frame in frames {
        let len = u32::try_from(frame.len()).expect("test frames are small");
        for field in [0u32, 0, len, len] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        out.extend_from_slice(frame);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "strowger-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
