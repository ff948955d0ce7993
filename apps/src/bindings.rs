//! Port bindings: which logical port is plugged where, and which tunnel port leads to which host.
//!
//! A pure, indexed value, rebuilt by the controller whenever a host's interfaces or the topology
//! change, and handed to the app as [`crate::Event::Bindings`]. It is built from two inputs:
//! the topology [`Snapshot`] (explicit bindings, `PUT /ports/{id}/binding`) and what each host's
//! OVSDB says is on its `br-int` ([`HostPorts`]).
//!
//! **The binding key** is `external_ids:iface-id` = the logical port's id (what OVN and Nova use).
//! An explicit binding names `(host, interface name)`: it resolves to that interface on that
//! host, whatever its iface-id says, and takes precedence over iface-ids naming the same port.
//! An iface-id naming a port that is explicitly bound elsewhere, naming no port at all, or
//! naming a port that another host plugged more recently, leaves the interface *unbound*: the
//! pipeline drops its packets with one flow, and REST lists it with the reason.
//!
//! The datapath id of a host's `br-int` is the model's ([`topology::model::datapath_id`]), so a
//! switch maps back to its host with no table surviving restarts.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use topology::model::{datapath_id, Port};
use topology::Snapshot;
use uuid::Uuid;

/// One interface on a host's `br-int`, as OVSDB shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The interface name.
    pub name: String,
    /// Its OpenFlow port number, once OVS assigned one.
    pub ofport: Option<u32>,
    /// `external_ids:iface-id`, if set.
    pub iface_id: Option<String>,
    /// When the controller first saw this interface carry this iface-id (any monotonic count):
    /// of two hosts plugging the same port id, the later one wins.
    pub seen: u64,
}

/// A tunnel port towards a peer host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// The host at the other end.
    pub peer: Uuid,
    /// Its OpenFlow port number here.
    pub ofport: u32,
}

/// Everything on one host's `br-int` that bindings are made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPorts {
    /// The host id.
    pub host: Uuid,
    /// VM and other non-tunnel interfaces.
    pub interfaces: Vec<Interface>,
    /// Tunnel ports, at most one per peer (the controller picks one when zones overlap).
    pub tunnels: Vec<Tunnel>,
}

/// Where a bound logical port is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The host.
    pub host: Uuid,
    /// That host's `br-int` datapath id.
    pub dpid: u64,
    /// The interface.
    pub interface: String,
    /// Its OpenFlow port.
    pub ofport: u32,
    /// The logical port's tunnel key.
    pub key: u32,
}

/// What an OpenFlow port of some `br-int` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// The interface of a bound logical port.
    Vif {
        /// The logical port.
        port: Uuid,
        /// Its tunnel key (the pipeline's metadata).
        key: u32,
    },
    /// A tunnel to another host.
    Tunnel {
        /// The host at the other end.
        peer: Uuid,
    },
    /// An interface no logical port is bound to: its packets are dropped.
    Unbound,
}

/// Why an interface is not bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnboundReason {
    /// It has no `iface-id` and no explicit binding names it.
    NoIfaceId,
    /// Its `iface-id` names no logical port.
    UnknownPort,
    /// The port it names is explicitly bound to another interface.
    BoundElsewhere,
    /// Another host plugged the same port id more recently.
    Superseded,
}

impl UnboundReason {
    /// A short machine-readable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            UnboundReason::NoIfaceId => "no_iface_id",
            UnboundReason::UnknownPort => "unknown_port",
            UnboundReason::BoundElsewhere => "bound_elsewhere",
            UnboundReason::Superseded => "superseded",
        }
    }
}

/// An interface that carries no logical port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnboundInterface {
    /// The host.
    pub host: Uuid,
    /// The interface.
    pub interface: String,
    /// Its OpenFlow port, if assigned.
    pub ofport: Option<u32>,
    /// Its `iface-id`, if any.
    pub iface_id: Option<String>,
    /// Why it is not bound.
    pub reason: UnboundReason,
}

/// The bindings of every host, indexed both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bindings {
    ports: FxHashMap<Uuid, Location>,
    /// By datapath, then OpenFlow port: a switch's pipeline reads only its own attachments, so
    /// building every switch's pipeline costs the attachments once, not once per switch (with
    /// a full tunnel mesh, N switches each scanning N² tunnel attachments made every bindings
    /// change O(N³)).
    attachments: FxHashMap<u64, BTreeMap<u32, Attachment>>,
    tunnels: FxHashMap<(Uuid, Uuid), u32>,
    hosts: FxHashMap<u64, Uuid>,
    unbound: Vec<UnboundInterface>,
}

