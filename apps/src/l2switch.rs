//! `l2switch`: an L2 learning switch per datapath, os-ken's `simple_switch_13` done properly.
//!
//! What it does, per switch:
//! - on connect: deletes the flows it left behind in an earlier session (by cookie tag) and
//!   installs the table-miss flow `priority=0 → CONTROLLER` without buffering (the session already
//!   set `miss_send_len` to `OFPCML_NO_BUFFER`, so packet-ins carry whole frames);
//! - on a packet-in: learns `eth_src → in_port`; for a known unicast destination installs
//!   `in_port, eth_src, eth_dst → output` with an idle timeout and sends the frame out that port;
//!   otherwise floods it (`OFPP_FLOOD`, which excludes the ingress port);
//! - when a MAC moves to another port, deletes every flow that delivers *to* that MAC: each such
//!   flow carries the MAC in its cookie, so one `DELETE` by cookie removes exactly them;
//! - when a port goes away or down, forgets the MACs learnt on it and deletes the flows that
//!   output to it.
//!
//! Why no storms on loop-free topologies (Mininet linear and tree): a frame is only ever flooded
//! by the switch it reaches, never sent back out its ingress port, and a destination that was
//! learnt on the ingress port is dropped instead of hairpinned. Sources that are multicast
//! addresses (invalid on the wire) are never learnt, so a bogus frame cannot poison the table.

use std::collections::{HashMap, VecDeque};

use ofproto::consts::{OFPCML_NO_BUFFER, OFPTT_ALL};
use ofproto::{
    port_no, Action, FlowMod, FlowModCommand, Instruction, Match, Message, OxmField, PacketIn,
    PacketOut, PortReason, OFP_NO_BUFFER,
};

use ofproto::display::Mac;

use crate::{Answer, App, AppCounters, Event, Output, Query};

/// The name on the command line.
pub const NAME: &str = "l2switch";

/// The top 16 bits of every cookie this app sets ("l2"); the low 48 bits hold the destination MAC.
pub const COOKIE_TAG: u64 = 0x6c32 << 48;
const COOKIE_TAG_MASK: u64 = 0xffff << 48;

/// `OFPPS_LINK_DOWN`: the port state bit for "no physical link".
const OFPPS_LINK_DOWN: u32 = 1;
/// `OFPPC_PORT_DOWN`: the port config bit for "administratively down".
const OFPPC_PORT_DOWN: u32 = 1;

/// Tunables of the learning switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Idle timeout of learnt flows, seconds: a host that falls silent stops occupying the table.
    pub idle_timeout: u16,
    /// Priority of learnt flows (the table-miss flow has priority 0).
    pub priority: u16,
    /// MACs remembered per switch. A new source on a full table takes the place of the oldest
    /// entry of its own port (or, if its port holds none, of the port holding the most): memory
    /// stays bounded whatever sources a host forges, and a port that forges only pushes out its
    /// own entries, never the other ports' hosts.
    pub max_macs_per_switch: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            idle_timeout: 60,
            priority: 1,
            max_macs_per_switch: 65536,
        }
    }
}

/// The learning switch: one MAC table per datapath.
#[derive(Debug, Default)]
pub struct L2Switch {
    config: Config,
    /// dpid → its MAC table.
    tables: HashMap<u64, MacTable>,
    /// What it counts of [`AppCounters`]: packet-ins (ignored ones by reason), flows
    /// installed, MACs learned. It keeps no record of its flows, so no level of them.
    counters: AppCounters,
}

/// One switch's MAC → port table, with the learning order per port for eviction.
#[derive(Debug, Default)]
struct MacTable {
    /// MAC → (port, learning sequence number). A `HashMap`: a lookup on every packet-in.
    macs: HashMap<[u8; 6], (u32, u64)>,
    /// Per port, its MACs oldest first. An entry whose MAC has since moved or gone (no longer
    /// `macs[mac] == (port, seq)`) is stale and skipped; stale entries are swept when they
    /// outnumber the live ones, so a queue stays within twice its port's count.
    order: HashMap<u32, VecDeque<([u8; 6], u64)>>,
    /// Per port, how many MACs `macs` holds on it.
    counts: HashMap<u32, usize>,
    next_seq: u64,
}

