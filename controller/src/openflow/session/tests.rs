//! In-memory tests of the session state machine: a scripted switch, a fake clock, no socket.

use super::*;
use crate::openflow::test_util::{features, port};
use bytes::Bytes;
use ofproto::consts::OFPMPF_REPLY_MORE;
use ofproto::{
    FlowMod, FlowStats, FlowStatsRequest, HelloElement, Match, MultipartReplyBody,
    MultipartRequestBody, OxmField, PacketInReason,
};

const DPID: u64 = 0x0000_0000_0000_00aa;

fn t0() -> Instant {
    Instant::now()
}

fn drain(s: &mut Session) -> Vec<OfMessage> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn of(xid: u32, body: Message) -> OfMessage {
    OfMessage::new(xid, body)
}

fn port_desc_part(ports: Vec<Port>, more: bool) -> Message {
    Message::MultipartReply(MultipartReply {
        flags: if more { OFPMPF_REPLY_MORE } else { 0 },
        body: MultipartReplyBody::PortDesc(ports),
    })
}

/// Runs the handshake as a well-behaved switch would, checking each controller message.
fn handshake(now: Instant, config: Config) -> Session {
    let mut s = Session::new(now, config);
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, Message::Hello(Hello::of13()));
    assert!(s.ready(now).is_none(), "no send side before the handshake");
    assert_eq!(s.datapath_id(), None);

    s.handle_message(now, of(100, Message::Hello(Hello::of13())));
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, Message::FeaturesRequest);
    let features_xid = out[0].xid;

    s.handle_message(
        now,
        of(features_xid, Message::FeaturesReply(features(DPID))),
    );
    let out = drain(&mut s);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].body,
        Message::SetConfig(SwitchConfig {
            flags: 0,
            miss_send_len: OFPCML_NO_BUFFER
        })
    );
    let Message::MultipartRequest(req) = &out[1].body else {
        panic!("expected PORT_DESC request, got {:?}", out[1])
    };
    assert_eq!(req.body, MultipartRequestBody::PortDesc);
    let pd_xid = out[1].xid;
    assert_eq!(s.datapath_id(), None, "no dpid before PORT_DESC");

    // Two parts: reassembled across MORE.
    s.handle_message(now, of(pd_xid, port_desc_part(vec![port(1)], true)));
    assert!(events(&mut s).is_empty());
    s.handle_message(now, of(pd_xid, port_desc_part(vec![port(2)], false)));
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Ready {
            features: features(DPID),
            ports: vec![port(1), port(2)]
        }]
    );
    assert_eq!(s.datapath_id(), Some(DPID));
    s
}

