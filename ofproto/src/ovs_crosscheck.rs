//! Cross-check with Open vSwitch itself: messages we emit, generated broadly, are decoded by
//! `ovs-ofctl ofp-print` without error, and for FLOW_MODs OVS prints exactly our `Display`
//! text (so every field reached OVS with the value we meant).

use std::net::Ipv4Addr;
use std::process::Command;

use proptest::prelude::*;

use crate::action::Action;
use crate::arb;
use crate::instruction::Instruction;
use crate::msg::*;
use crate::multipart::*;
use crate::oxm::{Match, OxmField};
use crate::{consts, port_no};

/// `ovs-ofctl ofp-print HEX`; fails the test loudly when OVS is not installed.
fn ofp_print(m: &OfMessage) -> String {
    let hex = hex::encode(m.to_bytes());
    let out = Command::new("ovs-ofctl")
        .args(["ofp-print", &hex])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run ovs-ofctl ({e}): install openvswitch-switch (apt-get install openvswitch-switch)")
        });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ovs-ofctl failed on {hex}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("***"), "OVS could not decode {hex}:\n{text}");
    text
}

fn masked<T: Copy + PartialEq>(
    value: T,
    mask: T,
    and: impl Fn(T, T) -> T,
    exact: bool,
    zero: T,
    ones: T,
) -> (T, Option<T>) {
    // OVS folds value & mask, prints an all-ones mask as exact and drops a zero mask, so we
    // only generate masks it will show back to us unchanged.
    if exact || mask == zero || mask == ones {
        (value, None)
    } else {
        (and(value, mask), Some(mask))
    }
}

fn cidr() -> impl Strategy<Value = (Ipv4Addr, Option<Ipv4Addr>)> {
    (any::<u32>(), 1u32..32, any::<bool>()).prop_map(|(v, bits, exact)| {
        let mask = u32::MAX << (32 - bits);
        let (v, m) = masked(v, mask, |a, b| a & b, exact, 0, u32::MAX);
        (Ipv4Addr::from(v), m.map(Ipv4Addr::from))
    })
}

fn mac() -> impl Strategy<Value = ([u8; 6], Option<[u8; 6]>)> {
    (any::<[u8; 6]>(), any::<[u8; 6]>(), any::<bool>()).prop_map(|(v, m, exact)| {
        let and = |a: [u8; 6], b: [u8; 6]| std::array::from_fn(|i| a[i] & b[i]);
        masked(v, m, and, exact, [0; 6], [0xff; 6])
    })
}

