//! `strowger bench ofload`: the tokio driver around [`EmulatedSwitch`]. One task per emulated
//! switch owns its socket and its state machine; a coordinator waits until every switch has
//! finished its handshake, then starts them all on one schedule (warm-up, then measurement) and
//! merges their counts and latency histograms into a [`Report`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::report::{InvalidationReport, LatencySummary, Params, Report};
use super::switch::{split_message, Counts, EmulatedSwitch, Record, Schedule, SwitchConfig};
use super::virt::VirtualSwitch;
use super::vtopo::Topology;

/// How the generator loads the controller.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keep `--in-flight` packet-ins outstanding per switch (cbench's default mode).
    Throughput,
    /// One packet-in outstanding per switch (cbench `-l`): each waits for the previous answer.
    Latency,
}

/// How a paced run (`--rate`) spreads its packet-ins.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pacing {
    /// Send whenever credit allows: on the 1 ms clock and after every read. Arrivals are
    /// spread out like real traffic, and both ends pay about one syscall per message.
    Smooth,
    /// Send only on the 1 ms clock (tokio's timer resolution): each switch's quota goes out in
    /// one write. Cheaper for both ends; latencies include the wait behind the same burst.
    Tick,
}

/// Flags of `strowger bench ofload`.
#[derive(clap::Args, Debug, Clone)]
pub struct OfloadArgs {
    /// The controller to load (host:port).
    #[arg(long, default_value = "127.0.0.1:6653", conflicts_with = "in_process")]
    pub controller: SocketAddr,
    /// Load an in-process trivial responder instead of a controller: measures the generator's
    /// own ceiling.
    #[arg(long)]
    pub in_process: bool,
    /// Emulated switches (one TCP connection each).
    #[arg(long, short = 's', default_value_t = 16)]
    pub switches: u32,
    /// Distinct source MACs (hosts) per switch.
    #[arg(long, short = 'M', default_value_t = 1000)]
    pub macs: u32,
    /// Ports per switch; hosts are spread over them.
    #[arg(long, default_value_t = 4)]
    pub ports: u32,
    /// Packet-ins in flight per switch in throughput mode.
    #[arg(long, short = 'k', default_value_t = 64)]
    pub in_flight: u32,
    /// throughput or latency.
    #[arg(long, value_enum, default_value = "throughput")]
    pub mode: Mode,
    /// Total packet-ins per second across all switches (open loop, paced); unset = as fast as
    /// the window allows. Use about half the peak to read latency percentiles.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How a paced run spreads its packet-ins over time.
    #[arg(long, value_enum, default_value = "smooth")]
    pub pacing: Pacing,
    /// Measured seconds (after the warm-up).
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring (MAC learning, caches, JITs).
    #[arg(long, short = 'w', default_value_t = 2.0)]
    pub warmup: f64,
    /// Stop after this many packet-ins per switch and their answers, instead of after the
    /// duration.
    #[arg(long)]
    pub count: Option<u64>,
    /// A packet-in unanswered after this many milliseconds is counted lost.
    #[arg(long, default_value_t = 1000)]
    pub loss_timeout_ms: u64,
    /// Seconds allowed for every switch to connect and finish its handshake.
    #[arg(long, default_value_t = 15.0)]
    pub handshake_timeout: f64,
    /// Seconds allowed for the learning round (one answered packet-in per MAC and switch)
    /// that precedes the warm-up.
    #[arg(long, default_value_t = 120.0)]
    pub learn_timeout: f64,
    /// First datapath id; switch i gets dpid + i.
    #[arg(long, default_value_t = 1)]
    pub first_dpid: u64,
    /// Tokio worker threads (default: one per CPU the process may use).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No per-second progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Virtual-topology mode: build this topology through the controller's REST API (`--api`),
    /// make every emulated switch a registered host whose VIFs are bound to logical ports, and
    /// check every answer. `bridge`: one bridge between hosts; `router`: bridge → router →
    /// bridge; `router-chain`: the same with a 10-rule chain as the router's inbound filter.
    /// Needs `ovsdb-server` and `ovsdb-tool` (an `ovsdb-server` per emulated host; see
    /// BENCHMARKS.md).
    #[arg(long, value_enum)]
    pub topology: Option<Topology>,
    /// The controller's REST API (virtual-topology mode).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// VMs (bound VIFs) per emulated host in the virtual-topology mode.
    #[arg(long, default_value_t = 64)]
    pub vms: u32,
    /// Distinct UDP destination ports per (source, destination) pair in the virtual-topology
    /// mode (flows that read L4, as through the chain, differ by them).
    #[arg(long, default_value_t = 16)]
    pub tp_ports: u16,
    /// Where the emulated hosts' databases live (default: a fresh directory under /tmp).
    #[arg(long)]
    pub hosts_dir: Option<std::path::PathBuf>,
    /// End-to-end invalidation (with `--topology bridge`): install this many flows (100 source
    /// VMs on one host, each to every one of FLOWS/100 MACs behind a sink VIF on another),
    /// then set one source port admin-down over REST and time the REST request to the last of
    /// its flows' deletes arriving; the other 99 % must get none.
    #[arg(long, value_name = "FLOWS")]
    pub invalidate: Option<u64>,
}

