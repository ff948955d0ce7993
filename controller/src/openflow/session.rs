//! The sans-IO OpenFlow 1.3 switch session: typed messages in, typed messages and events out.
//!
//! A [`Session`] is what one switch connection *means*; it never touches a socket or a clock.
//! The driver (`conn.rs`) feeds it whole messages ([`Session::handle_message`]), framing errors
//! ([`Session::handle_malformed`]) and the time ([`Session::handle_timeout`]), and drains it in
//! this order after every input: [`Session::poll_event`] until `None` (what the rest of the
//! controller must learn; answering an event may queue more messages), then
//! [`Session::transmit_into`] (the encoded messages to write), then
//! [`Session::poll_timeout`] (when to call `handle_timeout` next), and stops once
//! [`Session::is_closed`] after writing what was queued.
//!
//! Handshake states are named for what they wait for, rustls style, and a transition consumes
//! the old state: `ExpectHello → ExpectFeaturesReply → ExpectPortDesc → Ready`. Only `Ready`
//! holds the datapath id, and only through [`Session::ready`] (which returns `None` before
//! `Ready`) can anyone send to the switch: a flow can never reach a switch we have not identified.
//!
//! # Guarantees
//!
//! - **Version**: our HELLO carries a version bitmap with only 1.3. A switch whose HELLO does not
//!   admit 1.3 (by bitmap, or by header version when it has none) gets HELLO_FAILED/INCOMPATIBLE
//!   with its HELLO's xid and the session closes; nothing follows the refusal.
//! - **Handshake**: FEATURES_REQUEST, then SET_CONFIG (`miss_send_len = OFPCML_NO_BUFFER`) and a
//!   PORT_DESC request; `Ready` (and [`SessionEvent::Ready`], exactly once) only after the last
//!   PORT_DESC part. An auxiliary connection, an ERROR to a handshake request, a non-HELLO first
//!   message, or no `Ready` within `handshake_timeout` closes the session.
//! - **Keepalive**: ECHO_REQUESTs from the switch are answered in every state with their xid and
//!   data. After `echo_interval` without any message we send one ECHO_REQUEST (never two
//!   outstanding); after `dead_after` without any message the session closes as a dead peer.
//! - **xids**: every message we send has a fresh xid, never 0, never one still awaiting an
//!   answer (so a late reply cannot complete the wrong request after wrap-around).
//! - **Requests** ([`Ready::request`]): each completes exactly once, with the reply (multipart
//!   parts collected in order until one lacks `MORE`, at most `max_multipart_parts`), the ERROR
//!   the switch sent with that xid, [`RequestError::Timeout`] after `request_timeout`, or
//!   [`RequestError::Closed`] when the session ends first. A message without a reply is followed
//!   by a BARRIER_REQUEST; the request succeeds with [`Reply::Done`] only when that barrier is
//!   answered first, which OpenFlow's ordering makes proof that the message was applied.
//! - **Errors**: an ERROR whose xid names a pending request goes to that request only; any other
//!   ERROR comes out as [`SessionEvent::UnsolicitedError`]. Replies nobody waits for, and
//!   controller-to-switch messages sent the wrong way, are ignored (never fatal).
//! - **Async messages**: PACKET_IN, PORT_STATUS and FLOW_REMOVED come out as events in arrival
//!   order, only in `Ready`; the port table is updated before the PORT_STATUS event. The port
//!   table holds at most `max_ports`: a PORT_STATUS for a new port beyond it is refused (no
//!   event; counted in [`Session::ports_refused`], logged once).
//! - **Misbehaviour**: a message that does not decode fails only what it concerns: an answer
//!   to a pending request fails that request ([`RequestError::BadReply`]), any other message
//!   gets the ERROR the codec names (type/code, the first 64 bytes, the message's xid) and the
//!   session goes on. Only what leaves the stream or the handshake unusable closes it (after
//!   that ERROR): a bad header length, a version other than 1.3, a bad first message or
//!   handshake reply. A HELLO after the handshake closes it too. More than `max_msgs_per_sec` messages (token bucket, one second of burst)
//!   closes it as a flood.
//! - **Close**: after [`Session::close`] or any fatal input the session accepts nothing, keeps
//!   the first reason, and still yields what it queued before closing (the refusal or ERROR).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ofproto::consts::{OFPCML_NO_BUFFER, OFPMPF_REPLY_MORE};
use ofproto::{
    ErrorMsg, ErrorType, FeaturesReply, FlowRemoved, Hello, Message, MultipartReply,
    MultipartRequest, OfMessage, PacketIn, Port, PortReason, PortStatus, SwitchConfig, OFP_VERSION,
};

