//! Engine tests: the simulation as fixture + packet → result, then the in-memory fabric.

use std::sync::Arc;
use std::time::Duration;

use ofproto::{Action, Message, OxmField};
use topology::model::{Bridge, Port};
use uuid::Uuid;

use super::flowkey::{Field, Header};
use super::sim::{simulate, Context, DropReason, MacTable, Tag};
use super::*;
use crate::harness::fixtures::{self, bridge_port, host};
use crate::harness::{frames, Fabric};

fn bridge(name: &str, tenant: &str) -> Bridge {
    fixtures::bridge(name, Some(tenant))
}

fn at(port: Uuid) -> Start {
    Start::Ingress { port, in_port: 0 }
}

fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

const BCAST: [u8; 6] = [0xff; 6];

/// Three hosts; one bridge with ports a (hv1), b and c (hv2), d (hv3).
struct Lab {
    f: Fabric,
    hv: [u64; 3],
    br: Uuid,
    ports: [Uuid; 4],
    /// ofport of each port's VIF.
    of: [u32; 4],
}

fn lab() -> Lab {
    let network = topology::Network::open(Arc::new(topology::MemStore::new())).unwrap();
    let (hosts, br, ports) = network
        .write(|txn| {
            let hosts = [
                txn.create_host(host("hv1"))?.id,
                txn.create_host(host("hv2"))?.id,
                txn.create_host(host("hv3"))?.id,
            ];
            let br = txn.create_bridge(bridge("net", "acme"))?.id;
            let mut ports = [Uuid::nil(); 4];
            for p in &mut ports {
                *p = txn.create_port(br, bridge_port())?.id;
            }
            Ok((hosts, br, ports))
        })
        .unwrap()
        .0;
    let mut f = Fabric::new(network, Engine::default());
    f.sync();
    let hv = hosts.map(|h| f.add_switch(h));
    f.mesh();
    let placement = [0, 1, 1, 2];
    let mut of = [0; 4];
    for (i, p) in ports.iter().enumerate() {
        of[i] = f.plug(hv[placement[i]], &format!("vm{i}"), Some(*p));
    }
    Lab {
        f,
        hv,
        br,
        ports,
        of,
    }
}

#[test]
fn simulation_floods_unknown_and_reads_only_macs() {
    let l = lab();
    let snap = l.f.network.snapshot();
    let bindings = l.f.bindings();
    let macs = MacTable::default();
    let index = Index::build(&snap, 1450);
    let arp = arp::Cache::default();
    let ctx = Context {
        snapshot: &snap,
        index: &index,
        bindings: &bindings,
        macs: &macs,
        arp: &arp,
    };
    let h = Header::parse(&frames::udp(
        mac(1),
        mac(9),
        [10, 0, 0, 1],
        [10, 0, 0, 9],
        1,
        2,
    ))
    .unwrap();
    let s = simulate(ctx, at(l.ports[0]), h);
    let mut out: Vec<Uuid> = s.egress.iter().map(|e| e.port).collect();
    out.sort();
    let mut want = l.ports[1..].to_vec();
    want.sort();
    assert_eq!(out, want);
    assert!(s.seen.contains(Field::EthSrc) && s.seen.contains(Field::EthDst));
    assert!(!s.seen.contains(Field::Ipv4Dst) && !s.seen.contains(Field::EthType));
    assert!(s.tags.contains(&Tag::Flood(l.br, mac(9))));
    assert!(s.tags.contains(&Tag::Device(l.br)));
    assert_eq!(s.effects.len(), 1);

    // Known destination: one egress, tagged with the MAC entry.
    let mut macs = MacTable::default();
    macs.insert((l.br, mac(9)), l.ports[3]);
    let s = simulate(Context { macs: &macs, ..ctx }, at(l.ports[0]), h);
    assert_eq!(s.egress.len(), 1);
    assert_eq!(s.egress[0].port, l.ports[3]);
    assert!(s.tags.contains(&Tag::Mac(l.br, mac(9))));
    // Learned on the ingress port itself: dropped, it is already on that segment.
    let s = simulate(Context { macs: &macs, ..ctx }, at(l.ports[3]), h);
    assert_eq!(s.drop, Some(DropReason::SameSegment));
    assert!(s.egress.is_empty() && !s.is_error());
    // Unknown ingress: an error drop, untagged.
    let s = simulate(ctx, at(Uuid::new_v4()), h);
    assert!(s.is_error() && s.tags.is_empty());
}

