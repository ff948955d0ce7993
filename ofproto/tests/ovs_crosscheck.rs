//! The codec against Open vSwitch 3.1 itself, both directions.
//!
//! (a) What we emit: a few hundred generated FLOW_MODs, GROUP_MODs, METER_MODs, PACKET_OUTs and
//!     multipart requests go into one file that `ovs-ofctl ofp-parse` decodes in one process;
//!     every message must decode without error or warning, and OVS's text must show the fields
//!     we meant (for FLOW_MODs: the same tokens as our `Display`).
//! (b) What OVS emits: a tiny in-test switch on 127.0.0.1:0 answers `ovs-ofctl -O OpenFlow13`
//!     (`add-flow`, `add-group`, `add-meter`, `dump-flows`, `del-flows`, …) and records every
//!     message it sends; each must parse with us and re-emit byte-identically.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ofproto::consts::{OFPG_ANY, OFPTT_ALL};
use ofproto::display::PortName;
use ofproto::msg::meter::{OFPMF_BURST, OFPMF_KBPS, OFPMF_PKTPS, OFPMF_STATS};
use ofproto::{
    port_no, Action, Bucket, Decoder, FlowMod, FlowModCommand, FlowStatsRequest, GroupMod,
    GroupModCommand, GroupType, Hello, Instruction, Match, Message, MeterBand, MeterMod,
    MeterModCommand, MultipartReply, MultipartReplyBody, MultipartRequest, MultipartRequestBody,
    OfMessage, OxmField, PacketOut, OFP_NO_BUFFER,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

// ---------------------------------------------------------------------------------------------
// Generators: values OVS accepts (prerequisites met, instructions in the order OVS requires).

fn cidr4() -> impl Strategy<Value = (Ipv4Addr, Option<Ipv4Addr>)> {
    (any::<u32>(), 0u32..=32).prop_map(|(v, len)| {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let mask = (len < 32).then_some(Ipv4Addr::from(mask));
        let value = Ipv4Addr::from(v & mask.map_or(u32::MAX, u32::from));
        (value, mask)
    })
}

fn cidr6() -> impl Strategy<Value = (Ipv6Addr, Option<Ipv6Addr>)> {
    (any::<u128>(), 1u32..=128).prop_map(|(v, len)| {
        let mask = u128::MAX << (128 - len);
        let mask = (len < 128).then_some(Ipv6Addr::from(mask));
        (Ipv6Addr::from(v & mask.map_or(u128::MAX, u128::from)), mask)
    })
}

fn mac() -> impl Strategy<Value = [u8; 6]> {
    any::<[u8; 6]>()
}

fn port() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..0xff00, Just(port_no::LOCAL)]
}

