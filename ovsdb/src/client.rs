//! The tokio driver: a [`Connection`] task moves bytes between a socket and an
//! [`rpc::Session`](crate::rpc::Session) and fires its timers; [`Monitored`] keeps a
//! [`Replica`] over a connection and transacts against it with optimistic concurrency;
//! [`connect_with_backoff`] and [`listen`] give the active (`tcp:`/`unix:` target) and passive
//! (hosts dial in) directions.
//!
//! A connection never reconnects by itself: whoever owns it decides (active targets redial
//! with [`Backoff`] and resync with [`Monitored::start`], passive hosts dial in again).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::idl::{Replica, RowChange};
use crate::ops::{parse_transact_result, Operation, OperationResult};
use crate::rpc::{Config, Event, MonitorRequests, Request, Session};
use crate::schema::DatabaseSchema;

/// Where an OVSDB server is. No parser here on purpose: the one grammar of targets that users
/// write is `topology::OvsdbTarget`, which the controller turns into this.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `tcp:HOST:PORT`
    Tcp(String),
    /// `unix:PATH`
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(a) => write!(f, "tcp:{a}"),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A notification from the server (`update`, `update2`, `update3`, `locked`, `stolen`).
#[derive(Debug, Clone)]
pub struct Notification {
    /// The method.
    pub method: String,
    /// Its params.
    pub params: Json,
}

/// The receiving end of a connection's notifications; closed when the connection ends.
pub type Notifications = mpsc::Receiver<Notification>;

struct Call {
    req: Request,
    reply: oneshot::Sender<Result<Json>>,
    /// Told the request id, for callers that may cancel it.
    id: Option<oneshot::Sender<u64>>,
}

enum Msg {
    Call(Call),
    Cancel(u64),
    SetMaxMessage(usize),
}

/// A handle on a running connection (cheap to clone). Dropping every handle closes it.
#[derive(Clone, Debug)]
pub struct Connection {
    calls: mpsc::Sender<Msg>,
    closed: watch::Receiver<Option<Arc<str>>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Call(c) => f.debug_struct("Call").field("req", &c.req).finish(),
            Msg::Cancel(id) => f.debug_tuple("Cancel").field(id).finish(),
            Msg::SetMaxMessage(m) => f.debug_tuple("SetMaxMessage").field(m).finish(),
        }
    }
}

impl Connection {
    /// Dials `target`.
    pub async fn connect(target: &Target, config: Config) -> Result<(Connection, Notifications)> {
        match target {
            Target::Tcp(addr) => {
                let s = tokio::net::TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                Ok(Self::spawn(s, config))
            }
            Target::Unix(path) => {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok(Self::spawn(s, config))
            }
        }
    }