impl MacTable {
    fn get(&self, mac: &[u8; 6]) -> Option<u32> {
        self.macs.get(mac).map(|(port, _)| *port)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.macs.len()
    }

    /// Learns `mac` on `port`, making room by eviction when `max` are known. Returns the port it
    /// was on before, if it moved, and the MAC evicted, if any.
    fn learn(&mut self, mac: [u8; 6], port: u32, max: usize) -> (Option<u32>, Option<[u8; 6]>) {
        match self.macs.get(&mac) {
            Some((p, _)) if *p == port => return (None, None),
            Some(&(old, _)) => {
                self.remove(&mac);
                self.insert(mac, port);
                return (Some(old), None);
            }
            None => {}
        }
        let evicted = if self.macs.len() >= max.max(1) {
            self.evict_for(port)
        } else {
            None
        };
        self.insert(mac, port);
        (None, evicted)
    }

    fn insert(&mut self, mac: [u8; 6], port: u32) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.macs.insert(mac, (port, seq));
        self.order.entry(port).or_default().push_back((mac, seq));
        *self.counts.entry(port).or_default() += 1;
    }

    fn remove(&mut self, mac: &[u8; 6]) {
        let Some((port, _)) = self.macs.remove(mac) else {
            return;
        };
        let count = self.counts.entry(port).or_default();
        *count = count.saturating_sub(1);
        let live = *count;
        if let Some(queue) = self.order.get_mut(&port) {
            if queue.len() > 2 * live + 16 {
                let macs = &self.macs;
                queue.retain(|(m, seq)| macs.get(m) == Some(&(port, *seq)));
            }
        }
    }

    /// Evicts the oldest MAC of `port`, or of the port holding the most if `port` holds none.
    fn evict_for(&mut self, port: u32) -> Option<[u8; 6]> {
        let victim_port = if self.counts.get(&port).is_some_and(|c| *c > 0) {
            port
        } else {
            self.counts
                .iter()
                .max_by_key(|(p, c)| (**c, std::cmp::Reverse(**p)))
                .map(|(p, _)| *p)?
        };
        let queue = self.order.get_mut(&victim_port)?;
        while let Some((mac, seq)) = queue.pop_front() {
            if self.macs.get(&mac) == Some(&(victim_port, seq)) {
                self.remove(&mac);
                return Some(mac);
            }
        }
        None
    }

    /// Forgets every MAC learnt on `port`.
    fn forget_port(&mut self, port: u32) {
        self.macs.retain(|_, (p, _)| *p != port);
        self.order.remove(&port);
        self.counts.remove(&port);
    }
}

/// The cookie of the flows that deliver to `mac`.
pub fn mac_cookie(mac: [u8; 6]) -> u64 {
    let mut v = [0u8; 8];
    v[2..].copy_from_slice(&mac);
    COOKIE_TAG | u64::from_be_bytes(v)
}

fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

/// `ETH_P_LLDP`: link discovery frames are for a topology app, never forwarded by a switch.
const ETHERTYPE_LLDP: u16 = 0x88cc;

