//! How long a topology change takes to invalidate the flows it affects, with 1 k / 10 k / 100 k
//! flows installed and 1 % of them affected (one of 100 ingress ports goes admin-down): the time
//! of the engine's `handle(Topology)` — index rebuild, tag diff, exact deletes built — which is
//! the in-process part of "REST change → last affected flow gone" (the switches' share is the
//! performance issue's). `cargo bench -p apps --bench invalidation`; figures in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apps::engine::Engine;
use apps::harness::{fixtures, frames, Fabric};
use apps::{App, Event, Output};
use ofproto::{Message, PacketInReason};
use uuid::Uuid;

const SOURCES: usize = 100;

fn packet_in(dpid: u64, in_port: u32, key: u32, frame: Vec<u8>) -> Event {
    let packet_in = apps::harness::packet_in(
        PacketInReason::NoMatch,
        apps::engine::pipeline::TABLE_CACHE,
        in_port,
        u64::from(key),
        &frame,
    );
    Event::PacketIn { dpid, packet_in }
}

fn mac(prefix: u8, n: usize) -> [u8; 6] {
    let b = (n as u32).to_be_bytes();
    [2, prefix, b[0], b[1], b[2], b[3]]
}

/// One bridge: `SOURCES` ports with VIFs on hv1, a sink port with its VIF on hv2; the engine
/// taken out of the fabric with no packet-in budget.
struct Setup {
    f: Fabric,
    engine: Engine,
    d1: u64,
    d2: u64,
    ports: Vec<Uuid>,
    /// ofport and tunnel key of each source's VIF.
    of: Vec<u32>,
    keys: Vec<u32>,
    sink: Uuid,
    sink_of: u32,
    sink_key: u32,
}

fn setup() -> Setup {
    let network = topology::Network::open(Arc::new(topology::MemStore::new())).unwrap();
    let ((h1, h2), ports, sink) = network
        .write(|t| {
            let h1 = t.create_host(fixtures::host("hv1"))?.id;
            let h2 = t.create_host(fixtures::host("hv2"))?.id;
            let br = t.create_bridge(fixtures::bridge("net", None))?.id;
            let mut ports = vec![];
            for _ in 0..SOURCES {
                ports.push(t.create_port(br, fixtures::bridge_port())?.id);
            }
            let sink = t.create_port(br, fixtures::bridge_port())?.id;
            Ok(((h1, h2), ports, sink))
        })
        .unwrap()
        .0;
    let mut f = Fabric::new(network, Engine::default());
    f.sync();
    let d1 = f.add_switch(h1);
    let d2 = f.add_switch(h2);
    f.mesh();
    let of: Vec<u32> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| f.plug(d1, &format!("vm{i}"), Some(*p)))
        .collect();
    let sink_of = f.plug(d2, "sink", Some(sink));
    let key = |p: Uuid| f.bindings().port(p).map(|l| l.key).unwrap();
    let keys: Vec<u32> = ports.iter().map(|p| key(*p)).collect();
    let sink_key = key(sink);
    let mut engine = std::mem::take(&mut f.engine);
    engine.set_config(apps::engine::Config {
        packet_in_rate: 0,
        ..Default::default()
    });
    Setup {
        f,
        engine,
        d1,
        d2,
        ports,
        of,
        keys,
        sink,
        sink_of,
        sink_key,
    }
}