#[test]
fn handshake_reaches_ready_with_dpid_and_ports() {
    let now = t0();
    let mut s = handshake(now, Config::default());
    let ready = s.ready(now).expect("ready after the handshake");
    assert_eq!(ready.datapath_id(), DPID);
    assert_eq!(ready.ports().map(|p| p.port_no).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn hello_from_newer_switch_with_bitmap_is_accepted() {
    let now = t0();
    let mut s = Session::new(now, Config::default());
    drain(&mut s);
    let hello = Hello {
        elements: vec![HelloElement::VersionBitmap(vec![
            (1 << 1) | (1 << 4) | (1 << 6),
        ])],
    };
    s.handle_message(
        now,
        OfMessage {
            version: 0x06,
            xid: 1,
            body: Message::Hello(hello),
        },
    );
    assert!(!s.is_closed());
    assert_eq!(drain(&mut s)[0].body, Message::FeaturesRequest);
}

#[test]
fn other_versions_get_hello_failed_and_close() {
    for (version, elements) in [
        (0x01, vec![]),
        (0x06, vec![HelloElement::VersionBitmap(vec![1 << 6])]),
    ] {
        let now = t0();
        let mut s = Session::new(now, Config::default());
        drain(&mut s);
        s.handle_message(
            now,
            OfMessage {
                version,
                xid: 7,
                body: Message::Hello(Hello { elements }),
            },
        );
        assert_eq!(
            s.close_reason(),
            Some(&CloseReason::Incompatible { version })
        );
        let out = drain(&mut s);
        assert_eq!(out.len(), 1, "exactly the refusal is written: {out:?}");
        let Message::Error(e) = &out[0].body else {
            panic!("expected ERROR, got {:?}", out[0])
        };
        assert_eq!(e.kind, hello_failed());
        assert_eq!(out[0].xid, 7);
        assert_eq!(s.poll_timeout(), None);
    }
}

#[test]
fn non_hello_first_is_a_protocol_violation() {
    let now = t0();
    let mut s = Session::new(now, Config::default());
    drain(&mut s);
    s.handle_message(now, of(1, Message::FeaturesRequest));
    assert_eq!(
        s.close_reason(),
        Some(&CloseReason::Protocol(PeerMisbehaved::ExpectedHello {
            got: "FEATURES_REQUEST"
        }))
    );
}

#[test]
fn echo_requests_are_answered_in_every_state() {
    let now = t0();
    let mut s = Session::new(now, Config::default());
    drain(&mut s);
    let data = Bytes::from_static(b"ping");
    s.handle_message(now, of(42, Message::EchoRequest(data.clone())));
    assert_eq!(
        drain(&mut s),
        vec![of(42, Message::EchoReply(data.clone()))]
    );
    let mut s = handshake(now, Config::default());
    drain(&mut s);
    s.handle_message(now, of(43, Message::EchoRequest(data.clone())));
    assert_eq!(drain(&mut s), vec![of(43, Message::EchoReply(data))]);
}

#[test]
fn echo_keepalive_and_dead_peer_with_a_fake_clock() {
    let config = Config::default();
    let t = t0();
    let mut s = handshake(t, config.clone());
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(t + config.echo_interval));

    // Idle for the echo interval: we probe.
    let t1 = t + config.echo_interval;
    s.handle_timeout(t1);
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert!(matches!(out[0].body, Message::EchoRequest(_)));
    assert_eq!(s.poll_timeout(), Some(t + config.dead_after));

    // The switch answers: alive again, next probe one interval later.
    let t2 = t1 + Duration::from_millis(3);
    s.handle_message(t2, of(out[0].xid, Message::EchoReply(Bytes::new())));
    assert!(events(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), Some(t2 + config.echo_interval));

    // A pending request, then silence: dead peer; the request fails with the reason.
    let xid = s.ready(t2).expect("ready").request(Message::BarrierRequest);
    let t3 = t2 + config.echo_interval;
    s.handle_timeout(t3);
    assert_eq!(drain(&mut s).len(), 2, "barrier and one echo probe");
    s.handle_timeout(t3 + Duration::from_secs(1));
    assert!(drain(&mut s).is_empty(), "one probe at a time");
    let t4 = t2 + config.dead_after;
    s.handle_timeout(t4);
    let reason = CloseReason::DeadPeer(config.dead_after);
    assert_eq!(s.close_reason(), Some(&reason));
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Response {
            xid,
            result: Err(RequestError::Closed(reason))
        }]
    );
    assert!(s.ready(t4).is_none());
}

#[test]
fn handshake_must_finish_in_time() {
    let config = Config::default();
    let t = t0();
    let mut s = Session::new(t, config.clone());
    s.handle_message(t, of(1, Message::Hello(Hello::of13())));
    // The switch keeps answering echoes but never sends FEATURES_REPLY.
    let mut now = t;
    while now < t + config.handshake_timeout {
        now += Duration::from_secs(1);
        s.handle_message(now, of(9, Message::EchoRequest(Bytes::new())));
        s.handle_timeout(now);
    }
    assert_eq!(
        s.close_reason(),
        Some(&CloseReason::HandshakeTimeout(config.handshake_timeout))
    );
}

fn flow_stats(priority: u16) -> FlowStats {
    FlowStats {
        table_id: 0,
        duration_sec: 1,
        duration_nsec: 2,
        priority,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: 0,
        packet_count: 3,
        byte_count: 4,
        match_: Match::new().with(OxmField::InPort(1)),
        instructions: vec![],
    }
}

fn flow_stats_request() -> Message {
    Message::MultipartRequest(MultipartRequest {
        flags: 0,
        body: MultipartRequestBody::Flow(FlowStatsRequest {
            table_id: ofproto::consts::OFPTT_ALL,
            out_port: ofproto::port_no::ANY,
            out_group: ofproto::consts::OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            match_: Match::new(),
        }),
    })
}

fn flow_part(priority: u16, more: bool) -> Message {
    Message::MultipartReply(MultipartReply {
        flags: if more { OFPMPF_REPLY_MORE } else { 0 },
        body: MultipartReplyBody::Flow(vec![flow_stats(priority)]),
    })
}