/// Tunables of a session. Times are durations; the session is told the current instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Send ECHO_REQUEST after this long without hearing from the switch.
    pub echo_interval: Duration,
    /// Declare the switch dead after this long without hearing from it.
    pub dead_after: Duration,
    /// The whole handshake (HELLO to PORT_DESC reply) must finish within this.
    pub handshake_timeout: Duration,
    /// A request without an answer by then completes with [`RequestError::Timeout`].
    pub request_timeout: Duration,
    /// Messages per second a switch may send (burst: one second's worth); more closes the
    /// session as a flood. 0 disables the limit.
    pub max_msgs_per_sec: u32,
    /// Parts of one multipart reply accepted before the request fails as too large.
    pub max_multipart_parts: usize,
    /// Ports a switch's port table holds at most: a PORT_DESC reply with more closes the
    /// handshake, a PORT_STATUS for a new port beyond it is refused (counted, logged once).
    pub max_ports: usize,
}

/// OpenFlow's `OFPP_MAX` in the 16-bit port space OVS uses (0xff00): no switch has more ports.
pub const MAX_PORTS: usize = 0xff00;

impl Default for Config {
    fn default() -> Self {
        Self {
            echo_interval: Duration::from_secs(5),
            dead_after: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_msgs_per_sec: 500_000,
            max_multipart_parts: 4096,
            max_ports: MAX_PORTS,
        }
    }
}

/// Why a session ended. Its `Display` is the log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The switch closed the TCP connection.
    #[error("switch closed the connection")]
    PeerClosed,
    /// The switch does not speak OpenFlow 1.3; it got HELLO_FAILED/INCOMPATIBLE.
    #[error("switch does not support OpenFlow 1.3 (its HELLO had version {version:#04x})")]
    Incompatible {
        /// The version in the switch's HELLO header.
        version: u8,
    },
    /// Nothing heard for `dead_after`, echo requests included.
    #[error("switch silent for {0:?}: dead peer")]
    DeadPeer(Duration),
    /// The handshake did not finish in time.
    #[error("handshake not finished within {0:?}")]
    HandshakeTimeout(Duration),
    /// Bytes that are not an OpenFlow 1.3 message (garbage, absurd length, wrong version), or
    /// a bad first message or handshake reply: the codec's error.
    #[error("malformed message: {0}")]
    Malformed(ofproto::Error),
    /// More messages per second than allowed.
    #[error("message flood: more than {0} messages/s")]
    Flood(u32),
    /// A well-formed message that breaks the protocol where it arrived.
    #[error("protocol violation: {0}")]
    Protocol(PeerMisbehaved),
    /// The switch answered a handshake request with this ERROR.
    #[error("switch refused the handshake: {0}")]
    HandshakeRefused(ErrorType),
    /// The same datapath connected again; the newer session wins.
    #[error("replaced by a newer connection from the same datapath")]
    Replaced,
    /// The app's output for this switch did not fit its queue: rather than lose part of a
    /// batch (a dropped flow DELETE would leave a forbidden flow in place), the session closes
    /// and the switch's reconnect starts from scratch.
    #[error("resync: app output did not fit the switch's queue")]
    Resync,
    /// The controller is shutting down.
    #[error("controller shutting down")]
    Shutdown,
    /// Reading or writing the socket failed.
    #[error("I/O error: {0}")]
    Io(std::io::ErrorKind),
    /// Over TLS, the datapath id is not the certificate holder's to claim (another host's
    /// br-int, or a datapath connected now under another certificate).
    #[error("refused: {0}")]
    Unauthorized(String),
}

/// One variant per protocol violation that ends a session (as rustls's `PeerMisbehaved`), so
/// tests and logs name exactly what the switch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// The first message was not a HELLO.
    #[error("expected HELLO, got {got}")]
    ExpectedHello {
        /// The message's name.
        got: &'static str,
    },
    /// The FEATURES_REPLY names an auxiliary connection, which we do not support.
    #[error("auxiliary connection {id} not supported")]
    AuxiliaryConnection {
        /// Its auxiliary id.
        id: u8,
    },
    /// The PORT_DESC request was answered with another multipart type.
    #[error("PORT_DESC request answered with another multipart type")]
    PortDescWrongType,
    /// The PORT_DESC reply went on past `max_multipart_parts * 64` ports.
    #[error("PORT_DESC reply too large")]
    PortDescTooLarge,
    /// A HELLO once the handshake was done.
    #[error("HELLO after the handshake")]
    HelloAfterHandshake,
}

