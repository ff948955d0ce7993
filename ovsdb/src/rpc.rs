//! The JSON-RPC session as a sans-IO state machine: request ids and their replies, answering
//! the server's `echo`, our own echo keepalive, request timeouts.
//!
//! Bytes go in with [`Session::handle_input`]; bytes to send come out of
//! [`Session::poll_transmit`]; replies and notifications come out of [`Session::poll_event`].
//! Time is always an argument: call [`Session::handle_timeout`] at [`Session::poll_timeout`].
//! After any call, drain `poll_transmit` then `poll_event`. An `Err` from `handle_input` or
//! `handle_timeout` is fatal: close the connection.
//!
//! Timers judge the peer, so they count only time in which the peer could have been heard: a
//! driver that stops reading for its own reasons (its consumer is behind) says so with
//! [`Session::hold_input`], and the keepalive and request deadlines stand still meanwhile
//! (ovsdb-server itself reads no request while it has output we have not taken, so an answer
//! cannot be expected then). A driver should also feed every input already readable before
//! it calls [`Session::handle_timeout`]: a late task that finds a reply and a past deadline at
//! once must not take the reply for a timeout.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::error::{Error, Result};
use crate::framing::{Decoder, DEFAULT_MAX_MESSAGE};
use crate::ops::Operation;

/// Tunables of a session.
#[derive(Debug, Clone)]
pub struct Config {
    /// Cap on one received message.
    pub max_message: usize,
    /// Idle time after which we send an echo; as long again without any input and the peer is
    /// dead. `None` disables the keepalive.
    pub echo_interval: Option<Duration>,
    /// How long a request may wait for its reply.
    pub request_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message: DEFAULT_MAX_MESSAGE,
            echo_interval: Some(Duration::from_secs(5)),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Identifies a request we sent.
pub type RequestId = u64;

/// What the session yields.
#[derive(Debug)]
pub enum Event {
    /// The reply to a request: its `result`, or the error (an `error` member, a timeout).
    Reply {
        /// Which request.
        id: RequestId,
        /// The outcome.
        result: Result<Json>,
    },
    /// A server notification: `update`, `update2`, `update3`, `locked`, `stolen`.
    Notification {
        /// The method.
        method: String,
        /// Its params.
        params: Json,
    },
}

#[derive(Debug)]
struct Pending {
    method: String,
    deadline: Instant,
}

/// One JSON-RPC session.
#[derive(Debug)]
pub struct Session {
    config: Config,
    decoder: Decoder,
    next_id: RequestId,
    pending: HashMap<RequestId, Pending>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    last_rx: Instant,
    /// Our outstanding keepalive echo and when it was sent.
    probe: Option<(RequestId, Instant)>,
    /// Since when the driver has held input back (see [`Session::hold_input`]).
    held_since: Option<Instant>,
}

impl Session {
    /// A fresh session; `now` starts the idle clock.
    pub fn new(config: Config, now: Instant) -> Self {
        Session {
            decoder: Decoder::new(config.max_message),
            config,
            next_id: 1,
            pending: HashMap::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            last_rx: now,
            probe: None,
            held_since: None,
        }
    }

    /// Whether the driver holds input back for reasons of its own (a consumer that is behind),
    /// from `now` on. Meanwhile no timer fires; on release, the time held is added to every
    /// request's deadline and to the keepalive's clock, so the peer is judged only on time in
    /// which it could have been heard.
    pub fn hold_input(&mut self, held: bool, now: Instant) {
        match (held, self.held_since) {
            (true, None) => self.held_since = Some(now),
            (false, Some(since)) => {
                self.held_since = None;
                let held_for = now.saturating_duration_since(since);
                for p in self.pending.values_mut() {
                    p.deadline += held_for;
                }
                self.last_rx += held_for;
                if let Some((_, sent)) = &mut self.probe {
                    *sent += held_for;
                }
            }
            _ => {}
        }
    }