#[test]
fn multipart_reply_is_reassembled_across_more() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let xid = s.ready(t).expect("ready").request(flow_stats_request());
    assert_eq!(drain(&mut s).len(), 1);
    for prio in 1..=3 {
        s.handle_message(t, of(xid, flow_part(prio, true)));
        // Async messages may be interleaved between parts; they pass straight through.
        s.handle_message(
            t,
            of(
                0,
                Message::PacketIn(ofproto::PacketIn {
                    buffer_id: ofproto::OFP_NO_BUFFER,
                    total_len: 0,
                    reason: PacketInReason::NoMatch,
                    table_id: 0,
                    cookie: 0,
                    match_: Match::new(),
                    data: Bytes::new(),
                }),
            ),
        );
    }
    let evs = events(&mut s);
    assert_eq!(evs.len(), 3);
    assert!(evs.iter().all(|e| matches!(e, SessionEvent::PacketIn(_))));
    s.handle_message(t, of(xid, flow_part(4, false)));
    let evs = events(&mut s);
    let [SessionEvent::Response {
        xid: got,
        result: Ok(Reply::Multipart(parts)),
    }] = evs.as_slice()
    else {
        panic!("expected one multipart response, got {evs:?}")
    };
    assert_eq!(*got, xid);
    assert_eq!(
        parts
            .iter()
            .map(|p| p.flags & OFPMPF_REPLY_MORE)
            .collect::<Vec<_>>(),
        [1, 1, 1, 0]
    );
    assert_eq!(s.pending_requests(), 0);
}

#[test]
fn multipart_reply_too_large_fails_the_request() {
    let t = t0();
    let config = Config {
        max_multipart_parts: 2,
        ..Config::default()
    };
    let mut s = handshake(t, config);
    let xid = s.ready(t).expect("ready").request(flow_stats_request());
    events(&mut s);
    s.handle_message(t, of(xid, flow_part(1, true)));
    s.handle_message(t, of(xid, flow_part(2, true)));
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Response {
            xid,
            result: Err(RequestError::TooLarge)
        }]
    );
    // Further parts find nobody waiting and are dropped.
    s.handle_message(t, of(xid, flow_part(3, false)));
    assert!(events(&mut s).is_empty());
    assert!(!s.is_closed());
}

fn switch_error(data: &'static [u8]) -> Message {
    Message::Error(ErrorMsg {
        kind: ErrorType::FlowModFailed(ofproto::error::FlowModFailedCode::BadTableId),
        data: Bytes::from_static(data),
    })
}

#[test]
fn errors_go_to_the_request_that_caused_them() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let mut ready = s.ready(t).expect("ready");
    let bad = ready.request(Message::FlowMod(FlowMod {
        table_id: 200,
        ..FlowMod::default()
    }));
    let good = ready.request(Message::FlowMod(FlowMod::default()));
    let out = drain(&mut s);
    let kinds: Vec<_> = out.iter().map(|m| m.body.name()).collect();
    assert_eq!(
        kinds,
        ["FLOW_MOD", "BARRIER_REQUEST", "FLOW_MOD", "BARRIER_REQUEST"]
    );
    assert_eq!(out[0].xid, bad);
    assert_eq!(out[2].xid, good);
    // The switch fails the first flow-mod, then answers both barriers.
    s.handle_message(t, of(bad, switch_error(b"first")));
    s.handle_message(t, of(out[1].xid, Message::BarrierReply));
    s.handle_message(t, of(out[3].xid, Message::BarrierReply));
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::Response {
                xid: bad,
                result: Err(RequestError::Switch(ErrorMsg {
                    kind: ErrorType::FlowModFailed(ofproto::error::FlowModFailedCode::BadTableId),
                    data: Bytes::from_static(b"first"),
                }))
            },
            SessionEvent::Response {
                xid: good,
                result: Ok(Reply::Done)
            },
        ]
    );
    assert_eq!(s.pending_requests(), 0);
}

