//! One host's OVSDB session: connect (actively with backoff, or accept a host that dialed
//! in), keep a replica, reconcile whenever the desired state or the host changes, and publish
//! the host's view.

use std::sync::Arc;
use std::time::Duration;

use ovsdb::client::{connect_with_backoff, Backoff, Connection, Monitored, Notifications, Target};
use ovsdb::{Atom, Error, Operation, Replica};
use tokio::sync::watch;
use topology::OvsdbTarget;
use tracing::Instrument;
use uuid::Uuid;

use super::plan::{desired_tunnels, host_view, monitor_requests, plan};
use super::{DesiredHost, HostView, Shared};

const DB: &str = "Open_vSwitch";

/// Why a session stopped without a connection error.
enum Stop {
    /// The host is no longer desired (or no longer matches this connection).
    HostGone,
    /// Shutdown.
    Shutdown,
}

fn set_view(shared: &Shared, id: Uuid, view: HostView) {
    shared.views.send_if_modified(|v| {
        if v.get(&id) == Some(&view) {
            return false;
        }
        v.insert(id, view);
        true
    });
}

/// What the OVSDB client dials for a plain target of the model's grammar (`ssl:` is dialed
/// here, by [`dial_tls`]).
fn dial_target(t: &OvsdbTarget) -> Option<Target> {
    match t {
        OvsdbTarget::Tcp(a) => Some(Target::Tcp(a.to_string())),
        OvsdbTarget::Unix(p) => Some(Target::Unix(p.clone())),
        OvsdbTarget::Ssl(_) => None,
    }
}

/// How long a host's TLS handshake may take.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Dials `target` until a session is set up, sleeping per `backoff` between attempts.
async fn dial(
    shared: &Shared,
    id: Uuid,
    target: &OvsdbTarget,
    backoff: &mut Backoff,
) -> (Connection, Notifications) {
    match (dial_target(target), target) {
        (Some(t), _) => connect_with_backoff(&t, &shared.config.ovsdb, backoff).await,
        (None, OvsdbTarget::Ssl(addr)) => loop {
            match dial_tls(shared, id, *addr).await {
                Ok(c) => return c,
                Err(e) => {
                    let d = backoff.next_delay(std::time::Instant::now());
                    tracing::warn!(delay = ?d, "refused or could not reach a host over TLS: {e}");
                    tokio::time::sleep(d).await;
                }
            }
        },
        (None, _) => unreachable!("dial_target maps every target but ssl:"),
    }
}

/// One TLS dial of host `id` at `addr`: the handshake (the host's certificate must chain to
/// the CA) and the identity check (it must be the certificate the host record names).
async fn dial_tls(
    shared: &Shared,
    id: Uuid,
    addr: std::net::SocketAddr,
) -> Result<(Connection, Notifications), String> {
    let tls =
        shared.config.tls.as_ref().ok_or(
            "an ssl: target, but the controller runs without --tls-key/--tls-cert/--tls-ca",
        )?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio::time::timeout(TLS_HANDSHAKE, connector.connect(name, tcp))
        .await
        .map_err(|_| format!("TLS handshake not finished within {TLS_HANDSHAKE:?}"))?
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let identity = crate::tls::PeerIdentity::of_peer(stream.get_ref().1.peer_certificates())
        .ok_or("the host sent no certificate")?;
    let expected = shared
        .desired
        .borrow()
        .host(id)
        .map(|h| h.expected_certificate().to_string())
        .ok_or("the host is no longer desired")?;
    if !identity.matches(&expected) {
        crate::tls::refused::count(
            crate::tls::refused::Channel::Ovsdb,
            crate::tls::refused::Reason::Identity,
        );
        return Err(format!(
            "its certificate ({identity}) is not the host's ({expected:?})"
        ));
    }
    tracing::info!(certificate = %identity, "host authenticated by TLS");
    Ok(Connection::spawn(stream, shared.config.ovsdb.clone()))
}

/// Why the connection under a session ended, for the log (`open` if it has not: the session
/// ended for a reason of its own). A session that ends with "disconnected" mostly saw its
/// connection die under it: this says of what (the keepalive, the server's close, I/O). The
/// reason is published just after the notifications close, hence the short wait.
async fn end_reason(conn: &Connection) -> Arc<str> {
    tokio::time::timeout(Duration::from_millis(50), conn.closed())
        .await
        .unwrap_or_else(|_| "open".into())
}

fn set_disconnected(shared: &Shared, id: Uuid) {
    shared.views.send_if_modified(|v| match v.get_mut(&id) {
        Some(view) if view.connected => {
            view.connected = false;
            true
        }
        _ => false,
    });
}