/// Matches OVS accepts: prerequisites met, one field of each kind.
fn ovs_match() -> impl Strategy<Value = Match> {
    let proto = prop_oneof![
        Just(None),
        Just(Some((0x0800u16, None))),
        Just(Some((0x0800, Some(6u8)))),
        Just(Some((0x0800, Some(17)))),
        Just(Some((0x0800, Some(1)))),
        Just(Some((0x0806, None))),
        Just(Some((0x86dd, None))),
        Just(Some((0x86dd, Some(6)))),
        Just(Some((0x86dd, Some(58)))),
        Just(Some((0x8847, None))),
    ];
    (
        proto,
        proptest::option::of(1u32..0xff00),
        proptest::option::of((0u8..8, any::<u32>(), any::<u32>(), any::<bool>())),
        proptest::option::of(any::<u64>()),
        proptest::option::of(cidr()),
        proptest::option::of((mac(), any::<bool>())),
        proptest::option::of((1u16..4095, proptest::option::of(0u8..8))),
        (
            cidr(),
            cidr(),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            mac(),
        ),
    )
        .prop_map(|(proto, in_port, reg, tun_id, tun_src, eth, vlan, l3)| {
            let mut m = Match::new();
            if let Some(p) = in_port {
                m.fields.push(OxmField::InPort(p));
            }
            if let Some((idx, v, mask, exact)) = reg {
                let (value, mask) = masked(v, mask, |a, b| a & b, exact, 0, u32::MAX);
                m.fields.push(OxmField::Reg { idx, value, mask });
            }
            if let Some(t) = tun_id {
                m.fields.push(OxmField::TunnelId {
                    value: t,
                    mask: None,
                });
            }
            if let Some((value, mask)) = tun_src {
                m.fields.push(OxmField::TunIpv4Src { value, mask });
            }
            if let Some(((value, mask), dst)) = eth {
                m.fields.push(if dst {
                    OxmField::EthDst { value, mask }
                } else {
                    OxmField::EthSrc { value, mask }
                });
            }
            if let Some((vid, pcp)) = vlan {
                m.fields.push(OxmField::VlanVid {
                    value: consts::OFPVID_PRESENT | vid,
                    mask: None,
                });
                if let Some(p) = pcp {
                    m.fields.push(OxmField::VlanPcp(p));
                }
            }
            let (src, dst, sport, dport, ty, code, (sha, _)) = l3;
            if let Some((eth_type, ip_proto)) = proto {
                m.fields.push(OxmField::EthType(eth_type));
                match eth_type {
                    0x0800 => {
                        m.fields.push(OxmField::Ipv4Src {
                            value: src.0,
                            mask: src.1,
                        });
                        m.fields.push(OxmField::Ipv4Dst {
                            value: dst.0,
                            mask: dst.1,
                        });
                    }
                    0x0806 => {
                        m.fields.push(OxmField::ArpOp(sport % 3));
                        m.fields.push(OxmField::ArpTpa {
                            value: dst.0,
                            mask: dst.1,
                        });
                        m.fields.push(OxmField::ArpSha {
                            value: sha,
                            mask: None,
                        });
                    }
                    0x86dd => m.fields.push(OxmField::Ipv6Dst {
                        value: std::net::Ipv6Addr::from(u128::from(u32::from(dst.0))),
                        mask: None,
                    }),
                    _ => m
                        .fields
                        .push(OxmField::MplsLabel(u32::from(sport) & 0xfffff)),
                }
                if let Some(p) = ip_proto {
                    m.fields.push(OxmField::IpProto(p));
                    match (eth_type, p) {
                        (_, 6) => m.fields.push(OxmField::TcpDst(dport)),
                        (_, 17) => m.fields.push(OxmField::UdpSrc(sport)),
                        (0x0800, 1) => {
                            m.fields.push(OxmField::Icmpv4Type(ty));
                            m.fields.push(OxmField::Icmpv4Code(code));
                        }
                        _ => m.fields.push(OxmField::Icmpv6Type(ty)),
                    }
                }
            }
            m
        })
}

fn ovs_action(is_ipv4: bool) -> impl Strategy<Value = Action> {
    let reserved = prop_oneof![
        Just(port_no::IN_PORT),
        Just(port_no::NORMAL),
        Just(port_no::FLOOD),
        Just(port_no::ALL),
        Just(port_no::LOCAL),
        Just(port_no::CONTROLLER),
    ];
    prop_oneof![
        (1u32..0xff00).prop_map(|port| Action::Output { port, max_len: 0 }),
        (reserved, any::<u16>()).prop_map(|(port, l)| Action::Output {
            port,
            max_len: if port == port_no::CONTROLLER { l } else { 0 },
        }),
        (0u32..1000).prop_map(Action::Group),
        (0u32..1000).prop_map(Action::SetQueue),
        // push/pop_vlan are left out: OVS checks tag depth against the match, which a random
        // action list would violate; the captured-bytes tests cover their encoding.
        // dec_ttl needs an IP match; elsewhere it becomes a plain output.
        Just(if is_ipv4 {
            Action::DecNwTtl
        } else {
            Action::Output {
                port: 7,
                max_len: 0,
            }
        }),
        any::<[u8; 6]>().prop_map(|value| Action::SetField(OxmField::EthDst { value, mask: None })),
        any::<[u8; 6]>().prop_map(|value| Action::SetField(OxmField::EthSrc { value, mask: None })),
        (0u8..8, any::<u32>()).prop_map(|(idx, value)| {
            Action::SetField(OxmField::Reg {
                idx,
                value,
                mask: None,
            })
        }),
        any::<u64>().prop_map(|value| Action::SetField(OxmField::TunnelId { value, mask: None })),
        // ip_src needs an IPv4 match (OVS checks set-field prerequisites).
        any::<u32>().prop_map(move |v| Action::SetField(if is_ipv4 {
            OxmField::Ipv4Src {
                value: v.into(),
                mask: None,
            }
        } else {
            OxmField::Reg {
                idx: 1,
                value: v,
                mask: None,
            }
        })),
        (1u16..0xff00, proptest::option::of(0u8..255))
            .prop_map(|(in_port, table)| Action::NxResubmit { in_port, table }),
        (0u8..255).prop_map(|t| Action::NxResubmit {
            in_port: 0xfff8,
            table: Some(t)
        }),
    ]
}

