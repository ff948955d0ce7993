//! proptest strategies generating canonical values of every wire type, for the round-trip
//! property tests (`parse(emit(m)) == m`).

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::action::Action;
use crate::consts::NX_VENDOR_ID;
use crate::error::ErrorType;
use crate::instruction::Instruction;
use crate::msg::*;
use crate::multipart::*;
use crate::oxm::{Match, OxmField};

pub(crate) fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Bytes whose length is a multiple of 8 (experimenter action/instruction bodies).
fn bytes8(max_words: usize) -> impl Strategy<Value = Bytes> {
    (0..=max_words).prop_flat_map(|n| vec(any::<u8>(), n * 8).prop_map(Bytes::from))
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn name(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9_ .-]{{0,{max}}}")).expect("valid regex")
}

pub(crate) fn oxm() -> impl Strategy<Value = OxmField> {
    use OxmField::*;
    let mac = any::<[u8; 6]>;
    prop_oneof![
        any::<u32>().prop_map(InPort),
        any::<u32>().prop_map(InPhyPort),
        (any::<u64>(), any::<Option<u64>>()).prop_map(|(value, mask)| Metadata { value, mask }),
        (mac(), proptest::option::of(mac())).prop_map(|(value, mask)| EthDst { value, mask }),
        (mac(), proptest::option::of(mac())).prop_map(|(value, mask)| EthSrc { value, mask }),
        any::<u16>().prop_map(EthType),
        (any::<u16>(), any::<Option<u16>>()).prop_map(|(value, mask)| VlanVid { value, mask }),
        any::<u8>().prop_map(VlanPcp),
        any::<u8>().prop_map(IpDscp),
        any::<u8>().prop_map(IpEcn),
        any::<u8>().prop_map(IpProto),
        (ipv4(), proptest::option::of(ipv4())).prop_map(|(value, mask)| Ipv4Src { value, mask }),
        (ipv4(), proptest::option::of(ipv4())).prop_map(|(value, mask)| Ipv4Dst { value, mask }),
        any::<u16>().prop_map(TcpSrc),
        any::<u16>().prop_map(TcpDst),
        any::<u16>().prop_map(UdpSrc),
        any::<u16>().prop_map(UdpDst),
        any::<u16>().prop_map(SctpSrc),
        any::<u16>().prop_map(SctpDst),
        any::<u8>().prop_map(Icmpv4Type),
        any::<u8>().prop_map(Icmpv4Code),
        any::<u16>().prop_map(ArpOp),
        (ipv4(), proptest::option::of(ipv4())).prop_map(|(value, mask)| ArpSpa { value, mask }),
        (ipv4(), proptest::option::of(ipv4())).prop_map(|(value, mask)| ArpTpa { value, mask }),
        (mac(), proptest::option::of(mac())).prop_map(|(value, mask)| ArpSha { value, mask }),
        (mac(), proptest::option::of(mac())).prop_map(|(value, mask)| ArpTha { value, mask }),
        (ipv6(), proptest::option::of(ipv6())).prop_map(|(value, mask)| Ipv6Src { value, mask }),
        (ipv6(), proptest::option::of(ipv6())).prop_map(|(value, mask)| Ipv6Dst { value, mask }),
        (any::<u32>(), any::<Option<u32>>()).prop_map(|(value, mask)| Ipv6Flabel { value, mask }),
        any::<u8>().prop_map(Icmpv6Type),
        any::<u8>().prop_map(Icmpv6Code),
        ipv6().prop_map(Ipv6NdTarget),
        mac().prop_map(Ipv6NdSll),
        mac().prop_map(Ipv6NdTll),
        any::<u32>().prop_map(MplsLabel),
        any::<u8>().prop_map(MplsTc),
        any::<u8>().prop_map(MplsBos),
        (0u32..1 << 24, proptest::option::of(0u32..1 << 24))
            .prop_map(|(value, mask)| PbbIsid { value, mask }),
        (any::<u64>(), any::<Option<u64>>()).prop_map(|(value, mask)| TunnelId { value, mask }),
        (any::<u16>(), any::<Option<u16>>()).prop_map(|(value, mask)| Ipv6Exthdr { value, mask }),
        (ipv4(), proptest::option::of(ipv4())).prop_map(|(value, mask)| TunIpv4Src { value, mask }),
        (ipv4(), proptest::option::of(ipv4())).prop_map(|(value, mask)| TunIpv4Dst { value, mask }),
        (0u8..8, any::<u32>(), any::<Option<u32>>()).prop_map(|(idx, value, mask)| Reg {
            idx,
            value,
            mask
        }),
        (
            prop_oneof![Just(0u16), 2u16..0x8000, 0x8001u16..=0xffff],
            0u8..128,
            any::<bool>(),
            bytes(24)
        )
            .prop_map(|(class, field, hasmask, value)| Unknown {
                class,
                field,
                hasmask,
                value
            }),
    ]
}

