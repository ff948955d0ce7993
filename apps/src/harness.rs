//! An in-memory fabric for engine tests, in the style of quinn's `Pair`: the engine plus N
//! emulated `br-int`s with a toy OpenFlow 1.3 flow table each, joined by emulated tunnels, on a
//! simulated clock. Tests read "fixture + frames in → flows and frames out", with no sockets.
//!
//! The flow table interprets what the engine uses (tables with goto, `write_metadata`,
//! `apply_actions` with `output`, `set_field` of MACs and `tun_id`; matches on `in_port`,
//! `metadata`, `tun_id` and the Ethernet/IPv4/ARP/L4 fields). Like Faucet's `FakeOFTable` it
//! refuses two overlapping flows at one priority (a test failure), and it keeps, for every
//! flow-cache entry, the packet that caused it, so [`Fabric::oracle`] can re-simulate each one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ofproto::consts::OFPTT_ALL;
use ofproto::{
    port_no, Action, FeaturesReply, FlowMod, FlowModCommand, FlowRemoved, FlowRemovedReason,
    Instruction, Match, Message, OxmField, PacketIn, PacketInReason, OFP_NO_BUFFER,
};
use topology::model::datapath_id;
use uuid::Uuid;

use crate::bindings::{Bindings, HostPorts, Interface, Tunnel};
use crate::engine::flowkey::{Header, L4};
use crate::engine::pipeline::TABLE_CACHE;
use crate::engine::Engine;
use crate::{App, Event, Output};

/// Records with every field at its default, for fixtures (the store fills in ids and keys).
pub mod fixtures {
    use topology::model::{Bridge, DatapathType, Host, MacAddr, Port, Router};
    use uuid::Uuid;

    /// A host that dials in, with a `system` datapath.
    pub fn host(name: &str) -> Host {
        Host {
            id: Uuid::nil(),
            name: name.into(),
            tunnel_ip: None,
            ovsdb: None,
            datapath_type: DatapathType::System,
            cert_cn: None,
            connected: false,
            datapath_id: None,
        }
    }

    /// An enabled bridge of `tenant`.
    pub fn bridge(name: &str, tenant: Option<&str>) -> Bridge {
        Bridge {
            id: Uuid::nil(),
            name: name.into(),
            tenant_id: tenant.map(Into::into),
            admin_state_up: true,
            inbound_filter_id: None,
            outbound_filter_id: None,
        }
    }

    /// An enabled router with no tenant.
    pub fn router(name: &str) -> Router {
        Router {
            id: Uuid::nil(),
            name: name.into(),
            tenant_id: None,
            admin_state_up: true,
            inbound_filter_id: None,
            outbound_filter_id: None,
        }
    }

    /// An enabled router port with `address` (`10.0.0.1/24`) and `mac`.
    ///
    /// Panics on a malformed address: fixtures are written by tests, not users.
    pub fn router_port(address: &str, mac: [u8; 6]) -> Port {
        Port {
            mac: Some(MacAddr(mac)),
            address: Some(address.parse().expect("a CIDR address")),
            ..bridge_port()
        }
    }

    /// An enabled bridge port (no filters, no link, no binding).
    pub fn bridge_port() -> Port {
        Port {
            id: Uuid::nil(),
            device_id: Uuid::nil(),
            admin_state_up: true,
            inbound_filter_id: None,
            outbound_filter_id: None,
            peer_id: None,
            host_id: None,
            interface_name: None,
            tunnel_key: 0,
            mac: None,
            address: None,
            ofport: None,
            up: false,
        }
    }
}

/// Test frames, built with etherparse.
pub mod frames {
    use etherparse::PacketBuilder;

    /// A UDP/IPv4 frame.
    pub fn udp(
        src: [u8; 6],
        dst: [u8; 6],
        ip_src: [u8; 4],
        ip_dst: [u8; 4],
        sport: u16,
        dport: u16,
    ) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(src, dst)
            .ipv4(ip_src, ip_dst, 64)
            .udp(sport, dport);
        let payload = b"strowger";
        let mut out = Vec::with_capacity(b.size(payload.len()));
        // Writing into a Vec cannot fail.
        let _ = b.write(&mut out, payload);
        out
    }

    /// An ARP request from `src`/`spa` for `tpa`, broadcast.
    pub fn arp_request(src: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
        let mut f = Vec::with_capacity(42);
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&spa);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&tpa);
        f
    }
}

