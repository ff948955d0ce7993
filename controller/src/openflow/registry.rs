//! The switch registry: which datapaths are connected now, and a cheap handle to talk to each.
//!
//! `Switches` owns a `DashMap` keyed by datapath id. A sharded map rather than one `RwLock`:
//! every app output and REST call looks a switch up, while connects and disconnects are rare,
//! and a lookup must never wait behind another switch's registration. No lock is held across an
//! `.await`: handles are cloned out of the map, then used.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use ofproto::{FeaturesReply, Message, Port};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::session::{Reply, RequestError};

/// Identifies one TCP connection for the lifetime of the process; distinguishes an old session
/// of a datapath from the new one that replaced it.
pub type ConnId = u64;

/// What a handle asks of its connection task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send, nobody waits.
    Send(Message),
    /// Send and report the outcome (reply, ERROR, timeout, close).
    Request(Message, oneshot::Sender<Result<Reply, RequestError>>),
    /// The current port table.
    Ports(oneshot::Sender<Vec<Port>>),
    /// Everything queued before was the app's output up to this mark: confirm it with a
    /// barrier (coalesced, see `crate::applied::Barriers`).
    Mark(crate::applied::Mark),
    /// The app's own BARRIER_REQUEST: its answer (a reply, an ERROR or a timeout alike) goes
    /// back to the app as `Event::Barrier`, handed over by the connection task that read it,
    /// with that task's own sink, so what the app sends this switch in return (a packet held
    /// for the barrier) goes out in the same turn, without a wake-up of another task.
    AppBarrier,
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The switch's outbound queue is full (it reads slower than we write).
    #[error("switch queue full")]
    Full,
    /// The session has ended.
    #[error("switch disconnected")]
    Gone,
}

/// What a connection task shares with its handles besides the command queue.
#[derive(Debug, Default)]
pub struct ConnShared {
    /// Fired to make the connection close (it was replaced, or must resync).
    pub(crate) kill: Notify,
    /// Set before `kill` when the close is a resync (an app output did not fit), so the
    /// connection closes with `CloseReason::Resync` rather than `Replaced`. From then on it
    /// takes no more commands: what it already took was queued before the message that did not
    /// fit, so the switch never sees a batch with a gap in it.
    pub(crate) resync: AtomicBool,
    /// Traffic counters, written by the connection task only.
    pub(crate) counters: Counters,
    /// The last mark the switch acknowledged with a barrier reply; written by the connection
    /// task, read by REST. A std mutex: held for a copy, never across an await.
    pub(crate) applied: std::sync::Mutex<Option<crate::applied::Mark>>,
    /// The app's output for this switch, in the order the app produced it (see `app.rs`): its
    /// messages, the marks behind them and its FLOW_STATS requests. A std mutex: held to push
    /// or to swap the queue out, never across an await or an app call.
    pub(crate) mailbox: std::sync::Mutex<Mailbox>,
    /// How many commands the mailbox holds: lets the connection task skip its lock when empty.
    pub(crate) mail: AtomicUsize,
    /// How many of this connection's events wait in the app host's pending queue (delegated
    /// to whoever holds the app lock). While it is not zero the connection's later events
    /// queue behind them; at [`PENDING_PER_CONN`] the connection stops reading.
    pub(crate) queued: AtomicUsize,
    /// Wakes the connection task: mail arrived, or one of its queued events was handled.
    /// A stored permit (`notify_one`), so a wake-up given while the task is busy is not lost.
    pub(crate) wake: Notify,
}

/// Events one connection may have waiting for the app lock before it stops reading its socket
/// (async backpressure: the task awaits, it never blocks a thread).
pub const PENDING_PER_CONN: usize = 64;

/// App output queued for a switch by whoever held the app lock.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    pub(crate) commands: std::collections::VecDeque<Command>,
    /// How many of `commands` came from events of other connections (or controller-wide
    /// events): those are bounded by [`MAILBOX_FOREIGN`] (lossless or resync, as the command
    /// queue was). The answers to the connection's own delegated events are not counted: they
    /// are bounded by [`PENDING_PER_CONN`] events, and an event answered inline would have put
    /// them straight into the session anyway.
    pub(crate) foreign: usize,
}

/// Foreign commands a mailbox holds before the app's next one for that switch resyncs it.
pub const MAILBOX_FOREIGN: usize = 1024;

impl ConnShared {
    /// Whether the connection was told to close for a resync.
    pub(crate) fn is_resyncing(&self) -> bool {
        self.resync.load(Ordering::Acquire)
    }

    /// Queues an app output for this connection's switch, behind every earlier one. `own`:
    /// an answer to one of the connection's own events (not bounded here, see [`Mailbox`]).
    pub(crate) fn post(&self, command: Command, own: bool) -> Result<(), SendError> {
        let mut mailbox = self
            .mailbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !own {
            if mailbox.foreign >= MAILBOX_FOREIGN {
                return Err(SendError::Full);
            }
            mailbox.foreign += 1;
        }
        mailbox.commands.push_back(command);
        self.mail.store(mailbox.commands.len(), Ordering::Release);
        drop(mailbox);
        self.wake.notify_one();
        Ok(())
    }

