//! The app host: the chosen `apps::App`, shared by every connection task, which calls it inline
//! for its own switch's events and sends what it answers.
//!
//! Why inline: a packet-in answered in the task that read it goes read → app → one write, with
//! no hop through a channel to an app task and back (each hop is a wake-up and a context switch
//! on the latency path; measured in BENCHMARKS.md). The app is `&mut`, so calls are serialised by
//! one lock; an app call is short and never awaits, so the lock is never held across a yield.
//!
//! Ordering: the registry changes that make a session current or stale happen under the same
//! lock as the app calls. `SwitchUp` is delivered in the same critical section that registers
//! the session, `SwitchDown` only if the session was still the registered one when it left, and
//! any other event only if its session is the registered one. So a reconnecting datapath's new
//! `SwitchUp` can never be undone by its old session's late `SwitchDown` or packet-ins.
//!
//! Outputs for the calling connection's own switch go straight into its session (the caller's
//! `local` sink); outputs for other switches are queued with `try_send`. Lossless or resync: a
//! switch whose queue is full is not stalled on and does not lose that message silently — its
//! session is closed (`CloseReason::Resync`, counted per switch and logged) and sends nothing
//! more, so its reconnect starts from scratch; the rest of the batch for it is skipped.
//!
//! Latency: the app cannot time itself (it reads no clock), so the host times each packet-in's
//! `handle` call into a histogram (`strowger_packet_in_seconds`). The clock read that gives the
//! app its `now` is the start, so timing costs one more clock read and one uncontended lock
//! per packet-in (prometheus-client's histogram sits behind a small mutex that only a scrape
//! competes for: packet-ins observe under the app lock), and no allocation.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{watch, Notify};

use crate::applied::Mark;

use apps::{Answer, App, Event, Output, Query};
use ofproto::{FeaturesReply, Message, Port};

use super::{ConnId, SendError, SwitchHandle, Switches};

/// The app and the registry it answers for. Cheap to clone.
#[derive(Clone)]
pub struct AppHost {
    inner: Arc<Mutex<Inner>>,
    switches: Switches,
    name: &'static str,
    timer_moved: Arc<Notify>,
    /// Seconds each packet-in's `handle` took (a shared handle: the metrics registry holds it too).
    packet_in_seconds: Histogram,
    /// The last mark given to the switches (see [`AppHost::mark`]), for REST's waiters.
    issued: Arc<watch::Sender<Mark>>,
}

struct Inner {
    app: Box<dyn App>,
    /// The app's `poll_timeout` after the last call: the timer task is woken when it moves.
    timer: Option<Instant>,
    /// Reused between calls so answering allocates nothing once warm.
    out: Vec<Output>,
    /// Sessions closed because an app output did not fit their queue.
    resyncs: u64,
    /// The last mark, also given to every switch that connects later.
    mark: Option<Mark>,
}

impl std::fmt::Debug for AppHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppHost").field("app", &self.name).finish()
    }
}

impl AppHost {
    /// Hosts `app` for the switches of `switches`.
    pub fn new(app: Box<dyn App>, switches: Switches) -> Self {
        let name = app.name();
        AppHost {
            inner: Arc::new(Mutex::new(Inner {
                app,
                timer: None,
                out: Vec::new(),
                resyncs: 0,
                mark: None,
            })),
            switches,
            name,
            timer_moved: Arc::new(Notify::new()),
            packet_in_seconds: crate::metrics::packet_in_histogram(),
            issued: Arc::new(watch::channel(Mark::default()).0),
        }
    }

    /// How long the app took over each packet-in (its `handle` call, the lock not included).
    pub fn packet_in_seconds(&self) -> &Histogram {
        &self.packet_in_seconds
    }

    /// The app's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The registry.
    pub fn switches(&self) -> &Switches {
        &self.switches
    }

