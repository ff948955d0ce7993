//! The codec against Open vSwitch 3.1 itself, both directions.
//!
//! (a) What we emit: a few hundred generated FLOW_MODs, GROUP_MODs, METER_MODs, PACKET_OUTs and
//!     multipart requests, and hand-picked messages of every type, go into one file that
//!     `ovs-ofctl ofp-parse` decodes in one process; every message must decode without error or
//!     warning, OVS's text must show the fields we meant, and our one-line `Display` must be
//!     OVS's text word for word (FLOW_MODs: character for character).
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
        Just(7u8), // mpls
        Just(8u8), // ipv6 tcp
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
        (cidr4(), cidr4(), mac()),
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
                (tun_src, tun_dst, sha),
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
                        .with(OxmField::TunIpv4Src {
                            value: tun_src.0,
                            mask: tun_src.1,
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
                        })
                        .with(OxmField::ArpSha {
                            value: sha,
                            mask: None,
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
                    7 => m
                        .with(OxmField::EthType(0x8847))
                        .with(OxmField::MplsLabel(u32::from(p) << 4)),
                    8 => m
                        .with(OxmField::EthType(0x86dd))
                        .with(OxmField::Ipv6Src {
                            value: dst6.0,
                            mask: dst6.1,
                        })
                        .with(OxmField::IpProto(6))
                        .with(OxmField::TcpSrc(p)),
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
        (1u16..0xff00, proptest::option::of(0u8..=254))
            .prop_map(|(in_port, table)| Action::NxResubmit { in_port, table }),
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
            (any::<bool>(), proptest::option::of((port(), 0u32..1000))),
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
                    (clear, out),
                )| {
                    let mut instructions = Vec::new();
                    if let Some(id) = meter {
                        instructions.push(Instruction::Meter(id));
                    }
                    if !apply.is_empty() {
                        instructions.push(Instruction::ApplyActions(apply));
                    }
                    if clear {
                        instructions.push(Instruction::ClearActions);
                    }
                    if let Some(mut w) = write {
                        // After clear_actions OVS counts the write list's VLAN tags on top of
                        // the apply list's, which may exceed the two it supports.
                        if clear {
                            w.retain(|a| !matches!(a, Action::PushVlan(_)));
                        }
                        if !w.is_empty() {
                            instructions.push(Instruction::WriteActions(w));
                        }
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
                        // Only deletes select flows by output port and group.
                        out_port: out.filter(|_| delete).map_or(port_no::ANY, |o| o.0),
                        out_group: out.filter(|_| delete).map_or(OFPG_ANY, |o| o.1),
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
        prop_oneof![
            3 => Just(GroupModCommand::Add),
            2 => Just(GroupModCommand::Modify),
            1 => Just(GroupModCommand::Delete),
        ],
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
            let n = match (command, group_type) {
                (GroupModCommand::Delete, _) => 0,
                (_, GroupType::Indirect) => 1,
                _ => buckets.len(),
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
        prop_oneof![
            3 => Just(MeterModCommand::Add),
            2 => Just(MeterModCommand::Modify),
            1 => Just(MeterModCommand::Delete),
        ],
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
            let deleting = command == MeterModCommand::Delete;
            let bands = bands
                .into_iter()
                .filter(|_| !deleting)
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

/// Tokens of an ovs-ofctl text: split on white space, commas and the `; ` that joins our list
/// entries, so field order and line breaks do not matter.
fn tokens(s: &str) -> Vec<String> {
    let mut t: Vec<String> = s
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
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
        if let Err(e) = same_text(m, block) {
            failures.push(format!("xid {} text: {e}", m.xid));
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
            let ours = fm.to_string();
            if ours != ovs {
                return Err(format!("ours: {ours}\n  OVS': {ovs}"));
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
        // OVS shows a delete's meter id only.
        Message::MeterMod(mm) if mm.command == MeterModCommand::Delete => {
            has(format!("meter={}", mm.meter_id))
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
                    for t in tokens(&f.match_.to_string()) {
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

/// Our one-line text for `m` against OVS's (possibly multi-line) `block`: the same header, and
/// the same words after it where the two formats are meant to agree.
fn same_text(m: &OfMessage, block: &str) -> Result<(), String> {
    let ours = m.to_string();
    if ours.contains('\n') || ours.is_empty() {
        return Err(format!("not one line: {ours:?}"));
    }
    let (our_head, our_body) = ours.split_once("):").ok_or("no header in our text")?;
    let (ovs_head, _) = block.split_once("):").ok_or("no header in OVS text")?;
    if our_head != ovs_head {
        return Err(format!("header: ours {our_head}), OVS {ovs_head})"));
    }
    let agree = match &m.body {
        // OVS prints the frame of a packet-in/out as a flow on its second line, and an echo
        // payload as a hex dump; our summaries of those differ, the first line must not.
        // OVS prints an error's request on lines of its own, which start a block of their own.
        Message::PacketIn(_)
        | Message::PacketOut(_)
        | Message::EchoRequest(_)
        | Message::EchoReply(_)
        | Message::Error(_) => {
            let first = ovs_body(block.lines().next().unwrap_or_default());
            let ours = ovs_body(&ours);
            return if ours.starts_with(&first) {
                Ok(())
            } else {
                Err(format!("ours: {ours}\n  OVS': {first}"))
            };
        }
        // OVS also lists the async messages OpenFlow 1.4 added, always off in 1.3.
        Message::GetAsyncReply(_) | Message::SetAsync(_) => block
            .lines()
            .filter(|l| {
                !["ROLE_STATUS", "TABLE_STATUS", "REQUESTFORWARD"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => block.to_string(),
    };
    let theirs = ovs_body(&agree);
    if tokens(our_body) != tokens(&theirs) {
        return Err(format!("ours: {}\n  OVS': {theirs}", our_body.trim()));
    }
    Ok(())
}

/// A 42-byte ARP request from 10.0.0.1 for 10.0.0.254.
const ARP_FRAME: &str =
    "ffffffffffff000000000001080600010800060400010000000000010a0000010000000000000a0000fe";

/// Messages OVS cannot decode by design: experimenter ids it does not know, and table features
/// without the properties it requires. Their text is checked only for being one line.
fn ovs_rejects(m: &Message) -> bool {
    use MultipartReplyBody as R;
    use MultipartRequestBody as Q;
    match m {
        Message::Experimenter(_) => true,
        Message::MultipartRequest(r) => match &r.body {
            Q::Experimenter(_) => true,
            Q::TableFeatures(t) => !t.is_empty(),
            _ => false,
        },
        Message::MultipartReply(r) => matches!(r.body, R::Experimenter(_) | R::TableFeatures(_)),
        _ => false,
    }
}

/// Hand-picked messages of every type and every multipart body, with values OVS accepts.
fn every_kind() -> Vec<Message> {
    use ofproto::error::{BadRequestCode, ErrorType, HelloFailedCode};
    use ofproto::msg::meter::OFPMF_KBPS;
    use ofproto::multipart::*;
    use ofproto::*;
    use MultipartReplyBody as R;
    use MultipartRequestBody as Q;
    let arp_frame = Bytes::from(hex::decode(ARP_FRAME).expect("hex"));
    let ip_match = Match::new()
        .with(OxmField::InPort(1))
        .with(OxmField::EthType(0x0800))
        .with(OxmField::Ipv4Dst {
            value: Ipv4Addr::new(10, 0, 0, 0),
            mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
        });
    let out2 = || Action::Output {
        port: 2,
        max_len: 0,
    };
    let port = |port_no, name: &str| Port {
        port_no,
        hw_addr: [0x02, 0, 0, 0, 0, port_no as u8],
        name: name.into(),
        config: consts::OFPPC_PORT_DOWN,
        state: consts::OFPPS_LIVE,
        curr: 0x820,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 0,
    };
    let flow_stats = FlowStats {
        table_id: 1,
        duration_sec: 12,
        duration_nsec: 345_000_000,
        priority: 100,
        idle_timeout: 10,
        hard_timeout: 0,
        flags: consts::OFPFF_SEND_FLOW_REM,
        cookie: 0x5,
        packet_count: 7,
        byte_count: 700,
        match_: ip_match.clone(),
        instructions: vec![Instruction::ApplyActions(vec![Action::DecNwTtl, out2()])],
    };
    let buckets = vec![
        Bucket {
            weight: 10,
            watch_port: port_no::ANY,
            watch_group: consts::OFPG_ANY,
            actions: vec![out2()],
        },
        Bucket {
            weight: 20,
            watch_port: port_no::ANY,
            watch_group: consts::OFPG_ANY,
            actions: vec![Action::Output {
                port: 3,
                max_len: 0,
            }],
        },
    ];
    let drop_band = MeterBand::Drop {
        rate: 1000,
        burst_size: 0,
    };
    let table_features = TableFeatures {
        table_id: 0,
        name: "classifier".into(),
        metadata_match: u64::MAX,
        metadata_write: u64::MAX,
        config: 0,
        max_entries: 1_000_000,
        properties: vec![
            TableFeatureProp::NextTables {
                miss: false,
                tables: vec![1, 2],
            },
            TableFeatureProp::Instructions {
                miss: false,
                ids: vec![FeatureId {
                    typ: 1,
                    data: Bytes::new(),
                }],
            },
        ],
    };
    let mp_req = |body| Message::MultipartRequest(MultipartRequest::new(body));
    let mp_rep = |body| Message::MultipartReply(MultipartReply::new(body));
    vec![
        Message::Hello(Hello::of13()),
        Message::Hello(Hello::default()),
        Message::Error(ErrorMsg {
            kind: ErrorType::BadRequest(BadRequestCode::BadType),
            // The FEATURES_REQUEST the error is about, with an xid no other message here has.
            data: Bytes::from_static(&[4, 5, 0, 8, 0, 0, 0xee, 0]),
        }),
        Message::Error(ErrorMsg {
            kind: ErrorType::HelloFailed(HelloFailedCode::Incompatible),
            data: Bytes::from_static(b"no common version"),
        }),
        Message::EchoRequest(Bytes::new()),
        Message::EchoReply(Bytes::from_static(b"ping")),
        Message::Experimenter(Experimenter {
            experimenter: 0x00ab_cdef,
            exp_type: 7,
            data: Bytes::from_static(&[1, 2, 3]),
        }),
        Message::FeaturesRequest,
        Message::FeaturesReply(FeaturesReply {
            datapath_id: 0x1234,
            n_buffers: 256,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x4f,
        }),
        Message::GetConfigRequest,
        Message::GetConfigReply(SwitchConfig {
            flags: consts::OFPC_FRAG_NORMAL,
            miss_send_len: 128,
        }),
        Message::SetConfig(SwitchConfig {
            flags: consts::OFPC_FRAG_DROP,
            miss_send_len: 0xffff,
        }),
        Message::PacketIn(PacketIn {
            buffer_id: OFP_NO_BUFFER,
            total_len: 42,
            reason: PacketInReason::NoMatch,
            table_id: 0,
            cookie: 0,
            match_: Match::new().with(OxmField::InPort(1)),
            data: arp_frame.clone(),
        }),
        Message::PacketIn(PacketIn {
            buffer_id: 0x100,
            total_len: 42,
            reason: PacketInReason::Action,
            table_id: 3,
            cookie: 0xfeed,
            match_: Match::new()
                .with(OxmField::InPort(7))
                .with(OxmField::TunnelId {
                    value: 0x42,
                    mask: None,
                }),
            data: arp_frame.clone(),
        }),
        Message::FlowRemoved(FlowRemoved {
            cookie: 0x5,
            priority: 100,
            reason: FlowRemovedReason::IdleTimeout,
            table_id: 2,
            duration_sec: 3,
            duration_nsec: 500_000_000,
            idle_timeout: 10,
            hard_timeout: 0,
            packet_count: 4,
            byte_count: 400,
            match_: ip_match.clone(),
        }),
        Message::FlowRemoved(FlowRemoved {
            cookie: 0,
            priority: 0x8000,
            reason: FlowRemovedReason::Delete,
            table_id: 0,
            duration_sec: 0,
            duration_nsec: 0,
            idle_timeout: 0,
            hard_timeout: 30,
            packet_count: 0,
            byte_count: 0,
            match_: Match::new(),
        }),
        Message::PortStatus(PortStatus {
            reason: PortReason::Add,
            desc: port(1, "eth1"),
        }),
        Message::PortStatus(PortStatus {
            reason: PortReason::Modify,
            desc: Port {
                config: 0,
                state: consts::OFPPS_LINK_DOWN,
                ..port(port_no::LOCAL, "br-int")
            },
        }),
        Message::PacketOut(PacketOut {
            buffer_id: OFP_NO_BUFFER,
            in_port: port_no::CONTROLLER,
            actions: vec![out2()],
            data: arp_frame.clone(),
        }),
        Message::PacketOut(PacketOut {
            buffer_id: 0x100,
            in_port: 1,
            actions: vec![],
            data: Bytes::new(),
        }),
        Message::FlowMod(FlowMod {
            table_id: 1,
            priority: 100,
            idle_timeout: 10,
            cookie: 0x5,
            flags: consts::OFPFF_SEND_FLOW_REM,
            match_: ip_match.clone(),
            instructions: vec![
                Instruction::ApplyActions(vec![Action::DecNwTtl, out2()]),
                Instruction::GotoTable(2),
            ],
            ..FlowMod::default()
        }),
        Message::FlowMod(FlowMod {
            command: FlowModCommand::Delete,
            table_id: consts::OFPTT_ALL,
            ..FlowMod::default()
        }),
        Message::GroupMod(GroupMod {
            command: GroupModCommand::Add,
            group_type: GroupType::Select,
            group_id: 1,
            buckets: buckets.clone(),
        }),
        Message::GroupMod(GroupMod {
            command: GroupModCommand::Delete,
            group_type: GroupType::All,
            group_id: consts::OFPG_ALL,
            buckets: vec![],
        }),
        Message::PortMod(PortMod {
            port_no: 1,
            hw_addr: [0x02, 0, 0, 0, 0, 1],
            config: consts::OFPPC_PORT_DOWN,
            mask: consts::OFPPC_PORT_DOWN | consts::OFPPC_NO_PACKET_IN,
            advertise: 0,
        }),
        Message::TableMod(TableMod {
            table_id: 1,
            config: 0,
        }),
        mp_req(Q::Desc),
        mp_req(Q::Flow(FlowStatsRequest {
            table_id: 1,
            out_port: 2,
            match_: ip_match.clone(),
            ..FlowStatsRequest::default()
        })),
        mp_req(Q::Aggregate(FlowStatsRequest::default())),
        mp_req(Q::Table),
        mp_req(Q::PortStats {
            port_no: port_no::ANY,
        }),
        mp_req(Q::PortStats { port_no: 3 }),
        mp_req(Q::Queue {
            port_no: 1,
            queue_id: consts::OFPQ_ALL,
        }),
        mp_req(Q::Group {
            group_id: consts::OFPG_ALL,
        }),
        mp_req(Q::GroupDesc),
        mp_req(Q::GroupFeatures),
        mp_req(Q::Meter {
            meter_id: consts::OFPM_ALL,
        }),
        mp_req(Q::MeterConfig { meter_id: 5 }),
        mp_req(Q::MeterFeatures),
        mp_req(Q::TableFeatures(vec![])),
        mp_req(Q::TableFeatures(vec![table_features.clone()])),
        mp_req(Q::PortDesc),
        mp_req(Q::Experimenter(MultipartExperimenter {
            experimenter: 0x00ab_cdef,
            exp_type: 1,
            data: Bytes::from_static(&[9, 9]),
        })),
        mp_rep(R::Desc(Desc {
            mfr_desc: "Strowger".into(),
            hw_desc: "sim".into(),
            sw_desc: "0.1".into(),
            serial_num: "None".into(),
            dp_desc: "br-int".into(),
        })),
        mp_rep(R::Flow(vec![flow_stats.clone(), flow_stats])),
        mp_rep(R::Flow(vec![])),
        mp_rep(R::Aggregate(AggregateStats {
            packet_count: 10,
            byte_count: 1000,
            flow_count: 3,
        })),
        mp_rep(R::Table(vec![TableStats {
            table_id: 0,
            active_count: 4,
            lookup_count: 100,
            matched_count: 90,
        }])),
        mp_rep(R::PortStats(vec![PortStats {
            port_no: 1,
            rx_packets: 1,
            tx_packets: 2,
            rx_bytes: 3,
            tx_bytes: 4,
            rx_dropped: 5,
            tx_dropped: 6,
            rx_errors: 7,
            tx_errors: 8,
            rx_frame_err: 9,
            rx_over_err: 10,
            rx_crc_err: 11,
            collisions: 12,
            duration_sec: 13,
            duration_nsec: 14,
        }])),
        mp_rep(R::Queue(vec![QueueStats {
            port_no: 1,
            queue_id: 0,
            tx_bytes: 100,
            tx_packets: 1,
            tx_errors: 0,
            duration_sec: 5,
            duration_nsec: 0,
        }])),
        mp_rep(R::Group(vec![GroupStats {
            group_id: 1,
            ref_count: 2,
            packet_count: 3,
            byte_count: 4,
            duration_sec: 5,
            duration_nsec: 6,
            bucket_stats: vec![BucketCounter {
                packet_count: 1,
                byte_count: 2,
            }],
        }])),
        mp_rep(R::GroupDesc(vec![GroupDesc {
            group_type: GroupType::Select,
            group_id: 1,
            buckets,
        }])),
        mp_rep(R::GroupFeatures(GroupFeatures {
            types: 0xf,
            capabilities: 0x3,
            max_groups: [100, 100, 100, 100],
            actions: [1, 1, 1, 1],
        })),
        mp_rep(R::Meter(vec![MeterStats {
            meter_id: 1,
            flow_count: 2,
            packet_in_count: 3,
            byte_in_count: 4,
            duration_sec: 5,
            duration_nsec: 6,
            band_stats: vec![MeterBandStats {
                packet_band_count: 7,
                byte_band_count: 8,
            }],
        }])),
        mp_rep(R::MeterConfig(vec![MeterConfig {
            flags: OFPMF_KBPS,
            meter_id: 1,
            bands: vec![drop_band.clone()],
        }])),
        mp_rep(R::MeterFeatures(MeterFeatures {
            max_meter: 100,
            band_types: 0x6,
            capabilities: 0xf,
            max_bands: 1,
            max_color: 0,
        })),
        mp_rep(R::TableFeatures(vec![table_features])),
        mp_rep(R::PortDesc(vec![port(1, "eth1"), port(2, "eth2")])),
        mp_rep(R::Experimenter(MultipartExperimenter {
            experimenter: 0x00ab_cdef,
            exp_type: 1,
            data: Bytes::new(),
        })),
        Message::MultipartReply(MultipartReply {
            flags: consts::OFPMPF_REPLY_MORE,
            body: R::PortDesc(vec![]),
        }),
        Message::BarrierRequest,
        Message::BarrierReply,
        Message::QueueGetConfigRequest(QueueGetConfigRequest { port: 1 }),
        Message::QueueGetConfigReply(QueueGetConfigReply {
            port: 1,
            queues: vec![PacketQueue {
                queue_id: 0,
                port: 1,
                properties: vec![QueueProp::MinRate(100), QueueProp::MaxRate(1000)],
            }],
        }),
        Message::RoleRequest(Role {
            role: ControllerRole::Master,
            generation_id: 1,
        }),
        Message::RoleReply(Role {
            role: ControllerRole::Slave,
            generation_id: 2,
        }),
        Message::GetAsyncRequest,
        Message::GetAsyncReply(AsyncConfig {
            packet_in_mask: [0x3, 0x1],
            port_status_mask: [0x7, 0x7],
            flow_removed_mask: [0xf, 0x0],
        }),
        Message::SetAsync(AsyncConfig::default()),
        Message::MeterMod(MeterMod {
            command: MeterModCommand::Add,
            flags: OFPMF_KBPS,
            meter_id: 1,
            bands: vec![drop_band],
        }),
        Message::MeterMod(MeterMod {
            command: MeterModCommand::Delete,
            flags: 0,
            meter_id: 7,
            bands: vec![],
        }),
    ]
}

/// Every message type, and every multipart body, prints as OVS prints it (modulo line breaks).
#[test]
fn our_text_is_ovs_text_for_every_kind() {
    let all: Vec<OfMessage> = every_kind()
        .into_iter()
        .enumerate()
        .map(|(i, body)| OfMessage::new(i as u32 + 1, body))
        .collect();
    let mut kinds = std::collections::BTreeSet::new();
    for m in &all {
        let text = m.to_string();
        assert!(!text.contains('\n') && text.len() > 10, "{text:?}");
        kinds.insert(m.body.name());
    }
    assert_eq!(
        kinds.len(),
        30,
        "a hand-picked message of every OFPT type: {kinds:?}"
    );
    let checked: Vec<OfMessage> = all.into_iter().filter(|m| !ovs_rejects(&m.body)).collect();
    let (blocks, stderr) = ovs_decode(&checked);
    assert!(
        stderr.trim().is_empty(),
        "OVS warned while decoding:\n{stderr}"
    );
    let mut failures = Vec::new();
    for m in &checked {
        match blocks.get(&m.xid) {
            Some(block) if !block.contains("***") => {
                if let Err(e) = same_text(m, block) {
                    failures.push(format!("xid {} {}: {e}", m.xid, m.body.name()));
                }
            }
            other => failures.push(format!(
                "xid {}: OVS could not decode {:?}: {other:?}",
                m.xid, m.body
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        checked.len(),
        failures.join("\n")
    );
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
/// prints them (same tokens).
#[test]
fn ovs_prints_our_flow_stats() {
    let (_, stdout) = record(&["dump-flows", "SWITCH"], None);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("cookie=")).collect();
    let flows = switch_flows();
    assert_eq!(lines.len(), flows.len(), "dump-flows printed:\n{stdout}");
    for (line, flow) in lines.iter().zip(&flows) {
        let ours = flow.to_string();
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

/// The engine's MTU check: OVS reads our `check_pkt_larger` and the routed flow around it.
#[test]
fn ovs_reads_check_pkt_larger_and_write_actions() {
    let check = Action::nx_check_pkt_larger(1464, 0, 0);
    assert_eq!(check.as_nx_check_pkt_larger(), Some((1464, 0, 0)));
    let fm = FlowMod {
        table_id: 20,
        priority: 1007,
        instructions: vec![
            Instruction::ApplyActions(vec![check, Action::nx_check_pkt_larger(9000, 3, 17)]),
            Instruction::WriteActions(vec![
                Action::DecNwTtl,
                Action::Output {
                    port: 3,
                    max_len: 0,
                },
            ]),
            Instruction::GotoTable(21),
        ],
        ..FlowMod::default()
    };
    let (blocks, stderr) = ovs_decode(&[OfMessage::new(7, Message::FlowMod(fm))]);
    assert!(stderr.trim().is_empty(), "{stderr}");
    let text = ovs_body(&blocks[&7]);
    assert!(
        text.contains(
            "actions=check_pkt_larger(1464)->NXM_NX_REG0[0],check_pkt_larger(9000)->NXM_NX_REG3[17],write_actions(dec_ttl,output:3),goto_table:21"
        ),
        "{text}"
    );
}

/// The engine matches fragments with OVS's `nw_frag` (Nicira `NXM_NX_IP_FRAG`, kept as a raw
/// field by the codec): OVS must read our bytes as that field.
#[test]
fn ovs_reads_nw_frag_as_a_raw_nicira_field() {
    let fm = FlowMod {
        table_id: 20,
        priority: 5,
        match_: Match::from_iter([
            OxmField::EthType(0x0800),
            OxmField::Unknown {
                class: ofproto::oxm::OFPXMC_NXM_1,
                field: 26,
                hasmask: true,
                value: Bytes::from_static(&[3, 3]),
            },
        ]),
        ..FlowMod::default()
    };
    let (blocks, stderr) = ovs_decode(&[OfMessage::new(9, Message::FlowMod(fm))]);
    assert!(stderr.trim().is_empty(), "{stderr}");
    let text = ovs_body(&blocks[&9]);
    assert!(text.contains("ip,nw_frag=later"), "{text}");
}