/// The answer to a request made through [`Ready::request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A single reply message (BARRIER_REPLY, ECHO_REPLY, GET_CONFIG_REPLY, ROLE_REPLY, …).
    Message(Message),
    /// Every part of a multipart reply, in arrival order, the last one without `MORE`.
    Multipart(Vec<MultipartReply>),
    /// A message that has no reply (FLOW_MOD, PACKET_OUT, …) was applied without error: the
    /// barrier sent right behind it was answered first.
    Done,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The switch answered with an ERROR carrying this request's xid.
    #[error("switch error: {}", .0.kind)]
    Switch(ErrorMsg),
    /// No answer within the request timeout.
    #[error("no answer from the switch in time")]
    Timeout,
    /// The multipart reply had more parts than allowed.
    #[error("multipart reply too large")]
    TooLarge,
    /// The session ended before the answer came.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The switch's answer does not decode; the session goes on.
    #[error("the switch's reply does not decode: {0}")]
    BadReply(ofproto::Error),
    /// The switch's connection was already gone when the request was made.
    #[error("switch disconnected")]
    Gone,
    /// The switch answered with a message that is no answer to this request (a non-multipart
    /// message to a multipart request); the session goes on.
    #[error("the switch answered with {got}")]
    UnexpectedReply {
        /// The answer's message name.
        got: &'static str,
    },
    /// The request cannot be put on the wire (longer than an OpenFlow message can be); nothing
    /// was sent.
    #[error("cannot be sent: {0}")]
    Unencodable(ofproto::Error),
}

/// What the rest of the controller must learn from the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Handshake done: the switch is identified and configured.
    Ready {
        /// The FEATURES_REPLY (datapath id inside).
        features: FeaturesReply,
        /// The ports from PORT_DESC.
        ports: Vec<Port>,
    },
    /// A PACKET_IN.
    PacketIn(PacketIn),
    /// A PORT_STATUS; the session's port table is already updated.
    PortStatus(PortStatus),
    /// A FLOW_REMOVED.
    FlowRemoved(FlowRemoved),
    /// The outcome of the request that was sent with this xid.
    Response {
        /// The request's xid, as returned by [`Ready::request`].
        xid: u32,
        /// Its outcome.
        result: Result<Reply, RequestError>,
    },
    /// An ERROR for a message nobody waits for (sent with [`Ready::send`]).
    UnsolicitedError {
        /// The xid of the failing message.
        xid: u32,
        /// The error.
        error: ErrorMsg,
    },
}

/// Waiting for the switch's HELLO (ours is already queued).
#[derive(Debug)]
struct ExpectHello;

/// Waiting for the FEATURES_REPLY to our FEATURES_REQUEST.
#[derive(Debug)]
struct ExpectFeaturesReply {
    xid: u32,
}

/// Waiting for (every part of) the PORT_DESC reply.
#[derive(Debug)]
struct ExpectPortDesc {
    xid: u32,
    features: FeaturesReply,
    ports: Vec<Port>,
}

/// The switch is identified: only this state knows the datapath id.
#[derive(Debug)]
struct ReadyState {
    features: FeaturesReply,
    ports: BTreeMap<u32, Port>,
}

#[derive(Debug)]
enum State {
    ExpectHello(ExpectHello),
    ExpectFeaturesReply(ExpectFeaturesReply),
    ExpectPortDesc(ExpectPortDesc),
    Ready(ReadyState),
    Closed(CloseReason),
}

#[derive(Debug)]
enum Pending {
    /// Completes with the first message carrying the xid.
    Reply,
    /// Collects parts until one comes without `MORE`.
    Multipart(Vec<MultipartReply>),
    /// A message without a reply; the barrier `barrier` behind it confirms it.
    ConfirmedBy { barrier: u32 },
    /// A barrier; `confirms` is the request it was sent for, if it was not asked for itself.
    Barrier { confirms: Option<u32> },
}

#[derive(Debug)]
struct PendingRequest {
    kind: Pending,
    deadline: Instant,
}

/// Everything but the handshake state: queues, xids, timers.
#[derive(Debug)]
struct Core {
    config: Config,
    next_xid: u32,
    /// Messages to write, already encoded: a message is encoded when it is queued, so one too
    /// long for the wire is refused to whoever made it instead of failing where it is written,
    /// and it is never moved again as a value.
    outbox: BytesMut,
    outbox_msgs: u64,
    events: VecDeque<SessionEvent>,
    pending: HashMap<u32, PendingRequest>,
    last_rx: Instant,
    echo_outstanding: Option<u32>,
    handshake_deadline: Instant,
    tokens: f64,
    tokens_at: Instant,
    /// PORT_STATUS messages for new ports refused because the port table was full.
    ports_refused: u64,
}

impl Core {
    /// A fresh xid: never 0 (reads as "unset" in captures) and never one still pending, so a
    /// late reply cannot complete the wrong request after the counter wraps.
    fn alloc_xid(&mut self) -> u32 {
        loop {
            let xid = self.next_xid;
            self.next_xid = self.next_xid.wrapping_add(1).max(1);
            if !self.pending.contains_key(&xid) && Some(xid) != self.echo_outstanding {
                return xid;
            }
        }
    }