    /// How many sessions were closed for a resync because an app output did not fit their
    /// queue, over all switches since start (each switch's own count is in its counters).
    pub fn resyncs(&self) -> u64 {
        self.lock().resyncs
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic inside the app poisons the lock; its state is whatever the app left, which
        // is better for every other switch than refusing all events from now on.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `handle` and tells the app its switch is up. Returns the session it replaced.
    pub(crate) fn switch_up(
        &self,
        handle: SwitchHandle,
        features: FeaturesReply,
        ports: Vec<Port>,
        local: impl FnMut(Message),
    ) -> Option<SwitchHandle> {
        let dpid = handle.dpid();
        let mut inner = self.lock();
        let old = self.switches.register(handle);
        let event = Event::SwitchUp {
            dpid,
            features,
            ports,
        };
        self.deliver(&mut inner, &event, local);
        // Behind the pipeline the app just sent inline: the new session confirms the state the
        // app is in now, so it counts as applied once that barrier is answered.
        if let (Some(mark), Some(switch)) = (inner.mark, self.switches.get(dpid)) {
            let Inner { resyncs, .. } = &mut *inner;
            self.send_mark(resyncs, &switch, mark);
        }
        old
    }

    /// Unregisters connection `conn` of `dpid` and, if it was still the registered session,
    /// tells the app the switch is down.
    pub(crate) fn switch_down(&self, dpid: u64, conn: ConnId) {
        let mut inner = self.lock();
        if self.switches.unregister(dpid, conn) {
            // The switch is gone: anything the app answers for it has nowhere to go.
            self.deliver(&mut inner, &Event::SwitchDown { dpid }, |_| {});
        }
    }

    /// Hands the app an event of connection `conn`, unless a newer session replaced it.
    pub(crate) fn event(&self, conn: ConnId, event: &Event, local: impl FnMut(Message)) {
        let mut inner = self.lock();
        if event
            .dpid()
            .is_some_and(|dpid| self.switches.is_current(dpid, conn))
        {
            self.deliver(&mut inner, event, local);
        }
    }

    /// Hands the app a controller-wide event (a topology snapshot, new bindings), in the same
    /// ordered stream as every switch's events; its outputs go through the switches' queues.
    pub fn broadcast(&self, event: &Event) {
        let mut inner = self.lock();
        self.deliver(&mut inner, event, |_| {});
    }

    /// Marks the app's stream: every output of the events handed to it so far (through
    /// [`AppHost::broadcast`], in particular the topology at `mark.revision` and the bindings
    /// generation `mark.bindings`) is queued before this mark in each switch's ordered queue,
    /// and each connection confirms the mark with a barrier (`crate::applied`). Called by the
    /// bindings follower after it handed the app a snapshot and its bindings.
    pub fn mark(&self, mark: Mark) {
        let mut inner = self.lock();
        inner.mark = Some(mark);
        let Inner { resyncs, .. } = &mut *inner;
        for switch in self.switches.list() {
            self.send_mark(resyncs, &switch, mark);
        }
        drop(inner);
        self.issued.send_replace(mark);
    }

    /// The marks issued so far (the latest, and a wake-up on each).
    pub fn issued(&self) -> watch::Receiver<Mark> {
        self.issued.subscribe()
    }

    fn send_mark(&self, resyncs: &mut u64, switch: &SwitchHandle, mark: Mark) {
        if switch.is_resyncing() {
            return;
        }
        match switch.try_mark(mark) {
            Ok(()) | Err(SendError::Gone) => {}
            Err(SendError::Full) => Self::resync(resyncs, switch),
        }
    }

    /// Closes `switch`'s session for a resync: an output did not fit its queue.
    fn resync(resyncs: &mut u64, switch: &SwitchHandle) {
        *resyncs += 1;
        switch.resync();
        tracing::warn!(
            dpid = %super::conn::DpidFmt(switch.dpid()),
            resyncs = *resyncs,
            "switch queue full: closing the session to resync it rather than lose app output"
        );
    }

    /// Asks the app about its runtime state (a bridge's MAC table, a router's ARP cache) for
    /// the REST views. The lock is held only for the app's answer, which must be quick: it is
    /// the lock every packet-in takes.
    pub fn query(&self, query: &Query) -> Option<Answer> {
        self.lock().app.query(Instant::now(), query)
    }

    /// Runs the app's timers until `shutdown`: sleeps until its `poll_timeout`, woken early
    /// whenever a call moved it, and calls `handle_timeout` under the lock like any event.
    pub async fn run_timers(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let next = self.lock().app.poll_timeout();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {
                    let mut inner = self.lock();
                    let now = Instant::now();
                    if inner.app.poll_timeout().is_some_and(|t| t <= now) {
                        let Inner { app, out, .. } = &mut *inner;
                        app.handle_timeout(now, out);
                        self.route(&mut inner, None, |_| {});
                    }
                }
                _ = self.timer_moved.notified() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    fn deliver(&self, inner: &mut Inner, event: &Event, local: impl FnMut(Message)) {
        let Inner { app, out, .. } = inner;
        let now = Instant::now();
        app.handle(now, event, out);
        if let Event::PacketIn { .. } = event {
            self.packet_in_seconds.observe(now.elapsed().as_secs_f64());
        }
        self.route(inner, event.dpid(), local);
    }

    /// A FLOW_STATS request of the app's: sent as a request (through the switch's queue, so
    /// behind everything the app sent it before), its reply handed back to the app as
    /// `Event::FlowStats` in the same ordered stream, unless the session was replaced
    /// meanwhile. Without a runtime (unit tests of the host) nothing is asked.
    fn ask_flow_stats(&self, dpid: u64, message: Message) {
        let (Some(switch), Ok(rt)) = (
            self.switches.get(dpid),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let host = self.clone();
        rt.spawn(async move {
            let flows = match switch.request(message).await {
                Ok(super::Reply::Multipart(parts)) => Some(
                    parts
                        .into_iter()
                        .filter_map(|p| match p.body {
                            ofproto::MultipartReplyBody::Flow(f) => Some(f),
                            _ => None,
                        })
                        .flatten()
                        .collect(),
                ),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(dpid = %super::conn::DpidFmt(dpid), error = %e, "reading the switch's flows back failed");
                    None
                }
            };
            host.answer(switch.conn(), &Event::FlowStats { dpid, flows });
        });
    }

    /// A BARRIER_REQUEST of the app's: queued now, behind everything the app sent the switch
    /// before (not from a task that might run after the app's next outputs), its answer handed
    /// back as `Event::Barrier` unless the session was replaced meanwhile.
    fn ask_barrier(&self, resyncs: &mut u64, switch: &SwitchHandle) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match switch.try_request(Message::BarrierRequest) {
            Ok(reply) => {
                let (host, dpid, conn) = (self.clone(), switch.dpid(), switch.conn());
                rt.spawn(async move {
                    // Answered, refused or timed out alike: the app learns the barrier is over.
                    let _ = reply.await;
                    host.answer(conn, &Event::Barrier { dpid });
                });
            }
            Err(SendError::Gone) => {}
            Err(SendError::Full) => Self::resync(resyncs, switch),
        }
    }

    /// Hands the app the answer to a request of its, unless connection `conn` is no longer
    /// the current session of the event's switch.
    fn answer(&self, conn: ConnId, event: &Event) {
        let mut inner = self.lock();
        if event
            .dpid()
            .is_some_and(|dpid| self.switches.is_current(dpid, conn))
        {
            let Inner { app, out, .. } = &mut *inner;
            app.handle(Instant::now(), event, out);
            self.route(&mut inner, None, |_| {});
        }
    }

    /// Sends what the app answered: to the calling connection's own switch through `local`,
    /// to every other switch through its queue; a switch whose queue cannot take a message is
    /// resynced instead (see the module doc), never left with a gap.
    fn route(&self, inner: &mut Inner, own: Option<u64>, mut local: impl FnMut(Message)) {
        let timer = inner.app.poll_timeout();
        if timer != inner.timer {
            inner.timer = timer;
            self.timer_moved.notify_one();
        }
        let Inner { out, resyncs, .. } = inner;
        for Output { dpid, message } in out.drain(..) {
            if let Message::MultipartRequest(ofproto::MultipartRequest {
                body: ofproto::MultipartRequestBody::Flow(_),
                ..
            }) = &message
            {
                self.ask_flow_stats(dpid, message);
                continue;
            }
            if let Message::BarrierRequest = message {
                if let Some(switch) = self.switches.get(dpid).filter(|s| !s.is_resyncing()) {
                    self.ask_barrier(resyncs, &switch);
                }
                continue;
            }
            if Some(dpid) == own {
                local(message);
                continue;
            }
            let Some(switch) = self.switches.get(dpid) else {
                continue;
            };
            // A session being resynced sends nothing more: the rest of this batch (and of any
            // batch before its connection task has closed it) is moot, and skipping it here
            // keeps one resync from being counted again for each later message.
            if switch.is_resyncing() {
                continue;
            }
            match switch.try_send(message) {
                Ok(()) | Err(SendError::Gone) => {}
                Err(SendError::Full) => Self::resync(resyncs, &switch),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::mpsc;

    use super::*;
    use crate::openflow::registry::{Command, ConnShared, SwitchHandle};
    use crate::openflow::test_util::features;

    /// Records every event and answers each packet-in with one PACKET_OUT to switch `cookie`.
    struct Record(Arc<Mutex<Vec<Event>>>);

    impl App for Record {
        fn name(&self) -> &'static str {
            "record"
        }
        fn handle(&mut self, _now: Instant, event: &Event, out: &mut Vec<Output>) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(event.clone());
            }
            if let Event::PacketIn { packet_in, .. } = event {
                out.push(Output {
                    dpid: packet_in.cookie,
                    message: Message::GetAsyncRequest,
                });
            }
        }
    }

    fn packet_in(dpid: u64, cookie: u64) -> Event {
        Event::PacketIn {
            dpid,
            packet_in: ofproto::PacketIn {
                buffer_id: ofproto::OFP_NO_BUFFER,
                total_len: 0,
                reason: ofproto::PacketInReason::NoMatch,
                table_id: 0,
                cookie,
                match_: ofproto::Match::new(),
                data: bytes::Bytes::new(),
            },
        }
    }

    fn handle(conn: ConnId, dpid: u64) -> (SwitchHandle, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(4);
        let peer = "127.0.0.1:1".parse().expect("literal address");
        (
            SwitchHandle::new(conn, peer, features(dpid), tx, Arc::default()),
            rx,
        )
    }

    #[test]
    fn events_of_replaced_sessions_are_dropped() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Record(seen.clone())), Switches::new());
        let mut local = Vec::new();
        let (h1, _rx1) = handle(1, 7);
        let (h2, _rx2) = handle(2, 7);
        assert!(host.switch_up(h1, features(7), vec![], |_| {}).is_none());
        host.event(1, &packet_in(7, 7), |m| local.push((1, m)));
        // Connection 2 replaces connection 1 for datapath 7.
        let old = host.switch_up(h2, features(7), vec![], |_| {});
        assert_eq!(old.map(|h| h.conn()), Some(1));
        // The old session's late packet-in and its leaving must not reach the app.
        host.event(1, &packet_in(7, 7), |m| local.push((1, m)));
        host.switch_down(7, 1);
        host.event(2, &packet_in(7, 7), |m| local.push((2, m)));
        let delivered = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let up = Event::SwitchUp {
            dpid: 7,
            features: features(7),
            ports: vec![],
        };
        assert_eq!(
            delivered,
            vec![up.clone(), packet_in(7, 7), up, packet_in(7, 7)]
        );
        assert_eq!(host.switches().get(7).map(|h| h.conn()), Some(2));
        // Each delivered packet-in answered its own connection, inline.
        assert_eq!(
            local,
            vec![(1, Message::GetAsyncRequest), (2, Message::GetAsyncRequest)]
        );
        // The current session leaving is delivered.
        host.switch_down(7, 2);
        assert!(host.switches().get(7).is_none());
        assert_eq!(
            seen.lock().ok().and_then(|s| s.last().cloned()),
            Some(Event::SwitchDown { dpid: 7 })
        );
    }

    #[tokio::test]
    async fn outputs_for_other_switches_go_through_their_queues() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Record(seen)), Switches::new());
        let (h1, _rx1) = handle(1, 1);
        let (h2, mut rx2) = handle(2, 2);
        host.switch_up(h1, features(1), vec![], |_| {});
        host.switch_up(h2, features(2), vec![], |_| {});
        let mut local = Vec::new();
        // A packet-in on switch 1 whose answer is for switch 2.
        host.event(1, &packet_in(1, 2), |m| local.push(m));
        assert!(local.is_empty());
        match rx2.try_recv() {
            Ok(Command::Send(m)) => assert_eq!(m, Message::GetAsyncRequest),
            other => panic!("expected a queued send to switch 2, got {other:?}"),
        }
        // Unknown destination: dropped quietly.
        host.event(1, &packet_in(1, 99), |m| local.push(m));
        assert!(local.is_empty());
    }

    /// Answers a MAC table query for bridge 1 with one entry per event it has seen.
    struct Tables(u32);

    impl App for Tables {
        fn name(&self) -> &'static str {
            "tables"
        }
        fn handle(&mut self, _now: Instant, _event: &Event, _out: &mut Vec<Output>) {
            self.0 += 1;
        }
        fn query(&self, _now: Instant, query: &Query) -> Option<Answer> {
            match query {
                Query::MacTable { bridge } if *bridge == uuid::Uuid::from_u128(1) => {
                    Some(Answer::MacTable(vec![apps::MacEntry {
                        mac: [2, 0, 0, 0, 0, 1],
                        port_id: uuid::Uuid::from_u128(2),
                        flows: self.0,
                    }]))
                }
                _ => None,
            }
        }
    }

    #[test]
    fn query_asks_the_hosted_app_about_its_state_now() {
        let host = AppHost::new(Box::new(Tables(0)), Switches::new());
        let bridge = Query::MacTable {
            bridge: uuid::Uuid::from_u128(1),
        };
        let flows = |a: Option<Answer>| match a {
            Some(Answer::MacTable(v)) => v.iter().map(|e| e.flows).collect::<Vec<_>>(),
            other => panic!("expected a MAC table, got {other:?}"),
        };
        assert_eq!(flows(host.query(&bridge)), vec![0]);
        // The answer reflects what the app has seen since.
        host.broadcast(&Event::SwitchDown { dpid: 1 });
        host.broadcast(&Event::SwitchDown { dpid: 2 });
        assert_eq!(flows(host.query(&bridge)), vec![2]);
        let router = Query::ArpTable {
            router: uuid::Uuid::from_u128(1),
        };
        assert_eq!(host.query(&router), None);
        // An app without runtime tables answers nothing.
        let plain = AppHost::new(Box::new(Burst), Switches::new());
        assert_eq!(plain.query(&bridge), None);
    }

    /// For each packet-in, three messages to each of switches 2 and 3, interleaved.
    struct Burst;

    impl App for Burst {
        fn name(&self) -> &'static str {
            "burst"
        }
        fn handle(&mut self, _now: Instant, event: &Event, out: &mut Vec<Output>) {
            if let Event::PacketIn { .. } = event {
                for _ in 0..3 {
                    for dpid in [2, 3] {
                        out.push(Output {
                            dpid,
                            message: Message::GetAsyncRequest,
                        });
                    }
                }
            }
        }
    }

    /// A handle whose queue holds `capacity` commands, and what it shares with its connection.
    fn handle_with(
        conn: ConnId,
        dpid: u64,
        capacity: usize,
    ) -> (SwitchHandle, mpsc::Receiver<Command>, Arc<ConnShared>) {
        let (tx, rx) = mpsc::channel(capacity);
        let shared = Arc::new(ConnShared::default());
        let peer = "127.0.0.1:1".parse().expect("literal address");
        let h = SwitchHandle::new(conn, peer, features(dpid), tx, shared.clone());
        (h, rx, shared)
    }

    fn queued(rx: &mut mpsc::Receiver<Command>) -> usize {
        std::iter::from_fn(|| rx.try_recv().ok()).count()
    }

    #[tokio::test]
    async fn a_full_queue_resyncs_the_switch_instead_of_losing_output() {
        let host = AppHost::new(Box::new(Burst), Switches::new());
        let (h1, _rx1) = handle(1, 1);
        // Switch 2's queue holds one message, switch 3's four.
        let (h2, mut rx2, shared2) = handle_with(2, 2, 1);
        let (h3, mut rx3, shared3) = handle_with(3, 3, 4);
        host.switch_up(h1, features(1), vec![], |_| {});
        host.switch_up(h2, features(2), vec![], |_| {});
        host.switch_up(h3, features(3), vec![], |_| {});
        let killed = shared2.kill.notified();
        host.event(1, &packet_in(1, 0), |_| {});
        // Switch 2 took the first message; the second did not fit, so its session is marked
        // and told to close, and the third was not even tried (one resync, not two).
        assert_eq!(queued(&mut rx2), 1);
        assert!(shared2.is_resyncing());
        let counters = |dpid| host.switches().get(dpid).map(|h| h.counters().resyncs);
        assert_eq!(counters(2), Some(1));
        assert_eq!(host.resyncs(), 1);
        // The kill is a stored permit: it is there for a connection task that waits only now.
        tokio::time::timeout(std::time::Duration::from_secs(1), killed)
            .await
            .expect("the connection is told to close");
        // Switch 3, interleaved in the same batch, got all of its messages.
        assert_eq!(queued(&mut rx3), 3);
        assert!(!shared3.is_resyncing());
        assert_eq!(counters(3), Some(0));

        // Until its connection has closed, later batches skip the resyncing switch even though
        // its queue has room again: nothing may follow the gap.
        host.event(1, &packet_in(1, 0), |_| {});
        assert_eq!(queued(&mut rx2), 0);
        assert_eq!(queued(&mut rx3), 3);
        assert_eq!(host.resyncs(), 1);

        // The switch reconnects: a fresh session gets everything, and the datapath's resync
        // count survives the session it ended.
        host.switch_down(2, 2);
        let (h2, mut rx2, shared2) = handle_with(4, 2, 4);
        host.switch_up(h2, features(2), vec![], |_| {});
        host.event(1, &packet_in(1, 0), |_| {});
        assert_eq!(queued(&mut rx2), 3);
        assert!(!shared2.is_resyncing());
        assert_eq!(counters(2), Some(1));
    }

    #[tokio::test]
    async fn a_mark_follows_the_outputs_in_every_queue_and_greets_new_switches() {
        let host = AppHost::new(Box::new(Burst), Switches::new());
        let (h1, _rx1) = handle(1, 1);
        let (h2, mut rx2, _) = handle_with(2, 2, 16);
        host.switch_up(h1, features(1), vec![], |_| {});
        host.switch_up(h2, features(2), vec![], |_| {});
        // Before any mark, a switch is greeted with none.
        assert!(rx2.try_recv().is_err());
        let issued = host.issued();
        host.event(1, &packet_in(1, 0), |_| {});
        let mark = Mark {
            revision: 7,
            bindings: 2,
        };
        host.mark(mark);
        assert_eq!(*issued.borrow(), mark);
        let kinds: Vec<String> = std::iter::from_fn(|| rx2.try_recv().ok())
            .map(|c| match c {
                Command::Send(_) => "send".to_string(),
                Command::Mark(m) => format!("mark {}", m.revision),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["send", "send", "send", "mark 7"]);
        // A switch connecting later gets the current mark behind its own greeting.
        let (h3, mut rx3, _) = handle_with(3, 3, 16);
        host.switch_up(h3, features(3), vec![], |_| {});
        match rx3.try_recv() {
            Ok(Command::Mark(m)) => assert_eq!(m, mark),
            other => panic!("expected the mark, got {other:?}"),
        }
    }

    /// Sends a barrier to switch 2 for each packet-in, and records the events.
    struct Barriers(Arc<Mutex<Vec<Event>>>);

    impl App for Barriers {
        fn name(&self) -> &'static str {
            "barriers"
        }
        fn handle(&mut self, _now: Instant, event: &Event, out: &mut Vec<Output>) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(event.clone());
            }
            if let Event::PacketIn { .. } = event {
                out.push(Output {
                    dpid: 2,
                    message: Message::GetAsyncRequest,
                });
                out.push(Output {
                    dpid: 2,
                    message: Message::BarrierRequest,
                });
            }
        }
    }

    #[tokio::test]
    async fn an_apps_barrier_is_queued_in_order_and_answered_as_an_event() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Barriers(seen.clone())), Switches::new());
        let (h1, _rx1) = handle(1, 1);
        let (h2, mut rx2, _) = handle_with(2, 2, 16);
        host.switch_up(h1, features(1), vec![], |_| {});
        host.switch_up(h2, features(2), vec![], |_| {});
        let barriers = || {
            seen.lock()
                .map(|s| {
                    s.iter()
                        .filter(|e| matches!(e, Event::Barrier { .. }))
                        .count()
                })
                .unwrap_or_default()
        };
        host.event(1, &packet_in(1, 0), |_| {});
        // Behind what the app sent before it, as a request (not a send nobody waits on).
        assert!(matches!(
            rx2.try_recv(),
            Ok(Command::Send(Message::GetAsyncRequest))
        ));
        let Ok(Command::Request(Message::BarrierRequest, reply)) = rx2.try_recv() else {
            panic!("expected the barrier as a request");
        };
        assert_eq!(barriers(), 0);
        reply
            .send(Ok(super::super::Reply::Message(Message::BarrierReply)))
            .expect("the host waits for the answer");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while barriers() == 0 {
            assert!(std::time::Instant::now() < deadline, "no Event::Barrier");
            tokio::task::yield_now().await;
        }
        assert_eq!(
            seen.lock().ok().and_then(|s| s.last().cloned()),
            Some(Event::Barrier { dpid: 2 })
        );
        // A barrier the replaced session never answers is not delivered: the app hears of the
        // session's end instead.
        host.event(1, &packet_in(1, 0), |_| {});
        let _ = rx2.try_recv();
        let Ok(Command::Request(_, reply)) = rx2.try_recv() else {
            panic!("expected the second barrier");
        };
        let (h2b, _rx2b, _) = handle_with(3, 2, 16);
        host.switch_up(h2b, features(2), vec![], |_| {});
        drop(reply);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(barriers(), 1);
    }
}