    /// Runs a session over an established stream on a new task.
    pub fn spawn<S>(stream: S, config: Config) -> (Connection, Notifications)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (calls_tx, calls_rx) = mpsc::channel(CALL_QUEUE);
        let (notif_tx, notif_rx) = mpsc::channel(NOTIFICATION_QUEUE);
        let (closed_tx, closed_rx) = watch::channel(None);
        tokio::spawn(async move {
            let why = drive(stream, config, calls_rx, notif_tx).await;
            tracing::debug!(error = %why, "ovsdb connection ended");
            let _ = closed_tx.send(Some(why.to_string().into()));
        });
        (
            Connection {
                calls: calls_tx,
                closed: closed_rx,
            },
            notif_rx,
        )
    }

    /// Sends a request and waits for its result.
    pub async fn call(&self, req: Request) -> Result<Json> {
        let (tx, rx) = oneshot::channel();
        self.calls
            .send(Msg::Call(Call {
                req,
                reply: tx,
                id: None,
            }))
            .await
            .map_err(|_| Error::Disconnected)?;
        rx.await.map_err(|_| Error::Disconnected)?
    }

    /// Sends a request; if `cancel` completes first, sends `cancel` for it (RFC 7047 §4.1.4)
    /// and returns [`Error::Cancelled`].
    pub async fn call_cancellable(
        &self,
        req: Request,
        cancel: impl std::future::Future<Output = ()>,
    ) -> Result<Json> {
        let (tx, mut rx) = oneshot::channel();
        let (id_tx, id_rx) = oneshot::channel();
        self.calls
            .send(Msg::Call(Call {
                req,
                reply: tx,
                id: Some(id_tx),
            }))
            .await
            .map_err(|_| Error::Disconnected)?;
        let id = id_rx.await.map_err(|_| Error::Disconnected)?;
        tokio::pin!(cancel);
        tokio::select! {
            r = &mut rx => return r.map_err(|_| Error::Disconnected)?,
            _ = &mut cancel => {
                self.calls.send(Msg::Cancel(id)).await.map_err(|_| Error::Disconnected)?;
            }
        }
        rx.await.map_err(|_| Error::Disconnected)?
    }

    /// Changes the cap on one received message: a passive peer starts with
    /// [`UNIDENTIFIED_MAX_MESSAGE`](crate::framing::UNIDENTIFIED_MAX_MESSAGE) and gets more
    /// once it is known. Applies to every message read after this call.
    pub async fn set_max_message(&self, max: usize) -> Result<()> {
        self.calls
            .send(Msg::SetMaxMessage(max))
            .await
            .map_err(|_| Error::Disconnected)
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    /// Waits until the connection ends; returns why.
    pub async fn closed(&self) -> Arc<str> {
        let mut rx = self.closed.clone();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        };
        why.unwrap_or_else(|| "closed".into())
    }

    /// Waits until the connection ends without keeping it open: the returned future holds
    /// only the close signal, not a handle that would keep the connection task alive.
    pub fn closed_weak(self) -> impl std::future::Future<Output = ()> {
        let mut rx = self.closed;
        async move {
            let _ = rx.wait_for(Option::is_some).await;
        }
    }

    /// `list_dbs`
    pub async fn list_dbs(&self) -> Result<Vec<String>> {
        let r = self.call(Request::list_dbs()).await?;
        serde_json::from_value(r.clone())
            .map_err(|_| Error::InvalidMessage(format!("list_dbs {r}")))
    }

    /// `get_schema`, parsed.
    pub async fn get_schema(&self, db: &str) -> Result<DatabaseSchema> {
        DatabaseSchema::from_json(&self.call(Request::get_schema(db)).await?)
    }

    /// `transact`: the results, or the first failed operation as a typed error.
    pub async fn transact(&self, db: &str, ops: &[Operation]) -> Result<Vec<OperationResult>> {
        let r = self.call(Request::transact(db, ops)).await?;
        parse_transact_result(ops, &r)
    }

    /// `echo`: returns what the server echoed.
    pub async fn echo(&self, params: Json) -> Result<Json> {
        self.call(Request::echo(params)).await
    }

    /// `lock`: whether the lock was granted at once (else a `locked` notification follows).
    pub async fn lock(&self, lock: &str) -> Result<bool> {
        locked(self.call(Request::lock(lock)).await?)
    }

    /// `steal`: always granted.
    pub async fn steal(&self, lock: &str) -> Result<bool> {
        locked(self.call(Request::steal(lock)).await?)
    }

    /// `unlock`
    pub async fn unlock(&self, lock: &str) -> Result<()> {
        self.call(Request::unlock(lock)).await.map(|_| ())
    }
}

fn locked(r: Json) -> Result<bool> {
    r.get("locked")
        .and_then(Json::as_bool)
        .ok_or_else(|| Error::InvalidMessage(format!("lock reply {r}")))
}

/// Requests (and cancels) queued towards one connection task: a caller beyond this waits.
pub const CALL_QUEUE: usize = 64;

/// Notifications received and not yet taken by the owner of [`Notifications`]: beyond this
/// the connection stops reading from the socket (backpressure to the server) until the owner
/// catches up. Whoever holds a [`Notifications`] must read it or drop it.
pub const NOTIFICATION_QUEUE: usize = 64;

/// Bytes queued to the socket above which the connection takes no new requests until the peer
/// has read some.
pub const HIGH_WATER: usize = 256 * 1024;

/// Bytes queued to the socket above which the connection reads nothing more either. Reading
/// goes on between [`HIGH_WATER`] and this because ovsdb-server reads no request while it has
/// output we have not taken: a connection that stopped reading as soon as its own big
/// transaction filled the socket, while the server had updates for it, waited on the server
/// waiting on it until the keepalive declared the server dead (BENCHMARKS, Scale). What
/// reading adds to the queue (answers to the server's echoes) stops here.
pub const READ_WATER: usize = 4 * HIGH_WATER;

/// How long a closing connection may take to write what it queued last.
const FLUSH_ON_CLOSE: Duration = Duration::from_millis(100);

