//! OpenFlow 1.3 switch sessions: the sans-IO [`session`] state machine, the tokio [`conn`]
//! driver per switch, the [`listener`] that accepts switches, the [`registry`] of identified
//! switches, and the [`app`] host through which every connection task calls the chosen
//! application.
//!
//! Data flow: socket → `conn` (framing) → `Session` → `SessionEvent` → [`AppHost`] (in the same
//! task if the app lock is free, else queued for its holder) → `apps::App::handle` →
//! `apps::Output` → answered inline, for the same switch: straight into its `Session` and write
//! buffer (one read, one write); otherwise the switch's mailbox → its `conn` task → `Session`
//! (xid) → its write buffer.

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
    /// TLS with mutual authentication, when on: switches then connect with `ssl:`.
    pub tls: Option<Tls>,
    next_conn: Arc<AtomicU64>,
}

/// Whether a switch that proved a certificate may claim a datapath id: `Err(why)` refuses its
/// session. `serve` answers from the topology: a host's br-int belongs to the holder of the
/// host's certificate (`cert_cn`).
pub type DpidPolicy =
    Arc<dyn Fn(u64, &crate::tls::PeerIdentity) -> Result<(), String> + Send + Sync>;

/// The OpenFlow listener's TLS: the acceptor (client certificates required) and who may claim
/// which datapath.
#[derive(Clone)]
pub struct Tls {
    /// The handshake, with the CA every switch certificate must chain to.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Who may claim which datapath id; `None`: any certificate from the CA may claim any
    /// datapath id not connected under another certificate.
    pub policy: Option<DpidPolicy>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("policy", &self.policy.is_some())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for one listener: its switches join `app`'s registry.
    pub fn new(app: AppHost, config: Config) -> Self {
        Self {
            switches: app.switches().clone(),
            app,
            config,
            tls: None,
            next_conn: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The same context with switches required to connect over TLS.
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Why a switch that proved `identity` may not claim `dpid`, if it may not: the policy's
    /// answer, or the datapath is connected now under another certificate (a second
    /// connection must not evict a real switch; the same holder reconnecting replaces its
    /// old session, as over TCP).
    pub(crate) fn refusal(&self, dpid: u64, identity: &crate::tls::PeerIdentity) -> Option<String> {
        if let Some(policy) = self.tls.as_ref().and_then(|t| t.policy.as_ref()) {
            if let Err(why) = policy(dpid, identity) {
                return Some(why);
            }
        }
        let current = self.switches.get(dpid)?;
        let holder = current.identity()?;
        (holder.cn != identity.cn).then(|| {
            format!(
                "datapath {} is connected under another certificate ({holder})",
                ofproto::display::Dpid(dpid)
            )
        })
    }

    fn next_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}