impl L2Switch {
    /// A learning switch with the given tunables.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            tables: HashMap::new(),
            counters: AppCounters::default(),
        }
    }

    /// The port `mac` was learnt on at `dpid`, if any.
    pub fn lookup(&self, dpid: u64, mac: [u8; 6]) -> Option<u32> {
        self.tables.get(&dpid)?.get(&mac)
    }

    fn switch_up(&mut self, dpid: u64, out: &mut Vec<Output>) {
        self.tables.insert(dpid, MacTable::default());
        // Flows of an earlier session may point at ports where hosts no longer are.
        out.push(delete_own_flows(dpid, port_no::ANY));
        out.push(Output {
            dpid,
            message: Message::FlowMod(FlowMod {
                priority: 0,
                cookie: COOKIE_TAG,
                instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                    port: port_no::CONTROLLER,
                    max_len: OFPCML_NO_BUFFER,
                }])],
                ..FlowMod::default()
            }),
        });
    }

    fn packet_in(&mut self, dpid: u64, pin: &PacketIn, out: &mut Vec<Output>) {
        self.counters.packet_ins += 1;
        let Some(in_port) = pin.match_.in_port() else {
            tracing::debug!(dpid, "packet-in without in_port ignored");
            self.ignored("no_in_port");
            return;
        };
        let Some((dst, src, ethertype)) = ethernet(&pin.data) else {
            self.ignored("unparseable");
            tracing::debug!(
                dpid,
                len = pin.data.len(),
                "packet-in too short for Ethernet"
            );
            return;
        };
        if ethertype == ETHERTYPE_LLDP {
            self.ignored("lldp");
            return;
        }
        let table = self.tables.entry(dpid).or_default();
        if !is_multicast(&src) {
            let before = table.get(&src);
            let (moved, evicted) = table.learn(src, in_port, self.config.max_macs_per_switch);
            if before != Some(in_port) {
                self.counters.macs_learned += 1;
            }
            if let Some(old) = moved {
                tracing::debug!(dpid, mac = %Mac(src), old, new = in_port, "MAC moved");
            }
            if let Some(gone) = evicted {
                tracing::debug!(dpid, mac = %Mac(gone), "MAC table full: oldest entry evicted");
            }
            // Flows towards a MAC that moved or was forgotten would deliver to the old port.
            for mac in moved.map(|_| src).into_iter().chain(evicted) {
                out.push(Output {
                    dpid,
                    message: Message::FlowMod(FlowMod {
                        command: FlowModCommand::Delete,
                        table_id: OFPTT_ALL,
                        cookie: mac_cookie(mac),
                        cookie_mask: u64::MAX,
                        ..FlowMod::default()
                    }),
                });
            }
        }
        let known = if is_multicast(&dst) {
            None
        } else {
            table.get(&dst)
        };
        let out_port = match known {
            // Learnt on the ingress port: the frame already reached its segment; hairpinning it
            // back would duplicate it.
            Some(p) if p == in_port => return,
            Some(p) => {
                self.counters.flows_installed += 1;
                out.push(Output {
                    dpid,
                    message: Message::FlowMod(FlowMod {
                        cookie: mac_cookie(dst),
                        idle_timeout: self.config.idle_timeout,
                        priority: self.config.priority,
                        match_: Match::from_iter([
                            OxmField::InPort(in_port),
                            OxmField::EthSrc {
                                value: src,
                                mask: None,
                            },
                            OxmField::EthDst {
                                value: dst,
                                mask: None,
                            },
                        ]),
                        instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                            port: p,
                            max_len: 0,
                        }])],
                        ..FlowMod::default()
                    }),
                });
                p
            }
            None => port_no::FLOOD,
        };
        // A buffered packet is released by id; an unbuffered one is sent back whole.
        let data = if pin.buffer_id == OFP_NO_BUFFER {
            pin.data.clone()
        } else {
            bytes::Bytes::new()
        };
        out.push(Output {
            dpid,
            message: Message::PacketOut(PacketOut {
                buffer_id: pin.buffer_id,
                in_port,
                actions: vec![Action::Output {
                    port: out_port,
                    max_len: 0,
                }],
                data,
            }),
        });
    }

    /// Counts a packet-in ignored for `reason`.
    fn ignored(&mut self, reason: &'static str) {
        match self.counters.ignored.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => {
                self.counters.ignored.push((reason, 1));
                self.counters.ignored.sort_unstable();
            }
        }
    }

    fn port_gone(&mut self, dpid: u64, port: u32, out: &mut Vec<Output>) {
        if let Some(table) = self.tables.get_mut(&dpid) {
            table.forget_port(port);
        }
        out.push(delete_own_flows(dpid, port));
    }
}

