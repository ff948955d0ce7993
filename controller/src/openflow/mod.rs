//! OpenFlow 1.3 switch sessions: the sans-IO [`session`] state machine, the tokio [`conn`]
//! driver per switch, the [`listener`] that accepts switches, the [`registry`] of identified
//! switches, and the [`app`] runner that feeds their events to the chosen application.
//!
//! Data flow: socket → `conn` (framing) → `Session` → `SessionEvent` → [`Envelope`] on one
//! bounded channel → `app::run` → `apps::App::handle` → `apps::Output` → registry lookup →
//! `SwitchHandle` → the switch's `conn` task → `Session` (xid) → encoded into its write buffer.

pub mod app;
pub mod conn;
pub mod listener;
pub mod registry;
pub mod session;
#[cfg(test)]
pub(crate) mod test_util;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

pub use registry::{ConnId, SendError, SwitchHandle, Switches};
pub use session::{CloseReason, Config, Reply, RequestError};

/// An app event and the connection it came from. The connection id lets the app runner drop
/// events of a session that a reconnect of the same datapath has replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The connection that produced the event.
    pub conn: ConnId,
    /// The event.
    pub event: apps::Event,
}

/// Depth of the event channel from all switches to the app.
pub const EVENT_QUEUE: usize = 8192;

/// The event stream from every switch to the app runner.
pub fn event_channel() -> (mpsc::Sender<Envelope>, mpsc::Receiver<Envelope>) {
    mpsc::channel(EVENT_QUEUE)
}

/// What every connection task shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    /// The registry that identified switches join.
    pub switches: Switches,
    /// Where app events go.
    pub events: mpsc::Sender<Envelope>,
    /// Session tunables.
    pub config: Config,
    next_conn: Arc<AtomicU64>,
}

impl Context {
    /// A context for one listener.
    pub fn new(switches: Switches, events: mpsc::Sender<Envelope>, config: Config) -> Self {
        Self {
            switches,
            events,
            config,
            next_conn: Arc::new(AtomicU64::new(1)),
        }
    }

    fn next_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}
