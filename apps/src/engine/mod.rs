//! `engine`: the virtual network engine, the default app.
//!
//! On every `br-int` it keeps the fixed [`pipeline`] (classify → tunnel demux / flow cache) in
//! step with the bindings. A flow-cache miss comes to the controller as a packet-in; the engine
//! [simulates](sim::simulate) the packet through the logical topology from its ingress port,
//! applies the simulation's effects (MAC learning), compiles the result into one flow that
//! matches the metadata (ingress port key) and only the fields the simulation read, and sends the
//! packet on along the same actions. Copies for ports on other hosts go out the tunnel to that
//! host with the egress port's key as `tun_id`; the egress host only demultiplexes by key.
//!
//! Every reactive flow has a unique cookie and is indexed by the [tags](sim::Tag) of what it
//! depended on; a topology, binding or MAC-table change deletes exactly the flows carrying the
//! affected tags, by cookie, on the switch that has them. Changes arrive on the same ordered
//! stream as packet-ins (see the crate docs), so a flow simulated on an old snapshot is always
//! sent before the deletes the new one causes.
//!
//! Priorities in the flow cache come from the set of fields a flow matches: distinct sets get
//! distinct priorities, so two flows at one priority match the same fields and are either
//! identical (the newer replaces the older, and the engine retires the older's cookie) or
//! disjoint. Never two overlapping flows at one priority.

pub mod arp;
pub mod cache;
pub mod chain;
pub mod dhcp;
pub mod flowkey;
pub mod hold;
pub mod index;
pub mod pipeline;
pub mod reply;
pub mod route;
pub mod sim;
pub mod trace;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ofproto::consts::OFPFF_SEND_FLOW_REM;
use ofproto::{
    Action, FlowMod, Instruction, Match, Message, OxmField, PacketIn, PacketOut, OFP_NO_BUFFER,
};
use smallvec::SmallVec;
use topology::Snapshot;
use uuid::Uuid;

use crate::bindings::{Attachment, Bindings};
use crate::{Answer, App, AppCounters, Event, MacEntry, Output, Query};
use flowkey::Header;
use index::Index;
use pipeline::{Key, TABLE_CACHE};
use sim::{Context, Effect, FlowKind, MacTable, Simulation, Start, Tag};

/// The name on the command line.
pub const NAME: &str = "engine";

/// How long flows read back from reconnecting switches wait for the other hosts' switches
/// before they are checked (see `Engine::settle`).
const SETTLE_WAIT: Duration = Duration::from_secs(2);

/// Priority of the flow cache entries: this plus the bits of the matched field set.
const PRIO_CACHE_BASE: u16 = 1000;

/// Tunables.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Idle timeout of forwarding and drop flows, seconds.
    pub idle_timeout: u16,
    /// Hard timeout of forwarding and drop flows, seconds: bounds how long any mistake can last.
    pub hard_timeout: u16,
    /// Hard timeout of error drops (unknown port, loop), seconds: retried soon.
    pub error_timeout: u16,
    /// How long a learned MAC outlives the last flow that carries its traffic. 300 s, as a
    /// Linux bridge's ageing time and OVS's `mac-aging-time`: a VM quiet for a minute is still
    /// where it was, and the first packet to it should not flood its network on every host (nor
    /// lose its reply prediction, which needs the destination's MAC). A VM that moves is
    /// relearned when it speaks; a port that is unbound takes its MACs along.
    pub mac_ttl: Duration,
    /// Packet-ins per second one port may cause (token bucket rate).
    pub packet_in_rate: u32,
    /// Token bucket depth.
    pub packet_in_burst: u32,
    /// MACs remembered in all bridges together; a full table stops learning new ones.
    pub max_macs: usize,
    /// Routers' ARP caches.
    pub arp: arp::Config,
    /// The MTU of a virtual network whose DHCP subnet does not set one: a 1500-byte underlay
    /// less VXLAN's 50 bytes (GRE's are fewer, so it fits both).
    pub mtu: u16,
    /// The bridges' DHCP servers.
    pub dhcp: dhcp::DhcpConfig,
    /// The number of the first reactive cookie. A controller gives each start a different one
    /// (from the clock: the engine reads none), so a flow a previous run left on a switch and
    /// a flow of this run never share a cookie while the old one waits to be read back.
    pub cookie_start: u64,
    /// Install the reply's flow on the destination's host together with a packet that demands
    /// one (an ICMP echo request, a TCP segment), so the reply does not come to the controller
    /// too (see `Engine::predict_reply`).
    pub predict_replies: bool,
    /// Send such a packet straight out of the destination's port from the destination's
    /// switch, instead of through the ingress switch and the tunnel (see
    /// `Engine::at_destination`).
    pub deliver_at_destination: bool,
    /// Send such a packet only once the destination's switch has answered a barrier behind
    /// the reply's flow (see `hold`) when it goes out through the ingress switch, or anywhere
    /// without `answer_flows`.
    pub hold_for_reply_flow: bool,
    /// A packet the controller answers (ARP for a router or DHCP host, an echo request to a
    /// router, DHCP) installs a flow sending what it matches to the controller (see
    /// `FlowKind::Answer`).
    pub answer_flows: bool,
    /// Flows the engine's record of installed flows is sized for when it starts (0: it grows
    /// from empty). Its two hash tables (by cookie, by match) rehash every entry when they
    /// grow, in one packet-in's time, under the lock every switch's packet-ins wait for: at
    /// half a million flows a 16–32 ms stall of every switch, which sizing them for the flows
    /// to come avoids. Not by default: tables sized far beyond the flows they hold are slower
    /// to probe (their entries spread over more cache lines), and at 100 k flows in tables
    /// sized for 2²⁰ the 1 % invalidation took twice as long (BENCHMARKS.md). Reserved, each
    /// table costs its control bytes (two bytes a flow) resident at once; the rest is address
    /// space the kernel backs as flows fill it. Beyond this, the tables grow as before.
    pub flow_capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_timeout: 60,
            hard_timeout: 600,
            error_timeout: 5,
            mac_ttl: Duration::from_secs(300),
            packet_in_rate: 200,
            packet_in_burst: 400,
            max_macs: 1 << 20,
            arp: arp::Config::default(),
            mtu: 1450,
            dhcp: dhcp::DhcpConfig::default(),
            cookie_start: 1,
            predict_replies: true,
            deliver_at_destination: true,
            hold_for_reply_flow: true,
            answer_flows: true,
            flow_capacity: 0,
        }
    }
}

/// Counters of what the engine did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packet-ins received.
    pub packet_ins: u64,
    /// Simulations run.
    pub simulations: u64,
    /// Flow-cache entries installed.
    pub flows_installed: u64,
    /// Flow-cache entries deleted because something they depended on changed.
    pub flows_invalidated: u64,
    /// Flow-cache entries a switch reported gone (FLOW_REMOVED for a flow the engine had:
    /// idle or hard timeout).
    pub flows_removed: u64,
    /// Packet-ins over a port's budget, dropped unanswered.
    pub budget_drops: u64,
    /// Packet-ins too short for Ethernet, or from a port that is no bound VIF.
    pub unparseable: u64,
    /// Packet-ins whose ingress is no bound logical port (a race with a binding change).
    pub unknown_ingress: u64,
    /// Drop results by reason.
    pub drops: HashMap<&'static str, u64>,
    /// ERRORs switches sent for the engine's messages.
    pub switch_errors: u64,
    /// MACs learned (new or moved).
    pub macs_learned: u64,
    /// Answers the virtual devices sent, by kind (ARP replies, ICMP, DHCP).
    pub answers: HashMap<&'static str, u64>,
    /// Answers decided but not sent, by reason (a refused ICMP error, an ignored DHCP client).
    pub unanswered: HashMap<&'static str, u64>,
    /// Packets simulated again after their next hop answered or failed.
    pub resimulated: u64,
    /// Reactive flows found on a (re)connecting switch and kept: what the engine would install
    /// now (their cookies and counters stay).
    pub flows_adopted: u64,
    /// Reactive flows found on a (re)connecting switch and deleted: stale, or not checkable.
    pub flows_readback_deleted: u64,
    /// Reply flows installed ahead of their reply (`Config::predict_replies`).
    pub replies_predicted: u64,
    /// First packets held until the destination's switch confirmed their reply's flow with a
    /// barrier (`hold`).
    pub packets_held: u64,
    /// Held packets that went at their deadline, the barrier unanswered.
    pub holds_expired: u64,
    /// First packets sent out of their destination's port by the destination's switch, behind
    /// their reply's flow (`Config::deliver_at_destination`).
    pub delivered_at_destination: u64,
}

#[derive(Debug, Clone, Copy)]
struct MacMeta {
    refs: u32,
    /// When the entry goes, once no flow refers to it.
    expires: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A reactive flow found on a switch, waiting to be checked.
struct ReadBack {
    dpid: u64,
    flow: ofproto::FlowStats,
}

#[derive(Default)]
struct SwitchState {
    pipeline: HashMap<Key, Vec<Instruction>>,
    /// Its reactive flows were asked for (on connect) and not answered yet.
    reading_back: bool,
}

/// The engine's state: the inputs it simulates on and the flows it installed.
pub struct Engine {
    config: Config,
    snapshot: Arc<Snapshot>,
    index: Arc<Index>,
    bindings: Arc<Bindings>,
    arp: arp::Cache,
    switches: FxHashMap<u64, SwitchState>,
    macs: MacTable,
    mac_meta: FxHashMap<(Uuid, [u8; 6]), MacMeta>,
    mac_expiry: BinaryHeap<Reverse<(Instant, Uuid, [u8; 6])>>,
    /// The flows it installed, indexed by cookie, match and tag.
    cache: cache::FlowCache,
    /// Reactive flows read back from (re)connecting switches, checked once every connected
    /// switch has answered (see `adopt`).
    readback: Vec<ReadBack>,
    /// When the flows read back are checked even if a host's switch has not connected yet.
    settle_by: Option<Instant>,
    next_cookie: u64,
    buckets: FxHashMap<(u64, u32), Bucket>,
    /// First packets waiting for the barrier behind their reply's predicted flow.
    holds: hold::Holds,
    stats: Stats,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Config::default())
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("revision", &self.snapshot.revision())
            .field("switches", &self.switches.len())
            .field("flows", &self.cache.len())
            .field("macs", &self.macs.len())
            .finish_non_exhaustive()
    }
}