/// A match as a switch accepts it: no typed field twice (unknown ones are not judged).
pub(crate) fn match_() -> impl Strategy<Value = Match> {
    vec(oxm(), 0..5).prop_map(|fields| {
        let mut seen = Vec::new();
        fields
            .into_iter()
            .filter(|f| {
                matches!(f, OxmField::Unknown { .. }) || {
                    let fresh = !seen.contains(&f.key());
                    seen.push(f.key());
                    fresh
                }
            })
            .collect()
    })
}

pub(crate) fn action() -> impl Strategy<Value = Action> {
    use Action::*;
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(port, max_len)| Output { port, max_len }),
        Just(CopyTtlOut),
        Just(CopyTtlIn),
        any::<u8>().prop_map(SetMplsTtl),
        Just(DecMplsTtl),
        any::<u16>().prop_map(PushVlan),
        Just(PopVlan),
        any::<u16>().prop_map(PushMpls),
        any::<u16>().prop_map(PopMpls),
        any::<u32>().prop_map(SetQueue),
        any::<u32>().prop_map(Group),
        any::<u8>().prop_map(SetNwTtl),
        Just(DecNwTtl),
        oxm().prop_map(SetField),
        any::<u16>().prop_map(PushPbb),
        Just(PopPbb),
        (any::<u16>(), proptest::option::of(0u8..255))
            .prop_map(|(in_port, table)| NxResubmit { in_port, table }),
        (
            any::<u32>().prop_filter("not NX", |e| *e != NX_VENDOR_ID),
            bytes8(3)
        )
            .prop_map(|(experimenter, data)| Experimenter { experimenter, data }),
        // A Nicira action we do not type (OVS `note:aabb`) stays opaque.
        Just(Experimenter {
            experimenter: NX_VENDOR_ID,
            data: Bytes::from_static(&[0, 8, 0xaa, 0xbb, 0, 0, 0, 0]),
        }),
    ]
}

pub(crate) fn actions() -> impl Strategy<Value = Vec<Action>> {
    vec(action(), 0..4)
}

pub(crate) fn instruction() -> impl Strategy<Value = Instruction> {
    use Instruction::*;
    prop_oneof![
        any::<u8>().prop_map(GotoTable),
        (any::<u64>(), any::<u64>()).prop_map(|(metadata, mask)| WriteMetadata { metadata, mask }),
        actions().prop_map(WriteActions),
        actions().prop_map(ApplyActions),
        Just(ClearActions),
        any::<u32>().prop_map(Meter),
        (any::<u32>(), bytes8(2))
            .prop_map(|(experimenter, data)| Experimenter { experimenter, data }),
    ]
}

pub(crate) fn instructions() -> impl Strategy<Value = Vec<Instruction>> {
    vec(instruction(), 0..4)
}

fn error_type() -> impl Strategy<Value = ErrorType> {
    prop_oneof![
        (0u16..14, any::<u16>()).prop_map(|(t, c)| ErrorType::from_type_code(t, c)),
        (any::<u16>(), any::<u32>()).prop_map(|(exp_type, experimenter)| {
            ErrorType::Experimenter {
                exp_type,
                experimenter,
            }
        }),
        (14u16..0xffff, any::<u16>()).prop_map(|(typ, code)| ErrorType::Unknown { typ, code }),
    ]
}

fn hello() -> impl Strategy<Value = Hello> {
    let elem = prop_oneof![
        vec(any::<u32>(), 0..3).prop_map(HelloElement::VersionBitmap),
        (
            any::<u16>().prop_filter("not bitmap", |t| *t != 1),
            bytes(12)
        )
            .prop_map(|(typ, data)| HelloElement::Unknown { typ, data }),
    ];
    vec(elem, 0..3).prop_map(|elements| Hello { elements })
}

