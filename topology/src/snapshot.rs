//! The immutable topology [`Snapshot`]: every resource plus the indexes the simulation needs,
//! in persistent maps (`imbl`) so that a writer derives the next snapshot from the current one
//! in O(log n) and readers hold theirs as long as they like without blocking anyone.

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::*;
use crate::store::{KeyValue, Revision};

/// The store key of the tunnel key allocator's cursor.
pub(crate) const NEXT_TUNNEL_KEY: &str = "meta/next_tunnel_key";

/// A top-level or child resource kept in its own map of the snapshot and its own store prefix.
pub trait Resource:
    Clone + Serialize + DeserializeOwned + utoipa::ToSchema + Send + Sync + 'static
{
    /// Singular name used in messages (`bridge`, `tunnel zone`).
    const KIND: &'static str;
    /// Store key prefix and REST collection name (`bridges`).
    const PREFIX: &'static str;
    /// The resource's id.
    fn id(&self) -> Uuid;
    /// Sets the id (on create).
    fn set_id(&mut self, id: Uuid);
    /// Its map in a snapshot.
    fn map(s: &Snapshot) -> &OrdMap<Uuid, Arc<Self>>;
    /// Its map in a snapshot, for writers.
    fn map_mut(s: &mut Snapshot) -> &mut OrdMap<Uuid, Arc<Self>>;
}

macro_rules! resource {
    ($t:ty, $kind:literal, $prefix:literal, $field:ident) => {
        impl Resource for $t {
            const KIND: &'static str = $kind;
            const PREFIX: &'static str = $prefix;
            fn id(&self) -> Uuid {
                self.id
            }
            fn set_id(&mut self, id: Uuid) {
                self.id = id;
            }
            fn map(s: &Snapshot) -> &OrdMap<Uuid, Arc<Self>> {
                &s.$field
            }
            fn map_mut(s: &mut Snapshot) -> &mut OrdMap<Uuid, Arc<Self>> {
                &mut s.$field
            }
        }
    };
}

resource!(Host, "host", "hosts", hosts);
resource!(TunnelZone, "tunnel zone", "tunnel_zones", tunnel_zones);
resource!(Bridge, "bridge", "bridges", bridges);
resource!(Router, "router", "routers", routers);
resource!(Port, "port", "ports", ports);
resource!(Route, "route", "routes", routes);
resource!(Chain, "chain", "chains", chains);
resource!(Rule, "rule", "rules", rules);
resource!(PortGroup, "port group", "port_groups", port_groups);
resource!(
    IpAddrGroup,
    "IP address group",
    "ip_addr_groups",
    ip_addr_groups
);
resource!(DhcpSubnet, "DHCP subnet", "dhcp_subnets", dhcp_subnets);

/// Which kind of device a port belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A bridge.
    Bridge,
    /// A router.
    Router,
}