#[test]
fn admin_down_port_and_bridge_drop() {
    let mut l = lab();
    let (br, p0) = (l.br, l.ports[0]);
    let snap = l.f.network.snapshot();
    let mut p = Port::clone(snap.get::<Port>(p0).unwrap());
    p.admin_state_up = false;
    l.f.write(|t| t.update_port(p));
    let snap = l.f.network.snapshot();
    let bindings = l.f.bindings();
    let macs = MacTable::default();
    let index = Index::build(&snap, 1450);
    let arp = arp::Cache::default();
    let ctx = Context {
        snapshot: &snap,
        index: &index,
        bindings: &bindings,
        macs: &macs,
        arp: &arp,
    };
    let h = Header::ethernet(mac(1), BCAST, 0x0806);
    assert_eq!(simulate(ctx, at(p0), h).drop, Some(DropReason::PortDown));
    // A down port reads nothing: the drop flow matches the port alone.
    assert_eq!(simulate(ctx, at(p0), h).seen, flowkey::Seen::EMPTY);
    let mut b = Bridge::clone(snap.get::<Bridge>(br).unwrap());
    b.admin_state_up = false;
    l.f.write(|t| t.update_bridge(b));
    let snap = l.f.network.snapshot();
    let index = Index::build(&snap, 1450);
    let ctx = Context {
        snapshot: &snap,
        index: &index,
        ..ctx
    };
    assert_eq!(
        simulate(ctx, at(l.ports[1]), h).drop,
        Some(DropReason::DeviceDown)
    );
}

#[test]
fn pipeline_classifies_vifs_tunnels_and_unbound() {
    let mut l = lab();
    let junk = l.f.plug(l.hv[0], "junk", Some(Uuid::new_v4()));
    let s = &l.f.switches[&l.hv[0]];
    let t0: Vec<_> = s.flows.iter().filter(|e| e.table == 0).collect();
    // vm0, junk, two tunnels, the miss.
    assert_eq!(t0.len(), 5, "{t0:#?}");
    let junk_flow = t0
        .iter()
        .find(|e| e.match_.in_port() == Some(junk))
        .expect("a drop flow for the unbound interface");
    assert!(junk_flow.instructions.is_empty());
    let vif = t0
        .iter()
        .find(|e| e.match_.in_port() == Some(l.of[0]))
        .unwrap();
    let key =
        l.f.network
            .snapshot()
            .get::<Port>(l.ports[0])
            .unwrap()
            .tunnel_key;
    assert!(matches!(
        vif.instructions[0],
        ofproto::Instruction::WriteMetadata { metadata, .. } if metadata == u64::from(key)
    ));
    // Table 10 delivers the local port's key.
    assert!(s.flows.iter().any(|e| e.table == 10
        && e.match_.fields.contains(&OxmField::TunnelId {
            value: u64::from(key),
            mask: None
        })));
    // Frames from the unbound interface never reach the controller.
    let before = l.f.packet_ins;
    l.f.send(
        l.hv[0],
        junk,
        frames::arp_request(mac(7), [10, 0, 0, 7], [10, 0, 0, 1]),
    );
    assert_eq!(l.f.packet_ins, before);
    assert!(l.f.take_delivered().is_empty());
    assert_eq!(l.f.bindings().unbound().len(), 1);
}

#[test]
fn flood_sends_one_tunnel_copy_per_remote_port() {
    let mut l = lab();
    let frame = frames::arp_request(mac(1), [10, 0, 0, 1], [10, 0, 0, 2]);
    l.f.send(l.hv[0], l.of[0], frame.clone());
    let mut got = l.f.take_delivered();
    got.sort();
    let mut want = vec![
        (l.hv[1], l.of[1], frame.clone()),
        (l.hv[1], l.of[2], frame.clone()),
        (l.hv[2], l.of[3], frame.clone()),
    ];
    want.sort();
    assert_eq!(got, want);
    // The flow: metadata + eth_src + eth_dst, two tunnel copies to hv2 with each port's key.
    let cache = l.f.cache(l.hv[0]);
    assert_eq!(cache.len(), 1);
    let acts = cache[0].actions();
    let keys: Vec<u64> = acts
        .iter()
        .filter_map(|a| match a {
            Action::SetField(OxmField::TunnelId { value, .. }) => Some(*value),
            _ => None,
        })
        .collect();
    assert_eq!(keys.len(), 3, "{acts:?}");
    assert_eq!(cache[0].match_.fields.len(), 3);
    // The second frame is answered by the flow, not the controller.
    let n = l.f.packet_ins;
    l.f.send(l.hv[0], l.of[0], frame);
    assert_eq!(l.f.packet_ins, n);
    assert_eq!(l.f.take_delivered().len(), 3);
    assert_eq!(l.f.oracle(), 1);
}

#[test]
fn learning_turns_the_flood_into_unicast() {
    let mut l = lab();
    let to_d = frames::udp(mac(1), mac(4), [10, 0, 0, 1], [10, 0, 0, 4], 5000, 53);
    l.f.send(l.hv[0], l.of[0], to_d.clone());
    assert_eq!(l.f.take_delivered().len(), 3, "unknown destination floods");
    // d answers: its MAC is learned, the flood towards it goes, the reply is unicast.
    let to_a = frames::udp(mac(4), mac(1), [10, 0, 0, 4], [10, 0, 0, 1], 53, 5000);
    l.f.send(l.hv[2], l.of[3], to_a.clone());
    assert_eq!(l.f.take_delivered(), vec![(l.hv[0], l.of[0], to_a)]);
    assert!(
        l.f.cache(l.hv[0]).is_empty(),
        "the flood flow was invalidated"
    );
    l.f.send(l.hv[0], l.of[0], to_d.clone());
    assert_eq!(l.f.take_delivered(), vec![(l.hv[2], l.of[3], to_d)]);
    assert_eq!(l.f.oracle(), 2);
    assert_eq!(l.f.engine.mac_table(l.br).len(), 2);
}