/// Dials `target` for host `id` until shutdown or until the host is no longer desired with
/// this target (the supervisor then aborts this task).
pub(crate) async fn run_active(
    shared: Arc<Shared>,
    id: Uuid,
    target: OvsdbTarget,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    let mut previous: Option<Replica> = None;
    loop {
        let (conn, notifications) = tokio::select! {
            c = dial(&shared, id, &target, &mut backoff) => c,
            _ = ovsdb::client::stopped(&mut shutdown) => return,
        };
        match Monitored::start(
            conn,
            notifications,
            DB,
            &monitor_requests(),
            previous.take(),
        )
        .await
        {
            Ok(mut m) => {
                tracing::info!("connected");
                backoff.session_up(std::time::Instant::now());
                let r = reconcile_loop(&shared, id, false, &mut m, &mut shutdown).await;
                set_disconnected(&shared, id);
                let why = end_reason(m.connection()).await;
                previous = Some(m.into_replica());
                match r {
                    Ok(Stop::Shutdown | Stop::HostGone) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, connection = %why, "session ended; reconnecting")
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "monitor failed"),
        }
        // Grows until a session has been healthy for a while (`Backoff`): a host that
        // accepts and then fails every session is not redialled every 100 ms.
        let delay = backoff.next_delay(std::time::Instant::now());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ovsdb::client::stopped(&mut shutdown) => return,
        }
    }
}

/// The least time between two commits of one host session (see `reconcile_loop`). A change
/// after a quiet spell is committed at once; only bursts wait.
const COMMIT_SPACING: Duration = Duration::from_millis(200);
/// The least time between two steps of a host session's reconcile loop on average (see
/// `reconcile_loop`): a burst of changes coalesces.
const STEP_SPACING: Duration = Duration::from_millis(100);
/// Steps taken back to back after a quiet spell before `STEP_SPACING` applies: a VIF plugged
/// changes the replica two or three times within milliseconds (the row, then its ofport), and
/// spacing the second change by 100 ms put that much between the plug and the VM's first packet.
const STEP_BURST: u32 = 4;

/// A host session's step pace: `STEP_BURST` steps at once after a quiet spell, then one per
/// `STEP_SPACING` (a generic cell-rate check: `due` is when the next step would be on schedule).
#[derive(Debug, Clone, Copy)]
struct StepPace {
    due: tokio::time::Instant,
}

impl StepPace {
    fn new(now: tokio::time::Instant) -> StepPace {
        StepPace { due: now }
    }

    /// A step was taken at `now`.
    fn step(&mut self, now: tokio::time::Instant) {
        self.due = self.due.max(now) + STEP_SPACING;
    }

    /// The earliest time the next step may be taken.
    fn next(&self) -> tokio::time::Instant {
        self.due - STEP_SPACING * (STEP_BURST - 1)
    }
}

/// How long a session whose transaction timed out (outcome unknown) waits before planning
/// again, unless the replica or the desired state changes first.
const OUTCOME_UNKNOWN_RETRY: Duration = Duration::from_secs(2);

/// How often an unidentified passive peer's `system-id` is read again.
const IDENTIFY_POLL: Duration = Duration::from_secs(2);

/// The host's `Open_vSwitch.external_ids:system-id`, read with one small `select` so that a
/// peer is identified before it may send anything big (its cap is
/// [`ovsdb::framing::UNIDENTIFIED_MAX_MESSAGE`] until then; a monitor's initial reply would
/// not fit).
async fn read_system_id(conn: &Connection) -> Result<Option<String>, Error> {
    let ops = [Operation::select(
        "Open_vSwitch",
        vec![],
        Some(vec!["external_ids".into()]),
    )];
    let results = conn.transact(DB, &ops).await?;
    Ok(results
        .first()
        .and_then(|r| r.rows.as_ref())
        .and_then(|rows| rows.first())
        .and_then(|row| row.get("external_ids"))
        .and_then(|ids| ids.map_get("system-id"))
        .and_then(Atom::as_str)
        .map(str::to_string))
}

fn match_passive(shared: &Shared, sid: &str) -> Option<Uuid> {
    let state = shared.desired.borrow().clone();
    state
        .hosts
        .iter()
        .find(|h| h.ovsdb.is_none() && (h.id.to_string() == sid || h.name == sid))
        .map(|h| h.id)
}

/// The right of one passive session to speak for a host: at most one per host id. Dropping it
/// (the session ended, or its task was aborted) marks the host disconnected, under the same
/// lock that hands the host to the next session, so a session that ends never overwrites the
/// view of the one that replaced it.
///
/// The older session wins: a second one is refused while the first is alive. A newer-wins
/// rule would let two live hosts sharing a system-id (a cloned image, a copied setting) take
/// the host from each other on every redial, each reconcile undoing the other's; with
/// older-wins the host stays with one of them and the other is refused in the log. The cost:
/// a host whose old session is half-open (it rebooted without a FIN) waits for that session's
/// echo keepalive to fail (twice the echo interval) before its new one is accepted.
struct Claim {
    shared: Arc<Shared>,
    id: Uuid,
    token: u64,
}

