//! The simulation: one packet walked through the logical topology, as a pure function.
//!
//! `simulate(ctx, start, header) → Simulation` reads an immutable [`Context`] (the topology
//! snapshot and its derived [`Index`], the bindings, the MAC tables, the routers' ARP caches)
//! and returns what happens to the packet, the fields it read, the tags of everything the result
//! depended on, the packets the virtual devices answer with, and the effects to apply
//! afterwards (MAC and ARP learning). It does no I/O, reads no clock and changes nothing, so the
//! same code answers a packet-in, re-checks an installed flow (the oracle of the tests) and will
//! serve traces.
//!
//! The walk: port ingress → device → port egress → (interior port: the peer's ingress) … until an
//! exterior port, counted against a loop guard of [`MAX_DEVICES`] as MidoNet did. A flood forks:
//! every branch walks on with its own copy of the header, and their reads are unioned into the
//! one flow's match.
//!
//! Devices:
//! - a **bridge** learns source MACs (effect), answers ARP for addresses it knows (its routers'
//!   ports, its DHCP hosts) and DHCP for its subnets (generated replies), delivers to a router
//!   port by its MAC, to a learned MAC, or floods;
//! - a **router** takes frames for its port's MAC (or broadcast ARP), answers ARP for the port's
//!   address from senders in the port's subnet and learns them, answers echo requests to any of
//!   its addresses, routes by longest prefix (ECMP by a 5-tuple hash), decrements the TTL (time
//!   exceeded at ≤ 1), checks the egress MTU of DF packets (fragmentation needed), resolves the
//!   next hop (statically from the topology, else its ARP cache; unknown: the packet is parked,
//!   failed: host unreachable) and rewrites the MACs.
//!
//! A result that a flow cannot reproduce — a generated answer, a parked packet, an expired TTL,
//! a malformed header — installs no flow that forwards: every such packet comes to the
//! controller (bounded by the per-port packet-in budget). An ARP, echo or DHCP answer installs
//! one that says so ([`FlowKind::Answer`]), the others none ([`FlowKind::None`]).

use std::net::Ipv4Addr;

use ofproto::packet::Icmpv4Error;
use smallvec::SmallVec;
use topology::model::Port;
use topology::{DeviceKind, Snapshot};
use uuid::Uuid;

use super::arp::{Cache as ArpCache, Heard, Neighbour};
use super::chain::Hook;
use super::flowkey::{Header, Seen, Tracked};
use super::index::Index;
use super::route::{port_v4, Target};
use super::trace::{FilterAt, NextHop, RouteTarget, Step, Traced};
use crate::bindings::Bindings;

/// How many device ingresses one packet may make before it is dropped as a loop.
pub const MAX_DEVICES: usize = 12;

/// A MAC table entry's port, by (bridge, MAC).
pub type MacTable = rustc_hash::FxHashMap<(Uuid, [u8; 6]), Uuid>;

const ETH_ARP: u16 = 0x0806;
const ETH_IPV4: u16 = 0x0800;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const PROTO_ICMP: u8 = 1;
const PROTO_UDP: u8 = 17;
const ICMP_ECHO_REQUEST: u8 = 8;
const DHCP_SERVER_PORT: u16 = 67;

/// What the simulation reads.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The topology.
    pub snapshot: &'a Snapshot,
    /// What is derived from it.
    pub index: &'a Index,
    /// Where ports are.
    pub bindings: &'a Bindings,
    /// Learned MACs of every bridge.
    pub macs: &'a MacTable,
    /// Routers' ARP caches.
    pub arp: &'a ArpCache,
}