#[test]
fn a_moved_mac_stops_old_flows() {
    let mut l = lab();
    let to_b = frames::udp(mac(1), mac(2), [10, 0, 0, 1], [10, 0, 0, 2], 1, 1);
    l.f.send(
        l.hv[1],
        l.of[1],
        frames::udp(mac(2), mac(1), [0; 4], [0; 4], 1, 1),
    );
    l.f.send(l.hv[0], l.of[0], to_b.clone());
    l.f.take_delivered();
    assert_eq!(l.f.cache(l.hv[0]).len(), 1);
    // mac(2) now speaks from port d on hv3 (a VM moved, or a spoof).
    l.f.send(
        l.hv[2],
        l.of[3],
        frames::udp(mac(2), mac(1), [0; 4], [0; 4], 1, 1),
    );
    l.f.take_delivered();
    assert!(
        l.f.cache(l.hv[0])
            .iter()
            .all(|e| e.match_.fields.iter().all(|f| *f
                != OxmField::EthDst {
                    value: mac(2),
                    mask: None
                })),
        "the flow towards the old port is gone"
    );
    l.f.send(l.hv[0], l.of[0], to_b.clone());
    assert_eq!(l.f.take_delivered(), vec![(l.hv[2], l.of[3], to_b)]);
    l.f.oracle();
}

#[test]
fn tenants_with_overlapping_macs_and_ips_never_meet() {
    let mut l = lab();
    // A second tenant's bridge with one port on each host, same MACs and IPs as tenant one.
    let (br2, q) = l.f.write(|t| {
        let b = t.create_bridge(bridge("net", "other"))?.id;
        let mut q = [Uuid::nil(); 3];
        for p in &mut q {
            *p = t.create_port(b, bridge_port())?.id;
        }
        Ok((b, q))
    });
    let qo: Vec<u32> = (0..3)
        .map(|i| l.f.plug(l.hv[i], &format!("t2-vm{i}"), Some(q[i])))
        .collect();
    let frame = frames::arp_request(mac(1), [10, 0, 0, 1], [10, 0, 0, 2]);
    l.f.send(l.hv[0], qo[0], frame.clone());
    let mut got: Vec<_> =
        l.f.take_delivered()
            .into_iter()
            .map(|(d, p, _)| (d, p))
            .collect();
    got.sort();
    let mut want = vec![(l.hv[1], qo[1]), (l.hv[2], qo[2])];
    want.sort();
    assert_eq!(got, want);
    // Same source MAC in tenant one: learned separately, delivered only in tenant one.
    l.f.send(l.hv[0], l.of[0], frame);
    let got: Vec<_> =
        l.f.take_delivered()
            .into_iter()
            .map(|(d, p, _)| (d, p))
            .collect();
    assert_eq!(got.len(), 3);
    for (d, p) in &got {
        assert!(
            [(l.hv[1], l.of[1]), (l.hv[1], l.of[2]), (l.hv[2], l.of[3])].contains(&(*d, *p)),
            "tenant one's frame reached {d:x}/{p}"
        );
    }
    assert_eq!(l.f.engine.mac_table(br2).len(), 1);
    assert_eq!(l.f.engine.mac_table(l.br).len(), 1);
    // Unicast between tenant two's ports with tenant one's MAC learned on the same host.
    l.f.send(
        l.hv[1],
        qo[1],
        frames::udp(mac(2), mac(1), [0; 4], [0; 4], 1, 1),
    );
    assert_eq!(
        l.f.take_delivered()
            .into_iter()
            .map(|(d, p, _)| (d, p))
            .collect::<Vec<_>>(),
        vec![(l.hv[0], qo[0])]
    );
    l.f.oracle();
}

#[test]
fn unplugging_removes_the_port_and_its_flows() {
    let mut l = lab();
    l.f.send(
        l.hv[2],
        l.of[3],
        frames::udp(mac(4), mac(1), [0; 4], [0; 4], 1, 1),
    );
    let to_d = frames::udp(mac(1), mac(4), [0; 4], [0; 4], 1, 1);
    l.f.send(l.hv[0], l.of[0], to_d.clone());
    l.f.take_delivered();
    assert_eq!(l.f.cache(l.hv[0]).len(), 1);
    l.f.unplug(l.hv[2], l.of[3]);
    assert!(l.f.cache(l.hv[0]).is_empty());
    assert!(l.f.engine.mac_table(l.br).iter().all(|(m, _)| *m != mac(4)));
    // Plugged again on hv1: reachable there, after the MAC is seen again.
    let new = l.f.plug(l.hv[0], "vm3-moved", Some(l.ports[3]));
    l.f.send(
        l.hv[0],
        new,
        frames::udp(mac(4), mac(1), [0; 4], [0; 4], 1, 1),
    );
    l.f.take_delivered();
    l.f.send(l.hv[0], l.of[0], to_d.clone());
    assert_eq!(l.f.take_delivered(), vec![(l.hv[0], new, to_d)]);
    l.f.oracle();
}