/// One flow entry of an emulated switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Table.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// Match.
    pub match_: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
    idle: u16,
    hard: u16,
    flags: u16,
    added: Instant,
    last_hit: Instant,
    /// The packet that made the engine install it: (in_port, frame).
    pub witness: Option<(u32, Vec<u8>)>,
}

impl Entry {
    /// What it does to a packet that passes: the actions of its `write_actions` (a routed
    /// flow behind its MTU check), else of its `apply_actions` (empty: drop).
    pub fn actions(&self) -> Vec<Action> {
        let of = |want_write: bool| {
            self.instructions.iter().find_map(|i| match i {
                Instruction::WriteActions(a) if want_write => Some(a.clone()),
                Instruction::ApplyActions(a) if !want_write => Some(a.clone()),
                _ => None,
            })
        };
        of(true).or_else(|| of(false)).unwrap_or_default()
    }

    /// Whether this is an answer's flow: everything it matches goes to the controller.
    pub fn is_answer_flow(&self) -> bool {
        matches!(
            &self.actions()[..],
            [Action::Output {
                port: ofproto::port_no::CONTROLLER,
                ..
            }]
        )
    }
}

/// An emulated `br-int`.
#[derive(Debug, Clone)]
pub struct EmuSwitch {
    /// Its datapath id.
    pub dpid: u64,
    /// Its host.
    pub host: Uuid,
    /// Flow entries, every table.
    pub flows: Vec<Entry>,
    /// VIFs: (name, ofport, iface-id).
    pub interfaces: Vec<(String, u32, Option<String>, u64)>,
    /// Tunnel ports: ofport → peer host.
    pub tunnels: BTreeMap<u32, Uuid>,
    /// Frames sent out of VIFs: (ofport, frame).
    pub delivered: Vec<(u32, Vec<u8>)>,
    /// Whether its session is up.
    pub connected: bool,
    next_ofport: u32,
}

struct Pkt {
    dpid: u64,
    in_port: u32,
    /// Set for a packet out of a tunnel: the sending host (the receiver's in_port is its
    /// tunnel port from there).
    from: Option<Uuid>,
    frame: Vec<u8>,
    tun_id: u64,
}

/// The engine and its emulated switches.
pub struct Fabric {
    /// The engine under test.
    pub engine: Engine,
    /// The topology it runs on.
    pub network: topology::Network,
    /// Emulated switches by datapath id.
    pub switches: BTreeMap<u64, EmuSwitch>,
    /// The simulated clock.
    pub now: Instant,
    /// Every message the engine sent, in order.
    pub log: Vec<Output>,
    /// Packet-ins the engine received.
    pub packet_ins: usize,
    /// Packets that arrived at a switch through a tunnel.
    pub tunnelled: usize,
    /// Barriers are answered only by [`Fabric::answer_barriers`] (a switch slow to answer),
    /// not right after the batch that sent them.
    pub slow_barriers: bool,
    unanswered_barriers: Vec<u64>,
    seen: u64,
}

impl Fabric {
    /// A fabric over `network` with no switches.
    pub fn new(network: topology::Network, engine: Engine) -> Fabric {
        Fabric {
            engine,
            network,
            switches: BTreeMap::new(),
            now: Instant::now(),
            log: Vec::new(),
            packet_ins: 0,
            tunnelled: 0,
            slow_barriers: false,
            unanswered_barriers: Vec::new(),
            seen: 0,
        }
    }

    /// Adds an emulated switch for host `host` and connects it.
    pub fn add_switch(&mut self, host: Uuid) -> u64 {
        let dpid = datapath_id(host);
        self.switches.insert(
            dpid,
            EmuSwitch {
                dpid,
                host,
                flows: Vec::new(),
                interfaces: Vec::new(),
                tunnels: BTreeMap::new(),
                delivered: Vec::new(),
                connected: false,
                next_ofport: 1,
            },
        );
        self.connect(dpid);
        dpid
    }