impl App for L2Switch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&mut self, _now: std::time::Instant, event: &Event, out: &mut Vec<Output>) {
        match event {
            Event::SwitchUp { dpid, .. } => self.switch_up(*dpid, out),
            Event::SwitchDown { dpid } => {
                self.tables.remove(dpid);
            }
            Event::PacketIn { dpid, packet_in } => self.packet_in(*dpid, packet_in, out),
            Event::PortStatus { dpid, status } => {
                let desc = &status.desc;
                let down = desc.state & OFPPS_LINK_DOWN != 0 || desc.config & OFPPC_PORT_DOWN != 0;
                if status.reason == PortReason::Delete || down {
                    self.port_gone(*dpid, desc.port_no, out);
                }
            }
            // A learning switch needs no topology, bindings, or reaction to refused flows.
            Event::FlowRemoved { .. }
            | Event::SwitchError { .. }
            | Event::Topology(_)
            | Event::Bindings(_)
            | Event::FlowStats { .. }
            | Event::Barrier { .. } => {}
        }
    }

    fn query(&self, _now: std::time::Instant, query: &Query) -> Option<Answer> {
        match query {
            Query::Counters => Some(Answer::Counters(self.counters.clone())),
            // It keeps no per-bridge or per-router tables, simulates nothing.
            Query::MacTable { .. }
            | Query::ArpTable { .. }
            | Query::Trace { .. }
            | Query::Flows { .. }
            | Query::Explain { .. } => None,
        }
    }
}

/// Deletes, in every table, the flows this app installed (its cookie tag) that output to
/// `out_port` (`OFPP_ANY`: all of them). Flows of other apps or of the REST API stay.
fn delete_own_flows(dpid: u64, out_port: u32) -> Output {
    Output {
        dpid,
        message: Message::FlowMod(FlowMod {
            command: FlowModCommand::Delete,
            table_id: OFPTT_ALL,
            cookie: COOKIE_TAG,
            cookie_mask: COOKIE_TAG_MASK,
            out_port,
            ..FlowMod::default()
        }),
    }
}