#[test]
fn reconnect_reconciles_without_a_gap_and_leaves_nothing_stale() {
    let mut l = lab();
    let hv1 = l.hv[0];
    l.f.send(hv1, l.of[0], frames::arp_request(mac(1), [0; 4], [0; 4]));
    assert_eq!(l.f.cache(hv1).len(), 1);
    // What an earlier controller (or a hand) left on the switch: stale pipeline entries in
    // both phases, a flow with cookie 0, and one with another controller's cookie.
    let now = l.f.now;
    let stale = |cookie: u64, in_port: u32| ofproto::FlowMod {
        table_id: pipeline::TABLE_CLASSIFY,
        priority: 100,
        cookie,
        match_: ofproto::Match::from_iter([OxmField::InPort(in_port)]),
        ..ofproto::FlowMod::default()
    };
    let sw = l.f.switches.get_mut(&hv1).unwrap();
    sw.flow_mod(now, stale(pipeline::PIPELINE_COOKIE, 77), None);
    sw.flow_mod(now, stale(pipeline::PIPELINE_ENTRY, 78), None);
    sw.flow_mod(now, stale(0, 79), None);
    sw.flow_mod(now, stale(0x1234 << 48, 80), None);
    // And reactive flows of an earlier run that are not what the engine would install now: one
    // for a port key nobody has, one whose actions are wrong.
    let kept = l.f.cache(hv1)[0].cookie;
    let key = |e: &crate::harness::Entry| {
        e.match_.fields.iter().find_map(|f| match f {
            OxmField::Metadata { value, .. } => Some(*value),
            _ => None,
        })
    };
    let a_key = key(l.f.cache(hv1)[0]).unwrap();
    let reactive = |n: u64, metadata: u64, out: u32| ofproto::FlowMod {
        table_id: pipeline::TABLE_CACHE,
        priority: 1003,
        cookie: pipeline::PIPELINE_COOKIE | pipeline::REACTIVE_BIT | n,
        match_: ofproto::Match::from_iter([
            OxmField::Metadata {
                value: metadata,
                mask: None,
            },
            OxmField::EthDst {
                value: mac(9),
                mask: None,
            },
        ]),
        instructions: vec![ofproto::Instruction::ApplyActions(vec![
            ofproto::Action::Output {
                port: out,
                max_len: 0,
            },
        ])],
        ..ofproto::FlowMod::default()
    };
    let sw = l.f.switches.get_mut(&hv1).unwrap();
    sw.flow_mod(now, reactive(900, 0xf_ffff, 1), None);
    sw.flow_mod(now, reactive(901, a_key, 99), None);
    // The engine restarts: it has no record of anything.
    l.f.engine = Engine::default();
    l.f.sync();
    let classify_a = |flows: &[crate::harness::Entry]| {
        flows
            .iter()
            .any(|e| e.table == pipeline::TABLE_CLASSIFY && e.match_.in_port() == Some(l.of[0]))
    };
    // Replay the reconnect's FLOW_MODs one by one on a copy of the table: a's classify
    // entry is never missing (no gap in forwarding).
    let mut copy = crate::harness::EmuSwitch::clone(&l.f.switches[&hv1]);
    let n = l.f.log.len();
    l.f.connect(hv1);
    for o in &l.f.log[n..] {
        if o.dpid != hv1 {
            continue;
        }
        if let Message::FlowMod(fm) = &o.message {
            copy.flow_mod(now, fm.clone(), None);
            assert!(classify_a(&copy.flows), "a gap after {fm:?}");
        }
    }
    // Until the other hosts' switches are back too (a flow may depend on a MAC behind one of
    // them), what was read back waits on the switch, untouched.
    assert_eq!(
        l.f.cache(hv1).len(),
        3,
        "checked before every switch was back"
    );
    l.f.connect(l.hv[1]);
    l.f.connect(l.hv[2]);
    let flows = &l.f.switches[&hv1].flows;
    let ports: Vec<u32> = flows
        .iter()
        .filter(|e| e.table == pipeline::TABLE_CLASSIFY)
        .filter_map(|e| e.match_.in_port())
        .collect();
    assert!(
        !ports.contains(&77) && !ports.contains(&78),
        "stale pipeline entries go"
    );
    assert!(!ports.contains(&79), "hand-made flows go");
    assert!(
        ports.contains(&80),
        "another controller's cookie is left alone"
    );
    // Read back and checked: the flow the engine would install now stays, with its cookie
    // (traffic never left it); the two stale ones go.
    let cache: Vec<u64> = l.f.cache(hv1).iter().map(|e| e.cookie).collect();
    assert_eq!(cache, [kept], "only the flow that is still right stays");
    assert_eq!(l.f.engine.flow_count(), 1);
    assert_eq!(l.f.engine.stats().flows_adopted, 1);
    assert_eq!(l.f.engine.stats().flows_readback_deleted, 2);
    assert!(flows
        .iter()
        .filter(
            |e| e.match_.in_port() != Some(80) && e.table != pipeline::TABLE_CACHE
                || e.table == pipeline::TABLE_CACHE && e.priority == 0
        )
        .all(|e| e.cookie == pipeline::PIPELINE_ENTRY));
    assert_eq!(l.f.oracle(), 1);
    // Traffic goes on through it: no packet-in.
    let n = l.f.packet_ins;
    l.f.send(hv1, l.of[0], frames::arp_request(mac(1), [0; 4], [0; 4]));
    assert_eq!(l.f.packet_ins, n);
    // The adopted flow is indexed like the engine's own: a's port going down takes it.
    let a = l.ports[0];
    l.f.write(|t| {
        let mut p = topology::model::Port::clone(t.snapshot().find::<topology::model::Port>(a)?);
        p.admin_state_up = false;
        t.update_port(p).map(|_| ())
    });
    assert!(
        l.f.cache(hv1).is_empty(),
        "the adopted flow was not invalidated"
    );
}