#[test]
fn errors_for_fire_and_forget_messages_are_reported_unsolicited() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let xid = s
        .ready(t)
        .expect("ready")
        .send(Message::FlowMod(FlowMod::default()))
        .expect("fits");
    s.handle_message(t, of(xid, switch_error(b"x")));
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::UnsolicitedError {
            xid,
            error: ErrorMsg {
                kind: ErrorType::FlowModFailed(ofproto::error::FlowModFailedCode::BadTableId),
                data: Bytes::from_static(b"x"),
            }
        }]
    );
    // A reply nobody asked for is ignored, not fatal.
    s.handle_message(t, of(999, Message::BarrierReply));
    assert!(events(&mut s).is_empty());
    assert!(!s.is_closed());
}

#[test]
fn explicit_barrier_and_single_replies_are_correlated() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let mut ready = s.ready(t).expect("ready");
    let b = ready.barrier();
    let g = ready.request(Message::GetConfigRequest);
    let cfg = SwitchConfig {
        flags: 0,
        miss_send_len: OFPCML_NO_BUFFER,
    };
    // Answered out of order: correlation is by xid, not position.
    s.handle_message(t, of(g, Message::GetConfigReply(cfg)));
    s.handle_message(t, of(b, Message::BarrierReply));
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::Response {
                xid: g,
                result: Ok(Reply::Message(Message::GetConfigReply(cfg)))
            },
            SessionEvent::Response {
                xid: b,
                result: Ok(Reply::Message(Message::BarrierReply))
            },
        ]
    );
}

#[test]
fn requests_time_out() {
    let config = Config::default();
    let t = t0();
    let mut s = handshake(t, config.clone());
    let xid = s
        .ready(t)
        .expect("ready")
        .request(Message::FlowMod(FlowMod::default()));
    events(&mut s);
    // Keep the peer alive with echoes so only the request deadline fires.
    let mut now = t;
    while now < t + config.request_timeout {
        now += Duration::from_secs(1);
        s.handle_message(now, of(1, Message::EchoRequest(Bytes::new())));
        s.handle_timeout(now);
    }
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Response {
            xid,
            result: Err(RequestError::Timeout)
        }]
    );
    assert_eq!(s.pending_requests(), 0, "its barrier is forgotten too");
    assert!(!s.is_closed());
}

#[test]
fn xids_are_unique_nonzero_and_skip_pending_ones() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    s.core.next_xid = u32::MAX - 1;
    let mut ready = s.ready(t).expect("ready");
    let a = ready.request(Message::GetConfigRequest);
    let b = ready.send(Message::BarrierRequest).expect("fits");
    let c = ready.send(Message::BarrierRequest).expect("fits");
    assert_eq!((a, b, c), (u32::MAX - 1, u32::MAX, 1));
    s.core.next_xid = a;
    let d = s.ready(t).expect("ready").send(Message::BarrierRequest);
    assert_ne!(d.expect("fits"), a);
}

/// A FLOW_MOD with `n` output actions: 16 bytes each, so 4 096 of them exceed 65 535 bytes.
fn flow_mod_with_outputs(n: u32) -> Message {
    Message::FlowMod(FlowMod {
        instructions: vec![ofproto::Instruction::ApplyActions(
            (0..n)
                .map(|port| ofproto::Action::Output { port, max_len: 0 })
                .collect(),
        )],
        ..FlowMod::default()
    })
}

#[test]
fn a_message_too_long_for_the_wire_is_refused_and_nothing_is_queued() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let mut ready = s.ready(t).expect("ready");
    let err = ready
        .send(flow_mod_with_outputs(5000))
        .expect_err("too long");
    assert!(matches!(err, ofproto::Error::TooLong { .. }), "{err:?}");
    // A request is completed at once, exactly once, with the reason; nothing goes out.
    let xid = ready.request(flow_mod_with_outputs(5000));
    assert!(drain(&mut s).is_empty());
    let evs = events(&mut s);
    assert!(
        matches!(
            evs.as_slice(),
            [SessionEvent::Response { xid: x, result: Err(RequestError::Unencodable(ofproto::Error::TooLong { max: 65535, .. })) }]
                if *x == xid
        ),
        "{evs:?}"
    );
    assert_eq!(s.pending_requests(), 0);
    // The session goes on: the largest message that fits is sent whole.
    let mut ready = s.ready(t).expect("ready");
    ready.send(flow_mod_with_outputs(4000)).expect("fits");
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].encoded_len(), 8 + 48 + 8 + 4000 * 16);
    assert!(!s.is_closed());
}