fn port() -> impl Strategy<Value = Port> {
    (any::<u32>(), any::<[u8; 6]>(), name(16), any::<[u32; 8]>()).prop_map(
        |(port_no, hw_addr, name, v)| Port {
            port_no,
            hw_addr,
            name,
            config: v[0],
            state: v[1],
            curr: v[2],
            advertised: v[3],
            supported: v[4],
            peer: v[5],
            curr_speed: v[6],
            max_speed: v[7],
        },
    )
}

fn flow_mod() -> impl Strategy<Value = FlowMod> {
    (
        any::<(u64, u64, u8, u8, u16, u16, u16)>(),
        any::<(u32, u32, u32, u16)>(),
        match_(),
        instructions(),
    )
        .prop_map(|(a, b, match_, instructions)| FlowMod {
            cookie: a.0,
            cookie_mask: a.1,
            table_id: a.2,
            command: a.3.into(),
            idle_timeout: a.4,
            hard_timeout: a.5,
            priority: a.6,
            buffer_id: b.0,
            out_port: b.1,
            out_group: b.2,
            flags: b.3,
            match_,
            instructions,
        })
}

fn bucket() -> impl Strategy<Value = Bucket> {
    (any::<u16>(), any::<u32>(), any::<u32>(), actions()).prop_map(
        |(weight, watch_port, watch_group, actions)| Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        },
    )
}

fn meter_band() -> impl Strategy<Value = MeterBand> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(rate, burst_size)| MeterBand::Drop { rate, burst_size }),
        (any::<u32>(), any::<u32>(), any::<u8>()).prop_map(|(rate, burst_size, prec_level)| {
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            }
        }),
        (any::<u32>(), any::<u32>(), any::<u32>(), bytes(8)).prop_map(
            |(rate, burst_size, experimenter, data)| MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            }
        ),
    ]
}

fn flow_stats_request() -> impl Strategy<Value = FlowStatsRequest> {
    (any::<(u8, u32, u32, u64, u64)>(), match_()).prop_map(|(a, match_)| FlowStatsRequest {
        table_id: a.0,
        out_port: a.1,
        out_group: a.2,
        cookie: a.3,
        cookie_mask: a.4,
        match_,
    })
}

pub(crate) fn flow_stats() -> impl Strategy<Value = FlowStats> {
    (
        any::<(u8, u32, u32, u16, u16, u16, u16)>(),
        any::<(u64, u64, u64)>(),
        match_(),
        instructions(),
    )
        .prop_map(|(a, b, match_, instructions)| FlowStats {
            table_id: a.0,
            duration_sec: a.1,
            duration_nsec: a.2,
            priority: a.3,
            idle_timeout: a.4,
            hard_timeout: a.5,
            flags: a.6,
            cookie: b.0,
            packet_count: b.1,
            byte_count: b.2,
            match_,
            instructions,
        })
}

fn table_feature_prop() -> impl Strategy<Value = TableFeatureProp> {
    use TableFeatureProp as P;
    let fid = || {
        prop_oneof![
            any::<u16>().prop_map(|typ| FeatureId {
                typ,
                data: Bytes::new()
            }),
            any::<u32>().prop_map(|e| FeatureId {
                typ: 0xffff,
                data: Bytes::copy_from_slice(&e.to_be_bytes())
            }),
        ]
    };
    let oid = || {
        prop_oneof![
            (0u32..0xffff_0000).prop_map(|header| OxmId {
                header,
                experimenter: None
            }),
            (any::<u16>(), any::<u32>()).prop_map(|(low, e)| OxmId {
                header: 0xffff_0000 | u32::from(low),
                experimenter: Some(e)
            }),
        ]
    };
    prop_oneof![
        (any::<bool>(), vec(fid(), 0..4)).prop_map(|(miss, ids)| P::Instructions { miss, ids }),
        (any::<bool>(), vec(any::<u8>(), 0..6))
            .prop_map(|(miss, tables)| P::NextTables { miss, tables }),
        (any::<bool>(), vec(fid(), 0..4)).prop_map(|(miss, ids)| P::WriteActions { miss, ids }),
        (any::<bool>(), vec(fid(), 0..4)).prop_map(|(miss, ids)| P::ApplyActions { miss, ids }),
        vec(oid(), 0..4).prop_map(P::Match),
        vec(oid(), 0..4).prop_map(P::Wildcards),
        (any::<bool>(), vec(oid(), 0..4)).prop_map(|(miss, ids)| P::WriteSetfield { miss, ids }),
        (any::<bool>(), vec(oid(), 0..4)).prop_map(|(miss, ids)| P::ApplySetfield { miss, ids }),
        (any::<bool>(), any::<u32>(), any::<u32>(), bytes(8)).prop_map(
            |(miss, experimenter, exp_type, data)| P::Experimenter {
                miss,
                experimenter,
                exp_type,
                data
            }
        ),
        (
            prop_oneof![Just(9u16), Just(11u16), 16u16..0xfffe],
            bytes(8)
        )
            .prop_map(|(typ, data)| P::Unknown { typ, data }),
    ]
}