#[test]
fn macs_expire_after_their_last_flow() {
    let mut l = lab();
    l.f.send(
        l.hv[0],
        l.of[0],
        frames::udp(mac(1), mac(4), [0; 4], [0; 4], 1, 1),
    );
    assert_eq!(l.f.engine.mac_table(l.br).len(), 1);
    // The flow idles out (60 s), then the MAC outlives it by mac_ttl (300 s).
    l.f.advance(Duration::from_secs(61));
    assert_eq!(l.f.engine.flow_count(), 0);
    assert_eq!(l.f.engine.mac_table(l.br).len(), 1);
    l.f.advance(Config::default().mac_ttl - Duration::from_secs(1));
    assert_eq!(l.f.engine.mac_table(l.br).len(), 1);
    l.f.advance(Duration::from_secs(2));
    assert!(l.f.engine.mac_table(l.br).is_empty());
}

#[test]
fn packet_in_budget_per_port() {
    let mut l = lab();
    let cfg = Config {
        packet_in_rate: 1,
        packet_in_burst: 2,
        ..Config::default()
    };
    l.f.engine = Engine::new(cfg);
    l.f.sync();
    for dpid in l.hv {
        l.f.connect(dpid);
    }
    l.f.sync();
    // A port whose frames never get a flow (distinct sources): two answered, then dropped.
    for i in 0..5u8 {
        l.f.send(
            l.hv[0],
            l.of[0],
            frames::udp([2, 0, 0, 1, 0, i], mac(9), [0; 4], [0; 4], 1, 1),
        );
    }
    assert_eq!(l.f.engine.stats().budget_drops, 3);
    // Another port is unaffected.
    l.f.send(
        l.hv[1],
        l.of[1],
        frames::udp(mac(2), mac(9), [0; 4], [0; 4], 1, 1),
    );
    assert_eq!(l.f.engine.stats().budget_drops, 3);
    l.f.advance(Duration::from_secs(2));
    l.f.send(
        l.hv[0],
        l.of[0],
        frames::udp(mac(1), mac(9), [0; 4], [0; 4], 1, 1),
    );
    assert_eq!(l.f.engine.stats().budget_drops, 3);
}

#[test]
fn garbage_is_counted_never_a_panic() {
    let mut l = lab();
    let mut out = Vec::new();
    for data in [vec![], vec![1, 2, 3], vec![0xff; 14], vec![0; 60]] {
        let pin = ofproto::PacketIn {
            buffer_id: ofproto::OFP_NO_BUFFER,
            total_len: data.len() as u16,
            reason: ofproto::PacketInReason::NoMatch,
            table_id: TABLE_CACHE,
            cookie: 0,
            match_: ofproto::Match::from_iter([OxmField::InPort(l.of[0])]),
            data: data.into(),
        };
        l.f.engine.handle(
            l.f.now,
            &Event::PacketIn {
                dpid: l.hv[0],
                packet_in: pin,
            },
            &mut out,
        );
    }
    assert_eq!(l.f.engine.stats().unparseable, 2);
    // From an unknown switch or table: ignored.
    let pin = ofproto::PacketIn {
        buffer_id: ofproto::OFP_NO_BUFFER,
        total_len: 0,
        reason: ofproto::PacketInReason::NoMatch,
        table_id: 0,
        cookie: 0,
        match_: ofproto::Match::from_iter([OxmField::InPort(77)]),
        data: frames::arp_request(mac(1), [0; 4], [0; 4]).into(),
    };
    l.f.engine.handle(
        l.f.now,
        &Event::PacketIn {
            dpid: 999,
            packet_in: pin,
        },
        &mut out,
    );
    assert_eq!(l.f.engine.stats().unknown_ingress, 1);
    let _ = &mut l;
}