/// A match and whether it makes the flow an IPv4 one (so IP actions pass OVS's checks).
fn arb_match() -> impl Strategy<Value = (Match, bool)> {
    let l2 = (
        proptest::option::of(port()),
        proptest::option::of(mac()),
        proptest::option::of((mac(), proptest::option::of(mac()))),
        proptest::option::of((0u16..4096, proptest::option::of(0u8..8))),
        proptest::option::of((any::<u64>(), proptest::option::of(any::<u64>()))),
        proptest::option::of((0u8..8, any::<u32>(), proptest::option::of(any::<u32>()))),
        proptest::option::of(any::<u64>()),
    );
    let l3 = prop_oneof![
        Just(0u8), // none
        Just(1u8), // ipv4 tcp
        Just(2u8), // ipv4 udp
        Just(3u8), // ipv4 icmp
        Just(4u8), // arp
        Just(5u8), // ipv6 icmpv6
        Just(6u8), // ipv4 only
    ];
    (
        l2,
        l3,
        cidr4(),
        cidr4(),
        cidr6(),
        any::<u16>(),
        any::<u8>(),
        0u8..64,
        cidr4(),
    )
        .prop_map(
            |(
                (in_port, eth_dst, eth_src, vlan, meta, reg, tun),
                l3,
                src4,
                dst4,
                dst6,
                p,
                b,
                dscp,
                tun_dst,
            )| {
                let mut m = Match::new();
                if let Some(p) = in_port {
                    m = m.with(OxmField::InPort(p));
                }
                if let Some(v) = eth_dst {
                    m = m.with(OxmField::EthDst {
                        value: v,
                        mask: None,
                    });
                }
                if let Some((v, mask)) = eth_src {
                    let value = match mask {
                        Some(mk) => std::array::from_fn(|i| v[i] & mk[i]),
                        None => v,
                    };
                    m = m.with(OxmField::EthSrc { value, mask });
                }
                if let Some((vid, pcp)) = vlan {
                    m = m.with(OxmField::VlanVid {
                        value: 0x1000 | vid,
                        mask: None,
                    });
                    if let Some(pcp) = pcp {
                        m = m.with(OxmField::VlanPcp(pcp));
                    }
                }
                if let Some((v, mask)) = meta {
                    m = m.with(OxmField::Metadata {
                        value: v & mask.unwrap_or(u64::MAX),
                        mask,
                    });
                }
                if let Some((idx, v, mask)) = reg {
                    m = m.with(OxmField::Reg {
                        idx,
                        value: v & mask.unwrap_or(u32::MAX),
                        mask,
                    });
                }
                if let Some(t) = tun {
                    m = m
                        .with(OxmField::TunnelId {
                            value: t,
                            mask: None,
                        })
                        .with(OxmField::TunIpv4Dst {
                            value: tun_dst.0,
                            mask: tun_dst.1,
                        });
                }
                let ip4 = |m: Match| {
                    m.with(OxmField::EthType(0x0800))
                        .with(OxmField::Ipv4Src {
                            value: src4.0,
                            mask: src4.1,
                        })
                        .with(OxmField::Ipv4Dst {
                            value: dst4.0,
                            mask: dst4.1,
                        })
                        .with(OxmField::IpDscp(dscp))
                };
                let m = match l3 {
                    1 => ip4(m).with(OxmField::IpProto(6)).with(OxmField::TcpDst(p)),
                    2 => ip4(m).with(OxmField::IpProto(17)).with(OxmField::UdpSrc(p)),
                    3 => ip4(m)
                        .with(OxmField::IpProto(1))
                        .with(OxmField::Icmpv4Type(b))
                        .with(OxmField::Icmpv4Code(b / 3)),
                    4 => m
                        .with(OxmField::EthType(0x0806))
                        .with(OxmField::ArpOp(u16::from(b % 2) + 1))
                        .with(OxmField::ArpTpa {
                            value: dst4.0,
                            mask: dst4.1,
                        }),
                    5 => m
                        .with(OxmField::EthType(0x86dd))
                        .with(OxmField::Ipv6Dst {
                            value: dst6.0,
                            mask: dst6.1,
                        })
                        .with(OxmField::IpProto(58))
                        .with(OxmField::Icmpv6Type(b)),
                    6 => ip4(m),
                    _ => m,
                };
                (m, matches!(l3, 1 | 2 | 3 | 6))
            },
        )
}

fn arb_action(ip: bool) -> BoxedStrategy<Action> {
    let base = prop_oneof![
        (port(), any::<u16>()).prop_map(|(port, _)| Action::Output { port, max_len: 0 }),
        (0u16..0xffe5).prop_map(|max_len| Action::Output {
            port: port_no::CONTROLLER,
            max_len
        }),
        Just(Action::Output {
            port: port_no::IN_PORT,
            max_len: 0
        }),
        Just(Action::Output {
            port: port_no::NORMAL,
            max_len: 0
        }),
        Just(Action::Output {
            port: port_no::FLOOD,
            max_len: 0
        }),
        (0u32..1000).prop_map(Action::Group),
        any::<u32>().prop_map(Action::SetQueue),
        mac().prop_map(|v| Action::SetField(OxmField::EthDst {
            value: v,
            mask: None
        })),
        mac().prop_map(|v| Action::SetField(OxmField::EthSrc {
            value: v,
            mask: None
        })),
        (0u8..8, any::<u32>()).prop_map(|(idx, value)| Action::SetField(OxmField::Reg {
            idx,
            value,
            mask: None
        })),
        any::<u64>().prop_map(|v| Action::SetField(OxmField::TunnelId {
            value: v,
            mask: None
        })),
        any::<[u8; 4]>().prop_map(|v| Action::SetField(OxmField::TunIpv4Dst {
            value: v.into(),
            mask: None
        })),
        Just(Action::PushVlan(0x8100)),
        (0u8..=254).prop_map(|t| Action::NxResubmit {
            in_port: 0xfff8,
            table: Some(t)
        }),
    ];
    if ip {
        prop_oneof![
            4 => base,
            1 => Just(Action::DecNwTtl),
            1 => any::<u8>().prop_map(Action::SetNwTtl),
            1 => any::<[u8; 4]>().prop_map(|v| Action::SetField(OxmField::Ipv4Dst {
                value: v.into(),
                mask: None
            })),
        ]
        .boxed()
    } else {
        base.boxed()
    }
}

/// OVS handles at most two VLAN headers: keep one push_vlan per list (a match may add the other).
fn one_push_vlan(mut actions: Vec<Action>) -> Vec<Action> {
    let mut seen = false;
    actions.retain(|a| !matches!(a, Action::PushVlan(_)) || !std::mem::replace(&mut seen, true));
    actions
}