/// The connection task: the only place that touches the socket. Every wait, writes included,
/// is one arm of one `select!`, so a peer that stops reading cannot stop the timers: its
/// requests time out and, once it is silent too, the echo keepalive declares it dead. The
/// timers come last in that `select!`: input already readable is taken first, and they stand
/// still while the owner of the notifications is behind (we then read nothing, by choice).
async fn drive<S>(
    stream: S,
    config: Config,
    mut calls: mpsc::Receiver<Msg>,
    notifications: mpsc::Sender<Notification>,
) -> Error
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut session = Session::new(config, Instant::now());
    let mut waiters: HashMap<u64, oneshot::Sender<Result<Json>>> = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes to write, oldest first; `written` of them are gone already.
    let mut out: Vec<u8> = Vec::new();
    let mut written = 0;
    // A notification the queue had no room for; the session's later events wait behind it,
    // so replies keep their order after the updates the server sent before them.
    let mut blocked: Option<Notification> = None;
    // Whether a due timer has already let the runtime's I/O driver run once (see the timer arm).
    let mut rechecked = false;
    let end = loop {
        while let Some(bytes) = session.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        if blocked.is_none() {
            while let Some(ev) = session.poll_event() {
                match ev {
                    Event::Reply { id, result } => {
                        if let Some(w) = waiters.remove(&id) {
                            let _ = w.send(result);
                        }
                    }
                    Event::Notification { method, params } => {
                        match notifications.try_send(Notification { method, params }) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(n)) => {
                                blocked = Some(n);
                                break;
                            }
                            // Nobody listens: nothing to deliver.
                            Err(mpsc::error::TrySendError::Closed(_)) => {}
                        }
                    }
                }
            }
        }
        let room = out.len() - written < HIGH_WATER;
        let read_room = out.len() - written < READ_WATER;
        // Not reading because our own consumer is behind: the peer is not to blame, and its
        // answers may be waiting in the socket, so its clocks stand still (`hold_input`).
        session.hold_input(blocked.is_some(), Instant::now());
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        // Biased, timers last: a task that runs late (hundreds of sessions on two busy cores)
        // with a reply readable and a deadline past must read the reply first, or a peer that
        // answered in time is taken for one that did not (an unbiased `select!` picked the
        // timer half the time: spurious request timeouts, "peer stopped answering echo").
        tokio::select! {
            biased;
            r = wr.write(&out[written..]), if written < out.len() => match r {
                Ok(0) => break Error::Disconnected,
                Ok(n) => {
                    written += n;
                    if written == out.len() {
                        out.clear();
                        written = 0;
                    } else if written > HIGH_WATER {
                        out.drain(..written);
                        written = 0;
                    }
                }
                Err(e) => break Error::Io(e),
            },
            n = rd.read(&mut buf), if read_room && blocked.is_none() => match n {
                Ok(0) => break Error::Disconnected,
                Ok(n) => {
                    if let Err(e) = session.handle_input(&buf[..n], Instant::now()) {
                        break e;
                    }
                }
                Err(e) => break Error::Io(e),
            },
            permit = notifications.reserve(), if blocked.is_some() => {
                // An `Err` means the owner dropped its end: nothing to deliver.
                if let (Ok(p), Some(n)) = (permit, blocked.take()) {
                    p.send(n);
                }
            }
            call = calls.recv(), if room => match call {
                // Every handle dropped: nobody can use this connection any more.
                None => break Error::Disconnected,
                Some(Msg::Call(Call { req, reply, id: id_tx })) => {
                    let id = session.send_request(req, Instant::now());
                    waiters.insert(id, reply);
                    if let Some(t) = id_tx {
                        let _ = t.send(id);
                    }
                }
                Some(Msg::Cancel(id)) => session.cancel(id),
                Some(Msg::SetMaxMessage(max)) => session.set_max_message(max),
            },
            _ = sleep_until(deadline) => {
                if rechecked {
                    rechecked = false;
                    if let Err(e) = session.handle_timeout(Instant::now()) {
                        break e;
                    }
                } else {
                    // Input may have arrived that the runtime does not know of yet: its I/O
                    // driver reports readiness in batches (1 024 events a turn), so with
                    // hundreds of busy sockets a socket holding the answer can still look idle
                    // when the timer fires. One yield lets the driver run again (tokio wakes a
                    // yielded task only after a driver turn); the biased `select!` then reads
                    // that input before the timer is looked at again.
                    rechecked = true;
                    tokio::task::yield_now().await;
                }
            }
        }
    };
    // Replies already parsed still reach their callers.
    while let Some(ev) = session.poll_event() {
        if let Event::Reply { id, result } = ev {
            if let Some(w) = waiters.remove(&id) {
                let _ = w.send(result);
            }
        }
    }
    for (_, w) in waiters.drain() {
        let _ = w.send(Err(match &end {
            Error::PeerDead => Error::PeerDead,
            _ => Error::Disconnected,
        }));
    }
    // Queued requests fail now rather than when their callers give up.
    calls.close();
    while calls.try_recv().is_ok() {}
    // A peer that does not read must not hold the task: flush briefly, then let go.
    let _ = tokio::time::timeout(FLUSH_ON_CLOSE, async {
        let _ = wr.write_all(&out[written..]).await;
        let _ = wr.shutdown().await;
    })
    .await;
    end
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// How long a session must have been up before its end counts as the end of a healthy one
/// (the redial delay starts from the minimum again).
pub const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// Exponential backoff between reconnect attempts, sans-IO: time is an argument.
///
/// A TCP connect alone proves nothing (a host with a broken schema, or one that drops every
/// session mid-transaction, accepts every connect): the delay goes back to the minimum only
/// when a session that [`Backoff::session_up`] announced has lasted [`HEALTHY_AFTER`] (or
/// [`Backoff::with_healthy_after`]) by the time the next delay is asked for.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    healthy_after: Duration,
    /// When the current session came up, if one is up.
    up_since: Option<Instant>,
}

