//! The simulation: one packet walked through the logical topology, as a pure function.
//!
//! `simulate(ctx, ingress port, header) → Simulation` reads an immutable [`Context`] (the topology
//! snapshot, the bindings, the MAC tables) and returns what happens to the packet, the fields it
//! read, the tags of everything the result depended on, and the effects to apply afterwards (MAC
//! learning). It does no I/O, reads no clock and changes nothing, so the same code answers a
//! packet-in, re-checks an installed flow (the oracle of the tests) and will serve traces.
//!
//! The walk: port ingress → device → port egress → (interior port: the peer's ingress) … until an
//! exterior port, counted against a loop guard of [`MAX_DEVICES`] as MidoNet did. A flood forks:
//! every branch walks on with its own copy of the header, and their reads are unioned into the
//! one flow's match.

use smallvec::SmallVec;
use topology::model::{Bridge, Port};
use topology::{DeviceKind, Snapshot};
use uuid::Uuid;

use super::flowkey::{FieldSet, Header, Tracked};
use crate::bindings::Bindings;

/// How many device ingresses one packet may make before it is dropped as a loop.
pub const MAX_DEVICES: usize = 12;

/// A MAC table entry's port, by (bridge, MAC).
pub type MacTable = rustc_hash::FxHashMap<(Uuid, [u8; 6]), Uuid>;

/// What the simulation reads.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The topology.
    pub snapshot: &'a Snapshot,
    /// Where ports are.
    pub bindings: &'a Bindings,
    /// Learned MACs of every bridge.
    pub macs: &'a MacTable,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The ingress port does not exist (any more).
    UnknownPort,
    /// A port on the way is administratively down.
    PortDown,
    /// A device on the way is administratively down.
    DeviceDown,
    /// The destination was learned on the ingress port: it is already on that segment.
    SameSegment,
    /// A flood found no other port.
    NoEgress,
    /// More than [`MAX_DEVICES`] devices: a loop in the topology.
    Loop,
    /// A router port on the way: routing is not part of the engine yet, so nothing crosses a
    /// router and a packet for it is dropped, tagged with the router (so its flows go when
    /// routing arrives with a topology change).
    Router,
}

impl DropReason {
    /// Whether the drop says something about the topology (a normal, tagged drop flow) or is an
    /// error that should be retried soon (a short, untagged drop flow).
    pub fn is_error(self) -> bool {
        matches!(self, DropReason::UnknownPort | DropReason::Loop)
    }

    /// A short machine-readable name (counters, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownPort => "unknown_port",
            DropReason::PortDown => "port_down",
            DropReason::DeviceDown => "device_down",
            DropReason::SameSegment => "same_segment",
            DropReason::NoEgress => "no_egress",
            DropReason::Loop => "loop",
            DropReason::Router => "router",
        }
    }
}

/// What a flow depended on; a change to any of them must remove the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// A port's settings or binding.
    Port(Uuid),
    /// A device's settings or its set of ports.
    Device(Uuid),
    /// A learned MAC of a bridge: flows delivering to it.
    Mac(Uuid, [u8; 6]),
    /// Floods of a bridge for an unknown unicast destination: go once it is learned.
    Flood(Uuid, [u8; 6]),
}

/// One copy of the packet leaving the virtual network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    /// The exterior port it leaves by.
    pub port: Uuid,
    /// The header as it leaves (the diff against the ingress header becomes actions).
    pub header: Header,
}

/// Something to do once the simulation is done (never during it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `mac` was seen entering `bridge` from `port`.
    Learn {
        /// The bridge.
        bridge: Uuid,
        /// The source MAC.
        mac: [u8; 6],
        /// The port it came in by.
        port: Uuid,
    },
}

/// The result of one simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulation {
    /// Where copies go; empty means dropped (see `drop`).
    pub egress: SmallVec<[Egress; 2]>,
    /// Why nothing was sent, when `egress` is empty.
    pub drop: Option<DropReason>,
    /// The fields that decided the result: the flow's match.
    pub seen: FieldSet,
    /// What the result depended on.
    pub tags: SmallVec<[Tag; 6]>,
    /// To apply after the simulation.
    pub effects: SmallVec<[Effect; 1]>,
}

impl Simulation {
    /// Whether the result is an error drop (short, untagged flow).
    pub fn is_error(&self) -> bool {
        self.egress.is_empty() && self.drop.is_some_and(DropReason::is_error)
    }
}

