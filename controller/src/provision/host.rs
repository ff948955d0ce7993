//! One host's OVSDB session: connect (actively with backoff, or accept a host that dialed
//! in), keep a replica, reconcile whenever the desired state or the host changes, and publish
//! the host's view.

use std::sync::Arc;
use std::time::Duration;

use ovsdb::client::{connect_with_backoff, Backoff, Connection, Monitored, Notifications, Target};
use ovsdb::{Atom, Error, Replica};
use tokio::sync::watch;
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
    target: Target,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    let mut previous: Option<Replica> = None;
    loop {
        let (conn, notifications) = tokio::select! {
            c = connect_with_backoff(&target, &shared.config.ovsdb, &mut backoff) => c,
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
                let r = reconcile_loop(&shared, id, &mut m, &mut shutdown).await;
                set_disconnected(&shared, id);
                previous = Some(m.into_replica());
                match r {
                    Ok(Stop::Shutdown | Stop::HostGone) => return,
                    Err(e) => tracing::warn!(error = %e, "session ended; reconnecting"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "monitor failed"),
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ovsdb::client::stopped(&mut shutdown) => return,
        }
    }
}

fn system_id(replica: &Replica) -> Option<String> {
    replica.rows("Open_vSwitch").next().and_then(|(_, r)| {
        r.get("external_ids")?
            .map_get("system-id")
            .and_then(Atom::as_str)
            .map(str::to_string)
    })
}

fn match_passive(shared: &Shared, replica: &Replica) -> Option<Uuid> {
    let sid = system_id(replica)?;
    let state = shared.desired.borrow().clone();
    state
        .hosts
        .iter()
        .find(|h| h.ovsdb.is_none() && (h.id.to_string() == sid || h.name == sid))
        .map(|h| h.id)
}

/// Serves a host that dialed in: identifies it by `system-id`, then reconciles it until the
/// connection drops (the host redials by itself).
pub(crate) async fn run_passive(
    shared: Arc<Shared>,
    conn: Connection,
    notifications: Notifications,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut m = match Monitored::start(conn, notifications, DB, &monitor_requests(), None).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "passive host: monitor failed");
            return;
        }
    };
    let mut desired = shared.desired.subscribe();
    loop {
        if let Some(id) = match_passive(&shared, m.replica()) {
            let span = tracing::info_span!("ovsdb-host", host = %id, mode = "passive");
            tracing::info!(parent: &span, "host identified");
            let r = reconcile_loop(&shared, id, &mut m, &mut shutdown)
                .instrument(span)
                .await;
            set_disconnected(&shared, id);
            match r {
                Ok(Stop::HostGone) => {}
                Ok(Stop::Shutdown) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "passive session ended");
                    return;
                }
            }
        }
        // Unknown (yet) host: wait for the desired state or its system-id to change.
        tokio::select! {
            r = desired.changed() => if r.is_err() { return },
            r = m.changes() => if r.is_err() { return },
            _ = ovsdb::client::stopped(&mut shutdown) => return,
        }
    }
}

/// Reconciles host `id` over `m` whenever the desired state or the replica changes.
async fn reconcile_loop(
    shared: &Shared,
    id: Uuid,
    m: &mut Monitored,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Stop, Error> {
    let mut desired = shared.desired.subscribe();
    let cfg = &shared.config;
    loop {
        let state = desired.borrow_and_update().clone();
        let Some(host): Option<&DesiredHost> = state.host(id) else {
            return Ok(Stop::HostGone);
        };
        let tunnels = desired_tunnels(&state, id, cfg.set_local_ip);
        let result = m.transact(|r| Ok(plan(r, host, &tunnels, cfg))).await;
        let mut retry = None;
        match result {
            Ok(Some(_)) => tracing::info!("host reconciled"),
            Ok(None) => {}
            Err(e @ (Error::Disconnected | Error::PeerDead | Error::Io(_) | Error::Timeout(_))) => {
                return Err(e)
            }
            Err(e) => {
                // The server refused the plan (or it kept going stale): try again later, or
                // sooner if anything changes.
                tracing::warn!(error = %e, "reconcile failed");
                retry = Some(Duration::from_secs(2));
            }
        }
        set_view(shared, id, host_view(m.replica(), &cfg.bridge));
        tokio::select! {
            r = desired.changed() => if r.is_err() { return Ok(Stop::Shutdown) },
            r = m.changes() => { r?; }
            _ = tokio::time::sleep(retry.unwrap_or(Duration::MAX / 4)), if retry.is_some() => {}
            _ = ovsdb::client::stopped(shutdown) => return Ok(Stop::Shutdown),
        }
    }
}