#[test]
fn a_refused_flow_is_forgotten_by_its_cookie() {
    let mut l = lab();
    l.f.send(
        l.hv[0],
        l.of[0],
        frames::arp_request(mac(1), [0; 4], [0; 4]),
    );
    assert_eq!(l.f.engine.flow_count(), 1);
    let cookie = l.f.cache(l.hv[0])[0].cookie;
    // What OVS quotes back: the first 64 bytes of the FLOW_MOD, whose cookie is at 8..16.
    let fm =
        l.f.log
            .iter()
            .find_map(|o| match &o.message {
                Message::FlowMod(fm) if fm.cookie == cookie => Some(fm.clone()),
                _ => None,
            })
            .unwrap();
    let bytes = ofproto::OfMessage {
        version: 4,
        xid: 9,
        body: Message::FlowMod(fm),
    }
    .to_bytes();
    let error = ofproto::ErrorMsg {
        kind: ofproto::ErrorType::from_type_code(5, 1),
        data: bytes.slice(..64.min(bytes.len())),
    };
    assert_eq!(crate::error_cookie(&error), Some(cookie));
    let mut out = Vec::new();
    l.f.engine.handle(
        l.f.now,
        &Event::SwitchError {
            dpid: l.hv[0],
            xid: 9,
            error,
        },
        &mut out,
    );
    assert_eq!(l.f.engine.flow_count(), 0);
    assert_eq!(l.f.engine.stats().switch_errors, 1);
}

#[test]
fn a_port_state_change_takes_only_the_flows_that_crossed_it() {
    let mut l = lab();
    // Everyone speaks once, so every MAC is learned and flows are unicast.
    everyone_speaks(&mut l);
    l.f.send(l.hv[0], l.of[0], udp_to(1, 4));
    l.f.send(l.hv[1], l.of[1], udp_to(2, 3));
    l.f.take_delivered();
    // The unicast flows: a→d on hv1, b→c on hv2 (the ARP floods made others).
    let a_to_d = unicast_to(&l, l.hv[0], 4).expect("a→d flow");
    let b_to_c = unicast_to(&l, l.hv[1], 3).expect("b→c flow");
    let others = l.f.cache(l.hv[1]).len();
    // d goes admin-down: a→d's flow goes, b→c's keeps its cookie, hv2's floods stay.
    let d = l.ports[3];
    let mut p = Port::clone(l.f.network.snapshot().get::<Port>(d).unwrap());
    p.admin_state_up = false;
    l.f.write(|t| t.update_port(p));
    assert_eq!(unicast_to(&l, l.hv[0], 4), None);
    assert_eq!(unicast_to(&l, l.hv[1], 3), Some(b_to_c));
    let _ = a_to_d;
    // hv2's floods reached d (a tunnel copy each): those go too, the rest stay.
    assert!(l.f.cache(l.hv[1]).len() < others);
    assert!(!l.f.cache(l.hv[1]).is_empty());
    l.f.send(l.hv[0], l.of[0], udp_to(1, 4));
    assert!(l.f.take_delivered().is_empty());
    l.f.oracle();
}

/// The unicast flow on `hv` to `to`'s MAC, if there is one.
fn unicast_to(l: &Lab, hv: u64, to: u8) -> Option<u64> {
    l.f.cache(hv)
        .iter()
        .find(|e| {
            e.match_.fields.contains(&OxmField::EthDst {
                value: mac(to),
                mask: None,
            })
        })
        .map(|e| e.cookie)
}

/// Every port of the lab speaks once (an ARP request), so every MAC is learned.
fn everyone_speaks(l: &mut Lab) {
    for i in 0..4 {
        let hv = [0, 1, 1, 2][i];
        l.f.send(
            l.hv[hv],
            l.of[i],
            frames::arp_request(mac(i as u8 + 1), [10, 0, 0, i as u8 + 1], [10, 0, 0, 99]),
        );
    }
}

fn udp_to(s: u8, d: u8) -> Vec<u8> {
    frames::udp(mac(s), mac(d), [10, 0, 0, s], [10, 0, 0, d], 1, 2)
}

