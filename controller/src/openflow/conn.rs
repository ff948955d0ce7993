//! The tokio driver of one switch connection: moves bytes between the socket and a [`Session`],
//! fires its timers, and connects it to the registry, the app and request waiters.
//!
//! Flow control, in one place:
//! - outbound messages are encoded into one `BytesMut`; each write syscall takes as much of it
//!   as the socket accepts, so bursts go out many messages per write;
//! - while that buffer holds more than [`HIGH_WATER`] bytes, the task stops reading the socket
//!   and stops taking commands: the switch and every sender (apps, REST) feel backpressure
//!   instead of the controller buffering without bound (an app, which must not wait, answers
//!   a full queue by resyncing the switch: see `app.rs`; the session then closes with
//!   `CloseReason::Resync` and takes no more commands);
//! - the app is called inline for each event when its lock is free, before the next read; its
//!   answers for this switch go out with the write that follows the read that caused them.
//!   When the lock is held, the event is queued for the holder (`app.rs`) and the task goes on
//!   reading, answering echoes and writing; at `PENDING_PER_CONN` queued events it stops reading
//!   until the holder has handled some (`ConnShared::wake`), so a slow app slows reading rather
//!   than queueing without bound or dropping events;
//! - the app's other output for this switch (answers to queued events, outputs of other
//!   switches' events, marks, FLOW_STATS requests) arrives in the connection's mailbox, which
//!   the task moves into the session, in order, before each inline call and after each wake-up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use ofproto::Decoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::log_limit::{LogLimiter, Verdict};
use super::registry::{Command, ConnId, ConnShared, Counters, SwitchHandle};
use super::session::{CloseReason, Reply, RequestError, Session, SessionEvent};
use super::Context;
use crate::applied::Barriers;
use crate::serve::Shutdown;

/// Above this many unwritten bytes the connection stops reading and taking commands.
pub const HIGH_WATER: usize = 256 * 1024;
/// Commands taken per wake-up before writing: batches app output into few syscalls.
const COMMAND_BATCH: usize = 256;
/// Queue depth between handles and the connection task.
pub const COMMAND_QUEUE: usize = 1024;
/// How long a closing connection may take to write its last messages (a refusal, an ERROR).
const FLUSH_ON_CLOSE: Duration = Duration::from_secs(1);
/// Repetitive log lines (a switch's ERRORs, undecodable messages) logged in full per
/// [`LOG_INTERVAL`] and connection; the rest are counted in one summary line.
pub const LOG_BURST: u32 = 10;
/// See [`LOG_BURST`].
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

type Waiter = oneshot::Sender<Result<Reply, RequestError>>;

/// Connections whose switch closed or reset them before `Ready` (it gave up waiting); the
/// listener sums them up in the log.
pub(crate) static GAVE_UP_IN_HANDSHAKE: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

/// Runs one switch connection to its end, over TCP or TLS (`identity` is the certificate a TLS
/// peer proved). Never panics on input; logs why it closed.
pub(crate) async fn run<S>(
    stream: S,
    peer: SocketAddr,
    conn: ConnId,
    ctx: Context,
    shutdown: Shutdown,
    identity: Option<crate::tls::PeerIdentity>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let mut driver = Driver {
        identity,
        session: Session::new(Instant::now(), ctx.config.clone()),
        decoder: Decoder::new(),
        out: BytesMut::with_capacity(64 * 1024),
        waiters: HashMap::new(),
        app_barriers: std::collections::HashSet::new(),
        others_first: false,
        registered: None,
        peer,
        conn,
        ctx,
        shared: Arc::new(ConnShared::default()),
        error_log: LogLimiter::new(LOG_BURST, LOG_INTERVAL),
        malformed_log: LogLimiter::new(LOG_BURST, LOG_INTERVAL),
        barriers: Barriers::default(),
    };
    driver.run(stream, shutdown).await;
}

struct Driver {
    /// The certificate a TLS peer proved; `None` over plain TCP.
    identity: Option<crate::tls::PeerIdentity>,
    session: Session,
    decoder: Decoder,
    out: BytesMut,
    waiters: HashMap<u32, Waiter>,
    /// The xids of the app's own barriers in flight (`Command::AppBarrier`). Those of a session
    /// that ends are dropped with it: the app hears of the switch going down instead.
    app_barriers: std::collections::HashSet<u32>,
    /// The last events' answers sent another switch a packet: yield before writing ours.
    others_first: bool,
    /// The datapath id once registered.
    registered: Option<u64>,
    peer: SocketAddr,
    conn: ConnId,
    ctx: Context,
    shared: Arc<ConnShared>,
    /// The switch's ERRORs for messages nobody waits for, which the app logs.
    error_log: LogLimiter,
    /// Messages from the switch that do not decode.
    malformed_log: LogLimiter,
    /// The barriers confirming the app's marks (applied revisions).
    barriers: Barriers,
}

