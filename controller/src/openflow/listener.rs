//! Accepts switch connections, mini-redis style: `run(listener, ctx, shutdown)` takes a bound
//! listener (tests bind port 0), caps concurrent connections with a semaphore, backs off on
//! accept errors, and on shutdown waits for every connection task to close.
//!
//! At the cap, further switches wait in the kernel's accept queue (they hold no descriptor of
//! ours) until a session ends; a connection that never completes the handshake ends at the
//! session's `handshake_timeout`, so idle sockets cannot hold the cap for long. `serve` sizes
//! the cap from the process's open-file limit, leaving room for REST and OVSDB.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::Context;
use crate::serve::Shutdown;

/// Concurrent switch connections by default; more wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 4096;

/// Accepts switches until `shutdown` turns true, then waits for their sessions to close.
pub async fn run(listener: TcpListener, ctx: Context, shutdown: Shutdown) {
    run_limited(listener, ctx, MAX_CONNECTIONS, shutdown).await
}

/// [`run`] with at most `max_connections` sessions at once.
pub async fn run_limited(
    listener: TcpListener,
    ctx: Context,
    max_connections: usize,
    mut shutdown: Shutdown,
) {
    let limit = Arc::new(Semaphore::new(max_connections));
    let mut tasks = JoinSet::new();
    let mut acceptor = crate::accept::Acceptor::new(listener, "OpenFlow");
    loop {
        // Reap finished connections so the set does not grow with churn.
        while let Some(done) = tasks.try_join_next() {
            report_panic(done);
        }
        let permit = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let Some((stream, peer)) = acceptor.accept(&mut shutdown).await else {
            break;
        };
        let conn = ctx.next_conn();
        let span = tracing::info_span!("switch", conn, %peer, dpid = tracing::field::Empty);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(
            async move {
                tracing::debug!("switch connection accepted");
                let _ = stream.set_nodelay(true);
                match ctx.tls.clone() {
                    None => super::conn::run(stream, peer, conn, ctx, shutdown, None).await,
                    Some(tls) => {
                        if let Some((stream, identity)) =
                            handshake(&tls, stream, peer, ctx.config.handshake_timeout).await
                        {
                            super::conn::run(stream, peer, conn, ctx, shutdown, Some(identity))
                                .await;
                        }
                    }
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
    while let Some(done) = tasks.join_next().await {
        report_panic(done);
    }
}

/// The TLS handshake of one switch, within the OpenFlow handshake's time limit. A peer that
/// speaks plain TCP, offers no certificate or one from another CA is logged (WARN, with the
/// reason rustls gives) and closed; it never reaches a session.
async fn handshake(
    tls: &super::Tls,
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    limit: Duration,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    crate::tls::PeerIdentity,
)> {
    match tokio::time::timeout(limit, tls.acceptor.accept(stream)).await {
        Err(_) => {
            crate::tls::refused::count(
                crate::tls::refused::Channel::OpenFlow,
                crate::tls::refused::Reason::Handshake,
            );
            tracing::warn!(%peer, "refused a switch: TLS handshake not finished within {limit:?}");
            None
        }
        Ok(Err(e)) => {
            crate::tls::refused::count(
                crate::tls::refused::Channel::OpenFlow,
                crate::tls::refused::Reason::Handshake,
            );
            tracing::warn!(%peer, "refused a switch: TLS handshake failed: {e}");
            None
        }
        Ok(Ok(s)) => {
            let identity = crate::tls::PeerIdentity::of_peer(s.get_ref().1.peer_certificates());
            // The verifier requires a client certificate, so a finished handshake has one.
            let identity = identity?;
            tracing::info!(%peer, certificate = %identity, "switch authenticated by TLS");
            Some((s, identity))
        }
    }
}

/// A connection task that panicked is a bug (input must never panic): say so loudly. The
/// other connections are unaffected, since each runs in its own task.
fn report_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("BUG: a switch connection task panicked: {e}");
        }
    }
}