/// Where a simulation starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Start {
    /// A packet entering the virtual network at logical port `port` (OpenFlow port `in_port`).
    Ingress {
        /// The logical port.
        port: Uuid,
        /// Its OpenFlow port on the switch that asked.
        in_port: u32,
    },
    /// A packet a device generated, leaving by logical port `port` (egress, so it reaches the
    /// port's peer or the VM behind it).
    Egress {
        /// The logical port.
        port: Uuid,
    },
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
    /// A header the devices had to read is truncated or malformed.
    Malformed,
    /// A router got a frame not addressed to its port's MAC.
    NotForRouter,
    /// A router got something other than IPv4 or ARP.
    NotIpv4,
    /// A router port without an IPv4 address.
    NoAddress,
    /// An ARP a router ignores (for another address, from outside the subnet, not a request
    /// or reply).
    ArpIgnored,
    /// A packet for the router itself that it does not answer.
    ToRouter,
    /// No route (answered with ICMP network unreachable).
    NoRoute,
    /// A blackhole route.
    Blackhole,
    /// A reject route (answered with ICMP administratively prohibited).
    Rejected,
    /// TTL ran out (answered with ICMP time exceeded).
    TtlExpired,
    /// DF set and larger than the egress MTU (answered with ICMP fragmentation needed).
    TooBig,
    /// The next hop is being resolved: the packet is parked.
    Unresolved,
    /// The next hop did not answer ARP (answered with ICMP host unreachable).
    HostUnreachable,
    /// A rule chain dropped it.
    Filtered,
}

impl DropReason {
    /// Whether the drop is an error that should be retried soon (a short, untagged drop flow
    /// that nothing it read makes right later).
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
            DropReason::Malformed => "malformed",
            DropReason::NotForRouter => "not_for_router",
            DropReason::NotIpv4 => "not_ipv4",
            DropReason::NoAddress => "no_address",
            DropReason::ArpIgnored => "arp_ignored",
            DropReason::ToRouter => "to_router",
            DropReason::NoRoute => "no_route",
            DropReason::Blackhole => "blackhole",
            DropReason::Rejected => "rejected",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::TooBig => "too_big",
            DropReason::Unresolved => "unresolved",
            DropReason::HostUnreachable => "host_unreachable",
            DropReason::Filtered => "filtered",
        }
    }
}

/// What a flow depended on; a change to any of them must remove the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// A port's settings or binding.
    Port(Uuid),
    /// A device's settings, its set of ports, its routes or DHCP subnets.
    Device(Uuid),
    /// A learned MAC of a bridge: flows delivering to it.
    Mac(Uuid, [u8; 6]),
    /// Floods of a bridge for an unknown unicast destination: go once it is learned.
    Flood(Uuid, [u8; 6]),
    /// A router's ARP entry: flows rewriting to its MAC, or dropping while it failed.
    Arp(Uuid, Ipv4Addr),
    /// A rule chain (its rules included) a filter evaluated.
    Chain(Uuid),
    /// A route a router chose (every member of an ECMP group: the hash picks among them).
    Route(Uuid),
    /// The destination prefix a router's lookup decided on: a new route overlapping it may
    /// capture part of it.
    Dst(Uuid, ipnet::Ipv4Net),
    /// A port group a rule asked about.
    PortGroup(Uuid),
    /// An IP address group a rule asked about.
    AddrGroup(Uuid),
    /// The tunnel from one host to another (its OpenFlow port, or that there is none): flows
    /// that send a copy towards a port on the other host. A host joining the mesh, leaving it
    /// or having a tunnel renumbered takes exactly these, not every flow of every host.
    Tunnel(Uuid, Uuid),
}

/// One copy of the packet leaving the virtual network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    /// The exterior port it leaves by.
    pub port: Uuid,
    /// The header as it leaves (the diff against the ingress header becomes actions).
    pub header: Header,
}

/// A packet a device answers with, built by the engine from the frame that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// An ARP reply to the request, saying `mac`.
    ArpReply {
        /// The MAC answered.
        mac: [u8; 6],
    },
    /// An ICMP echo reply to the request (from the address it was sent to).
    EchoReply,
    /// An ICMP error about the packet, from router port `(mac, ip)`.
    IcmpError {
        /// Which.
        error: Icmpv4Error,
        /// Source MAC (the router port).
        mac: [u8; 6],
        /// Source address.
        ip: Ipv4Addr,
    },
    /// The DHCP server of `bridge` answers.
    Dhcp {
        /// The bridge.
        bridge: Uuid,
    },
    /// A TCP RST for the segment, as if from its destination (a chain's `reject`).
    TcpReset,
}

/// A generated packet: `reply` to the simulated frame, leaving by logical port `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    /// The port whose egress it takes (the one the asking packet came in by).
    pub from: Uuid,
    /// What to answer.
    pub reply: Reply,
}

/// The router needs the MAC of `ip` behind `port` and the ARP cache does not have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolve {
    /// The router.
    pub router: Uuid,
    /// The egress port.
    pub port: Uuid,
    /// The next hop.
    pub ip: Ipv4Addr,
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
    /// A router heard an ARP.
    ArpLearn(Heard),
}

