//! The app host: the chosen `apps::App`, shared by every connection task, which calls it inline
//! for its own switch's events when nobody else holds it, and hands the event to whoever does
//! otherwise (delegation, "flat combining").
//!
//! Why inline: a packet-in answered in the task that read it goes read → app → one write, with
//! no hop through a channel to an app task and back (each hop is a wake-up and a context switch
//! on the latency path; measured in BENCHMARKS.md). The app is `&mut`, so calls are serialised by
//! one lock; an app call never awaits, so the lock is never held across a yield.
//!
//! Why delegation: an app call is not always short (a topology revision rebuilds the engine's
//! index, a bindings change touches hundreds of switches, a connecting switch is reconciled and
//! read back). A runtime worker that waited for the lock meanwhile would read nothing, answer
//! no echo and accept nothing; at hundreds of switches on two workers that dropped switches,
//! whose reconnects made more work (BENCHMARKS.md, Scale). So no runtime worker ever blocks on
//! the lock. A connection task `try_lock`s: uncontended, it calls the app inline as above (the
//! fast path, one `try_lock` more than a plain lock); contended, it pushes its event onto the
//! pending queue and goes on reading, and whoever holds the lock runs the queue before it lets
//! go. No lost wake-up: a pusher `try_lock`s again after pushing, and a holder looks at the
//! queue again after unlocking (a sequentially consistent fence on each side, so at least one
//! of them sees the other), and whoever gets the lock runs the queue. Threads that are no
//! runtime workers (the bindings follower, the REST thread's queries) take the lock blocking:
//! a heavy change then runs on their thread, and they run the queue like any holder. The timer
//! task and a FLOW_STATS answer use the queue like a connection.
//!
//! Ordering. One stream: the queue is FIFO, and a holder runs it before its own event (a switch
//! that reconnects is registered after its old session's queued `SwitchDown`). Per connection:
//! once a connection has an event queued, its later events queue behind it (`ConnShared::
//! queued`), its `SwitchDown` included. The registry changes that make a session current or
//! stale happen under the lock: `SwitchUp` is delivered in the same critical section that
//! registers the session, `SwitchDown` only if the session was still the registered one when
//! it left, and any other event only if its session is the registered one when the app gets it
//! — so a reconnecting datapath's new `SwitchUp` can never be undone by its old session's late
//! `SwitchDown` or packet-ins, queued or not.
//!
//! Outputs. For the calling connection's own switch, answered inline: straight into its session
//! (the caller's `local` sink). Everything else — the answers of a queued event for its own
//! switch, outputs for other switches, marks, FLOW_STATS requests — goes into the target
//! connection's mailbox (`ConnShared::post`), one FIFO per connection that its task moves into
//! the session, so the app's output for one switch keeps the app's order. The answers to a
//! connection's own queued events are not bounded there (they are bounded by the
//! `PENDING_PER_CONN` events that may wait, and inline they would have gone straight into the
//! session), so a queued reconcile of thousands of flows never resyncs its own switch.
//! Everything else is lossless or resync: a switch whose mailbox already holds
//! `MAILBOX_FOREIGN` foreign commands is not stalled on and does not lose that message
//! silently — its session is closed (`CloseReason::Resync`, counted per switch and logged) and
//! sends nothing more, so its reconnect starts from scratch; the rest of the batch for it is
//! skipped.
//!
//! Backpressure: a connection with `PENDING_PER_CONN` events queued stops taking events from
//! its session and stops reading its socket; it awaits (`ConnShared::wake`) until the holder has
//! handled some. It never blocks a thread.
//!
//! Latency: the app cannot time itself (it reads no clock), so the host times each packet-in's
//! `handle` call into a histogram (`strowger_packet_in_seconds`). The clock read that gives the
//! app its `now` is the start, so timing costs one more clock read and one uncontended lock
//! per packet-in (prometheus-client's histogram sits behind a small mutex that only a scrape
//! competes for: packet-ins observe under the app lock), and no allocation.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{oneshot, watch, Notify};

use crate::applied::Mark;

use apps::{Answer, App, Event, Output, Query};
use ofproto::{FeaturesReply, Message, Port};

use super::registry::{Command, ConnShared};
use super::{ConnId, SendError, SwitchHandle, Switches};

/// The app and the registry it answers for. Cheap to clone.
#[derive(Clone)]
pub struct AppHost {
    /// A std mutex, only ever `try_lock`ed on the runtime (see the module doc): its holder
    /// never awaits, and nothing on a runtime worker waits for it.
    inner: Arc<Mutex<Inner>>,
    /// The events handed over to whoever holds `inner`.
    pending: Arc<Pending>,
    switches: Switches,
    name: &'static str,
    timer_moved: Arc<Notify>,
    /// The app's `poll_timeout` after its last call, for the timer task (which must not wait
    /// for the app lock to read it). A std mutex held for a copy.
    next_timer: Arc<Mutex<Option<Instant>>>,
    /// Sessions closed because an app output did not fit their mailbox.
    resyncs: Arc<AtomicU64>,
    /// Where FLOW_STATS answers are awaited: the runtime the host was made on, since a queued
    /// request may be sent by a holder on another thread (the bindings follower's).
    runtime: Option<tokio::runtime::Handle>,
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
    /// The last mark, also given to every switch that connects later.
    mark: Option<Mark>,
}