#[test]
fn transmit_into_moves_every_encoded_message_in_order() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let mut ready = s.ready(t).expect("ready");
    let a = ready.send(Message::BarrierRequest).expect("fits");
    let b = ready.send(flow_mod_with_outputs(3)).expect("fits");
    // Appended after what the buffer already holds.
    let mut out = bytes::BytesMut::from(&b"prefix"[..]);
    assert_eq!(s.transmit_into(&mut out), 2);
    assert_eq!(&out[..6], b"prefix");
    let mut rest = out.split_off(6);
    let mut decoder = ofproto::Decoder::new();
    let first = decoder.decode(&mut rest).expect("valid").expect("whole");
    let second = decoder.decode(&mut rest).expect("valid").expect("whole");
    assert_eq!((first.xid, second.xid), (a, b));
    assert_eq!(second.body, flow_mod_with_outputs(3));
    assert!(rest.is_empty());
    assert_eq!(s.transmit_into(&mut out), 0);
}

#[test]
fn a_flood_closes_the_session() {
    let t = t0();
    let config = Config {
        max_msgs_per_sec: 100,
        ..Config::default()
    };
    let mut s = handshake(t, config);
    // The handshake used 4 tokens; 96 more pass within the same instant, the next does not.
    for i in 0..96 {
        s.handle_message(t, of(i, Message::EchoRequest(Bytes::new())));
        assert!(!s.is_closed(), "closed after {i} messages");
    }
    s.handle_message(t, of(0, Message::EchoRequest(Bytes::new())));
    assert_eq!(s.close_reason(), Some(&CloseReason::Flood(100)));
    // The same rate spread over time is fine.
    let mut s = handshake(
        t,
        Config {
            max_msgs_per_sec: 100,
            ..Config::default()
        },
    );
    for i in 0..1000u32 {
        let now = t + Duration::from_millis(u64::from(i) * 11);
        s.handle_message(now, of(i, Message::EchoRequest(Bytes::new())));
    }
    assert!(!s.is_closed());
}

#[test]
fn garbage_gets_the_codec_error_and_closes() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let raw = [0x01u8, 0x02, 0x00, 0x08, 0x00, 0x00, 0x00, 0x2a];
    let err = ofproto::OfMessage::parse(&raw).expect_err("an OpenFlow 1.0 message is refused");
    s.handle_malformed(t, &err, &raw);
    assert_eq!(s.close_reason(), Some(&CloseReason::Malformed(err.clone())));
    let out = drain(&mut s);
    let kind = err
        .ofp_error()
        .expect("a bad version maps to an OpenFlow error");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].xid, 0x2a);
    assert_eq!(
        out[0].body,
        Message::Error(ErrorMsg {
            kind,
            data: Bytes::copy_from_slice(&raw)
        })
    );
}

#[test]
fn port_status_updates_the_port_table() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    let add = PortStatus {
        reason: PortReason::Add,
        desc: port(3),
    };
    s.handle_message(t, of(0, Message::PortStatus(add.clone())));
    let del = PortStatus {
        reason: PortReason::Delete,
        desc: port(1),
    };
    s.handle_message(t, of(0, Message::PortStatus(del.clone())));
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::PortStatus(add), SessionEvent::PortStatus(del)]
    );
    let ready = s.ready(t).expect("ready");
    assert_eq!(ready.ports().map(|p| p.port_no).collect::<Vec<_>>(), [2, 3]);
}

#[test]
fn close_keeps_first_reason_and_fails_pending() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    let xid = s
        .ready(t)
        .expect("ready")
        .request(Message::FlowMod(FlowMod::default()));
    events(&mut s);
    s.close(CloseReason::Replaced);
    s.close(CloseReason::Shutdown);
    assert_eq!(s.close_reason(), Some(&CloseReason::Replaced));
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Response {
            xid,
            result: Err(RequestError::Closed(CloseReason::Replaced))
        }]
    );
    // Input after close changes nothing.
    s.handle_message(t, of(1, Message::EchoRequest(Bytes::new())));
    assert!(drain(&mut s)
        .iter()
        .all(|m| !matches!(m.body, Message::EchoReply(_))));
}

#[test]
fn wrong_way_messages_never_complete_requests() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    let xid = s
        .ready(t)
        .expect("ready")
        .request(Message::GetConfigRequest);
    events(&mut s);
    // A FLOW_MOD from the switch carrying the pending xid: ignored, the request still waits.
    s.handle_message(t, of(xid, Message::FlowMod(FlowMod::default())));
    assert!(events(&mut s).is_empty());
    assert_eq!(s.pending_requests(), 1);
    assert!(!s.is_closed());
}