/// What kind of flow a result installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// A normal flow-cache entry (idle + hard timeout).
    Cache,
    /// A short drop (errors, a failed next hop): retried soon.
    Short,
    /// An answer's flow: what it matches goes to the controller, as a miss would. It changes
    /// no packet's fate; it exists for OVS's datapath. A miss caches a datapath flow as wide
    /// as the OpenFlow table allows — from a VM whose only other traffic the controller
    /// answered, "every IPv4 packet of this port to userspace" — and when a flow for that port
    /// arrives later, OVS replaces that cached flow only once its revalidators have run, after
    /// the packets of the next few hundred microseconds: a reply predicted for such a VM came
    /// to the controller anyway unless its request was held for a barrier round trip. With the
    /// answer's own flow in the table, the datapath caches the answer's fields exactly, and a
    /// new kind of packet from the VM misses and finds its flow. Only for ARP, echo and DHCP
    /// answers to a packet from a port: never for an ICMP error or a reset (a TTL, which no
    /// OpenFlow 1.3 match carries, may have decided them), a packet generated by the
    /// controller, a parked packet (its flow comes once its next hop is known) or a drop.
    Answer,
    /// None: the controller must see every such packet (other answers, parking, TTL, garbage).
    None,
}

/// The result of one simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulation {
    /// Where copies go; empty means dropped (see `drop`).
    pub egress: SmallVec<[Egress; 2]>,
    /// Why nothing was sent, when `egress` is empty.
    pub drop: Option<DropReason>,
    /// The fields that decided the result: the flow's match.
    pub seen: Seen,
    /// What the result depended on. Sixteen inline: a routed, filtered flow records 13.
    pub tags: SmallVec<[Tag; 16]>,
    /// To apply after the simulation.
    pub effects: SmallVec<[Effect; 1]>,
    /// Answers the devices send.
    pub generated: SmallVec<[Generated; 1]>,
    /// A next hop to resolve (the packet is parked).
    pub resolve: Option<Resolve>,
    /// What flow to install.
    pub flow: FlowKind,
    /// The smallest MTU of the router egresses crossed (`None`: no router): a flow longer
    /// packets must not pass unchecked.
    pub mtu: Option<u16>,
}

impl Simulation {
    /// Whether the result is only ARP, echo or DHCP answers: nothing forwarded, parked or
    /// dropped, no ICMP error or reset (see [`FlowKind::Answer`]).
    fn answers_only(&self) -> bool {
        self.egress.is_empty()
            && self.resolve.is_none()
            && !self.generated.is_empty()
            && self.generated.iter().all(|g| {
                matches!(
                    g.reply,
                    Reply::ArpReply { .. } | Reply::EchoReply | Reply::Dhcp { .. }
                )
            })
    }

    /// Whether the result is an error drop (short, untagged flow).
    pub fn is_error(&self) -> bool {
        self.egress.is_empty() && self.drop.is_some_and(DropReason::is_error)
    }
}

pub(super) struct Walk<'a> {
    pub(super) ctx: Context<'a>,
    devices: usize,
    out: Simulation,
    /// The result cannot be a flow (see [`FlowKind::None`]).
    pub(super) consumed: bool,
    /// The result is a short drop.
    short: bool,
    /// The trace being recorded, if any.
    steps: Option<Vec<Traced>>,
}

/// Simulates `header` from `start` through the virtual network.
pub fn simulate(ctx: Context<'_>, start: Start, header: Header) -> Simulation {
    walk(ctx, start, header, None).0
}

/// [`simulate`], recording every step: the same walk, with its account.
pub fn simulate_traced(
    ctx: Context<'_>,
    start: Start,
    header: Header,
) -> (Simulation, Vec<Traced>) {
    let (sim, steps) = walk(ctx, start, header, Some(Vec::new()));
    (sim, steps.unwrap_or_default())
}