fn table_features() -> impl Strategy<Value = TableFeatures> {
    let prop = table_feature_prop();
    (
        any::<u8>(),
        name(32),
        any::<(u64, u64, u32, u32)>(),
        vec(prop, 0..3),
    )
        .prop_map(|(table_id, name, a, properties)| TableFeatures {
            table_id,
            name,
            metadata_match: a.0,
            metadata_write: a.1,
            config: a.2,
            max_entries: a.3,
            properties,
        })
}

fn mp_experimenter() -> impl Strategy<Value = MultipartExperimenter> {
    (any::<u32>(), any::<u32>(), bytes(16)).prop_map(|(experimenter, exp_type, data)| {
        MultipartExperimenter {
            experimenter,
            exp_type,
            data,
        }
    })
}

fn multipart_request() -> impl Strategy<Value = MultipartRequest> {
    use MultipartRequestBody as B;
    let body = prop_oneof![
        Just(B::Desc),
        flow_stats_request().prop_map(B::Flow),
        flow_stats_request().prop_map(B::Aggregate),
        Just(B::Table),
        any::<u32>().prop_map(|port_no| B::PortStats { port_no }),
        any::<(u32, u32)>().prop_map(|(port_no, queue_id)| B::Queue { port_no, queue_id }),
        any::<u32>().prop_map(|group_id| B::Group { group_id }),
        Just(B::GroupDesc),
        Just(B::GroupFeatures),
        any::<u32>().prop_map(|meter_id| B::Meter { meter_id }),
        any::<u32>().prop_map(|meter_id| B::MeterConfig { meter_id }),
        Just(B::MeterFeatures),
        vec(table_features(), 0..3).prop_map(B::TableFeatures),
        Just(B::PortDesc),
        mp_experimenter().prop_map(B::Experimenter),
    ];
    (any::<u16>(), body).prop_map(|(flags, body)| MultipartRequest { flags, body })
}

