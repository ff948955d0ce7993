//! What every TCP listener shares: accepting with a backoff. A failed `accept` is typically
//! EMFILE (descriptors ran out): retrying at once would spin, so the listener waits, doubling
//! the wait up to a second, and starts from the minimum again after a success.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::serve::Shutdown;

const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A listener and its backoff.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    backoff: Duration,
    /// What listens, for the log line.
    what: &'static str,
}

impl Acceptor {
    /// Accepts on `listener`; `what` names it in the log (`REST`, `OpenFlow`).
    pub fn new(listener: TcpListener, what: &'static str) -> Self {
        Acceptor {
            listener,
            backoff: MIN_BACKOFF,
            what,
        }
    }

    /// The next connection, or `None` once `shutdown` turns true (also while backing off).
    pub async fn accept(&mut self, shutdown: &mut Shutdown) -> Option<(TcpStream, SocketAddr)> {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return None,
                a = self.listener.accept() => a,
            };
            match accepted {
                Ok(a) => {
                    self.backoff = MIN_BACKOFF;
                    return Some(a);
                }
                Err(e) => {
                    let what = self.what;
                    let backoff = self.backoff;
                    tracing::warn!(error = %e, ?backoff, "{what} accept failed; backing off");
                    tokio::select! {
                        _ = shutdown.wait_for(|s| *s) => return None,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    self.backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