impl Backoff {
    /// Starts at `min`, doubles up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
            healthy_after: HEALTHY_AFTER,
            up_since: None,
        }
    }

    /// How long a session must last to reset the delay.
    pub fn with_healthy_after(mut self, healthy_after: Duration) -> Self {
        self.healthy_after = healthy_after;
        self
    }

    /// A session is up (connected and working: for OVSDB, its monitor started) since `now`.
    pub fn session_up(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    /// The delay before the next attempt, at `now`. Ends the session announced by
    /// [`Backoff::session_up`], if any: one that lasted long enough resets the delay first.
    pub fn next_delay(&mut self, now: Instant) -> Duration {
        if let Some(up) = self.up_since.take() {
            if now.saturating_duration_since(up) >= self.healthy_after {
                self.next = self.min;
            }
        }
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to the minimum at once (an accept that worked: there is no session to judge).
    pub fn reset(&mut self) {
        self.next = self.min;
        self.up_since = None;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(8))
    }
}

/// Dials `target` until it answers, sleeping per `backoff` between attempts. A connect that
/// works does not reset `backoff`: tell it [`Backoff::session_up`] once the session works.
pub async fn connect_with_backoff(
    target: &Target,
    config: &Config,
    backoff: &mut Backoff,
) -> (Connection, Notifications) {
    loop {
        match Connection::connect(target, config.clone()).await {
            Ok(c) => return c,
            Err(e) => {
                let d = backoff.next_delay(Instant::now());
                tracing::debug!(%target, error = %e, delay = ?d, "ovsdb connect failed");
                tokio::time::sleep(d).await;
            }
        }
    }
}

/// Accepts hosts that dial in (`ovs-vsctl set-manager tcp:CTRL:PORT`) until `shutdown` turns
/// true; each becomes a [`Connection`] sent on `accepted`. At most `max_connections` are open
/// at once (accepting pauses meanwhile, mini-redis style); accept errors back off.
pub async fn listen(
    listener: tokio::net::TcpListener,
    config: Config,
    max_connections: usize,
    accepted: mpsc::Sender<(Connection, Notifications, SocketAddr)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stopped(&mut shutdown) => return,
        };
        tokio::select! {
            r = listener.accept() => match r {
                Ok((s, peer)) => {
                    backoff.reset();
                    let _ = s.set_nodelay(true);
                    let (c, n) = Connection::spawn(s, config.clone());
                    // The permit goes back when the connection ends.
                    let watch = c.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        watch.closed_weak().await;
                    });
                    if accepted.send((c, n, peer)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let d = backoff.next_delay(Instant::now());
                    tracing::warn!(error = %e, "ovsdb accept failed");
                    tokio::time::sleep(d).await;
                }
            },
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// Resolves once `shutdown` is true (or its sender is gone). Unlike `wait_for`, its output
/// holds no borrow of the channel, so `select!` arms using it keep the future `Send`.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// How updates arrive for a monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMethod {
    /// `monitor` / `update`
    Monitor,
    /// `monitor_cond` / `update2`
    MonitorCond,
    /// `monitor_cond_since` / `update3`
    MonitorCondSince,
}