fn multipart_reply() -> impl Strategy<Value = MultipartReply> {
    use MultipartReplyBody as B;
    let desc = (name(255), name(255), name(255), name(31), name(255)).prop_map(|d| Desc {
        mfr_desc: d.0,
        hw_desc: d.1,
        sw_desc: d.2,
        serial_num: d.3,
        dp_desc: d.4,
    });
    let table = any::<(u8, u32, u64, u64)>().prop_map(|a| TableStats {
        table_id: a.0,
        active_count: a.1,
        lookup_count: a.2,
        matched_count: a.3,
    });
    let port_stats =
        (any::<u32>(), any::<[u64; 12]>(), any::<(u32, u32)>()).prop_map(|(p, c, d)| PortStats {
            port_no: p,
            rx_packets: c[0],
            tx_packets: c[1],
            rx_bytes: c[2],
            tx_bytes: c[3],
            rx_dropped: c[4],
            tx_dropped: c[5],
            rx_errors: c[6],
            tx_errors: c[7],
            rx_frame_err: c[8],
            rx_over_err: c[9],
            rx_crc_err: c[10],
            collisions: c[11],
            duration_sec: d.0,
            duration_nsec: d.1,
        });
    let queue = any::<(u32, u32, u64, u64, u64, u32, u32)>().prop_map(|a| QueueStats {
        port_no: a.0,
        queue_id: a.1,
        tx_bytes: a.2,
        tx_packets: a.3,
        tx_errors: a.4,
        duration_sec: a.5,
        duration_nsec: a.6,
    });
    let group = (
        any::<(u32, u32, u64, u64, u32, u32)>(),
        vec(any::<(u64, u64)>(), 0..3),
    )
        .prop_map(|(a, b)| GroupStats {
            group_id: a.0,
            ref_count: a.1,
            packet_count: a.2,
            byte_count: a.3,
            duration_sec: a.4,
            duration_nsec: a.5,
            bucket_stats: b
                .into_iter()
                .map(|(packet_count, byte_count)| BucketCounter {
                    packet_count,
                    byte_count,
                })
                .collect(),
        });
    let group_desc =
        (any::<u8>(), any::<u32>(), vec(bucket(), 0..3)).prop_map(|(t, id, b)| GroupDesc {
            group_type: t.into(),
            group_id: id,
            buckets: b,
        });
    let group_features = (any::<(u32, u32)>(), any::<[u32; 4]>(), any::<[u32; 4]>()).prop_map(
        |(a, max_groups, actions)| GroupFeatures {
            types: a.0,
            capabilities: a.1,
            max_groups,
            actions,
        },
    );
    let meter = (
        any::<(u32, u32, u64, u64, u32, u32)>(),
        vec(any::<(u64, u64)>(), 0..3),
    )
        .prop_map(|(a, b)| MeterStats {
            meter_id: a.0,
            flow_count: a.1,
            packet_in_count: a.2,
            byte_in_count: a.3,
            duration_sec: a.4,
            duration_nsec: a.5,
            band_stats: b
                .into_iter()
                .map(|(p, b)| MeterBandStats {
                    packet_band_count: p,
                    byte_band_count: b,
                })
                .collect(),
        });
    let meter_config = (any::<u16>(), any::<u32>(), vec(meter_band(), 0..3)).prop_map(
        |(flags, meter_id, bands)| MeterConfig {
            flags,
            meter_id,
            bands,
        },
    );
    let meter_features = any::<(u32, u32, u32, u8, u8)>().prop_map(|a| MeterFeatures {
        max_meter: a.0,
        band_types: a.1,
        capabilities: a.2,
        max_bands: a.3,
        max_color: a.4,
    });
    let aggregate = any::<(u64, u64, u32)>().prop_map(|a| AggregateStats {
        packet_count: a.0,
        byte_count: a.1,
        flow_count: a.2,
    });
    let body = prop_oneof![
        desc.prop_map(B::Desc),
        vec(flow_stats(), 0..3).prop_map(B::Flow),
        aggregate.prop_map(B::Aggregate),
        vec(table, 0..3).prop_map(B::Table),
        vec(port_stats, 0..3).prop_map(B::PortStats),
        vec(queue, 0..3).prop_map(B::Queue),
        vec(group, 0..3).prop_map(B::Group),
        vec(group_desc, 0..3).prop_map(B::GroupDesc),
        group_features.prop_map(B::GroupFeatures),
        vec(meter, 0..3).prop_map(B::Meter),
        vec(meter_config, 0..3).prop_map(B::MeterConfig),
        meter_features.prop_map(B::MeterFeatures),
        vec(table_features(), 0..3).prop_map(B::TableFeatures),
        vec(port(), 0..3).prop_map(B::PortDesc),
        mp_experimenter().prop_map(B::Experimenter),
    ];
    (any::<u16>(), body).prop_map(|(flags, body)| MultipartReply { flags, body })
}

fn queue_reply() -> impl Strategy<Value = QueueGetConfigReply> {
    let prop = prop_oneof![
        any::<u16>().prop_map(QueueProp::MinRate),
        any::<u16>().prop_map(QueueProp::MaxRate),
        (any::<u32>(), bytes(8))
            .prop_map(|(experimenter, data)| QueueProp::Experimenter { experimenter, data }),
        (3u16..0xffff, bytes(8)).prop_map(|(typ, data)| QueueProp::Unknown { typ, data }),
    ];
    let queue =
        (any::<u32>(), any::<u32>(), vec(prop, 0..3)).prop_map(|(queue_id, port, properties)| {
            PacketQueue {
                queue_id,
                port,
                properties,
            }
        });
    (any::<u32>(), vec(queue, 0..3)).prop_map(|(port, queues)| QueueGetConfigReply { port, queues })
}

fn async_config() -> impl Strategy<Value = AsyncConfig> {
    any::<[u32; 6]>().prop_map(|a| AsyncConfig {
        packet_in_mask: [a[0], a[1]],
        port_status_mask: [a[2], a[3]],
        flow_removed_mask: [a[4], a[5]],
    })
}

fn role() -> impl Strategy<Value = Role> {
    (any::<u32>(), any::<u64>()).prop_map(|(r, generation_id)| Role {
        role: r.into(),
        generation_id,
    })
}