    /// Encodes `body` with a fresh xid; fails (queueing nothing) if it does not fit a message.
    fn queue(&mut self, body: Message) -> Result<u32, ofproto::Error> {
        let xid = self.alloc_xid();
        self.push(OfMessage::new(xid, body))?;
        Ok(xid)
    }

    /// `queue` for the session's own messages, whose size is bounded by construction (HELLO,
    /// FEATURES_REQUEST, ECHO, BARRIER, …).
    fn queue_own(&mut self, body: Message) -> u32 {
        let xid = self.alloc_xid();
        self.push_own(OfMessage::new(xid, body));
        xid
    }

    fn push(&mut self, msg: OfMessage) -> Result<(), ofproto::Error> {
        msg.try_emit(&mut self.outbox)?;
        self.outbox_msgs += 1;
        Ok(())
    }

    fn push_own(&mut self, msg: OfMessage) {
        let pushed = self.push(msg);
        debug_assert!(pushed.is_ok(), "session message too long: {pushed:?}");
    }

    fn respond(&mut self, xid: u32, result: Result<Reply, RequestError>) {
        self.events
            .push_back(SessionEvent::Response { xid, result });
    }

    /// Takes one token from the flood bucket; `false` when empty.
    fn admit(&mut self, now: Instant) -> bool {
        let rate = self.config.max_msgs_per_sec;
        if rate == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.tokens_at).as_secs_f64();
        self.tokens_at = now;
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(rate));
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Fails the request waiting for `xid` (and the barrier sent on its behalf) with `error`.
    /// Returns whether one was waiting.
    fn fail(&mut self, xid: u32, error: RequestError) -> bool {
        let Some(pending) = self.pending.remove(&xid) else {
            return false;
        };
        match pending.kind {
            Pending::ConfirmedBy { barrier } => {
                self.pending.remove(&barrier);
                self.respond(xid, Err(error));
            }
            Pending::Barrier {
                confirms: Some(req),
            } => {
                self.pending.remove(&req);
                self.respond(req, Err(error));
            }
            _ => self.respond(xid, Err(error)),
        }
        true
    }

    /// Routes a reply or an error to the request waiting for its xid. Returns the message back
    /// when nobody waits for that xid.
    fn correlate(&mut self, xid: u32, body: Message) -> Option<Message> {
        let body = match body {
            Message::Error(error) if self.pending.contains_key(&xid) => {
                self.fail(xid, RequestError::Switch(error));
                return None;
            }
            body => body,
        };
        let Some(pending) = self.pending.remove(&xid) else {
            return Some(body);
        };
        match pending.kind {
            Pending::Multipart(mut parts) => {
                let Message::MultipartReply(part) = body else {
                    let got = body.name();
                    self.respond(xid, Err(RequestError::UnexpectedReply { got }));
                    return None;
                };
                let more = part.flags & OFPMPF_REPLY_MORE != 0;
                parts.push(part);
                if !more {
                    self.respond(xid, Ok(Reply::Multipart(parts)));
                } else if parts.len() >= self.config.max_multipart_parts {
                    self.respond(xid, Err(RequestError::TooLarge));
                } else {
                    self.pending.insert(
                        xid,
                        PendingRequest {
                            kind: Pending::Multipart(parts),
                            deadline: pending.deadline,
                        },
                    );
                }
            }
            Pending::Barrier {
                confirms: Some(req),
            } => {
                if self.pending.remove(&req).is_some() {
                    self.respond(req, Ok(Reply::Done));
                }
            }
            Pending::Reply | Pending::Barrier { confirms: None } | Pending::ConfirmedBy { .. } => {
                self.respond(xid, Ok(Reply::Message(body)));
            }
        }
        None
    }
}

/// One switch connection's protocol state. See the module doc for the calling order.
#[derive(Debug)]
pub struct Session {
    state: State,
    core: Core,
}

impl Session {
    /// A new session at `now`; our HELLO (version bitmap: 1.3) is already queued.
    pub fn new(now: Instant, config: Config) -> Self {
        let mut core = Core {
            handshake_deadline: now + config.handshake_timeout,
            tokens: f64::from(config.max_msgs_per_sec),
            tokens_at: now,
            config,
            next_xid: 1,
            outbox: BytesMut::new(),
            outbox_msgs: 0,
            events: VecDeque::new(),
            pending: HashMap::new(),
            last_rx: now,
            echo_outstanding: None,
            ports_refused: 0,
        };
        core.queue_own(Message::Hello(Hello::of13()));
        Self {
            state: State::ExpectHello(ExpectHello),
            core,
        }
    }