/// A replica of monitored tables over one connection.
#[derive(Debug)]
pub struct Monitored {
    conn: Connection,
    notifications: Notifications,
    replica: Replica,
    db: String,
    monitor_id: Json,
    method: MonitorMethod,
    /// Non-update notifications seen while waiting for updates (`locked`, `stolen`).
    others: Vec<Notification>,
    /// Changes applied to the replica while a transaction or a sync awaited its reply, not
    /// yet returned by [`Monitored::changes`] or [`Monitored::poll_changes`]. Without them, an
    /// update of another client that arrived during our transaction was in the replica but
    /// woke nobody: a loop that plans from the replica and then waits for `changes` slept on
    /// with that change unplanned (the emulated vswitchd left a tunnel the controller had just
    /// created without an ofport until the test's minute ran out).
    unseen: Vec<RowChange>,
}

/// Applies one notification to `replica` if it is an update of our monitor; keeps any other.
fn apply(
    replica: &mut Replica,
    monitor_id: &Json,
    others: &mut Vec<Notification>,
    n: Notification,
) -> Result<Vec<RowChange>> {
    let ours = n.params.get(0) == Some(monitor_id);
    match (n.method.as_str(), ours) {
        ("update", true) => replica.apply_update(n.params.get(1).unwrap_or(&Json::Null)),
        ("update2", true) => replica.apply_update2(n.params.get(1).unwrap_or(&Json::Null)),
        ("update3", true) => replica.apply_update3(&n.params),
        _ => {
            others.push(n);
            Ok(vec![])
        }
    }
}

/// How many times [`Monitored::transact`] rebuilds a transaction refused as stale.
pub const MAX_STALE_RETRIES: usize = 8;