    /// Sends a request; its reply comes back as [`Event::Reply`] with the returned id.
    pub fn request(&mut self, method: &str, params: Json, now: Instant) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"method": method, "params": params, "id": id}));
        self.pending.insert(
            id,
            Pending {
                method: method.to_string(),
                deadline: now + self.config.request_timeout,
            },
        );
        id
    }

    /// Sends a built [`Request`].
    pub fn send_request(&mut self, req: Request, now: Instant) -> RequestId {
        self.request(req.method, req.params, now)
    }

    /// `cancel`: asks the server to abandon an outstanding request (a blocked `wait`). The
    /// request completes at once with [`Error::Cancelled`]: ovsdb-server 3.1 sends no reply
    /// to a cancelled request, and a late one is ignored.
    pub fn cancel(&mut self, id: RequestId) {
        self.send(&json!({"method": "cancel", "params": [id], "id": null}));
        if self.pending.remove(&id).is_some() {
            self.events.push_back(Event::Reply {
                id,
                result: Err(Error::Cancelled),
            });
        }
    }

    fn echo(&mut self, params: Json, now: Instant) -> RequestId {
        self.request("echo", params, now)
    }

    fn send(&mut self, msg: &Json) {
        // Serializing a `serde_json::Value` cannot fail (its map keys are strings).
        let bytes = serde_json::to_vec(msg).unwrap_or_default();
        self.transmit.push_back(bytes);
    }

    /// Changes the cap on one received message (raised once a peer identified itself).
    pub fn set_max_message(&mut self, max: usize) {
        self.config.max_message = max;
        self.decoder.set_max(max);
    }

    /// Feeds received bytes.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<()> {
        self.last_rx = now;
        self.probe = None;
        self.decoder.feed(data);
        while let Some(msg) = self.decoder.decode()? {
            self.handle_message(msg)?;
        }
        Ok(())
    }

    fn handle_message(&mut self, msg: Json) -> Result<()> {
        let Some(obj) = msg.as_object() else {
            return Err(Error::InvalidMessage(format!("not an object: {msg}")));
        };
        let id = obj.get("id").cloned().unwrap_or(Json::Null);
        if let Some(method) = obj.get("method") {
            let method = method
                .as_str()
                .ok_or_else(|| Error::InvalidMessage(format!("method {method}")))?;
            let params = obj.get("params").cloned().unwrap_or(json!([]));
            if id.is_null() {
                self.events.push_back(Event::Notification {
                    method: method.to_string(),
                    params,
                });
            } else if method == "echo" {
                self.send(&json!({"result": params, "error": null, "id": id}));
            } else {
                self.send(&json!({"result": null, "error": "unknown method", "id": id}));
            }
            return Ok(());
        }
        if !obj.contains_key("result") && !obj.contains_key("error") {
            return Err(Error::InvalidMessage(format!(
                "neither request nor reply: {msg}"
            )));
        }
        let Some(id) = id.as_u64() else {
            // Not one of our ids: ignore it, as ovsdb-server ignores replies it did not expect.
            tracing::debug!(%id, "reply with a foreign id");
            return Ok(());
        };
        if self.probe.is_some_and(|(p, _)| p == id) {
            self.probe = None;
        }
        let Some(pending) = self.pending.remove(&id) else {
            return Ok(());
        };
        let error = obj.get("error").cloned().unwrap_or(Json::Null);
        let result = if error.is_null() {
            Ok(obj.get("result").cloned().unwrap_or(Json::Null))
        } else {
            Err(Error::Rpc {
                method: pending.method,
                error,
            })
        };
        self.events.push_back(Event::Reply { id, result });
        Ok(())
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next reply or notification.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must next be called (never while input is held).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.held_since.is_some() {
            return None;
        }
        let keepalive = self.config.echo_interval.map(|i| match self.probe {
            Some((_, sent)) => sent + i,
            None => self.last_rx + i,
        });
        self.pending
            .values()
            .map(|p| p.deadline)
            .chain(keepalive)
            .min()
    }

    /// Fires timers: request timeouts become [`Error::Timeout`] replies (and a `cancel` to the
    /// server); an unanswered keepalive is [`Error::PeerDead`]. Nothing fires while input is
    /// held ([`Session::hold_input`]).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        if self.held_since.is_some() {
            return Ok(());
        }
        let expired: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                if p.method == "transact" {
                    self.cancel(id);
                }
                self.events.push_back(Event::Reply {
                    id,
                    result: Err(Error::Timeout(p.method)),
                });
            }
        }
        if let Some(interval) = self.config.echo_interval {
            match self.probe {
                Some((_, sent)) if now >= sent + interval => return Err(Error::PeerDead),
                None if now >= self.last_rx + interval => {
                    let id = self.echo(json!(["strowger-keepalive"]), now);
                    self.probe = Some((id, now));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Requests still waiting for a reply.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// A method call: its name and params, built for each RFC 7047 method.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method.
    pub method: &'static str,
    /// Its params.
    pub params: Json,
}

impl Request {
    /// `list_dbs`
    pub fn list_dbs() -> Self {
        Request {
            method: "list_dbs",
            params: json!([]),
        }
    }

    /// `get_schema`
    pub fn get_schema(db: &str) -> Self {
        Request {
            method: "get_schema",
            params: json!([db]),
        }
    }

    /// `transact`
    pub fn transact(db: &str, ops: &[Operation]) -> Self {
        let mut params = vec![json!(db)];
        params.extend(ops.iter().map(Operation::to_json));
        Request {
            method: "transact",
            params: Json::Array(params),
        }
    }

    /// `monitor`: replies with the initial contents; changes come as `update`.
    pub fn monitor(db: &str, monitor_id: &Json, requests: &MonitorRequests) -> Self {
        Request {
            method: "monitor",
            params: json!([db, monitor_id, requests.to_json(false)]),
        }
    }

    /// `monitor_cond`: like `monitor` with conditions; changes come as `update2`.
    pub fn monitor_cond(db: &str, monitor_id: &Json, requests: &MonitorRequests) -> Self {
        Request {
            method: "monitor_cond",
            params: json!([db, monitor_id, requests.to_json(true)]),
        }
    }

    /// `monitor_cond_since`: resumes after `last_txn_id` when the server still has it;
    /// replies `[found, last_txn_id, updates2]`; changes come as `update3`.
    pub fn monitor_cond_since(
        db: &str,
        monitor_id: &Json,
        requests: &MonitorRequests,
        last_txn_id: Option<&str>,
    ) -> Self {
        let last = last_txn_id.unwrap_or("00000000-0000-0000-0000-000000000000");
        Request {
            method: "monitor_cond_since",
            params: json!([db, monitor_id, requests.to_json(true), last]),
        }
    }

    /// `monitor_cancel`
    pub fn monitor_cancel(monitor_id: &Json) -> Self {
        Request {
            method: "monitor_cancel",
            params: json!([monitor_id]),
        }
    }

    /// `lock`: replies `{"locked": bool}`; a later grant comes as a `locked` notification.
    pub fn lock(lock: &str) -> Self {
        Request {
            method: "lock",
            params: json!([lock]),
        }
    }

    /// `steal`
    pub fn steal(lock: &str) -> Self {
        Request {
            method: "steal",
            params: json!([lock]),
        }
    }

    /// `unlock`
    pub fn unlock(lock: &str) -> Self {
        Request {
            method: "unlock",
            params: json!([lock]),
        }
    }

    /// `echo`
    pub fn echo(params: Json) -> Self {
        Request {
            method: "echo",
            params,
        }
    }
}

/// The tables and columns to monitor, with optional `where` conditions (monitor_cond).
#[derive(Debug, Clone, Default)]
pub struct MonitorRequests {
    /// Table → (columns, conditions). Empty columns means all.
    pub tables: BTreeMap<String, (Vec<String>, Vec<crate::ops::Condition>)>,
}

impl MonitorRequests {
    /// Monitors `columns` of `table` (all when empty).
    pub fn table(mut self, table: &str, columns: &[&str]) -> Self {
        self.tables.insert(
            table.to_string(),
            (columns.iter().map(|c| c.to_string()).collect(), vec![]),
        );
        self
    }

    fn to_json(&self, cond: bool) -> Json {
        let mut o = serde_json::Map::new();
        for (t, (cols, conds)) in &self.tables {
            let mut r = json!({});
            if !cols.is_empty() {
                r["columns"] = json!(cols);
            }
            if cond && !conds.is_empty() {
                r["where"] = Json::Array(conds.iter().map(|c| c.to_json()).collect());
            }
            o.insert(t.clone(), r);
        }
        Json::Object(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Session) -> Vec<Json> {
        std::iter::from_fn(|| s.poll_transmit())
            .map(|b| serde_json::from_slice(&b).unwrap())
            .collect()
    }

    #[test]
    fn correlates_replies_and_answers_echo() {
        let t0 = Instant::now();
        let mut s = Session::new(Config::default(), t0);
        let a = s.send_request(Request::list_dbs(), t0);
        let b = s.send_request(Request::get_schema("X"), t0);
        let sent = drain(&mut s);
        assert_eq!(sent[0]["method"], "list_dbs");
        assert_eq!(sent[1]["params"], json!(["X"]));
        let input = format!(
            r#"{{"id":{b},"result":null,"error":{{"error":"unknown database"}}}}{{"id":"echo","method":"echo","params":[7]}}{{"id":{a},"result":["Open_vSwitch"],"error":null}}"#
        );
        s.handle_input(input.as_bytes(), t0).unwrap();
        let replies = drain(&mut s);
        assert_eq!(
            replies,
            vec![json!({"id":"echo","result":[7],"error":null})]
        );
        match s.poll_event() {
            Some(Event::Reply {
                id,
                result: Err(Error::Rpc { .. }),
            }) => assert_eq!(id, b),
            e => panic!("{e:?}"),
        }
        match s.poll_event() {
            Some(Event::Reply { id, result: Ok(r) }) => {
                assert_eq!(id, a);
                assert_eq!(r, json!(["Open_vSwitch"]));
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn keepalive_detects_a_dead_peer() {
        let t0 = Instant::now();
        let cfg = Config {
            echo_interval: Some(Duration::from_secs(5)),
            ..Config::default()
        };
        let mut s = Session::new(cfg, t0);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        s.handle_timeout(t0 + Duration::from_secs(5)).unwrap();
        let probe = drain(&mut s);
        assert_eq!(probe[0]["method"], "echo");
        // Any input proves the peer alive.
        s.handle_input(
            b"{\"id\":\"x\",\"method\":\"echo\",\"params\":[]}",
            t0 + Duration::from_secs(6),
        )
        .unwrap();
        s.handle_timeout(t0 + Duration::from_secs(10)).unwrap();
        s.handle_timeout(t0 + Duration::from_secs(11)).unwrap();
        assert!(matches!(
            s.handle_timeout(t0 + Duration::from_secs(16)),
            Err(Error::PeerDead)
        ));
    }

    /// Time in which the driver held input back does not count against the peer: neither the
    /// keepalive nor a request's deadline runs meanwhile, and both resume where they stood.
    #[test]
    fn held_input_stops_the_clocks() {
        let s5 = Duration::from_secs(5);
        let t0 = Instant::now();
        let cfg = Config {
            echo_interval: Some(s5),
            request_timeout: Duration::from_secs(30),
            ..Config::default()
        };
        let mut s = Session::new(cfg, t0);
        let id = s.send_request(Request::transact("db", &[Operation::Abort]), t0);
        // The probe goes out after 5 s of silence.
        s.handle_timeout(t0 + s5).unwrap();
        assert_eq!(drain(&mut s).last().unwrap()["method"], "echo");
        // Held from 6 s to 66 s: nothing fires, whatever the clock says.
        s.hold_input(true, t0 + Duration::from_secs(6));
        assert_eq!(s.poll_timeout(), None);
        s.handle_timeout(t0 + Duration::from_secs(60)).unwrap();
        assert!(s.poll_event().is_none());
        s.hold_input(false, t0 + Duration::from_secs(66));
        // The probe had 4 s left, the request 24 s: they have them still.
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(70)));
        s.handle_timeout(t0 + Duration::from_secs(69)).unwrap();
        // The answers were waiting behind the held input: fed before any timer, they count.
        let input = format!(
            r#"{{"id":2,"result":["strowger-keepalive"],"error":null}}{{"id":{id},"result":[{{}}],"error":null}}"#
        );
        s.handle_input(input.as_bytes(), t0 + Duration::from_secs(71))
            .unwrap();
        assert!(matches!(
            s.poll_event(),
            Some(Event::Reply { result: Ok(_), .. })
        ));
        assert_eq!(s.pending(), 0);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(76)));
        // Unheld, a silent peer is still found dead.
        s.handle_timeout(t0 + Duration::from_secs(76)).unwrap();
        assert!(matches!(
            s.handle_timeout(t0 + Duration::from_secs(81)),
            Err(Error::PeerDead)
        ));
    }

    #[test]
    fn request_times_out_and_is_cancelled() {
        let t0 = Instant::now();
        let cfg = Config {
            echo_interval: None,
            request_timeout: Duration::from_secs(1),
            ..Config::default()
        };
        let mut s = Session::new(cfg, t0);
        let id = s.send_request(Request::transact("db", &[Operation::Abort]), t0);
        drain(&mut s);
        s.handle_timeout(t0 + Duration::from_secs(1)).unwrap();
        let sent = drain(&mut s);
        assert_eq!(sent[0]["method"], "cancel");
        assert_eq!(sent[0]["params"], json!([id]));
        assert!(matches!(
            s.poll_event(),
            Some(Event::Reply {
                result: Err(Error::Timeout(_)),
                ..
            })
        ));
        // The late reply is dropped.
        s.handle_input(
            format!(r#"{{"id":{id},"result":[],"error":null}}"#).as_bytes(),
            t0,
        )
        .unwrap();
        assert!(s.poll_event().is_none());
    }

    #[test]
    fn malformed_input_is_fatal() {
        let t0 = Instant::now();
        let mut s = Session::new(Config::default(), t0);
        assert!(matches!(
            s.handle_input(b"{]", t0),
            Err(Error::MalformedJson(_))
        ));
        let mut s = Session::new(Config::default(), t0);
        assert!(matches!(
            s.handle_input(b"[1]", t0),
            Err(Error::InvalidMessage(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn input_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let t0 = Instant::now();
            let mut s = Session::new(Config::default(), t0);
            let _ = s.handle_input(&data, t0);
        }
    }
}
