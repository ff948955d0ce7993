//! The result of one `strowger bench ofload` run: parameters, counts, rates, the per-second
//! series (cbench's min/max/avg/stdev) and latency percentiles, as JSON or a human summary.

use hdrhistogram::Histogram;
use serde::Serialize;

use std::time::{Duration, Instant};

use super::ofload::{Invalidation, Mode, Pacing};
use super::switch::{Counts, Record};
use super::vtopo::Topology;

/// The parameters a run used, repeated in its report so a JSON file stands on its own.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Controller address, or "in-process responder".
    pub controller: String,
    /// throughput or latency.
    pub mode: Mode,
    /// The virtual topology crossed (virtual-topology mode).
    pub topology: Option<Topology>,
    /// Emulated switches.
    pub switches: u32,
    /// Source MACs per switch.
    pub macs: u32,
    /// Ports per switch.
    pub ports: u32,
    /// Packet-ins in flight per switch.
    pub in_flight: u32,
    /// Target packet-ins/s over all switches, when paced.
    pub rate: Option<f64>,
    /// How a paced run spread its packet-ins.
    pub pacing: Option<Pacing>,
    /// Warm-up seconds.
    pub warmup_secs: f64,
    /// Measured seconds requested.
    pub duration_secs: f64,
    /// Packet-ins per switch, when the run was bounded by count.
    pub count: Option<u64>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencySummary {
    /// Samples (answered packet-ins sent inside the window).
    pub samples: u64,
    /// Smallest.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl LatencySummary {
    /// Summarises a histogram of nanoseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            samples: h.len(),
            min_us: us(h.min()),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// Min/max/mean/stdev of answered packet-ins over the whole measured seconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SeriesSummary {
    /// Slowest second.
    pub min: u64,
    /// Fastest second.
    pub max: u64,
    /// Mean.
    pub avg: f64,
    /// Standard deviation.
    pub stdev: f64,
}

impl SeriesSummary {
    fn of(series: &[u64]) -> Self {
        if series.is_empty() {
            return Self::default();
        }
        let n = series.len() as f64;
        let avg = series.iter().sum::<u64>() as f64 / n;
        let var = series
            .iter()
            .map(|&v| (v as f64 - avg).powi(2))
            .sum::<f64>()
            / n;
        Self {
            min: series.iter().copied().min().unwrap_or(0),
            max: series.iter().copied().max().unwrap_or(0),
            avg,
            stdev: var.sqrt(),
        }
    }
}

/// One run's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was asked.
    pub params: Params,
    /// Seconds actually measured.
    pub window_secs: f64,
    /// Answered packet-ins per second inside the window: the headline figure.
    pub responses_per_sec: f64,
    /// FLOW_MODs per second inside the window.
    pub flow_mods_per_sec: f64,
    /// PACKET_OUTs per second inside the window.
    pub packet_outs_per_sec: f64,
    /// Packet-ins sent per second inside the window.
    pub packet_ins_per_sec: f64,
    /// Counts inside the window.
    pub window: Counts,
    /// Counts over the whole run, warm-up included.
    pub totals: Counts,
    /// Packet-ins still unanswered when the run stopped.
    pub in_flight_at_end: u64,
    /// Answered packet-ins per whole measured second.
    pub per_second: Vec<u64>,
    /// Summary of `per_second`.
    pub per_second_summary: SeriesSummary,
    /// Fewest and most answers inside the window among the switches (fairness).
    pub per_switch_min_max: (u64, u64),
    /// Latency of answered packet-ins sent inside the window.
    pub latency: LatencySummary,
    /// The first mismatched answers, described (virtual-topology mode).
    pub mismatch_examples: Vec<String>,
    /// The end-to-end invalidation step, when one was run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalidation: Option<InvalidationReport>,
}

/// REST change → last affected flow deleted on the emulated switches.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidationReport {
    /// Flow-cache entries installed (answers checked) after the learning round.
    pub flows_installed: u64,
    /// Of those, the ones the change must delete (the admin-down port's).
    pub affected: u64,
    /// Affected flows whose delete arrived.
    pub affected_deleted: u64,
    /// Installed flows that were not affected but got a delete (must be 0).
    pub unaffected_deleted: u64,
    /// Deletes after the change of cookies the run did not install after the learning round
    /// (learning-round flows that depend on the port that went down; 0 by construction).
    pub other_deleted: u64,
    /// Milliseconds from sending the REST request to its answer.
    pub rest_reply_ms: f64,
    /// Milliseconds from sending the REST request to the first affected delete's arrival.
    pub first_delete_ms: f64,
    /// Milliseconds from sending the REST request to the last affected delete's arrival.
    pub last_delete_ms: f64,
}

