//! Indexes the simulation reads, derived once per topology snapshot: routers' route tables, the
//! addresses bridges answer ARP for, router MACs on bridges, DHCP servers, and the MTU behind
//! every router port.
//!
//! Why derived and not looked up: the walk runs per packet-in and must not scan a bridge's
//! ports or a router's routes each time; a snapshot changes far less often than packets arrive.
//! Rebuilding all of it per snapshot is O(topology) — fine at lab scale; incremental upkeep is
//! for the scale issue.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::Ipv4Net;
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use topology::model::{Port, Rule};
use topology::{DeviceKind, Snapshot};
use uuid::Uuid;

use super::dhcp;
use super::route::{port_v4, Table};

/// A bridge's DHCP servers: (MAC, address).
type Servers = SmallVec<[([u8; 6], Ipv4Addr); 1]>;

/// Who a bridge answers ARP requests for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownIp {
    /// The MAC to answer with.
    pub mac: [u8; 6],
    /// Answer only senders inside this subnet (a router port answers its own subnet only).
    pub subnet: Option<Ipv4Net>,
}

/// A port with what the walk needs of its device, in one hash lookup (the snapshot's ordered
/// maps cost a B-tree descent for each of port, device kind and device state).
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// The port.
    pub port: Arc<Port>,
    /// Its device's kind.
    pub kind: DeviceKind,
    /// Its device's `admin_state_up`.
    pub device_up: bool,
    /// Its device's (inbound, outbound) filter chains.
    pub device_filters: (Option<Uuid>, Option<Uuid>),
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Index {
    ports: FxHashMap<Uuid, PortInfo>,
    /// Tunnel key → port: every packet-in names its ingress by key (the classifier's metadata).
    /// A copy of the port's entry, not its id: one lookup per packet-in instead of two (each a
    /// likely cache miss once the flow cache has grown past the CPU's caches).
    by_key: FxHashMap<u32, PortInfo>,
    chains: FxHashMap<Uuid, Arc<[Arc<Rule>]>>,
    port_groups: FxHashMap<Uuid, FxHashSet<Uuid>>,
    addr_groups: FxHashMap<Uuid, FxHashSet<IpAddr>>,
    routes: FxHashMap<Uuid, Table>,
    bridge_ips: FxHashMap<(Uuid, Ipv4Addr), KnownIp>,
    /// Bridges with any entry in `bridge_ips` (a set; the value is unused).
    arp_bridges: FxHashMap<Uuid, ()>,
    router_macs: FxHashMap<(Uuid, [u8; 6]), Uuid>,
    dhcp_servers: FxHashMap<Uuid, Servers>,
    mtu: FxHashMap<Uuid, u16>,
    default_mtu: u16,
}

impl Index {
    /// Derives the index of `snapshot`; `default_mtu` is the MTU of a virtual network whose
    /// DHCP subnet does not say (the underlay's minus the tunnel overhead).
    pub fn build(snapshot: &Snapshot, default_mtu: u16) -> Index {
        let mut ix = Index {
            default_mtu,
            ..Index::default()
        };
        for r in snapshot.list::<topology::model::Router>() {
            ix.routes.insert(r.id, Table::build(snapshot, r.id));
        }
        for c in snapshot.list::<topology::model::Chain>() {
            let rules: Vec<Arc<Rule>> = snapshot.rules_of(c.id).cloned().collect();
            ix.chains.insert(c.id, rules.into());
        }
        for g in snapshot.list::<topology::model::PortGroup>() {
            ix.port_groups
                .insert(g.id, g.port_ids.iter().copied().collect());
        }
        for g in snapshot.list::<topology::model::IpAddrGroup>() {
            ix.addr_groups
                .insert(g.id, g.addresses.iter().copied().collect());
        }
        for p in snapshot.list::<Port>() {
            use topology::model::Device;
            let device = |d: Option<&dyn Device>, up: Option<bool>| {
                (up.unwrap_or(false), d.map_or((None, None), |d| d.filters()))
            };
            let (kind, (device_up, device_filters)) = match snapshot.device_kind(p.device_id) {
                Some(DeviceKind::Bridge) => {
                    let b = snapshot.get::<topology::model::Bridge>(p.device_id);
                    let d = b.map(|b| &**b as &dyn Device);
                    (DeviceKind::Bridge, device(d, b.map(|b| b.admin_state_up)))
                }
                Some(DeviceKind::Router) => {
                    let r = snapshot.get::<topology::model::Router>(p.device_id);
                    let d = r.map(|r| &**r as &dyn Device);
                    (DeviceKind::Router, device(d, r.map(|r| r.admin_state_up)))
                }
                None => continue,
            };
            let info = PortInfo {
                port: p.clone(),
                kind,
                device_up,
                device_filters,
            };
            ix.by_key.insert(p.tunnel_key, info.clone());
            ix.ports.insert(p.id, info);
        }
        for b in snapshot.list::<topology::model::Bridge>() {
            for p in snapshot.ports_of(b.id) {
                let Some(peer) = p.peer_id.and_then(|id| snapshot.get::<Port>(id)) else {
                    continue;
                };
                if snapshot.device_kind(peer.device_id) != Some(DeviceKind::Router) {
                    continue;
                }
                let Some(mac) = peer.mac else { continue };
                ix.router_macs.insert((b.id, mac.0), p.id);
                if let Some((ip, net)) = port_v4(peer) {
                    ix.bridge_ips.insert(
                        (b.id, ip),
                        KnownIp {
                            mac: mac.0,
                            subnet: Some(net),
                        },
                    );
                    let mtu = snapshot
                        .dhcp_subnets_of(b.id)
                        .filter(|s| s.enabled && s.subnet.contains(&IpAddr::V4(ip)))
                        .filter_map(|s| s.mtu)
                        .min()
                        .unwrap_or(default_mtu);
                    ix.mtu.insert(peer.id, mtu);
                }
            }
            for s in snapshot.dhcp_subnets_of(b.id).filter(|s| s.enabled) {
                for h in &s.hosts {
                    if let IpAddr::V4(ip) = h.ip {
                        ix.bridge_ips.entry((b.id, ip)).or_insert(KnownIp {
                            mac: h.mac.0,
                            subnet: None,
                        });
                    }
                }
            }
            if ix.bridge_ips.keys().any(|(br, _)| *br == b.id) {
                ix.arp_bridges.insert(b.id, ());
            }
            let servers: SmallVec<_> = dhcp::servers_of(snapshot, b.id).collect();
            if !servers.is_empty() {
                ix.dhcp_servers.insert(b.id, servers);
            }
        }
        ix
    }

