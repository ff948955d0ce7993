//! Accepts switch connections, mini-redis style: `run(listener, ctx, shutdown)` takes a bound
//! listener (tests bind port 0), caps concurrent connections with a semaphore, backs off on
//! accept errors, and on shutdown waits for every connection task to close.
//!
//! At the cap, further switches wait in the kernel's accept queue (they hold no descriptor of
//! ours) until a session ends; a connection that never completes the handshake ends at the
//! session's `handshake_timeout`, so idle sockets cannot hold the cap for long. `serve` sizes
//! the cap from the process's open-file limit, leaving room for REST and OVSDB.
//!
//! A connection the switch gave up on while it waited in the accept queue (it closed its end:
//! vswitchd allows 1 to 8 s for the TCP connect *and* our HELLO, then redials) is dropped as it
//! is accepted, unread and ungreeted: greeting it costs a task, a HELLO into a closed socket
//! (`broken pipe`) and a log line, and under load hundreds of them stood in front of the
//! switches' live attempts (BENCHMARKS, Scale). Such drops are counted and summed up in the log
//! at most every [`SUMMARY_INTERVAL`].

use std::sync::atomic::Ordering;
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

/// The least time between two log lines summing up abandoned connections.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// Whether the peer of an accepted connection has already closed its end (or reset it): a FIN
/// or RST that arrived while the connection waited in the accept queue. Asked of the kernel
/// without waiting (`poll` with `POLLRDHUP`, a zero timeout); `false` where that cannot be
/// asked.
#[cfg(target_os = "linux")]
pub fn peer_gone(stream: &tokio::net::TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` for a descriptor `stream` owns for the duration of the call,
    // and a zero timeout: `poll` only reads and writes that struct.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n == 1 && fd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// See the Linux version: elsewhere every connection is greeted.
#[cfg(not(target_os = "linux"))]
pub fn peer_gone(_stream: &tokio::net::TcpStream) -> bool {
    false
}

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
    // Connections dropped as abandoned since the last summary line, and when that was.
    let mut abandoned = 0u64;
    let mut summarized = tokio::time::Instant::now();
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
        let gone = peer_gone(&stream);
        if gone {
            tracing::debug!(%peer, "switch connection abandoned in the accept queue; dropped");
            abandoned += 1;
        }
        if summarized.elapsed() >= SUMMARY_INTERVAL {
            let in_handshake = super::conn::GAVE_UP_IN_HANDSHAKE.swap(0, Ordering::Relaxed);
            if abandoned + in_handshake > 0 {
                tracing::info!(
                    abandoned,
                    in_handshake,
                    "switches gave up on {abandoned} connections in the accept queue (dropped \
                     unread) and on {in_handshake} during the handshake"
                );
            }
            abandoned = 0;
            summarized = tokio::time::Instant::now();
        }
        if gone {
            // Its permit goes back at once.
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose switch closed it while it waited in the accept queue is seen as gone
    /// when accepted; a live one, with or without its HELLO sent, is not.
    #[tokio::test]
    async fn a_connection_closed_in_the_accept_queue_is_gone() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let quiet = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut hello = tokio::net::TcpStream::connect(addr).await.unwrap();
        hello.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).await.unwrap();
        let mut left = tokio::net::TcpStream::connect(addr).await.unwrap();
        left.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).await.unwrap();
        drop(left);
        // Loopback delivers the FIN at once; give it a moment anyway.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut gone = vec![];
        for _ in 0..3 {
            let (s, peer) = listener.accept().await.unwrap();
            gone.push((peer.port(), peer_gone(&s)));
        }
        gone.sort();
        let mut expected = vec![
            (quiet.local_addr().unwrap().port(), false),
            (hello.local_addr().unwrap().port(), false),
        ];
        gone.retain(|g| {
            let live = expected.contains(g);
            expected.retain(|e| e != g);
            !live
        });
        assert!(expected.is_empty(), "live connections taken for gone");
        assert_eq!(gone.len(), 1);
        assert!(gone[0].1, "the closed connection is gone");
    }
}