    /// Feeds one whole message received at `now`.
    pub fn handle_message(&mut self, now: Instant, msg: OfMessage) {
        if self.is_closed() {
            return;
        }
        if !self.core.admit(now) {
            let rate = self.core.config.max_msgs_per_sec;
            self.close(CloseReason::Flood(rate));
            return;
        }
        self.core.last_rx = now;
        // Keepalive is answered in every state: a switch may probe us mid-handshake.
        let msg = match msg.body {
            Message::EchoRequest(data) => {
                // The reply is the request's size with another type: it always fits.
                self.core
                    .push_own(OfMessage::new(msg.xid, Message::EchoReply(data)));
                return;
            }
            Message::EchoReply(_) if self.core.echo_outstanding == Some(msg.xid) => {
                self.core.echo_outstanding = None;
                return;
            }
            _ => msg,
        };
        let state = std::mem::replace(&mut self.state, State::Closed(CloseReason::Shutdown));
        let next = match state {
            State::ExpectHello(s) => s.handle(&mut self.core, msg),
            State::ExpectFeaturesReply(s) => s.handle(&mut self.core, msg),
            State::ExpectPortDesc(s) => s.handle(&mut self.core, msg),
            State::Ready(s) => s.handle(&mut self.core, msg),
            State::Closed(reason) => Ok(State::Closed(reason)),
        };
        match next {
            Ok(state) => self.state = state,
            Err(reason) => self.finish(reason),
        }
    }

    /// Bytes that could not be decoded. `raw` is whatever of the bad message is buffered,
    /// possibly nothing.
    ///
    /// Only errors that leave the stream unusable close the session: a header whose length
    /// cannot be trusted ([`ofproto::Error::is_fatal`]), a version other than 1.3, and anything
    /// before the handshake is done that answers it (or comes first). Those get the ERROR the
    /// codec names (type/code, the first 64 bytes, the message's xid) before closing. Otherwise
    /// one message was consumed whole and the session goes on: if its xid names a pending
    /// request, that request alone fails with [`RequestError::BadReply`] (nothing is sent: the
    /// switch cannot act on an error about its own reply); any other message gets the ERROR the
    /// codec names, as a switch answers a controller's bad request.
    pub fn handle_malformed(&mut self, now: Instant, error: &ofproto::Error, raw: &[u8]) {
        if self.is_closed() {
            return;
        }
        let xid = raw
            .get(4..8)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        // Header-level errors leave nothing to resynchronise on; before `Ready`, a bad first
        // message or a bad answer to a handshake request leaves the handshake nowhere to go.
        let fatal = error.is_fatal()
            || matches!(error, ofproto::Error::BadVersion { .. })
            || match &self.state {
                State::ExpectHello(_) => true,
                State::ExpectFeaturesReply(s) => s.xid == xid,
                State::ExpectPortDesc(s) => s.xid == xid,
                State::Ready(_) | State::Closed(_) => false,
            };
        if !fatal {
            // A whole message: it counts like any other against the flood limit and as a sign
            // of life.
            if !self.core.admit(now) {
                let rate = self.core.config.max_msgs_per_sec;
                self.close(CloseReason::Flood(rate));
                return;
            }
            self.core.last_rx = now;
            if self.core.fail(xid, RequestError::BadReply(error.clone())) {
                return;
            }
        }
        if let Some(kind) = error.ofp_error() {
            // `for_request` keeps at most 64 bytes of `raw`.
            self.core.push_own(OfMessage::new(
                xid,
                Message::Error(ErrorMsg::for_request(kind, raw)),
            ));
        }
        if fatal {
            self.close(CloseReason::Malformed(error.clone()));
        }
    }