impl Monitored {
    /// Fetches the schema, checks `requests` against it, and starts the most capable monitor
    /// the server has (`monitor_cond_since`, else `monitor_cond`, else `monitor`). With a
    /// `previous` replica of the same database (after a reconnect), `monitor_cond_since` asks
    /// only for what changed since its last transaction; otherwise the replica is loaded in
    /// full.
    pub async fn start(
        conn: Connection,
        notifications: Notifications,
        db: &str,
        requests: &MonitorRequests,
        previous: Option<Replica>,
    ) -> Result<Monitored> {
        let schema = Arc::new(conn.get_schema(db).await?);
        for (t, (cols, _)) in &requests.tables {
            for c in cols {
                schema.column(t, c)?;
            }
            schema.table(t)?;
        }
        let mut replica = match previous {
            Some(r) if *r.schema() == schema => r,
            _ => Replica::new(schema),
        };
        for (t, (cols, _)) in &requests.tables {
            replica.set_monitored_columns(t, cols);
        }
        let monitor_id = json!(db);
        let since = conn
            .call(Request::monitor_cond_since(
                db,
                &monitor_id,
                requests,
                replica.last_txn_id(),
            ))
            .await;
        let method = match since {
            Ok(r) => {
                let found = r.get(0).and_then(Json::as_bool).unwrap_or(false);
                tracing::debug!(found, last = ?r.get(1), "monitor_cond_since");
                if !found {
                    replica.clear();
                }
                replica.apply_update2(r.get(2).unwrap_or(&json!({})))?;
                replica.set_last_txn_id(r.get(1).and_then(Json::as_str).map(str::to_string));
                MonitorMethod::MonitorCondSince
            }
            Err(Error::Rpc { .. }) => {
                replica.clear();
                match conn
                    .call(Request::monitor_cond(db, &monitor_id, requests))
                    .await
                {
                    Ok(r) => {
                        replica.apply_update2(&r)?;
                        MonitorMethod::MonitorCond
                    }
                    Err(Error::Rpc { .. }) => {
                        let r = conn
                            .call(Request::monitor(db, &monitor_id, requests))
                            .await?;
                        replica.apply_update(&r)?;
                        MonitorMethod::Monitor
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(Monitored {
            conn,
            notifications,
            replica,
            db: db.to_string(),
            monitor_id,
            method,
            others: vec![],
            unseen: vec![],
        })
    }

    /// The replica.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// Gives the replica back (to resume from after a reconnect).
    pub fn into_replica(self) -> Replica {
        self.replica
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Which monitor method is in use.
    pub fn method(&self) -> MonitorMethod {
        self.method
    }

    /// Notifications other than updates received so far (`locked`, `stolen`).
    pub fn take_other_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.others)
    }

    fn apply(&mut self, n: Notification) -> Result<Vec<RowChange>> {
        apply(&mut self.replica, &self.monitor_id, &mut self.others, n)
    }

    /// Waits for the next update and applies it; the changes applied during a transaction or
    /// a sync since the last call, if any, at once. [`Error::Disconnected`] once the
    /// connection is gone.
    pub async fn changes(&mut self) -> Result<Vec<RowChange>> {
        if self.unseen.is_empty() {
            self.next_update().await?;
        }
        Ok(std::mem::take(&mut self.unseen))
    }

    /// Waits for the next update that changes the replica and applies it, keeping its changes
    /// with the unseen ones.
    async fn next_update(&mut self) -> Result<()> {
        loop {
            let n = self.notifications.recv().await.ok_or(Error::Disconnected)?;
            let c = self.apply(n)?;
            if !c.is_empty() {
                self.unseen.extend(c);
                return Ok(());
            }
        }
    }

    /// Applies every update already received, without waiting; returns those changes and the
    /// ones applied during a transaction or a sync since the last call.
    pub fn poll_changes(&mut self) -> Result<Vec<RowChange>> {
        self.absorb()?;
        Ok(std::mem::take(&mut self.unseen))
    }

    /// Applies every update already received, keeping its changes for `changes` and
    /// `poll_changes`.
    fn absorb(&mut self) -> Result<()> {
        while let Ok(n) = self.notifications.try_recv() {
            let c = self.apply(n)?;
            self.unseen.extend(c);
        }
        Ok(())
    }

    /// A round trip (`echo`) that applies every update received meanwhile: when it returns,
    /// the replica holds every transaction the server had committed before it read the echo
    /// (it sends a session's pending updates before answering its next request), e.g. one
    /// another client (`ovs-vsctl`) saw committed before this call.
    pub async fn sync(&mut self) -> Result<()> {
        let result = {
            let reply = self.conn.echo(json!(["sync"]));
            tokio::pin!(reply);
            loop {
                tokio::select! {
                    biased;
                    r = &mut reply => break r,
                    n = self.notifications.recv() => match n {
                        Some(n) => {
                            let c = apply(&mut self.replica, &self.monitor_id, &mut self.others, n)?;
                            self.unseen.extend(c);
                        }
                        None => break (&mut reply).await,
                    },
                }
            }
        };
        result?;
        self.absorb()?;
        Ok(())
    }

    /// Builds a transaction from the replica with `build` (return `None` when there is
    /// nothing to do), checks it against the schema, and sends it. When the server refuses it
    /// as [`Error::Stale`] (a `wait` built by [`crate::Txn::verify`] failed), waits for the
    /// update that made the replica stale and rebuilds, up to [`MAX_STALE_RETRIES`] times.
    /// Updates the transaction caused are applied before returning (ovsdb-server sends them
    /// before the reply).
    pub async fn transact<F>(&mut self, mut build: F) -> Result<Option<Vec<OperationResult>>>
    where
        F: FnMut(&Replica) -> Result<Option<Vec<Operation>>>,
    {
        for _ in 0..MAX_STALE_RETRIES {
            self.absorb()?;
            let Some(ops) = build(&self.replica)? else {
                return Ok(None);
            };
            for op in &ops {
                self.replica.schema().check_operation(op)?;
            }
            // Updates keep being applied while the reply is awaited: the notification queue is
            // bounded, and a server with more updates to send before the reply than it holds
            // would otherwise wait on us while we wait on it.
            let result = {
                let reply = self.conn.transact(&self.db, &ops);
                tokio::pin!(reply);
                loop {
                    tokio::select! {
                        biased;
                        r = &mut reply => break r,
                        n = self.notifications.recv() => match n {
                            Some(n) => {
                                let c = apply(&mut self.replica, &self.monitor_id, &mut self.others, n)?;
                                self.unseen.extend(c);
                            }
                            None => break (&mut reply).await,
                        },
                    }
                }
            };
            match result {
                Err(Error::Stale) => {
                    tracing::debug!(?ops, "stale");
                    // The update that invalidated our read is on its way (or here already);
                    // a new one, not the unseen changes kept for the caller.
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.next_update()).await;
                }
                r => {
                    self.absorb()?;
                    return r.map(Some);
                }
            }
        }
        Err(Error::Stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_resets_only_after_a_healthy_session() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(8000));
        let mut now = Instant::now();
        // Sessions that fail soon after connecting: the delay keeps growing.
        let mut delays = vec![];
        for _ in 0..8 {
            b.session_up(now);
            now += ms(9_000);
            let d = b.next_delay(now);
            delays.push(d.as_millis());
            now += d;
        }
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 6400, 8000]);
        // Failed connects (no session) grow it too.
        assert_eq!(b.next_delay(now), ms(8000));
        // A session that lasted: back to the minimum, then growing again.
        b.session_up(now);
        now += HEALTHY_AFTER;
        assert_eq!(b.next_delay(now), ms(100));
        assert_eq!(b.next_delay(now), ms(200));
        // A session only counts once.
        b.session_up(now);
        now += HEALTHY_AFTER;
        assert_eq!(b.next_delay(now), ms(100));
        assert_eq!(b.next_delay(now + HEALTHY_AFTER), ms(200));
    }