fn arb_flow_mod() -> impl Strategy<Value = FlowMod> {
    (arb_match(), 0u8..200).prop_flat_map(|((m, ip), table_id)| {
        (
            Just(m),
            Just(table_id),
            prop_oneof![
                Just(FlowModCommand::Add),
                Just(FlowModCommand::Modify),
                Just(FlowModCommand::ModifyStrict),
                Just(FlowModCommand::Delete),
                Just(FlowModCommand::DeleteStrict),
            ],
            (
                any::<u64>(),
                any::<u16>(),
                any::<u16>(),
                any::<u16>(),
                0u16..32,
            ),
            proptest::option::of(1u32..0xffff0000),
            proptest::collection::vec(arb_action(ip), 0..4).prop_map(one_push_vlan),
            proptest::option::of(
                proptest::collection::vec(arb_action(ip), 1..3).prop_map(one_push_vlan),
            ),
            proptest::option::of((any::<u64>(), any::<u64>())),
            proptest::option::of(table_id + 1..=254),
        )
            .prop_map(
                |(
                    m,
                    table_id,
                    command,
                    (cookie, idle, hard, priority, flags),
                    meter,
                    apply,
                    write,
                    meta,
                    goto,
                )| {
                    let mut instructions = Vec::new();
                    if let Some(id) = meter {
                        instructions.push(Instruction::Meter(id));
                    }
                    if !apply.is_empty() {
                        instructions.push(Instruction::ApplyActions(apply));
                    }
                    if let Some(w) = write {
                        instructions.push(Instruction::WriteActions(w));
                    }
                    if let Some((metadata, mask)) = meta {
                        instructions.push(Instruction::WriteMetadata {
                            metadata: metadata & mask,
                            mask,
                        });
                    }
                    if let Some(t) = goto {
                        instructions.push(Instruction::GotoTable(t));
                    }
                    let delete = matches!(
                        command,
                        FlowModCommand::Delete | FlowModCommand::DeleteStrict
                    );
                    FlowMod {
                        cookie,
                        // Cookie masks only select flows for modify and delete.
                        cookie_mask: if matches!(command, FlowModCommand::Add) {
                            0
                        } else {
                            cookie
                        },
                        table_id: if delete && cookie % 3 == 0 {
                            OFPTT_ALL
                        } else {
                            table_id
                        },
                        command,
                        idle_timeout: idle,
                        hard_timeout: hard,
                        priority,
                        flags,
                        match_: m,
                        instructions,
                        ..FlowMod::default()
                    }
                },
            )
    })
}

fn arb_group_mod() -> impl Strategy<Value = GroupMod> {
    (
        prop_oneof![
            Just(GroupType::All),
            Just(GroupType::Select),
            Just(GroupType::Indirect),
            Just(GroupType::FastFailover),
        ],
        prop_oneof![Just(GroupModCommand::Add), Just(GroupModCommand::Modify)],
        0u32..0xffff_ff00,
        proptest::collection::vec(
            (
                1u16..1000,
                port(),
                proptest::collection::vec(arb_action(false), 1..3),
            ),
            1..4,
        ),
    )
        .prop_map(|(group_type, command, group_id, buckets)| {
            let n = if group_type == GroupType::Indirect {
                1
            } else {
                buckets.len()
            };
            let buckets = buckets
                .into_iter()
                .take(n)
                .map(|(weight, watch, actions)| Bucket {
                    weight: if group_type == GroupType::Select {
                        weight
                    } else {
                        0
                    },
                    watch_port: if group_type == GroupType::FastFailover {
                        watch
                    } else {
                        port_no::ANY
                    },
                    watch_group: OFPG_ANY,
                    // Group chaining is checked against the switch's groups; stay out of it.
                    actions: actions
                        .into_iter()
                        .filter(|a| !matches!(a, Action::Group(_)))
                        .collect(),
                })
                .collect();
            GroupMod {
                command,
                group_type,
                group_id,
                buckets,
            }
        })
}

fn arb_meter_mod() -> impl Strategy<Value = MeterMod> {
    (
        prop_oneof![Just(MeterModCommand::Add), Just(MeterModCommand::Modify)],
        1u32..0xffff_0000,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(
            (1u32..10_000_000, 1u32..1_000_000, any::<bool>(), 0u8..8),
            1..3,
        ),
    )
        .prop_map(|(command, meter_id, kbps, burst, stats, bands)| {
            let mut flags = if kbps { OFPMF_KBPS } else { OFPMF_PKTPS };
            if burst {
                flags |= OFPMF_BURST;
            }
            if stats {
                flags |= OFPMF_STATS;
            }
            let bands = bands
                .into_iter()
                .map(|(rate, b, drop, prec)| {
                    let burst_size = if burst { b } else { 0 };
                    if drop {
                        MeterBand::Drop { rate, burst_size }
                    } else {
                        MeterBand::DscpRemark {
                            rate,
                            burst_size,
                            prec_level: prec % 3 + 1,
                        }
                    }
                })
                .collect();
            MeterMod {
                command,
                flags,
                meter_id,
                bands,
            }
        })
}