/// Work handed to whoever holds the app lock.
#[derive(Default)]
struct Pending {
    /// A std mutex held only to push or to swap the queue out.
    jobs: Mutex<VecDeque<Job>>,
    /// `jobs.len()`, read without the lock by a holder about to let go.
    len: AtomicUsize,
    /// A `Timeout` is queued (one is enough).
    timeout: AtomicBool,
}

enum Job {
    /// A connection's event; `quiet` runs the app without a log subscriber.
    Event {
        conn: ConnId,
        shared: Arc<ConnShared>,
        event: Event,
        quiet: bool,
    },
    SwitchUp {
        handle: SwitchHandle,
        features: FeaturesReply,
        ports: Vec<Port>,
    },
    SwitchDown {
        dpid: u64,
        conn: ConnId,
    },
    /// The answer to a request of the app's (FLOW_STATS, a barrier), for the app if `conn`
    /// is still the datapath's session.
    Answer {
        conn: ConnId,
        event: Event,
    },
    Timeout,
}

/// Where the answers of an event for its own switch go.
enum Sink<'a> {
    /// Answered inline: into the calling connection's session.
    Inline(&'a mut dyn FnMut(Message)),
    /// Answered by a holder for a queued event: the connection's mailbox.
    Mailbox(&'a ConnShared),
}

impl std::fmt::Debug for AppHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppHost").field("app", &self.name).finish()
    }
}

