//! [`Txn`]: one validated change to the topology. Every mutation checks its input against the
//! snapshot it starts from (field-level errors), keeps the indexes in step and records the
//! store writes; the [`crate::Network`] commits them all or none.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::*;
use crate::snapshot::{DeviceKind, Resource, Snapshot, NEXT_TUNNEL_KEY};
use crate::store::{Op, Revision};

/// Largest tunnel key: they must fit a 24-bit VXLAN VNI. 0 is never allocated.
pub const MAX_TUNNEL_KEY: u32 = (1 << 24) - 1;

/// A change being built on top of a snapshot.
pub struct Txn {
    pub(crate) snap: Snapshot,
    pub(crate) writes: BTreeMap<String, Option<Vec<u8>>>,
    pub(crate) touched: BTreeSet<Uuid>,
}

fn key<R: Resource>(id: Uuid) -> String {
    format!("{}/{}", R::PREFIX, id)
}

fn new_id(given: Uuid) -> Uuid {
    if given.is_nil() {
        Uuid::new_v4()
    } else {
        given
    }
}

fn check_name(field: &str, name: &str) -> Result<()> {
    if name.len() > 255 {
        return Err(Error::invalid(field, "longer than 255 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(())
}

fn check_prefix(field: &str, net: &IpNet) -> Result<()> {
    if *net != net.trunc() {
        return Err(Error::invalid(
            field,
            format!("{net} has host bits set (did you mean {}?)", net.trunc()),
        ));
    }
    Ok(())
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn same_family(a: &IpAddr, b: &IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn check_dups<T: Ord + std::fmt::Display>(field: &str, items: &[T]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for (i, x) in items.iter().enumerate() {
        if !seen.insert(x) {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!("{x} is listed twice"),
            ));
        }
    }
    Ok(())
}

impl Txn {
    pub(crate) fn new(snap: Snapshot) -> Txn {
        Txn {
            snap,
            writes: BTreeMap::new(),
            touched: BTreeSet::new(),
        }
    }

    /// The topology as this transaction has changed it so far.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    /// Optimistic concurrency: fails unless the record is still at `expected` (its ETag).
    pub fn expect_revision<R: Resource>(&self, id: Uuid, expected: Revision) -> Result<()> {
        self.snap.find::<R>(id)?;
        let current = self.snap.mod_revision(id);
        if current != expected {
            return Err(Error::RevisionMismatch {
                kind: R::KIND,
                id: id.to_string(),
                expected,
                current,
            });
        }
        Ok(())
    }

    fn save<R: Resource>(&mut self, r: R) -> Arc<R> {
        // Model structs have only string map keys, so serialising them cannot fail.
        let bytes = serde_json::to_vec(&r).expect("model types always serialise");
        let id = r.id();
        self.writes.insert(key::<R>(id), Some(bytes));
        self.touched.insert(id);
        let r = Arc::new(r);
        R::map_mut(&mut self.snap).insert(id, r.clone());
        r
    }

    fn erase<R: Resource>(&mut self, id: Uuid) -> Option<Arc<R>> {
        self.writes.insert(key::<R>(id), None);
        self.touched.remove(&id);
        self.snap.mod_revisions.remove(&id);
        R::map_mut(&mut self.snap).remove(&id)
    }

    fn ensure_new<R: Resource>(&self, id: Uuid) -> Result<()> {
        if self.snap.get::<R>(id).is_some() {
            return Err(Error::conflict(
                Some("id"),
                format!("{} {id} already exists", R::KIND),
            ));
        }
        Ok(())
    }

    fn refers<R: Resource>(&self, field: &str, id: Option<Uuid>) -> Result<()> {
        match id {
            Some(id) if self.snap.get::<R>(id).is_none() => {
                Err(Error::invalid(field, format!("no {} {id}", R::KIND)))
            }
            _ => Ok(()),
        }
    }

    fn referenced<R: Resource>(id: Uuid, by: Option<(&'static str, Uuid)>) -> Result<()> {
        match by {
            Some((referrer_kind, rid)) => Err(Error::Referenced {
                kind: R::KIND,
                id: id.to_string(),
                referrer_kind,
                referrer_id: rid.to_string(),
            }),
            None => Ok(()),
        }
    }

    // ---- hosts ----

    fn check_host(&self, h: &Host) -> Result<()> {
        check_name("name", &h.name)?;
        if let Some(cn) = &h.cert_cn {
            check_name("cert_cn", cn)?;
            if cn.is_empty() {
                return Err(Error::invalid(
                    "cert_cn",
                    "empty (null means the host's name)",
                ));
            }
        }
        if let Some(o) = &h.ovsdb {
            o.parse::<crate::OvsdbTarget>()
                .map_err(|e| Error::invalid("ovsdb", e.to_string()))?;
        }
        // One fact: a host's tunnel_ip, when set, is the address of each of its memberships.
        if let Some(ip) = h.tunnel_ip {
            for z in self.snap.tunnel_zones() {
                if let Some(m) = z.members.iter().find(|m| m.host_id == h.id && m.ip != ip) {
                    return Err(Error::invalid(
                        "tunnel_ip",
                        format!(
                            "the host is a member of tunnel zone {} with ip {}; \
                             a host's tunnel_ip and its members' ip must agree",
                            z.id, m.ip
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Creates a host.
    pub fn create_host(&mut self, mut h: Host) -> Result<Arc<Host>> {
        h.id = new_id(h.id);
        self.ensure_new::<Host>(h.id)?;
        self.check_host(&h)?;
        h.connected = false;
        h.datapath_id = None;
        Ok(self.save(h))
    }

    /// Replaces a host.
    pub fn update_host(&mut self, mut h: Host) -> Result<Arc<Host>> {
        self.snap.find::<Host>(h.id)?;
        self.check_host(&h)?;
        h.connected = false;
        h.datapath_id = None;
        Ok(self.save(h))
    }

    /// Deletes a host nothing refers to.
    pub fn delete_host(&mut self, id: Uuid) -> Result<()> {
        self.snap.find::<Host>(id)?;
        let zone = self
            .snap
            .tunnel_zones
            .values()
            .find(|z| z.members.iter().any(|m| m.host_id == id))
            .map(|z| ("tunnel zone", z.id));
        Self::referenced::<Host>(id, zone)?;
        let port = self
            .snap
            .ports
            .values()
            .find(|p| p.host_id == Some(id))
            .map(|p| ("port", p.id));
        Self::referenced::<Host>(id, port)?;
        self.erase::<Host>(id);
        Ok(())
    }

    // ---- tunnel zones ----

    /// Creates a tunnel zone (members are added separately).
    pub fn create_tunnel_zone(&mut self, mut z: TunnelZone) -> Result<Arc<TunnelZone>> {
        z.id = new_id(z.id);
        self.ensure_new::<TunnelZone>(z.id)?;
        check_name("name", &z.name)?;
        z.members.clear();
        Ok(self.save(z))
    }

    /// Replaces a tunnel zone's name and type, keeping its members.
    pub fn update_tunnel_zone(&mut self, mut z: TunnelZone) -> Result<Arc<TunnelZone>> {
        let old = self.snap.find::<TunnelZone>(z.id)?;
        check_name("name", &z.name)?;
        z.members = old.members.clone();
        Ok(self.save(z))
    }

    /// Deletes a tunnel zone and its memberships.
    pub fn delete_tunnel_zone(&mut self, id: Uuid) -> Result<()> {
        self.snap.find::<TunnelZone>(id)?;
        self.erase::<TunnelZone>(id);
        Ok(())
    }

    /// Adds a host to a tunnel zone, or changes its address there.
    pub fn set_member(&mut self, zone: Uuid, m: TunnelZoneMember) -> Result<TunnelZoneMember> {
        let mut z = TunnelZone::clone(self.snap.find::<TunnelZone>(zone)?);
        self.refers::<Host>("host_id", Some(m.host_id))?;
        let host = self.snap.find::<Host>(m.host_id)?;
        if let Some(ip) = host.tunnel_ip.filter(|ip| *ip != m.ip) {
            return Err(Error::invalid(
                "ip",
                format!(
                    "host {} has tunnel_ip {ip}: a member's ip must be its host's tunnel_ip",
                    m.host_id
                ),
            ));
        }
        if let Some(other) = z
            .members
            .iter()
            .find(|x| x.ip == m.ip && x.host_id != m.host_id)
        {
            return Err(Error::conflict(
                Some("ip"),
                format!("host {} already uses {} in this zone", other.host_id, m.ip),
            ));
        }
        match z.members.iter_mut().find(|x| x.host_id == m.host_id) {
            Some(x) => *x = m.clone(),
            None => z.members.push(m.clone()),
        }
        self.save(z);
        Ok(m)
    }

    /// Removes a host from a tunnel zone.
    pub fn remove_member(&mut self, zone: Uuid, host: Uuid) -> Result<()> {
        let mut z = TunnelZone::clone(self.snap.find::<TunnelZone>(zone)?);
        let before = z.members.len();
        z.members.retain(|m| m.host_id != host);
        if z.members.len() == before {
            return Err(Error::not_found("tunnel zone member", host));
        }
        self.save(z);
        Ok(())
    }

    // ---- bridges and routers ----

    fn check_filters(&self, inbound: Option<Uuid>, outbound: Option<Uuid>) -> Result<()> {
        self.refers::<Chain>("inbound_filter_id", inbound)?;
        self.refers::<Chain>("outbound_filter_id", outbound)
    }

    fn create_device<D: Resource + Device, Other: Resource>(&mut self, mut d: D) -> Result<Arc<D>> {
        d.set_id(new_id(d.id()));
        // Bridges and routers share the port namespace (`device_id`), so ids are unique across both.
        self.ensure_new::<D>(d.id())?;
        self.ensure_new::<Other>(d.id())?;
        self.check_device(&d)?;
        Ok(self.save(d))
    }

    fn update_device<D: Resource + Device>(&mut self, d: D) -> Result<Arc<D>> {
        self.snap.find::<D>(d.id())?;
        self.check_device(&d)?;
        Ok(self.save(d))
    }

    fn check_device<D: Device>(&self, d: &D) -> Result<()> {
        check_name("name", d.name())?;
        let (inbound, outbound) = d.filters();
        self.check_filters(inbound, outbound)
    }

    /// Creates a bridge.
    pub fn create_bridge(&mut self, b: Bridge) -> Result<Arc<Bridge>> {
        self.create_device::<Bridge, Router>(b)
    }

    /// Replaces a bridge.
    pub fn update_bridge(&mut self, b: Bridge) -> Result<Arc<Bridge>> {
        self.update_device(b)
    }

    /// Deletes a bridge without ports, and its DHCP subnets.
    pub fn delete_bridge(&mut self, id: Uuid) -> Result<()> {
        self.snap.find::<Bridge>(id)?;
        let port = self.snap.ports_of(id).next().map(|p| ("port", p.id));
        Self::referenced::<Bridge>(id, port)?;
        let subnets: Vec<Uuid> = self.snap.dhcp_subnets_of(id).map(|d| d.id).collect();
        for s in subnets {
            self.erase::<DhcpSubnet>(s);
        }
        self.snap.bridge_dhcp.remove(&id);
        self.erase::<Bridge>(id);
        Ok(())
    }

    /// Creates a router.
    pub fn create_router(&mut self, r: Router) -> Result<Arc<Router>> {
        self.create_device::<Router, Bridge>(r)
    }

    /// Replaces a router.
    pub fn update_router(&mut self, r: Router) -> Result<Arc<Router>> {
        self.update_device(r)
    }

    /// Deletes a router without ports, and its routes.
    pub fn delete_router(&mut self, id: Uuid) -> Result<()> {
        self.snap.find::<Router>(id)?;
        let port = self.snap.ports_of(id).next().map(|p| ("port", p.id));
        Self::referenced::<Router>(id, port)?;
        let routes: Vec<Uuid> = self.snap.routes_of(id).map(|r| r.id).collect();
        for r in routes {
            self.erase::<Route>(r);
        }
        self.snap.router_routes.remove(&id);
        self.erase::<Router>(id);
        Ok(())
    }

    // ---- ports ----

    fn allocate_tunnel_key(&mut self) -> Result<u32> {
        let mut k = self.snap.next_tunnel_key.clamp(1, MAX_TUNNEL_KEY);
        for _ in 0..MAX_TUNNEL_KEY {
            let next = k % MAX_TUNNEL_KEY + 1;
            if !self.snap.tunnel_keys.contains_key(&k) {
                // Advancing a cursor instead of taking the lowest free key keeps a freed key
                // unused for as long as possible, so stale flows carrying it find nothing.
                self.snap.next_tunnel_key = next;
                let bytes = serde_json::to_vec(&next).expect("u32 serialises");
                self.writes.insert(NEXT_TUNNEL_KEY.to_owned(), Some(bytes));
                return Ok(k);
            }
            k = next;
        }
        Err(Error::TunnelKeysExhausted)
    }

    fn generate_mac(&self, id: Uuid) -> MacAddr {
        // Locally administered unicast (02:…), derived from the port id so it is stable; walk
        // the id's bytes, then count, until one is free.
        let b = id.as_bytes();
        let mut candidate = [0x02, b[0], b[1], b[2], b[3], b[4]];
        for i in 0..=u32::MAX {
            if !self.snap.router_macs.contains_key(&MacAddr(candidate)) {
                break;
            }
            let n = i.to_be_bytes();
            candidate = [
                0x02,
                b[5] ^ n[0],
                b[6] ^ n[1],
                b[7] ^ n[2],
                b[8] ^ n[3],
                b[9],
            ];
        }
        MacAddr(candidate)
    }

    fn check_port(&self, kind: DeviceKind, p: &Port) -> Result<()> {
        self.check_filters(p.inbound_filter_id, p.outbound_filter_id)?;
        match kind {
            DeviceKind::Bridge => {
                if p.mac.is_some() {
                    return Err(Error::invalid("mac", "bridge ports have no MAC"));
                }
                if p.address.is_some() {
                    return Err(Error::invalid("address", "bridge ports have no address"));
                }
            }
            DeviceKind::Router => {
                let Some(addr) = p.address else {
                    return Err(Error::invalid("address", "router ports need an address"));
                };
                if let IpNet::V4(v4) = addr {
                    if v4.prefix_len() < 31
                        && (v4.addr() == v4.network() || v4.addr() == v4.broadcast())
                    {
                        return Err(Error::invalid(
                            "address",
                            format!("{addr} is the network or broadcast address of its subnet"),
                        ));
                    }
                }
                if let Some(mac) = p.mac {
                    if mac.is_multicast() || mac == MacAddr::default() {
                        return Err(Error::invalid("mac", format!("{mac} is not a unicast MAC")));
                    }
                    if let Some(other) = self.snap.router_macs.get(&mac) {
                        if *other != p.id {
                            return Err(Error::conflict(
                                Some("mac"),
                                format!("port {other} already has MAC {mac}"),
                            ));
                        }
                    }
                }
                for q in self.snap.ports_of(p.device_id) {
                    if q.id == p.id {
                        continue;
                    }
                    if let Some(qa) = q.address {
                        if overlaps(&qa.trunc(), &addr.trunc()) {
                            return Err(Error::conflict(
                                Some("address"),
                                format!("{addr} overlaps {qa} of port {} on the same router", q.id),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Creates a port on a bridge or router; allocates its tunnel key (and MAC on routers).
    /// Links and bindings are made with [`Txn::link`] and [`Txn::bind`].
    pub fn create_port(&mut self, device: Uuid, mut p: Port) -> Result<Arc<Port>> {
        let kind = self
            .snap
            .device_kind(device)
            .ok_or_else(|| Error::not_found("device", device))?;
        p.id = new_id(p.id);
        self.ensure_new::<Port>(p.id)?;
        p.device_id = device;
        p.peer_id = None;
        p.host_id = None;
        p.interface_name = None;
        p.ofport = None;
        p.up = false;
        if kind == DeviceKind::Router && p.mac.is_none() && p.address.is_some() {
            p.mac = Some(self.generate_mac(p.id));
        }
        self.check_port(kind, &p)?;
        p.tunnel_key = self.allocate_tunnel_key()?;
        self.snap.index_port(&p);
        Ok(self.save(p))
    }

    fn put_port(&mut self, old: &Port, p: Port) -> Arc<Port> {
        self.snap.unindex_port(old);
        self.snap.index_port(&p);
        self.save(p)
    }

    /// Replaces a port's settings. Device, tunnel key, link and binding are kept.
    pub fn update_port(&mut self, mut p: Port) -> Result<Arc<Port>> {
        let old = self.snap.find::<Port>(p.id)?.clone();
        let kind = self
            .snap
            .device_kind(old.device_id)
            .ok_or_else(|| Error::not_found("device", old.device_id))?;
        p.device_id = old.device_id;
        p.tunnel_key = old.tunnel_key;
        p.peer_id = old.peer_id;
        p.host_id = old.host_id;
        p.interface_name = old.interface_name.clone();
        p.ofport = None;
        p.up = false;
        if kind == DeviceKind::Router && p.mac.is_none() {
            p.mac = old.mac;
        }
        self.check_port(kind, &p)?;
        if let Some(addr) = p.address {
            // Routes through this port must keep their gateway on its (possibly new) subnet.
            let stranded = self.snap.routes_of(p.device_id).find(|r| {
                r.next_hop_port == Some(p.id)
                    && r.next_hop_gateway
                        .is_some_and(|gw| !addr.trunc().contains(&gw))
            });
            if let Some(r) = stranded {
                return Err(Error::conflict(
                    Some("address"),
                    format!(
                        "route {} has a gateway outside {}; change or delete it first",
                        r.id,
                        addr.trunc()
                    ),
                ));
            }
        }
        Ok(self.put_port(&old, p))
    }

    /// Deletes a port that is not linked and that no route, rule or port group names.
    pub fn delete_port(&mut self, id: Uuid) -> Result<()> {
        let p = self.snap.find::<Port>(id)?.clone();
        Self::referenced::<Port>(id, p.peer_id.map(|peer| ("port", peer)))?;
        let route = self
            .snap
            .routes_of(p.device_id)
            .find(|r| r.next_hop_port == Some(id))
            .map(|r| ("route", r.id));
        Self::referenced::<Port>(id, route)?;
        let rule = self
            .snap
            .rules
            .values()
            .find(|r| r.condition.in_ports.contains(&id) || r.condition.out_ports.contains(&id))
            .map(|r| ("rule", r.id));
        Self::referenced::<Port>(id, rule)?;
        let group = self
            .snap
            .port_groups
            .values()
            .find(|g| g.port_ids.contains(&id))
            .map(|g| ("port group", g.id));
        Self::referenced::<Port>(id, group)?;
        self.snap.unindex_port(&p);
        self.erase::<Port>(id);
        Ok(())
    }

    /// Links two ports: a router port with a bridge port, or two router ports.
    pub fn link(&mut self, id: Uuid, peer: Uuid) -> Result<Arc<Port>> {
        let a = self.snap.find::<Port>(id)?.clone();
        let b = match self.snap.get::<Port>(peer) {
            Some(b) => b.clone(),
            None => return Err(Error::invalid("peer_id", format!("no port {peer}"))),
        };
        if a.peer_id == Some(peer) && b.peer_id == Some(id) {
            return Ok(a);
        }
        if id == peer {
            return Err(Error::invalid(
                "peer_id",
                "a port cannot be linked to itself",
            ));
        }
        let ka = self.snap.device_kind(a.device_id);
        let kb = self.snap.device_kind(b.device_id);
        if ka != Some(DeviceKind::Router) && kb != Some(DeviceKind::Router) {
            return Err(Error::invalid(
                "peer_id",
                "a link joins a router port to a bridge port or to another router port",
            ));
        }
        if a.device_id == b.device_id {
            return Err(Error::invalid(
                "peer_id",
                "both ports are on the same device",
            ));
        }
        for (p, field) in [(&a, None), (&b, Some("peer_id"))] {
            if let Some(other) = p.peer_id {
                return Err(Error::conflict(
                    field,
                    format!("port {} is already linked to port {other}", p.id),
                ));
            }
            if let Some(h) = p.host_id {
                return Err(Error::conflict(
                    field,
                    format!(
                        "port {} is bound to host {h}; a port is linked or bound",
                        p.id
                    ),
                ));
            }
        }
        let mut na = Port::clone(&a);
        na.peer_id = Some(peer);
        let mut nb = Port::clone(&b);
        nb.peer_id = Some(id);
        self.put_port(&b, nb);
        Ok(self.put_port(&a, na))
    }

    /// Unlinks a port from its peer (nothing to do when it is not linked).
    pub fn unlink(&mut self, id: Uuid) -> Result<Arc<Port>> {
        let a = self.snap.find::<Port>(id)?.clone();
        let Some(peer) = a.peer_id else {
            return Ok(a);
        };
        if let Some(b) = self.snap.get::<Port>(peer).cloned() {
            let mut nb = Port::clone(&b);
            nb.peer_id = None;
            self.put_port(&b, nb);
        }
        let mut na = Port::clone(&a);
        na.peer_id = None;
        Ok(self.put_port(&a, na))
    }

    /// Binds a port to an OVS interface on a host.
    pub fn bind(&mut self, id: Uuid, b: Binding) -> Result<Arc<Port>> {
        let p = self.snap.find::<Port>(id)?.clone();
        self.refers::<Host>("host_id", Some(b.host_id))?;
        if b.interface_name.is_empty() || b.interface_name.len() > 255 {
            return Err(Error::invalid("interface_name", "must be 1 to 255 bytes"));
        }
        check_name("interface_name", &b.interface_name)?;
        if let Some(peer) = p.peer_id {
            return Err(Error::conflict(
                None,
                format!("port {id} is linked to port {peer}; a port is linked or bound"),
            ));
        }
        if let Some(other) = self.snap.port_by_binding(b.host_id, &b.interface_name) {
            if other.id != id {
                return Err(Error::conflict(
                    Some("interface_name"),
                    format!(
                        "interface {} on host {} is already bound to port {}",
                        b.interface_name, b.host_id, other.id
                    ),
                ));
            }
        }
        let mut np = Port::clone(&p);
        np.host_id = Some(b.host_id);
        np.interface_name = Some(b.interface_name);
        Ok(self.put_port(&p, np))
    }

    /// Removes a port's binding (nothing to do when it is not bound).
    pub fn unbind(&mut self, id: Uuid) -> Result<Arc<Port>> {
        let p = self.snap.find::<Port>(id)?.clone();
        if p.host_id.is_none() && p.interface_name.is_none() {
            return Ok(p);
        }
        let mut np = Port::clone(&p);
        np.host_id = None;
        np.interface_name = None;
        Ok(self.put_port(&p, np))
    }

    // ---- routes ----

    fn check_route(&self, r: &Route) -> Result<()> {
        check_prefix("dst", &r.dst)?;
        check_prefix("src", &r.src)?;
        if r.dst.addr().is_ipv4() != r.src.addr().is_ipv4() {
            return Err(Error::invalid(
                "src",
                "src and dst must be the same IP family",
            ));
        }
        if let Some(gw) = r.next_hop_gateway {
            if !same_family(&gw, &r.dst.addr()) {
                return Err(Error::invalid(
                    "next_hop_gateway",
                    "gateway and dst must be the same IP family",
                ));
            }
        }
        match r.next_hop_port {
            None if r.route_type == RouteType::Normal => Err(Error::invalid(
                "next_hop_port",
                "a normal route needs a next-hop port",
            )),
            None => Ok(()),
            Some(pid) => {
                let Some(p) = self.snap.get::<Port>(pid) else {
                    return Err(Error::invalid("next_hop_port", format!("no port {pid}")));
                };
                if p.device_id != r.router_id {
                    return Err(Error::invalid(
                        "next_hop_port",
                        format!("port {pid} does not belong to router {}", r.router_id),
                    ));
                }
                if let (Some(gw), Some(addr)) = (r.next_hop_gateway, p.address) {
                    if !addr.trunc().contains(&gw) {
                        return Err(Error::invalid(
                            "next_hop_gateway",
                            format!("{gw} is not in the next-hop port's subnet {}", addr.trunc()),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// Adds a route to a router.
    pub fn create_route(&mut self, router: Uuid, mut r: Route) -> Result<Arc<Route>> {
        self.snap.find::<Router>(router)?;
        r.id = new_id(r.id);
        self.ensure_new::<Route>(r.id)?;
        r.router_id = router;
        self.check_route(&r)?;
        Snapshot::index_child(&mut self.snap.router_routes, router, r.id);
        Ok(self.save(r))
    }

    /// Replaces a route (its router is kept).
    pub fn update_route(&mut self, mut r: Route) -> Result<Arc<Route>> {
        r.router_id = self.snap.find::<Route>(r.id)?.router_id;
        self.check_route(&r)?;
        Ok(self.save(r))
    }

    /// Deletes a route.
    pub fn delete_route(&mut self, id: Uuid) -> Result<()> {
        let r = self.snap.find::<Route>(id)?.clone();
        Snapshot::unindex_child(&mut self.snap.router_routes, r.router_id, id);
        self.erase::<Route>(id);
        Ok(())
    }

    // ---- chains and rules ----

    /// Creates an empty chain.
    pub fn create_chain(&mut self, mut c: Chain) -> Result<Arc<Chain>> {
        c.id = new_id(c.id);
        self.ensure_new::<Chain>(c.id)?;
        check_name("name", &c.name)?;
        c.rule_ids.clear();
        Ok(self.save(c))
    }

    /// Renames a chain (its rules are kept).
    pub fn update_chain(&mut self, mut c: Chain) -> Result<Arc<Chain>> {
        let old = self.snap.find::<Chain>(c.id)?;
        check_name("name", &c.name)?;
        c.rule_ids = old.rule_ids.clone();
        Ok(self.save(c))
    }

    /// Deletes a chain and its rules, unless a device, port or another chain's rule uses it.
    pub fn delete_chain(&mut self, id: Uuid) -> Result<()> {
        let c = self.snap.find::<Chain>(id)?.clone();
        let uses = |i: Option<Uuid>, o: Option<Uuid>| i == Some(id) || o == Some(id);
        let by = self
            .snap
            .bridges
            .values()
            .find(|b| uses(b.inbound_filter_id, b.outbound_filter_id))
            .map(|b| ("bridge", b.id))
            .or_else(|| {
                self.snap
                    .routers
                    .values()
                    .find(|r| uses(r.inbound_filter_id, r.outbound_filter_id))
                    .map(|r| ("router", r.id))
            })
            .or_else(|| {
                self.snap
                    .ports
                    .values()
                    .find(|p| uses(p.inbound_filter_id, p.outbound_filter_id))
                    .map(|p| ("port", p.id))
            })
            .or_else(|| {
                self.snap
                    .rules
                    .values()
                    .find(|r| r.chain_id != id && r.jump_chain_id == Some(id))
                    .map(|r| ("rule", r.id))
            });
        Self::referenced::<Chain>(id, by)?;
        for r in &c.rule_ids {
            self.erase::<Rule>(*r);
        }
        self.erase::<Chain>(id);
        Ok(())
    }

    /// True when `to` can reach `from` through jumps (so a jump from→to closes a cycle).
    fn jump_reaches(&self, start: Uuid, target: Uuid) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![start];
        while let Some(c) = stack.pop() {
            if c == target {
                return true;
            }
            if !seen.insert(c) {
                continue;
            }
            stack.extend(self.snap.rules_of(c).filter_map(|r| r.jump_chain_id));
        }
        false
    }

    fn check_rule(&self, r: &Rule) -> Result<()> {
        match (r.action, r.jump_chain_id) {
            (RuleAction::Jump, None) => {
                return Err(Error::invalid(
                    "jump_chain_id",
                    "a jump rule needs a target chain",
                ))
            }
            (RuleAction::Jump, Some(t)) => {
                self.refers::<Chain>("jump_chain_id", Some(t))?;
                if self.jump_reaches(t, r.chain_id) {
                    return Err(Error::invalid(
                        "jump_chain_id",
                        format!("jumping to chain {t} would form a cycle"),
                    ));
                }
            }
            (_, Some(_)) => {
                return Err(Error::invalid(
                    "jump_chain_id",
                    "only jump rules have a target chain",
                ))
            }
            (_, None) => {}
        }
        let nat = matches!(r.action, RuleAction::Dnat | RuleAction::Snat);
        if nat && r.nat_targets.is_empty() {
            return Err(Error::invalid(
                "nat_targets",
                "dnat and snat need at least one target",
            ));
        }
        if !nat && !r.nat_targets.is_empty() {
            return Err(Error::invalid(
                "nat_targets",
                "only dnat and snat rules have targets",
            ));
        }
        for (i, t) in r.nat_targets.iter().enumerate() {
            let f = |name: &str| format!("nat_targets[{i}].{name}");
            if !same_family(&t.address_from, &t.address_to) {
                return Err(Error::invalid(
                    f("address_to"),
                    "not the family of address_from",
                ));
            }
            if t.address_from > t.address_to {
                return Err(Error::invalid(f("address_to"), "is below address_from"));
            }
            if t.port_from > t.port_to {
                return Err(Error::invalid(f("port_to"), "is below port_from"));
            }
            if t.port_from == 0 && t.port_to != 0 {
                return Err(Error::invalid(
                    f("port_from"),
                    "0 means keep the port; give both ports or neither",
                ));
            }
        }
        let c = &r.condition;
        for (field, range) in [("tp_src", c.tp_src), ("tp_dst", c.tp_dst)] {
            if let Some(pr) = range {
                if pr.start > pr.end {
                    return Err(Error::invalid(format!("{field}.end"), "is below start"));
                }
            }
        }
        if let Some(n) = &c.nw_src {
            check_prefix("nw_src", n)?;
        }
        if let Some(n) = &c.nw_dst {
            check_prefix("nw_dst", n)?;
        }
        if c.match_forward_flow && c.match_return_flow {
            return Err(Error::invalid(
                "match_return_flow",
                "a rule matches forward flows or return flows, not both",
            ));
        }
        for (field, ports) in [("in_ports", &c.in_ports), ("out_ports", &c.out_ports)] {
            check_dups(field, ports)?;
            for (i, p) in ports.iter().enumerate() {
                self.refers::<Port>(&format!("{field}[{i}]"), Some(*p))?;
            }
        }
        self.refers::<PortGroup>("port_group_id", c.port_group_id)?;
        self.refers::<IpAddrGroup>("ip_addr_group_src", c.ip_addr_group_src)?;
        self.refers::<IpAddrGroup>("ip_addr_group_dst", c.ip_addr_group_dst)
    }

    fn place_rule(&mut self, chain: Uuid, id: Uuid, position: u32) -> Result<()> {
        let mut c = Chain::clone(self.snap.find::<Chain>(chain)?);
        c.rule_ids.retain(|r| *r != id);
        let len = c.rule_ids.len();
        let at = match position {
            0 => len,
            p if (p as usize) <= len + 1 => p as usize - 1,
            _ => {
                return Err(Error::invalid(
                    "position",
                    format!("must be 1..={} (or 0 to append)", len + 1),
                ))
            }
        };
        c.rule_ids.insert(at, id);
        self.save(c);
        Ok(())
    }

    /// Inserts a rule at `rule.position` (1-based; 0 appends) in a chain.
    pub fn create_rule(&mut self, chain: Uuid, mut r: Rule) -> Result<Rule> {
        self.snap.find::<Chain>(chain)?;
        r.id = new_id(r.id);
        self.ensure_new::<Rule>(r.id)?;
        r.chain_id = chain;
        self.check_rule(&r)?;
        self.place_rule(chain, r.id, r.position)?;
        self.finish_rule(r)
    }

    /// Replaces a rule; a non-zero `position` moves it.
    pub fn update_rule(&mut self, mut r: Rule) -> Result<Rule> {
        r.chain_id = self.snap.find::<Rule>(r.id)?.chain_id;
        self.check_rule(&r)?;
        if r.position != 0 {
            self.place_rule(r.chain_id, r.id, r.position)?;
        }
        self.finish_rule(r)
    }

    fn finish_rule(&mut self, mut r: Rule) -> Result<Rule> {
        let id = r.id;
        // Positions are derived from the chain's order; a stored one would go stale.
        r.position = 0;
        self.save(r);
        self.snap
            .rule_with_position(id)
            .ok_or_else(|| Error::not_found("rule", id))
    }

    /// Deletes a rule.
    pub fn delete_rule(&mut self, id: Uuid) -> Result<()> {
        let r = self.snap.find::<Rule>(id)?.clone();
        if let Some(c) = self.snap.get::<Chain>(r.chain_id) {
            let mut c = Chain::clone(c);
            c.rule_ids.retain(|x| *x != id);
            self.save(c);
        }
        self.erase::<Rule>(id);
        Ok(())
    }

    // ---- port groups and IP address groups ----

    fn check_port_group(&self, g: &PortGroup) -> Result<()> {
        check_name("name", &g.name)?;
        check_dups("port_ids", &g.port_ids)?;
        for (i, p) in g.port_ids.iter().enumerate() {
            self.refers::<Port>(&format!("port_ids[{i}]"), Some(*p))?;
        }
        Ok(())
    }

    /// Creates a port group.
    pub fn create_port_group(&mut self, mut g: PortGroup) -> Result<Arc<PortGroup>> {
        g.id = new_id(g.id);
        self.ensure_new::<PortGroup>(g.id)?;
        self.check_port_group(&g)?;
        Ok(self.save(g))
    }

    /// Replaces a port group.
    pub fn update_port_group(&mut self, g: PortGroup) -> Result<Arc<PortGroup>> {
        self.snap.find::<PortGroup>(g.id)?;
        self.check_port_group(&g)?;
        Ok(self.save(g))
    }

    /// Deletes a port group no rule uses.
    pub fn delete_port_group(&mut self, id: Uuid) -> Result<()> {
        self.snap.find::<PortGroup>(id)?;
        let rule = self
            .snap
            .rules
            .values()
            .find(|r| r.condition.port_group_id == Some(id))
            .map(|r| ("rule", r.id));
        Self::referenced::<PortGroup>(id, rule)?;
        self.erase::<PortGroup>(id);
        Ok(())
    }

    fn check_ip_addr_group(&self, g: &IpAddrGroup) -> Result<()> {
        check_name("name", &g.name)?;
        check_dups("addresses", &g.addresses)
    }

    /// Creates an IP address group.
    pub fn create_ip_addr_group(&mut self, mut g: IpAddrGroup) -> Result<Arc<IpAddrGroup>> {
        g.id = new_id(g.id);
        self.ensure_new::<IpAddrGroup>(g.id)?;
        self.check_ip_addr_group(&g)?;
        Ok(self.save(g))
    }

    /// Replaces an IP address group.
    pub fn update_ip_addr_group(&mut self, g: IpAddrGroup) -> Result<Arc<IpAddrGroup>> {
        self.snap.find::<IpAddrGroup>(g.id)?;
        self.check_ip_addr_group(&g)?;
        Ok(self.save(g))
    }

    /// Deletes an IP address group no rule uses.
    pub fn delete_ip_addr_group(&mut self, id: Uuid) -> Result<()> {
        self.snap.find::<IpAddrGroup>(id)?;
        let rule = self
            .snap
            .rules
            .values()
            .find(|r| {
                r.condition.ip_addr_group_src == Some(id)
                    || r.condition.ip_addr_group_dst == Some(id)
            })
            .map(|r| ("rule", r.id));
        Self::referenced::<IpAddrGroup>(id, rule)?;
        self.erase::<IpAddrGroup>(id);
        Ok(())
    }

    // ---- DHCP ----

    fn check_dhcp(&self, d: &DhcpSubnet) -> Result<()> {
        let IpNet::V4(_) = d.subnet else {
            return Err(Error::invalid("subnet", "DHCP subnets are IPv4"));
        };
        check_prefix("subnet", &d.subnet)?;
        let v4 = |field: &str, a: &IpAddr| {
            if a.is_ipv4() {
                Ok(())
            } else {
                Err(Error::invalid(field, format!("{a} is not IPv4")))
            }
        };
        for (field, a) in [("gateway", &d.gateway), ("server_addr", &d.server_addr)] {
            if let Some(a) = a {
                v4(field, a)?;
                if !d.subnet.contains(a) {
                    return Err(Error::invalid(
                        field,
                        format!("{a} is outside {}", d.subnet),
                    ));
                }
            }
        }
        for (i, a) in d.dns_servers.iter().enumerate() {
            v4(&format!("dns_servers[{i}]"), a)?;
        }
        if d.mtu.is_some_and(|m| m < 68) {
            return Err(Error::invalid("mtu", "must be at least 68"));
        }
        for (i, r) in d.opt121_routes.iter().enumerate() {
            if !r.dest.addr().is_ipv4() {
                return Err(Error::invalid(
                    format!("opt121_routes[{i}].dest"),
                    "not IPv4",
                ));
            }
            check_prefix(&format!("opt121_routes[{i}].dest"), &r.dest)?;
            v4(&format!("opt121_routes[{i}].gateway"), &r.gateway)?;
        }
        for s in self.snap.dhcp_subnets_of(d.bridge_id) {
            if s.id != d.id && overlaps(&s.subnet, &d.subnet) {
                return Err(Error::conflict(
                    Some("subnet"),
                    format!(
                        "{} overlaps subnet {} ({}) on this bridge",
                        d.subnet, s.id, s.subnet
                    ),
                ));
            }
        }
        for (i, h) in d.hosts.iter().enumerate() {
            if !d.subnet.contains(&h.ip) {
                return Err(Error::invalid(
                    format!("hosts[{i}].ip"),
                    format!("{} is outside {}", h.ip, d.subnet),
                ));
            }
        }
        Ok(())
    }

    /// Creates a DHCP subnet on a bridge.
    pub fn create_dhcp_subnet(
        &mut self,
        bridge: Uuid,
        mut d: DhcpSubnet,
    ) -> Result<Arc<DhcpSubnet>> {
        self.snap.find::<Bridge>(bridge)?;
        d.id = new_id(d.id);
        self.ensure_new::<DhcpSubnet>(d.id)?;
        d.bridge_id = bridge;
        d.hosts.clear();
        self.check_dhcp(&d)?;
        Snapshot::index_child(&mut self.snap.bridge_dhcp, bridge, d.id);
        Ok(self.save(d))
    }

    /// Replaces a DHCP subnet's settings, keeping its hosts (which must still fit).
    pub fn update_dhcp_subnet(&mut self, mut d: DhcpSubnet) -> Result<Arc<DhcpSubnet>> {
        let old = self.snap.find::<DhcpSubnet>(d.id)?;
        d.bridge_id = old.bridge_id;
        d.hosts = old.hosts.clone();
        self.check_dhcp(&d)?;
        Ok(self.save(d))
    }

    /// Deletes a DHCP subnet and its hosts.
    pub fn delete_dhcp_subnet(&mut self, id: Uuid) -> Result<()> {
        let d = self.snap.find::<DhcpSubnet>(id)?.clone();
        Snapshot::unindex_child(&mut self.snap.bridge_dhcp, d.bridge_id, id);
        self.erase::<DhcpSubnet>(id);
        Ok(())
    }

    /// Adds (`replace` false) or replaces (`replace` true) the static lease of a MAC.
    pub fn put_dhcp_host(&mut self, subnet: Uuid, h: DhcpHost, replace: bool) -> Result<DhcpHost> {
        let mut d = DhcpSubnet::clone(self.snap.find::<DhcpSubnet>(subnet)?);
        if h.mac.is_multicast() {
            return Err(Error::invalid(
                "mac",
                format!("{} is not a unicast MAC", h.mac),
            ));
        }
        if !d.subnet.contains(&h.ip) {
            return Err(Error::invalid(
                "ip",
                format!("{} is outside {}", h.ip, d.subnet),
            ));
        }
        if let Some(n) = &h.name {
            check_name("name", n)?;
        }
        let existing = d.hosts.iter().position(|x| x.mac == h.mac);
        match (existing, replace) {
            (Some(_), false) => {
                return Err(Error::conflict(
                    Some("mac"),
                    format!("{} already has a lease in subnet {subnet}", h.mac),
                ))
            }
            (None, true) => return Err(Error::not_found("DHCP host", h.mac)),
            _ => {}
        }
        if let Some(o) = d.hosts.iter().find(|x| x.ip == h.ip && x.mac != h.mac) {
            return Err(Error::conflict(
                Some("ip"),
                format!("{} is already leased to {}", h.ip, o.mac),
            ));
        }
        match existing {
            Some(i) => d.hosts[i] = h.clone(),
            None => d.hosts.push(h.clone()),
        }
        self.save(d);
        Ok(h)
    }

    /// Removes the static lease of a MAC.
    pub fn delete_dhcp_host(&mut self, subnet: Uuid, mac: MacAddr) -> Result<()> {
        let mut d = DhcpSubnet::clone(self.snap.find::<DhcpSubnet>(subnet)?);
        let before = d.hosts.len();
        d.hosts.retain(|h| h.mac != mac);
        if d.hosts.len() == before {
            return Err(Error::not_found("DHCP host", mac));
        }
        self.save(d);
        Ok(())
    }

    pub(crate) fn into_ops(self) -> (Snapshot, Vec<Op>, BTreeSet<Uuid>) {
        let ops = self
            .writes
            .into_iter()
            .map(|(key, v)| match v {
                Some(value) => Op::Put { key, value },
                None => Op::Delete { key },
            })
            .collect();
        (self.snap, ops, self.touched)
    }
}