fn walk(
    ctx: Context<'_>,
    start: Start,
    header: Header,
    steps: Option<Vec<Traced>>,
) -> (Simulation, Option<Vec<Traced>>) {
    let mut w = Walk {
        ctx,
        devices: 0,
        out: Simulation {
            egress: SmallVec::new(),
            drop: None,
            seen: Seen::EMPTY,
            tags: SmallVec::new(),
            effects: SmallVec::new(),
            generated: SmallVec::new(),
            resolve: None,
            flow: FlowKind::Cache,
            mtu: None,
        },
        consumed: false,
        short: false,
        steps,
    };
    let mut pkt = Tracked::new(header);
    let r = match start {
        Start::Ingress { port, .. } => w.ingress(port, &mut pkt),
        Start::Egress { port } => w.egress(port, None, &mut pkt),
    };
    if let Err(reason) = r {
        w.out.drop = Some(reason);
        w.note(|| Step::Drop { reason });
    }
    w.out.seen = w.out.seen.union(pkt.seen());
    if w.out.egress.is_empty() && w.out.drop.is_none() && !w.consumed {
        w.out.drop = Some(DropReason::NoEgress);
    }
    w.out.flow = if w.consumed && matches!(start, Start::Ingress { .. }) && w.out.answers_only() {
        FlowKind::Answer
    } else if w.consumed {
        FlowKind::None
    } else if w.short || w.out.is_error() {
        FlowKind::Short
    } else {
        FlowKind::Cache
    };
    if w.out.is_error() {
        // An error drop is short-lived and untagged: nothing it read makes it right later.
        w.out.tags.clear();
    }
    (w.out, w.steps)
}