impl Claim {
    /// The host, unless another session has it.
    fn take(shared: &Arc<Shared>, id: Uuid) -> Option<Claim> {
        let token = shared
            .next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut owners = lock(&shared.passive_owners);
        if owners.contains_key(&id) {
            return None;
        }
        owners.insert(id, token);
        Some(Claim {
            shared: shared.clone(),
            id,
            token,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut owners = lock(&self.shared.passive_owners);
        if owners.get(&self.id) == Some(&self.token) {
            owners.remove(&self.id);
            set_disconnected(&self.shared, self.id);
        }
    }
}

/// The owners map even if a thread panicked holding it: every update to it is one insert or
/// remove, so it is never half-written.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves a host that dialed in: identifies it by `system-id` (read again every
/// [`IDENTIFY_POLL`] and whenever the desired state changes; dropped if it has not named a
/// desired passive host within `identify_deadline`), takes the host's [`Claim`] (refused if
/// another session has it), lifts its message cap, then monitors and reconciles it until the
/// connection drops or the host is no longer desired as a passive host (the host redials by
/// itself and is identified afresh).
pub(crate) async fn run_passive(
    shared: Arc<Shared>,
    conn: Connection,
    notifications: Notifications,
    identity: Option<crate::tls::PeerIdentity>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut desired = shared.desired.subscribe();
    let deadline = tokio::time::Instant::now() + shared.config.identify_deadline;
    let id = loop {
        let sid = match read_system_id(&conn).await {
            Ok(sid) => sid,
            Err(e) => {
                tracing::warn!(error = %e, "passive host: reading its system-id failed");
                return;
            }
        };
        if let Some(id) = sid.as_deref().and_then(|sid| match_passive(&shared, sid)) {
            // Over TLS the system-id is only a claim: the certificate must be the host's.
            if let Some(identity) = &identity {
                let expected = shared
                    .desired
                    .borrow()
                    .host(id)
                    .map(|h| h.expected_certificate().to_string())
                    .unwrap_or_default();
                if !identity.matches(&expected) {
                    crate::tls::refused::count(
                        crate::tls::refused::Channel::Ovsdb,
                        crate::tls::refused::Reason::Identity,
                    );
                    tracing::warn!(
                        system_id = ?sid,
                        certificate = %identity,
                        "refused a passive host: its certificate is not host {id}'s ({expected:?})"
                    );
                    return;
                }
            }
            break id;
        }
        tokio::select! {
            r = desired.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(IDENTIFY_POLL) => {}
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(system_id = ?sid, "passive host not identified in time; dropped");
                return;
            }
            _ = ovsdb::client::stopped(&mut shutdown) => return,
        }
    };
    let span = tracing::info_span!("ovsdb-host", host = %id, mode = "passive");
    async move {
        let Some(_claim) = Claim::take(&shared, id) else {
            tracing::warn!("another session has this host (same system-id?): refused");
            return;
        };
        if conn
            .set_max_message(shared.config.ovsdb.max_message)
            .await
            .is_err()
        {
            return;
        }
        tracing::info!("host identified");
        let mut m = match Monitored::start(conn, notifications, DB, &monitor_requests(), None).await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "passive host: monitor failed");
                return;
            }
        };
        if let Err(e) = reconcile_loop(&shared, id, true, &mut m, &mut shutdown).await {
            let why = end_reason(m.connection()).await;
            tracing::warn!(error = %e, connection = %why, "passive session ended");
        }
        // Dropping the claim marks the host disconnected.
    }
    .instrument(span)
    .await
}