impl Driver {
    async fn run<S>(&mut self, stream: S, mut shutdown: Shutdown)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        // A TLS stream may keep records it could not write yet (the socket was full) after
        // taking all of `out`: they go out with a flush, in the select below.
        let mut unflushed = false;
        let (cmd_tx, mut cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let mut cmd_tx = Some(cmd_tx);
        let mut rbuf = BytesMut::with_capacity(64 * 1024);
        let shared = self.shared.clone();
        // The futures that live across iterations are made once: building a `Notified`, a
        // `wait_for` and a timer entry on every message was a measurable part of answering one.
        let stop = shutdown.wait_for(|s| *s);
        tokio::pin!(stop);
        let kill = shared.kill.notified();
        tokio::pin!(kill);
        let wake = shared.wake.notified();
        tokio::pin!(wake);
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        loop {
            self.pump(&mut cmd_tx);
            if std::mem::take(&mut self.others_first) {
                // The app answered this switch's event with a packet for another switch (a
                // request delivered at its destination, behind its reply's flow), whose task it
                // woke into this worker's queue: that task writes first. It is what the first
                // packet waits for; ours is the flow for the packets after it. (Only then: a
                // yield per event costs a batching connection its throughput.)
                tokio::task::yield_now().await;
            }
            // Write what this step produced at once: answering a packet-in then costs one
            // syscall and no round through `select!`. What the socket does not take waits for
            // the write branch below.
            if !self.out.is_empty() {
                match try_write(&mut writer, &self.out) {
                    Some(Ok(n)) => {
                        self.out.advance(n);
                        unflushed = true;
                    }
                    None => {}
                    Some(Err(e)) => self.session.close(CloseReason::Io(e.kind())),
                }
            }
            if unflushed && self.out.is_empty() {
                match try_flush(&mut writer) {
                    Some(Ok(())) => unflushed = false,
                    None => {}
                    Some(Err(e)) => self.session.close(CloseReason::Io(e.kind())),
                }
            }
            if self.session.is_closed() {
                break;
            }
            let timer = self.session.poll_timeout();
            if let Some(at) = timer {
                let at = tokio::time::Instant::from_std(at);
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
            }
            let room = self.out.len() < HIGH_WATER;
            // Too many events waiting for the app lock: read nothing more until the holder has
            // handled some (`wake`); the socket's own buffers push back on the switch.
            let reading = room && !shared.pending_full();
            // Biased, the timer last: a task that runs late (a loaded machine) with the switch's
            // messages readable and its deadline past must read them before it judges the
            // switch silent; an unbiased `select!` picked the timer half the time.
            tokio::select! {
                biased;
                _ = &mut stop => self.session.close(CloseReason::Shutdown),
                // Replaced by a newer session, or told to resync: the flag says which.
                _ = &mut kill => self.session.close(if shared.is_resyncing() {
                    CloseReason::Resync
                } else {
                    CloseReason::Replaced
                }),
                r = write_or_flush(&mut writer, &self.out), if !self.out.is_empty() || unflushed => match r {
                    Ok(Some(n)) => {
                        self.out.advance(n);
                        unflushed = true;
                    }
                    Ok(None) => unflushed = false,
                    Err(e) => self.session.close(CloseReason::Io(e.kind())),
                },
                // Mail from the app, or queued events handled: `pump` takes it.
                _ = &mut wake => wake.set(shared.wake.notified()),
                r = reader.read_buf(&mut rbuf), if reading => match r {
                    Ok(0) => self.session.close(CloseReason::PeerClosed),
                    // A TLS peer that closes TCP without close_notify (OVS does): rustls
                    // reports it as an unexpected EOF; for us it is a close like any other.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        self.session.close(CloseReason::PeerClosed)
                    }
                    Ok(_) => self.decode(&mut rbuf),
                    Err(e) => self.session.close(CloseReason::Io(e.kind())),
                },
                cmd = cmd_rx.recv(), if room => match cmd {
                    Some(cmd) => {
                        self.command(cmd);
                        for _ in 1..COMMAND_BATCH {
                            match cmd_rx.try_recv() {
                                Ok(cmd) => self.command(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                    // Every handle is gone, the registry's included: this session was replaced.
                    None => self.session.close(CloseReason::Replaced),
                },
                _ = &mut sleep, if timer.is_some() => self.session.handle_timeout(Instant::now()),
            }
        }
        // Refuse new commands and release queued ones (their requesters see `Gone`) and leave
        // the registry, all before the flush, which may wait on a peer that does not read.
        cmd_rx.close();
        while cmd_rx.try_recv().is_ok() {}
        self.log_close();
        if let Some(dpid) = self.registered {
            self.ctx.app.switch_down(dpid, self.conn, &self.shared);
        }
        // Write what the session queued last (a HELLO_FAILED, an ERROR for garbage), briefly.
        let _ = tokio::time::timeout(FLUSH_ON_CLOSE, async {
            let _ = writer.write_all(&self.out).await;
            let _ = writer.shutdown().await;
        })
        .await;
    }

    fn decode(&mut self, rbuf: &mut BytesMut) {
        let now = Instant::now();
        self.log_summaries(now);
        loop {
            // A first byte that is no OpenFlow version means the peer is not speaking OpenFlow
            // (an HTTP probe, random bytes): its "length" is noise, so refuse it now instead of
            // waiting for the bytes it seems to announce.
            if let Some(&version) = rbuf.first() {
                if !(0x01..=0x06).contains(&version) {
                    let xid = rbuf
                        .get(4..8)
                        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    let err = ofproto::Error::BadVersion { version, xid };
                    self.session.handle_malformed(now, &err, rbuf);
                    return;
                }
            }
            match self.decoder.decode(rbuf) {
                Ok(Some(msg)) => {
                    Counters::add(&self.shared.counters.msgs_in, 1);
                    self.session.handle_message(now, msg);
                    if self.session.is_closed() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    self.log_malformed(now, &e);
                    // A fatal error left the bad header in `rbuf`; otherwise the decoder
                    // consumed the message and kept its bytes.
                    let raw = match self.decoder.rejected() {
                        Some(bytes) => &bytes[..],
                        None => &rbuf[..],
                    };
                    self.session.handle_malformed(now, &e, raw);
                    // Only a bad header or version closes; anything else failed one message
                    // (or the request it answered) and the stream goes on.
                    if self.session.is_closed() {
                        return;
                    }
                }
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        // Resyncing: what is still queued behind the message that did not fit must not go out,
        // even if this wake-up took the commands before the kill.
        if self.shared.is_resyncing() {
            self.session.close(CloseReason::Resync);
        }
        let now = Instant::now();
        let reason = self.session.close_reason().cloned();
        let Some(mut ready) = self.session.ready(now) else {
            // Handles exist only after `Ready`, so this is a session that just closed.
            let err = RequestError::Closed(reason.unwrap_or(CloseReason::Shutdown));
            if let Command::Request(_, tx) = cmd {
                let _ = tx.send(Err(err));
            }
            return;
        };
        match cmd {
            Command::Send(m) => {
                if let Err(e) = ready.send(m) {
                    tracing::warn!("message not sent: {e}");
                }
            }
            Command::Request(m, tx) => {
                let xid = ready.request(m);
                self.waiters.insert(xid, tx);
            }
            Command::Ports(tx) => {
                let _ = tx.send(ready.ports().cloned().collect());
            }
            // Its barrier goes out in `pump`, after every command of this wake-up: later is
            // always safe, and several marks taken at once cost one barrier.
            Command::Mark(mark) => self.barriers.want(mark),
            Command::AppBarrier => {
                let xid = ready.request(ofproto::Message::BarrierRequest);
                self.app_barriers.insert(xid);
            }
        }
    }

    /// Drains the session: events to their consumers (the app's answers for this switch go back
    /// into the session), then every queued message into the write buffer.
    fn pump(&mut self, cmd_tx: &mut Option<mpsc::Sender<Command>>) {
        // The clock only for steps that produced events: `pump` runs after every wake-up.
        let mut clock = None;
        self.take_mail();
        // At `PENDING_PER_CONN` queued events the rest stay in the session until the holder
        // has handled some (the task then wakes and comes back here).
        while !self.shared.pending_full() {
            let Some(event) = self.session.poll_event() else {
                break;
            };
            let now = *clock.get_or_insert_with(Instant::now);
            let mut quiet = false;
            let event = match event {
                SessionEvent::Ready { features, ports } => {
                    let dpid = features.datapath_id;
                    tracing::Span::current().record("dpid", tracing::field::display(DpidFmt(dpid)));
                    if let Some(identity) = &self.identity {
                        if let Some(why) = self.ctx.refusal(dpid, identity) {
                            crate::tls::refused::count(
                                crate::tls::refused::Channel::OpenFlow,
                                crate::tls::refused::Reason::Identity,
                            );
                            tracing::warn!(peer = %self.peer, certificate = %identity, "refused a switch: {why}");
                            self.session.close(CloseReason::Unauthorized(why));
                            continue;
                        }
                    }
                    let Some(tx) = cmd_tx.take() else { continue };
                    let handle =
                        SwitchHandle::new(self.conn, self.peer, features, tx, self.shared.clone())
                            .with_identity(self.identity.clone());
                    self.registered = Some(dpid);
                    tracing::info!(
                        ports = ports.len(),
                        n_tables = features.n_tables,
                        "switch connected"
                    );
                    let session = &mut self.session;
                    self.ctx.app.switch_up(handle, features, ports, |m| {
                        send_own(session, now, m);
                    });
                    continue;
                }
                SessionEvent::PacketIn(packet_in) => {
                    Counters::add(&self.shared.counters.packet_ins, 1);
                    apps::Event::PacketIn {
                        dpid: self.dpid(),
                        packet_in,
                    }
                }
                SessionEvent::PortStatus(status) => apps::Event::PortStatus {
                    dpid: self.dpid(),
                    status,
                },
                SessionEvent::FlowRemoved(removed) => apps::Event::FlowRemoved {
                    dpid: self.dpid(),
                    removed,
                },
                SessionEvent::Response { xid, result } => {
                    if let Err(RequestError::Switch(_)) = &result {
                        Counters::add(&self.shared.counters.switch_errors, 1);
                    }
                    if self.barriers.owns(xid) {
                        if let Some(mark) = self.barriers.answered(xid, result.is_ok()) {
                            self.ctx.switches.applied(&self.shared, mark);
                        } else if let Err(e) = &result {
                            tracing::debug!(error = %e, "barrier for an applied revision failed; retrying");
                        }
                        continue;
                    }
                    if self.app_barriers.remove(&xid) {
                        // Answered, refused or timed out: for the app, the barrier is over.
                        apps::Event::Barrier { dpid: self.dpid() }
                    } else {
                        if let Some(tx) = self.waiters.remove(&xid) {
                            let _ = tx.send(result);
                        }
                        continue;
                    }
                }
                SessionEvent::UnsolicitedError { xid, error } => {
                    Counters::add(&self.shared.counters.switch_errors, 1);
                    match self.error_log.check(now) {
                        Verdict::Log => {}
                        Verdict::LogAfterSummary(n) => log_error_summary(self.peer, n),
                        Verdict::Suppress => quiet = true,
                    }
                    tracing::debug!(xid, error = %error.kind, "switch reported an error for a message nobody waits for");
                    // The app sent it: it matches the ERROR back to its own flow by cookie.
                    apps::Event::SwitchError {
                        dpid: self.dpid(),
                        xid,
                        error,
                    }
                }
            };
            // The answers to this connection's queued events (and the app's other output for
            // it so far) go into the session before an answer given inline now.
            self.take_mail();
            let session = &mut self.session;
            // `quiet`: the app logs what it makes of each ERROR (the engine a WARN); past the
            // burst, only the count reaches the log, so the app is heard without a subscriber
            // for this one call.
            self.others_first |= self
                .ctx
                .app
                .event(self.conn, &self.shared, event, quiet, |m| {
                    send_own(session, now, m);
                });
        }
        self.take_mail();
        // One barrier outstanding at a time, behind every mark taken so far.
        if let Some(mark) = self.barriers.poll_barrier() {
            let now = *clock.get_or_insert_with(Instant::now);
            if let Some(mut ready) = self.session.ready(now) {
                let xid = ready.request(ofproto::Message::BarrierRequest);
                self.barriers.sent(xid, mark);
            }
        }
        let sent = self.session.transmit_into(&mut self.out);
        Counters::add(&self.shared.counters.msgs_out, sent);
        let refused = self.session.ports_refused();
        if refused != 0 {
            // The session counts; this only publishes its count.
            let counter = &self.shared.counters.ports_refused;
            counter.store(refused, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Moves the app's mail for this switch into the session, in the app's order.
    fn take_mail(&mut self) {
        for cmd in self.shared.take_mail() {
            self.command(cmd);
        }
    }

    fn dpid(&self) -> u64 {
        // Async events exist only in `Ready`, which registered the datapath first.
        self.registered.unwrap_or_default()
    }

    /// Logs an undecodable message from the switch, rate-limited.
    fn log_malformed(&mut self, now: Instant, error: &ofproto::Error) {
        match self.malformed_log.check(now) {
            Verdict::Suppress => {}
            Verdict::Log => {
                tracing::warn!(peer = %self.peer, "undecodable message from the switch: {error}")
            }
            Verdict::LogAfterSummary(n) => {
                log_malformed_summary(self.peer, n);
                tracing::warn!(peer = %self.peer, "undecodable message from the switch: {error}");
            }
        }
    }

    /// The summaries of rate-limited log lines whose interval is over.
    fn log_summaries(&mut self, now: Instant) {
        if let Some(n) = self.error_log.poll(now) {
            log_error_summary(self.peer, n);
        }
        if let Some(n) = self.malformed_log.poll(now) {
            log_malformed_summary(self.peer, n);
        }
    }

    fn log_close(&mut self) {
        if let Some(n) = self.error_log.take() {
            log_error_summary(self.peer, n);
        }
        if let Some(n) = self.malformed_log.take() {
            log_malformed_summary(self.peer, n);
        }
        let Some(reason) = self.session.close_reason() else {
            return;
        };
        // A switch that goes away during the handshake gave up on us (vswitchd redials after
        // 1 to 8 s): under load that is hundreds of connections, so they are counted and summed
        // up by the listener rather than logged one by one.
        let gave_up = matches!(
            reason,
            CloseReason::PeerClosed
                | CloseReason::Io(
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                )
        );
        if gave_up && self.registered.is_none() {
            GAVE_UP_IN_HANDSHAKE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(peer = %self.peer, "switch gave up during the handshake: {reason}");
            return;
        }
        match reason {
            CloseReason::PeerClosed | CloseReason::Shutdown | CloseReason::Replaced => {
                tracing::info!(peer = %self.peer, "switch connection closed: {reason}")
            }
            _ => tracing::warn!(peer = %self.peer, "closing switch connection: {reason}"),
        }
    }
}

fn log_error_summary(peer: SocketAddr, suppressed: u64) {
    tracing::warn!(
        %peer,
        suppressed,
        "{suppressed} more ERRORs from the switch for messages nobody waits for (not logged in full)"
    );
}

fn log_malformed_summary(peer: SocketAddr, suppressed: u64) {
    tracing::warn!(
        %peer,
        suppressed,
        "{suppressed} more undecodable messages from the switch (not logged in full)"
    );
}

/// Sends an app's answer for this connection's own switch. A message the wire cannot carry is the
/// app's bug, not the switch's: logged and dropped, the session goes on.
fn send_own(session: &mut Session, now: Instant, message: ofproto::Message) {
    if let Some(mut ready) = session.ready(now) {
        if let Err(e) = ready.send(message) {
            tracing::warn!("app output not sent: {e}");
        }
    }
}

/// One write attempt that does not wait: `None` when the socket takes nothing now. (A plain
/// `TcpStream` has `try_write`; a TLS stream only has `poll_write`.)
fn try_write<W: AsyncWrite + Unpin>(w: &mut W, buf: &[u8]) -> Option<std::io::Result<usize>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(w).poll_write(&mut cx, buf) {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
    }
}

/// Writes some of `buf` (`Some(n)`), or flushes when it is empty (`None`).
async fn write_or_flush<W: AsyncWrite + Unpin>(
    w: &mut W,
    buf: &[u8],
) -> std::io::Result<Option<usize>> {
    if buf.is_empty() {
        w.flush().await.map(|()| None)
    } else {
        w.write(buf).await.map(Some)
    }
}

/// One flush attempt that does not wait (immediate for TCP).
fn try_flush<W: AsyncWrite + Unpin>(w: &mut W) -> Option<std::io::Result<()>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(w).poll_flush(&mut cx) {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
    }
}

/// A datapath id as OVS prints it: 16 hex digits.
pub use ofproto::display::Dpid as DpidFmt;