    /// Advances timers to `now`: echo keepalive, dead peer, handshake and request deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        let idle = now.saturating_duration_since(self.core.last_rx);
        if idle >= self.core.config.dead_after {
            self.close(CloseReason::DeadPeer(idle));
            return;
        }
        if !matches!(self.state, State::Ready(_)) && now >= self.core.handshake_deadline {
            let limit = self.core.config.handshake_timeout;
            self.close(CloseReason::HandshakeTimeout(limit));
            return;
        }
        if self.core.echo_outstanding.is_none() && idle >= self.core.config.echo_interval {
            let xid = self
                .core
                .queue_own(Message::EchoRequest(bytes::Bytes::new()));
            self.core.echo_outstanding = Some(xid);
        }
        let expired: Vec<u32> = self
            .core
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(xid, _)| *xid)
            .collect();
        for xid in expired {
            match self.core.pending.remove(&xid).map(|p| p.kind) {
                // A barrier sent on someone's behalf expires with (and reports through) them.
                Some(Pending::Barrier { confirms: Some(_) }) | None => {}
                Some(Pending::ConfirmedBy { barrier }) => {
                    self.core.pending.remove(&barrier);
                    self.core.respond(xid, Err(RequestError::Timeout));
                }
                Some(_) => self.core.respond(xid, Err(RequestError::Timeout)),
            }
        }
    }

    /// The next instant `handle_timeout` must be called at, or `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let c = &self.core;
        let mut next = c.last_rx + c.config.dead_after;
        if c.echo_outstanding.is_none() {
            next = next.min(c.last_rx + c.config.echo_interval);
        }
        if !matches!(self.state, State::Ready(_)) {
            next = next.min(c.handshake_deadline);
        }
        c.pending
            .values()
            .map(|p| p.deadline)
            .fold(next, Instant::min)
            .into()
    }

    /// The next queued message, decoded back from the outbox: how the tests see what would be
    /// written. The driver takes the bytes themselves with [`Session::transmit_into`].
    #[cfg(test)]
    pub(crate) fn poll_transmit(&mut self) -> Option<OfMessage> {
        let outbox = &mut self.core.outbox;
        let len = usize::from(u16::from_be_bytes([*outbox.get(2)?, *outbox.get(3)?]));
        let bytes = outbox.split_to(len.min(outbox.len())).freeze();
        self.core.outbox_msgs = self.core.outbox_msgs.saturating_sub(1);
        // We encoded it: it decodes, unless the codec is broken, which tests must see.
        OfMessage::parse_bytes(bytes).ok()
    }

    /// Moves every queued message, encoded, to the end of `out`; returns how many there were.
    /// Keep writing what this gives even after the session closed: a refusal (HELLO_FAILED, an
    /// ERROR for garbage) is queued just before closing.
    pub fn transmit_into(&mut self, out: &mut BytesMut) -> u64 {
        let core = &mut self.core;
        if out.is_empty() {
            // The common case: hand the encoded bytes over without copying them.
            std::mem::swap(out, &mut core.outbox);
        } else {
            out.extend_from_slice(&core.outbox);
            core.outbox.clear();
        }
        std::mem::take(&mut core.outbox_msgs)
    }

    /// The next event for the controller.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.core.events.pop_front()
    }

    /// Ends the session: every pending request completes with [`RequestError::Closed`].
    /// Closing twice keeps the first reason.
    pub fn close(&mut self, reason: CloseReason) {
        if !self.is_closed() {
            self.finish(reason);
        }
    }

    fn finish(&mut self, reason: CloseReason) {
        let mut xids: Vec<u32> = self
            .core
            .pending
            .drain()
            .filter(|(_, p)| !matches!(p.kind, Pending::Barrier { confirms: Some(_) }))
            .map(|(xid, _)| xid)
            .collect();
        xids.sort_unstable();
        for xid in xids {
            self.core
                .respond(xid, Err(RequestError::Closed(reason.clone())));
        }
        self.state = State::Closed(reason);
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.state {
            State::Closed(r) => Some(r),
            _ => None,
        }
    }

    /// The datapath id, once the handshake is done (and until the session closes).
    pub fn datapath_id(&self) -> Option<u64> {
        match &self.state {
            State::Ready(r) => Some(r.features.datapath_id),
            _ => None,
        }
    }

    /// The send side, available only in `Ready`.
    pub fn ready(&mut self, now: Instant) -> Option<Ready<'_>> {
        match &mut self.state {
            State::Ready(state) => Some(Ready {
                core: &mut self.core,
                state,
                now,
            }),
            _ => None,
        }
    }

    /// PORT_STATUS messages for new ports refused because the port table held `max_ports`.
    pub fn ports_refused(&self) -> u64 {
        self.core.ports_refused
    }

    /// Requests still waiting for an answer (barriers sent on someone's behalf included).
    pub fn pending_requests(&self) -> usize {
        self.core.pending.len()
    }
}

/// Sending to an identified switch: a borrow of a `Ready` session.
pub struct Ready<'a> {
    core: &'a mut Core,
    state: &'a mut ReadyState,
    now: Instant,
}