struct Walk<'a> {
    ctx: Context<'a>,
    devices: usize,
    out: Simulation,
}

/// Simulates `header` entering the virtual network at logical port `ingress`.
pub fn simulate(ctx: Context<'_>, ingress: Uuid, header: Header) -> Simulation {
    let mut w = Walk {
        ctx,
        devices: 0,
        out: Simulation {
            egress: SmallVec::new(),
            drop: None,
            seen: FieldSet::EMPTY,
            tags: SmallVec::new(),
            effects: SmallVec::new(),
        },
    };
    let mut pkt = Tracked::new(header);
    if let Err(reason) = w.ingress(ingress, &mut pkt) {
        w.out.drop = Some(reason);
    }
    w.out.seen = w.out.seen.union(pkt.seen());
    if w.out.egress.is_empty() && w.out.drop.is_none() {
        w.out.drop = Some(DropReason::NoEgress);
    }
    if w.out.is_error() {
        // An error drop is short-lived and untagged: nothing it read makes it right later.
        w.out.tags.clear();
    }
    w.out.tags.sort_unstable();
    w.out.tags.dedup();
    w.out
}

impl Walk<'_> {
    fn tag(&mut self, t: Tag) {
        self.out.tags.push(t);
    }

    fn ingress(&mut self, port_id: Uuid, pkt: &mut Tracked) -> Result<(), DropReason> {
        self.devices += 1;
        if self.devices > MAX_DEVICES {
            return Err(DropReason::Loop);
        }
        let port = self
            .ctx
            .snapshot
            .get::<Port>(port_id)
            .ok_or(DropReason::UnknownPort)?
            .clone();
        self.tag(Tag::Port(port.id));
        if !port.admin_state_up {
            return Err(DropReason::PortDown);
        }
        match self.ctx.snapshot.device_kind(port.device_id) {
            Some(DeviceKind::Bridge) => self.bridge(port.device_id, &port, pkt),
            Some(DeviceKind::Router) => {
                self.tag(Tag::Device(port.device_id));
                Err(DropReason::Router)
            }
            None => Err(DropReason::UnknownPort),
        }
    }

    fn bridge(&mut self, id: Uuid, inport: &Port, pkt: &mut Tracked) -> Result<(), DropReason> {
        self.tag(Tag::Device(id));
        let up = self
            .ctx
            .snapshot
            .get::<Bridge>(id)
            .is_some_and(|b| b.admin_state_up);
        if !up {
            return Err(DropReason::DeviceDown);
        }
        let src = pkt.eth_src();
        if !is_multicast(&src) {
            self.out.effects.push(Effect::Learn {
                bridge: id,
                mac: src,
                port: inport.id,
            });
        }
        let dst = pkt.eth_dst();
        if !is_multicast(&dst) {
            if let Some(&port) = self.ctx.macs.get(&(id, dst)) {
                self.tag(Tag::Mac(id, dst));
                if port == inport.id {
                    return Err(DropReason::SameSegment);
                }
                return self.egress(port, pkt);
            }
            self.tag(Tag::Flood(id, dst));
        }
        // Flood: every other port of the bridge, each branch with its own header copy. A port
        // that fails (down, a loop behind it) only loses its own copy.
        let snapshot = self.ctx.snapshot;
        let mut seen = FieldSet::EMPTY;
        for p in snapshot.ports_of(id) {
            if p.id == inport.id {
                continue;
            }
            let mut branch = *pkt;
            let r = self.egress(p.id, &mut branch);
            seen = seen.union(branch.seen());
            if r == Err(DropReason::Loop) {
                return r;
            }
        }
        pkt.absorb(seen);
        Ok(())
    }

    fn egress(&mut self, port_id: Uuid, pkt: &mut Tracked) -> Result<(), DropReason> {
        let Some(port) = self.ctx.snapshot.get::<Port>(port_id) else {
            return Err(DropReason::UnknownPort);
        };
        self.tag(Tag::Port(port.id));
        if !port.admin_state_up {
            return Err(DropReason::PortDown);
        }
        if let Some(peer) = port.peer_id {
            return self.ingress(peer, pkt);
        }
        // An exterior port that is not plugged anywhere has nowhere to send; its binding is
        // part of what the flow depends on (the port tag), so plugging it re-simulates.
        if self.ctx.bindings.port(port.id).is_some() {
            self.out.egress.push(Egress {
                port: port.id,
                header: *pkt.header(),
            });
        }
        Ok(())
    }
}

fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}