/// How many answers to answers one packet may cause (an ARP request the bridge answers).
const MAX_ANSWER_DEPTH: u8 = 3;

/// A packet to simulate.
struct Job {
    dpid: u64,
    start: Start,
    frame: bytes::Bytes,
    buffer_id: u32,
    /// How many generations of answers led to it.
    depth: u8,
}

/// A flow the engine would install for a packet, and the packet-out that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// Where the simulation started.
    pub simulation_start: Start,
    /// The header simulated.
    pub header: Header,
    /// The simulation it came from.
    pub simulation: Simulation,
    /// Priority in the flow cache.
    pub priority: u16,
    /// Match (metadata + the fields read).
    pub match_: Match,
    /// Actions (empty: drop).
    pub actions: Vec<Action>,
    /// For a routed flow: the longest frame it may carry; longer ones go to the controller
    /// (`check_pkt_larger` into `write_actions`, then table 21).
    pub mtu_check: Option<u16>,
}

/// The actions of an answer's flow ([`FlowKind::Answer`]): the whole packet to the controller.
fn answer_actions() -> Vec<Action> {
    vec![Action::Output {
        port: ofproto::port_no::CONTROLLER,
        max_len: ofproto::consts::OFPCML_NO_BUFFER,
    }]
}

impl Compiled {
    /// The flow's instructions.
    pub fn instructions(&self) -> Vec<Instruction> {
        if self.simulation.flow == FlowKind::Answer {
            return vec![Instruction::ApplyActions(answer_actions())];
        }
        if self.actions.is_empty() {
            return vec![];
        }
        match self.mtu_check {
            None => vec![Instruction::ApplyActions(self.actions.clone())],
            Some(len) => {
                let (reg, bit) = pipeline::REG_TOO_BIG;
                vec![
                    Instruction::ApplyActions(vec![Action::nx_check_pkt_larger(len, reg, bit)]),
                    Instruction::WriteActions(self.actions.clone()),
                    Instruction::GotoTable(pipeline::TABLE_MTU),
                ]
            }
        }
    }
}

/// What a compiled flow depends on, each tag once: in walk order (provenance shows the path
/// from it), or sorted for a wide flood (a tree, not a path; a linear dedup would be quadratic).
/// An error drop depends on nothing.
fn flow_tags(c: &Compiled) -> SmallVec<[Tag; 16]> {
    let mut tags: SmallVec<[Tag; 16]> = SmallVec::new();
    if c.simulation.is_error() {
        return tags;
    }
    let all = &c.simulation.tags;
    if all.len() <= 24 {
        // A 64-bit filter of the tags kept so far: a tag whose bit is clear is new without
        // scanning them (most of a walk's tags are distinct; the scan was up to a tenth of a
        // packet-in through a router and its chain).
        let mut kept = 0u64;
        for t in all {
            let bit = tag_bit(t);
            if kept & bit == 0 || !tags.contains(t) {
                kept |= bit;
                tags.push(*t);
            }
        }
    } else {
        tags.extend_from_slice(all);
        tags.sort_unstable();
        tags.dedup();
    }
    tags
}

/// One bit of 64 for `t`, from its id: equal tags get equal bits (the filter in `flow_tags`).
fn tag_bit(t: &Tag) -> u64 {
    let (kind, id, extra) = match *t {
        Tag::Port(u) => (0, u, 0),
        Tag::Device(u) => (1, u, 0),
        Tag::Mac(u, m) => (2, u, u32::from(m[5])),
        Tag::Flood(u, m) => (3, u, u32::from(m[5])),
        Tag::Arp(u, ip) => (4, u, u32::from(ip)),
        Tag::Chain(u) => (5, u, 0),
        Tag::Route(u) => (6, u, 0),
        Tag::Dst(u, net) => (7, u, u32::from(net.addr()) ^ u32::from(net.prefix_len())),
        Tag::PortGroup(u) => (8, u, 0),
        Tag::AddrGroup(u) => (9, u, 0),
        Tag::Tunnel(from, to) => {
            let b = to.as_bytes();
            (10, from, u32::from_le_bytes([b[12], b[13], b[14], b[15]]))
        }
    };
    let b = id.as_bytes();
    let h = u32::from_le_bytes([b[12], b[13], b[14], b[15]]) ^ extra ^ kind;
    1 << (h.wrapping_mul(0x9e37_79b9) >> 26)
}

/// A flow read back from a switch, as ovs-ofctl would print it (for the logs).
fn flow_stats_text(f: &ofproto::FlowStats) -> ofproto::display::FlowText<'_> {
    ofproto::display::FlowText {
        table_id: f.table_id,
        priority: f.priority,
        match_: &f.match_,
        instructions: &f.instructions,
    }
}

/// The header of the reply a packet with header `h` (as delivered) demands, if it demands one:
/// an ICMP echo request's echo reply, a TCP segment's answer. Addresses, ports and MACs swap;
/// the TTL is a fresh sender's (a flow matches none: routers decrement it by action).
fn reply_header(h: &Header) -> Option<Header> {
    let ip = h.ipv4?;
    if ip.frag != 0 {
        return None;
    }
    let l4 = match h.l4 {
        flowkey::L4::Icmp(8, 0) => flowkey::L4::Icmp(0, 0),
        flowkey::L4::Tcp(s, d) => flowkey::L4::Tcp(d, s),
        _ => return None,
    };
    Some(Header {
        eth_src: h.eth_dst,
        eth_dst: h.eth_src,
        ipv4: Some(flowkey::Ipv4 {
            src: ip.dst,
            dst: ip.src,
            ttl: 64,
            ..ip
        }),
        arp: None,
        l4,
        ..*h
    })
}

/// The destination MAC a flow's actions write (its last `set_field` of `eth_dst`), if any.
fn written_eth_dst(instructions: &[Instruction]) -> Option<[u8; 6]> {
    instructions
        .iter()
        .flat_map(|i| match i {
            Instruction::ApplyActions(a) | Instruction::WriteActions(a) => a.as_slice(),
            _ => &[],
        })
        .filter_map(|a| match a {
            Action::SetField(OxmField::EthDst { value, .. }) => Some(*value),
            _ => None,
        })
        .last()
}

/// Ethernet header bytes on top of the IP MTU (VIF traffic is untagged).
const ETH_HEADER: u16 = 14;

/// Whether `actions` can be an action set (`write_actions`): it keeps one action of each type
/// (one per field for `set_field`) and applies them in a fixed order, so one output, one
/// `dec_ttl` and distinct fields only — what a routed unicast is; a flood or a path across two
/// routers (two `dec_ttl`s) keeps `apply_actions` and its packets are not length-checked.
fn fits_action_set(actions: &[Action]) -> bool {
    let mut outputs = 0;
    let mut ttls = 0;
    let mut fields = SmallVec::<[ofproto::oxm::OxmKey; 4]>::new();
    for a in actions {
        match a {
            Action::Output { .. } => outputs += 1,
            Action::DecNwTtl => ttls += 1,
            Action::SetField(f) => {
                if fields.contains(&f.key()) {
                    return false;
                }
                fields.push(f.key());
            }
            _ => return false,
        }
    }
    outputs == 1 && ttls <= 1
}

impl Engine {
    /// An engine with no topology yet.
    pub fn new(config: Config) -> Engine {
        // 40 bits of the start: reactive cookies keep reading `0x53548…` in dump-flows for the
        // next 2^43 flows, and two starts still rarely come near each other.
        let first_cookie = (config.cookie_start & ((1 << 40) - 1)).max(1);
        let flow_capacity = config.flow_capacity;
        Engine {
            arp: arp::Cache::new(config.arp.clone()),
            index: Arc::new(Index::build(&Snapshot::default(), config.mtu)),
            config,
            snapshot: Arc::new(Snapshot::default()),
            bindings: Arc::new(Bindings::default()),
            switches: FxHashMap::default(),
            macs: MacTable::default(),
            mac_meta: FxHashMap::default(),
            mac_expiry: BinaryHeap::new(),
            cache: cache::FlowCache::with_capacity(flow_capacity),
            readback: Vec::new(),
            settle_by: None,
            next_cookie: first_cookie,
            buckets: FxHashMap::default(),
            holds: hold::Holds::default(),
            stats: Stats::default(),
        }
    }

    /// Replaces the tunables (tests, benchmarks); state is kept.
    pub fn set_config(&mut self, config: Config) {
        self.arp.set_config(config.arp.clone());
        if config.mtu != self.config.mtu {
            self.index = Arc::new(Index::build(&self.snapshot, config.mtu));
        }
        self.config = config;
    }

    /// The routers' ARP caches.
    pub fn arp(&self) -> &arp::Cache {
        &self.arp
    }