impl Ready<'_> {
    /// The datapath id.
    pub fn datapath_id(&self) -> u64 {
        self.state.features.datapath_id
    }

    /// The FEATURES_REPLY of the handshake.
    pub fn features(&self) -> &FeaturesReply {
        &self.state.features
    }

    /// The port table: PORT_DESC, kept current by PORT_STATUS.
    pub fn ports(&self) -> impl Iterator<Item = &Port> {
        self.state.ports.values()
    }

    /// Queues a message nobody waits for; returns its xid. An ERROR for it comes out as
    /// [`SessionEvent::UnsolicitedError`]. A message too long for the wire (over 65 535 bytes
    /// encoded) is refused and nothing is queued.
    pub fn send(&mut self, body: Message) -> Result<u32, ofproto::Error> {
        self.core.queue(body)
    }

    /// Queues a request; its outcome comes out as [`SessionEvent::Response`] with the returned
    /// xid. Multipart replies are reassembled across `MORE`; a message that has no reply is
    /// followed by a BARRIER_REQUEST, so the answer is [`Reply::Done`] once the switch applied
    /// it, or the ERROR it caused.
    pub fn request(&mut self, body: Message) -> u32 {
        let deadline = self.now + self.core.config.request_timeout;
        let kind = match &body {
            Message::MultipartRequest(_) => Pending::Multipart(Vec::new()),
            Message::BarrierRequest => Pending::Barrier { confirms: None },
            m if has_reply(m) => Pending::Reply,
            _ => {
                let xid = self.core.alloc_xid();
                if let Err(e) = self.core.push(OfMessage::new(xid, body)) {
                    return self.refuse(xid, e);
                }
                let barrier = self.core.queue_own(Message::BarrierRequest);
                self.core.pending.insert(
                    xid,
                    PendingRequest {
                        kind: Pending::ConfirmedBy { barrier },
                        deadline,
                    },
                );
                self.core.pending.insert(
                    barrier,
                    PendingRequest {
                        kind: Pending::Barrier {
                            confirms: Some(xid),
                        },
                        deadline,
                    },
                );
                return xid;
            }
        };
        let xid = self.core.alloc_xid();
        if let Err(e) = self.core.push(OfMessage::new(xid, body)) {
            return self.refuse(xid, e);
        }
        self.core
            .pending
            .insert(xid, PendingRequest { kind, deadline });
        xid
    }

    /// Completes a request that could not be encoded at once (its xid was never sent), so it
    /// still completes exactly once.
    fn refuse(&mut self, xid: u32, error: ofproto::Error) -> u32 {
        self.core
            .respond(xid, Err(RequestError::Unencodable(error)));
        xid
    }

    /// Queues a BARRIER_REQUEST; its [`SessionEvent::Response`] means the switch has processed
    /// every message queued before it.
    pub fn barrier(&mut self) -> u32 {
        self.request(Message::BarrierRequest)
    }
}

/// Whether the switch answers this controller-to-switch message with a message of its own.
fn has_reply(m: &Message) -> bool {
    matches!(
        m,
        Message::EchoRequest(_)
            | Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::MultipartRequest(_)
            | Message::BarrierRequest
            | Message::QueueGetConfigRequest(_)
            | Message::RoleRequest(_)
            | Message::GetAsyncRequest
    )
}

/// Whether a switch sends this only in answer to a request (so its xid names that request).
fn is_reply(m: &Message) -> bool {
    matches!(
        m,
        Message::Error(_)
            | Message::EchoReply(_)
            | Message::FeaturesReply(_)
            | Message::GetConfigReply(_)
            | Message::MultipartReply(_)
            | Message::BarrierReply
            | Message::QueueGetConfigReply(_)
            | Message::RoleReply(_)
            | Message::GetAsyncReply(_)
            | Message::Experimenter(_)
    )
}

fn hello_failed() -> ErrorType {
    ErrorType::HelloFailed(ofproto::error::HelloFailedCode::Incompatible)
}

impl ExpectHello {
    fn handle(self, core: &mut Core, msg: OfMessage) -> Result<State, CloseReason> {
        match msg.body {
            Message::Hello(hello) if hello.supports(msg.version, OFP_VERSION) => {
                let xid = core.queue_own(Message::FeaturesRequest);
                Ok(State::ExpectFeaturesReply(ExpectFeaturesReply { xid }))
            }
            Message::Hello(_) => {
                core.push_own(OfMessage::new(
                    msg.xid,
                    Message::Error(ErrorMsg {
                        kind: hello_failed(),
                        data: bytes::Bytes::from_static(
                            b"this controller speaks OpenFlow 1.3 only",
                        ),
                    }),
                ));
                Err(CloseReason::Incompatible {
                    version: msg.version,
                })
            }
            Message::Error(e) => Err(CloseReason::HandshakeRefused(e.kind)),
            other => Err(CloseReason::Protocol(PeerMisbehaved::ExpectedHello {
                got: other.name(),
            })),
        }
    }
}