fn arb_packet_out() -> impl Strategy<Value = PacketOut> {
    (
        prop_oneof![Just(port_no::CONTROLLER), 1u32..0xff00],
        proptest::collection::vec(arb_action(false), 0..3),
        proptest::collection::vec(any::<u8>(), 14..200),
    )
        .prop_map(|(in_port, actions, data)| PacketOut {
            buffer_id: OFP_NO_BUFFER,
            in_port,
            actions: actions
                .into_iter()
                .filter(|a| !matches!(a, Action::NxResubmit { .. }))
                .collect(),
            data: Bytes::from(data),
        })
}

fn arb_multipart() -> impl Strategy<Value = MultipartRequestBody> {
    let flow_req = (
        arb_match(),
        prop_oneof![Just(OFPTT_ALL), 0u8..200],
        any::<u64>(),
        prop_oneof![Just(port_no::ANY), port()],
    )
        .prop_map(|((m, _), table_id, cookie, out_port)| FlowStatsRequest {
            table_id,
            out_port,
            out_group: OFPG_ANY,
            cookie,
            cookie_mask: cookie,
            match_: m,
        })
        .boxed();
    prop_oneof![
        Just(MultipartRequestBody::Desc),
        flow_req.clone().prop_map(MultipartRequestBody::Flow),
        flow_req.prop_map(MultipartRequestBody::Aggregate),
        Just(MultipartRequestBody::Table),
        prop_oneof![Just(port_no::ANY), port()]
            .prop_map(|port_no| MultipartRequestBody::PortStats { port_no }),
        (port(), 0u32..100)
            .prop_map(|(port_no, queue_id)| MultipartRequestBody::Queue { port_no, queue_id }),
        (0u32..0xffff_ff00).prop_map(|group_id| MultipartRequestBody::Group { group_id }),
        Just(MultipartRequestBody::GroupDesc),
        Just(MultipartRequestBody::GroupFeatures),
        (1u32..0xffff_0000).prop_map(|meter_id| MultipartRequestBody::Meter { meter_id }),
        (1u32..0xffff_0000).prop_map(|meter_id| MultipartRequestBody::MeterConfig { meter_id }),
        Just(MultipartRequestBody::MeterFeatures),
        Just(MultipartRequestBody::PortDesc),
    ]
}