    /// The ingress port, OpenFlow port and header that made the flow with this cookie.
    pub fn flow_origin(&self, cookie: u64) -> Option<(Uuid, u32, Header)> {
        self.cache.origin(cookie).copied()
    }

    /// What it counted.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Its counters as every app reports them (`Query::Counters`).
    pub fn counters(&self) -> AppCounters {
        let s = &self.stats;
        AppCounters {
            packet_ins: s.packet_ins,
            budget_hits: s.budget_drops,
            ignored: vec![
                ("unknown_ingress", s.unknown_ingress),
                ("unparseable", s.unparseable),
            ],
            simulations: s.simulations,
            flows_installed: s.flows_installed,
            flows_removed: s.flows_removed,
            flows_invalidated: s.flows_invalidated,
            flows: Some(self.cache.len() as u64),
            drops: crate::sorted_counts(&s.drops),
            answers: crate::sorted_counts(&s.answers),
            unanswered: crate::sorted_counts(&s.unanswered),
            macs_learned: s.macs_learned,
            resimulated: s.resimulated,
            switch_errors: s.switch_errors,
            replies_predicted: s.replies_predicted,
            packets_held: s.packets_held,
            holds_expired: s.holds_expired,
            delivered_at_destination: s.delivered_at_destination,
        }
    }

    /// The MAC table of `bridge`: (MAC, port) in MAC order.
    pub fn mac_table(&self, bridge: Uuid) -> Vec<([u8; 6], Uuid)> {
        let mut v: Vec<_> = self
            .macs
            .iter()
            .filter(|((b, _), _)| *b == bridge)
            .map(|((_, m), p)| (*m, *p))
            .collect();
        v.sort();
        v
    }

    /// How many flow-cache entries the engine believes are installed.
    pub fn flow_count(&self) -> usize {
        self.cache.len()
    }

    /// The tags of the flow with this cookie (provenance).
    pub fn flow_tags(&self, cookie: u64) -> Option<Vec<Tag>> {
        self.cache
            .get(cookie)
            .map(|f| self.cache.tags_of(f).collect())
    }

    /// Simulates `frame` entering datapath `dpid` at ingress `port` and compiles the result,
    /// changing nothing: what a packet-in would install, for the tests' oracle and for traces.
    pub fn dry_run(&self, dpid: u64, port: Uuid, in_port: u32, header: Header) -> Compiled {
        self.compile(dpid, Start::Ingress { port, in_port }, header)
    }