impl ExpectFeaturesReply {
    fn handle(self, core: &mut Core, msg: OfMessage) -> Result<State, CloseReason> {
        match msg.body {
            Message::FeaturesReply(features) if msg.xid == self.xid => {
                if features.auxiliary_id != 0 {
                    return Err(CloseReason::Protocol(PeerMisbehaved::AuxiliaryConnection {
                        id: features.auxiliary_id,
                    }));
                }
                // Whole frames in packet-ins: apps never depend on switch buffers.
                core.queue_own(Message::SetConfig(SwitchConfig {
                    flags: 0,
                    miss_send_len: OFPCML_NO_BUFFER,
                }));
                let xid = core.queue_own(Message::MultipartRequest(port_desc_request()));
                Ok(State::ExpectPortDesc(ExpectPortDesc {
                    xid,
                    features,
                    ports: Vec::new(),
                }))
            }
            Message::Error(e) => Err(CloseReason::HandshakeRefused(e.kind)),
            other => {
                tracing::debug!(msg = other.name(), "ignored before FEATURES_REPLY");
                Ok(State::ExpectFeaturesReply(self))
            }
        }
    }
}

impl ExpectPortDesc {
    fn handle(mut self, core: &mut Core, msg: OfMessage) -> Result<State, CloseReason> {
        match msg.body {
            Message::MultipartReply(reply) if msg.xid == self.xid => {
                let more = reply.flags & OFPMPF_REPLY_MORE != 0;
                match port_desc_ports(reply) {
                    Some(ports) => self.ports.extend(ports),
                    None => return Err(CloseReason::Protocol(PeerMisbehaved::PortDescWrongType)),
                }
                if self.ports.len() > core.config.max_ports {
                    return Err(CloseReason::Protocol(PeerMisbehaved::PortDescTooLarge));
                }
                if more {
                    return Ok(State::ExpectPortDesc(self));
                }
                core.events.push_back(SessionEvent::Ready {
                    features: self.features,
                    ports: self.ports.clone(),
                });
                Ok(State::Ready(ReadyState {
                    features: self.features,
                    ports: self.ports.into_iter().map(|p| (p.port_no, p)).collect(),
                }))
            }
            Message::Error(e) if msg.xid == self.xid => Err(CloseReason::HandshakeRefused(e.kind)),
            // Async messages may race the reply; nothing can act on them before `Ready`.
            other => {
                tracing::debug!(msg = other.name(), "ignored before PORT_DESC reply");
                Ok(State::ExpectPortDesc(self))
            }
        }
    }
}

impl ReadyState {
    fn handle(mut self, core: &mut Core, msg: OfMessage) -> Result<State, CloseReason> {
        match msg.body {
            Message::PacketIn(p) => core.events.push_back(SessionEvent::PacketIn(p)),
            Message::FlowRemoved(f) => core.events.push_back(SessionEvent::FlowRemoved(f)),
            Message::PortStatus(status) => {
                let port_no = status.desc.port_no;
                match status.reason {
                    PortReason::Delete => {
                        self.ports.remove(&port_no);
                    }
                    _ if self.ports.len() < core.config.max_ports
                        || self.ports.contains_key(&port_no) =>
                    {
                        self.ports.insert(port_no, status.desc.clone());
                    }
                    _ => {
                        // A switch cannot have more ports than OpenFlow numbers: one announcing
                        // more would grow the table without bound. Refused, and not passed on,
                        // so the app's per-port state stays bounded too.
                        core.ports_refused += 1;
                        if core.ports_refused == 1 {
                            tracing::warn!(
                                port_no,
                                max_ports = core.config.max_ports,
                                "port table full: PORT_STATUS for new ports refused (logged once, counted)"
                            );
                        }
                        return Ok(State::Ready(self));
                    }
                }
                core.events.push_back(SessionEvent::PortStatus(status));
            }
            Message::Hello(_) => {
                return Err(CloseReason::Protocol(PeerMisbehaved::HelloAfterHandshake))
            }
            body if !is_reply(&body) => {
                // Controller-to-switch messages coming the wrong way: nothing to do with them,
                // and never allowed to complete a request that happens to share their xid.
                tracing::debug!(
                    xid = msg.xid,
                    msg = body.name(),
                    "unexpected message ignored"
                );
            }
            body => match core.correlate(msg.xid, body) {
                None => {}
                Some(Message::Error(error)) => {
                    core.events.push_back(SessionEvent::UnsolicitedError {
                        xid: msg.xid,
                        error,
                    })
                }
                Some(other) => {
                    tracing::debug!(
                        xid = msg.xid,
                        msg = other.name(),
                        "message for no pending request ignored"
                    )
                }
            },
        }
        Ok(State::Ready(self))
    }
}

fn port_desc_request() -> MultipartRequest {
    MultipartRequest {
        flags: 0,
        body: ofproto::MultipartRequestBody::PortDesc,
    }
}

fn port_desc_ports(reply: MultipartReply) -> Option<Vec<Port>> {
    match reply.body {
        ofproto::MultipartReplyBody::PortDesc(ports) => Some(ports),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