#[test]
fn hello_after_the_handshake_closes() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    s.handle_message(t, of(5, Message::Hello(Hello::of13())));
    assert_eq!(
        s.close_reason(),
        Some(&CloseReason::Protocol(PeerMisbehaved::HelloAfterHandshake))
    );
}

#[test]
fn auxiliary_connections_and_refused_handshakes_close() {
    let t = t0();
    let mut s = Session::new(t, Config::default());
    s.handle_message(t, of(1, Message::Hello(Hello::of13())));
    let req = drain(&mut s).pop().expect("FEATURES_REQUEST");
    let mut aux = features(DPID);
    aux.auxiliary_id = 1;
    s.handle_message(t, of(req.xid, Message::FeaturesReply(aux)));
    assert_eq!(
        s.close_reason(),
        Some(&CloseReason::Protocol(
            PeerMisbehaved::AuxiliaryConnection { id: 1 }
        ))
    );

    let mut s = Session::new(t, Config::default());
    s.handle_message(t, of(1, Message::Hello(Hello::of13())));
    let req = drain(&mut s).pop().expect("FEATURES_REQUEST");
    s.handle_message(t, of(req.xid, switch_error(b"no")));
    assert_eq!(
        s.close_reason(),
        Some(&CloseReason::HandshakeRefused(ErrorType::FlowModFailed(
            ofproto::error::FlowModFailedCode::BadTableId
        )))
    );
}

/// Feeds `raw` as the driver does: through the framing decoder, a message or its decode error.
fn feed_bytes(s: &mut Session, now: Instant, raw: &[u8]) {
    let mut decoder = ofproto::Decoder::new();
    let mut buf = bytes::BytesMut::from(raw);
    match decoder.decode(&mut buf) {
        Ok(Some(msg)) => s.handle_message(now, msg),
        Ok(None) => panic!("not a whole message: {raw:?}"),
        Err(e) => {
            let rejected = decoder.rejected().cloned().unwrap_or_default();
            s.handle_malformed(now, &e, &rejected);
        }
    }
}

/// A valid message with one padding byte set: the codec refuses it, the framing is intact.
fn with_bad_byte(xid: u32, body: Message, at: usize) -> Vec<u8> {
    let mut raw = of(xid, body).to_bytes().to_vec();
    raw[at] = 0xee;
    raw
}

#[test]
fn an_undecodable_reply_fails_only_its_request() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let xid = s.ready(t).expect("ready").request(flow_stats_request());
    let other = s
        .ready(t)
        .expect("ready")
        .request(Message::GetConfigRequest);
    drain(&mut s);
    // Byte 12 is the multipart header's padding.
    let raw = with_bad_byte(xid, flow_part(1, false), 12);
    let err = OfMessage::parse(&raw).expect_err("non-zero padding");
    feed_bytes(&mut s, t, &raw);
    assert!(!s.is_closed(), "closed: {:?}", s.close_reason());
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Response {
            xid,
            result: Err(RequestError::BadReply(err))
        }]
    );
    // Nothing goes back to the switch for its own reply, and the other request still waits.
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.pending_requests(), 1);
    s.handle_message(
        t,
        of(
            other,
            Message::GetConfigReply(SwitchConfig {
                flags: 0,
                miss_send_len: 0,
            }),
        ),
    );
    assert!(matches!(
        events(&mut s).as_slice(),
        [SessionEvent::Response { xid: x, result: Ok(_) }] if *x == other
    ));
}

#[test]
fn an_undecodable_unsolicited_message_gets_an_error_and_the_session_goes_on() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let packet_in = Message::PacketIn(ofproto::PacketIn {
        buffer_id: ofproto::OFP_NO_BUFFER,
        total_len: 0,
        reason: PacketInReason::NoMatch,
        table_id: 0,
        cookie: 0,
        match_: Match::new().with(OxmField::InPort(1)),
        data: Bytes::new(),
    });
    // Bytes 24..26 are the match type: 0 is the OpenFlow 1.0 standard match, not OXM.
    let raw = with_bad_byte(77, packet_in.clone(), 25);
    let err = OfMessage::parse(&raw).expect_err("bad match type");
    feed_bytes(&mut s, t, &raw);
    assert!(!s.is_closed(), "closed: {:?}", s.close_reason());
    assert!(events(&mut s).is_empty());
    let out = drain(&mut s);
    assert_eq!(
        out,
        vec![of(
            77,
            Message::Error(ErrorMsg {
                kind: err.ofp_error().expect("maps to an OpenFlow error"),
                data: Bytes::copy_from_slice(&raw[..raw.len().min(64)]),
            })
        )]
    );
    // The next good message is handled as usual.
    s.handle_message(t, of(78, packet_in));
    assert!(matches!(
        events(&mut s).as_slice(),
        [SessionEvent::PacketIn(_)]
    ));
}