impl Bindings {
    /// Resolves the bindings of `hosts` (hosts not in `snapshot` are ignored).
    pub fn build<'h>(
        snapshot: &Snapshot,
        hosts: impl IntoIterator<Item = &'h HostPorts>,
    ) -> Bindings {
        let mut b = Bindings::default();
        // port → (seen, host, interface): the iface-id claims, newest first wins.
        let mut claims: HashMap<Uuid, (u64, Uuid, &Interface)> = HashMap::new();
        let mut unbound: Vec<(Uuid, &Interface, UnboundReason)> = Vec::new();
        for hp in hosts {
            if snapshot.get::<topology::model::Host>(hp.host).is_none() {
                continue;
            }
            let dpid = datapath_id(hp.host);
            b.hosts.insert(dpid, hp.host);
            for t in &hp.tunnels {
                b.tunnels.insert((hp.host, t.peer), t.ofport);
                b.attach(dpid, t.ofport, Attachment::Tunnel { peer: t.peer });
            }
            for i in &hp.interfaces {
                if let Some(port) = snapshot.port_by_binding(hp.host, &i.name) {
                    b.bind(hp.host, dpid, i, port);
                    continue;
                }
                let Some(id) = &i.iface_id else {
                    unbound.push((hp.host, i, UnboundReason::NoIfaceId));
                    continue;
                };
                let port = id
                    .parse::<Uuid>()
                    .ok()
                    .and_then(|id| snapshot.get::<Port>(id));
                match port {
                    None => unbound.push((hp.host, i, UnboundReason::UnknownPort)),
                    Some(p) if p.host_id.is_some() => {
                        unbound.push((hp.host, i, UnboundReason::BoundElsewhere))
                    }
                    Some(p) => match claims.get(&p.id) {
                        Some((seen, _, _)) if *seen >= i.seen => {
                            unbound.push((hp.host, i, UnboundReason::Superseded))
                        }
                        _ => {
                            if let Some((_, h, old)) = claims.insert(p.id, (i.seen, hp.host, i)) {
                                unbound.push((h, old, UnboundReason::Superseded));
                            }
                        }
                    },
                }
            }
        }
        for (port, (_, host, i)) in claims {
            if let Some(p) = snapshot.get::<Port>(port) {
                b.bind(host, datapath_id(host), i, p);
            }
        }
        for (host, i, reason) in unbound {
            if let Some(ofport) = i.ofport {
                b.attach(datapath_id(host), ofport, Attachment::Unbound);
            }
            b.unbound.push(UnboundInterface {
                host,
                interface: i.name.clone(),
                ofport: i.ofport,
                iface_id: i.iface_id.clone(),
                reason,
            });
        }
        b.unbound
            .sort_by(|a, c| (a.host, &a.interface).cmp(&(c.host, &c.interface)));
        b
    }

    fn bind(&mut self, host: Uuid, dpid: u64, i: &Interface, port: &Port) {
        let Some(ofport) = i.ofport else { return };
        self.ports.insert(
            port.id,
            Location {
                host,
                dpid,
                interface: i.name.clone(),
                ofport,
                key: port.tunnel_key,
            },
        );
        self.attach(
            dpid,
            ofport,
            Attachment::Vif {
                port: port.id,
                key: port.tunnel_key,
            },
        );
    }

    fn attach(&mut self, dpid: u64, ofport: u32, a: Attachment) {
        self.attachments.entry(dpid).or_default().insert(ofport, a);
    }

    /// Where logical port `port` is plugged, if anywhere.
    pub fn port(&self, port: Uuid) -> Option<&Location> {
        self.ports.get(&port)
    }

    /// What OpenFlow port `ofport` of datapath `dpid` is.
    pub fn at(&self, dpid: u64, ofport: u32) -> Option<Attachment> {
        self.attachments.get(&dpid)?.get(&ofport).copied()
    }

    /// The OpenFlow port on `from`'s `br-int` of the tunnel to host `to`.
    pub fn tunnel(&self, from: Uuid, to: Uuid) -> Option<u32> {
        self.tunnels.get(&(from, to)).copied()
    }

    /// The host whose `br-int` has datapath id `dpid`, if it has reported its ports.
    pub fn host(&self, dpid: u64) -> Option<Uuid> {
        self.hosts.get(&dpid).copied()
    }

    /// The `br-int` datapath ids of every host with one.
    pub fn dpids(&self) -> impl Iterator<Item = u64> + '_ {
        self.hosts.keys().copied()
    }

    /// Every OpenFlow port of `dpid` and what it is, in port order.
    pub fn attachments_of(&self, dpid: u64) -> Vec<(u32, Attachment)> {
        self.attachments
            .get(&dpid)
            .map(|m| m.iter().map(|(p, a)| (*p, *a)).collect())
            .unwrap_or_default()
    }

    /// Whether `dpid` has the same OpenFlow ports, VIFs and tunnels in `self` and `other`: then
    /// nothing a switch's own pipeline or tunnels depend on changed between them.
    pub fn same_attachments(&self, other: &Bindings, dpid: u64) -> bool {
        self.attachments.get(&dpid) == other.attachments.get(&dpid)
    }

    /// Every bound port and its location.
    pub fn bound(&self) -> impl Iterator<Item = (Uuid, &Location)> + '_ {
        self.ports.iter().map(|(id, l)| (*id, l))
    }

    /// Interfaces that carry no logical port, by host and name.
    pub fn unbound(&self) -> &[UnboundInterface] {
        &self.unbound
    }

    /// The ports whose location differs between `self` and `other` (bound, unbound or moved).
    pub fn changed_ports(&self, other: &Bindings) -> Vec<Uuid> {
        let mut v: Vec<Uuid> = self
            .ports
            .iter()
            .filter(|(id, l)| other.ports.get(id) != Some(l))
            .map(|(id, _)| *id)
            .chain(
                other
                    .ports
                    .keys()
                    .filter(|id| !self.ports.contains_key(id))
                    .copied(),
            )
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::fixtures;
    use std::sync::Arc;
    use topology::model::Binding;

    struct Fixture {
        network: topology::Network,
        h1: Uuid,
        h2: Uuid,
        p1: Uuid,
        p2: Uuid,
    }

    fn fixture() -> Fixture {
        let network = topology::Network::open(Arc::new(topology::MemStore::new())).unwrap();
        let (ids, _) = network
            .write(|txn| {
                let mut hosts = vec![];
                for n in ["hv1", "hv2"] {
                    hosts.push(txn.create_host(fixtures::host(n))?.id);
                }
                let br = txn.create_bridge(fixtures::bridge("net", None))?.id;
                let p1 = txn.create_port(br, fixtures::bridge_port())?.id;
                let p2 = txn.create_port(br, fixtures::bridge_port())?.id;
                Ok((hosts[0], hosts[1], p1, p2))
            })
            .unwrap();
        Fixture {
            network,
            h1: ids.0,
            h2: ids.1,
            p1: ids.2,
            p2: ids.3,
        }
    }

    fn iface(name: &str, ofport: u32, id: Option<Uuid>, seen: u64) -> Interface {
        Interface {
            name: name.into(),
            ofport: Some(ofport),
            iface_id: id.map(|u| u.to_string()),
            seen,
        }
    }

    #[test]
    fn iface_id_binds_and_newest_host_wins() {
        let f = fixture();
        let snap = f.network.snapshot();
        let hosts = vec![
            HostPorts {
                host: f.h1,
                interfaces: vec![
                    iface("vm1", 1, Some(f.p1), 1),
                    iface("vm2", 2, Some(f.p2), 2),
                ],
                tunnels: vec![Tunnel {
                    peer: f.h2,
                    ofport: 9,
                }],
            },
            HostPorts {
                host: f.h2,
                // The same port id plugged later on hv2, and garbage.
                interfaces: vec![
                    iface("vm2b", 5, Some(f.p2), 7),
                    iface("junk", 6, Some(Uuid::new_v4()), 3),
                    iface("plain", 7, None, 4),
                ],
                tunnels: vec![],
            },
        ];
        let b = Bindings::build(&snap, &hosts);
        let d1 = datapath_id(f.h1);
        let d2 = datapath_id(f.h2);
        assert_eq!(b.port(f.p1).map(|l| (l.dpid, l.ofport)), Some((d1, 1)));
        assert_eq!(b.port(f.p2).map(|l| (l.dpid, l.ofport)), Some((d2, 5)));
        assert_eq!(b.at(d1, 2), Some(Attachment::Unbound));
        assert_eq!(b.at(d1, 9), Some(Attachment::Tunnel { peer: f.h2 }));
        assert_eq!(b.tunnel(f.h1, f.h2), Some(9));
        assert_eq!(b.host(d2), Some(f.h2));
        let reasons: Vec<_> = b
            .unbound()
            .iter()
            .map(|u| (u.interface.as_str(), u.reason.as_str()))
            .collect();
        assert!(reasons.contains(&("vm2", "superseded")), "{reasons:?}");
        assert!(reasons.contains(&("junk", "unknown_port")), "{reasons:?}");
        assert!(reasons.contains(&("plain", "no_iface_id")), "{reasons:?}");
        // Order of hosts does not matter.
        let mut rev = hosts.clone();
        rev.reverse();
        assert_eq!(Bindings::build(&snap, &rev).port(f.p2), b.port(f.p2));
    }

    #[test]
    fn explicit_binding_resolves_by_name_and_wins() {
        let f = fixture();
        f.network
            .write(|txn| {
                txn.bind(
                    f.p1,
                    Binding {
                        host_id: f.h2,
                        interface_name: "tap-x".into(),
                    },
                )
            })
            .unwrap();
        let snap = f.network.snapshot();
        let hosts = vec![
            HostPorts {
                host: f.h1,
                interfaces: vec![iface("vm1", 1, Some(f.p1), 9)],
                tunnels: vec![],
            },
            HostPorts {
                host: f.h2,
                interfaces: vec![iface("tap-x", 4, None, 1)],
                tunnels: vec![],
            },
        ];
        let b = Bindings::build(&snap, &hosts);
        assert_eq!(b.port(f.p1).map(|l| l.ofport), Some(4));
        assert_eq!(b.unbound()[0].reason, UnboundReason::BoundElsewhere);
        let before = Bindings::build(&snap, &hosts[..1]);
        assert_eq!(b.changed_ports(&before), vec![f.p1]);
    }
}