    /// (Re)connects a switch: the engine sees `SwitchUp`.
    pub fn connect(&mut self, dpid: u64) {
        if let Some(s) = self.switches.get_mut(&dpid) {
            s.connected = true;
        }
        let ev = Event::SwitchUp {
            dpid,
            features: FeaturesReply {
                datapath_id: dpid,
                n_buffers: 0,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0,
            },
            ports: vec![],
        };
        self.deliver(&ev, None);
    }

    /// Full-mesh tunnels between every pair of switches, then new bindings.
    pub fn mesh(&mut self) {
        let all: Vec<(u64, Uuid)> = self.switches.values().map(|s| (s.dpid, s.host)).collect();
        for (dpid, _) in &all {
            for (_, peer) in &all {
                let s = self.switches.get_mut(dpid).expect("switch exists");
                if *peer == s.host || s.tunnels.values().any(|p| p == peer) {
                    continue;
                }
                let ofport = 100 + s.next_ofport;
                s.next_ofport += 1;
                s.tunnels.insert(ofport, *peer);
            }
        }
        self.sync_bindings();
    }

    /// Gives the tunnel of `dpid` to host `peer` a new OpenFlow port (as when it is deleted and
    /// created again), then new bindings; returns the new port.
    pub fn renumber_tunnel(&mut self, dpid: u64, peer: Uuid) -> u32 {
        let s = self.switches.get_mut(&dpid).expect("switch exists");
        s.tunnels.retain(|_, p| *p != peer);
        let ofport = 100 + s.next_ofport;
        s.next_ofport += 1;
        s.tunnels.insert(ofport, peer);
        self.sync_bindings();
        ofport
    }

    /// Plugs an interface named `name` with `iface-id` into switch `dpid`; returns its ofport.
    pub fn plug(&mut self, dpid: u64, name: &str, iface_id: Option<Uuid>) -> u32 {
        self.seen += 1;
        let seen = self.seen;
        let s = self.switches.get_mut(&dpid).expect("switch exists");
        let ofport = s.next_ofport;
        s.next_ofport += 1;
        s.interfaces.push((
            name.to_string(),
            ofport,
            iface_id.map(|u| u.to_string()),
            seen,
        ));
        self.sync_bindings();
        ofport
    }

    /// Unplugs interface `ofport` of `dpid`.
    pub fn unplug(&mut self, dpid: u64, ofport: u32) {
        if let Some(s) = self.switches.get_mut(&dpid) {
            s.interfaces.retain(|i| i.1 != ofport);
        }
        self.sync_bindings();
    }

    /// The bindings the controller would build from the switches now.
    pub fn bindings(&self) -> Bindings {
        let hosts: Vec<HostPorts> = self
            .switches
            .values()
            .map(|s| HostPorts {
                host: s.host,
                interfaces: s
                    .interfaces
                    .iter()
                    .map(|(name, ofport, id, seen)| Interface {
                        name: name.clone(),
                        ofport: Some(*ofport),
                        iface_id: id.clone(),
                        seen: *seen,
                    })
                    .collect(),
                tunnels: s
                    .tunnels
                    .iter()
                    .map(|(o, p)| Tunnel {
                        peer: *p,
                        ofport: *o,
                    })
                    .collect(),
            })
            .collect();
        Bindings::build(&self.network.snapshot(), &hosts)
    }

    /// Hands the engine the current snapshot, then bindings rebuilt on it.
    pub fn sync(&mut self) {
        let ev = Event::Topology(self.network.snapshot());
        self.deliver(&ev, None);
        self.sync_bindings();
    }

    fn sync_bindings(&mut self) {
        let ev = Event::Bindings(Arc::new(self.bindings()));
        self.deliver(&ev, None);
    }