/// The whole logical topology at one store revision, with its indexes. Cheap to clone.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub(crate) revision: Revision,
    pub(crate) hosts: OrdMap<Uuid, Arc<Host>>,
    pub(crate) tunnel_zones: OrdMap<Uuid, Arc<TunnelZone>>,
    pub(crate) bridges: OrdMap<Uuid, Arc<Bridge>>,
    pub(crate) routers: OrdMap<Uuid, Arc<Router>>,
    pub(crate) ports: OrdMap<Uuid, Arc<Port>>,
    pub(crate) routes: OrdMap<Uuid, Arc<Route>>,
    pub(crate) chains: OrdMap<Uuid, Arc<Chain>>,
    pub(crate) rules: OrdMap<Uuid, Arc<Rule>>,
    pub(crate) port_groups: OrdMap<Uuid, Arc<PortGroup>>,
    pub(crate) ip_addr_groups: OrdMap<Uuid, Arc<IpAddrGroup>>,
    pub(crate) dhcp_subnets: OrdMap<Uuid, Arc<DhcpSubnet>>,
    /// Record id → revision that last wrote it (the REST ETag).
    pub(crate) mod_revisions: OrdMap<Uuid, Revision>,
    /// Device → its ports.
    pub(crate) device_ports: OrdMap<Uuid, OrdSet<Uuid>>,
    /// Router → its routes.
    pub(crate) router_routes: OrdMap<Uuid, OrdSet<Uuid>>,
    /// Bridge → its DHCP subnets.
    pub(crate) bridge_dhcp: OrdMap<Uuid, OrdSet<Uuid>>,
    /// Tunnel key → port.
    pub(crate) tunnel_keys: OrdMap<u32, Uuid>,
    /// Router port MAC → port (MACs of router ports are unique).
    pub(crate) router_macs: OrdMap<MacAddr, Uuid>,
    /// (host, interface name) → bound port.
    pub(crate) bindings: OrdMap<(Uuid, String), Uuid>,
    /// Where the tunnel key allocator looks next (1..=2^24-1).
    pub(crate) next_tunnel_key: u32,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("revision", &self.revision)
            .field("ports", &self.ports.len())
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The store revision this snapshot reflects.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// One resource by id.
    pub fn get<R: Resource>(&self, id: Uuid) -> Option<&Arc<R>> {
        R::map(self).get(&id)
    }

    /// One resource by id, or `NotFound`.
    pub fn find<R: Resource>(&self, id: Uuid) -> Result<&Arc<R>> {
        self.get(id).ok_or_else(|| Error::not_found(R::KIND, id))
    }

    /// Every resource of a kind, in id order.
    pub fn list<R: Resource>(&self) -> impl Iterator<Item = &Arc<R>> + '_ {
        R::map(self).values()
    }

    /// The revision that last wrote a record (its ETag), 0 when unknown.
    pub fn mod_revision(&self, id: Uuid) -> Revision {
        self.mod_revisions.get(&id).copied().unwrap_or(0)
    }

    /// Every host (for OVSDB provisioning).
    pub fn hosts(&self) -> impl Iterator<Item = &Arc<Host>> + '_ {
        self.hosts.values()
    }

    /// Every tunnel zone with its members (for OVSDB provisioning).
    pub fn tunnel_zones(&self) -> impl Iterator<Item = &Arc<TunnelZone>> + '_ {
        self.tunnel_zones.values()
    }

    /// Whether `id` is a bridge or a router.
    pub fn device_kind(&self, id: Uuid) -> Option<DeviceKind> {
        if self.bridges.contains_key(&id) {
            Some(DeviceKind::Bridge)
        } else if self.routers.contains_key(&id) {
            Some(DeviceKind::Router)
        } else {
            None
        }
    }

    /// The ports of a device, in id order.
    pub fn ports_of(&self, device: Uuid) -> impl Iterator<Item = &Arc<Port>> + '_ {
        self.device_ports
            .get(&device)
            .into_iter()
            .flat_map(|s| s.iter())
            .filter_map(|id| self.ports.get(id))
    }

    /// The routes of a router, in id order.
    pub fn routes_of(&self, router: Uuid) -> impl Iterator<Item = &Arc<Route>> + '_ {
        self.router_routes
            .get(&router)
            .into_iter()
            .flat_map(|s| s.iter())
            .filter_map(|id| self.routes.get(id))
    }

    /// The rules of a chain, in evaluation order.
    pub fn rules_of(&self, chain: Uuid) -> impl Iterator<Item = &Arc<Rule>> + '_ {
        self.chains
            .get(&chain)
            .into_iter()
            .flat_map(|c| c.rule_ids.iter())
            .filter_map(|id| self.rules.get(id))
    }

    /// A rule with its `position` filled in (1-based place in its chain).
    pub fn rule_with_position(&self, id: Uuid) -> Option<Rule> {
        let rule = self.rules.get(&id)?;
        let mut r = Rule::clone(rule);
        r.position = self
            .chains
            .get(&r.chain_id)
            .and_then(|c| c.rule_ids.iter().position(|x| *x == id))
            .map_or(0, |p| p as u32 + 1);
        Some(r)
    }

    /// The DHCP subnets of a bridge.
    pub fn dhcp_subnets_of(&self, bridge: Uuid) -> impl Iterator<Item = &Arc<DhcpSubnet>> + '_ {
        self.bridge_dhcp
            .get(&bridge)
            .into_iter()
            .flat_map(|s| s.iter())
            .filter_map(|id| self.dhcp_subnets.get(id))
    }

    /// The router port owning a MAC.
    pub fn router_port_by_mac(&self, mac: MacAddr) -> Option<&Arc<Port>> {
        self.router_macs.get(&mac).and_then(|id| self.ports.get(id))
    }

    /// The port holding a tunnel key.
    pub fn port_by_tunnel_key(&self, key: u32) -> Option<&Arc<Port>> {
        self.tunnel_keys.get(&key).and_then(|id| self.ports.get(id))
    }

    /// The port bound to an interface of a host.
    pub fn port_by_binding(&self, host: Uuid, interface: &str) -> Option<&Arc<Port>> {
        self.bindings
            .get(&(host, interface.to_owned()))
            .and_then(|id| self.ports.get(id))
    }

    /// Number of ports (for metrics and benchmarks).
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    pub(crate) fn index_port(&mut self, p: &Port) {
        self.device_ports
            .entry(p.device_id)
            .or_default()
            .insert(p.id);
        if p.tunnel_key != 0 {
            self.tunnel_keys.insert(p.tunnel_key, p.id);
        }
        if let Some(mac) = p.mac {
            self.router_macs.insert(mac, p.id);
        }
        if let (Some(h), Some(i)) = (p.host_id, &p.interface_name) {
            self.bindings.insert((h, i.clone()), p.id);
        }
    }

    pub(crate) fn unindex_port(&mut self, p: &Port) {
        if let Some(s) = self.device_ports.get_mut(&p.device_id) {
            s.remove(&p.id);
            if s.is_empty() {
                self.device_ports.remove(&p.device_id);
            }
        }
        if self.tunnel_keys.get(&p.tunnel_key) == Some(&p.id) {
            self.tunnel_keys.remove(&p.tunnel_key);
        }
        if let Some(mac) = p.mac {
            if self.router_macs.get(&mac) == Some(&p.id) {
                self.router_macs.remove(&mac);
            }
        }
        if let (Some(h), Some(i)) = (p.host_id, &p.interface_name) {
            self.bindings.remove(&(h, i.clone()));
        }
    }

    pub(crate) fn index_child(index: &mut OrdMap<Uuid, OrdSet<Uuid>>, parent: Uuid, id: Uuid) {
        index.entry(parent).or_default().insert(id);
    }

    pub(crate) fn unindex_child(index: &mut OrdMap<Uuid, OrdSet<Uuid>>, parent: Uuid, id: Uuid) {
        if let Some(s) = index.get_mut(&parent) {
            s.remove(&id);
            if s.is_empty() {
                index.remove(&parent);
            }
        }
    }

    /// Rebuilds a snapshot from every record of a store (at start-up, or after a store
    /// conflict). Unknown prefixes are ignored so that newer controllers can add kinds.
    pub fn from_records(revision: Revision, records: &[KeyValue]) -> Result<Snapshot> {
        fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T> {
            serde_json::from_slice(&kv.value).map_err(|e| Error::Corrupt {
                key: kv.key.clone(),
                message: e.to_string(),
            })
        }
        fn put<R: Resource>(s: &mut Snapshot, kv: &KeyValue) -> Result<Arc<R>> {
            let r: Arc<R> = Arc::new(decode(kv)?);
            s.mod_revisions.insert(r.id(), kv.mod_revision);
            R::map_mut(s).insert(r.id(), r.clone());
            Ok(r)
        }
        let mut s = Snapshot {
            revision,
            next_tunnel_key: 1,
            ..Snapshot::default()
        };
        for kv in records {
            let prefix = kv.key.split('/').next().unwrap_or_default();
            match prefix {
                "hosts" => drop(put::<Host>(&mut s, kv)?),
                "tunnel_zones" => drop(put::<TunnelZone>(&mut s, kv)?),
                "bridges" => drop(put::<Bridge>(&mut s, kv)?),
                "routers" => drop(put::<Router>(&mut s, kv)?),
                "ports" => {
                    let p = put::<Port>(&mut s, kv)?;
                    s.index_port(&p);
                }
                "routes" => {
                    let r = put::<Route>(&mut s, kv)?;
                    Self::index_child(&mut s.router_routes, r.router_id, r.id);
                }
                "chains" => drop(put::<Chain>(&mut s, kv)?),
                "rules" => drop(put::<Rule>(&mut s, kv)?),
                "port_groups" => drop(put::<PortGroup>(&mut s, kv)?),
                "ip_addr_groups" => drop(put::<IpAddrGroup>(&mut s, kv)?),
                "dhcp_subnets" => {
                    let d = put::<DhcpSubnet>(&mut s, kv)?;
                    Self::index_child(&mut s.bridge_dhcp, d.bridge_id, d.id);
                }
                _ if kv.key == NEXT_TUNNEL_KEY => {
                    s.next_tunnel_key = decode(kv)?;
                }
                _ => {}
            }
        }
        Ok(s)
    }
}