/// Instructions in the order OVS prints them: meter, apply, clear, write, metadata, goto.
fn ovs_instructions(is_ipv4: bool) -> impl Strategy<Value = Vec<Instruction>> {
    (
        proptest::option::of(1u32..100),
        proptest::collection::vec(ovs_action(is_ipv4), 1..4),
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(ovs_action(is_ipv4), 1..3)),
        proptest::option::of((any::<u64>(), any::<u64>())),
        proptest::option::of(1u8..254),
    )
        .prop_map(|(meter, apply, clear, write, md, goto)| {
            let mut v = Vec::new();
            v.extend(meter.map(Instruction::Meter));
            v.push(Instruction::ApplyActions(apply));
            if clear {
                v.push(Instruction::ClearActions);
            }
            v.extend(write.map(Instruction::WriteActions));
            v.extend(md.filter(|(_, m)| *m != 0).map(|(metadata, mask)| {
                Instruction::WriteMetadata {
                    metadata: metadata & mask,
                    mask,
                }
            }));
            // goto_table must point forward; table_id is 0 for these flows.
            v.extend(goto.map(Instruction::GotoTable));
            v
        })
}

fn ovs_flow_mod() -> impl Strategy<Value = FlowMod> {
    ovs_match()
        .prop_flat_map(|m| {
            let is_ipv4 = m.eth_type() == Some(0x0800);
            (
                Just(m),
                ovs_instructions(is_ipv4),
                any::<(u16, u64, u16, u16, u8, bool)>(),
                prop_oneof![Just(port_no::ANY), 1u32..100],
                prop_oneof![Just(consts::OFPG_ANY), 1u32..100],
                0u8..5,
            )
        })
        .prop_map(
            |(
                match_,
                instructions,
                (priority, cookie, idle, hard, flags, strict),
                out_port,
                out_group,
                cmd,
            )| {
                let command = FlowModCommand::from(cmd);
                let deleting = matches!(
                    command,
                    FlowModCommand::Delete | FlowModCommand::DeleteStrict
                );
                FlowMod {
                    cookie,
                    // OVS only shows a cookie mask on modify/delete, where it is meaningful.
                    cookie_mask: if deleting && strict { u64::MAX } else { 0 },
                    table_id: 0,
                    command,
                    idle_timeout: idle,
                    hard_timeout: hard,
                    priority,
                    buffer_id: crate::OFP_NO_BUFFER,
                    out_port: if deleting { out_port } else { port_no::ANY },
                    out_group: if deleting {
                        out_group
                    } else {
                        consts::OFPG_ANY
                    },
                    flags: u16::from(flags) & 0x1f,
                    match_,
                    instructions: if deleting { Vec::new() } else { instructions },
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// OVS decodes our FLOW_MODs to exactly the flow we describe.
    #[test]
    fn ovs_reads_our_flow_mods_as_we_print_them(fm in ovs_flow_mod()) {
        prop_assert_eq!(fm.match_.validate_prerequisites(), Ok(()));
        let m = OfMessage::new(7, Message::FlowMod(fm.clone()));
        let text = ofp_print(&m);
        let ovs = text.trim_end().split_once("(xid=0x7): ").map(|(_, t)| t).unwrap_or(&text);
        prop_assert_eq!(ovs, fm.to_string());
    }

    /// GROUP_MOD, METER_MOD, PACKET_OUT, multipart requests: OVS decodes them without error.
    #[test]
    fn ovs_decodes_our_other_requests(
        msg in prop_oneof![
            (0u16..3, 0u8..4, 1u32..1000, proptest::collection::vec(
                (1u16..100, 1u32..0xff00, proptest::collection::vec(ovs_action(false), 1..3)), 1..4))
                .prop_map(|(c, t, group_id, buckets)| {
                    let group_type = GroupType::from(t);
                    Message::GroupMod(GroupMod {
                        command: c.into(),
                        group_type,
                        group_id,
                        buckets: if c == 2 { vec![] } else { buckets.into_iter().map(|(w, p, actions)| Bucket {
                            weight: if group_type == GroupType::Select { w } else { 0 },
                            watch_port: if group_type == GroupType::FastFailover { p } else { port_no::ANY },
                            watch_group: consts::OFPG_ANY,
                            actions: if group_type == GroupType::Indirect { actions[..1].to_vec() } else { actions },
                        }).take(if group_type == GroupType::Indirect { 1 } else { 4 }).collect() },
                    })
                }),
            (0u16..3, 1u32..1000, 1u32..100_000, 0u32..1000, any::<bool>())
                .prop_map(|(c, meter_id, rate, burst, dscp)| Message::MeterMod(MeterMod {
                    command: c.into(),
                    flags: meter::OFPMF_KBPS | if burst > 0 { meter::OFPMF_BURST } else { 0 },
                    meter_id,
                    bands: if c == 2 { vec![] } else if dscp {
                        vec![MeterBand::DscpRemark { rate, burst_size: burst, prec_level: 1 }]
                    } else {
                        vec![MeterBand::Drop { rate, burst_size: burst }]
                    },
                })),
            (1u32..0xff00, proptest::collection::vec(ovs_action(false), 0..4), arb::bytes(128))
                .prop_map(|(in_port, actions, data)| Message::PacketOut(PacketOut {
                    buffer_id: crate::OFP_NO_BUFFER, in_port, actions, data,
                })),
            prop_oneof![
                Just(MultipartRequestBody::Desc),
                ovs_match().prop_map(|match_| MultipartRequestBody::Flow(FlowStatsRequest { match_, ..Default::default() })),
                ovs_match().prop_map(|match_| MultipartRequestBody::Aggregate(FlowStatsRequest { match_, ..Default::default() })),
                Just(MultipartRequestBody::Table),
                (1u32..100).prop_map(|port_no| MultipartRequestBody::PortStats { port_no }),
                (1u32..100, 0u32..8).prop_map(|(port_no, queue_id)| MultipartRequestBody::Queue { port_no, queue_id }),
                (1u32..100).prop_map(|group_id| MultipartRequestBody::Group { group_id }),
                Just(MultipartRequestBody::GroupDesc),
                Just(MultipartRequestBody::GroupFeatures),
                (1u32..100).prop_map(|meter_id| MultipartRequestBody::Meter { meter_id }),
                (1u32..100).prop_map(|meter_id| MultipartRequestBody::MeterConfig { meter_id }),
                Just(MultipartRequestBody::MeterFeatures),
                Just(MultipartRequestBody::TableFeatures(vec![])),
                Just(MultipartRequestBody::PortDesc),
            ].prop_map(|body| Message::MultipartRequest(MultipartRequest::new(body))),
        ]
    ) {
        let name = msg.name();
        let text = ofp_print(&OfMessage::new(9, msg));
        prop_assert!(text.contains("(OF1.3) (xid=0x9)"), "{} -> {}", name, text);
    }
}