    /// Changes the topology and tells the engine.
    pub fn write<T>(&mut self, f: impl FnOnce(&mut topology::Txn) -> topology::Result<T>) -> T {
        let (t, _) = self.network.write(f).expect("valid topology change");
        self.sync();
        t
    }

    /// A frame arrives on `ofport` of `dpid` (from a VM).
    pub fn send(&mut self, dpid: u64, ofport: u32, frame: Vec<u8>) {
        let mut q = VecDeque::new();
        q.push_back(Pkt {
            dpid,
            in_port: ofport,
            from: None,
            frame,
            tun_id: 0,
        });
        self.run(q);
    }

    /// Frames delivered to VIFs since the last call: (dpid, ofport, frame), in order.
    pub fn take_delivered(&mut self) -> Vec<(u64, u32, Vec<u8>)> {
        let mut v = Vec::new();
        for s in self.switches.values_mut() {
            for (p, f) in s.delivered.drain(..) {
                v.push((s.dpid, p, f));
            }
        }
        v
    }

    /// Lets time pass: expires flows (FLOW_REMOVED to the engine) and fires engine timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        let mut removed = Vec::new();
        for s in self.switches.values_mut() {
            s.flows.retain(|e| {
                let idle = e.idle > 0 && now >= e.last_hit + Duration::from_secs(e.idle.into());
                let hard = e.hard > 0 && now >= e.added + Duration::from_secs(e.hard.into());
                if (idle || hard) && e.flags & 1 != 0 {
                    removed.push((s.dpid, e.clone(), idle));
                }
                !(idle || hard)
            });
        }
        for (dpid, e, idle) in removed {
            let ev = Event::FlowRemoved {
                dpid,
                removed: FlowRemoved {
                    cookie: e.cookie,
                    priority: e.priority,
                    reason: if idle {
                        FlowRemovedReason::IdleTimeout
                    } else {
                        FlowRemovedReason::HardTimeout
                    },
                    table_id: e.table,
                    duration_sec: 0,
                    duration_nsec: 0,
                    idle_timeout: e.idle,
                    hard_timeout: e.hard,
                    packet_count: 0,
                    byte_count: 0,
                    match_: e.match_.clone(),
                },
            };
            self.deliver(&ev, None);
        }
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            let mut out = Vec::new();
            self.engine.handle_timeout(now, &mut out);
            self.apply(out, None);
        }
    }

    /// Answers the barriers held back by [`Fabric::slow_barriers`]; returns how many.
    pub fn answer_barriers(&mut self) -> usize {
        let dpids = std::mem::take(&mut self.unanswered_barriers);
        for &dpid in &dpids {
            self.deliver(&Event::Barrier { dpid }, None);
        }
        dpids.len()
    }

    /// The flow-cache entries of `dpid` (priority above the miss).
    pub fn cache(&self, dpid: u64) -> Vec<&Entry> {
        self.switches
            .get(&dpid)
            .map(|s| {
                s.flows
                    .iter()
                    .filter(|e| e.table == TABLE_CACHE && e.priority > 0)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The flow-cache entries on `dpid` that forward or drop (not the answers' flows, which
    /// send to the controller).
    pub fn forwarding(&self, dpid: u64) -> Vec<&Entry> {
        self.cache(dpid)
            .into_iter()
            .filter(|e| !e.is_answer_flow())
            .collect()
    }

    /// The answers' flows on every switch.
    pub fn answer_flows(&self) -> usize {
        self.switches
            .keys()
            .map(|&d| self.cache(d).iter().filter(|e| e.is_answer_flow()).count())
            .sum()
    }

    /// The test oracle: every installed flow-cache entry, re-simulated now from the packet that
    /// made it (as the engine recorded it), matches that packet and compiles to the same
    /// priority, match and actions. Returns how many were checked.
    pub fn oracle(&self) -> usize {
        let mut n = 0;
        for s in self.switches.values() {
            for e in s
                .flows
                .iter()
                .filter(|e| e.table == TABLE_CACHE && e.priority > 0)
            {
                let Some((port, in_port, header)) = self.engine.flow_origin(e.cookie) else {
                    panic!("flow the engine does not know: {e:?}");
                };
                let key = e.match_.fields.iter().find_map(|f| match f {
                    OxmField::Metadata { value, .. } => Some(*value),
                    _ => None,
                });
                assert!(
                    matches(&e.match_, in_port, key.unwrap_or(0), 0, &[0; 8], &header),
                    "flow does not match the packet that made it: {e:?}\n{header:?}"
                );
                let c = self.engine.dry_run(s.dpid, port, in_port, header);
                assert_eq!(
                    (c.priority, &c.match_, c.instructions()),
                    (e.priority, &e.match_, e.instructions.clone()),
                    "stale flow on {:x}: {e:?}\nre-simulated: {:?}",
                    s.dpid,
                    c.simulation
                );
                n += 1;
            }
        }
        n
    }

    fn deliver(&mut self, ev: &Event, witness: Option<(u32, Vec<u8>)>) {
        let mut out = Vec::new();
        self.engine.handle(self.now, ev, &mut out);
        self.apply(out, witness);
    }

    fn apply(&mut self, out: Vec<Output>, witness: Option<(u32, Vec<u8>)>) {
        let mut q = VecDeque::new();
        let mut replies = Vec::new();
        for o in out {
            self.log.push(o.clone());
            let now = self.now;
            let Some(s) = self.switches.get_mut(&o.dpid) else {
                continue;
            };
            if !s.connected {
                continue;
            }
            match o.message {
                Message::FlowMod(fm) => s.flow_mod(now, fm, witness.clone()),
                Message::PacketOut(po) => {
                    let data = po.data.to_vec();
                    let (_, _, punted) =
                        s.execute(&po.actions, po.in_port, data, 0, &mut [0; 8], &mut q);
                    assert!(!punted, "the engine sent a packet whose TTL runs out");
                }
                // Answered after the rest of the batch, as a switch answers in order.
                Message::MultipartRequest(ofproto::MultipartRequest {
                    body: ofproto::MultipartRequestBody::Flow(req),
                    ..
                }) => {
                    let flows = s
                        .flows
                        .iter()
                        .filter(|e| {
                            (req.table_id == ofproto::consts::OFPTT_ALL || e.table == req.table_id)
                                && e.cookie & req.cookie_mask == req.cookie & req.cookie_mask
                        })
                        .map(|e| ofproto::FlowStats {
                            table_id: e.table,
                            duration_sec: 0,
                            duration_nsec: 0,
                            priority: e.priority,
                            idle_timeout: e.idle,
                            hard_timeout: e.hard,
                            flags: e.flags,
                            cookie: e.cookie,
                            packet_count: 0,
                            byte_count: 0,
                            match_: e.match_.clone(),
                            instructions: e.instructions.clone(),
                        })
                        .collect();
                    replies.push(Event::FlowStats {
                        dpid: o.dpid,
                        flows: Some(flows),
                    });
                }
                // Every flow-mod before it is in the table already.
                Message::BarrierRequest if self.slow_barriers => {
                    self.unanswered_barriers.push(o.dpid)
                }
                Message::BarrierRequest => replies.push(Event::Barrier { dpid: o.dpid }),
                _ => {}
            }
        }
        self.run(q);
        for ev in replies {
            self.deliver(&ev, None);
        }
    }

    fn run(&mut self, mut q: VecDeque<Pkt>) {
        let mut budget = 10_000;
        while let Some(mut p) = q.pop_front() {
            budget -= 1;
            assert!(budget > 0, "packet storm in the fabric");
            let now = self.now;
            let Some(s) = self.switches.get_mut(&p.dpid) else {
                continue;
            };
            if !s.connected {
                continue;
            }
            if let Some(from) = p.from {
                self.tunnelled += 1;
                match s.tunnels.iter().find(|(_, h)| **h == from) {
                    Some((ofport, _)) => p.in_port = *ofport,
                    None => continue,
                }
            }
            if let Some(pin) = s.pipeline(now, p, &mut q) {
                self.packet_ins += 1;
                let witness = (pin.match_.in_port().unwrap_or(0), pin.data.to_vec());
                let ev = Event::PacketIn {
                    dpid: s.dpid,
                    packet_in: pin,
                };
                let mut out = Vec::new();
                self.engine.handle(self.now, &ev, &mut out);
                self.apply(out, Some(witness));
            }
        }
    }
}

impl EmuSwitch {
    pub(crate) fn flow_mod(&mut self, now: Instant, fm: FlowMod, witness: Option<(u32, Vec<u8>)>) {
        let cookie_ok = |e: &Entry| e.cookie & fm.cookie_mask == fm.cookie & fm.cookie_mask;
        match fm.command {
            FlowModCommand::Add => {
                for e in &self.flows {
                    if e.table == fm.table_id
                        && e.priority == fm.priority
                        && e.match_ != fm.match_
                        && overlaps(&e.match_, &fm.match_)
                    {
                        panic!(
                            "overlapping flows at priority {} in table {}:\n  {:?}\n  {:?}",
                            fm.priority, fm.table_id, e.match_, fm.match_
                        );
                    }
                }
                self.flows.retain(|e| {
                    !(e.table == fm.table_id && e.priority == fm.priority && e.match_ == fm.match_)
                });
                self.flows.push(Entry {
                    table: fm.table_id,
                    priority: fm.priority,
                    cookie: fm.cookie,
                    match_: fm.match_,
                    instructions: fm.instructions,
                    idle: fm.idle_timeout,
                    hard: fm.hard_timeout,
                    flags: fm.flags,
                    added: now,
                    last_hit: now,
                    witness: if fm.table_id == TABLE_CACHE {
                        witness
                    } else {
                        None
                    },
                });
            }
            FlowModCommand::Delete => {
                assert!(
                    fm.match_.fields.is_empty(),
                    "only match-all deletes are emulated"
                );
                self.flows.retain(|e| {
                    !((fm.table_id == OFPTT_ALL || e.table == fm.table_id) && cookie_ok(e))
                });
            }
            FlowModCommand::DeleteStrict => {
                self.flows.retain(|e| {
                    !(e.table == fm.table_id
                        && e.priority == fm.priority
                        && e.match_ == fm.match_
                        && cookie_ok(e))
                });
            }
            other => panic!("unexpected flow mod command {other:?}"),
        }
    }

    /// Runs a packet through the tables; a packet-in if it reached the controller.
    fn pipeline(&mut self, now: Instant, p: Pkt, q: &mut VecDeque<Pkt>) -> Option<PacketIn> {
        let mut table = 0u8;
        let mut metadata = 0u64;
        let mut tun_id = p.tun_id;
        let mut frame = p.frame;
        let mut pin = None;
        let mut regs = [0u32; 8];
        let mut action_set: Vec<Action> = Vec::new();
        loop {
            let header = Header::parse(&frame)?;
            let best = self
                .flows
                .iter_mut()
                .filter(|e| e.table == table)
                .filter(|e| matches(&e.match_, p.in_port, metadata, tun_id, &regs, &header))
                .max_by_key(|e| e.priority)?;
            best.last_hit = now;
            let instructions = best.instructions.clone();
            let mut next = None;
            for i in instructions {
                match i {
                    Instruction::WriteMetadata { metadata: m, mask } => {
                        metadata = (metadata & !mask) | (m & mask)
                    }
                    Instruction::GotoTable(t) => next = Some(t),
                    Instruction::WriteActions(actions) => action_set.extend(actions),
                    Instruction::ClearActions => action_set.clear(),
                    Instruction::ApplyActions(actions) => {
                        for a in &actions {
                            if let Action::Output {
                                port: port_no::CONTROLLER,
                                ..
                            } = a
                            {
                                pin = Some(packet_in(
                                    PacketInReason::NoMatch,
                                    table,
                                    p.in_port,
                                    metadata,
                                    &frame,
                                ));
                            }
                        }
                        let (f, t, punted) =
                            self.execute(&actions, p.in_port, frame, tun_id, &mut regs, q);
                        frame = f;
                        tun_id = t;
                        if punted {
                            // dec_ttl found TTL ≤ 1: the switch stops and asks the controller.
                            return Some(packet_in(
                                PacketInReason::InvalidTtl,
                                table,
                                p.in_port,
                                metadata,
                                &frame,
                            ));
                        }
                    }
                    other => panic!("unexpected instruction {other:?}"),
                }
            }
            match next {
                Some(t) => table = t,
                None => {
                    // The end of the pipeline: the action set runs (in the order written,
                    // which is OpenFlow's: dec_ttl, set_field, output).
                    let (f, _, punted) =
                        self.execute(&action_set, p.in_port, frame, tun_id, &mut regs, q);
                    if punted {
                        return Some(packet_in(
                            PacketInReason::InvalidTtl,
                            table,
                            p.in_port,
                            metadata,
                            &f,
                        ));
                    }
                    return pin;
                }
            }
        }
    }

    /// Applies actions to a frame; outputs go to VIFs, tunnels (the peer's queue) or nowhere.
    fn execute(
        &mut self,
        actions: &[Action],
        in_port: u32,
        mut frame: Vec<u8>,
        mut tun_id: u64,
        regs: &mut [u32; 8],
        q: &mut VecDeque<Pkt>,
    ) -> (Vec<u8>, u64, bool) {
        for a in actions {
            if let Some((len, reg, bit)) = a.as_nx_check_pkt_larger() {
                if frame.len() > usize::from(len) {
                    regs[usize::from(reg & 7)] |= 1 << (bit & 31);
                }
                continue;
            }
            match a {
                Action::DecNwTtl => {
                    if !dec_ttl(&mut frame) {
                        return (frame, tun_id, true);
                    }
                }
                Action::SetField(OxmField::TunnelId { value, .. }) => tun_id = *value,
                Action::SetField(OxmField::EthDst { value, .. }) => {
                    frame[0..6].copy_from_slice(value)
                }
                Action::SetField(OxmField::EthSrc { value, .. }) => {
                    frame[6..12].copy_from_slice(value)
                }
                Action::Output { port, .. } => {
                    let port = *port;
                    if port == port_no::CONTROLLER {
                        continue;
                    }
                    assert_ne!(
                        port, in_port,
                        "output to the in_port is a no-op in OpenFlow"
                    );
                    if let Some(peer) = self.tunnels.get(&port) {
                        let peer_dpid = datapath_id(*peer);
                        q.push_back(Pkt {
                            dpid: peer_dpid,
                            in_port: 0,
                            from: Some(self.host),
                            frame: frame.clone(),
                            tun_id,
                        });
                    } else if self.interfaces.iter().any(|i| i.1 == port) {
                        self.delivered.push((port, frame.clone()));
                    }
                }
                other => panic!("unexpected action {other:?}"),
            }
        }
        (frame, tun_id, false)
    }
}

fn matches(
    m: &Match,
    in_port: u32,
    metadata: u64,
    tun_id: u64,
    regs: &[u32; 8],
    h: &Header,
) -> bool {
    m.fields.iter().all(|f| match f {
        OxmField::Reg { idx, value, mask } => {
            let mask = mask.unwrap_or(u32::MAX);
            regs[usize::from(*idx & 7)] & mask == value & mask
        }
        OxmField::InPort(p) => *p == in_port,
        OxmField::Metadata { value, mask } => {
            let mask = mask.unwrap_or(u64::MAX);
            metadata & mask == value & mask
        }
        OxmField::TunnelId { value, mask } => {
            let mask = mask.unwrap_or(u64::MAX);
            tun_id & mask == value & mask
        }
        OxmField::EthSrc { value, mask: None } => *value == h.eth_src,
        OxmField::EthDst { value, mask: None } => *value == h.eth_dst,
        OxmField::EthType(t) => *t == h.eth_type,
        OxmField::Ipv4Src { value, mask } => {
            h.ipv4.is_some_and(|i| masked_eq(i.src, *value, *mask))
        }
        OxmField::Ipv4Dst { value, mask } => {
            h.ipv4.is_some_and(|i| masked_eq(i.dst, *value, *mask))
        }
        OxmField::ArpOp(op) => h.arp.is_some_and(|a| a.op == *op),
        OxmField::ArpSpa { value, mask } => h.arp.is_some_and(|a| masked_eq(a.spa, *value, *mask)),
        OxmField::ArpTpa { value, mask } => h.arp.is_some_and(|a| masked_eq(a.tpa, *value, *mask)),
        OxmField::Icmpv4Type(t) => matches!(h.l4, L4::Icmp(x, _) if x == *t),
        f if crate::engine::flowkey::as_nw_frag(f).is_some() => {
            let (v, m) = crate::engine::flowkey::as_nw_frag(f).unwrap_or_default();
            h.ipv4.is_some_and(|i| i.frag & m == v & m)
        }
        OxmField::Icmpv4Code(c) => matches!(h.l4, L4::Icmp(_, x) if x == *c),
        OxmField::IpProto(p) => h.ipv4.is_some_and(|i| i.proto == *p),
        OxmField::UdpSrc(p) => matches!(h.l4, L4::Udp(s, _) if s == *p),
        OxmField::UdpDst(p) => matches!(h.l4, L4::Udp(_, d) if d == *p),
        OxmField::TcpSrc(p) => matches!(h.l4, L4::Tcp(s, _) if s == *p),
        OxmField::TcpDst(p) => matches!(h.l4, L4::Tcp(_, d) if d == *p),
        other => panic!("field not emulated: {other:?}"),
    })
}

/// Whether some packet could match both: every field both constrain can take one value (an
/// IPv4 prefix overlaps another when one contains the other).
fn overlaps(a: &Match, b: &Match) -> bool {
    a.fields.iter().all(|fa| {
        b.fields
            .iter()
            .find(|fb| fb.key() == fa.key())
            .is_none_or(|fb| match (fa, fb) {
                (
                    OxmField::Ipv4Src { value: x, mask: mx },
                    OxmField::Ipv4Src { value: y, mask: my },
                )
                | (
                    OxmField::Ipv4Dst { value: x, mask: mx },
                    OxmField::Ipv4Dst { value: y, mask: my },
                ) => {
                    let m = u32::from(mx.unwrap_or(std::net::Ipv4Addr::BROADCAST))
                        & u32::from(my.unwrap_or(std::net::Ipv4Addr::BROADCAST));
                    u32::from(*x) & m == u32::from(*y) & m
                }
                _ => fb == fa,
            })
    })
}

/// The PACKET_IN an emulated switch sends: OVS puts the pipeline fields it has (in_port,
/// metadata) into the match. Benchmarks build theirs with it too.
pub fn packet_in(
    reason: PacketInReason,
    table: u8,
    in_port: u32,
    metadata: u64,
    frame: &[u8],
) -> PacketIn {
    PacketIn {
        buffer_id: OFP_NO_BUFFER,
        total_len: frame.len() as u16,
        reason,
        table_id: table,
        cookie: 0,
        match_: Match::from_iter([
            OxmField::InPort(in_port),
            OxmField::Metadata {
                value: metadata,
                mask: None,
            },
        ]),
        data: frame.to_vec().into(),
    }
}

fn masked_eq(
    have: std::net::Ipv4Addr,
    value: std::net::Ipv4Addr,
    mask: Option<std::net::Ipv4Addr>,
) -> bool {
    let m = u32::from(mask.unwrap_or(std::net::Ipv4Addr::BROADCAST));
    u32::from(have) & m == u32::from(value) & m
}

/// OpenFlow's `dec_ttl` on an untagged IPv4 frame; false (frame unchanged) when TTL ≤ 1.
fn dec_ttl(frame: &mut [u8]) -> bool {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return true;
    }
    if frame[22] <= 1 {
        return false;
    }
    frame[22] -= 1;
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let Some(h) = frame.get_mut(14..14 + ihl) else {
        return true;
    };
    h[10] = 0;
    h[11] = 0;
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    h[10..12].copy_from_slice(&ck.to_be_bytes());
    true
}
