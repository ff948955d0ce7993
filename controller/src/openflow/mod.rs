//! OpenFlow 1.3 switch sessions: the sans-IO [`session`] state machine, the tokio [`conn`]
//! driver per switch, the [`listener`] that accepts switches, the [`registry`] of identified
//! switches, and the [`app`] host through which every connection task calls the chosen
//! application.
//!
//! Data flow: socket → `conn` (framing) → `Session` → `SessionEvent` → [`AppHost`] (in the same
//! task, under the app lock) → `apps::App::handle` → `apps::Output` → for the same switch, straight
//! into its `Session` and write buffer (one read, one write); for another switch, its
//! `SwitchHandle` queue → that switch's `conn` task → `Session` (xid) → its write buffer.

pub mod app;
pub mod conn;
pub mod listener;
pub mod log_limit;
pub mod registry;
pub mod session;
#[cfg(test)]
pub(crate) mod test_util;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use app::AppHost;
pub use registry::{ConnId, SendError, SwitchHandle, Switches};
pub use session::{CloseReason, Config, PeerMisbehaved, Reply, RequestError};

/// What every connection task shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    /// The registry that identified switches join.
    pub switches: Switches,
    /// The app every event goes to.
    pub app: AppHost,
    /// Session tunables.
    pub config: Config,
    next_conn: Arc<AtomicU64>,
}

impl Context {
    /// A context for one listener: its switches join `app`'s registry.
    pub fn new(app: AppHost, config: Config) -> Self {
        Self {
            switches: app.switches().clone(),
            app,
            config,
            next_conn: Arc::new(AtomicU64::new(1)),
        }
    }

    fn next_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}
