//! Hot-path benchmarks of the codec (targets: ≥10 M PACKET_IN parses/s, ≥5 M FLOW_MOD emits/s).
//!
//! Run with `cargo bench -p ofproto --bench codec`; figures are recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::net::Ipv4Addr;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ofproto::consts::OFPMPF_REPLY_MORE;
use ofproto::packet::PacketView;
use ofproto::{
    port_no, Action, FlowMod, FlowStats, Instruction, Match, Message, MultipartReply,
    MultipartReplyBody, OfMessage, OxmField, PacketIn, PacketInReason, OFP_NO_BUFFER,
};

/// A 64-byte UDP frame (Ethernet + IPv4 + UDP + 22 bytes of data), as a packet-in carries it.
fn frame64() -> Vec<u8> {
    let mut f = hex::decode(
        "0000000000020000000000010800450000320000000040119d6f0a0000010a000002138800350000f39a",
    )
    .expect("literal hex");
    f.resize(64, 0xab);
    f
}

fn packet_in() -> Bytes {
    let data = Bytes::from(frame64());
    OfMessage::new(
        7,
        Message::PacketIn(PacketIn {
            buffer_id: OFP_NO_BUFFER,
            total_len: 64,
            reason: PacketInReason::NoMatch,
            table_id: 0,
            cookie: 0x1234,
            match_: Match::new().with(OxmField::InPort(3)),
            data,
        }),
    )
    .to_bytes()
}

/// A FLOW_MOD with a 4-field match and 3 actions: the shape of a typical L3 forwarding flow.
fn flow_mod() -> OfMessage {
    OfMessage::new(
        9,
        Message::FlowMod(FlowMod {
            table_id: 2,
            priority: 100,
            cookie: 0xabcd,
            match_: Match::new()
                .with(OxmField::InPort(1))
                .with(OxmField::EthType(0x0800))
                .with(OxmField::IpProto(6))
                .with(OxmField::Ipv4Dst {
                    value: Ipv4Addr::new(10, 0, 1, 0),
                    mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
                }),
            instructions: vec![Instruction::ApplyActions(vec![
                Action::SetField(OxmField::EthDst {
                    value: [2, 0, 0, 0, 0, 9],
                    mask: None,
                }),
                Action::DecNwTtl,
                Action::Output {
                    port: 2,
                    max_len: 0,
                },
            ])],
            ..FlowMod::default()
        }),
    )
}

/// 1 000 flow entries as OVS sends them: two FLOW stats replies of 500 (the first with MORE),
/// each entry matching `in_port` and outputting to a port. One message cannot hold 1 000 such
/// entries (96 bytes each, 64 KiB limit).
fn flow_stats_replies() -> Vec<Bytes> {
    (0..2u32)
        .map(|part| {
            let stats = (0..500u32)
                .map(|i| FlowStats {
                    table_id: 0,
                    duration_sec: i,
                    duration_nsec: 0,
                    priority: 100,
                    idle_timeout: 0,
                    hard_timeout: 0,
                    flags: 0,
                    cookie: u64::from(i),
                    packet_count: 10,
                    byte_count: 1000,
                    match_: Match::new().with(OxmField::InPort(part * 500 + i + 1)),
                    instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                        port: port_no::NORMAL,
                        max_len: 0,
                    }])],
                })
                .collect();
            let mut reply = MultipartReply::new(MultipartReplyBody::Flow(stats));
            if part == 0 {
                reply.flags = OFPMPF_REPLY_MORE;
            }
            OfMessage::new(part + 1, Message::MultipartReply(reply)).to_bytes()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pi = packet_in();
    let mut g = c.benchmark_group("packet_in");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_slice_64B_frame", |b| {
        b.iter(|| OfMessage::parse(black_box(&pi)).expect("valid"))
    });
    // What the stream decoder does: the frame is already a `Bytes`, no copy.
    g.bench_function("parse_bytes_64B_frame", |b| {
        b.iter(|| OfMessage::parse_bytes(black_box(pi.clone())).expect("valid"))
    });
    g.finish();

    let fm = flow_mod();
    let mut g = c.benchmark_group("flow_mod");
    g.throughput(Throughput::Elements(1));
    let mut buf = BytesMut::with_capacity(4096);
    g.bench_function("emit_4_fields_3_actions", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&fm).emit(&mut buf);
            black_box(buf.len())
        })
    });
    g.bench_function("to_bytes_4_fields_3_actions", |b| {
        b.iter(|| black_box(&fm).to_bytes())
    });
    g.finish();

    let replies = flow_stats_replies();
    let mut g = c.benchmark_group("flow_stats_reply");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("parse_1000_entries", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &replies {
                let m = OfMessage::parse_bytes(black_box(r.clone())).expect("valid");
                if let Message::MultipartReply(MultipartReply {
                    body: MultipartReplyBody::Flow(s),
                    ..
                }) = &m.body
                {
                    n += s.len();
                }
            }
            assert_eq!(n, 1000);
            n
        })
    });
    g.finish();

    let f = frame64();
    let mut g = c.benchmark_group("packet_view");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_64B_udp_frame", |b| {
        b.iter(|| PacketView::parse(black_box(&f)).expect("ethernet"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