    /// A scripted server: answers each request by method from `answers` (result or error).
    async fn fake_server(
        stream: tokio::io::DuplexStream,
        answers: Vec<(&'static str, Json, Json)>,
    ) {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut dec = crate::framing::Decoder::new(1 << 20);
        let mut buf = [0u8; 4096];
        loop {
            let Ok(n) = rd.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                return;
            }
            dec.feed(&buf[..n]);
            while let Ok(Some(msg)) = dec.decode() {
                let method = msg["method"].as_str().unwrap_or_default();
                let Some((_, result, error)) = answers.iter().find(|(m, _, _)| *m == method) else {
                    continue;
                };
                let reply = json!({"id": msg["id"], "result": result, "error": error});
                let _ = wr.write_all(reply.to_string().as_bytes()).await;
            }
        }
    }

    #[tokio::test]
    async fn monitor_falls_back_to_what_the_server_has() {
        let schema = json!({"name": "D", "version": "1", "tables": {"T": {"columns": {"c": {"type": "string"}}}}});
        let row = json!({"T": {"00000000-0000-0000-0000-000000000001": {"initial": {"c": "x"}}}});
        let old_row = json!({"T": {"00000000-0000-0000-0000-000000000001": {"new": {"c": "y"}}}});
        let reqs = MonitorRequests::default().table("T", &["c"]);
        let unknown = json!({"error": "unknown method"});
        let cases = [
            (
                vec![
                    ("get_schema", schema.clone(), Json::Null),
                    ("monitor_cond_since", Json::Null, unknown.clone()),
                    ("monitor_cond", row.clone(), Json::Null),
                ],
                MonitorMethod::MonitorCond,
                "x",
            ),
            (
                vec![
                    ("get_schema", schema.clone(), Json::Null),
                    ("monitor_cond_since", Json::Null, unknown.clone()),
                    ("monitor_cond", Json::Null, unknown.clone()),
                    ("monitor", old_row.clone(), Json::Null),
                ],
                MonitorMethod::Monitor,
                "y",
            ),
        ];
        for (answers, method, value) in cases {
            let (a, b) = tokio::io::duplex(1 << 16);
            tokio::spawn(fake_server(b, answers));
            let (c, n) = Connection::spawn(a, Config::default());
            let m = Monitored::start(c, n, "D", &reqs, None).await.unwrap();
            assert_eq!(m.method(), method);
            assert_eq!(
                m.replica().rows("T").next().unwrap().1["c"],
                crate::Value::from(value)
            );
        }
    }

    /// A peer under the unidentified cap cannot send a big message; once the cap is lifted it
    /// can.
    #[tokio::test]
    async fn the_message_cap_can_be_lifted() {
        let schema = json!({"name": "D", "version": "1", "tables": {
            "T": {"columns": {"c": {"type": "string", "doc": "x".repeat(4096)}}}}});
        for lift in [false, true] {
            let (a, b) = tokio::io::duplex(1 << 16);
            tokio::spawn(fake_server(
                b,
                vec![("get_schema", schema.clone(), Json::Null)],
            ));
            let config = Config {
                max_message: 1024,
                ..Config::default()
            };
            let (c, _n) = Connection::spawn(a, config);
            if lift {
                c.set_max_message(1 << 20).await.unwrap();
            }
            let r = c.get_schema("D").await;
            assert_eq!(r.is_ok(), lift, "{r:?}");
            if !lift {
                assert!(c.closed().await.contains("exceeds 1024 bytes"));
            }
        }
    }