impl Walk<'_> {
    /// Records a dependency. Duplicates are allowed (a flood meets a device once per branch):
    /// the flow index deduplicates when it installs, so dry runs do not pay for it.
    pub(super) fn tag(&mut self, t: Tag) {
        self.out.tags.push(t);
    }

    /// Records a trace step, when tracing (the closure keeps the untraced walk free of it).
    #[inline]
    pub(super) fn note(&mut self, step: impl FnOnce() -> Step) {
        if let Some(steps) = &mut self.steps {
            steps.push(Traced {
                depth: u8::try_from(self.devices).unwrap_or(u8::MAX),
                step: step(),
            });
        }
    }

    pub(super) fn generate(&mut self, from: Uuid, reply: Reply) {
        self.note(|| Step::Answer { from, reply });
        self.out.generated.push(Generated { from, reply });
        self.consumed = true;
    }

    fn ingress(&mut self, port_id: Uuid, pkt: &mut Tracked) -> Result<(), DropReason> {
        self.devices += 1;
        if self.devices > MAX_DEVICES {
            return Err(DropReason::Loop);
        }
        let ctx = self.ctx;
        let info = ctx.index.port(port_id).ok_or(DropReason::UnknownPort)?;
        let port = &*info.port;
        self.tag(Tag::Port(port.id));
        self.note(|| Step::Enter {
            port: port.id,
            device: port.device_id,
            kind: info.kind,
        });
        if !port.admin_state_up {
            return Err(DropReason::PortDown);
        }
        self.tag(Tag::Device(port.device_id));
        if !info.device_up {
            return Err(DropReason::DeviceDown);
        }
        let hook = Hook {
            in_port: Some(port.id),
            out_port: None,
            router_port: router_source(info),
        };
        self.filter(port.inbound_filter_id, FilterAt::PortIn(port.id), hook, pkt)?;
        match info.kind {
            DeviceKind::Bridge => {
                let at = FilterAt::DeviceIn(port.device_id);
                self.filter(info.device_filters.0, at, hook, pkt)?;
                self.bridge(port.device_id, port, pkt)
            }
            DeviceKind::Router => self.router(port.device_id, port, pkt),
        }
    }

    fn bridge(&mut self, id: Uuid, inport: &Port, pkt: &mut Tracked) -> Result<(), DropReason> {
        // A router's MACs are known from the topology, not learned.
        if inport.peer_id.is_none() {
            let src = pkt.eth_src();
            if !is_multicast(&src) {
                self.note(|| Step::Learn {
                    bridge: id,
                    mac: src,
                    port: inport.id,
                });
                self.out.effects.push(Effect::Learn {
                    bridge: id,
                    mac: src,
                    port: inport.id,
                });
            }
        }
        let dst = pkt.eth_dst();
        if is_multicast(&dst) {
            if self.bridge_services(id, inport, pkt)? {
                return Ok(());
            }
        } else {
            if let Some(port) = self.ctx.index.router_mac(id, dst) {
                self.note(|| Step::MacHit {
                    bridge: id,
                    mac: dst,
                    port,
                    learned: false,
                });
                if port == inport.id {
                    return Err(DropReason::SameSegment);
                }
                return self.leave(inport, port, pkt);
            }
            if self.ctx.index.is_dhcp_server(id, dst) && self.is_dhcp_request(pkt) {
                self.generate(inport.id, Reply::Dhcp { bridge: id });
                return Ok(());
            }
            if let Some(&port) = self.ctx.macs.get(&(id, dst)) {
                self.tag(Tag::Mac(id, dst));
                self.note(|| Step::MacHit {
                    bridge: id,
                    mac: dst,
                    port,
                    learned: true,
                });
                if port == inport.id {
                    return Err(DropReason::SameSegment);
                }
                return self.leave(inport, port, pkt);
            }
            self.tag(Tag::Flood(id, dst));
        }
        // Flood: every other port of the bridge, each branch with its own header copy. A port
        // that fails (down, a loop behind it) only loses its own copy.
        // The loop guard counts devices along one path: every branch starts from here.
        self.note(|| Step::Flood {
            bridge: id,
            mac: dst,
        });
        let snapshot = self.ctx.snapshot;
        let mut seen = Seen::EMPTY;
        let depth = self.devices;
        for p in snapshot.ports_of(id) {
            if p.id == inport.id {
                continue;
            }
            self.devices = depth;
            let mut branch = *pkt;
            let r = self.leave(inport, p.id, &mut branch);
            seen = seen.union(branch.seen());
            if r == Err(DropReason::Loop) {
                return r;
            }
            if let Err(reason) = r {
                self.note(|| Step::Drop { reason });
            }
        }
        pkt.absorb(seen);
        Ok(())
    }

    /// ARP suppression and DHCP for a broadcast; true when the bridge answered it.
    fn bridge_services(
        &mut self,
        id: Uuid,
        inport: &Port,
        pkt: &mut Tracked,
    ) -> Result<bool, DropReason> {
        let index = self.ctx.index;
        // A plain L2 bridge answers nothing: its floods need not read past the MACs.
        if !index.answers_arp(id) && !index.serves_dhcp(id) {
            return Ok(false);
        }
        match pkt.eth_type() {
            ETH_ARP => {
                let Some(op) = pkt.arp_op() else {
                    self.consumed = true;
                    return Err(DropReason::Malformed);
                };
                if op != ARP_REQUEST {
                    return Ok(false);
                }
                let tpa = pkt.arp_tpa().unwrap_or(Ipv4Addr::UNSPECIFIED);
                let Some(known) = index.bridge_ip(id, tpa) else {
                    return Ok(false);
                };
                let spa = pkt.arp_spa().unwrap_or(Ipv4Addr::UNSPECIFIED);
                // A gratuitous ARP announces; it is flooded, never answered. Nor is the
                // owner's own probe for its address (RFC 5227): "it is at you" would read as a
                // conflict to a strict client.
                if spa == tpa
                    || known.subnet.is_some_and(|n| !n.contains(&spa))
                    || pkt.eth_src() == known.mac
                {
                    return Ok(false);
                }
                self.generate(inport.id, Reply::ArpReply { mac: known.mac });
                Ok(true)
            }
            ETH_IPV4 if index.serves_dhcp(id) => {
                if self.is_dhcp_request(pkt) {
                    self.generate(inport.id, Reply::Dhcp { bridge: id });
                    return Ok(true);
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn is_dhcp_request(&mut self, pkt: &mut Tracked) -> bool {
        pkt.eth_type() == ETH_IPV4
            && pkt.ip_proto() == Some(PROTO_UDP)
            && pkt.tp_dst() == Some(DHCP_SERVER_PORT)
    }

    fn router(&mut self, id: Uuid, inport: &Port, pkt: &mut Tracked) -> Result<(), DropReason> {
        let (Some((ip, net)), Some(mac)) = (port_v4(inport), inport.mac.map(|m| m.0)) else {
            return Err(DropReason::NoAddress);
        };
        let dst = pkt.eth_dst();
        let broadcast = dst == [0xff; 6];
        if dst != mac && !broadcast {
            return Err(DropReason::NotForRouter);
        }
        match pkt.eth_type() {
            ETH_ARP => self.router_arp(id, inport, ip, net, pkt),
            ETH_IPV4 if !broadcast => {
                let hook = Hook {
                    in_port: Some(inport.id),
                    out_port: None,
                    router_port: Some((mac, ip)),
                };
                let filters = self.device_filters(inport);
                self.filter(filters.0, FilterAt::DeviceIn(id), hook, pkt)?;
                self.route(id, inport, mac, ip, pkt)
            }
            ETH_IPV4 => Err(DropReason::NotForRouter),
            _ => Err(DropReason::NotIpv4),
        }
    }

    fn router_arp(
        &mut self,
        id: Uuid,
        inport: &Port,
        ip: Ipv4Addr,
        net: ipnet::Ipv4Net,
        pkt: &mut Tracked,
    ) -> Result<(), DropReason> {
        let (Some(op), Some(tpa)) = (pkt.arp_op(), pkt.arp_tpa()) else {
            self.consumed = true;
            return Err(DropReason::Malformed);
        };
        let spa = pkt.arp_spa().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let sha = pkt.header().arp.map_or([0; 6], |a| a.sha);
        let usable = net.contains(&spa) && spa != ip && !is_multicast(&sha) && sha != [0; 6];
        if tpa != ip {
            // A gratuitous ARP from the subnet refreshes an entry the router already has.
            if spa == tpa && usable {
                self.out.effects.push(Effect::ArpLearn(Heard {
                    router: id,
                    port: inport.id,
                    ip: spa,
                    mac: sha,
                    create: false,
                }));
                self.consumed = true;
            }
            return Err(DropReason::ArpIgnored);
        }
        if !usable || !(op == ARP_REQUEST || op == ARP_REPLY) {
            return Err(DropReason::ArpIgnored);
        }
        // Like Linux: an ARP addressed to us from the subnet tells us the sender too.
        self.out.effects.push(Effect::ArpLearn(Heard {
            router: id,
            port: inport.id,
            ip: spa,
            mac: sha,
            create: true,
        }));
        self.consumed = true;
        if op == ARP_REQUEST {
            let mac = inport.mac.map_or([0; 6], |m| m.0);
            self.generate(inport.id, Reply::ArpReply { mac });
        }
        Ok(())
    }

    fn route(
        &mut self,
        id: Uuid,
        inport: &Port,
        in_mac: [u8; 6],
        in_ip: Ipv4Addr,
        pkt: &mut Tracked,
    ) -> Result<(), DropReason> {
        let Some(ip) = pkt.header().ipv4 else {
            self.consumed = true;
            return Err(DropReason::Malformed);
        };
        let ctx = self.ctx;
        let Some(table) = ctx.index.routes(id) else {
            return Err(DropReason::UnknownPort);
        };
        let src = if table.src_len() > 0 {
            pkt.ipv4_src_prefix(table.src_len()).unwrap_or(ip.src)
        } else {
            ip.src
        };
        let lookup = table.lookup(ip.dst, src);
        pkt.ipv4_dst_prefix(lookup.dst_len);
        if let Ok(region) = ipnet::Ipv4Net::new(ip.dst, lookup.dst_len) {
            self.tag(Tag::Dst(id, region.trunc()));
        }
        for e in &lookup.chosen {
            if let Some(r) = e.route {
                self.tag(Tag::Route(r));
            }
        }
        let error = |error| Reply::IcmpError {
            error,
            mac: in_mac,
            ip: in_ip,
        };
        // For traces only: computed inside `note`'s closures.
        let prefix = || {
            ipnet::Ipv4Net::new(ip.dst, lookup.dst_len)
                .map_or_else(|_| ipnet::Ipv4Net::default(), |n| n.trunc())
        };
        let entry = match lookup.chosen.len() {
            0 => {
                self.note(|| Step::Route {
                    router: id,
                    dst: ip.dst,
                    prefix: prefix(),
                    route: None,
                    ecmp: 0,
                    target: RouteTarget::None,
                });
                self.generate(inport.id, error(Icmpv4Error::NetUnreachable));
                return Err(DropReason::NoRoute);
            }
            1 => lookup.chosen[0],
            n => lookup.chosen[ecmp_hash(pkt) as usize % n],
        };
        self.note(|| Step::Route {
            router: id,
            dst: ip.dst,
            prefix: prefix(),
            route: entry.route,
            ecmp: lookup.chosen.len(),
            target: match entry.target {
                Target::Local { .. } => RouteTarget::Local,
                Target::Blackhole => RouteTarget::Blackhole,
                Target::Reject => RouteTarget::Reject,
                Target::Forward { port, gateway } => RouteTarget::Forward { port, gateway },
            },
        });
        match entry.target {
            Target::Local { .. } => self.local(inport, pkt),
            Target::Blackhole => Err(DropReason::Blackhole),
            Target::Reject => {
                self.generate(inport.id, error(Icmpv4Error::AdminProhibited));
                Err(DropReason::Rejected)
            }
            Target::Forward { port, gateway } => {
                self.forward(id, inport, (in_mac, in_ip), port, gateway, pkt)
            }
        }
    }

    /// A packet for one of the router's own addresses.
    fn local(&mut self, inport: &Port, pkt: &mut Tracked) -> Result<(), DropReason> {
        pkt.ipv4_dst();
        match pkt.ip_proto() {
            Some(PROTO_ICMP) => {
                if pkt.icmp_type() == Some(ICMP_ECHO_REQUEST) {
                    self.generate(inport.id, Reply::EchoReply);
                    return Ok(());
                }
                Err(DropReason::ToRouter)
            }
            Some(PROTO_UDP) => {
                // A DHCP renewal unicast to the gateway, when the gateway is the server.
                let bridge = inport
                    .peer_id
                    .and_then(|p| self.ctx.index.port(p))
                    .map(|p| p.port.device_id)
                    .filter(|b| self.ctx.index.serves_dhcp(*b));
                if let (Some(bridge), Some(DHCP_SERVER_PORT)) = (bridge, pkt.tp_dst()) {
                    self.generate(inport.id, Reply::Dhcp { bridge });
                    return Ok(());
                }
                // Nothing listens on a virtual router: what traceroute's last hop says.
                let (mac, ip) = (inport.mac.map_or([0; 6], |m| m.0), pkt.header().ipv4);
                let ip = ip.map_or(Ipv4Addr::UNSPECIFIED, |i| i.dst);
                self.generate(
                    inport.id,
                    Reply::IcmpError {
                        error: Icmpv4Error::PortUnreachable,
                        mac,
                        ip,
                    },
                );
                Err(DropReason::ToRouter)
            }
            _ => Err(DropReason::ToRouter),
        }
    }

    fn forward(
        &mut self,
        id: Uuid,
        inport: &Port,
        (in_mac, in_ip): ([u8; 6], Ipv4Addr),
        port_id: Uuid,
        gateway: Option<Ipv4Addr>,
        pkt: &mut Tracked,
    ) -> Result<(), DropReason> {
        let error = |error| Reply::IcmpError {
            error,
            mac: in_mac,
            ip: in_ip,
        };
        if pkt.ttl_unmatched().is_some_and(|t| t <= 1) {
            self.generate(inport.id, error(Icmpv4Error::TtlExceeded));
            return Err(DropReason::TtlExpired);
        }
        let ctx = self.ctx;
        let Some(port) = ctx.index.port(port_id).map(|i| &*i.port) else {
            return Err(DropReason::UnknownPort);
        };
        if !port.admin_state_up {
            self.tag(Tag::Port(port.id));
            return Err(DropReason::PortDown);
        }
        let Some(out_mac) = port.mac.map(|m| m.0) else {
            return Err(DropReason::NoAddress);
        };
        let next_hop = match gateway {
            Some(g) => g,
            None => pkt.ipv4_dst().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        // Path MTU discovery needs the answer from here. Packets that meet the installed flow
        // are checked by the switch (`check_pkt_larger`, see the engine) and come back here.
        if let Some(ip) = pkt.header().ipv4 {
            let mtu = ctx.index.mtu(port.id);
            self.out.mtu = Some(self.out.mtu.map_or(mtu, |m| m.min(mtu)));
            if ip.df && ip.total_len > mtu {
                self.generate(
                    inport.id,
                    error(Icmpv4Error::FragmentationNeeded { next_hop_mtu: mtu }),
                );
                return Err(DropReason::TooBig);
            }
        }
        let hop = |mac| Step::NextHop {
            router: id,
            ip: next_hop,
            mac,
        };
        let mac = match ctx.index.static_neighbour(port, next_hop) {
            Some(mac) => {
                self.note(|| hop(NextHop::Topology(mac)));
                mac
            }
            None => {
                self.tag(Tag::Arp(id, next_hop));
                match ctx.arp.neighbour(id, next_hop) {
                    Some(Neighbour::Known(mac)) => {
                        self.note(|| hop(NextHop::Arp(mac)));
                        mac
                    }
                    Some(Neighbour::Failed) => {
                        self.note(|| hop(NextHop::Failed));
                        self.generate(inport.id, error(Icmpv4Error::HostUnreachable));
                        self.consumed = false;
                        self.short = true;
                        return Err(DropReason::HostUnreachable);
                    }
                    Some(Neighbour::Pending) | None => {
                        self.note(|| hop(NextHop::Unresolved));
                        self.out.resolve = Some(Resolve {
                            router: id,
                            port: port.id,
                            ip: next_hop,
                        });
                        self.consumed = true;
                        return Err(DropReason::Unresolved);
                    }
                }
            }
        };
        pkt.set_eth(out_mac, mac);
        pkt.dec_ttl();
        self.note(|| Step::Rewrite {
            eth_src: out_mac,
            eth_dst: mac,
            ttl: pkt.header().ipv4.map(|i| i.ttl),
        });
        self.leave(inport, port.id, pkt)
    }

    /// Out of the device `inport` belongs to, by `port`: the device's outbound filter, then
    /// the port's egress.
    fn leave(&mut self, inport: &Port, port: Uuid, pkt: &mut Tracked) -> Result<(), DropReason> {
        let hook = Hook {
            in_port: Some(inport.id),
            out_port: Some(port),
            router_port: self.ctx.index.port(inport.id).and_then(router_source),
        };
        let filters = self.device_filters(inport);
        let at = FilterAt::DeviceOut(inport.device_id);
        self.filter(filters.1, at, hook, pkt)?;
        self.egress(port, Some(inport.id), pkt)
    }

    fn device_filters(&self, port: &Port) -> (Option<Uuid>, Option<Uuid>) {
        self.ctx
            .index
            .port(port.id)
            .map_or((None, None), |i| i.device_filters)
    }

    fn egress(
        &mut self,
        port_id: Uuid,
        in_port: Option<Uuid>,
        pkt: &mut Tracked,
    ) -> Result<(), DropReason> {
        let ctx = self.ctx;
        let Some(info) = ctx.index.port(port_id) else {
            return Err(DropReason::UnknownPort);
        };
        let port = &*info.port;
        self.tag(Tag::Port(port.id));
        self.note(|| Step::Leave {
            port: port.id,
            device: port.device_id,
        });
        if !port.admin_state_up {
            return Err(DropReason::PortDown);
        }
        let hook = Hook {
            in_port,
            out_port: Some(port.id),
            router_port: in_port
                .and_then(|p| ctx.index.port(p))
                .and_then(router_source),
        };
        self.filter(
            port.outbound_filter_id,
            FilterAt::PortOut(port.id),
            hook,
            pkt,
        )?;
        if let Some(peer) = port.peer_id {
            return self.ingress(peer, pkt);
        }
        // An exterior port that is not plugged anywhere has nowhere to send; its binding is
        // part of what the flow depends on (the port tag), so plugging it re-simulates.
        if self.ctx.bindings.port(port.id).is_some() {
            self.note(|| Step::Deliver { port: port.id });
            self.out.egress.push(Egress {
                port: port.id,
                header: *pkt.header(),
            });
        } else {
            self.note(|| Step::Unbound { port: port.id });
        }
        Ok(())
    }
}

/// A router port's (MAC, address): where a router's ICMP comes from.
fn router_source(info: &super::index::PortInfo) -> Option<([u8; 6], Ipv4Addr)> {
    if info.kind != DeviceKind::Router {
        return None;
    }
    Some((info.port.mac?.0, port_v4(&info.port)?.0))
}

/// The ECMP choice reads the 5-tuple: a flow's packets always take the same route.
fn ecmp_hash(pkt: &mut Tracked) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one((
        pkt.ipv4_src(),
        pkt.ipv4_dst(),
        pkt.ip_proto(),
        pkt.tp_src(),
        pkt.tp_dst(),
    ))
}

fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}