#[test]
fn an_undecodable_handshake_reply_closes() {
    let t = t0();
    let mut s = Session::new(t, Config::default());
    s.handle_message(t, of(1, Message::Hello(Hello::of13())));
    let req = drain(&mut s).pop().expect("FEATURES_REQUEST");
    let raw = with_bad_byte(req.xid, Message::FeaturesReply(features(DPID)), 22);
    let err = OfMessage::parse(&raw).expect_err("non-zero padding");
    feed_bytes(&mut s, t, &raw);
    assert_eq!(s.close_reason(), Some(&CloseReason::Malformed(err)));
}

#[test]
fn a_reply_of_the_wrong_kind_fails_its_request_and_the_session_goes_on() {
    let t = t0();
    let mut s = handshake(t, Config::default());
    drain(&mut s);
    let xid = s.ready(t).expect("ready").request(flow_stats_request());
    drain(&mut s);
    s.handle_message(t, of(xid, Message::BarrierReply));
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Response {
            xid,
            result: Err(RequestError::UnexpectedReply {
                got: "BARRIER_REPLY"
            })
        }]
    );
    assert!(!s.is_closed());
}

#[test]
fn port_status_adds_beyond_the_cap_are_refused_and_counted() {
    let t = t0();
    let mut s = handshake(
        t,
        Config {
            max_ports: 3,
            ..Config::default()
        },
    );
    events(&mut s);
    let status = |reason, no| PortStatus {
        reason,
        desc: port(no),
    };
    s.handle_message(t, of(0, Message::PortStatus(status(PortReason::Add, 3))));
    // The table is full: a new port is refused (no event), again and again, counted.
    s.handle_message(t, of(0, Message::PortStatus(status(PortReason::Add, 4))));
    s.handle_message(t, of(0, Message::PortStatus(status(PortReason::Modify, 5))));
    // What the table holds still changes.
    let mut changed = port(1);
    changed.config = 1;
    let modify = PortStatus {
        reason: PortReason::Modify,
        desc: changed.clone(),
    };
    s.handle_message(t, of(0, Message::PortStatus(modify.clone())));
    s.handle_message(t, of(0, Message::PortStatus(status(PortReason::Delete, 2))));
    s.handle_message(t, of(0, Message::PortStatus(status(PortReason::Add, 4))));
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::PortStatus(status(PortReason::Add, 3)),
            SessionEvent::PortStatus(modify),
            SessionEvent::PortStatus(status(PortReason::Delete, 2)),
            SessionEvent::PortStatus(status(PortReason::Add, 4)),
        ]
    );
    assert_eq!(s.ports_refused(), 2);
    let ready = s.ready(t).expect("ready");
    assert_eq!(
        ready.ports().map(|p| p.port_no).collect::<Vec<_>>(),
        [1, 3, 4]
    );
    assert_eq!(ready.ports().next(), Some(&changed));
    assert!(!s.is_closed());
}

#[test]
fn a_port_desc_beyond_the_cap_closes() {
    let t = t0();
    let mut s = Session::new(
        t,
        Config {
            max_ports: 1,
            ..Config::default()
        },
    );
    s.handle_message(t, of(1, Message::Hello(Hello::of13())));
    let req = drain(&mut s).pop().expect("FEATURES_REQUEST");
    s.handle_message(t, of(req.xid, Message::FeaturesReply(features(DPID))));
    let pd = drain(&mut s).pop().expect("PORT_DESC request");
    s.handle_message(t, of(pd.xid, port_desc_part(vec![port(1), port(2)], false)));
    assert_eq!(
        s.close_reason(),
        Some(&CloseReason::Protocol(PeerMisbehaved::PortDescTooLarge))
    );
}