impl OfloadArgs {
    /// The arguments of a small run against `controller`, for tests and examples.
    pub fn for_test(controller: SocketAddr, switches: u32, count: u64) -> Self {
        Self {
            controller,
            in_process: false,
            switches,
            macs: 100,
            ports: 4,
            in_flight: 16,
            mode: Mode::Throughput,
            rate: None,
            pacing: Pacing::Smooth,
            duration: 30.0,
            warmup: 0.0,
            count: Some(count),
            loss_timeout_ms: 5000,
            handshake_timeout: 10.0,
            learn_timeout: 10.0,
            first_dpid: 1,
            threads: None,
            json: false,
            quiet: true,
            topology: None,
            api: String::new(),
            vms: 8,
            tp_ports: 4,
            hosts_dir: None,
            invalidate: None,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.switches == 0 || self.switches > 65_535 {
            bail!("--switches must be in 1..=65535");
        }
        if self.macs < 2 || self.macs > 1 << 24 {
            bail!("--macs must be in 2..=16777216");
        }
        if self.ports < 2 {
            bail!("--ports must be at least 2 (a host never talks to its own port)");
        }
        if self.in_flight == 0 || self.in_flight > 65_536 {
            bail!("--in-flight must be in 1..=65536");
        }
        if !(self.duration > 0.0
            && self.warmup >= 0.0
            && self.handshake_timeout > 0.0
            && self.learn_timeout > 0.0)
        {
            bail!("--duration and the timeouts must be positive, --warmup non-negative");
        }
        if let Some(r) = self.rate {
            if !(r > 0.0 && r.is_finite()) {
                bail!("--rate must be a positive number");
            }
        }
        Ok(())
    }
}

/// Live counters the progress reporter samples; switch tasks add to them once per batch.
#[derive(Default)]
struct Live {
    answered: AtomicU64,
    flow_mods: AtomicU64,
    deletes: AtomicU64,
}

/// What a switch task hands back.
struct Outcome {
    dpid: u64,
    totals: Counts,
    window: Counts,
    outstanding: u32,
    latency: Histogram<u64>,
    mismatch_examples: Vec<String>,
    record: Record,
}

/// Milestones a switch task reports to the coordinator.
const HANDSHAKE: u8 = 0;
const LEARNED: u8 = 1;
const FINISHED: u8 = 2;

/// The end-to-end invalidation step of a virtual-topology count run: once every flow is in,
/// one REST change (`port` goes admin-down) must delete exactly the flows `sender` of switch
/// `dpid` installed.
#[derive(Debug, Clone)]
pub struct Invalidation {
    /// The REST API base (`http://…`).
    pub api: String,
    /// The logical port set admin-down.
    pub port: String,
    /// The datapath whose sender's flows are affected.
    pub dpid: u64,
    /// The sender (index in that switch's [`VirtualSwitch::senders`]) behind that port.
    pub sender: u32,
}

/// Runs the generator and returns its report. Progress lines go to stderr unless `quiet`.
pub async fn run(args: &OfloadArgs) -> anyhow::Result<Report> {
    if args.topology.is_some() {
        return super::vtopo::run(args).await;
    }
    run_with(args, None, None).await
}

/// Runs the generator; with `virts`, switch i is the emulated host `virts[i]` (its datapath id
/// and virtual part), and `invalidation` (count runs only) follows the last answer.
pub async fn run_with(
    args: &OfloadArgs,
    virts: Option<Vec<(u64, Arc<VirtualSwitch>)>>,
    invalidation: Option<Invalidation>,
) -> anyhow::Result<Report> {
    args.validate()?;
    let virtual_mode = virts.is_some();
    let switches = virts.as_ref().map_or(args.switches, |v| v.len() as u32);
    let in_flight = match args.mode {
        Mode::Throughput => args.in_flight,
        Mode::Latency => 1,
    };
    let mut responder_stop = None;
    let controller = if args.in_process {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        responder_stop = Some(tx);
        tokio::spawn(super::responder::run(listener, false, async move {
            let _ = rx.await;
        }));
        addr
    } else {
        args.controller
    };

    let live = Arc::new(Live::default());
    let (ready_tx, mut ready_rx) = mpsc::channel::<(u32, u8)>(3 * switches as usize);
    let (schedule_tx, schedule_rx) = watch::channel::<Option<Schedule>>(None);
    let per_switch_rate = args.rate.map(|r| r / f64::from(switches));
    let mut tasks = tokio::task::JoinSet::new();
    let pacing = args.pacing;
    for i in 0..switches {
        let virt = virts.as_ref().map(|v| v[i as usize].clone());
        let cfg = SwitchConfig {
            index: i,
            dpid: virt
                .as_ref()
                .map_or(args.first_dpid + u64::from(i), |v| v.0),
            ports: args.ports,
            // The learning round is one packet-in per sender.
            macs: virt
                .as_ref()
                .map_or(args.macs, |v| v.1.senders.len() as u32),
            in_flight,
            loss_timeout: Duration::from_millis(args.loss_timeout_ms),
            limit: virt.as_ref().and_then(|v| v.1.limit).or(args.count),
            virt: virt.map(|v| v.1),
        };
        let live = live.clone();
        let ready = ready_tx.clone();
        let schedule = schedule_rx.clone();
        tasks.spawn(async move {
            drive_switch(controller, cfg, pacing, ready, schedule, live)
                .await
                .with_context(|| format!("emulated switch {i}"))
        });
    }
    drop(ready_tx);

    // Every switch must be through its handshake before the clock starts, or the first
    // seconds would measure connection set-up.
    let handshake = Duration::from_secs_f64(args.handshake_timeout);
    wait_all(
        &mut ready_rx,
        &mut tasks,
        switches,
        HANDSHAKE,
        handshake,
        if virtual_mode {
            "finish the handshake and see every sender's VIF bound (classifier entries)"
        } else {
            "finish the handshake"
        },
    )
    .await?;
    // Then one round of every host as a source (unpaced, unmeasured): from there on every
    // destination is known, so a learning switch answers each packet-in with a FLOW_MOD and a
    // PACKET_OUT, whatever the controller's speed. A fixed warm-up alone would leave a slow
    // controller still flooding when the measurement starts.
    if args.count.is_none() || virtual_mode {
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let _ = schedule_tx.send(Some(Schedule {
            measure_from: far,
            stop_at: far,
            rate: None,
        }));
        if !args.quiet {
            eprintln!(
                "ofload: {} switches connected to {controller}; learning {} MACs per switch",
                switches,
                if virtual_mode {
                    "every VM's".to_string()
                } else {
                    args.macs.to_string()
                }
            );
        }
        let learn = Duration::from_secs_f64(args.learn_timeout);
        wait_all(
            &mut ready_rx,
            &mut tasks,
            switches,
            LEARNED,
            learn,
            "get answers to every MAC",
        )
        .await?;
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let stop_at = measure_from + Duration::from_secs_f64(args.duration);
    let schedule = Schedule {
        measure_from,
        stop_at,
        rate: per_switch_rate,
    };
    let _ = schedule_tx.send(Some(schedule));
    if !args.quiet {
        eprintln!(
            "ofload: warm-up {} s, measuring {} s",
            args.warmup, args.duration
        );
    }

    let progress = tokio::spawn(progress(
        live.clone(),
        start,
        measure_from,
        stop_at,
        args.quiet,
    ));
    // A virtual-topology count run: the switches wait for the stop, so that the invalidation
    // step can follow their last answer on the same connections.
    let mut invalidated = None;
    if virtual_mode && args.count.is_some() {
        wait_all(
            &mut ready_rx,
            &mut tasks,
            switches,
            FINISHED,
            Duration::from_secs_f64(args.duration.max(60.0)),
            "get answers to all their packet-ins",
        )
        .await?;
        if let Some(inv) = &invalidation {
            invalidated = Some(invalidate(inv, &live).await?);
        }
        let now = Instant::now();
        let _ = schedule_tx.send(Some(Schedule {
            measure_from,
            stop_at: now,
            rate: per_switch_rate,
        }));
    }
    let mut totals = Counts::default();
    let mut window = Counts::default();
    let mut outstanding = 0u64;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut per_switch = Vec::with_capacity(switches as usize);
    let mut mismatch_examples = Vec::new();
    let mut records = Vec::new();
    while let Some(res) = tasks.join_next().await {
        let o = res??;
        totals.add(&o.totals);
        window.add(&o.window);
        outstanding += u64::from(o.outstanding);
        latency.add(&o.latency)?;
        per_switch.push(o.window.answered);
        mismatch_examples.extend(
            o.mismatch_examples
                .iter()
                .map(|m| format!("dpid {:#x}: {m}", o.dpid)),
        );
        records.push((o.dpid, o.record));
    }
    let finished = Instant::now();
    progress.abort();
    let per_second = progress.await.unwrap_or_default();
    if let Some(tx) = responder_stop {
        let _ = tx.send(());
    }
    // In count mode the run ends when the last answer arrives, usually before `stop_at`.
    let window_secs = finished
        .min(stop_at)
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    per_switch.sort_unstable();
    let mut report = Report::new(
        Params {
            controller: if args.in_process {
                "in-process responder".to_string()
            } else {
                controller.to_string()
            },
            mode: args.mode,
            topology: args.topology,
            switches,
            macs: args.macs,
            ports: args.ports,
            in_flight,
            rate: args.rate,
            pacing: args.rate.map(|_| args.pacing),
            warmup_secs: args.warmup,
            duration_secs: args.duration,
            count: args.count,
        },
        window_secs,
        totals,
        window,
        outstanding,
        per_switch,
        per_second,
        LatencySummary::from_histogram(&latency),
    );
    report.mismatch_examples = mismatch_examples;
    if let (Some(inv), Some((t0, replied))) = (&invalidation, invalidated) {
        report.invalidation = Some(InvalidationReport::from_records(inv, t0, replied, &records));
    }
    if report.totals.mismatched > 0 {
        eprintln!(
            "ofload: !!! {} ANSWERS WERE NOT THE EXPECTED FLOW_MOD AND PACKET_OUT, e.g.:",
            report.totals.mismatched
        );
        for m in &report.mismatch_examples {
            eprintln!("ofload: !!!   {m}");
        }
    }
    Ok(report)
}

/// The invalidation step: sets the port admin-down over REST and waits until the deletes stop
/// arriving. Returns when the request was sent and how long its answer took.
async fn invalidate(inv: &Invalidation, live: &Live) -> anyhow::Result<(Instant, Duration)> {
    let http = reqwest::Client::new();
    let url = format!(
        "{}/api/v1/ports/{}",
        inv.api.trim_end_matches('/'),
        inv.port
    );
    let mut port: serde_json::Value = http
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    port["admin_state_up"] = serde_json::Value::Bool(false);
    let before = live.deletes.load(Ordering::Relaxed);
    let t0 = Instant::now();
    http.put(&url)
        .json(&port)
        .send()
        .await?
        .error_for_status()
        .context("setting the port admin-down")?;
    let replied = t0.elapsed();
    // Until no delete has come for 300 ms (at most 10 s): the report then counts what came.
    let mut last = (before, Instant::now());
    while t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let n = live.deletes.load(Ordering::Relaxed);
        if n != last.0 {
            last = (n, Instant::now());
        } else if n > before && last.1.elapsed() > Duration::from_millis(300) {
            break;
        }
    }
    Ok((t0, replied))
}

/// Waits until `n` switches have reported the next milestone on `rx`, failing when one of them
/// ends (only an error can end a switch before the run) or after `timeout`.
async fn wait_all(
    rx: &mut mpsc::Receiver<(u32, u8)>,
    tasks: &mut tokio::task::JoinSet<anyhow::Result<Outcome>>,
    n: u32,
    milestone: u8,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut done = 0;
    while done < n {
        tokio::select! {
            r = rx.recv() => match r {
                Some((_, m)) if m == milestone => done += 1,
                Some(_) => {}
                None => {
                    // Every switch ended: the first error says why.
                    while let Some(res) = tasks.join_next().await {
                        res??;
                    }
                    bail!("every emulated switch ended before the run started");
                }
            },
            Some(res) = tasks.join_next() => {
                res??;
                bail!("an emulated switch ended before the run started");
            }
            _ = tokio::time::sleep_until(deadline) => {
                bail!("only {done} of {n} switches did {what} within {} s", timeout.as_secs_f64());
            }
        }
    }
    Ok(())
}

/// Prints a line per second and returns answered packet-ins per whole measured second.
async fn progress(
    live: Arc<Live>,
    start: Instant,
    measure_from: Instant,
    stop_at: Instant,
    quiet: bool,
) -> Vec<u64> {
    let mut series = Vec::new();
    let mut tick = tokio::time::interval_at(
        (start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    let mut last = (0, 0);
    let mut last_at = start;
    loop {
        let now = tick.tick().await.into_std();
        let cur = (
            live.answered.load(Ordering::Relaxed),
            live.flow_mods.load(Ordering::Relaxed),
        );
        let secs = now
            .saturating_duration_since(last_at)
            .as_secs_f64()
            .max(1e-9);
        let answered = cur.0 - last.0;
        if !quiet {
            eprintln!(
                "ofload: {:>6.1} s  {:>10.0} responses/s  {:>10.0} flow_mods/s{}",
                now.saturating_duration_since(start).as_secs_f64(),
                answered as f64 / secs,
                (cur.1 - last.1) as f64 / secs,
                if now <= measure_from {
                    "  (warm-up)"
                } else {
                    ""
                }
            );
        }
        if last_at >= measure_from && now <= stop_at {
            series.push(answered);
        }
        last = cur;
        last_at = now;
        if now >= stop_at {
            return series;
        }
    }
}

async fn drive_switch(
    controller: SocketAddr,
    cfg: SwitchConfig,
    pacing: Pacing,
    ready_tx: mpsc::Sender<(u32, u8)>,
    mut schedule_rx: watch::Receiver<Option<Schedule>>,
    live: Arc<Live>,
) -> anyhow::Result<Outcome> {
    let index = cfg.index;
    let dpid = cfg.dpid;
    let cfg_macs = cfg.macs;
    let mut stream = TcpStream::connect(controller)
        .await
        .with_context(|| format!("connecting to {controller}"))?;
    stream.set_nodelay(true)?;
    let mut sw = EmulatedSwitch::new(cfg);
    let mut rbuf = BytesMut::with_capacity(256 * 1024);
    let mut out = BytesMut::with_capacity(256 * 1024);
    sw.start(&mut out);
    // Milestones reported to the coordinator: handshake done, then every MAC answered once.
    let mut announced = false;
    let mut learned = false;
    let mut finished = false;
    let mut schedules = 0;
    let macs = u64::from(cfg_macs);
    let mut schedule: Option<Schedule> = None;
    let mut listening = true;
    // In paced runs the tick releases packet-ins between answers (1 ms is tokio's timer
    // resolution); otherwise it only drives the loss timeout and the end of the run.
    let mut tick: Option<tokio::time::Interval> = None;
    let mut last_expire = Instant::now();
    let mut reported = (0u64, 0u64);
    let mut reported_deletes = 0u64;
    loop {
        if !out.is_empty() {
            // Everything produced since the last write goes out in one syscall.
            stream.write_all(&out).await?;
            out.clear();
        }
        if let Some(s) = schedule {
            // A virtual-topology switch stays for the coordinator's stop (the invalidation
            // step comes after its last answer).
            if (sw.done() && !sw.is_virtual()) || Instant::now() >= s.stop_at {
                break;
            }
        }
        let mut ticked = false;
        tokio::select! {
            n = stream.read_buf(&mut rbuf) => {
                if n? == 0 {
                    bail!("the controller closed the connection");
                }
                let now = Instant::now();
                while let Some(msg) = split_message(&mut rbuf)? {
                    sw.handle(&msg, now, &mut out)?;
                }
                // The coordinator may have given up already; the run then fails there.
                if !announced && sw.is_ready() {
                    announced = true;
                    let _ = ready_tx.send((index, HANDSHAKE)).await;
                }
                if announced && !learned && sw.totals().answered >= macs {
                    learned = true;
                    let _ = ready_tx.send((index, LEARNED)).await;
                }
                if learned && !finished && schedules >= 2 && sw.is_virtual() && sw.done() {
                    finished = true;
                    let _ = ready_tx.send((index, FINISHED)).await;
                }
            }
            // The learning round's schedule is replaced by the measured run's.
            changed = schedule_rx.changed(), if listening => {
                if changed.is_err() {
                    // The coordinator is gone: it failed, and reports why.
                    listening = false;
                    if schedule.is_none() {
                        bail!("the run was abandoned before it started");
                    }
                    continue;
                }
                if let Some(s) = *schedule_rx.borrow_and_update() {
                    schedules += 1;
                    if schedules >= 2 {
                        sw.end_learning();
                    }
                    schedule = Some(s);
                    sw.begin(s, Instant::now());
                    ticked = true;
                    let period = if s.rate.is_some() { 1 } else { 50 };
                    let mut t = tokio::time::interval(Duration::from_millis(period));
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    tick = Some(t);
                }
            }
            Some(_) = next_tick(&mut tick) => ticked = true,
        }
        let now = Instant::now();
        if let Some(s) = schedule {
            if now.saturating_duration_since(last_expire) >= Duration::from_millis(50) {
                sw.expire(now);
                last_expire = now;
            }
            // A closed loop refills the window as answers arrive; so does a smooth paced run,
            // as far as its credit allows. A `tick` paced run sends only on its clock, each
            // switch's 1 ms quota in one write: both ends then batch, at the price of bursts.
            if s.rate.is_none() || ticked || pacing == Pacing::Smooth {
                sw.fill(now, &mut out);
            }
        }
        let deletes = sw.record.deletes.len() as u64;
        if deletes != reported_deletes {
            live.deletes
                .fetch_add(deletes - reported_deletes, Ordering::Relaxed);
            reported_deletes = deletes;
        }
        let t = sw.totals();
        if (t.answered, t.flow_mods) != reported {
            live.answered
                .fetch_add(t.answered - reported.0, Ordering::Relaxed);
            live.flow_mods
                .fetch_add(t.flow_mods - reported.1, Ordering::Relaxed);
            reported = (t.answered, t.flow_mods);
        }
    }
    let outcome = Outcome {
        dpid,
        totals: sw.totals(),
        window: sw.window(),
        outstanding: sw.outstanding(),
        latency: sw.latency().clone(),
        mismatch_examples: std::mem::take(&mut sw.mismatch_examples),
        record: std::mem::take(&mut sw.record),
    };
    // Close like a switch going away: FIN, then read (and ignore) the answers still coming until
    // the controller closes too. Dropping a socket with unread bytes would send an RST, which
    // controllers log as an error per connection.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        stream.shutdown().await?;
        loop {
            rbuf.clear();
            if stream.read_buf(&mut rbuf).await? == 0 {
                return Ok::<_, std::io::Error>(());
            }
        }
    })
    .await;
    Ok(outcome)
}

/// Waits for the next tick of `tick`, or forever when there is none yet.
async fn next_tick(tick: &mut Option<tokio::time::Interval>) -> Option<()> {
    match tick {
        Some(t) => {
            t.tick().await;
            Some(())
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_ofload_against_in_process_responder_counts_add_up() {
        let args = OfloadArgs {
            in_process: true,
            ..OfloadArgs::for_test("127.0.0.1:9".parse().unwrap(), 4, 1000)
        };
        let report = run(&args).await.expect("the run completes");
        assert_eq!(report.totals, Counts::all_answered(4000));
        assert_eq!(report.in_flight_at_end, 0);
        assert_eq!(report.latency.samples, 4000);
        assert_eq!(report.per_switch_min_max, (1000, 1000));
        assert!(report.responses_per_sec > 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_ofload_paced_runs_hold_the_rate_in_both_pacings() {
        for pacing in [Pacing::Smooth, Pacing::Tick] {
            let args = OfloadArgs {
                in_process: true,
                rate: Some(30_000.0),
                pacing,
                ..OfloadArgs::for_test("127.0.0.1:9".parse().unwrap(), 2, 300)
            };
            let r = run(&args).await.expect("the run completes");
            assert_eq!(r.totals, Counts::all_answered(600), "{pacing:?}");
            // 600 packet-ins at 30 000/s take 20 ms; pacing can only make a run slower.
            assert!(r.window_secs >= 0.015, "{pacing:?}: {} s", r.window_secs);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_ofload_timed_run_learns_then_measures_and_accounts_for_every_packet_in() {
        let args = OfloadArgs {
            in_process: true,
            count: None,
            duration: 0.3,
            warmup: 0.1,
            ..OfloadArgs::for_test("127.0.0.1:9".parse().unwrap(), 3, 0)
        };
        let r = run(&args).await.expect("the run completes");
        let t = r.totals;
        // The learning round alone answers one packet-in per MAC and switch.
        assert!(t.answered >= 3 * 100, "{t:?}");
        assert_eq!(t.packet_ins, t.answered + r.in_flight_at_end + t.lost);
        assert_eq!((t.lost, t.unmatched, t.errors), (0, 0, 0));
        assert!(r.window.answered > 0 && r.window.answered < t.answered);
        assert!(
            r.window_secs > 0.25 && r.window_secs < 0.35,
            "{}",
            r.window_secs
        );
        assert!(r.latency.samples > 0);
    }

    #[tokio::test]
    async fn bench_ofload_reports_a_controller_that_hangs_up() {
        // A "controller" that accepts and closes at once. (A port bound and released would not
        // do: a test running alongside may be given it.)
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        let err = format!(
            "{:#}",
            run(&OfloadArgs::for_test(addr, 2, 10)).await.unwrap_err()
        );
        // Depending on timing the HELLO's write or the next read notices first.
        assert!(err.starts_with("emulated switch"), "{err}");
        assert!(
            ["closed the connection", "reset", "Broken pipe"]
                .iter()
                .any(|m| err.contains(m)),
            "{err}"
        );
    }
}