    /// A chain's rules in order; `None` for an unknown chain.
    pub fn chain(&self, id: Uuid) -> Option<&[Arc<Rule>]> {
        self.chains.get(&id).map(|r| &r[..])
    }

    /// Whether `port` is in port group `group`.
    pub fn in_port_group(&self, group: Uuid, port: Uuid) -> bool {
        self.port_groups
            .get(&group)
            .is_some_and(|g| g.contains(&port))
    }

    /// Whether `ip` is in address group `group`.
    pub fn in_addr_group(&self, group: Uuid, ip: IpAddr) -> bool {
        self.addr_groups
            .get(&group)
            .is_some_and(|g| g.contains(&ip))
    }

    /// The port with this tunnel key, and its device's kind and state.
    pub fn port_by_key(&self, key: u32) -> Option<&PortInfo> {
        self.by_key.get(&key)
    }

    /// A port and its device's kind and state.
    pub fn port(&self, id: Uuid) -> Option<&PortInfo> {
        self.ports.get(&id)
    }

    /// A router's table (empty for an unknown router).
    pub fn routes(&self, router: Uuid) -> Option<&Table> {
        self.routes.get(&router)
    }

    /// Who `bridge` answers ARP for `ip` with.
    pub fn bridge_ip(&self, bridge: Uuid, ip: Ipv4Addr) -> Option<KnownIp> {
        self.bridge_ips.get(&(bridge, ip)).copied()
    }

    /// The port of `bridge` linked to the router port that owns `mac`.
    pub fn router_mac(&self, bridge: Uuid, mac: [u8; 6]) -> Option<Uuid> {
        self.router_macs.get(&(bridge, mac)).copied()
    }

    /// Whether `bridge` answers ARP for any address (so a broadcast's type is worth reading).
    pub fn answers_arp(&self, bridge: Uuid) -> bool {
        self.arp_bridges.contains_key(&bridge)
    }

    /// Whether `bridge` serves DHCP.
    pub fn serves_dhcp(&self, bridge: Uuid) -> bool {
        self.dhcp_servers.contains_key(&bridge)
    }

    /// Whether `mac` is one of `bridge`'s DHCP servers (unicast renewals go to it).
    pub fn is_dhcp_server(&self, bridge: Uuid, mac: [u8; 6]) -> bool {
        self.dhcp_servers
            .get(&bridge)
            .is_some_and(|s| s.iter().any(|(m, _)| *m == mac))
    }

    /// The MTU of the network behind router port `port`.
    pub fn mtu(&self, port: Uuid) -> u16 {
        self.mtu.get(&port).copied().unwrap_or(self.default_mtu)
    }

    /// The MAC of next hop `ip` behind router port `port` when the topology itself says it, so
    /// no ARP is needed: the peer router port of a router-to-router link, or an address a
    /// bridge knows (another router's port, a DHCP host) behind a router-to-bridge link.
    pub fn static_neighbour(&self, port: &Port, ip: Ipv4Addr) -> Option<[u8; 6]> {
        let info = self.port(port.peer_id?)?;
        let peer = &info.port;
        match info.kind {
            DeviceKind::Router => peer.mac.map(|m| m.0),
            DeviceKind::Bridge => self
                .bridge_ip(peer.device_id, ip)
                .map(|k| k.mac)
                .filter(|m| Some(*m) != port.mac.map(|x| x.0)),
        }
    }
}