impl AppHost {
    /// Hosts `app` for the switches of `switches`. Made on the OpenFlow runtime (if any), which
    /// then awaits the app's FLOW_STATS answers.
    pub fn new(app: Box<dyn App>, switches: Switches) -> Self {
        let name = app.name();
        let timer = app.poll_timeout();
        AppHost {
            inner: Arc::new(Mutex::new(Inner {
                app,
                timer,
                out: Vec::new(),
                mark: None,
            })),
            pending: Arc::default(),
            switches,
            name,
            timer_moved: Arc::new(Notify::new()),
            next_timer: Arc::new(Mutex::new(timer)),
            resyncs: Arc::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
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
    /// mailbox, over all switches since start (each switch's own count is in its counters).
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(Ordering::Relaxed)
    }

    /// The lock if nobody holds it. A panic inside the app poisons the lock; its state is
    /// whatever the app left, which is better for every other switch than refusing all events
    /// from now on.
    fn try_lock(&self) -> Option<MutexGuard<'_, Inner>> {
        match self.inner.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// The lock, waiting for it: only for threads that are no runtime workers (the bindings
    /// follower, REST's own thread, tests). Its holder must let go through [`Self::release`].
    fn lock_blocking(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job` for the lock's holder, then takes the lock itself if it is free (the
    /// pusher's half of the no-lost-wake-up argument in the module doc).
    fn submit(&self, job: Job) {
        {
            let mut jobs = self
                .pending
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            jobs.push_back(job);
            self.pending.len.store(jobs.len(), Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if let Some(guard) = self.try_lock() {
            self.release(guard);
        }
    }

    /// Runs the queue, lets go of the lock, and looks again (the holder's half): a job pushed
    /// after the last run, whose pusher found the lock still held, is run here.
    fn release<'a>(&'a self, mut guard: MutexGuard<'a, Inner>) {
        loop {
            self.drain(&mut guard);
            drop(guard);
            fence(Ordering::SeqCst);
            if self.pending.len.load(Ordering::SeqCst) == 0 {
                return;
            }
            match self.try_lock() {
                Some(g) => guard = g,
                // The new holder looks after it.
                None => return,
            }
        }
    }

    /// Runs every queued job, oldest first, until the queue is empty.
    fn drain(&self, inner: &mut Inner) {
        while self.pending.len.load(Ordering::SeqCst) != 0 {
            let batch = {
                let mut jobs = self
                    .pending
                    .jobs
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                self.pending.len.store(0, Ordering::SeqCst);
                std::mem::take(&mut *jobs)
            };
            for job in batch {
                self.run(inner, job);
            }
        }
    }

    fn run(&self, inner: &mut Inner, job: Job) {
        match job {
            Job::Event {
                conn,
                shared,
                event,
                quiet,
            } => {
                if event
                    .dpid()
                    .is_some_and(|dpid| self.switches.is_current(dpid, conn))
                {
                    let mut deliver = || self.deliver(inner, &event, Some(Sink::Mailbox(&shared)));
                    if quiet {
                        tracing::subscriber::with_default(
                            tracing::subscriber::NoSubscriber::default(),
                            deliver,
                        );
                    } else {
                        deliver();
                    }
                }
                Self::handled(&shared);
            }
            Job::SwitchUp {
                handle,
                features,
                ports,
            } => {
                let shared = handle.shared().clone();
                self.up(inner, handle, features, ports, Sink::Mailbox(&shared));
                Self::handled(&shared);
            }
            Job::SwitchDown { dpid, conn } => self.down(inner, dpid, conn),
            Job::Answer { conn, event } => {
                if event
                    .dpid()
                    .is_some_and(|dpid| self.switches.is_current(dpid, conn))
                {
                    let Inner { app, out, .. } = &mut *inner;
                    app.handle(Instant::now(), &event, out);
                    self.route(inner, None);
                }
            }
            Job::Timeout => {
                self.pending.timeout.store(false, Ordering::SeqCst);
                self.timeout(inner);
            }
        }
    }

    /// One of `shared`'s queued events was handled: its task may read again, and its answers
    /// are in its mailbox.
    fn handled(shared: &ConnShared) {
        shared.queued.fetch_sub(1, Ordering::AcqRel);
        shared.wake.notify_one();
    }

    /// The calling connection's fast path: the lock, if the connection has nothing queued (its
    /// events keep their order) and nobody holds it; the queue is run first (one stream).
    fn inline(&self, shared: &ConnShared) -> Option<MutexGuard<'_, Inner>> {
        if shared.queued.load(Ordering::Acquire) != 0 {
            return None;
        }
        let mut guard = self.try_lock()?;
        self.drain(&mut guard);
        Some(guard)
    }

    /// Registers `handle` and tells the app its switch is up, inline or queued; a session
    /// of the datapath registered before is told to close.
    pub(crate) fn switch_up(
        &self,
        handle: SwitchHandle,
        features: FeaturesReply,
        ports: Vec<Port>,
        mut local: impl FnMut(Message),
    ) {
        let shared = handle.shared().clone();
        if let Some(mut guard) = self.inline(&shared) {
            self.up(
                &mut guard,
                handle,
                features,
                ports,
                Sink::Inline(&mut local),
            );
            self.release(guard);
            return;
        }
        shared.queued.fetch_add(1, Ordering::AcqRel);
        self.submit(Job::SwitchUp {
            handle,
            features,
            ports,
        });
    }

    fn up(
        &self,
        inner: &mut Inner,
        handle: SwitchHandle,
        features: FeaturesReply,
        ports: Vec<Port>,
        sink: Sink<'_>,
    ) {
        let dpid = handle.dpid();
        let (peer, conn) = (handle.peer(), handle.conn());
        if let Some(old) = self.switches.register(handle) {
            tracing::info!(dpid = %super::conn::DpidFmt(dpid), %peer, conn, old_peer = %old.peer(), old_conn = old.conn(), "datapath reconnected: replacing its old session");
        }
        let event = Event::SwitchUp {
            dpid,
            features,
            ports,
        };
        self.deliver(inner, &event, Some(sink));
        // Behind the pipeline the app just sent: the new session confirms the state the app
        // is in now, so it counts as applied once that barrier is answered.
        if let (Some(mark), Some(switch)) = (inner.mark, self.switches.get(dpid)) {
            self.send_mark(&switch, mark);
        }
    }

    /// Unregisters connection `conn` of `dpid` and, if it was still the registered session,
    /// tells the app the switch is down; behind the connection's queued events.
    pub(crate) fn switch_down(&self, dpid: u64, conn: ConnId, shared: &ConnShared) {
        match self.inline(shared) {
            Some(mut guard) => {
                self.down(&mut guard, dpid, conn);
                self.release(guard);
            }
            None => self.submit(Job::SwitchDown { dpid, conn }),
        }
    }

    fn down(&self, inner: &mut Inner, dpid: u64, conn: ConnId) {
        if self.switches.unregister(dpid, conn) {
            // The switch is gone: anything the app answers for it has nowhere to go.
            let Inner { app, out, .. } = &mut *inner;
            app.handle(Instant::now(), &Event::SwitchDown { dpid }, out);
            out.retain(|o| o.dpid != dpid);
            self.route(inner, None);
        }
    }

    /// Hands the app an event of connection `conn` (whose shared state is `shared`), unless a
    /// newer session replaced it by the time the app gets it: inline, answers into `local`, if
    /// the lock is free and the connection has nothing queued; else queued for the holder.
    /// `quiet`: the app's log lines for this event are dropped (see `conn.rs`). True when the
    /// app, called inline, sent another switch a packet for it (into its mailbox).
    pub(crate) fn event(
        &self,
        conn: ConnId,
        shared: &Arc<ConnShared>,
        event: Event,
        quiet: bool,
        mut local: impl FnMut(Message),
    ) -> bool {
        if let Some(mut guard) = self.inline(shared) {
            let mut foreign = false;
            if event
                .dpid()
                .is_some_and(|dpid| self.switches.is_current(dpid, conn))
            {
                let mut deliver =
                    || self.deliver(&mut guard, &event, Some(Sink::Inline(&mut local)));
                foreign = if quiet {
                    tracing::subscriber::with_default(
                        tracing::subscriber::NoSubscriber::default(),
                        deliver,
                    )
                } else {
                    deliver()
                };
            }
            self.release(guard);
            return foreign;
        }
        shared.queued.fetch_add(1, Ordering::AcqRel);
        self.submit(Job::Event {
            conn,
            shared: shared.clone(),
            event,
            quiet,
        });
        false
    }

    /// Hands the app a controller-wide event (a topology snapshot, new bindings), in the same
    /// ordered stream as every switch's events; its outputs go through the switches'
    /// mailboxes. Waits for the lock: for threads that are no runtime workers (the bindings
    /// follower), where the heavy work of a change then runs.
    pub fn broadcast(&self, event: &Event) {
        let mut guard = self.lock_blocking();
        self.drain(&mut guard);
        self.deliver(&mut guard, event, None);
        self.release(guard);
    }

    /// Marks the app's stream: every output of the events handed to it so far (through
    /// [`AppHost::broadcast`], in particular the topology at `mark.revision` and the bindings
    /// generation `mark.bindings`) is queued before this mark in each switch's mailbox, and
    /// each connection confirms the mark with a barrier (`crate::applied`). Called by the
    /// bindings follower after it handed the app a snapshot and its bindings; waits for the
    /// lock like [`AppHost::broadcast`].
    pub fn mark(&self, mark: Mark) {
        let mut guard = self.lock_blocking();
        self.drain(&mut guard);
        guard.mark = Some(mark);
        for switch in self.switches.list() {
            self.send_mark(&switch, mark);
        }
        self.release(guard);
        self.issued.send_replace(mark);
    }

    /// The marks issued so far (the latest, and a wake-up on each).
    pub fn issued(&self) -> watch::Receiver<Mark> {
        self.issued.subscribe()
    }

    fn send_mark(&self, switch: &SwitchHandle, mark: Mark) {
        if switch.is_resyncing() {
            return;
        }
        match switch.post(Command::Mark(mark), false) {
            Ok(()) | Err(SendError::Gone) => {}
            Err(SendError::Full) => self.resync(switch),
        }
    }

    /// Closes `switch`'s session for a resync: an output did not fit its mailbox.
    fn resync(&self, switch: &SwitchHandle) {
        let resyncs = self.resyncs.fetch_add(1, Ordering::Relaxed) + 1;
        switch.resync();
        tracing::warn!(
            dpid = %super::conn::DpidFmt(switch.dpid()),
            resyncs,
            "switch mailbox full: closing the session to resync it rather than lose app output"
        );
    }

    /// Asks the app about its runtime state (a bridge's MAC table, a router's ARP cache) for
    /// the REST views, after the queued events. Waits for the lock: REST runs on a thread of
    /// its own (`serve`), never on the OpenFlow runtime.
    pub fn query(&self, query: &Query) -> Option<Answer> {
        let mut guard = self.lock_blocking();
        self.drain(&mut guard);
        let answer = guard.app.query(Instant::now(), query);
        self.release(guard);
        answer
    }

    /// Runs the app's timers until `shutdown`: sleeps until its `poll_timeout`, woken early
    /// whenever a call moved it, and calls `handle_timeout` like any event (inline if the lock
    /// is free, else queued for its holder, then waits for the timer to move).
    pub async fn run_timers(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let next = *self
                .next_timer
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            let due = tokio::select! {
                _ = sleep => true,
                _ = self.timer_moved.notified() => false,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            if !due {
                continue;
            }
            if let Some(mut guard) = self.try_lock() {
                self.drain(&mut guard);
                self.timeout(&mut guard);
                self.release(guard);
                continue;
            }
            if !self.pending.timeout.swap(true, Ordering::SeqCst) {
                self.submit(Job::Timeout);
            }
            // The holder runs it and says so (`timeout` always wakes this task).
            tokio::select! {
                _ = self.timer_moved.notified() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    fn timeout(&self, inner: &mut Inner) {
        let now = Instant::now();
        if inner.app.poll_timeout().is_some_and(|t| t <= now) {
            let Inner { app, out, .. } = &mut *inner;
            app.handle_timeout(now, out);
            self.route(inner, None);
        }
        self.timer_moved.notify_one();
    }

    /// True when the app sent another switch than the event's a packet.
    fn deliver(&self, inner: &mut Inner, event: &Event, sink: Option<Sink<'_>>) -> bool {
        let Inner { app, out, .. } = &mut *inner;
        let now = Instant::now();
        app.handle(now, event, out);
        if let Event::PacketIn { .. } = event {
            self.packet_in_seconds.observe(now.elapsed().as_secs_f64());
        }
        self.route(inner, event.dpid().zip(sink))
    }

    /// A FLOW_STATS request of the app's: posted as a request behind everything the app sent
    /// the switch before, its reply handed back to the app as `Event::FlowStats` in the same
    /// ordered stream, unless the session was replaced meanwhile. Without a runtime (unit
    /// tests of the host) nothing is asked.
    fn ask_flow_stats(&self, switch: &SwitchHandle, message: Message, own: bool) {
        let Some(rt) = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        match switch.post(Command::Request(message, tx), own) {
            Ok(()) => {}
            Err(SendError::Gone) => return,
            Err(SendError::Full) => return self.resync(switch),
        }
        let (host, dpid, conn) = (self.clone(), switch.dpid(), switch.conn());
        rt.spawn(async move {
            let flows = match rx.await {
                Ok(Ok(super::Reply::Multipart(parts))) => Some(
                    parts
                        .into_iter()
                        .filter_map(|p| match p.body {
                            ofproto::MultipartReplyBody::Flow(f) => Some(f),
                            _ => None,
                        })
                        .flatten()
                        .collect(),
                ),
                Ok(Ok(_)) => None,
                Ok(Err(e)) => {
                    tracing::warn!(dpid = %super::conn::DpidFmt(dpid), error = %e, "reading the switch's flows back failed");
                    None
                }
                Err(_) => {
                    tracing::warn!(dpid = %super::conn::DpidFmt(dpid), "reading the switch's flows back failed: its session ended");
                    None
                }
            };
            host.submit(Job::Answer {
                conn,
                event: Event::FlowStats { dpid, flows },
            });
        });
    }

    /// A BARRIER_REQUEST of the app's: posted behind everything the app sent the switch
    /// before; the connection task that reads its answer (answered, refused or timed out
    /// alike: the app learns the barrier is over) hands the app `Event::Barrier` itself, as any
    /// event of that switch, so the app's answer to it leaves in the same turn. A session that
    /// ends first takes the barrier with it: the app hears of the switch going down instead.
    fn ask_barrier(&self, switch: &SwitchHandle, own: bool) {
        match switch.post(Command::AppBarrier, own) {
            Ok(()) | Err(SendError::Gone) => {}
            Err(SendError::Full) => self.resync(switch),
        }
    }

    /// Sends what the app answered: to the switch of the event through `own`'s sink, to every
    /// other switch through its mailbox; a switch whose mailbox cannot take a message is
    /// resynced instead (see the module doc), never left with a gap. True when a packet-out
    /// went to another switch than `own`'s.
    fn route(&self, inner: &mut Inner, mut own: Option<(u64, Sink<'_>)>) -> bool {
        let mut foreign = false;
        let timer = inner.app.poll_timeout();
        if timer != inner.timer {
            inner.timer = timer;
            *self
                .next_timer
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = timer;
            self.timer_moved.notify_one();
        }
        for Output { dpid, message } in inner.out.drain(..) {
            let sink = match &mut own {
                Some((d, sink)) if *d == dpid => Some(sink),
                _ => None,
            };
            // Requests whose answers go back to the app (FLOW_STATS, barriers) always take the
            // mailbox, behind what the app sent the switch before.
            let flow_stats = matches!(
                &message,
                Message::MultipartRequest(ofproto::MultipartRequest {
                    body: ofproto::MultipartRequestBody::Flow(_),
                    ..
                }) | Message::BarrierRequest
            );
            match sink {
                Some(Sink::Inline(local)) if !flow_stats => {
                    local(message);
                    continue;
                }
                Some(Sink::Mailbox(shared)) if !flow_stats => {
                    // Never full: own answers are not bounded here (module doc).
                    let _ = shared.post(Command::Send(message), true);
                    continue;
                }
                _ => {}
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
            let is_own = own.as_ref().is_some_and(|(d, _)| *d == dpid);
            foreign |= !is_own && matches!(message, Message::PacketOut(_));
            if let Message::BarrierRequest = message {
                self.ask_barrier(&switch, is_own);
                continue;
            }
            if flow_stats {
                self.ask_flow_stats(&switch, message, is_own);
                continue;
            }
            match switch.post(Command::Send(message), false) {
                Ok(()) | Err(SendError::Gone) => {}
                Err(SendError::Full) => self.resync(&switch),
            }
        }
        foreign
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::openflow::registry::{ConnShared, SwitchHandle, MAILBOX_FOREIGN, PENDING_PER_CONN};
    use crate::openflow::test_util::features;

    /// Records every event and answers each packet-in with one GET_ASYNC_REQUEST to switch
    /// `cookie`, or with a PACKET_OUT to switch `cookie - 100` for a cookie of 100 or more.
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
                out.push(match packet_in.cookie {
                    c @ 100.. => Output {
                        dpid: c - 100,
                        message: Message::PacketOut(ofproto::PacketOut {
                            buffer_id: ofproto::OFP_NO_BUFFER,
                            in_port: ofproto::port_no::CONTROLLER,
                            actions: vec![],
                            data: bytes::Bytes::new(),
                        }),
                    },
                    c => Output {
                        dpid: c,
                        message: Message::GetAsyncRequest,
                    },
                });
            }
        }
    }

    fn packet_in(dpid: u64, cookie: u64) -> Event {
        packet_in_tagged(dpid, cookie, 0)
    }

    /// A packet-in whose buffer id carries `tag`, to tell events apart.
    fn packet_in_tagged(dpid: u64, cookie: u64, tag: u32) -> Event {
        Event::PacketIn {
            dpid,
            packet_in: ofproto::PacketIn {
                buffer_id: tag,
                total_len: 0,
                reason: ofproto::PacketInReason::NoMatch,
                table_id: 0,
                cookie,
                match_: ofproto::Match::new(),
                data: bytes::Bytes::new(),
            },
        }
    }

    fn tag(event: &Event) -> Option<u32> {
        match event {
            Event::PacketIn { packet_in, .. } => Some(packet_in.buffer_id),
            _ => None,
        }
    }

    fn up(dpid: u64) -> Event {
        Event::SwitchUp {
            dpid,
            features: features(dpid),
            ports: vec![],
        }
    }

    /// A handle for connection `conn` of `dpid`, and what it shares with its connection task
    /// (its mailbox). Its command queue (REST's) is dropped: the app never uses it.
    fn handle(conn: ConnId, dpid: u64) -> (SwitchHandle, Arc<ConnShared>) {
        let (tx, _rx) = tokio::sync::mpsc::channel(4);
        let shared = Arc::new(ConnShared::default());
        let peer = "127.0.0.1:1".parse().expect("literal address");
        let h = SwitchHandle::new(conn, peer, features(dpid), tx, shared.clone());
        (h, shared)
    }

    /// The kinds of what the app posted to a connection, in order.
    fn mail(shared: &ConnShared) -> Vec<String> {
        shared
            .take_mail()
            .into_iter()
            .map(|c| match c {
                Command::Send(m) => format!("send {}", m.name()),
                Command::Mark(m) => format!("mark {}", m.revision),
                Command::Request(m, _) => format!("request {}", m.name()),
                Command::Ports(_) => "ports".to_string(),
                Command::AppBarrier => "barrier".to_string(),
            })
            .collect()
    }

    fn seen(seen: &Arc<Mutex<Vec<Event>>>) -> Vec<Event> {
        seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether `shared`'s task has a wake-up waiting for it (a stored permit).
    fn woken(shared: &ConnShared) -> bool {
        has_permit(&shared.wake)
    }

    /// Whether `n` holds a stored permit (taking it).
    fn has_permit(n: &tokio::sync::Notify) -> bool {
        let notified = std::pin::pin!(n.notified());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        notified.poll(&mut cx).is_ready()
    }

    use std::future::Future;

    #[test]
    fn events_of_replaced_sessions_are_dropped() {
        let record = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Record(record.clone())), Switches::new());
        let mut local = Vec::new();
        let (h1, s1) = handle(1, 7);
        let (h2, s2) = handle(2, 7);
        host.switch_up(h1, features(7), vec![], |_| {});
        host.event(1, &s1, packet_in(7, 7), false, |m| local.push((1, m)));
        // Connection 2 replaces connection 1 for datapath 7, which is told to close.
        host.switch_up(h2, features(7), vec![], |_| {});
        assert!(woken_kill(&s1));
        // The old session's late packet-in and its leaving must not reach the app.
        host.event(1, &s1, packet_in(7, 7), false, |m| local.push((1, m)));
        host.switch_down(7, 1, &s1);
        host.event(2, &s2, packet_in(7, 7), false, |m| local.push((2, m)));
        assert_eq!(
            seen(&record),
            vec![up(7), packet_in(7, 7), up(7), packet_in(7, 7)]
        );
        assert_eq!(host.switches().get(7).map(|h| h.conn()), Some(2));
        // Each delivered packet-in answered its own connection, inline.
        assert_eq!(
            local,
            vec![(1, Message::GetAsyncRequest), (2, Message::GetAsyncRequest)]
        );
        // The current session leaving is delivered.
        host.switch_down(7, 2, &s2);
        assert!(host.switches().get(7).is_none());
        assert_eq!(seen(&record).last(), Some(&Event::SwitchDown { dpid: 7 }));
    }

    fn woken_kill(shared: &ConnShared) -> bool {
        has_permit(&shared.kill)
    }

    #[test]
    fn outputs_for_other_switches_go_through_their_mailboxes() {
        let record = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Record(record)), Switches::new());
        let (h1, s1) = handle(1, 1);
        let (h2, s2) = handle(2, 2);
        host.switch_up(h1, features(1), vec![], |_| {});
        host.switch_up(h2, features(2), vec![], |_| {});
        let mut local = Vec::new();
        // A packet-in on switch 1 whose answer is for switch 2.
        assert!(!host.event(1, &s1, packet_in(1, 2), false, |m| local.push(m)));
        assert!(local.is_empty());
        assert_eq!(mail(&s2), ["send GET_ASYNC_REQUEST"]);
        assert!(woken(&s2));
        // A packet for switch 2: switch 1's task is told so, to let switch 2's write first.
        assert!(host.event(1, &s1, packet_in(1, 102), false, |m| local.push(m)));
        assert!(local.is_empty());
        assert_eq!(mail(&s2), ["send PACKET_OUT"]);
        // Answered to itself: inline, nothing for others.
        assert!(!host.event(1, &s1, packet_in(1, 1), false, |m| local.push(m)));
        assert_eq!(local.len(), 1);
        local.clear();
        // Unknown destination: dropped quietly.
        host.event(1, &s1, packet_in(1, 99), false, |m| local.push(m));
        assert!(local.is_empty());
        assert!(mail(&s1).is_empty());
    }

    #[test]
    fn contended_events_are_queued_and_run_by_the_holder_into_the_mailbox() {
        let record = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Record(record.clone())), Switches::new());
        let (h1, s1) = handle(1, 1);
        host.switch_up(h1, features(1), vec![], |_| {});
        // Someone holds the lock (here the test itself: `try_lock` fails as for another
        // thread): the connection does not wait, its events are queued in order.
        let guard = host.lock_blocking();
        let mut local = Vec::new();
        for t in 0..3 {
            host.event(1, &s1, packet_in_tagged(1, 1, t), false, |m| local.push(m));
        }
        assert_eq!(s1.queued.load(Ordering::SeqCst), 3);
        assert_eq!(seen(&record), vec![up(1)]);
        // The holder runs them before it lets go; their answers for switch 1 cannot go
        // inline any more: they are in its mailbox, in order, and the task is woken.
        host.release(guard);
        let tags: Vec<_> = seen(&record).iter().filter_map(tag).collect();
        assert_eq!(tags, [0, 1, 2]);
        assert!(local.is_empty());
        assert_eq!(mail(&s1), ["send GET_ASYNC_REQUEST"; 3]);
        assert_eq!(s1.queued.load(Ordering::SeqCst), 0);
        assert!(woken(&s1));
        assert_eq!(host.pending.len.load(Ordering::SeqCst), 0);
        // Uncontended again: inline.
        host.event(1, &s1, packet_in_tagged(1, 1, 3), false, |m| local.push(m));
        assert_eq!(local, [Message::GetAsyncRequest]);
    }

    #[test]
    fn a_connection_with_queued_events_queues_behind_them() {
        let record = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Record(record.clone())), Switches::new());
        let (h1, s1) = handle(1, 1);
        host.switch_up(h1, features(1), vec![], |_| {});
        // Event 0 was pushed, and its pusher has not yet tried the lock again: the lock is
        // free, but the connection's next event must not overtake it.
        s1.queued.fetch_add(1, Ordering::SeqCst);
        {
            let mut jobs = host.pending.jobs.lock().expect("not poisoned");
            jobs.push_back(Job::Event {
                conn: 1,
                shared: s1.clone(),
                event: packet_in_tagged(1, 1, 0),
                quiet: false,
            });
            host.pending.len.store(jobs.len(), Ordering::SeqCst);
        }
        let mut local = Vec::new();
        host.event(1, &s1, packet_in_tagged(1, 1, 1), false, |m| local.push(m));
        let tags: Vec<_> = seen(&record).iter().filter_map(tag).collect();
        assert_eq!(tags, [0, 1]);
        // Event 1 was queued too (the pusher then found the lock free and ran the queue):
        // both answers are in the mailbox, in order, none inline before event 0's.
        assert!(local.is_empty());
        assert_eq!(mail(&s1), ["send GET_ASYNC_REQUEST"; 2]);
        assert_eq!(s1.queued.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn queued_registrations_keep_the_order_and_drop_replaced_sessions() {
        let record = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Record(record.clone())), Switches::new());
        let (h1, s1) = handle(1, 7);
        let (h2, s2) = handle(2, 7);
        host.switch_up(h1, features(7), vec![], |_| {});
        let guard = host.lock_blocking();
        // All queued behind the lock: an event of session 1, session 2's handshake (which
        // replaces it), then session 1's late event and its leaving, then session 2's event.
        host.event(1, &s1, packet_in_tagged(7, 7, 1), false, |_| {});
        host.switch_up(h2, features(7), vec![], |_| {});
        host.event(1, &s1, packet_in_tagged(7, 7, 2), false, |_| {});
        host.switch_down(7, 1, &s1);
        host.event(2, &s2, packet_in_tagged(7, 7, 3), false, |_| {});
        // Session 2 is registered only when its `SwitchUp` is delivered.
        assert_eq!(host.switches().get(7).map(|h| h.conn()), Some(1));
        host.release(guard);
        assert_eq!(
            seen(&record),
            vec![
                up(7),
                packet_in_tagged(7, 7, 1),
                up(7),
                packet_in_tagged(7, 7, 3)
            ]
        );
        assert_eq!(host.switches().get(7).map(|h| h.conn()), Some(2));
        assert!(woken_kill(&s1));
        assert_eq!(mail(&s1), ["send GET_ASYNC_REQUEST"]);
        assert_eq!(mail(&s2), ["send GET_ASYNC_REQUEST"]);
    }

    #[test]
    fn a_connection_with_too_many_queued_events_is_told_to_wait_and_woken() {
        let record = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Record(record.clone())), Switches::new());
        let (h1, s1) = handle(1, 1);
        host.switch_up(h1, features(1), vec![], |_| {});
        let guard = host.lock_blocking();
        for t in 0..PENDING_PER_CONN as u32 {
            assert!(!s1.pending_full());
            host.event(1, &s1, packet_in_tagged(1, 1, t), false, |_| {});
        }
        // The connection task stops reading here (`conn.rs`: it awaits `wake`).
        assert!(s1.pending_full());
        assert!(!woken(&s1));
        host.release(guard);
        assert!(!s1.pending_full());
        assert!(woken(&s1));
        // The answers of its own queued events never count against its mailbox's bound.
        assert_eq!(mail(&s1).len(), PENDING_PER_CONN);
        assert_eq!(host.resyncs(), 0);
    }

    /// Connections on threads of their own hammer the host: whatever the interleaving, every
    /// event reaches the app exactly once, each connection's in its order, and nothing is left
    /// in the queue (a lost wake-up would leave events there).
    #[test]
    fn no_event_is_lost_or_reordered_under_contention() {
        const CONNS: u64 = 4;
        const EVENTS: u32 = 5_000;
        let record = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Record(record.clone())), Switches::new());
        let conns: Vec<_> = (1..=CONNS).map(|c| handle(c, c)).collect();
        for (h, _) in &conns {
            host.switch_up(h.clone(), features(h.dpid()), vec![], |_| {});
        }
        std::thread::scope(|scope| {
            for (h, shared) in &conns {
                let host = host.clone();
                scope.spawn(move || {
                    let mut inline = 0;
                    for t in 0..EVENTS {
                        host.event(
                            h.conn(),
                            shared,
                            packet_in_tagged(h.dpid(), h.dpid(), t),
                            false,
                            |_| inline += 1,
                        );
                    }
                    inline
                });
            }
            // A broadcaster taking the lock blocking meanwhile, as the bindings follower does.
            let host = host.clone();
            scope.spawn(move || {
                for _ in 0..200 {
                    host.broadcast(&Event::SwitchDown { dpid: 999 });
                }
            });
        });
        assert_eq!(host.pending.len.load(Ordering::SeqCst), 0);
        let seen = seen(&record);
        for (h, shared) in &conns {
            let tags: Vec<_> = seen
                .iter()
                .filter(|e| matches!(e, Event::PacketIn { .. }) && e.dpid() == Some(h.dpid()))
                .filter_map(tag)
                .collect();
            assert_eq!(tags, (0..EVENTS).collect::<Vec<_>>());
            assert_eq!(shared.queued.load(Ordering::SeqCst), 0);
        }
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

    /// Fills `shared`'s mailbox with foreign mail up to `MAILBOX_FOREIGN - room`.
    fn fill(shared: &ConnShared, room: usize) {
        for _ in 0..MAILBOX_FOREIGN - room {
            shared
                .post(Command::Send(Message::GetAsyncRequest), false)
                .expect("room");
        }
    }

    #[tokio::test]
    async fn a_full_mailbox_resyncs_the_switch_instead_of_losing_output() {
        let host = AppHost::new(Box::new(Burst), Switches::new());
        let (h1, s1) = handle(1, 1);
        let (h2, s2) = handle(2, 2);
        let (h3, s3) = handle(3, 3);
        host.switch_up(h1, features(1), vec![], |_| {});
        host.switch_up(h2, features(2), vec![], |_| {});
        host.switch_up(h3, features(3), vec![], |_| {});
        // Switch 2's mailbox has room for one more foreign message, switch 3's for plenty.
        fill(&s2, 1);
        let killed = s2.kill.notified();
        host.event(1, &s1, packet_in(1, 0), false, |_| {});
        // Switch 2 took the first message; the second did not fit, so its session is marked
        // and told to close, and the third was not even tried (one resync, not two).
        assert_eq!(mail(&s2).len(), MAILBOX_FOREIGN);
        assert!(s2.is_resyncing());
        let counters = |dpid| host.switches().get(dpid).map(|h| h.counters().resyncs);
        assert_eq!(counters(2), Some(1));
        assert_eq!(host.resyncs(), 1);
        // The kill is a stored permit: it is there for a connection task that waits only now.
        tokio::time::timeout(std::time::Duration::from_secs(1), killed)
            .await
            .expect("the connection is told to close");
        // Switch 3, interleaved in the same batch, got all of its messages.
        assert_eq!(mail(&s3).len(), 3);
        assert!(!s3.is_resyncing());
        assert_eq!(counters(3), Some(0));

        // Until its connection has closed, later batches skip the resyncing switch even though
        // its mailbox has room again: nothing may follow the gap.
        host.event(1, &s1, packet_in(1, 0), false, |_| {});
        assert_eq!(mail(&s2).len(), 0);
        assert_eq!(mail(&s3).len(), 3);
        assert_eq!(host.resyncs(), 1);

        // The switch reconnects: a fresh session gets everything, and the datapath's resync
        // count survives the session it ended.
        host.switch_down(2, 2, &s2);
        let (h2, s2) = handle(4, 2);
        host.switch_up(h2, features(2), vec![], |_| {});
        host.event(1, &s1, packet_in(1, 0), false, |_| {});
        assert_eq!(mail(&s2).len(), 3);
        assert!(!s2.is_resyncing());
        assert_eq!(counters(2), Some(1));
    }

    #[tokio::test]
    async fn a_mark_follows_the_outputs_in_every_mailbox_and_greets_new_switches() {
        let host = AppHost::new(Box::new(Burst), Switches::new());
        let (h1, s1) = handle(1, 1);
        let (h2, s2) = handle(2, 2);
        host.switch_up(h1, features(1), vec![], |_| {});
        host.switch_up(h2, features(2), vec![], |_| {});
        // Before any mark, a switch is greeted with none.
        assert!(mail(&s2).is_empty());
        let issued = host.issued();
        host.event(1, &s1, packet_in(1, 0), false, |_| {});
        let mark = Mark {
            revision: 7,
            bindings: 2,
        };
        host.mark(mark);
        assert_eq!(*issued.borrow(), mark);
        assert_eq!(
            mail(&s2),
            [
                "send GET_ASYNC_REQUEST",
                "send GET_ASYNC_REQUEST",
                "send GET_ASYNC_REQUEST",
                "mark 7"
            ]
        );
        // A switch connecting later gets the current mark behind its own greeting.
        let (h3, s3) = handle(3, 3);
        host.switch_up(h3, features(3), vec![], |_| {});
        assert_eq!(mail(&s3), ["mark 7"]);
    }
    /// Sends a message then a barrier to switch 2 for each packet-in, and records the events.
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

    /// The barrier is queued behind what the app sent the switch before, as the app's own
    /// (its answer comes back as an event through that switch's connection task:
    /// `tests/openflow_sessions.rs`), not as a send nobody waits on.
    #[test]
    fn an_apps_barrier_is_queued_in_order_as_the_apps_own() {
        let record = Arc::new(Mutex::new(Vec::new()));
        let host = AppHost::new(Box::new(Barriers(record.clone())), Switches::new());
        let (h1, s1) = handle(1, 1);
        let (h2, s2) = handle(2, 2);
        host.switch_up(h1, features(1), vec![], |_| {});
        host.switch_up(h2, features(2), vec![], |_| {});
        host.event(1, &s1, packet_in(1, 0), false, |_| {});
        assert_eq!(mail(&s2), ["send GET_ASYNC_REQUEST", "barrier"]);
        // Its answer, handed over by switch 2's task, reaches the app as any event of it.
        host.event(2, &s2, Event::Barrier { dpid: 2 }, false, |_| {});
        assert_eq!(seen(&record).last(), Some(&Event::Barrier { dpid: 2 }));
    }
}