    /// Everything posted so far, in order (empty without taking the lock when there is none).
    pub(crate) fn take_mail(&self) -> std::collections::VecDeque<Command> {
        if self.mail.load(Ordering::Acquire) == 0 {
            return Default::default();
        }
        let mut mailbox = self
            .mailbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        mailbox.foreign = 0;
        self.mail.store(0, Ordering::Release);
        std::mem::take(&mut mailbox.commands)
    }

    /// Whether the connection has as many events waiting for the app as it may.
    pub(crate) fn pending_full(&self) -> bool {
        self.queued.load(Ordering::Acquire) >= PENDING_PER_CONN
    }
}

/// Per-connection counters. Relaxed atomics: each is written by one task and read for display,
/// no reader needs them consistent with each other.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) msgs_in: AtomicU64,
    pub(crate) msgs_out: AtomicU64,
    pub(crate) packet_ins: AtomicU64,
    pub(crate) switch_errors: AtomicU64,
    pub(crate) ports_refused: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A reading of a connection's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CountersSnapshot {
    /// Messages received from the switch.
    pub msgs_in: u64,
    /// Messages sent to the switch.
    pub msgs_out: u64,
    /// PACKET_INs received.
    pub packet_ins: u64,
    /// ERRORs the switch sent.
    pub switch_errors: u64,
    /// PORT_STATUS messages for new ports refused because the port table was full.
    pub ports_refused: u64,
    /// Times a session of this datapath was closed for a resync (an app output did not fit
    /// its queue) since the controller started. Unlike the others it is kept per datapath,
    /// not per connection: a resync ends the session, so a per-session count would be gone
    /// with it before anyone could read it.
    pub resyncs: u64,
}

/// A connected, identified switch. Cheap to clone; every clone talks to the same connection.
#[derive(Debug, Clone)]
pub struct SwitchHandle {
    dpid: u64,
    conn: ConnId,
    peer: SocketAddr,
    features: FeaturesReply,
    connected_at: SystemTime,
    tx: mpsc::Sender<Command>,
    shared: Arc<ConnShared>,
    /// The datapath's resync count, shared with its later sessions once registered.
    resyncs: Arc<AtomicU64>,
    /// The certificate the switch proved, over TLS.
    identity: Option<Arc<crate::tls::PeerIdentity>>,
}

impl SwitchHandle {
    pub(crate) fn new(
        conn: ConnId,
        peer: SocketAddr,
        features: FeaturesReply,
        tx: mpsc::Sender<Command>,
        shared: Arc<ConnShared>,
    ) -> Self {
        Self {
            dpid: features.datapath_id,
            conn,
            peer,
            features,
            connected_at: SystemTime::now(),
            tx,
            shared,
            resyncs: Arc::default(),
            identity: None,
        }
    }

    /// The handle of a switch that proved `identity` over TLS.
    pub(crate) fn with_identity(mut self, identity: Option<crate::tls::PeerIdentity>) -> Self {
        self.identity = identity.map(Arc::new);
        self
    }

    /// The certificate the switch proved, over TLS.
    pub fn identity(&self) -> Option<&crate::tls::PeerIdentity> {
        self.identity.as_deref()
    }

    /// The datapath id.
    pub fn dpid(&self) -> u64 {
        self.dpid
    }
    /// The connection this handle talks to.
    pub fn conn(&self) -> ConnId {
        self.conn
    }
    /// The switch's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
    /// The FEATURES_REPLY of its handshake.
    pub fn features(&self) -> &FeaturesReply {
        &self.features
    }
    /// When the handshake finished.
    pub fn connected_at(&self) -> SystemTime {
        self.connected_at
    }

