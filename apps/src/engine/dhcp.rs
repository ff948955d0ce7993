//! The DHCP server of bridges (placeholder interface while the full server is merged).

use std::net::Ipv4Addr;

use topology::Snapshot;
use uuid::Uuid;

/// DHCP tunables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    /// Lease time.
    pub lease_secs: u32,
    /// MTU handed out when the subnet has none.
    pub default_mtu: u16,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        DhcpConfig {
            lease_secs: 86400,
            default_mtu: 1450,
        }
    }
}

/// Why a DHCP frame got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Not DHCP.
    NotDhcp,
}

impl Ignored {
    /// Counter name.
    pub fn as_str(self) -> &'static str {
        "not_dhcp"
    }
}

/// The DHCP servers of a bridge.
pub fn servers_of(
    snapshot: &Snapshot,
    bridge: Uuid,
) -> impl Iterator<Item = ([u8; 6], Ipv4Addr)> + '_ {
    let _ = (snapshot, bridge);
    std::iter::empty()
}

/// Answers a DHCP frame.
pub fn answer(
    snapshot: &Snapshot,
    bridge: Uuid,
    frame: &[u8],
    cfg: &DhcpConfig,
) -> Result<Vec<u8>, Ignored> {
    let _ = (snapshot, bridge, frame, cfg);
    Err(Ignored::NotDhcp)
}