    /// A host that stops reading (here: never reads) cannot hold the connection task in a
    /// write: the keepalive still fires and the session ends within a bounded time.
    #[tokio::test]
    async fn a_peer_that_stops_reading_is_noticed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            // Holds the socket open, reads nothing, says nothing.
            std::future::pending::<()>().await;
        });
        let config = Config {
            echo_interval: Some(Duration::from_millis(200)),
            request_timeout: Duration::from_secs(1),
            ..Config::default()
        };
        let target = Target::Tcp(addr.to_string());
        let (conn, _n) = Connection::connect(&target, config).await.unwrap();
        // More than the socket buffers of both ends hold.
        let big = "x".repeat(32 << 20);
        let call = tokio::spawn({
            let conn = conn.clone();
            async move { conn.echo(json!([big])).await }
        });
        let r = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the call ends though the peer does not read")
            .unwrap();
        assert!(
            matches!(r, Err(Error::PeerDead | Error::Timeout(_))),
            "{r:?}"
        );
        let closed = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
        assert!(closed.expect("the session ends").contains("echo"));
        server.abort();
    }

    /// A server that, like ovsdb-server, reads no request while it has output we have not
    /// taken, and has more to send than the socket holds while our own request does not fit
    /// either: the connection must go on reading above [`HIGH_WATER`], or each waits on the
    /// other until the keepalive declares the server dead.
    #[tokio::test]
    async fn a_big_request_does_not_stop_reading() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(b);
            // Its backlog first: 512 KiB of updates, written in full before it reads anything.
            let update = json!({"id": null, "method": "update3", "params": ["D", "t", {}],
                "pad": "x".repeat(1000)})
            .to_string();
            for _ in 0..512 {
                if wr.write_all(update.as_bytes()).await.is_err() {
                    return;
                }
            }
            let mut dec = crate::framing::Decoder::new(8 << 20);
            let mut buf = [0u8; 64 * 1024];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                dec.feed(&buf[..n]);
                while let Ok(Some(msg)) = dec.decode() {
                    let reply = json!({"id": msg["id"], "result": ["ok"], "error": null});
                    if wr.write_all(reply.to_string().as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        });
        let config = Config {
            echo_interval: Some(Duration::from_millis(500)),
            request_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        let (conn, notifications) = Connection::spawn(a, config);
        // Nobody takes the updates here: they are dropped, not queued.
        drop(notifications);
        let big = "y".repeat(2 * HIGH_WATER);
        let r = tokio::time::timeout(Duration::from_secs(10), conn.echo(json!([big])))
            .await
            .expect("the call ends");
        assert_eq!(r.unwrap(), json!(["ok"]));
    }

    /// More updates before a transaction's reply than the notification queue holds: the
    /// replica takes them while the reply is awaited, so neither side waits on the other.
    #[tokio::test]
    async fn transact_takes_updates_while_it_waits() {
        let schema = json!({"name": "D", "version": "1", "tables": {"T": {"columns": {"c": {"type": "string"}}}}});
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(b);
            let mut dec = crate::framing::Decoder::new(1 << 20);
            let mut buf = [0u8; 4096];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                dec.feed(&buf[..n]);
                while let Ok(Some(msg)) = dec.decode() {
                    let mut out = vec![];
                    let result = match msg["method"].as_str().unwrap_or_default() {
                        "get_schema" => schema.clone(),
                        "monitor_cond_since" => json!([false, "t0", {}]),
                        "transact" => {
                            for i in 0..4 * NOTIFICATION_QUEUE {
                                let uuid = format!("00000000-0000-0000-0000-{i:012}");
                                let n = json!({"id": null, "method": "update3", "params":
                                    ["D", format!("t{i}"), {"T": {uuid: {"insert": {"c": "x"}}}}]});
                                out.extend(n.to_string().into_bytes());
                            }
                            json!([{}])
                        }
                        _ => continue,
                    };
                    out.extend(
                        json!({"id": msg["id"], "result": result, "error": null})
                            .to_string()
                            .into_bytes(),
                    );
                    if wr.write_all(&out).await.is_err() {
                        return;
                    }
                }
            }
        });
        let (c, n) = Connection::spawn(a, Config::default());
        let reqs = MonitorRequests::default().table("T", &["c"]);
        let mut m = Monitored::start(c, n, "D", &reqs, None).await.unwrap();
        let op = Operation::select("T", vec![], None);
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            m.transact(|_| Ok(Some(vec![op.clone()]))),
        )
        .await
        .expect("no deadlock");
        assert!(r.unwrap().is_some());
        assert_eq!(m.replica().rows("T").count(), 4 * NOTIFICATION_QUEUE);
    }

    #[tokio::test]
    async fn garbage_from_the_server_is_a_typed_error() {
        let (a, mut b) = tokio::io::duplex(1024);
        let (conn, _n) = Connection::spawn(a, Config::default());
        let call = tokio::spawn({
            let conn = conn.clone();
            async move { conn.list_dbs().await }
        });
        let mut buf = [0u8; 256];
        let _ = b.read(&mut buf).await.unwrap();
        b.write_all(b"{\"id\": 1, \"result\": [}").await.unwrap();
        assert!(matches!(call.await.unwrap(), Err(Error::Disconnected)));
        assert!(conn.closed().await.contains("malformed JSON"));
    }
}
