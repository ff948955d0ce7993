//! The OVSDB dial-in listener over TLS (`ovs-vsctl set-manager ssl:CTRL:6640`): like
//! `ovsdb::client::listen`, with each peer's TLS handshake (a certificate from the CA
//! required) done in its own task before its session starts, so a slow or hostile handshake
//! holds up no one. The certificate goes along with the connection: `host::run_passive`
//! accepts a `system-id` only from the holder of that host's certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ovsdb::client::{Connection, Notifications};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::tls::PeerIdentity;

/// How long a dialing host's TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// A host that dialed in and proved a certificate.
pub(crate) type Accepted = (Connection, Notifications, SocketAddr, PeerIdentity);

/// Accepts hosts until `shutdown` turns true; at most `max_connections` at once (handshakes
/// included). Refusals are logged (WARN) with rustls's reason.
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    session: ovsdb::rpc::Config,
    max_connections: usize,
    accepted: mpsc::Sender<Accepted>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let limit = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = ovsdb::client::stopped(&mut shutdown) => return,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "ovsdb accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = ovsdb::client::stopped(&mut shutdown) => return,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, session, accepted) = (acceptor.clone(), session.clone(), accepted.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Err(_) => {
                    crate::tls::refused::count(
                        crate::tls::refused::Channel::Ovsdb,
                        crate::tls::refused::Reason::Handshake,
                    );
                    tracing::warn!(%peer, "refused a host: TLS handshake not finished within {HANDSHAKE:?}");
                    return;
                }
                Ok(Err(e)) => {
                    crate::tls::refused::count(
                        crate::tls::refused::Channel::Ovsdb,
                        crate::tls::refused::Reason::Handshake,
                    );
                    tracing::warn!(%peer, "refused a host: TLS handshake failed: {e}");
                    return;
                }
                Ok(Ok(s)) => s,
            };
            // The verifier requires a client certificate, so a finished handshake has one.
            let Some(identity) = PeerIdentity::of_peer(stream.get_ref().1.peer_certificates())
            else {
                return;
            };
            let (conn, notifications) = Connection::spawn(stream, session);
            // The permit goes back when the connection ends.
            let watch = conn.clone().closed_weak();
            if accepted
                .send((conn, notifications, peer, identity))
                .await
                .is_ok()
            {
                watch.await;
            }
            drop(permit);
        });
    }
}