/// (destination, source, ethertype) of an Ethernet frame, or `None` when it is shorter than a
/// header. The ethertype is the outer one (a VLAN tag shows as 0x8100), which is all LLDP
/// filtering needs.
fn ethernet(frame: &[u8]) -> Option<([u8; 6], [u8; 6], u16)> {
    let dst: [u8; 6] = frame.get(0..6)?.try_into().ok()?;
    let src: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
    let ty = frame.get(12..14)?;
    Some((dst, src, u16::from_be_bytes([ty[0], ty[1]])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ofproto::{FeaturesReply, PacketInReason, Port, PortStatus};

    const DPID: u64 = 0x1;
    const H1: [u8; 6] = [0, 0, 0, 0, 0, 1];
    const H2: [u8; 6] = [0, 0, 0, 0, 0, 2];
    const BCAST: [u8; 6] = [0xff; 6];

    fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Bytes {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&[0u8; 46]);
        Bytes::from(f)
    }

    fn pin(in_port: u32, dst: [u8; 6], src: [u8; 6]) -> Event {
        Event::PacketIn {
            dpid: DPID,
            packet_in: PacketIn {
                buffer_id: OFP_NO_BUFFER,
                total_len: 60,
                reason: PacketInReason::NoMatch,
                table_id: 0,
                cookie: COOKIE_TAG,
                match_: Match::new().with(OxmField::InPort(in_port)),
                data: frame(dst, src, 0x0800),
            },
        }
    }

    fn up() -> Event {
        Event::SwitchUp {
            dpid: DPID,
            features: FeaturesReply {
                datapath_id: DPID,
                n_buffers: 0,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0,
            },
            ports: vec![],
        }
    }

    fn run(app: &mut L2Switch, ev: Event) -> Vec<Message> {
        let mut out = Vec::new();
        app.handle(std::time::Instant::now(), &ev, &mut out);
        assert!(out.iter().all(|o| Some(o.dpid) == ev.dpid()));
        out.into_iter().map(|o| o.message).collect()
    }

    /// A switch that is up and has learnt H1 on port 1 (from a broadcast).
    fn h1_learnt_on_port_1() -> L2Switch {
        let mut app = L2Switch::default();
        run(&mut app, up());
        run(&mut app, pin(1, BCAST, H1));
        app
    }

    fn counters(app: &L2Switch) -> AppCounters {
        match app.query(std::time::Instant::now(), &Query::Counters) {
            Some(Answer::Counters(c)) => c,
            other => panic!("expected counters, got {other:?}"),
        }
    }

    #[test]
    fn counters_move_with_what_it_does() {
        let mut app = h1_learnt_on_port_1();
        let c = counters(&app);
        assert_eq!((c.packet_ins, c.flows_installed, c.macs_learned), (1, 0, 1));
        // H2 to H1: a flow towards H1, H2 learnt.
        run(&mut app, pin(2, H1, H2));
        // A runt frame: ignored, counted by reason.
        let mut runt = pin(2, H1, H2);
        if let Event::PacketIn { packet_in, .. } = &mut runt {
            packet_in.data = Bytes::from_static(&[0; 6]);
        }
        run(&mut app, runt);
        let c = counters(&app);
        assert_eq!((c.packet_ins, c.flows_installed, c.macs_learned), (3, 1, 2));
        assert_eq!(c.ignored, vec![("unparseable", 1)]);
        // It keeps no record of its flows, and simulates nothing.
        assert_eq!((c.flows, c.simulations), (None, 0));
    }

    fn packet_out(in_port: u32, port: u32, data: Bytes) -> Message {
        Message::PacketOut(PacketOut {
            buffer_id: OFP_NO_BUFFER,
            in_port,
            actions: vec![Action::Output { port, max_len: 0 }],
            data,
        })
    }

    #[test]
    fn switch_up_clears_own_flows_and_installs_table_miss() {
        let mut app = L2Switch::default();
        let msgs = run(&mut app, up());
        assert_eq!(msgs.len(), 2);
        let Message::FlowMod(del) = &msgs[0] else {
            panic!("expected a flow-mod, got {:?}", msgs[0])
        };
        assert_eq!(del.command, FlowModCommand::Delete);
        assert_eq!((del.cookie, del.cookie_mask), (COOKIE_TAG, COOKIE_TAG_MASK));
        assert_eq!(del.table_id, OFPTT_ALL);
        let Message::FlowMod(miss) = &msgs[1] else {
            panic!("expected a flow-mod, got {:?}", msgs[1])
        };
        assert_eq!(miss.command, FlowModCommand::Add);
        assert_eq!(miss.priority, 0);
        assert!(miss.match_.fields.is_empty());
        assert_eq!(
            miss.instructions,
            vec![Instruction::ApplyActions(vec![Action::Output {
                port: port_no::CONTROLLER,
                max_len: OFPCML_NO_BUFFER
            }])]
        );
    }

    #[test]
    fn unknown_destination_floods_and_learns_source() {
        let mut app = L2Switch::default();
        run(&mut app, up());
        let msgs = run(&mut app, pin(1, BCAST, H1));
        assert_eq!(
            msgs,
            vec![packet_out(1, port_no::FLOOD, frame(BCAST, H1, 0x0800))]
        );
        assert_eq!(app.lookup(DPID, H1), Some(1));
    }

    #[test]
    fn known_destination_installs_flow_then_forwards() {
        let mut app = h1_learnt_on_port_1();
        let msgs = run(&mut app, pin(2, H1, H2));
        assert_eq!(msgs.len(), 2);
        let Message::FlowMod(fm) = &msgs[0] else {
            panic!("expected a flow-mod, got {:?}", msgs[0])
        };
        assert_eq!(fm.command, FlowModCommand::Add);
        assert_eq!(fm.cookie, mac_cookie(H1));
        assert_eq!(fm.idle_timeout, Config::default().idle_timeout);
        assert_eq!(
            fm.match_,
            Match::new()
                .with(OxmField::InPort(2))
                .with(OxmField::EthSrc {
                    value: H2,
                    mask: None
                })
                .with(OxmField::EthDst {
                    value: H1,
                    mask: None
                })
        );
        assert_eq!(
            fm.instructions,
            vec![Instruction::ApplyActions(vec![Action::Output {
                port: 1,
                max_len: 0
            }])]
        );
        assert_eq!(msgs[1], packet_out(2, 1, frame(H1, H2, 0x0800)));
    }

    #[test]
    fn moved_mac_invalidates_flows_towards_it() {
        let mut app = h1_learnt_on_port_1();
        run(&mut app, pin(2, H1, H2));
        // H1 now shows up on port 3.
        let msgs = run(&mut app, pin(3, BCAST, H1));
        assert_eq!(msgs.len(), 2);
        let Message::FlowMod(del) = &msgs[0] else {
            panic!("expected a flow-mod, got {:?}", msgs[0])
        };
        assert_eq!(del.command, FlowModCommand::Delete);
        assert_eq!((del.cookie, del.cookie_mask), (mac_cookie(H1), u64::MAX));
        assert_eq!(app.lookup(DPID, H1), Some(3));
        // Traffic to H1 now goes to port 3.
        let msgs = run(&mut app, pin(2, H1, H2));
        assert_eq!(msgs[1], packet_out(2, 3, frame(H1, H2, 0x0800)));
    }

    #[test]
    fn same_port_destination_is_dropped_not_hairpinned() {
        let mut app = h1_learnt_on_port_1();
        assert_eq!(run(&mut app, pin(1, H1, H2)), vec![]);
    }

    #[test]
    fn multicast_source_is_not_learnt_and_lldp_ignored() {
        let mut app = L2Switch::default();
        run(&mut app, up());
        run(&mut app, pin(1, H2, [0x01, 0, 0x5e, 0, 0, 1]));
        assert_eq!(app.lookup(DPID, [0x01, 0, 0x5e, 0, 0, 1]), None);
        let lldp = Event::PacketIn {
            dpid: DPID,
            packet_in: PacketIn {
                buffer_id: OFP_NO_BUFFER,
                total_len: 60,
                reason: PacketInReason::NoMatch,
                table_id: 0,
                cookie: 0,
                match_: Match::new().with(OxmField::InPort(1)),
                data: frame([0x01, 0x80, 0xc2, 0, 0, 0x0e], H1, ETHERTYPE_LLDP),
            },
        };
        assert_eq!(run(&mut app, lldp), vec![]);
        assert_eq!(app.lookup(DPID, H1), None);
    }

    #[test]
    fn short_or_portless_packet_in_is_ignored() {
        let mut app = L2Switch::default();
        run(&mut app, up());
        let short = Event::PacketIn {
            dpid: DPID,
            packet_in: PacketIn {
                buffer_id: OFP_NO_BUFFER,
                total_len: 3,
                reason: PacketInReason::NoMatch,
                table_id: 0,
                cookie: 0,
                match_: Match::new().with(OxmField::InPort(1)),
                data: Bytes::from_static(&[1, 2, 3]),
            },
        };
        assert_eq!(run(&mut app, short), vec![]);
        let Event::PacketIn { mut packet_in, .. } = pin(1, BCAST, H1) else {
            unreachable!("pin builds a packet-in")
        };
        packet_in.match_ = Match::new();
        assert_eq!(
            run(
                &mut app,
                Event::PacketIn {
                    dpid: DPID,
                    packet_in
                }
            ),
            vec![]
        );
    }

    #[test]
    fn port_down_forgets_macs_and_deletes_flows_out_of_it() {
        let mut app = h1_learnt_on_port_1();
        let status = PortStatus {
            reason: PortReason::Modify,
            desc: Port {
                port_no: 1,
                hw_addr: [0; 6],
                name: "p1".into(),
                config: 0,
                state: OFPPS_LINK_DOWN,
                curr: 0,
                advertised: 0,
                supported: 0,
                peer: 0,
                curr_speed: 0,
                max_speed: 0,
            },
        };
        let msgs = run(&mut app, Event::PortStatus { dpid: DPID, status });
        assert_eq!(app.lookup(DPID, H1), None);
        let [Message::FlowMod(del)] = msgs.as_slice() else {
            panic!("expected one flow-mod, got {msgs:?}")
        };
        assert_eq!((del.command, del.out_port), (FlowModCommand::Delete, 1));
    }

    #[test]
    fn switch_down_forgets_the_table_and_up_starts_fresh() {
        let mut app = h1_learnt_on_port_1();
        run(&mut app, Event::SwitchDown { dpid: DPID });
        assert_eq!(app.lookup(DPID, H1), None);
        run(&mut app, pin(1, BCAST, H1));
        run(&mut app, up());
        assert_eq!(app.lookup(DPID, H1), None);
    }

    fn mac(n: u8) -> [u8; 6] {
        [0, 0, 0, 0, 1, n]
    }

    fn deletes_of(msgs: &[Message]) -> Vec<u64> {
        msgs.iter()
            .filter_map(|m| match m {
                Message::FlowMod(f) if f.command == FlowModCommand::Delete => Some(f.cookie),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_full_table_evicts_the_oldest_entry_of_the_port_that_fills_it() {
        let mut app = L2Switch::new(Config {
            max_macs_per_switch: 3,
            ..Config::default()
        });
        run(&mut app, up());
        run(&mut app, pin(2, BCAST, H2));
        run(&mut app, pin(1, BCAST, mac(1)));
        run(&mut app, pin(1, BCAST, mac(2)));
        // A known MAC does not count as new, nor does it become younger.
        assert!(deletes_of(&run(&mut app, pin(1, BCAST, mac(1)))).is_empty());
        // Port 1 forges on: each new source evicts port 1's oldest, never H2 on port 2; flows
        // towards the evicted MAC go with it.
        for n in 3..100 {
            let msgs = run(&mut app, pin(1, BCAST, mac(n)));
            assert_eq!(deletes_of(&msgs), [mac_cookie(mac(n - 2))], "{n}");
            assert_eq!(app.lookup(DPID, mac(n - 2)), None);
            assert_eq!(app.lookup(DPID, mac(n - 1)), Some(1));
            assert_eq!(app.lookup(DPID, mac(n)), Some(1));
            assert_eq!(app.lookup(DPID, H2), Some(2));
            assert_eq!(app.tables[&DPID].len(), 3);
        }
        // A port with nothing learnt takes the place of the oldest entry of the port holding
        // the most.
        let h3 = [0, 0, 0, 0, 0, 3];
        run(&mut app, pin(3, BCAST, h3));
        assert_eq!(app.lookup(DPID, h3), Some(3));
        assert_eq!(app.lookup(DPID, mac(98)), None);
        assert_eq!(app.lookup(DPID, mac(99)), Some(1));
        assert_eq!(app.lookup(DPID, H2), Some(2));
        // A MAC that moves is counted on its new port: port 3 now holds two, port 1 none, and
        // the next new source on port 1 evicts the oldest of port 3.
        run(&mut app, pin(3, BCAST, mac(99)));
        run(&mut app, pin(1, BCAST, mac(200)));
        assert_eq!(app.lookup(DPID, h3), None);
        assert_eq!(app.lookup(DPID, mac(99)), Some(3));
        assert_eq!(app.lookup(DPID, H2), Some(2));
        assert_eq!(app.lookup(DPID, mac(200)), Some(1));
        assert_eq!(app.tables[&DPID].len(), 3);
    }

    #[test]
    fn tables_are_per_switch() {
        let app = h1_learnt_on_port_1();
        assert_eq!(app.lookup(2, H1), None);
    }
}