fn run(flows: usize) -> (Duration, Vec<Duration>, usize) {
    let Setup {
        f,
        mut engine,
        d1,
        d2,
        ports,
        of,
        keys,
        sink_of,
        sink_key,
        ..
    } = setup();
    let now = Instant::now();
    let mut out: Vec<Output> = Vec::new();
    let per_source = flows / SOURCES;
    // The sink's MACs are learned, so every source's flow to them is a unicast flow.
    for j in 0..per_source {
        let frame = frames::udp(mac(0xee, j), [0xff; 6], [0; 4], [0; 4], 1, 1);
        engine.handle(now, &packet_in(d2, sink_of, sink_key, frame), &mut out);
        out.clear();
    }
    let install = |engine: &mut Engine, out: &mut Vec<Output>, i: usize| {
        for j in 0..per_source {
            let frame = frames::udp(mac(i as u8, 0), mac(0xee, j), [0; 4], [0; 4], 1, 1);
            engine.handle(now, &packet_in(d1, of[i], keys[i], frame), out);
            out.clear();
        }
    };
    let t0 = Instant::now();
    for i in 0..SOURCES {
        install(&mut engine, &mut out, i);
    }
    let install_time = t0.elapsed();
    assert!(
        engine.flow_count() >= flows,
        "{} flows",
        engine.flow_count()
    );
    let mut times = Vec::new();
    let mut deleted = 0;
    for (round, &victim) in ports.iter().enumerate().take(5) {
        let set = |network: &topology::Network, up: bool| {
            network
                .write(|t| {
                    let mut p = topology::model::Port::clone(
                        t.snapshot().get::<topology::model::Port>(victim).unwrap(),
                    );
                    p.admin_state_up = up;
                    t.update_port(p)
                })
                .unwrap();
            network.snapshot()
        };
        let down = set(&f.network, false);
        let t = Instant::now();
        engine.handle(now, &Event::Topology(down), &mut out);
        times.push(t.elapsed());
        deleted = out
            .iter()
            .filter(|o| matches!(&o.message, Message::FlowMod(fm) if fm.command == ofproto::FlowModCommand::Delete))
            .count();
        out.clear();
        let up = set(&f.network, true);
        engine.handle(now, &Event::Topology(up), &mut out);
        out.clear();
        install(&mut engine, &mut out, round);
    }
    times.sort();
    (install_time, times, deleted)
}

/// The wide case: `n` flood flows (broadcasts from `n` source MACs on 10 of the 100 ports, each
/// flow's output reaching all 101 ports, so each carries ~100 port tags), then the sink port goes
/// admin-down, which affects every one of them. Returns (median, min, max) of 5 and the deletes.
fn floods(n: usize) -> ((Duration, Duration, Duration), usize) {
    let Setup {
        f,
        mut engine,
        d1,
        of,
        keys,
        sink,
        ..
    } = setup();
    let now = Instant::now();
    let mut out: Vec<Output> = Vec::new();
    let flood = |engine: &mut Engine, out: &mut Vec<Output>| {
        for j in 0..n {
            let i = j % 10;
            let frame = frames::udp(mac(0x77, j), [0xff; 6], [0; 4], [0; 4], 1, 1);
            engine.handle(now, &packet_in(d1, of[i], keys[i], frame), out);
            out.clear();
        }
    };
    let set = |network: &topology::Network, up: bool| {
        network
            .write(|t| {
                let mut p = topology::model::Port::clone(
                    t.snapshot().get::<topology::model::Port>(sink).unwrap(),
                );
                p.admin_state_up = up;
                t.update_port(p)
            })
            .unwrap();
        network.snapshot()
    };
    let mut times = Vec::new();
    let mut deleted = 0;
    for _ in 0..5 {
        flood(&mut engine, &mut out);
        assert!(engine.flow_count() >= n, "{} flows", engine.flow_count());
        let t = Instant::now();
        engine.handle(now, &Event::Topology(set(&f.network, false)), &mut out);
        times.push(t.elapsed());
        deleted = out
            .iter()
            .filter(|o| matches!(&o.message, Message::FlowMod(fm) if fm.command == ofproto::FlowModCommand::Delete))
            .count();
        out.clear();
        engine.handle(now, &Event::Topology(set(&f.network, true)), &mut out);
        out.clear();
    }
    times.sort();
    ((times[2], times[0], times[4]), deleted)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is ignored.
    println!(
        "flows installed | install (packet-ins) | invalidate 1 % (median of 5, min–max) | deletes"
    );
    for flows in [1_000, 10_000, 100_000] {
        let (install, times, deleted) = run(flows);
        println!(
            "{flows:>7} | {:>8.1} ms | {:>8.3} ms ({:.3}–{:.3}) | {deleted}",
            install.as_secs_f64() * 1e3,
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
        );
    }
    let ((median, min, max), deleted) = floods(1_000);
    println!(
        "floods: 1000 flood flows (~100 port tags each), the sink port down: {:.3} ms ({:.3}–{:.3}) | {deleted}",
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
    );
}
