//! Simulate + compile in-process: a known-MAC bridge hop, and bridge → router → bridge with the
//! next hop resolved; the engine's whole answer to one packet-in (parse, ingress lookup,
//! simulation, flow and packet-out built), no I/O.
//! `cargo bench -p apps --bench engine`; figures in BENCHMARKS.md.

use std::sync::Arc;
use std::time::Instant;

use apps::engine::Engine;
use apps::harness::{fixtures, frames, Fabric};
use apps::{App, Event};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ofproto::PacketInReason;

fn bench(c: &mut Criterion) {
    let network = topology::Network::open(Arc::new(topology::MemStore::new())).unwrap();
    let ((h1, h2), ports) = network
        .write(|t| {
            let mk = fixtures::host;
            let h1 = t.create_host(mk("hv1"))?.id;
            let h2 = t.create_host(mk("hv2"))?.id;
            let br = t.create_bridge(fixtures::bridge("net", None))?.id;
            let mut ports = vec![];
            for _ in 0..8 {
                ports.push(t.create_port(br, fixtures::bridge_port())?.id);
            }
            Ok(((h1, h2), ports))
        })
        .unwrap()
        .0;
    let mut f = Fabric::new(network, Engine::default());
    f.sync();
    let d1 = f.add_switch(h1);
    let d2 = f.add_switch(h2);
    f.mesh();
    let a = f.plug(d1, "vm-a", Some(ports[0]));
    let b = f.plug(d2, "vm-b", Some(ports[1]));
    // b's MAC learned: a → b is a known-MAC hop across a tunnel.
    f.send(
        d2,
        b,
        frames::udp([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], [0; 4], [0; 4], 1, 1),
    );
    let frame = frames::udp(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        1000,
        2000,
    );
    let frame2 = frame.clone();
    let key = f.bindings().port(ports[0]).map(|l| l.key).unwrap();
    let event = Event::PacketIn {
        dpid: d1,
        packet_in: apps::harness::packet_in(
            PacketInReason::NoMatch,
            apps::engine::pipeline::TABLE_CACHE,
            a,
            u64::from(key),
            &frame,
        ),
    };
    let mut engine = std::mem::take(&mut f.engine);
    // No budget: the benchmark is one port's packet-ins at full speed.
    engine.set_config(apps::engine::Config {
        packet_in_rate: 0,
        ..Default::default()
    });
    let mut out = Vec::with_capacity(8);
    let now = Instant::now();
    // The first one also learns a's MAC (and retires the flood towards it); from then on every
    // packet-in is the steady state: one flow-mod and one packet-out.
    engine.handle(now, &event, &mut out);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("packet_in_known_mac_bridge_hop", |bench| {
        bench.iter(|| {
            out.clear();
            engine.handle(now, &event, &mut out);
            assert_eq!(out.len(), 2);
        })
    });
    // Simulation and flow compilation alone (what `dry_run` does: no state changes).
    let header = apps::engine::flowkey::Header::parse(&frame2).unwrap();
    g.bench_function("simulate_compile_known_mac_bridge_hop", |bench| {
        bench.iter(|| {
            let c = engine.dry_run(d1, ports[0], a, header);
            assert_eq!(c.actions.len(), 2);
        })
    });
    g.bench_function("parse_header", |bench| {
        bench.iter(|| apps::engine::flowkey::Header::parse(std::hint::black_box(&frame2)))
    });
    g.finish();
}