/// A host joining the mesh takes only the flows that depend on the tunnels to it: here the
/// flood that could not reach its port for want of a tunnel. The unicast flows to the other
/// hosts keep their cookies (every flow of every host was deleted before, a packet-in storm
/// for each hypervisor added to a running cloud), and the oracle holds after it.
#[test]
fn a_host_joining_the_mesh_takes_only_the_flows_that_needed_its_tunnels() {
    let mut l = lab();
    let br = l.br;
    let (hv4_host, e) = l.f.write(|t| {
        let h = t.create_host(host("hv4"))?.id;
        let e = t.create_port(br, bridge_port())?.id;
        Ok((h, e))
    });
    // hv4 is up with e plugged, but no host has a tunnel to it yet.
    let hv4 = l.f.add_switch(hv4_host);
    let e_of = l.f.plug(hv4, "vm-e", Some(e));
    everyone_speaks(&mut l);
    l.f.send(l.hv[0], l.of[0], udp_to(1, 4));
    l.f.send(l.hv[0], l.of[0], udp_to(1, 2));
    // An unknown destination: a flood to b, c and d; e is out of reach.
    l.f.send(l.hv[0], l.of[0], udp_to(1, 9));
    let flooded: Vec<_> = l.f.take_delivered();
    assert!(!flooded.iter().any(|(d, _, _)| *d == hv4), "{flooded:?}");
    let a_to_d = unicast_to(&l, l.hv[0], 4).expect("a→d flow");
    let a_to_b = unicast_to(&l, l.hv[0], 2).expect("a→b flow");
    let flood = unicast_to(&l, l.hv[0], 9).expect("the flood's flow");
    let on_hv2: Vec<u64> = l.f.cache(l.hv[1]).iter().map(|e| e.cookie).collect();
    assert!(!on_hv2.is_empty());
    l.f.oracle();

    l.f.mesh();
    assert_eq!(unicast_to(&l, l.hv[0], 4), Some(a_to_d));
    assert_eq!(unicast_to(&l, l.hv[0], 2), Some(a_to_b));
    assert_ne!(unicast_to(&l, l.hv[0], 9), Some(flood), "the flood kept");
    // hv2's flows: its ARP floods could not reach e either, so they go; none of its others.
    let kept: Vec<u64> = l.f.cache(l.hv[1]).iter().map(|e| e.cookie).collect();
    assert!(kept.iter().all(|c| on_hv2.contains(c)));
    l.f.oracle();
    // The flood again: e gets its copy now.
    l.f.send(l.hv[0], l.of[0], udp_to(1, 9));
    let delivered = l.f.take_delivered();
    assert!(
        delivered.iter().any(|(d, o, _)| (*d, *o) == (hv4, e_of)),
        "{delivered:?}"
    );
    l.f.oracle();
}

/// A tunnel renumbered (deleted and made again by the host's provisioning) takes the flows
/// that output to its old port, and only those.
#[test]
fn a_renumbered_tunnel_takes_only_the_flows_across_it() {
    let mut l = lab();
    everyone_speaks(&mut l);
    l.f.send(l.hv[0], l.of[0], udp_to(1, 4));
    l.f.send(l.hv[0], l.of[0], udp_to(1, 2));
    let a_to_b = unicast_to(&l, l.hv[0], 2).expect("a→b flow");
    assert!(unicast_to(&l, l.hv[0], 4).is_some());
    let hv3_host =
        l.f.network
            .snapshot()
            .hosts()
            .map(|h| h.id)
            .find(|h| topology::model::datapath_id(*h) == l.hv[2]);
    let port = l.f.renumber_tunnel(l.hv[0], hv3_host.expect("hv3's host"));
    assert_eq!(
        unicast_to(&l, l.hv[0], 4),
        None,
        "a→d by the old tunnel port kept"
    );
    assert_eq!(unicast_to(&l, l.hv[0], 2), Some(a_to_b));
    l.f.oracle();
    l.f.take_delivered();
    l.f.send(l.hv[0], l.of[0], udp_to(1, 4));
    let flow = l.f.cache(l.hv[0]).into_iter().find(|e| {
        e.match_.fields.contains(&OxmField::EthDst {
            value: mac(4),
            mask: None,
        })
    });
    assert!(
        flow.is_some_and(|e| e.actions().contains(&Action::Output { port, max_len: 0 })),
        "a→d again, by the new port {port}"
    );
    l.f.oracle();
}

