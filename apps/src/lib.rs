//! Controller applications: pure functions of switch events to OpenFlow messages; no I/O.
//!
//! The controller's session layer turns what switches say into [`Event`]s and hands them, one at a
//! time and in order, to the one [`App`] chosen at start-up (`strowger serve --app NAME`). The app
//! answers by pushing [`Output`]s: OpenFlow message bodies addressed to a datapath. The session
//! layer assigns transaction ids, encodes and writes them. Apps therefore never see a socket, a
//! clock or a runtime, and are tested by feeding events and comparing the messages they emit.

pub mod l2switch;

use ofproto::{FeaturesReply, FlowRemoved, Message, PacketIn, Port, PortStatus};

/// What happened on a switch, as an application sees it.
///
/// Ordering guarantee (kept by the controller): for one datapath id, `SwitchUp` comes before any
/// other event of that session, and nothing but a new `SwitchUp` follows a `SwitchDown`. A switch
/// that reconnects while its old session is still open gets a second `SwitchUp` without a
/// `SwitchDown` in between: apps must treat `SwitchUp` as "start from scratch".
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Event {
    /// The datapath the event is about.
    pub fn dpid(&self) -> u64 {
        match self {
            Event::SwitchUp { dpid, .. }
            | Event::SwitchDown { dpid }
            | Event::PacketIn { dpid, .. }
            | Event::PortStatus { dpid, .. }
            | Event::FlowRemoved { dpid, .. } => *dpid,
        }
    }
}

/// One message an app wants sent to a switch. The session layer picks the xid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Where to send it.
    pub dpid: u64,
    /// What to send.
    pub message: Message,
}

/// A controller application: consumes events in order, emits messages.
///
/// `handle` must not block: it runs on the task that feeds every switch's events, so a slow app
/// slows every switch (the controller applies backpressure rather than dropping events).
pub trait App: Send {
    /// The name used on the command line (`--app NAME`).
    fn name(&self) -> &'static str;
    /// Reacts to one event; appends the messages to send to `out`.
    fn handle(&mut self, event: &Event, out: &mut Vec<Output>);
}

/// Names accepted by [`by_name`].
pub const APP_NAMES: &[&str] = &[l2switch::NAME];

/// The app called `name` with its default configuration, or `None` if there is no such app.
pub fn by_name(name: &str) -> Option<Box<dyn App>> {
    match name {
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