    /// Queues a message, waiting while the switch's queue is full (backpressure).
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        self.tx
            .send(Command::Send(message))
            .await
            .map_err(|_| SendError::Gone)
    }

    /// Queues a message if there is room now.
    pub fn try_send(&self, message: Message) -> Result<(), SendError> {
        self.tx
            .try_send(Command::Send(message))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SendError::Full,
                mpsc::error::TrySendError::Closed(_) => SendError::Gone,
            })
    }

    /// Sends a request and waits for its outcome: the reply (multipart reassembled), `Done` for
    /// a message without reply once a barrier behind it is answered, or the switch's ERROR.
    pub async fn request(&self, message: Message) -> Result<Reply, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Request(message, tx))
            .await
            .map_err(|_| RequestError::Gone)?;
        rx.await.map_err(|_| RequestError::Gone)?
    }

    /// Resolves once the switch has processed every message queued before.
    pub async fn barrier(&self) -> Result<(), RequestError> {
        self.request(Message::BarrierRequest).await.map(|_| ())
    }

    /// The port table (PORT_DESC, kept current by PORT_STATUS).
    pub async fn ports(&self) -> Result<Vec<Port>, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Ports(tx))
            .await
            .map_err(|_| RequestError::Gone)?;
        rx.await.map_err(|_| RequestError::Gone)
    }

    /// The last mark this switch acknowledged with a barrier reply (see `crate::applied`).
    pub fn applied(&self) -> Option<crate::applied::Mark> {
        *self
            .shared
            .applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues an app output (a message, a mark, a FLOW_STATS request) behind the app's earlier
    /// ones for this switch (its mailbox, see [`ConnShared::post`]).
    pub(crate) fn post(&self, command: Command, own: bool) -> Result<(), SendError> {
        self.shared.post(command, own)
    }

    /// What this handle shares with its connection task.
    pub(crate) fn shared(&self) -> &Arc<ConnShared> {
        &self.shared
    }

    /// The connection's traffic counters now.
    pub fn counters(&self) -> CountersSnapshot {
        let c = &self.shared.counters;
        CountersSnapshot {
            msgs_in: c.msgs_in.load(Ordering::Relaxed),
            msgs_out: c.msgs_out.load(Ordering::Relaxed),
            packet_ins: c.packet_ins.load(Ordering::Relaxed),
            switch_errors: c.switch_errors.load(Ordering::Relaxed),
            ports_refused: c.ports_refused.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
        }
    }

    /// Tells the connection to close (it was replaced).
    fn close(&self) {
        self.shared.kill.notify_one();
    }

    /// Whether the connection was told to close for a resync (it sends nothing more).
    pub(crate) fn is_resyncing(&self) -> bool {
        self.shared.is_resyncing()
    }

    /// Tells the connection to close for a resync: it sends nothing more, and the switch's
    /// reconnect starts from scratch. The kill is a stored permit (`notify_one`), so it lands
    /// even while the connection task is busy and not waiting on it.
    pub(crate) fn resync(&self) {
        Counters::add(&self.resyncs, 1);
        self.shared.resync.store(true, Ordering::Release);
        self.shared.kill.notify_one();
    }
}

impl Default for Switches {
    fn default() -> Self {
        Self::new()
    }
}

/// The connected switches by datapath id.
#[derive(Debug, Clone)]
pub struct Switches {
    inner: Arc<DashMap<u64, SwitchHandle>>,
    /// Resync counts by datapath, kept across its sessions: one entry per datapath ever
    /// registered, so bounded by the switches of the deployment.
    resyncs: Arc<DashMap<u64, Arc<AtomicU64>>>,
    /// Bumped whenever a switch joins, leaves or acknowledges a mark: what waiters on applied
    /// revisions wake on (`crate::applied::Progress::wait`).
    progress: Arc<watch::Sender<()>>,
}

impl Switches {
    /// An empty registry.
    pub fn new() -> Self {
        Switches {
            inner: Arc::default(),
            resyncs: Arc::default(),
            progress: Arc::new(watch::channel(()).0),
        }
    }

    /// Wakes on every join, leave and acknowledged mark.
    pub fn progress(&self) -> watch::Receiver<()> {
        self.progress.subscribe()
    }

    /// Records that `shared`'s switch acknowledged `mark`, and wakes the waiters.
    pub(crate) fn applied(&self, shared: &ConnShared, mark: crate::applied::Mark) {
        *shared
            .applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(mark);
        self.progress.send_replace(());
    }

    /// The switch with this datapath id, if connected.
    pub fn get(&self, dpid: u64) -> Option<SwitchHandle> {
        self.inner.get(&dpid).map(|h| h.value().clone())
    }

    /// Whether `conn` is the registered connection of `dpid`. Unlike `get`, clones nothing: it
    /// runs once per packet-in.
    pub(crate) fn is_current(&self, dpid: u64, conn: ConnId) -> bool {
        self.inner.get(&dpid).is_some_and(|h| h.conn == conn)
    }

    /// Every connected switch, by datapath id.
    pub fn list(&self) -> Vec<SwitchHandle> {
        let mut all: Vec<_> = self.inner.iter().map(|h| h.value().clone()).collect();
        all.sort_by_key(|h| h.dpid);
        all
    }

    /// How many switches are connected.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no switch is connected.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Registers an identified switch. A session already registered for the same datapath is
    /// told to close and returned: the newer connection wins, because a switch that reconnects
    /// has given up on the old one (which may linger until its dead-peer timeout).
    pub(crate) fn register(&self, mut handle: SwitchHandle) -> Option<SwitchHandle> {
        handle.resyncs = self.resyncs.entry(handle.dpid).or_default().clone();
        let old = self.inner.insert(handle.dpid, handle);
        if let Some(old) = &old {
            old.close();
        }
        self.progress.send_replace(());
        old
    }

    /// Removes the switch if `conn` is still its registered connection; `false` when a newer
    /// connection has replaced it (then the datapath is still up, and nobody must hear otherwise).
    pub(crate) fn unregister(&self, dpid: u64, conn: ConnId) -> bool {
        let gone = self.inner.remove_if(&dpid, |_, h| h.conn == conn).is_some();
        if gone {
            self.progress.send_replace(());
        }
        gone
    }
}
