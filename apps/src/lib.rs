//! Controller applications: pure functions of switch events to OpenFlow messages; no I/O.
//!
//! The controller's session layer turns what switches say into [`Event`]s and hands them, one at a
//! time and in order, to the one [`App`] chosen at start-up (`strowger serve --app NAME`). The app
//! answers by pushing [`Output`]s: OpenFlow message bodies addressed to a datapath. The session
//! layer assigns transaction ids, encodes and writes them. Apps therefore never see a socket, a
//! clock or a runtime, and are tested by feeding events and comparing the messages they emit.
//!
//! One ordered stream: switch events, every topology snapshot, every change of the port bindings
//! and the app's own timers all reach it through [`App::handle`] and [`App::handle_timeout`],
//! under the one lock of the controller's app host. So the app never sees a packet-in "between"
//! a snapshot and the invalidation it causes: a flow simulated on snapshot N is emitted before
//! the deletes that snapshot N+1 causes, and the switch applies them in that order. Time is an
//! argument (`now`), never read: tests drive a simulated clock.

pub mod bindings;
pub mod engine;
pub mod harness;
pub mod l2switch;

use std::sync::Arc;
use std::time::Instant;

use ofproto::{ErrorMsg, FeaturesReply, FlowRemoved, Message, PacketIn, Port, PortStatus};

pub use bindings::Bindings;
pub use topology::Snapshot;

/// What happened on a switch, as an application sees it.
///
/// Ordering guarantee (kept by the controller): for one datapath id, `SwitchUp` comes before any
/// other event of that session, and nothing but a new `SwitchUp` follows a `SwitchDown`. A switch
/// that reconnects while its old session is still open gets a second `SwitchUp` without a
/// `SwitchDown` in between: apps must treat `SwitchUp` as "start from scratch".
#[derive(Debug, Clone)]
pub enum Event {
    /// A switch finished the handshake (HELLO, FEATURES, SET_CONFIG, PORT_DESC).
    SwitchUp {
        /// The datapath id from FEATURES_REPLY.
        dpid: u64,
        /// The whole FEATURES_REPLY.
        features: FeaturesReply,
        /// Its ports, from the PORT_DESC reply.
        ports: Vec<Port>,
    },
    /// The switch's session ended (closed, timed out, misbehaved).
    SwitchDown {
        /// The datapath id.
        dpid: u64,
    },
    /// A PACKET_IN.
    PacketIn {
        /// The datapath id.
        dpid: u64,
        /// The message.
        packet_in: PacketIn,
    },
    /// A PORT_STATUS (port added, deleted or changed).
    PortStatus {
        /// The datapath id.
        dpid: u64,
        /// The message.
        status: PortStatus,
    },
    /// A FLOW_REMOVED (only for flows installed with `OFPFF_SEND_FLOW_REM`).
    FlowRemoved {
        /// The datapath id.
        dpid: u64,
        /// The message.
        removed: FlowRemoved,
    },
    /// The switch refused a message the app sent (an ERROR nobody waited for). `xid` is the one
    /// the session gave the message; `error.data` holds its first bytes, so an app finds its own
    /// flow again by the cookie in them (see [`error_cookie`]).
    SwitchError {
        /// The datapath id.
        dpid: u64,
        /// The failing message's xid.
        xid: u32,
        /// The ERROR.
        error: ErrorMsg,
    },
    /// The switch's answer to a FLOW_STATS request the app sent (an `Output` whose message is a
    /// `MultipartRequest` for flow stats): every part's flows; `None` when the request failed
    /// (the switch refused it, did not answer in time or went away).
    FlowStats {
        /// The datapath id.
        dpid: u64,
        /// The flows.
        flows: Option<Vec<ofproto::FlowStats>>,
    },
    /// The switch answered a BARRIER_REQUEST the app sent (an `Output` whose message is a
    /// `BarrierRequest`): everything the app sent it before that barrier is in effect. One
    /// event per barrier, also when the request failed while its session stayed the current
    /// one (the switch refused it or did not answer in time); none once the session is gone,
    /// since `SwitchDown` says that. Events of one switch may arrive in any order, but the
    /// k-th of them means the first k barriers are answered (a switch answers in order).
    Barrier {
        /// The datapath id.
        dpid: u64,
    },
    /// A new topology snapshot (every revision, in order).
    Topology(Arc<Snapshot>),
    /// The port bindings changed (which logical port is where, which tunnel leads where).
    Bindings(Arc<Bindings>),
}