impl InvalidationReport {
    /// What the switches recorded around the change sent at `t0`.
    pub fn from_records(
        inv: &Invalidation,
        t0: Instant,
        replied: Duration,
        records: &[(u64, Record)],
    ) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut r = InvalidationReport {
            flows_installed: 0,
            affected: 0,
            affected_deleted: 0,
            unaffected_deleted: 0,
            other_deleted: 0,
            rest_reply_ms: ms(replied),
            first_delete_ms: f64::NAN,
            last_delete_ms: f64::NAN,
        };
        let (mut first, mut last) = (None::<Instant>, None::<Instant>);
        for (dpid, rec) in records {
            r.flows_installed += rec.installed.len() as u64;
            let mine = |s: &u32| *dpid == inv.dpid && *s == inv.sender;
            r.affected += rec.installed.values().filter(|s| mine(s)).count() as u64;
            // Deletes before the change (learning-round floods retired as MACs were learned)
            // are not its doing.
            for (at, cookie) in rec.deletes.iter().filter(|(at, _)| *at >= t0) {
                match rec.installed.get(cookie) {
                    Some(s) if mine(s) => {
                        r.affected_deleted += 1;
                        first = Some(first.map_or(*at, |f| f.min(*at)));
                        last = Some(last.map_or(*at, |l| l.max(*at)));
                    }
                    Some(_) => r.unaffected_deleted += 1,
                    None => r.other_deleted += 1,
                }
            }
        }
        if let (Some(f), Some(l)) = (first, last) {
            r.first_delete_ms = ms(f.saturating_duration_since(t0));
            r.last_delete_ms = ms(l.saturating_duration_since(t0));
        }
        r
    }
}

impl Report {
    /// Builds a report; `per_switch` holds each switch's answers in the window.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        params: Params,
        window_secs: f64,
        totals: Counts,
        window: Counts,
        in_flight_at_end: u64,
        per_switch: Vec<u64>,
        per_second: Vec<u64>,
        latency: LatencySummary,
    ) -> Self {
        let rate = |n: u64| {
            if window_secs > 0.0 {
                n as f64 / window_secs
            } else {
                0.0
            }
        };
        Self {
            responses_per_sec: rate(window.answered),
            flow_mods_per_sec: rate(window.flow_mods),
            packet_outs_per_sec: rate(window.packet_outs),
            packet_ins_per_sec: rate(window.packet_ins),
            per_second_summary: SeriesSummary::of(&per_second),
            per_switch_min_max: (
                per_switch.iter().copied().min().unwrap_or(0),
                per_switch.iter().copied().max().unwrap_or(0),
            ),
            params,
            window_secs,
            window,
            totals,
            in_flight_at_end,
            per_second,
            latency,
            mismatch_examples: Vec::new(),
            invalidation: None,
        }
    }

    /// The human summary.
    pub fn human(&self) -> String {
        let p = &self.params;
        let l = &self.latency;
        let s = &self.per_second_summary;
        let mut out = format!(
            "ofload {mode:?} against {ctl}: {sw} switches x {macs} MACs, {k} in flight/switch{rate}\n",
            mode = p.mode,
            ctl = p.controller,
            sw = p.switches,
            macs = p.macs,
            k = p.in_flight,
            rate = p
                .rate
                .map(|r| format!(
                    ", paced ({:?}) at {r:.0} packet-ins/s",
                    p.pacing.unwrap_or(Pacing::Smooth)
                ))
                .unwrap_or_default(),
        );
        out += &format!(
            "  window {:.2} s: {:.0} responses/s ({:.0} flow_mods/s, {:.0} packet_outs/s, {:.0} packet_ins/s)\n",
            self.window_secs,
            self.responses_per_sec,
            self.flow_mods_per_sec,
            self.packet_outs_per_sec,
            self.packet_ins_per_sec
        );
        out += &format!(
            "  per second: min {} max {} avg {:.0} stdev {:.0}; per switch: min {} max {}\n",
            s.min, s.max, s.avg, s.stdev, self.per_switch_min_max.0, self.per_switch_min_max.1
        );
        out += &format!(
            "  latency (us, {} samples): min {:.1} p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}\n",
            l.samples, l.min_us, l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us
        );
        let t = &self.totals;
        out += &format!(
            "  totals: {} packet-ins, {} answered, {} in flight at end, {} lost, {} unmatched packet-outs, {} errors",
            t.packet_ins, t.answered, self.in_flight_at_end, t.lost, t.unmatched, t.errors
        );
        if let Some(topo) = p.topology {
            out += &format!(
                "\n  topology {topo:?}: {} answers checked wrong{}",
                t.mismatched,
                if t.mismatched > 0 {
                    "  !!! MISMATCHES !!!"
                } else {
                    ""
                }
            );
            for m in &self.mismatch_examples {
                out += &format!("\n    {m}");
            }
        }
        if let Some(i) = &self.invalidation {
            out += &format!(
                "\n  invalidation: {} flows installed, {} affected; REST answered in {:.2} ms, first delete at {:.2} ms, last at {:.2} ms; {} affected deleted, {} unaffected deleted, {} other deletes",
                i.flows_installed, i.affected, i.rest_reply_ms, i.first_delete_ms, i.last_delete_ms,
                i.affected_deleted, i.unaffected_deleted, i.other_deleted
            );
        }
        out
    }
}