/// Reconciles host `id` over `m` whenever the desired state or the replica changes, until the
/// host is no longer desired (or, for a `passive` session, is now reached actively).
async fn reconcile_loop(
    shared: &Shared,
    id: Uuid,
    passive: bool,
    m: &mut Monitored,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Stop, Error> {
    let mut desired = shared.desired.subscribe();
    let mut sync = shared.sync.subscribe();
    let cfg = &shared.config;
    let mut reconciled = None;
    let mut synced = 0;
    // When this session last committed: a commit within `COMMIT_SPACING` of it waits out the
    // rest, so a burst of desired-state changes (hosts joining one by one) becomes a few
    // transactions per host, not one per change. Each commit makes vswitchd reconfigure all its
    // ports: a mesh of N hosts registered one by one cost N² transactions, O(N³) vswitchd work.
    let mut last_commit: Option<tokio::time::Instant> = None;
    let mut pace = StepPace::new(tokio::time::Instant::now());
    loop {
        // A sync asked for: one round trip, so the view built below holds what the host had
        // committed when it was asked.
        let wanted = *sync.borrow_and_update();
        if wanted > synced {
            m.sync().await?;
            synced = wanted;
        }
        let state = desired.borrow_and_update().clone();
        let Some(host): Option<&DesiredHost> = state.host(id) else {
            return Ok(Stop::HostGone);
        };
        if passive && host.ovsdb.is_some() {
            return Ok(Stop::HostGone);
        }
        let hold = last_commit
            .map(|t| t + COMMIT_SPACING)
            .filter(|until| *until > tokio::time::Instant::now());
        let mut retry = None;
        let result = match hold {
            // Planned once the spacing is over (the view below is published meanwhile).
            Some(until) => {
                retry = Some(until);
                Ok(Some(()))
            }
            None => {
                let tunnels = desired_tunnels(&state, id, cfg.set_local_ip);
                m.transact(|r| Ok(plan(r, host, &tunnels, cfg)))
                    .await
                    .map(|done| match done {
                        Some(_) => {
                            last_commit = Some(tokio::time::Instant::now());
                            tracing::info!("host reconciled");
                            reconciled = Some(state.revision);
                            Some(())
                        }
                        None => {
                            reconciled = Some(state.revision);
                            None
                        }
                    })
            }
        };
        match result {
            Ok(_) => {}
            // No answer in time: the outcome is unknown (ovsdb-server commits a transaction
            // whenever it reads it; our `cancel` only reaches a blocked one), but the session
            // is not lost for it: the connection's echo keepalive judges the server, and a
            // reconnect would cost the loaded server a schema and a full monitor dump. Planning
            // again from the replica is safe: if the transaction committed, its update arrives
            // and the plan is empty; if not, the new one's `wait`s guard it like any other.
            Err(Error::Timeout(method)) => {
                tracing::warn!(%method, "no answer in time, outcome unknown; planning again");
                retry = Some(tokio::time::Instant::now() + OUTCOME_UNKNOWN_RETRY);
            }
            Err(e @ (Error::Disconnected | Error::PeerDead | Error::Io(_))) => return Err(e),
            Err(e) => {
                // The server refused the plan (or it kept going stale): try again later, or
                // sooner if anything changes.
                tracing::warn!(error = %e, "reconcile failed");
                retry = Some(tokio::time::Instant::now() + Duration::from_secs(2));
            }
        }
        let mut view = host_view(m.replica(), &cfg.bridge);
        view.reconciled = reconciled;
        view.synced = synced;
        set_view(shared, id, view);
        pace.step(tokio::time::Instant::now());
        tokio::select! {
            r = desired.changed() => if r.is_err() { return Ok(Stop::Shutdown) },
            r = sync.changed() => if r.is_err() { return Ok(Stop::Shutdown) },
            r = m.changes() => { r?; }
            _ = tokio::time::sleep_until(retry.unwrap_or_else(tokio::time::Instant::now)), if retry.is_some() => {}
            _ = ovsdb::client::stopped(shutdown) => return Ok(Stop::Shutdown),
        }
        // One step (plan, view) per `STEP_SPACING` beyond a short burst: each is O(the host's
        // ports and tunnels), and while hundreds of hosts join, every host's replica changes
        // with each tunnel vswitchd numbers and its desired state with each registration, so
        // a step per change was O(N²) per host, O(N³) in all (BENCHMARKS.md, Scale). Updates
        // that arrive meanwhile wait in the connection's bounded queue (the connection itself
        // keeps answering echoes) and are applied at once.
        let until = pace.next();
        if until > tokio::time::Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = ovsdb::client::stopped(shutdown) => return Ok(Stop::Shutdown),
            }
        }
        m.poll_changes()?;
    }
}

#[cfg(test)]
mod pace_tests {
    use super::*;

    #[test]
    fn a_burst_after_a_quiet_spell_goes_at_once_then_steps_are_spaced() {
        let t0 = tokio::time::Instant::now();
        let mut p = StepPace::new(t0);
        for _ in 0..STEP_BURST {
            assert!(p.next() <= t0, "a step of the first burst waited");
            p.step(t0);
        }
        assert_eq!(p.next(), t0 + STEP_SPACING);
        p.step(p.next());
        assert_eq!(p.next(), t0 + 2 * STEP_SPACING);
        // Quiet for a while: a whole burst again, not more.
        let later = t0 + 10 * STEP_SPACING;
        for _ in 0..STEP_BURST {
            assert!(p.next() <= later);
            p.step(later);
        }
        assert_eq!(p.next(), later + STEP_SPACING);
    }
}