/// Snapshots compare by revision (one revision is one snapshot); everything else by value.
impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        use Event::*;
        match (self, other) {
            (
                SwitchUp {
                    dpid: a,
                    features: fa,
                    ports: pa,
                },
                SwitchUp {
                    dpid: b,
                    features: fb,
                    ports: pb,
                },
            ) => a == b && fa == fb && pa == pb,
            (SwitchDown { dpid: a }, SwitchDown { dpid: b }) => a == b,
            (
                PacketIn {
                    dpid: a,
                    packet_in: x,
                },
                PacketIn {
                    dpid: b,
                    packet_in: y,
                },
            ) => a == b && x == y,
            (PortStatus { dpid: a, status: x }, PortStatus { dpid: b, status: y }) => {
                a == b && x == y
            }
            (
                FlowRemoved {
                    dpid: a,
                    removed: x,
                },
                FlowRemoved {
                    dpid: b,
                    removed: y,
                },
            ) => a == b && x == y,
            (
                SwitchError {
                    dpid: a,
                    xid: xa,
                    error: ea,
                },
                SwitchError {
                    dpid: b,
                    xid: xb,
                    error: eb,
                },
            ) => a == b && xa == xb && ea == eb,
            (FlowStats { dpid: a, flows: x }, FlowStats { dpid: b, flows: y }) => a == b && x == y,
            (Barrier { dpid: a }, Barrier { dpid: b }) => a == b,
            (Topology(a), Topology(b)) => a.revision() == b.revision(),
            (Bindings(a), Bindings(b)) => a == b,
            _ => false,
        }
    }
}

impl Event {
    /// The datapath the event is about; `None` for controller-wide events.
    pub fn dpid(&self) -> Option<u64> {
        match self {
            Event::SwitchUp { dpid, .. }
            | Event::SwitchDown { dpid }
            | Event::PacketIn { dpid, .. }
            | Event::PortStatus { dpid, .. }
            | Event::FlowRemoved { dpid, .. }
            | Event::SwitchError { dpid, .. }
            | Event::FlowStats { dpid, .. }
            | Event::Barrier { dpid } => Some(*dpid),
            Event::Topology(_) | Event::Bindings(_) => None,
        }
    }
}

/// The cookie of the FLOW_MOD an ERROR quotes, if it quotes one: the ERROR's data starts with
/// the offending message (at least 64 bytes), and a FLOW_MOD's cookie is at bytes 8..16.
pub fn error_cookie(error: &ErrorMsg) -> Option<u64> {
    const OFPT_FLOW_MOD: u8 = 14;
    let d = &error.data;
    if d.len() < 16 || d[1] != OFPT_FLOW_MOD {
        return None;
    }
    let mut c = [0u8; 8];
    c.copy_from_slice(&d[8..16]);
    Some(u64::from_be_bytes(c))
}

/// One message an app wants sent to a switch. The session layer picks the xid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Where to send it.
    pub dpid: u64,
    /// What to send.
    pub message: Message,
}

/// A controller application: consumes events in order, emits messages (sans-IO, in the style
/// of quinn-proto: the caller owns the clock and the timer).
///
/// `handle` must not block: it runs on the task that feeds every switch's events, so a slow app
/// slows every switch (the controller applies backpressure rather than dropping events).
pub trait App: Send {
    /// The name used on the command line (`--app NAME`).
    fn name(&self) -> &'static str;
    /// Reacts to one event at time `now`; appends the messages to send to `out`.
    fn handle(&mut self, now: Instant, event: &Event, out: &mut Vec<Output>);
    /// When the app next wants [`App::handle_timeout`] called; asked after every call.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// The time from [`App::poll_timeout`] has come (or passed).
    fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Output>) {
        let _ = (now, out);
    }
    /// Answers a read-only question about the app's runtime state (the REST views of MAC and
    /// ARP tables, the counters `/metrics` shows); `None` when the app keeps no such state. Called under the same lock as
    /// `handle`, so it must be quick.
    fn query(&self, now: Instant, query: &Query) -> Option<Answer> {
        let _ = (now, query);
        None
    }
}

/// A question about an app's runtime state (see [`App::query`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// The learned MACs of a virtual bridge.
    MacTable {
        /// The bridge.
        bridge: uuid::Uuid,
    },
    /// The ARP cache of a virtual router.
    ArpTable {
        /// The router.
        router: uuid::Uuid,
    },
    /// Trace a packet entering the virtual network at a logical port (changes nothing).
    Trace {
        /// The ingress port.
        port: uuid::Uuid,
        /// The packet.
        header: engine::flowkey::Header,
    },
    /// The flow-cache entries installed on one switch (or all), with their provenance.
    Flows {
        /// The switch; `None` for every switch.
        dpid: Option<u64>,
    },
    /// One installed flow and its packet traced again now.
    Explain {
        /// The flow's cookie.
        cookie: u64,
    },
    /// What the app counted since it started (`GET /metrics`).
    Counters,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Entries of a bridge's MAC table, in MAC order.
    MacTable(Vec<MacEntry>),
    /// Entries of a router's ARP cache, in address order.
    ArpTable(Vec<ArpEntry>),
    /// A trace.
    Trace(Box<engine::trace::Trace>),
    /// Installed flows with their provenance, in cookie order.
    Flows(Vec<engine::trace::FlowInfo>),
    /// The flow (`None`: no such cookie) and its packet traced again.
    Explain(Option<Box<(engine::trace::FlowInfo, engine::trace::Trace)>>),
    /// The app's counters.
    Counters(AppCounters),
}

