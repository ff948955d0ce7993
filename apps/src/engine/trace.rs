//! Traces: the simulation's own account of what it did, step by step.
//!
//! A trace is the real simulation ([`super::sim::simulate_traced`]) with a recorder switched on:
//! the same walk, the same snapshot, the same MAC tables and ARP caches, so what it says is what a
//! packet-in would do. It applies no effect (nothing learned, no ARP sent, nothing installed): the
//! engine is a pure function of its inputs, and a trace only reads them. The steps carry ids; the
//! controller names them (it has the topology) and renders them for REST and the CLI.

use std::net::Ipv4Addr;

use topology::model::RuleAction;
use topology::DeviceKind;
use uuid::Uuid;

use super::flowkey::Header;
use super::sim::{DropReason, Reply};
use super::Compiled;

/// Where a filter ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAt {
    /// A port's inbound filter, entering its device.
    PortIn(Uuid),
    /// A device's inbound filter.
    DeviceIn(Uuid),
    /// A device's outbound filter.
    DeviceOut(Uuid),
    /// A port's outbound filter, leaving by it.
    PortOut(Uuid),
}

/// What a filter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterVerdict {
    /// A rule accepted.
    Accept,
    /// No rule decided (fell off the end, or `return`): the packet goes on.
    Continue,
    /// A rule dropped.
    Drop,
    /// A rule rejected (answered with TCP RST or ICMP admin-prohibited).
    Reject,
}

/// Where a router's lookup sent the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteTarget {
    /// No route.
    None,
    /// One of the router's own addresses.
    Local,
    /// Out of `port`, to `gateway` (`None`: the destination is on the port's subnet).
    Forward {
        /// The router port.
        port: Uuid,
        /// The next hop, when the route names one.
        gateway: Option<Ipv4Addr>,
    },
    /// A blackhole route.
    Blackhole,
    /// A reject route.
    Reject,
}

/// Where a router's next-hop MAC came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// The topology knows it (a router port, a router peer, a DHCP lease).
    Topology([u8; 6]),
    /// The ARP cache has it.
    Arp([u8; 6]),
    /// The ARP entry failed: host unreachable.
    Failed,
    /// Not known yet: the packet would be parked and an ARP request sent.
    Unresolved,
}

/// One thing the simulation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The packet entered `device` by `port`.
    Enter {
        /// The port.
        port: Uuid,
        /// Its device.
        device: Uuid,
        /// Bridge or router.
        kind: DeviceKind,
    },
    /// A filter ran and decided.
    Filter {
        /// The chain.
        chain: Uuid,
        /// Where.
        at: FilterAt,
        /// What it decided.
        verdict: FilterVerdict,
    },
    /// A rule's condition held (its action follows: a decision, `continue` or `jump`).
    Rule {
        /// The chain it is in.
        chain: Uuid,
        /// The rule.
        rule: Uuid,
        /// Its action.
        action: RuleAction,
    },
    /// A bridge would learn `mac` on `port` (a trace learns nothing).
    Learn {
        /// The bridge.
        bridge: Uuid,
        /// The source MAC.
        mac: [u8; 6],
        /// The ingress port.
        port: Uuid,
    },
    /// A bridge found `mac` in its MAC table (learned) or as a linked router port's MAC
    /// (`learned == false`).
    MacHit {
        /// The bridge.
        bridge: Uuid,
        /// The destination MAC.
        mac: [u8; 6],
        /// The port it is behind.
        port: Uuid,
        /// Learned, rather than known from the topology.
        learned: bool,
    },
    /// A bridge floods (a broadcast, or an unknown unicast destination).
    Flood {
        /// The bridge.
        bridge: Uuid,
        /// The destination MAC.
        mac: [u8; 6],
    },
    /// A router's lookup.
    Route {
        /// The router.
        router: Uuid,
        /// The destination looked up.
        dst: Ipv4Addr,
        /// The destination prefix the lookup decided on (what the flow matches).
        prefix: ipnet::Ipv4Net,
        /// The route chosen (`None`: a connected subnet or the router's own address).
        route: Option<Uuid>,
        /// How many routes shared the choice (ECMP, > 1).
        ecmp: usize,
        /// Where it sends the packet.
        target: RouteTarget,
    },
    /// A router's next hop.
    NextHop {
        /// The router.
        router: Uuid,
        /// The next hop's address.
        ip: Ipv4Addr,
        /// Its MAC, and where that came from.
        mac: NextHop,
    },
    /// Headers rewritten by a router.
    Rewrite {
        /// New source MAC.
        eth_src: [u8; 6],
        /// New destination MAC.
        eth_dst: [u8; 6],
        /// TTL after the decrement.
        ttl: Option<u8>,
    },
    /// The packet leaves `device` by `port`.
    Leave {
        /// The port.
        port: Uuid,
        /// Its device.
        device: Uuid,
    },
    /// The packet leaves the virtual network by exterior port `port` (see the deliveries).
    Deliver {
        /// The port.
        port: Uuid,
    },
    /// Exterior port `port` is not bound to any interface: the copy goes nowhere.
    Unbound {
        /// The port.
        port: Uuid,
    },
    /// A device answers, from the egress of `from`.
    Answer {
        /// The port the answer leaves by.
        from: Uuid,
        /// What it answers.
        reply: Reply,
    },
    /// The packet is dropped (on this branch, for a flood).
    Drop {
        /// Why.
        reason: DropReason,
    },
}

/// A step and how deep in the walk it happened (devices entered so far on its branch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traced {
    /// Devices entered before it, on its branch.
    pub depth: u8,
    /// The step.
    pub step: Step,
}

/// How one copy leaves the ingress host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Out of an OpenFlow port of the ingress `br-int`.
    Local {
        /// The OpenFlow port.
        ofport: u32,
    },
    /// Through the tunnel to the port's host, with the port's key as `tun_id`.
    Tunnel {
        /// The tunnel's OpenFlow port on the ingress host.
        ofport: u32,
        /// The tunnel key: the egress port's.
        key: u32,
    },
    /// Back out of the port it came in by: never sent (the VM already has it).
    Hairpin,
    /// The ingress host has no tunnel to the port's host (yet).
    NoTunnel,
    /// The port is not bound.
    Unbound,
    /// The ingress port is not bound, so there is no ingress host to leave.
    NoIngressHost,
}

/// One copy leaving the virtual network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The exterior port.
    pub port: Uuid,
    /// The host it is bound on (if bound).
    pub host: Option<Uuid>,
    /// That host's `br-int`.
    pub dpid: Option<u64>,
    /// How it leaves the ingress host.
    pub via: Via,
    /// The header as it leaves.
    pub header: Header,
}

/// A whole trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The ingress host's `br-int`, when the ingress port is bound.
    pub dpid: Option<u64>,
    /// The steps, in order.
    pub steps: Vec<Traced>,
    /// Where copies go.
    pub deliveries: Vec<Delivery>,
    /// The flow a packet-in would install on the ingress host (with the simulation), for a bound
    /// ingress port.
    pub compiled: Compiled,
}

/// What the engine knows of one flow-cache entry it installed: its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInfo {
    /// Its cookie.
    pub cookie: u64,
    /// The `br-int` it is on.
    pub dpid: u64,
    /// Its priority.
    pub priority: u16,
    /// The logical port the packet that made it came in by.
    pub port: Uuid,
    /// That port's OpenFlow port then.
    pub in_port: u32,
    /// The header of the packet that made it.
    pub header: Header,
    /// What it depended on (a change to any of them removes it).
    pub tags: Vec<super::sim::Tag>,
    /// Why it drops, for a drop flow.
    pub drop: Option<DropReason>,
}