    /// What the simulation reads.
    fn context(&self) -> Context<'_> {
        Context {
            snapshot: &self.snapshot,
            index: &self.index,
            bindings: &self.bindings,
            macs: &self.macs,
            arp: &self.arp,
        }
    }

    /// Traces `header` entering the virtual network at logical port `port`: the simulation a
    /// packet-in there would run, step by step, where its copies go and the flow it would
    /// install on the port's host. Changes nothing.
    pub fn trace(&self, port: Uuid, header: Header) -> trace::Trace {
        let at = self.bindings.port(port).map(|l| (l.dpid, l.ofport));
        self.trace_at(at, port, header)
    }

    /// The flow-cache entries the engine installed on `dpid` (every switch: `None`), with what
    /// made each and what it depends on.
    pub fn flows(&self, dpid: Option<u64>) -> Vec<trace::FlowInfo> {
        let mut v: Vec<_> = self
            .cache
            .iter()
            .filter(|f| dpid.is_none_or(|d| d == f.dpid))
            .filter_map(|f| self.flow_info(f))
            .collect();
        v.sort_by_key(|f| f.cookie);
        v
    }

    fn flow_info(&self, f: &cache::Flow) -> Option<trace::FlowInfo> {
        // Every record has its origin: the cache stores both at once.
        let (port, in_port, header) = self.cache.origin(f.cookie).copied()?;
        Some(trace::FlowInfo {
            cookie: f.cookie,
            dpid: f.dpid,
            priority: f.priority,
            port,
            in_port,
            header,
            tags: self.cache.tags_of(f).collect(),
            drop: f.drop,
        })
    }

    /// The flow with this cookie and its packet traced again now, where it entered: if the
    /// flow is still right, the trace's flow is the installed one.
    pub fn explain(&self, cookie: u64) -> Option<(trace::FlowInfo, trace::Trace)> {
        let f = self.cache.get(cookie)?;
        let info = self.flow_info(f)?;
        let trace = self.trace_at(Some((f.dpid, info.in_port)), info.port, info.header);
        Some((info, trace))
    }

    fn trace_at(&self, at: Option<(u64, u32)>, port: Uuid, header: Header) -> trace::Trace {
        let (dpid, in_port) = at.unwrap_or((0, 0));
        let start = Start::Ingress { port, in_port };
        let (simulation, steps) = sim::simulate_traced(self.context(), start, header);
        let here = self.bindings.host(dpid);
        let deliveries = simulation
            .egress
            .iter()
            .map(|e| {
                let loc = self.bindings.port(e.port);
                trace::Delivery {
                    port: e.port,
                    host: loc.map(|l| l.host),
                    dpid: loc.map(|l| l.dpid),
                    via: match at {
                        Some(_) => self.via(dpid, here, in_port, e.port),
                        None => trace::Via::NoIngressHost,
                    },
                    header: e.header,
                }
            })
            .collect();
        trace::Trace {
            dpid: at.map(|a| a.0),
            steps,
            deliveries,
            compiled: self.compiled(dpid, start, header, simulation),
        }
    }

    /// How a copy for exterior port `port` leaves datapath `dpid` of host `here` (ingress
    /// OpenFlow port `in_port`).
    fn via(&self, dpid: u64, here: Option<Uuid>, in_port: u32, port: Uuid) -> trace::Via {
        self.via_host(dpid, here, in_port, port).0
    }

    /// `via`, and the host the copy crosses to when it is bound on another host (whether a
    /// tunnel there exists or not: the flow depends on that tunnel either way).
    fn via_host(
        &self,
        dpid: u64,
        here: Option<Uuid>,
        in_port: u32,
        port: Uuid,
    ) -> (trace::Via, Option<Uuid>) {
        let Some(loc) = self.bindings.port(port) else {
            return (trace::Via::Unbound, None);
        };
        if loc.dpid == dpid {
            if loc.ofport == in_port {
                return (trace::Via::Hairpin, None);
            }
            return (trace::Via::Local { ofport: loc.ofport }, None);
        }
        let via = match here.and_then(|h| self.bindings.tunnel(h, loc.host)) {
            Some(ofport) => trace::Via::Tunnel {
                ofport,
                key: loc.key,
            },
            None => trace::Via::NoTunnel,
        };
        (via, Some(loc.host))
    }

    fn compile(&self, dpid: u64, start: Start, header: Header) -> Compiled {
        let simulation = sim::simulate(self.context(), start, header);
        self.compiled(dpid, start, header, simulation)
    }

    fn compiled(
        &self,
        dpid: u64,
        start: Start,
        header: Header,
        mut simulation: Simulation,
    ) -> Compiled {
        let (port, in_port) = match start {
            Start::Ingress { port, in_port } => (port, in_port),
            Start::Egress { port } => (port, ofproto::port_no::CONTROLLER),
        };
        // The classifier wrote the port's tunnel key as metadata.
        let key = self.index.port(port).map_or(0, |p| p.port.tunnel_key);
        let here = self.bindings.host(dpid);
        let mut actions = Vec::new();
        let mut current = header;
        let mut tunnels: SmallVec<[Tag; 4]> = SmallVec::new();
        for e in &simulation.egress {
            let (via, peer) = self.via_host(dpid, here, in_port, e.port);
            if let (Some(from), Some(to)) = (here, peer) {
                let t = Tag::Tunnel(from, to);
                if !tunnels.contains(&t) {
                    tunnels.push(t);
                }
            }
            if !matches!(via, trace::Via::Local { .. } | trace::Via::Tunnel { .. }) {
                continue;
            }
            current.diff(&e.header, &mut actions);
            current = e.header;
            match via {
                trace::Via::Local { ofport } => actions.push(Action::Output {
                    port: ofport,
                    max_len: 0,
                }),
                trace::Via::Tunnel { ofport, key } => {
                    actions.push(Action::SetField(OxmField::TunnelId {
                        value: u64::from(key),
                        mask: None,
                    }));
                    actions.push(Action::Output {
                        port: ofport,
                        max_len: 0,
                    });
                }
                _ => {}
            }
        }
        let mtu_check = simulation
            .mtu
            .filter(|_| fits_action_set(&actions))
            .map(|mtu| mtu.saturating_add(ETH_HEADER));
        if simulation.flow == FlowKind::Answer && !self.config.answer_flows {
            simulation.flow = FlowKind::None;
        }
        // After the walk's own tags: the same walk still gives the same tags in the same order.
        simulation.tags.extend(tunnels);
        Compiled {
            simulation_start: start,
            header,
            priority: PRIO_CACHE_BASE + simulation.seen.fields.bits(),
            match_: header.to_match(u64::from(key), simulation.seen),
            simulation,
            actions,
            mtu_check,
        }
    }

    fn switch_up(&mut self, now: Instant, dpid: u64, out: &mut Vec<Output>) {
        self.forget_switch(now, dpid);
        // Packets whose TTL a flow's dec_ttl finds expired come to us (OVS leaves
        // OFPR_INVALID_TTL off by default): the simulation answers them with time exceeded.
        out.push(Output {
            dpid,
            message: Message::SetAsync(pipeline::async_config()),
        });
        let desired = pipeline::desired(&self.bindings, dpid);
        for fm in pipeline::reconcile(&desired) {
            out.push(Output {
                dpid,
                message: Message::FlowMod(fm),
            });
        }
        // The reactive flows it has stay while they are checked: allowed traffic keeps
        // flowing through them during the reconcile (see `adopt`).
        out.push(Output {
            dpid,
            message: Message::MultipartRequest(pipeline::read_back()),
        });
        self.switches.insert(
            dpid,
            SwitchState {
                pipeline: desired,
                reading_back: true,
            },
        );
    }

    /// The reactive flows switch `dpid` had when it (re)connected, read back. They are checked
    /// once every host's switch has answered (`settle`), since a flow may depend on a MAC
    /// learned behind another switch, after what they tell of the state they were made in is
    /// learned again (`relearn`). Each is checked the way the tests' oracle checks: a header is rebuilt from its match (a flow matches
    /// exactly what its simulation read, so any packet it matches decides the same), simulated
    /// from its ingress port, and compiled. Those that come out the same — priority, match,
    /// actions — are kept with their cookies and counters and indexed like the engine's own;
    /// the others are deleted by cookie. The MACs the flows' packets taught their bridges are
    /// learned again first, since later flows were simulated with them. After a controller
    /// restart the routers' ARP caches are empty, so flows through a next hop learned by ARP
    /// go (the next packet asks again); flows through next hops the topology knows stay.
    fn adopt(
        &mut self,
        now: Instant,
        dpid: u64,
        flows: Option<&[ofproto::FlowStats]>,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = self.switches.get_mut(&dpid) else {
            return;
        };
        if !std::mem::take(&mut state.reading_back) {
            return;
        }
        let Some(flows) = flows else {
            // Nothing can be checked: every reactive flow goes, and packets are simulated again.
            out.push(Output {
                dpid,
                message: Message::FlowMod(pipeline::delete_reactive()),
            });
            self.forget_flows(now, dpid);
            self.stats.flows_readback_deleted += 1;
            self.settle(now, out);
            return;
        };
        let reactive = pipeline::PIPELINE_COOKIE | pipeline::REACTIVE_BIT;
        let mut found = Vec::new();
        for f in flows {
            if f.table_id != TABLE_CACHE
                || f.cookie & (pipeline::ENGINE_COOKIE_MASK | pipeline::REACTIVE_BIT) != reactive
                || self.cache.get(f.cookie).is_some()
            {
                continue;
            }
            found.push(ReadBack {
                dpid,
                flow: f.clone(),
            });
        }
        self.readback.extend(found);
        self.settle_by.get_or_insert(now + SETTLE_WAIT);
        self.settle(now, out);
    }

    /// Where a flow read back from `dpid` takes its packets in, and a header it matches;
    /// `None` when its match names no port bound on that switch.
    fn read_back_start(&self, dpid: u64, f: &ofproto::FlowStats) -> Option<(Start, Header)> {
        let (key, header) = Header::from_match(&f.match_)?;
        let port = self
            .snapshot
            .port_by_tunnel_key(u32::try_from(key).ok()?)?
            .id;
        let loc = self.bindings.port(port).filter(|l| l.dpid == dpid)?;
        Some((
            Start::Ingress {
                port,
                in_port: loc.ofport,
            },
            header,
        ))
    }

    /// What the flows read back tell of the state they were simulated with, learned again
    /// before they are checked: the MACs their packets taught their bridges (flows on other
    /// switches depend on them), where a flow that delivers to one VIF found its destination
    /// MAC, and the ARP answers behind the next hops a routed flow rewrites to (the cache ages
    /// them like any answer, so a neighbour that changed is asked again). What this run has
    /// learned already wins.
    fn relearn(
        &mut self,
        now: Instant,
        found: &[(ReadBack, Option<(Start, Header)>)],
        out: &mut Vec<Output>,
    ) {
        let mut todo = Vec::new();
        for (r, start) in found {
            let Some((start, header)) = *start else {
                continue;
            };
            let eth_dst = written_eth_dst(&r.flow.instructions);
            // Its last bridge found the destination there (or flooded to that port alone,
            // which sends the same way).
            let dst = eth_dst.unwrap_or(header.eth_dst);
            if let Some(port) = self.delivered_to(r.dpid, &r.flow.instructions) {
                let bridge = self
                    .snapshot
                    .get::<topology::model::Port>(port)
                    .map(|p| p.device_id);
                if let Some(bridge) = bridge.filter(|b| {
                    self.snapshot.device_kind(*b) == Some(topology::DeviceKind::Bridge)
                        && dst[0] & 1 == 0
                        && self.index.router_mac(*b, dst).is_none()
                        && !self.macs.contains_key(&(*b, dst))
                }) {
                    self.learn(now, bridge, dst, port, out);
                }
            }
            // One round per router on the path whose next hop only ARP knew.
            for _ in 0..MAX_ANSWER_DEPTH {
                let sim = sim::simulate(self.context(), start, header);
                for e in &sim.effects {
                    if let Effect::Learn { bridge, mac, port } = *e {
                        if !self.macs.contains_key(&(bridge, mac)) {
                            self.learn(now, bridge, mac, port, out);
                        }
                    }
                }
                let (Some(res), Some(mac)) = (sim.resolve, eth_dst) else {
                    break;
                };
                let heard = arp::Heard {
                    router: res.router,
                    port: res.port,
                    ip: res.ip,
                    mac,
                    create: true,
                };
                self.arp.learn(now, heard, &mut todo);
            }
        }
        let mut work = VecDeque::new();
        self.run_todo(now, todo, &mut work, out);
        self.drain(now, &mut work, out);
    }

    /// The one logical port a flow's actions on `dpid` deliver to (a local VIF, or a tunnel
    /// with a port's key), if exactly one.
    fn delivered_to(&self, dpid: u64, instructions: &[Instruction]) -> Option<Uuid> {
        let mut key = None;
        let mut ports = SmallVec::<[Uuid; 2]>::new();
        let actions = instructions.iter().flat_map(|i| match i {
            Instruction::ApplyActions(a) | Instruction::WriteActions(a) => a.as_slice(),
            _ => &[],
        });
        for a in actions {
            match a {
                Action::SetField(OxmField::TunnelId { value, .. }) => key = Some(*value),
                Action::Output { port, .. } => match self.bindings.at(dpid, *port) {
                    Some(Attachment::Vif { port, .. }) => ports.push(port),
                    Some(Attachment::Tunnel { .. }) => {
                        let k = u32::try_from(key?).ok()?;
                        ports.push(self.snapshot.port_by_tunnel_key(k)?.id);
                    }
                    _ => return None,
                },
                _ => {}
            }
        }
        match ports.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Checks the flows read back once every host's switch has connected and been read (after
    /// a controller restart they come back one by one) or [`SETTLE_WAIT`] after the first
    /// answer, whichever is first; until then the flows stay on their switches and traffic
    /// keeps flowing through them.
    fn settle(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.readback.is_empty() {
            self.settle_by = None;
            return;
        }
        let reading = self.switches.values().any(|s| s.reading_back);
        // Every host's switch back, and every read-back switch's host known to the bindings
        // (its OVSDB session may come back after its OpenFlow one).
        let missing = self
            .bindings
            .dpids()
            .any(|d| !self.switches.contains_key(&d))
            || self
                .readback
                .iter()
                .any(|r| self.bindings.host(r.dpid).is_none());
        let late = self.settle_by.is_some_and(|t| t <= now);
        if (reading || missing) && !late {
            return;
        }
        self.settle_by = None;
        let found: Vec<(ReadBack, Option<(Start, Header)>)> = std::mem::take(&mut self.readback)
            .into_iter()
            .filter(|r| self.switches.contains_key(&r.dpid))
            .map(|r| {
                let start = self.read_back_start(r.dpid, &r.flow);
                (r, start)
            })
            .collect();
        self.relearn(now, &found, out);
        let (mut kept_n, mut deleted_n) = (0usize, 0usize);
        for (ReadBack { dpid, flow: f }, start) in found {
            if start.is_none() {
                tracing::debug!(
                    dpid,
                    cookie = format!("{:#x}", f.cookie),
                    found = %flow_stats_text(&f),
                    "read-back flow not kept: its ingress is no port bound on that switch"
                );
            }
            let kept = start.and_then(|(start, header)| {
                let c = self.compile(dpid, start, header);
                // The switch lists the match's fields in its own order: keys compare sets.
                let key = cache::MatchKey::of(&c.match_);
                let same = matches!(c.simulation.flow, FlowKind::Cache | FlowKind::Answer)
                    && c.priority == f.priority
                    && key == cache::MatchKey::of(&f.match_)
                    && c.instructions() == f.instructions;
                // A packet-in since the connect installed the same flow: the switch replaced
                // the old one, the new record stands.
                let replaced = self.cache.find(dpid, c.priority, &key).is_some();
                if !same || replaced {
                    tracing::debug!(
                        dpid,
                        cookie = format!("{:#x}", f.cookie),
                        found = %flow_stats_text(&f),
                        now = %ofproto::display::FlowText {
                            table_id: TABLE_CACHE,
                            priority: c.priority,
                            match_: &c.match_,
                            instructions: &c.instructions()
                        },
                        replaced,
                        "read-back flow not kept"
                    );
                }
                (same && !replaced).then_some((c, key))
            });
            let recorded = match kept {
                Some((c, key)) => {
                    let learned = c.simulation.effects.iter().find_map(|e| match *e {
                        Effect::Learn { bridge, mac, .. }
                            if self.macs.contains_key(&(bridge, mac)) =>
                        {
                            Some((bridge, mac))
                        }
                        _ => None,
                    });
                    let tags = flow_tags(&c);
                    self.record(dpid, f.cookie, &c, key, &tags, learned)
                }
                None => false,
            };
            if !recorded {
                deleted_n += 1;
                self.stats.flows_readback_deleted += 1;
                out.push(Output {
                    dpid,
                    message: Message::FlowMod(pipeline::delete_cookie(f.cookie)),
                });
                continue;
            }
            // This run's cookies continue after every cookie it found.
            let n = f.cookie & (pipeline::REACTIVE_BIT - 1);
            if n >= self.next_cookie {
                self.next_cookie = (n + 1) & (pipeline::REACTIVE_BIT - 1);
            }
            self.stats.flows_adopted += 1;
            kept_n += 1;
        }
        if kept_n + deleted_n > 0 {
            tracing::info!(
                kept = kept_n,
                deleted = deleted_n,
                "flows read back from the switches checked"
            );
        }
    }

    fn forget_switch(&mut self, now: Instant, dpid: u64) {
        self.switches.remove(&dpid);
        self.readback.retain(|r| r.dpid != dpid);
        self.buckets.retain(|(d, _), _| *d != dpid);
        self.forget_flows(now, dpid);
    }

    /// Forgets the records of every flow on `dpid`.
    fn forget_flows(&mut self, now: Instant, dpid: u64) {
        for c in self.cache.cookies_on(dpid) {
            self.remove_flow(now, c);
        }
    }

    fn sync_pipeline(&mut self, dpid: u64, out: &mut Vec<Output>) {
        let desired = pipeline::desired(&self.bindings, dpid);
        let Some(state) = self.switches.get_mut(&dpid) else {
            return;
        };
        for fm in pipeline::diff(&state.pipeline, &desired) {
            out.push(Output {
                dpid,
                message: Message::FlowMod(fm),
            });
        }
        state.pipeline = desired;
    }

    fn budget(&mut self, now: Instant, dpid: u64, in_port: u32) -> bool {
        let rate = f64::from(self.config.packet_in_rate);
        let burst = f64::from(self.config.packet_in_burst);
        if rate == 0.0 {
            return true;
        }
        let b = self.buckets.entry((dpid, in_port)).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The logical port a packet-in entered by: the metadata the classifier wrote (what the
    /// switch decided), else the binding of its in_port.
    fn ingress_of(&self, dpid: u64, pin: &PacketIn, in_port: u32) -> Option<Uuid> {
        let meta = pin.match_.fields.iter().find_map(|f| match f {
            OxmField::Metadata { value, .. } => Some(*value),
            _ => None,
        });
        if let Some(key) = meta.and_then(|m| u32::try_from(m).ok()) {
            if let Some(p) = self.index.port_by_key(key) {
                return Some(p.port.id);
            }
        }
        match self.bindings.at(dpid, in_port) {
            Some(Attachment::Vif { port, .. }) => Some(port),
            _ => None,
        }
    }

    fn packet_in(&mut self, now: Instant, dpid: u64, pin: &PacketIn, out: &mut Vec<Output>) {
        self.stats.packet_ins += 1;
        let Some(in_port) = pin.match_.in_port() else {
            self.stats.unparseable += 1;
            return;
        };
        let from_cache = pin.table_id == TABLE_CACHE || pin.table_id == pipeline::TABLE_MTU;
        if !from_cache || !self.switches.contains_key(&dpid) {
            self.stats.unknown_ingress += 1;
            return;
        }
        if !self.budget(now, dpid, in_port) {
            self.stats.budget_drops += 1;
            return;
        }
        // Shorter than an Ethernet header: nothing to simulate (the header is parsed once,
        // in `process`).
        if pin.data.len() < 14 {
            self.stats.unparseable += 1;
            return;
        }
        let Some(port) = self.ingress_of(dpid, pin, in_port) else {
            self.stats.unknown_ingress += 1;
            return;
        };
        let job = Job {
            dpid,
            start: Start::Ingress { port, in_port },
            frame: pin.data.clone(),
            buffer_id: pin.buffer_id,
            depth: 0,
        };
        // Most packet-ins cause no further work: the queue allocates only when they do.
        let mut work = VecDeque::new();
        self.process(now, job, &mut work, out);
        self.drain(now, &mut work, out);
    }

    /// Simulates every job in `work` (a packet-in, the answers it caused, the packets its
    /// answers release), in order.
    fn drain(&mut self, now: Instant, work: &mut VecDeque<Job>, out: &mut Vec<Output>) {
        while let Some(job) = work.pop_front() {
            self.process(now, job, work, out);
        }
    }

    fn process(&mut self, now: Instant, job: Job, work: &mut VecDeque<Job>, out: &mut Vec<Output>) {
        let Job {
            dpid,
            start,
            frame,
            buffer_id,
            depth,
        } = job;
        if !self.switches.contains_key(&dpid) {
            return;
        }
        let Some(header) = Header::parse(&frame) else {
            self.stats.unparseable += 1;
            return;
        };
        self.stats.simulations += 1;
        let mut compiled = self.compile(dpid, start, header);
        let sim = &compiled.simulation;
        // Effects first: what learning invalidates is older than the flow about to go in.
        let mut learned = None;
        let mut todo = Vec::new();
        for e in &sim.effects {
            match *e {
                Effect::Learn { bridge, mac, port } => {
                    if self.learn(now, bridge, mac, port, out) {
                        learned = Some((bridge, mac));
                    }
                }
                Effect::ArpLearn(heard) => self.arp.learn(now, heard, &mut todo),
            }
        }
        if let Some(reason) = sim.drop {
            if sim.egress.is_empty() {
                *self.stats.drops.entry(reason.as_str()).or_default() += 1;
            }
        }
        if let Some(r) = sim.resolve {
            let parked = arp::Parked {
                dpid,
                start,
                frame: frame.clone(),
            };
            self.arp
                .resolve(now, r.router, r.port, r.ip, parked, &mut todo);
        }
        // The switch whose barrier the packet must wait for (see `hold`): the destination's,
        // when its reply's flow goes there now. On the ingress switch itself the flow-mod is
        // ahead of the packet-out on the same connection already.
        let mut wait_for = None;
        // Where it goes out instead of the ingress switch: the destination's switch, with the
        // actions that deliver it (see `at_destination`).
        let mut deliver_at = None;
        // Where the flow-mod sent now waits for its match (see below).
        let mut flow_mod_at = None;
        let in_port = match start {
            Start::Ingress { port, in_port } => {
                let key = (sim.flow != FlowKind::None)
                    .then(|| cache::MatchKey::of(&compiled.match_))
                    // An answer's flow sends every packet it matches here: it is re-sent only
                    // when it changed (a miss's flow is re-sent on its packet-in, which raced
                    // it), not at each packet it brings.
                    .filter(|key| {
                        sim.flow != FlowKind::Answer || !self.installed(dpid, &compiled, key)
                    });
                if let Some(key) = key {
                    if let Some(cookie) = self.admit(now, dpid, &compiled, key, learned) {
                        flow_mod_at = Some(out.len());
                        self.emit_flow(dpid, cookie, &compiled, Match::default(), out);
                    }
                }
                if sim.flow == FlowKind::Cache && self.config.predict_replies {
                    if let Some(dest) = self
                        .predict_reply(now, port, &compiled, out)
                        .filter(|&dest| dest != dpid)
                    {
                        deliver_at = self
                            .at_destination(dest, &compiled)
                            .filter(|_| buffer_id == OFP_NO_BUFFER);
                        // Through the ingress switch, the packet and the reply's flow take two
                        // connections that nothing orders: it waits. At the destination the
                        // flow-mod is ahead of it on the same connection, and what made it wait
                        // there too — the datapath flows OVS cached from the VM's answered
                        // packets, replaced only when its revalidators run — the answers'
                        // flows prevent (`FlowKind::Answer`).
                        if self.config.hold_for_reply_flow
                            && (deliver_at.is_none() || !self.config.answer_flows)
                        {
                            wait_for = Some(dest);
                        }
                    }
                }
                in_port
            }
            // Generated packets install nothing: only what enters from a VM is cached.
            Start::Egress { .. } => ofproto::port_no::CONTROLLER,
        };
        // The flow-mod takes the compiled match itself rather than a copy (a copy of eight
        // 40-byte fields was a twentieth of a routed packet-in), now that nothing reads it
        // any more; it was queued first, so the outputs keep their order. `emit_flow` pushed
        // exactly that flow-mod at `flow_mod_at`, and since then `out` was only appended to.
        if let Some(Output {
            message: Message::FlowMod(fm),
            ..
        }) = flow_mod_at.and_then(|i| out.get_mut(i))
        {
            fm.match_ = std::mem::take(&mut compiled.match_);
        }
        if !compiled.actions.is_empty() {
            let (buffer_id, data) = if buffer_id == OFP_NO_BUFFER {
                (OFP_NO_BUFFER, frame.clone())
            } else {
                (buffer_id, bytes::Bytes::new())
            };
            let through_ingress = Output {
                dpid,
                message: Message::PacketOut(PacketOut {
                    buffer_id,
                    in_port,
                    // The flow-mod has its copy: the packet-out takes the compiled actions.
                    actions: std::mem::take(&mut compiled.actions),
                    data,
                }),
            };
            // Delivered at the destination, a held packet whose destination's session ends
            // goes through the ingress switch instead (a secure-mode switch keeps its flows).
            let (packet_out, fallback) = match deliver_at {
                Some((dest, actions)) => {
                    self.stats.delivered_at_destination += 1;
                    let at_dest = Output {
                        dpid: dest,
                        message: Message::PacketOut(PacketOut {
                            buffer_id: OFP_NO_BUFFER,
                            in_port: ofproto::port_no::CONTROLLER,
                            actions,
                            data: frame.clone(),
                        }),
                    };
                    (at_dest, Some(through_ingress))
                }
                None => (through_ingress, None),
            };
            match wait_for.and_then(|dest| {
                let back = self.holds.hold(now, dest, packet_out.clone(), fallback);
                back.is_none().then_some(dest)
            }) {
                Some(dest) => {
                    self.stats.packets_held += 1;
                    out.push(Output {
                        dpid: dest,
                        message: Message::BarrierRequest,
                    });
                }
                None => out.push(packet_out),
            }
        }
        for g in &compiled.simulation.generated {
            match reply::build(&g.reply, &frame, &self.snapshot, &self.config.dhcp) {
                Ok(answer) if depth < MAX_ANSWER_DEPTH => {
                    *self.stats.answers.entry(g.reply.kind()).or_default() += 1;
                    work.push_back(Job {
                        dpid,
                        start: Start::Egress { port: g.from },
                        frame: answer.into(),
                        buffer_id: OFP_NO_BUFFER,
                        depth: depth + 1,
                    });
                }
                Ok(_) => *self.stats.unanswered.entry("depth").or_default() += 1,
                Err(why) => *self.stats.unanswered.entry(why.as_str()).or_default() += 1,
            }
        }
        self.run_todo(now, todo, work, out);
    }

    /// Carries out what the ARP caches asked for.
    fn run_todo(
        &mut self,
        now: Instant,
        todo: Vec<arp::Todo>,
        work: &mut VecDeque<Job>,
        out: &mut Vec<Output>,
    ) {
        for t in todo {
            match t {
                arp::Todo::Request { port, ip, dpid, .. } => {
                    let Some(p) = self.snapshot.get::<topology::model::Port>(port) else {
                        continue;
                    };
                    let (Some(mac), Some((spa, _))) = (p.mac, route::port_v4(p)) else {
                        continue;
                    };
                    // From the switch that asked; if it left, from any (the request floods the
                    // bridge behind the port, wherever its ports are).
                    let Some(dpid) = Some(dpid)
                        .filter(|d| self.switches.contains_key(d))
                        .or_else(|| self.switches.keys().min().copied())
                    else {
                        continue;
                    };
                    *self.stats.answers.entry("arp_request").or_default() += 1;
                    work.push_back(Job {
                        dpid,
                        start: Start::Egress { port },
                        frame: reply::arp_request(mac.0, spa, ip).into(),
                        buffer_id: OFP_NO_BUFFER,
                        depth: 1,
                    });
                }
                arp::Todo::Changed { router, ip } => {
                    self.invalidate(now, &[Tag::Arp(router, ip)], out)
                }
                arp::Todo::Release(packets) => {
                    for p in packets {
                        self.stats.resimulated += 1;
                        work.push_back(Job {
                            dpid: p.dpid,
                            start: p.start,
                            frame: p.frame,
                            buffer_id: OFP_NO_BUFFER,
                            depth: 0,
                        });
                    }
                }
            }
        }
    }

    /// The actions that send `c`'s packet out of its one egress port on switch `dest`, as that
    /// switch's tunnel demux would after the ingress switch's flow and the tunnel: the header's
    /// rewrites, then the port. `None` unless the packet has exactly one copy, bound on `dest`.
    ///
    /// It skips the ingress switch's execution, the tunnel and the destination switch's upcall;
    /// later packets take the flow installed on the ingress switch. Sent on `dest`'s own
    /// connection behind the reply's flow, it follows that flow into the flow table, but that
    /// is not enough for the reply: OVS executes the packet-out in the same main-loop turn as
    /// the flow-mod, before its revalidators have replaced the datapath flows cached from the
    /// VM's earlier packets (a table miss to the controller, as wide as that miss allowed), so
    /// an answer within microseconds still takes such a flow to the controller (4 and 5 of 5
    /// in BENCHMARKS). Hence the hold still applies by default: the barrier's round trip puts
    /// the packet-out in a later turn.
    fn at_destination(&self, dest: u64, c: &Compiled) -> Option<(u64, Vec<Action>)> {
        if !self.config.deliver_at_destination || c.actions.is_empty() {
            return None;
        }
        let [e] = &c.simulation.egress[..] else {
            return None;
        };
        let loc = self.bindings.port(e.port).filter(|l| l.dpid == dest)?;
        let mut actions = Vec::new();
        c.header.diff(&e.header, &mut actions);
        actions.push(Action::Output {
            port: loc.ofport,
            max_len: 0,
        });
        Some((dest, actions))
    }

    /// Whether `dpid` has flow `c` already, depending on the same things.
    fn installed(&self, dpid: u64, c: &Compiled, key: &cache::MatchKey) -> bool {
        self.cache
            .find(dpid, c.priority, key)
            .is_some_and(|old| self.cache.same_tags(old, &flow_tags(c)))
    }

    /// Records and sends `c`'s flow on `dpid`, the match's key computed already (the flow-mod
    /// gets a copy of the match: `process` moves it instead).
    fn install_keyed(
        &mut self,
        now: Instant,
        dpid: u64,
        c: &Compiled,
        key: cache::MatchKey,
        learned: Option<(Uuid, [u8; 6])>,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(cookie) = self.admit(now, dpid, c, key, learned) else {
            return false;
        };
        self.emit_flow(dpid, cookie, c, c.match_.clone(), out);
        true
    }

    /// Records the flow `c` is about to install on `dpid` and returns its cookie; `None` when
    /// it cannot be recorded (and so must not be installed).
    fn admit(
        &mut self,
        now: Instant,
        dpid: u64,
        c: &Compiled,
        key: cache::MatchKey,
        learned: Option<(Uuid, [u8; 6])>,
    ) -> Option<u64> {
        let tags = flow_tags(c);
        let tags = &tags[..];
        // The switch replaces a flow with the same match and priority. If it depended on the
        // same things, it keeps its cookie (a packet-in raced the first install); otherwise
        // the old record goes.
        if let Some(old) = self.cache.find(dpid, c.priority, &key) {
            let cookie = old.cookie;
            if self.cache.same_tags(old, tags) && old.learned == learned {
                return Some(cookie);
            }
            self.remove_flow(now, cookie);
        }
        let cookie = pipeline::PIPELINE_COOKIE | pipeline::REACTIVE_BIT | self.next_cookie;
        self.next_cookie = (self.next_cookie + 1) & (pipeline::REACTIVE_BIT - 1);
        // A flow the engine could not record would never be invalidated: not installed.
        self.record(dpid, cookie, c, key, tags, learned)
            .then_some(cookie)
    }

    /// Installs the flow of the reply `c`'s packet demands on the host of the port it is
    /// delivered to, now, so the reply goes by that flow instead of the controller: a first ping
    /// or TCP handshake across hosts costs one round trip to the controller, not two.
    ///
    /// What is installed is exactly what the reply's packet-in would install: the reply's
    /// header (addresses, ports and MACs swapped, an echo reply for an echo request) simulated
    /// from the destination port. It is a prediction only of which packet comes, never of what
    /// to do with it: a reply that differs in a field the flow matches misses it and comes to
    /// the controller as before. Only a prediction that needs nothing to be learned (the
    /// destination's MAC already learned on its port, every next hop known, no answer
    /// generated) and goes straight back to the sender is installed: a prediction must not teach
    /// the tables anything, nor make the controller send packets.
    ///
    /// Returns the switch the reply's flow went to, if one did.
    fn predict_reply(
        &mut self,
        now: Instant,
        ingress: Uuid,
        c: &Compiled,
        out: &mut Vec<Output>,
    ) -> Option<u64> {
        let [e] = &c.simulation.egress[..] else {
            tracing::debug!(
                egress = c.simulation.egress.len(),
                "no reply prediction: not one egress"
            );
            return None;
        };
        let reply = reply_header(&e.header)?;
        let (dpid, in_port) = self.bindings.port(e.port).map(|l| (l.dpid, l.ofport))?;
        if !self.switches.contains_key(&dpid) {
            return None;
        }
        let r = self.compile(
            dpid,
            Start::Ingress {
                port: e.port,
                in_port,
            },
            reply,
        );
        let s = &r.simulation;
        let back = matches!(&s.egress[..], [b] if b.port == ingress);
        if s.flow != FlowKind::Cache || !back || s.resolve.is_some() || !s.generated.is_empty() {
            tracing::debug!(flow = ?s.flow, back, resolve = s.resolve.is_some(), egress = s.egress.len(), drop = ?s.drop, "no reply prediction");
            return None;
        }
        let mut learned = None;
        for effect in &s.effects {
            match *effect {
                Effect::Learn { bridge, mac, port }
                    if self.macs.get(&(bridge, mac)) == Some(&port) =>
                {
                    learned = Some((bridge, mac))
                }
                _ => {
                    tracing::debug!(?effect, "no reply prediction: it would learn");
                    return None;
                }
            }
        }
        // Predicted already (the request came to the controller twice): nothing to send.
        let key = cache::MatchKey::of(&r.match_);
        if self.cache.find(dpid, r.priority, &key).is_some() {
            return None;
        }
        tracing::debug!(dpid, "reply predicted");
        self.stats.replies_predicted += 1;
        self.install_keyed(now, dpid, &r, key, learned, out)
            .then_some(dpid)
    }

    /// Indexes flow `cookie` on `dpid`: by match, by tag, and as a reference to the MAC entry
    /// it keeps alive.
    fn record(
        &mut self,
        dpid: u64,
        cookie: u64,
        c: &Compiled,
        key: cache::MatchKey,
        tags: &[Tag],
        learned: Option<(Uuid, [u8; 6])>,
    ) -> bool {
        let (origin, in_port) = match c.simulation_start {
            Start::Ingress { port, in_port } => (port, in_port),
            Start::Egress { port } => (port, ofproto::port_no::CONTROLLER),
        };
        let recorded = self.cache.insert(
            cache::Flow::new(
                cookie,
                dpid,
                c.priority,
                key,
                learned,
                c.simulation.drop.filter(|_| c.actions.is_empty()),
            ),
            tags,
            (origin, in_port, c.header),
        );
        if recorded {
            if let Some(k) = learned {
                if let Some(m) = self.mac_meta.get_mut(&k) {
                    m.refs += 1;
                    m.expires = None;
                }
            }
        }
        recorded
    }

    /// Sends `c`'s flow with this cookie and match (`c.match_` or a copy: see `process`).
    fn emit_flow(
        &mut self,
        dpid: u64,
        cookie: u64,
        c: &Compiled,
        match_: Match,
        out: &mut Vec<Output>,
    ) {
        self.stats.flows_installed += 1;
        let (idle, hard) = if c.simulation.flow == FlowKind::Short {
            (0, self.config.error_timeout)
        } else {
            (self.config.idle_timeout, self.config.hard_timeout)
        };
        let instructions = c.instructions();
        out.push(Output {
            dpid,
            message: Message::FlowMod(FlowMod {
                table_id: TABLE_CACHE,
                cookie,
                priority: c.priority,
                idle_timeout: idle,
                hard_timeout: hard,
                flags: OFPFF_SEND_FLOW_REM,
                match_,
                instructions,
                ..FlowMod::default()
            }),
        });
    }

    /// Learns `mac` on `port` of `bridge`; true when the table holds that entry afterwards.
    fn learn(
        &mut self,
        now: Instant,
        bridge: Uuid,
        mac: [u8; 6],
        port: Uuid,
        out: &mut Vec<Output>,
    ) -> bool {
        let key = (bridge, mac);
        match self.macs.get(&key).copied() {
            Some(old) if old == port => return true,
            Some(old) => {
                tracing::debug!(%bridge, mac = %topology::model::MacAddr(mac), %old, new = %port, "MAC moved");
                self.invalidate(now, &[Tag::Mac(bridge, mac)], out);
            }
            None => {
                if self.macs.len() >= self.config.max_macs {
                    return false;
                }
                self.invalidate(now, &[Tag::Flood(bridge, mac)], out);
            }
        }
        self.stats.macs_learned += 1;
        self.macs.insert(key, port);
        let meta = self.mac_meta.entry(key).or_insert(MacMeta {
            refs: 0,
            expires: None,
        });
        if meta.refs == 0 {
            let at = now + self.config.mac_ttl;
            meta.expires = Some(at);
            self.mac_expiry.push(Reverse((at, bridge, mac)));
        }
        true
    }

    fn forget_mac(&mut self, now: Instant, key: (Uuid, [u8; 6]), out: &mut Vec<Output>) {
        if self.macs.remove(&key).is_some() {
            self.mac_meta.remove(&key);
            self.invalidate(now, &[Tag::Mac(key.0, key.1)], out);
        }
    }

    /// Deletes every flow carrying one of `tags`, on the switch that has it.
    fn invalidate(&mut self, now: Instant, tags: &[Tag], out: &mut Vec<Output>) {
        for c in self.cache.tagged(tags) {
            if let Some(dpid) = self.remove_flow(now, c) {
                self.stats.flows_invalidated += 1;
                out.push(Output {
                    dpid,
                    message: Message::FlowMod(pipeline::delete_cookie(c)),
                });
            }
        }
    }

    /// Forgets a flow record; returns its datapath.
    fn remove_flow(&mut self, now: Instant, cookie: u64) -> Option<u64> {
        let f = self.cache.remove(cookie)?;
        if let Some(key) = f.learned {
            if let Some(m) = self.mac_meta.get_mut(&key) {
                m.refs = m.refs.saturating_sub(1);
                if m.refs == 0 {
                    let at = now + self.config.mac_ttl;
                    m.expires = Some(at);
                    self.mac_expiry.push(Reverse((at, key.0, key.1)));
                }
            }
        }
        Some(f.dpid)
    }

    fn topology(&mut self, now: Instant, snap: &Arc<Snapshot>, out: &mut Vec<Output>) {
        let old = std::mem::replace(&mut self.snapshot, snap.clone());
        self.index = Arc::new(Index::build(snap, self.config.mtu));
        let mut tags = Vec::new();
        // A port's peer's device reads it too (a bridge answers ARP for its routers' ports).
        let peer_device = |id: Uuid| {
            [&old, snap]
                .into_iter()
                .filter_map(move |s| s.get::<topology::model::Port>(id))
                .map(|p| Tag::Device(p.device_id))
        };
        {
            use imbl_diff::DiffItem;
            use topology::model::Port;
            // A port that comes, goes, links or readdresses changes its device (the flood
            // set, the route table) and its peer's; one whose state, filters or binding change
            // changes only the flows that crossed it, and every such flow carries its tag.
            let whole = |p: &Port, tags: &mut Vec<Tag>| {
                tags.push(Tag::Port(p.id));
                tags.push(Tag::Device(p.device_id));
                if let Some(peer) = p.peer_id {
                    tags.push(Tag::Port(peer));
                    tags.extend(peer_device(peer));
                }
            };
            let map = <Port as topology::Resource>::map;
            for item in imbl_diff::diff(map(&old), map(snap)) {
                match item {
                    DiffItem::Add(p) | DiffItem::Remove(p) => whole(p, &mut tags),
                    DiffItem::Update { old: o, new: n } => {
                        let same_place = o.device_id == n.device_id
                            && o.peer_id == n.peer_id
                            && o.address == n.address
                            && o.mac == n.mac;
                        if same_place {
                            tags.push(Tag::Port(n.id));
                        } else {
                            whole(o, &mut tags);
                            whole(n, &mut tags);
                        }
                    }
                }
            }
        }
        diff_tags::<topology::model::Bridge>(&old, snap, &mut tags, |b| vec![Tag::Device(b.id)]);
        diff_tags::<topology::model::Router>(&old, snap, &mut tags, |r| vec![Tag::Device(r.id)]);
        // Exact, not MidoNet 5.x's whole-router flush: a route that goes takes the flows that
        // chose it; a route that comes takes the flows whose decided destination it overlaps
        // (they may now be its), and nothing else through the router.
        {
            use imbl_diff::DiffItem;
            use topology::model::Route;
            let mut added: Vec<&Route> = Vec::new();
            for item in imbl_diff::diff(
                <Route as topology::Resource>::map(&old),
                <Route as topology::Resource>::map(snap),
            ) {
                match item {
                    DiffItem::Remove(r) => tags.push(Tag::Route(r.id)),
                    DiffItem::Add(r) => added.push(r),
                    DiffItem::Update { old, new } => {
                        tags.push(Tag::Route(old.id));
                        added.push(new);
                    }
                }
            }
            for r in added {
                if let ipnet::IpNet::V4(net) = r.dst.trunc() {
                    self.captured(r.router_id, net, &mut tags);
                }
            }
        }
        diff_tags::<topology::model::DhcpSubnet>(&old, snap, &mut tags, |d| {
            vec![Tag::Device(d.bridge_id)]
        });
        diff_tags::<topology::model::Chain>(&old, snap, &mut tags, |c| vec![Tag::Chain(c.id)]);
        diff_tags::<topology::model::Rule>(&old, snap, &mut tags, |r| vec![Tag::Chain(r.chain_id)]);
        diff_tags::<topology::model::PortGroup>(&old, snap, &mut tags, |g| {
            vec![Tag::PortGroup(g.id)]
        });
        diff_tags::<topology::model::IpAddrGroup>(&old, snap, &mut tags, |g| {
            vec![Tag::AddrGroup(g.id)]
        });
        // ARP entries of routers or ports that are gone.
        let mut todo = Vec::new();
        self.arp.retain(
            |router, port| {
                snap.get::<topology::model::Port>(port)
                    .is_some_and(|p| p.device_id == router)
            },
            &mut todo,
        );
        let mut work = VecDeque::new();
        self.run_todo(now, todo, &mut work, out);
        self.drain(now, &mut work, out);
        // MACs learned on ports that left their bridge have nowhere to be.
        let stale: Vec<_> = self
            .macs
            .iter()
            .filter(|((bridge, _), port)| {
                snap.get::<topology::model::Port>(**port)
                    .is_none_or(|p| p.device_id != *bridge)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            self.forget_mac(now, k, out);
        }
        self.invalidate(now, &tags, out);
    }

    /// The destination tags of `router` a route to `net` overlaps.
    fn captured(&self, router: Uuid, net: ipnet::Ipv4Net, tags: &mut Vec<Tag>) {
        self.cache
            .overlapping(router, net, |region| tags.push(Tag::Dst(router, region)));
    }

    fn bindings(&mut self, now: Instant, b: &Arc<Bindings>, out: &mut Vec<Output>) {
        let old = std::mem::replace(&mut self.bindings, b.clone());
        let changed = b.changed_ports(&old);
        let mut tags: Vec<Tag> = changed.iter().map(|p| Tag::Port(*p)).collect();
        // A port that moved takes its MACs along only once it speaks again.
        let moved: HashSet<Uuid> = changed.iter().copied().collect();
        let stale: Vec<_> = self
            .macs
            .iter()
            .filter(|(_, p)| moved.contains(p))
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            self.forget_mac(now, k, out);
        }
        // Tunnels that changed: every flow of that host may use them.
        // Only switches whose own ports or tunnels changed: with hundreds of hosts, checking
        // every peer's tunnel and rebuilding the pipeline of every switch on every change was
        // O(N²) per change, under the app lock every connection waits for.
        let dpids: Vec<u64> = self
            .switches
            .keys()
            .copied()
            .filter(|d| old.host(*d) != b.host(*d) || !b.same_attachments(&old, *d))
            .collect();
        let peers: Vec<Uuid> = self.snapshot.hosts().map(|h| h.id).collect();
        for dpid in &dpids {
            let (Some(h_old), Some(h_new)) = (old.host(*dpid), b.host(*dpid)) else {
                continue;
            };
            // A tunnel that appeared, went or was renumbered: the flows that send copies
            // across it (or dropped them for want of it), by their tag. Flushing every flow of
            // the host instead made each host joining the mesh cost every existing flow of
            // every other host a new packet-in.
            if h_old == h_new {
                tags.extend(
                    peers
                        .iter()
                        .filter(|p| old.tunnel(h_old, **p) != b.tunnel(h_new, **p))
                        .map(|p| Tag::Tunnel(h_new, *p)),
                );
            } else {
                // The datapath now stands for another host: nothing it holds was made there.
                for c in self.cache.cookies_on(*dpid) {
                    if self.remove_flow(now, c).is_some() {
                        self.stats.flows_invalidated += 1;
                        out.push(Output {
                            dpid: *dpid,
                            message: Message::FlowMod(pipeline::delete_cookie(c)),
                        });
                    }
                }
            }
        }
        tags.sort_unstable();
        self.invalidate(now, &tags, out);
        for dpid in dpids {
            self.sync_pipeline(dpid, out);
        }
    }

    fn flow_removed(&mut self, now: Instant, dpid: u64, r: &ofproto::FlowRemoved) {
        // A cookie of an earlier session (deleted on reconnect) may come back after a new
        // flow took the same number: only a record with the same datapath, priority and match
        // is this flow.
        let same = self.cache.get(r.cookie).is_some_and(|f| {
            f.dpid == dpid && f.priority == r.priority && f.match_ == cache::MatchKey::of(&r.match_)
        });
        if same {
            self.remove_flow(now, r.cookie);
            self.stats.flows_removed += 1;
        }
    }
}

fn diff_tags<R: topology::Resource>(
    old: &Snapshot,
    new: &Snapshot,
    tags: &mut Vec<Tag>,
    of: impl Fn(&R) -> Vec<Tag>,
) {
    use imbl_diff::DiffItem;
    for item in imbl_diff::diff(R::map(old), R::map(new)) {
        match item {
            DiffItem::Add(r) | DiffItem::Remove(r) => tags.extend(of(r)),
            DiffItem::Update { old, new } => {
                tags.extend(of(old));
                tags.extend(of(new));
            }
        }
    }
}

/// The difference of two persistent maps, cheap where they share structure.
mod imbl_diff {
    use std::sync::Arc;

    use imbl::OrdMap;
    use uuid::Uuid;

    pub enum DiffItem<'a, R> {
        Add(&'a R),
        Remove(&'a R),
        Update { old: &'a R, new: &'a R },
    }

    pub fn diff<'a, R>(
        old: &'a OrdMap<Uuid, Arc<R>>,
        new: &'a OrdMap<Uuid, Arc<R>>,
    ) -> impl Iterator<Item = DiffItem<'a, R>> + 'a {
        let removed = old
            .iter()
            .filter(move |(k, _)| !new.contains_key(*k))
            .map(|(_, v)| DiffItem::Remove(&**v));
        let changed = new.iter().filter_map(move |(k, v)| match old.get(k) {
            None => Some(DiffItem::Add(&**v)),
            Some(o) if !Arc::ptr_eq(o, v) => Some(DiffItem::Update {
                old: &**o,
                new: &**v,
            }),
            Some(_) => None,
        });
        removed.chain(changed)
    }
}

impl App for Engine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&mut self, now: Instant, event: &Event, out: &mut Vec<Output>) {
        match event {
            Event::SwitchUp { dpid, .. } => {
                // A new session answers none of the old one's barriers.
                self.holds.reset(*dpid, out);
                self.switch_up(now, *dpid, out)
            }
            Event::SwitchDown { dpid } => {
                self.holds.reset(*dpid, out);
                self.forget_switch(now, *dpid);
                // It will not answer: the others' flows need not wait for it.
                self.settle(now, out);
            }
            Event::PacketIn { dpid, packet_in } => self.packet_in(now, *dpid, packet_in, out),
            Event::PortStatus { .. } => {}
            Event::FlowRemoved { dpid, removed } => self.flow_removed(now, *dpid, removed),
            Event::SwitchError { dpid, xid, error } => {
                self.stats.switch_errors += 1;
                let cookie = crate::error_cookie(error);
                tracing::warn!(dpid, xid, cookie = ?cookie.map(|c| format!("{c:#x}")), error = %error.kind, "switch refused an engine message");
                if let Some(c) = cookie {
                    self.remove_flow(now, c);
                }
            }
            Event::FlowStats { dpid, flows } => self.adopt(now, *dpid, flows.as_deref(), out),
            Event::Barrier { dpid } => self.holds.answered(*dpid, out),
            Event::Topology(snap) => self.topology(now, snap, out),
            Event::Bindings(b) => {
                self.bindings(now, b, out);
                // Flows read back may have waited for this host's bindings.
                self.settle(now, out);
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let mac = self.mac_expiry.peek().map(|Reverse((at, _, _))| *at);
        [
            mac,
            self.arp.poll_timeout(),
            self.settle_by,
            self.holds.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn query(&self, now: Instant, query: &Query) -> Option<Answer> {
        Some(match *query {
            Query::MacTable { bridge } => Answer::MacTable(
                self.mac_table(bridge)
                    .into_iter()
                    .map(|(mac, port_id)| MacEntry {
                        mac,
                        port_id,
                        flows: self.mac_meta.get(&(bridge, mac)).map_or(0, |m| m.refs),
                    })
                    .collect(),
            ),
            Query::ArpTable { router } => Answer::ArpTable(self.arp.table(now, router)),
            Query::Trace { port, header } => Answer::Trace(Box::new(self.trace(port, header))),
            Query::Flows { dpid } => Answer::Flows(self.flows(dpid)),
            Query::Explain { cookie } => Answer::Explain(self.explain(cookie).map(Box::new)),
            Query::Counters => Answer::Counters(self.counters()),
        })
    }

    fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.stats.holds_expired += self.holds.expire(now, out) as u64;
        let mut todo = Vec::new();
        self.arp.handle_timeout(now, &mut todo);
        let mut work = VecDeque::new();
        self.run_todo(now, todo, &mut work, out);
        self.drain(now, &mut work, out);
        if self.settle_by.is_some_and(|t| t <= now) {
            self.settle(now, out);
        }
        while let Some(Reverse((at, bridge, mac))) = self.mac_expiry.peek().copied() {
            if at > now {
                break;
            }
            self.mac_expiry.pop();
            let key = (bridge, mac);
            let due = self
                .mac_meta
                .get(&key)
                .is_some_and(|m| m.refs == 0 && m.expires == Some(at));
            if due {
                self.forget_mac(now, key, out);
            }
        }
    }
}

#[cfg(test)]
mod router_tests;
#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod reply_header_tests {
    use super::flowkey::{Header, Ipv4, L4};
    use super::reply_header;

    fn header(l4: L4, frag: u8) -> Header {
        Header {
            eth_src: [2, 0, 0, 0, 0, 1],
            eth_dst: [2, 0, 0, 0, 0, 2],
            eth_type: 0x0800,
            ipv4: Some(Ipv4 {
                src: [10, 0, 1, 10].into(),
                dst: [10, 0, 2, 20].into(),
                proto: match l4 {
                    L4::Tcp(..) => 6,
                    L4::Udp(..) => 17,
                    _ => 1,
                },
                ttl: 63,
                total_len: 84,
                df: true,
                frag,
            }),
            arp: None,
            l4,
        }
    }

    #[test]
    fn only_echo_requests_and_tcp_demand_a_reply() {
        let r = reply_header(&header(L4::Icmp(8, 0), 0)).unwrap();
        assert_eq!(
            (r.eth_src, r.eth_dst),
            ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        );
        let ip = r.ipv4.unwrap();
        assert_eq!(
            (ip.src, ip.dst, ip.ttl),
            ([10, 0, 2, 20].into(), [10, 0, 1, 10].into(), 64)
        );
        assert_eq!(r.l4, L4::Icmp(0, 0));
        assert_eq!(
            reply_header(&header(L4::Tcp(40000, 22), 0)).unwrap().l4,
            L4::Tcp(22, 40000)
        );
        for none in [
            header(L4::Udp(40000, 53), 0),
            header(L4::Icmp(0, 0), 0),
            header(L4::Icmp(3, 4), 0),
            header(L4::Other, 3),
            header(L4::Icmp(8, 0), 1),
        ] {
            assert_eq!(reply_header(&none), None, "{none:?}");
        }
    }
}