/// a (net1, hv1) → router → b (net2, hv2), b's MAC in the router's ARP cache.
fn routed(c: &mut Criterion) {
    const RP1: [u8; 6] = [2, 0, 0, 0, 1, 1];
    const RP2: [u8; 6] = [2, 0, 0, 0, 2, 1];
    let network = topology::Network::open(Arc::new(topology::MemStore::new())).unwrap();
    let ((h1, h2), (pa, pb)) = network
        .write(|t| {
            let h1 = t.create_host(fixtures::host("hv1"))?.id;
            let h2 = t.create_host(fixtures::host("hv2"))?.id;
            let r = t.create_router(fixtures::router("r"))?.id;
            let mut vms = vec![];
            for (i, (addr, mac)) in [("10.0.1.1/24", RP1), ("10.0.2.1/24", RP2)]
                .into_iter()
                .enumerate()
            {
                let br = t
                    .create_bridge(fixtures::bridge(&format!("net{i}"), None))?
                    .id;
                let rp = t.create_port(r, fixtures::router_port(addr, mac))?.id;
                let bp = t.create_port(br, fixtures::bridge_port())?.id;
                t.link(rp, bp)?;
                for _ in 0..8 {
                    vms.push(t.create_port(br, fixtures::bridge_port())?.id);
                }
            }
            Ok(((h1, h2), (vms[0], vms[8])))
        })
        .unwrap()
        .0;
    let mut f = Fabric::new(network, Engine::default());
    f.sync();
    let d1 = f.add_switch(h1);
    let d2 = f.add_switch(h2);
    f.mesh();
    let a = f.plug(d1, "vm-a", Some(pa));
    let b = f.plug(d2, "vm-b", Some(pb));
    let a_mac = [2, 0, 0, 0, 0xa, 1];
    let b_mac = [2, 0, 0, 0, 0xb, 1];
    let frame = frames::udp(a_mac, RP1, [10, 0, 1, 10], [10, 0, 2, 20], 1000, 2000);
    // The first packet makes the router ask for b; b answers.
    f.send(d1, a, frame.clone());
    let mut reply = Vec::with_capacity(42);
    reply.extend_from_slice(&RP2);
    reply.extend_from_slice(&b_mac);
    reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    reply.extend_from_slice(&b_mac);
    reply.extend_from_slice(&[10, 0, 2, 20]);
    reply.extend_from_slice(&RP2);
    reply.extend_from_slice(&[10, 0, 2, 1]);
    f.send(d2, b, reply);
    let got = f.take_delivered();
    assert_eq!(
        got.last().map(|d| d.1),
        Some(b),
        "the parked packet was routed"
    );
    let header = apps::engine::flowkey::Header::parse(&frame).unwrap();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("simulate_compile_bridge_router_bridge", |bench| {
        bench.iter(|| {
            let c = f.engine.dry_run(d1, pa, a, header);
            // dec_ttl, eth_src, eth_dst, tun_id, output.
            assert_eq!(c.actions.len(), 5);
        })
    });
    // The same with a 10-rule chain as the router's inbound filter: rules on source prefixes,
    // protocols and ports the packet does not have, so all ten are read and passed.
    let router = f
        .network
        .snapshot()
        .list::<topology::model::Router>()
        .next()
        .map(|r| topology::model::Router::clone(r))
        .unwrap();
    f.write(|t| {
        use topology::model::{Chain, Condition, PortRange, Rule, RuleAction};
        let fw = t
            .create_chain(Chain {
                id: uuid::Uuid::nil(),
                name: "fw".into(),
                rule_ids: vec![],
            })?
            .id;
        for i in 0..10u16 {
            let condition = match i % 3 {
                0 => Condition {
                    nw_src: Some(format!("192.168.{i}.0/24").parse().unwrap()),
                    ..Condition::default()
                },
                1 => Condition {
                    nw_proto: Some(6),
                    tp_dst: Some(PortRange {
                        start: 20 + i,
                        end: 20 + i,
                    }),
                    ..Condition::default()
                },
                _ => Condition {
                    nw_proto: Some(17),
                    tp_dst: Some(PortRange {
                        start: 5000 + i,
                        end: 5000 + i,
                    }),
                    ..Condition::default()
                },
            };
            t.create_rule(
                fw,
                Rule {
                    id: uuid::Uuid::nil(),
                    chain_id: uuid::Uuid::nil(),
                    position: 0,
                    action: RuleAction::Drop,
                    jump_chain_id: None,
                    nat_targets: vec![],
                    condition,
                },
            )?;
        }
        let mut r = router;
        r.inbound_filter_id = Some(fw);
        t.update_router(r)?;
        Ok(())
    });
    g.bench_function("simulate_compile_bridge_router_bridge_10_rules", |bench| {
        bench.iter(|| {
            let c = f.engine.dry_run(d1, pa, a, header);
            assert_eq!(c.actions.len(), 5);
        })
    });
    // The whole packet-in through the router and its chain with as many distinct flows
    // installed as `bench/engine-compare.sh`'s (c) has (2^18 here: 8 source MACs × 32 768 UDP
    // destination ports, which the chain reads), each packet-in re-installing the next one in
    // turn: every record it touches is as cold as through sessions, which the one-flow case
    // above never sees.
    let key = f.bindings().port(pa).map(|l| l.key).unwrap();
    let events: Vec<Event> = (0..8u8)
        .flat_map(|m| (0..32_768u16).map(move |p| (m, p)))
        .map(|(m, p)| {
            let src = [2, 0, 0, 0, 0xa, 0x10 + m];
            // Above the chain's UDP ports (5000+): every rule is read and passed.
            let frame = frames::udp(src, RP1, [10, 0, 1, 10], [10, 0, 2, 20], 1000, 6000 + p);
            Event::PacketIn {
                dpid: d1,
                packet_in: apps::harness::packet_in(
                    PacketInReason::NoMatch,
                    apps::engine::pipeline::TABLE_CACHE,
                    a,
                    u64::from(key),
                    &frame,
                ),
            }
        })
        .collect();
    let mut engine = std::mem::take(&mut f.engine);
    engine.set_config(apps::engine::Config {
        packet_in_rate: 0,
        ..Default::default()
    });
    let now = Instant::now();
    let mut out = Vec::with_capacity(8);
    for e in &events {
        out.clear();
        engine.handle(now, e, &mut out);
    }
    assert!(
        engine.flow_count() >= events.len(),
        "{}",
        engine.flow_count()
    );
    let mut next = 0;
    g.bench_function("packet_in_router_10_rules_262k_flows_cycled", |bench| {
        bench.iter(|| {
            out.clear();
            engine.handle(now, &events[next], &mut out);
            next = (next + 1) % events.len();
            assert_eq!(out.len(), 2);
        })
    });
    g.finish();
}

criterion_group!(benches, bench, routed);
criterion_main!(benches);