/// Every message type.
pub(crate) fn message() -> impl Strategy<Value = Message> {
    use Message as M;
    let config = any::<(u16, u16)>().prop_map(|(flags, miss_send_len)| SwitchConfig {
        flags,
        miss_send_len,
    });
    prop_oneof![
        hello().prop_map(M::Hello),
        (error_type(), bytes(64)).prop_map(|(kind, data)| M::Error(ErrorMsg { kind, data })),
        bytes(32).prop_map(M::EchoRequest),
        bytes(32).prop_map(M::EchoReply),
        (any::<u32>(), any::<u32>(), bytes(32)).prop_map(|(experimenter, exp_type, data)| {
            M::Experimenter(Experimenter {
                experimenter,
                exp_type,
                data,
            })
        }),
        Just(M::FeaturesRequest),
        any::<(u64, u32, u8, u8, u32)>().prop_map(|a| M::FeaturesReply(FeaturesReply {
            datapath_id: a.0,
            n_buffers: a.1,
            n_tables: a.2,
            auxiliary_id: a.3,
            capabilities: a.4,
        })),
        Just(M::GetConfigRequest),
        config.clone().prop_map(M::GetConfigReply),
        config.prop_map(M::SetConfig),
        (any::<(u32, u16, u8, u8, u64)>(), match_(), bytes(80)).prop_map(|(a, match_, data)| {
            M::PacketIn(PacketIn {
                buffer_id: a.0,
                total_len: a.1,
                reason: a.2.into(),
                table_id: a.3,
                cookie: a.4,
                match_,
                data,
            })
        }),
        (
            any::<(u64, u16, u8, u8, u32, u32)>(),
            any::<(u16, u16, u64, u64)>(),
            match_()
        )
            .prop_map(|(a, b, match_)| M::FlowRemoved(FlowRemoved {
                cookie: a.0,
                priority: a.1,
                reason: a.2.into(),
                table_id: a.3,
                duration_sec: a.4,
                duration_nsec: a.5,
                idle_timeout: b.0,
                hard_timeout: b.1,
                packet_count: b.2,
                byte_count: b.3,
                match_,
            })),
        (any::<u8>(), port()).prop_map(|(r, desc)| M::PortStatus(PortStatus {
            reason: r.into(),
            desc
        })),
        (any::<u32>(), any::<u32>(), actions(), bytes(80)).prop_map(
            |(buffer_id, in_port, actions, data)| M::PacketOut(PacketOut {
                buffer_id,
                in_port,
                actions,
                data,
            })
        ),
        flow_mod().prop_map(M::FlowMod),
        (any::<u16>(), any::<u8>(), any::<u32>(), vec(bucket(), 0..3)).prop_map(
            |(c, t, group_id, buckets)| M::GroupMod(GroupMod {
                command: c.into(),
                group_type: t.into(),
                group_id,
                buckets,
            })
        ),
        (any::<u32>(), any::<[u8; 6]>(), any::<(u32, u32, u32)>()).prop_map(|(p, hw, a)| {
            M::PortMod(PortMod {
                port_no: p,
                hw_addr: hw,
                config: a.0,
                mask: a.1,
                advertise: a.2,
            })
        }),
        (any::<u8>(), any::<u32>())
            .prop_map(|(table_id, config)| M::TableMod(TableMod { table_id, config })),
        multipart_request().prop_map(M::MultipartRequest),
        multipart_reply().prop_map(M::MultipartReply),
        Just(M::BarrierRequest),
        Just(M::BarrierReply),
        any::<u32>().prop_map(|port| M::QueueGetConfigRequest(QueueGetConfigRequest { port })),
        queue_reply().prop_map(M::QueueGetConfigReply),
        role().prop_map(M::RoleRequest),
        role().prop_map(M::RoleReply),
        Just(M::GetAsyncRequest),
        async_config().prop_map(M::GetAsyncReply),
        async_config().prop_map(M::SetAsync),
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            vec(meter_band(), 0..3)
        )
            .prop_map(|(c, flags, meter_id, bands)| M::MeterMod(MeterMod {
                command: c.into(),
                flags,
                meter_id,
                bands,
            })),
    ]
}

/// A whole message; HELLO may carry any version, everything else is OpenFlow 1.3.
pub(crate) fn of_message() -> impl Strategy<Value = OfMessage> {
    (any::<u32>(), message(), any::<u8>()).prop_map(|(xid, body, v)| {
        let version = if matches!(body, Message::Hello(_)) {
            v
        } else {
            crate::OFP_VERSION
        };
        OfMessage { version, xid, body }
    })
}