/// What an app counted since it started, for `GET /metrics`: every field is a monotonic count
/// except [`AppCounters::flows`], a level. An app counts what it does; what it does not do
/// stays 0 (the learning switch simulates nothing). Labelled counts are sorted by label, so
/// two answers compare equal when the counts are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppCounters {
    /// Packet-ins received.
    pub packet_ins: u64,
    /// Packet-ins over their port's budget, dropped unanswered.
    pub budget_hits: u64,
    /// Packet-ins neither simulated nor over budget, by reason (`unparseable`,
    /// `unknown_ingress`).
    pub ignored: Vec<(&'static str, u64)>,
    /// Simulations run (packet-ins, the answers they caused, re-simulated parked packets).
    pub simulations: u64,
    /// Flows sent to switches (FLOW_MOD add).
    pub flows_installed: u64,
    /// Flows a switch reported gone on its own (FLOW_REMOVED: idle or hard timeout).
    pub flows_removed: u64,
    /// Flows the app deleted because something they depended on changed.
    pub flows_invalidated: u64,
    /// Flows the app believes are installed now (a level, not a count); `None` when it keeps
    /// no record of them.
    pub flows: Option<u64>,
    /// Simulation results that dropped the packet, by reason.
    pub drops: Vec<(&'static str, u64)>,
    /// Answers the virtual devices sent, by kind (ARP, ICMP, DHCP).
    pub answers: Vec<(&'static str, u64)>,
    /// Answers decided but not sent, by reason.
    pub unanswered: Vec<(&'static str, u64)>,
    /// MACs learned (new or moved).
    pub macs_learned: u64,
    /// Packets simulated again after their next hop answered or failed.
    pub resimulated: u64,
    /// ERRORs switches sent for the app's messages.
    pub switch_errors: u64,
    /// Reply flows installed on the destination's host with the request that demands them.
    pub replies_predicted: u64,
    /// First packets held until the destination's switch confirmed their reply's flow.
    pub packets_held: u64,
    /// Held packets that went at their deadline, the destination's barrier unanswered.
    pub holds_expired: u64,
    /// First packets sent out of their destination's port by the destination's switch.
    pub delivered_at_destination: u64,
}

/// A labelled count as [`AppCounters`] keeps it: sorted by label.
pub(crate) fn sorted_counts<'a>(
    counts: impl IntoIterator<Item = (&'a &'static str, &'a u64)>,
) -> Vec<(&'static str, u64)> {
    let mut v: Vec<_> = counts.into_iter().map(|(k, n)| (*k, *n)).collect();
    v.sort_unstable();
    v
}

/// One learned MAC of a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacEntry {
    /// The MAC.
    pub mac: [u8; 6],
    /// The bridge port it was learned on.
    pub port_id: uuid::Uuid,
    /// How many installed flows deliver to it (it expires some time after the last one goes).
    pub flows: u32,
}

/// The state of a router's ARP entry (RFC 4861-like: resolving, reachable, stale, failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpState {
    /// Requests are out, no answer yet (packets may be parked for it).
    Resolving,
    /// Answered recently.
    Reachable,
    /// Old: still used, refreshed on next use.
    Stale,
    /// No answer after every retry: packets to it get ICMP host unreachable until it expires.
    Failed,
}

impl ArpState {
    /// The name shown in REST and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            ArpState::Resolving => "resolving",
            ArpState::Reachable => "reachable",
            ArpState::Stale => "stale",
            ArpState::Failed => "failed",
        }
    }
}

/// One entry of a router's ARP cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpEntry {
    /// The neighbour's address.
    pub ip: std::net::Ipv4Addr,
    /// Its MAC, once known.
    pub mac: Option<[u8; 6]>,
    /// The router port it is reached through.
    pub port_id: uuid::Uuid,
    /// Where the entry stands.
    pub state: ArpState,
    /// Seconds until the entry next changes state (expires, goes stale, or is retried).
    pub expires_in_secs: u64,
    /// Packets parked waiting for it.
    pub parked: usize,
}

/// Names accepted by [`by_name`]; the first is the default.
pub const APP_NAMES: &[&str] = &[engine::NAME, l2switch::NAME];

/// The app called `name` with its default configuration, or `None` if there is no such app.
pub fn by_name(name: &str) -> Option<Box<dyn App>> {
    match name {
        engine::NAME => Some(Box::new(engine::Engine::default())),
        l2switch::NAME => Some(Box::new(l2switch::L2Switch::default())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    /// The layering invariant of ARCHITECTURE.md: apps open no sockets, so no runtime or
    /// networking crate may creep into the manifest.
    #[test]
    fn manifest_has_no_io_dependency() {
        let manifest = include_str!("../Cargo.toml");
        for forbidden in ["tokio", "mio", "async-std", "socket2", "hyper", "axum"] {
            assert!(
                !manifest
                    .lines()
                    .any(|l| l.trim_start().starts_with(forbidden)),
                "apps/Cargo.toml must not depend on {forbidden}"
            );
        }
    }

    #[test]
    fn apps_are_found_by_name() {
        for name in super::APP_NAMES {
            assert_eq!(super::by_name(name).map(|a| a.name()), Some(*name));
        }
        assert!(super::by_name("nope").is_none());
    }
}