/// The counters `/metrics` shows move where the events happen: a packet-in installs a flow, a
/// topology change invalidates it, an expiry the switch reports removes one, an overrun port's
/// packet-ins hit the budget; `Query::Counters` answers what `stats` holds.
#[test]
fn counters_move_where_the_events_happen() {
    let mut l = lab();
    let counters = |l: &Lab| match l.f.engine.query(l.f.now, &Query::Counters) {
        Some(Answer::Counters(c)) => c,
        other => panic!("expected counters, got {other:?}"),
    };
    let zero = counters(&l);
    assert_eq!(
        (zero.packet_ins, zero.flows_installed, zero.flows),
        (0, 0, Some(0))
    );
    // a speaks: one packet-in, one simulation, one flow (a flood) installed.
    l.f.send(
        l.hv[0],
        l.of[0],
        frames::arp_request(mac(1), [0; 4], [0; 4]),
    );
    let c = counters(&l);
    assert_eq!((c.packet_ins, c.simulations), (1, 1));
    assert_eq!((c.flows_installed, c.flows), (1, Some(1)));
    assert_eq!(c.macs_learned, 1);
    // d speaks to a, then a's port goes admin-down: flows through it are invalidated.
    l.f.send(
        l.hv[2],
        l.of[3],
        frames::udp(mac(4), mac(1), [0; 4], [0; 4], 1, 1),
    );
    let c = counters(&l);
    assert_eq!((c.packet_ins, c.flows_installed), (2, 2));
    assert_eq!(c.flows_invalidated, 0);
    let mut p = Port::clone(l.f.network.snapshot().get::<Port>(l.ports[0]).unwrap());
    p.admin_state_up = false;
    l.f.write(|t| t.update_port(p));
    let c = counters(&l);
    assert!(c.flows_invalidated >= 1, "{c:?}");
    assert_eq!(c.flows, Some(2 - c.flows_invalidated));
    assert_eq!(c.flows_removed, 0);
    // What is left expires: the switch reports it, the engine counts it removed.
    l.f.send(
        l.hv[1],
        l.of[1],
        frames::udp(mac(2), mac(3), [0; 4], [0; 4], 1, 1),
    );
    let before = counters(&l);
    assert!(before.flows.unwrap() >= 1);
    l.f.advance(Duration::from_secs(601));
    let c = counters(&l);
    assert_eq!(c.flows, Some(0));
    assert_eq!(c.flows_removed, before.flows.unwrap());
    // Drops by reason: a frame from the down port is dropped by the simulation.
    assert_eq!(c.drops, vec![]);
    l.f.send(
        l.hv[0],
        l.of[0],
        frames::udp(mac(1), mac(4), [0; 4], [0; 4], 1, 1),
    );
    let c = counters(&l);
    assert_eq!(c.drops, vec![("port_down", 1)]);
    // Budget hits: a port over its packet-in budget.
    let cfg = Config {
        packet_in_rate: 1,
        packet_in_burst: 1,
        ..Config::default()
    };
    l.f.engine.set_config(cfg);
    for i in 0..3u8 {
        l.f.send(
            l.hv[1],
            l.of[2],
            frames::udp([2, 0, 0, 1, 0, i], mac(9), [0; 4], [0; 4], 1, 1),
        );
    }
    let c = counters(&l);
    assert_eq!(c.budget_hits, l.f.engine.stats().budget_drops);
    assert!(c.budget_hits >= 2, "{c:?}");
    assert_eq!(c.packet_ins, l.f.engine.stats().packet_ins);
}

/// A host whose switch does not come back after a restart holds the check up for
/// `SETTLE_WAIT` at most: then what was read back is checked anyway.
#[test]
fn read_back_flows_are_checked_after_a_while_without_every_switch() {
    let mut l = lab();
    let hv1 = l.hv[0];
    l.f.send(hv1, l.of[0], frames::arp_request(mac(1), [0; 4], [0; 4]));
    let kept = l.f.cache(hv1)[0].cookie;
    let stale = ofproto::FlowMod {
        table_id: pipeline::TABLE_CACHE,
        priority: 1003,
        cookie: pipeline::PIPELINE_COOKIE | pipeline::REACTIVE_BIT | 7777,
        match_: ofproto::Match::from_iter([OxmField::Metadata {
            value: 0xf_ffff,
            mask: None,
        }]),
        ..ofproto::FlowMod::default()
    };
    let now = l.f.now;
    l.f.switches
        .get_mut(&hv1)
        .unwrap()
        .flow_mod(now, stale, None);
    l.f.engine = Engine::default();
    l.f.sync();
    l.f.connect(hv1);
    assert_eq!(
        l.f.cache(hv1).len(),
        2,
        "checked before the others could come back"
    );
    l.f.advance(SETTLE_WAIT / 2);
    assert_eq!(l.f.cache(hv1).len(), 2);
    l.f.advance(SETTLE_WAIT);
    let cache: Vec<u64> = l.f.cache(hv1).iter().map(|e| e.cookie).collect();
    assert_eq!(cache, [kept]);
    assert_eq!(l.f.oracle(), 1);
}

/// A VIF plugged on one host changes that switch's pipeline and nothing is sent to the others.
/// (The engine now looks only at switches whose own attachments changed — with hundreds of
/// hosts, checking every peer's tunnel and rebuilding every switch's pipeline on every bindings
/// change was O(N²) per change — and this is the behaviour that must not change with it.)
#[test]
fn a_plug_reconciles_only_its_own_switch() {
    let mut l = lab();
    let br = l.br;
    let port = l.f.write(|t| Ok(t.create_port(br, bridge_port())?.id));
    let before = l.f.log.len();
    let of = l.f.plug(l.hv[1], "vm-new", Some(port));
    let sent = &l.f.log[before..];
    assert!(
        sent.iter().all(|o| o.dpid == l.hv[1]),
        "{:?}",
        sent.iter().map(|o| o.dpid).collect::<Vec<_>>()
    );
    assert!(
        sent.iter().any(|o| matches!(&o.message,
            Message::FlowMod(fm) if fm.match_.in_port() == Some(of))),
        "the new VIF's classifier entry: {sent:?}"
    );
    // And the switches whose attachments did not change keep their pipelines: unplugging on
    // hv3 touches hv3 alone.
    let before = l.f.log.len();
    l.f.unplug(l.hv[2], l.of[3]);
    assert!(l.f.log[before..].iter().all(|o| o.dpid == l.hv[2]));
    assert!(!l.f.log[before..].is_empty());
}
