//! Serves the REST API on its own listener, mini-redis style: `run(listener, app, limits,
//! shutdown)` takes a bound listener (tests bind port 0), caps concurrent connections, backs
//! off on accept errors, and on shutdown lets requests in flight finish.
//!
//! Two limits keep idle or slow clients from starving the process of file descriptors (which
//! would also keep switches from connecting): every connection must send a request's headers
//! within [`Limits::header_read_timeout`] of being accepted or of its previous response
//! (hyper's header read timer, which also runs while a keep-alive connection sits idle), and
//! no more than [`Limits::max_connections`] are served at once. A connection over the cap is
//! answered at once with a 503 in the API's error shape and closed, so a client sees why
//! instead of hanging in the accept queue. The refusal lingers up to [`REFUSAL_LINGER`] reading
//! what the client sent (closing a socket with unread input sends a reset, which can destroy
//! the 503 before the client reads it); at most `max_connections` refusals linger at once,
//! beyond that a connection is just closed.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::serve::Shutdown;

/// A plain or a TLS connection.
type Either<A, B> = tokio_util_either::Either<A, B>;

/// A two-way stream that is one of two kinds (hyper needs one type).
mod tokio_util_either {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// One of two streams.
    pub enum Either<A, B> {
        /// The first kind.
        Left(A),
        /// The second kind.
        Right(B),
    }

    impl<A: AsyncRead + Unpin, B: AsyncRead + Unpin> AsyncRead for Either<A, B> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            match self.get_mut() {
                Either::Left(a) => Pin::new(a).poll_read(cx, buf),
                Either::Right(b) => Pin::new(b).poll_read(cx, buf),
            }
        }
    }

    impl<A: AsyncWrite + Unpin, B: AsyncWrite + Unpin> AsyncWrite for Either<A, B> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            match self.get_mut() {
                Either::Left(a) => Pin::new(a).poll_write(cx, buf),
                Either::Right(b) => Pin::new(b).poll_write(cx, buf),
            }
        }
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            match self.get_mut() {
                Either::Left(a) => Pin::new(a).poll_flush(cx),
                Either::Right(b) => Pin::new(b).poll_flush(cx),
            }
        }
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            match self.get_mut() {
                Either::Left(a) => Pin::new(a).poll_shutdown(cx),
                Either::Right(b) => Pin::new(b).poll_shutdown(cx),
            }
        }
    }
}

/// How much the REST listener lets its clients hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are refused with a 503.
    pub max_connections: usize,
    /// A connection that sends no complete request head within this is closed.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The answer to a connection over the cap: the API's JSON error shape, then close.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
connection: close\r\n\
retry-after: 1\r\n\
content-length: 90\r\n\
\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many REST connections open; retry shortly\"}}";

/// How long a refused connection is kept open to read the request it may be sending.
pub const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Serves `app` until `shutdown` turns true, then waits for requests in flight.
pub async fn run(listener: TcpListener, app: Router, limits: Limits, shutdown: Shutdown) {
    run_with(listener, app, limits, None, shutdown).await
}

/// [`run`], over TLS when `tls` is given (`serve --api-tls-key/--api-tls-cert`): each
/// connection's handshake must finish within the header read timeout.
pub async fn run_with(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: Shutdown,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(limits.max_connections));
    let mut tasks = JoinSet::new();
    let mut acceptor = crate::accept::Acceptor::new(listener, "REST");
    loop {
        // Reap finished connections so the set does not grow with churn.
        while tasks.try_join_next().is_some() {}
        let Some((stream, peer)) = acceptor.accept(&mut shutdown).await else {
            break;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "REST connection refused: at the connection cap");
            // A fresh socket's send buffer takes these few bytes at once; if it does not,
            // the client gets a bare close, which is still a refusal.
            let _ = stream.try_write(REFUSAL);
            if let Ok(linger) = refusals.clone().try_acquire_owned() {
                tasks.spawn(refuse(stream, linger));
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut stop = shutdown.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            let stream = match tls {
                None => Either::Left(stream),
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(s)) => Either::Right(s),
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "REST TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                // The watch guard must not live across the await below (it is not `Send`).
                () = async { drop(stop.wait_for(|s| *s).await) } => {
                    // Finish the request in flight, if any; an idle connection closes now.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "REST connection ended");
            }
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Ends a refused connection: no more output, then read and drop its input until it closes or
/// [`REFUSAL_LINGER`] passes, so the close is an orderly FIN and the 503 reaches the client.
async fn refuse(mut stream: tokio::net::TcpStream, permit: tokio::sync::OwnedSemaphorePermit) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    drop(permit);
}