fn sample<T>(runner: &mut TestRunner, s: &impl Strategy<Value = T>, n: usize) -> Vec<T> {
    (0..n)
        .map(|_| s.new_tree(runner).expect("strategy").current())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// (a) Our bytes, OVS's decoder.

/// `ovs-ofctl ofp-parse` output split per message, keyed by xid.
fn ovs_decode(msgs: &[OfMessage]) -> (BTreeMap<u32, String>, String) {
    let dir = common::TempDir::new("ofp-parse");
    let path = dir.0.join("messages.bin");
    let mut bytes = BytesMut::new();
    for m in msgs {
        let before = bytes.len();
        m.emit(&mut bytes);
        // Our own decoder must agree before OVS is asked.
        assert_eq!(
            OfMessage::parse(&bytes[before..]).as_ref(),
            Ok(m),
            "our round trip"
        );
    }
    std::fs::write(&path, &bytes).expect("write messages");
    let out = common::ovs_ofctl(&["ofp-parse", path.to_str().expect("utf-8 temp path")]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ovs-ofctl ofp-parse failed: {stderr}");
    let mut blocks: BTreeMap<u32, String> = BTreeMap::new();
    let mut current = None;
    for line in stdout.lines() {
        if line.starts_with("OFP") {
            let xid = line
                .split("(xid=0x")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .unwrap_or_else(|| panic!("no xid in OVS line {line}"));
            current = Some(xid);
            blocks.insert(xid, line.to_string());
        } else if let Some(xid) = current {
            let block = blocks.entry(xid).or_default();
            block.push('\n');
            block.push_str(line);
        }
    }
    (blocks, stderr)
}

/// The text after `(xid=0x…):`, joined to one line.
fn ovs_body(block: &str) -> String {
    let body = block.split_once("):").map_or(block, |(_, b)| b);
    body.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Tokens of an ovs-ofctl flow text: split on spaces and commas, so field order does not matter.
fn tokens(s: &str) -> Vec<String> {
    let mut t: Vec<String> = s
        .split([' ', ','])
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    t.sort();
    t
}

#[test]
fn ovs_decodes_what_we_emit() {
    let mut runner = TestRunner::deterministic();
    let mut msgs = Vec::new();
    let mut push = |body: Message| {
        let xid = msgs.len() as u32 + 1;
        msgs.push(OfMessage::new(xid, body));
    };
    for fm in sample(&mut runner, &arb_flow_mod(), 300) {
        push(Message::FlowMod(fm));
    }
    for gm in sample(&mut runner, &arb_group_mod(), 80) {
        push(Message::GroupMod(gm));
    }
    for mm in sample(&mut runner, &arb_meter_mod(), 60) {
        push(Message::MeterMod(mm));
    }
    for po in sample(&mut runner, &arb_packet_out(), 60) {
        push(Message::PacketOut(po));
    }
    for body in sample(&mut runner, &arb_multipart(), 80) {
        push(Message::MultipartRequest(MultipartRequest::new(body)));
    }
    let (blocks, stderr) = ovs_decode(&msgs);
    let mut failures = Vec::new();
    for m in &msgs {
        let Some(block) = blocks.get(&m.xid) else {
            failures.push(format!(
                "xid {}: OVS printed nothing for {:?}",
                m.xid, m.body
            ));
            continue;
        };
        if block.contains("***") || block.contains("decode error") {
            failures.push(format!(
                "xid {}: OVS could not decode it:\n{block}\nours: {:?}",
                m.xid, m.body
            ));
            continue;
        }
        if let Err(e) = meant(&m.body, &ovs_body(block)) {
            failures.push(format!("xid {}: {e}\n  OVS:  {}", m.xid, ovs_body(block)));
        }
    }
    assert!(
        stderr.trim().is_empty(),
        "OVS warned while decoding:\n{stderr}"
    );
    eprintln!("{} messages decoded by OVS as meant", msgs.len());
    assert!(
        failures.is_empty(),
        "{} of {} messages differ:\n{}",
        failures.len(),
        msgs.len(),
        failures.join("\n")
    );
}

/// Checks that OVS's text for `body` shows the fields we put in.
fn meant(body: &Message, ovs: &str) -> Result<(), String> {
    let has = |needle: String| {
        if ovs.contains(&needle) {
            Ok(())
        } else {
            Err(format!("`{needle}` not in OVS text"))
        }
    };
    match body {
        Message::FlowMod(fm) => {
            let ours = normalize_flow_display(&fm.to_string());
            let theirs = ovs;
            if tokens(&ours) != tokens(theirs) {
                return Err(format!("ours: {ours}\n  OVS': {theirs}"));
            }
            Ok(())
        }
        Message::GroupMod(gm) => {
            has(format!("group_id={}", gm.group_id))?;
            let typ = match gm.group_type {
                GroupType::All => "all",
                GroupType::Select => "select",
                GroupType::Indirect => "indirect",
                GroupType::FastFailover => "ff",
                GroupType::Unknown(_) => "?",
            };
            has(format!("type={typ}"))?;
            let n = ovs.matches("bucket=").count();
            if n != gm.buckets.len() {
                return Err(format!(
                    "{n} buckets in OVS text, we sent {}",
                    gm.buckets.len()
                ));
            }
            for b in &gm.buckets {
                if gm.group_type == GroupType::Select {
                    has(format!("weight:{}", b.weight))?;
                }
                if b.watch_port != port_no::ANY {
                    has(format!("watch_port:{}", PortName(b.watch_port)))?;
                }
                for a in &b.actions {
                    has(a.to_string())?;
                }
            }
            Ok(())
        }
        Message::MeterMod(mm) => {
            has(format!("meter={}", mm.meter_id))?;
            has(if mm.flags & OFPMF_KBPS != 0 {
                "kbps"
            } else {
                "pktps"
            }
            .to_string())?;
            if mm.flags & OFPMF_STATS != 0 {
                has("stats".into())?;
            }
            for band in &mm.bands {
                match band {
                    MeterBand::Drop { rate, .. } => has(format!("type=drop rate={rate}"))?,
                    MeterBand::DscpRemark {
                        rate, prec_level, ..
                    } => {
                        has(format!("type=dscp_remark rate={rate}"))?;
                        has(format!("prec_level={prec_level}"))?;
                    }
                    MeterBand::Experimenter { .. } => {}
                }
                if let MeterBand::Drop { burst_size, .. }
                | MeterBand::DscpRemark { burst_size, .. } = band
                {
                    if mm.flags & OFPMF_BURST != 0 {
                        has(format!("burst_size={burst_size}"))?;
                    }
                }
            }
            Ok(())
        }
        Message::PacketOut(po) => {
            has(format!("in_port={}", PortName(po.in_port)))?;
            let acts: Vec<String> = po.actions.iter().map(|a| a.to_string()).collect();
            let acts = if acts.is_empty() {
                "drop".to_string()
            } else {
                acts.join(",")
            };
            has(format!("actions={acts}"))?;
            has(format!("data_len={}", po.data.len()))
        }
        Message::MultipartRequest(req) => {
            use MultipartRequestBody as B;
            match &req.body {
                B::Flow(f) | B::Aggregate(f) => {
                    if f.table_id != OFPTT_ALL {
                        has(format!("table={}", f.table_id))?;
                    }
                    if f.out_port != port_no::ANY {
                        has(format!("out_port={}", PortName(f.out_port)))?;
                    }
                    let m = normalize_flow_display(&f.match_.to_string());
                    for t in tokens(&m) {
                        if t != "priority=32768" {
                            has(t)?;
                        }
                    }
                    Ok(())
                }
                B::PortStats { port_no: p } if *p != port_no::ANY => {
                    has(format!("port_no={}", PortName(*p)))
                }
                B::Queue {
                    port_no: p,
                    queue_id,
                } => {
                    has(format!("port={}", PortName(*p)))?;
                    has(format!("queue={queue_id}"))
                }
                B::Group { group_id } => has(format!("group_id={group_id}")),
                B::Meter { meter_id } | B::MeterConfig { meter_id } => {
                    has(format!("meter={meter_id}"))
                }
                _ => Ok(()),
            }
        }
        other => Err(format!("no check for {}", other.name())),
    }
}

/// Where our `Display` and ovs-ofctl legitimately differ, map ours to OVS's. One case remains:
/// a field with an all-zero mask (`nw_dst=0.0.0.0/0`) is on the wire (we keep what we were
/// given, so it round-trips) but OVS drops it, since it matches anything.
fn normalize_flow_display(s: &str) -> String {
    s.split(' ')
        .map(|word| {
            word.split(',')
                .filter(|field| !matches_anything(field))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `key=value/mask` with an all-zero mask.
fn matches_anything(field: &str) -> bool {
    let Some((_, mask)) = field.split_once('=').and_then(|(_, v)| v.split_once('/')) else {
        return false;
    };
    mask == "0"
        || mask.parse::<Ipv4Addr>() == Ok(Ipv4Addr::UNSPECIFIED)
        || mask.parse::<Ipv6Addr>() == Ok(Ipv6Addr::UNSPECIFIED)
}

// ---------------------------------------------------------------------------------------------
// (b) OVS's bytes, our decoder.

/// Runs `ovs-ofctl -O OpenFlow13 --no-names ARGS tcp:127.0.0.1:PORT …` against a one-shot
/// switch of ours, and returns every message ovs-ofctl sent, as raw bytes.
fn record(args: &[&str], stdin: Option<&str>) -> (Vec<Bytes>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let target = format!("tcp:{}", listener.local_addr().expect("addr"));
    let switch = std::thread::spawn(move || fake_switch(listener));
    let mut cmd = std::process::Command::new("ovs-ofctl");
    cmd.args(["-O", "OpenFlow13", "--no-names", "--timeout=10"]);
    let mut full: Vec<String> = Vec::new();
    for a in args {
        full.push(if *a == "SWITCH" {
            target.clone()
        } else {
            a.to_string()
        });
    }
    cmd.args(&full)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run ovs-ofctl ({e}): install openvswitch-switch \
             (apt-get install openvswitch-switch) to run the OVS cross-checks"
        ),
    };
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("ovs-ofctl finishes");
    let recorded = switch.join().expect("switch thread");
    assert!(
        out.status.success(),
        "ovs-ofctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (recorded, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Accepts one connection and plays a switch: HELLO, FEATURES/GET_CONFIG replies, echo,
/// barrier, and an empty reply of the same kind to every multipart request. Framing and replies
/// use our own codec; the recorded messages are the raw bytes off the wire.
fn fake_switch(listener: TcpListener) -> Vec<Bytes> {
    // Poll accept with a deadline: if ovs-ofctl fails before connecting, the test must report
    // its error instead of waiting here forever.
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sock = loop {
        match listener.accept() {
            Ok((sock, _)) => break sock,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return Vec::new(),
        }
    };
    sock.set_nonblocking(false).expect("blocking socket");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = BytesMut::new();
    let mut decoder = Decoder::new();
    let mut recorded = Vec::new();
    let mut chunk = [0u8; 65536];
    let send = |sock: &mut std::net::TcpStream, xid: u32, body: Message| {
        sock.write_all(&OfMessage::new(xid, body).to_bytes())
            .expect("send");
    };
    loop {
        let n = match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return recorded,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let len = usize::from(u16::from_be_bytes([
                *buf.get(2).unwrap_or(&0),
                *buf.get(3).unwrap_or(&0),
            ]));
            let raw =
                (buf.len() >= 8 && buf.len() >= len).then(|| Bytes::copy_from_slice(&buf[..len]));
            let msg = match decoder.decode(&mut buf) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => panic!("our decoder rejected OVS's stream: {e}"),
            };
            recorded.push(raw.expect("a whole message was buffered"));
            let xid = msg.xid;
            match msg.body {
                Message::Hello(_) => send(&mut sock, xid, Message::Hello(Hello::of13())),
                Message::EchoRequest(d) => send(&mut sock, xid, Message::EchoReply(d)),
                Message::BarrierRequest => send(&mut sock, xid, Message::BarrierReply),
                Message::FeaturesRequest => send(
                    &mut sock,
                    xid,
                    Message::FeaturesReply(ofproto::FeaturesReply {
                        datapath_id: 1,
                        n_buffers: 0,
                        n_tables: 254,
                        auxiliary_id: 0,
                        capabilities: 0x4f,
                    }),
                ),
                Message::GetConfigRequest => send(
                    &mut sock,
                    xid,
                    Message::GetConfigReply(ofproto::SwitchConfig {
                        flags: 0,
                        miss_send_len: 128,
                    }),
                ),
                Message::MultipartRequest(req) => {
                    use MultipartReplyBody as R;
                    use MultipartRequestBody as Q;
                    let body = match req.body {
                        Q::Flow(_) => R::Flow(switch_flows()),
                        Q::Group { .. } => R::Group(Vec::new()),
                        Q::GroupDesc => R::GroupDesc(Vec::new()),
                        Q::Meter { .. } => R::Meter(Vec::new()),
                        Q::MeterConfig { .. } => R::MeterConfig(Vec::new()),
                        Q::PortDesc => R::PortDesc(Vec::new()),
                        Q::PortStats { .. } => R::PortStats(Vec::new()),
                        Q::Table => R::Table(Vec::new()),
                        Q::Aggregate(_) => R::Aggregate(ofproto::AggregateStats {
                            packet_count: 0,
                            byte_count: 0,
                            flow_count: 0,
                        }),
                        other => panic!("the fake switch has no reply for {other:?}"),
                    };
                    send(
                        &mut sock,
                        xid,
                        Message::MultipartReply(MultipartReply::new(body)),
                    );
                }
                _ => {}
            }
        }
    }
}

/// The flow table the fake switch reports to `dump-flows`.
fn switch_flows() -> Vec<ofproto::FlowStats> {
    let (m1, _) = (
        Match::new()
            .with(OxmField::InPort(1))
            .with(OxmField::EthType(0x0800))
            .with(OxmField::Ipv4Dst {
                value: Ipv4Addr::new(10, 0, 0, 0),
                mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            }),
        (),
    );
    let entry = |table_id, priority, cookie, match_, instructions| ofproto::FlowStats {
        table_id,
        duration_sec: 12,
        duration_nsec: 345_000_000,
        priority,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie,
        packet_count: 7,
        byte_count: 700,
        match_,
        instructions,
    };
    vec![
        entry(
            0,
            100,
            0x1,
            m1,
            vec![Instruction::ApplyActions(vec![
                Action::DecNwTtl,
                Action::Output {
                    port: 2,
                    max_len: 0,
                },
            ])],
        ),
        entry(
            3,
            0,
            0x0,
            Match::new(),
            vec![Instruction::ApplyActions(vec![Action::Output {
                port: port_no::CONTROLLER,
                max_len: 0xffff,
            }])],
        ),
        entry(
            5,
            7,
            0xfeed,
            Match::new().with(OxmField::Reg {
                idx: 3,
                value: 9,
                mask: None,
            }),
            vec![Instruction::GotoTable(6)],
        ),
    ]
}

/// Our FLOW stats reply, printed by `ovs-ofctl dump-flows`, shows our entries as `Display`
/// prints them (same tokens, modulo the spellings in `normalize_flow_display`).
#[test]
fn ovs_prints_our_flow_stats() {
    let (_, stdout) = record(&["dump-flows", "SWITCH"], None);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("cookie=")).collect();
    let flows = switch_flows();
    assert_eq!(lines.len(), flows.len(), "dump-flows printed:\n{stdout}");
    for (line, flow) in lines.iter().zip(&flows) {
        let ours = normalize_flow_display(&flow.to_string());
        assert_eq!(
            tokens(&ours),
            tokens(line),
            "\n ours: {ours}\n OVS:  {line}"
        );
    }
    eprintln!("dump-flows of our FLOW stats reply:\n{stdout}");
}

#[test]
fn we_parse_and_reemit_what_ovs_sends() {
    let flows = "\
table=0,priority=100,in_port=1,dl_vlan=10,actions=strip_vlan,output:2
table=0,priority=50,ip,nw_src=10.0.0.0/8,nw_dst=192.168.1.1,nw_tos=32,actions=mod_dl_src:00:00:00:00:00:01,dec_ttl,output:2
table=1,priority=200,tcp,tp_dst=80,actions=set_field:10.1.1.1->ip_dst,resubmit(,2)
table=2,cookie=0x1234,idle_timeout=30,hard_timeout=300,udp,udp_src=68,udp_dst=67,actions=controller:65535
table=3,arp,arp_tpa=10.0.0.254,arp_op=1,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:02:00:00:00:00:fe,load:0x2->NXM_OF_ARP_OP[],IN_PORT
table=4,ipv6,ipv6_dst=2001:db8::/32,icmp6,icmp_type=128,actions=write_actions(output:3),goto_table:5
table=5,metadata=0x1/0xff,reg0=0x5,tun_id=0x42,tun_dst=192.0.2.1,actions=set_field:0x7->reg1,set_field:0x99->tun_id,set_field:192.0.2.2->tun_dst,output:4
table=6,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=meter:3,group:7,write_metadata:0x10/0xff
table=7,priority=0,actions=drop
table=8,send_flow_rem,check_overlap,in_port=LOCAL,actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
";
    let runs: Vec<(Vec<&str>, Option<&str>)> = vec![
        (vec!["add-flows", "SWITCH", "-"], Some(flows)),
        (vec!["add-flow", "SWITCH", "priority=10,in_port=2,actions=output:1"], None),
        (vec!["mod-flows", "SWITCH", "in_port=2,actions=output:3"], None),
        (vec!["--strict", "del-flows", "SWITCH", "priority=10,in_port=2"], None),
        (vec!["del-flows", "SWITCH"], None),
        (vec!["del-flows", "SWITCH", "table=3,arp"], None),
        (vec!["dump-flows", "SWITCH"], None),
        (vec!["dump-flows", "SWITCH", "table=1,tcp"], None),
        (vec!["dump-aggregate", "SWITCH"], None),
        (vec!["add-group", "SWITCH", "group_id=1,type=select,bucket=weight:10,output:1,bucket=weight:20,mod_dl_dst:00:00:00:00:00:02,output:2"], None),
        (vec!["add-group", "SWITCH", "group_id=2,type=all,bucket=output:1,bucket=output:2,bucket=output:3"], None),
        (vec!["add-group", "SWITCH", "group_id=3,type=indirect,bucket=set_field:10.0.0.1->ip_dst,output:5"], None),
        (vec!["add-group", "SWITCH", "group_id=4,type=ff,bucket=watch_port:1,output:1,bucket=watch_port:2,output:2"], None),
        (vec!["mod-group", "SWITCH", "group_id=2,type=all,bucket=output:4"], None),
        (vec!["del-groups", "SWITCH", "group_id=2"], None),
        (vec!["dump-groups", "SWITCH"], None),
        (vec!["dump-group-stats", "SWITCH"], None),
        (vec!["add-meter", "SWITCH", "meter=1,kbps,band=type=drop,rate=1000"], None),
        (vec!["add-meter", "SWITCH", "meter=2,pktps,burst,stats,band=type=drop,rate=100,burst_size=10"], None),
        (vec!["mod-meter", "SWITCH", "meter=1,kbps,band=type=dscp_remark,rate=500,prec_level=1"], None),
        (vec!["del-meter", "SWITCH", "meter=1"], None),
        (vec!["dump-meters", "SWITCH"], None),
        (vec!["meter-stats", "SWITCH"], None),
        (vec!["dump-ports", "SWITCH"], None),
        (vec!["dump-ports-desc", "SWITCH"], None),
        (vec!["dump-tables", "SWITCH"], None),
        (vec!["packet-out", "SWITCH", "in_port=CONTROLLER packet=ffffffffffff000000000001080600010800060400010000000000010a0000010000000000000a0000fe actions=output:1,set_field:10->reg0,resubmit(,3)"], None),
    ];
    let mut total = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for (args, stdin) in &runs {
        let (recorded, _) = record(args, *stdin);
        assert!(
            recorded.len() >= 2,
            "{args:?}: only {} messages recorded",
            recorded.len()
        );
        for raw in &recorded {
            let msg = OfMessage::parse(raw)
                .unwrap_or_else(|e| panic!("{args:?}: we reject OVS's {}: {e}", hex::encode(raw)));
            assert_eq!(
                hex::encode(msg.to_bytes()),
                hex::encode(raw),
                "{args:?}: re-emitting {msg:?} changed the bytes"
            );
            kinds.insert(match &msg.body {
                Message::MultipartRequest(r) => {
                    let kind = format!("{:?}", r.body);
                    let kind = kind.split(['(', ' ', '{']).next().unwrap_or_default();
                    format!("MULTIPART_REQUEST/{kind}")
                }
                other => other.name().to_string(),
            });
            total += 1;
        }
    }
    for want in [
        "HELLO",
        "FLOW_MOD",
        "GROUP_MOD",
        "METER_MOD",
        "PACKET_OUT",
        "BARRIER_REQUEST",
    ] {
        assert!(kinds.contains(want), "OVS never sent a {want}: {kinds:?}");
    }
    assert!(total > 40, "only {total} messages recorded");
    eprintln!("{total} messages from OVS parsed and re-emitted identically: {kinds:?}");
}
