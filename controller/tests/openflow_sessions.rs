//! The switch session layer over real TCP, against scripted switches (no OVS needed): the
//! handshake, the app event stream, REST → FLOW_MOD → barrier/ERROR, reconnect replacement,
//! and misbehaving connections closed without disturbing the others.

mod common;

use std::sync::{Arc, Mutex};

use apps::Event;
use axum::http::StatusCode;
use bytes::Bytes;
use common::{frame, wait_for, Controller, FakeSwitch};
use ofproto::error::{ErrorType, FlowModFailedCode, HelloFailedCode};
use ofproto::{
    port_no, Action, ErrorMsg, Hello, Match, Message, OfMessage, OxmField, PacketIn,
    PacketInReason, OFP_NO_BUFFER,
};
use strowger::openflow::Config;

const H1: [u8; 6] = [0, 0, 0, 0, 0, 1];
const H2: [u8; 6] = [0, 0, 0, 0, 0, 2];

fn packet_in(in_port: u32, data: Bytes) -> Message {
    Message::PacketIn(PacketIn {
        buffer_id: OFP_NO_BUFFER,
        total_len: data.len() as u16,
        reason: PacketInReason::NoMatch,
        table_id: 0,
        cookie: 0,
        match_: Match::new().with(OxmField::InPort(in_port)),
        data,
    })
}

#[tokio::test]
async fn handshake_event_stream_and_learning() {
    let ctl = Controller::start(Config::default()).await;
    let mut sw = FakeSwitch::handshake(ctl.addr, 0x11).await;
    ctl.wait_switch(0x11).await;
    // l2switch's first words: delete its old flows, install table-miss.
    let miss = sw
        .recv_until(|m| matches!(&m.body, Message::FlowMod(f) if f.priority == 0))
        .await;
    let Message::FlowMod(miss) = miss.body else {
        unreachable!("matched above")
    };
    assert!(miss.match_.fields.is_empty());

    // Broadcast from H1 on port 1: flooded.
    sw.send(OfMessage::new(0, packet_in(1, frame([0xff; 6], H1))))
        .await;
    let out = sw
        .recv_until(|m| matches!(m.body, Message::PacketOut(_)))
        .await;
    let Message::PacketOut(po) = out.body else {
        unreachable!("matched above")
    };
    assert_eq!(po.in_port, 1);
    assert_eq!(
        po.actions,
        vec![Action::Output {
            port: port_no::FLOOD,
            max_len: 0
        }]
    );

    // H2 → H1 from port 2: a flow towards port 1, then the packet itself.
    sw.send(OfMessage::new(0, packet_in(2, frame(H1, H2))))
        .await;
    let fm = sw
        .recv_until(|m| matches!(m.body, Message::FlowMod(_)))
        .await;
    let Message::FlowMod(fm) = fm.body else {
        unreachable!("matched above")
    };
    assert_eq!(fm.match_.in_port(), Some(2));
    let out = sw
        .recv_until(|m| matches!(m.body, Message::PacketOut(_)))
        .await;
    let Message::PacketOut(po) = out.body else {
        unreachable!("matched above")
    };
    assert_eq!(
        po.actions,
        vec![Action::Output {
            port: 1,
            max_len: 0
        }]
    );

    let events = ctl.events();
    assert!(matches!(events[0], Event::SwitchUp { dpid: 0x11, .. }));
    // HELLO, FEATURES_REPLY, PORT_DESC, 2 PACKET_INs in; at least as many out.
    let counters = ctl.switches.get(0x11).expect("connected").counters();
    assert_eq!((counters.msgs_in, counters.packet_ins), (5, 2));
    assert!(counters.msgs_out >= 5, "{counters:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::PacketIn { .. }))
            .count(),
        2
    );

    drop(sw);
    wait_for(|| ctl.switches.get(0x11).is_none().then_some(())).await;
    wait_for(|| {
        matches!(ctl.events().last(), Some(Event::SwitchDown { dpid: 0x11 })).then_some(())
    })
    .await;
    ctl.stop().await;
}

#[tokio::test]
async fn rest_flow_mod_gets_the_switch_answer() {
    let ctl = Controller::start(Config::default()).await;
    let mut sw = FakeSwitch::handshake(ctl.addr, 0x22).await;
    ctl.wait_switch(0x22).await;
    let api = ctl.api();
    let post = |body: &'static str| {
        let api = api.clone();
        async move {
            common::call(api, "POST", "/api/v1/switches/0x22/flows", body)
                .await
                .0
        }
    };

    // Refused by the switch: the ERROR with the FLOW_MOD's xid reaches the REST caller.
    let call = tokio::spawn(post(
        r#"{"table_id": 100, "priority": 5, "actions": [{"type": "OUTPUT", "port": 2}]}"#,
    ));
    let fm = sw
        .recv_until(|m| matches!(&m.body, Message::FlowMod(f) if f.priority == 5))
        .await;
    let barrier = sw.recv_until(|m| m.body == Message::BarrierRequest).await;
    sw.send(OfMessage::new(
        fm.xid,
        Message::Error(ErrorMsg::for_request(
            ErrorType::FlowModFailed(FlowModFailedCode::BadTableId),
            &fm.to_bytes(),
        )),
    ))
    .await;
    sw.send(OfMessage::new(barrier.xid, Message::BarrierReply))
        .await;
    assert_eq!(call.await.expect("join"), StatusCode::UNPROCESSABLE_ENTITY);
    let counters = ctl.switches.get(0x22).expect("connected").counters();
    assert_eq!(counters.switch_errors, 1);

    // Accepted: the barrier reply confirms it.
    let call = tokio::spawn(post(r#"{"priority": 6, "actions": []}"#));
    sw.recv_until(|m| matches!(&m.body, Message::FlowMod(f) if f.priority == 6))
        .await;
    let barrier = sw.recv_until(|m| m.body == Message::BarrierRequest).await;
    sw.send(OfMessage::new(barrier.xid, Message::BarrierReply))
        .await;
    assert_eq!(call.await.expect("join"), StatusCode::OK);
    ctl.stop().await;
}

#[tokio::test]
async fn reconnect_with_same_dpid_replaces_the_old_session() {
    let ctl = Controller::start(Config::default()).await;
    let mut old = FakeSwitch::handshake(ctl.addr, 0x33).await;
    let first = ctl.wait_switch(0x33).await;
    let mut new = FakeSwitch::handshake(ctl.addr, 0x33).await;
    let second = wait_for(|| ctl.switches.get(0x33).filter(|h| h.conn() != first.conn())).await;
    assert_ne!(first.peer(), second.peer());
    // The old connection is closed by the controller.
    old.until_closed().await;
    // The new one is fully usable: a barrier round trip through its handle.
    let waiter = tokio::spawn(async move { second.barrier().await });
    let b = new.recv_until(|m| m.body == Message::BarrierRequest).await;
    new.send(OfMessage::new(b.xid, Message::BarrierReply)).await;
    waiter.await.expect("join").expect("barrier answered");
    // The app saw two SwitchUp and no SwitchDown: the datapath never went away.
    let ups = ctl
        .events()
        .iter()
        .filter(|e| matches!(e, Event::SwitchUp { dpid: 0x33, .. }))
        .count();
    assert_eq!(ups, 2);
    assert!(!ctl
        .events()
        .iter()
        .any(|e| matches!(e, Event::SwitchDown { .. })));
    assert_eq!(ctl.switches.len(), 1);
    ctl.stop().await;
}

/// Checks that a healthy switch still answers through the controller.
async fn still_healthy(ctl: &Controller, sw: &mut FakeSwitch, dpid: u64) {
    let handle = ctl
        .switches
        .get(dpid)
        .expect("healthy switch still registered");
    let waiter = tokio::spawn(async move { handle.barrier().await });
    let b = sw.recv_until(|m| m.body == Message::BarrierRequest).await;
    sw.send(OfMessage::new(b.xid, Message::BarrierReply)).await;
    waiter.await.expect("join").expect("barrier answered");
}

#[tokio::test]
async fn misbehaving_connections_are_closed_and_others_unaffected() {
    let config = Config {
        max_msgs_per_sec: 1000,
        ..Config::default()
    };
    let (logs, _guard) = capture_logs();
    let ctl = Controller::start(config).await;
    let mut good = FakeSwitch::handshake(ctl.addr, 0x44).await;
    ctl.wait_switch(0x44).await;

    // Garbage: not OpenFlow at all. Answered with an ERROR (bad version), then closed.
    let mut bad = FakeSwitch::connect(ctl.addr).await;
    bad.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let seen = bad.until_closed().await;
    assert!(
        seen.iter().any(|m| matches!(&m.body, Message::Error(_))),
        "garbage gets an ERROR: {seen:?}"
    );
    still_healthy(&ctl, &mut good, 0x44).await;

    // Wrong version: HELLO_FAILED/INCOMPATIBLE, then closed.
    let mut old = FakeSwitch::connect(ctl.addr).await;
    old.send(OfMessage {
        version: 0x01,
        xid: 9,
        body: Message::Hello(Hello { elements: vec![] }),
    })
    .await;
    let seen = old.until_closed().await;
    assert!(
        seen.iter().any(|m| matches!(&m.body, Message::Error(e)
            if e.kind == ErrorType::HelloFailed(HelloFailedCode::Incompatible))),
        "{seen:?}"
    );
    still_healthy(&ctl, &mut good, 0x44).await;

    // Absurd length: a header claiming 4 bytes.
    let mut absurd = FakeSwitch::connect(ctl.addr).await;
    absurd.send_raw(&[0x04, 0x00, 0x00, 0x04, 0, 0, 0, 1]).await;
    absurd.until_closed().await;
    still_healthy(&ctl, &mut good, 0x44).await;

    // A flood: an identified switch sends 5000 echo requests at once.
    let mut flood = FakeSwitch::handshake(ctl.addr, 0x55).await;
    ctl.wait_switch(0x55).await;
    let mut burst = bytes::BytesMut::new();
    for i in 0..5000 {
        OfMessage::new(i, Message::EchoRequest(Bytes::new())).emit(&mut burst);
    }
    // The controller may close mid-write; that is the point.
    let _ = tokio::io::AsyncWriteExt::write_all(&mut flood.stream, &burst).await;
    flood.until_closed().await;
    wait_for(|| ctl.switches.get(0x55).is_none().then_some(())).await;
    still_healthy(&ctl, &mut good, 0x44).await;
    assert_eq!(ctl.switches.len(), 1);
    ctl.stop().await;

    // Each closure left one clear log line saying why.
    let logs =
        String::from_utf8_lossy(&logs.lock().map(|l| l.clone()).unwrap_or_default()).into_owned();
    for expected in [
        "closing switch connection: malformed message: unsupported OpenFlow version 0x47",
        "closing switch connection: switch does not support OpenFlow 1.3",
        "closing switch connection: malformed message",
        "closing switch connection: message flood: more than 1000 messages/s",
    ] {
        assert!(
            logs.contains(expected),
            "no log line {expected:?} in:\n{logs}"
        );
    }
}

/// Captures this thread's log output (the test runtime is single-threaded, so every task's).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(logs.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn rest_lists_the_connected_switch() {
    let ctl = Controller::start(Config::default()).await;
    let _sw = FakeSwitch::handshake(ctl.addr, 0x66).await;
    ctl.wait_switch(0x66).await;
    let (status, body) = ctl.call("GET", "/api/v1/switches", "").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v[0]["dpid"], serde_json::json!(0x66));
    let (status, body) = ctl.call("GET", "/api/v1/switches/0x66/ports", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    ctl.stop().await;
}

#[tokio::test]
async fn a_switch_that_stops_reading_gets_backpressure_then_dead_peer() {
    let config = Config {
        echo_interval: std::time::Duration::from_millis(300),
        dead_after: std::time::Duration::from_secs(1),
        ..Config::default()
    };
    let ctl = Controller::start(config).await;
    // Handshake, then never read again (and never speak).
    let _stuck = FakeSwitch::handshake(ctl.addr, 0x77).await;
    let handle = ctl.wait_switch(0x77).await;
    let big = Message::PacketOut(ofproto::PacketOut {
        buffer_id: OFP_NO_BUFFER,
        in_port: port_no::CONTROLLER,
        actions: vec![Action::Output {
            port: 1,
            max_len: 0,
        }],
        data: Bytes::from(vec![0u8; 32 * 1024]),
    });
    // The socket buffers, the write buffer (HIGH_WATER) and the command queue fill up, then
    // senders are refused: memory stays bounded.
    let mut sent = 0usize;
    let full = loop {
        match handle.try_send(big.clone()) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        if sent.is_multiple_of(64) {
            tokio::task::yield_now().await;
        }
        assert!(sent < 100_000, "the queue never filled");
    };
    assert_eq!(full, strowger::openflow::SendError::Full);
    // Bounded: the queue plus what the kernel and the write buffer hold (a few MiB).
    let bound = strowger::openflow::conn::COMMAND_QUEUE + 16 * 1024 * 1024 / (32 * 1024);
    assert!(sent <= bound, "{sent} messages accepted, more than {bound}");
    // The silent switch is declared dead; a sender blocked on the full queue is released.
    let _ = tokio::time::timeout(common::WAIT, handle.send(big.clone()))
        .await
        .expect("a blocked sender is released when the session ends");
    wait_for(|| ctl.switches.get(0x77).is_none().then_some(())).await;
    assert_eq!(
        handle.try_send(big),
        Err(strowger::openflow::SendError::Gone)
    );
    ctl.stop().await;
}

/// Answers a packet-in from datapath 0x81 with twice as many messages for datapath 0x82 as its
/// queue holds, all in one batch.
struct Overflow;

impl apps::App for Overflow {
    fn name(&self) -> &'static str {
        "overflow"
    }
    fn handle(&mut self, _now: std::time::Instant, event: &Event, out: &mut Vec<apps::Output>) {
        if let Event::PacketIn { dpid: 0x81, .. } = event {
            for _ in 0..2 * strowger::openflow::registry::MAILBOX_FOREIGN {
                out.push(apps::Output {
                    dpid: 0x82,
                    message: Message::BarrierRequest,
                });
            }
        }
    }
}

#[tokio::test]
async fn app_output_that_does_not_fit_resyncs_the_other_switch() {
    let (logs, _guard) = capture_logs();
    let ctl = Controller::start_with(Box::new(Overflow), Config::default()).await;
    let mut a = FakeSwitch::handshake(ctl.addr, 0x81).await;
    let mut b = FakeSwitch::handshake(ctl.addr, 0x82).await;
    ctl.wait_switch(0x81).await;
    let first = ctl.wait_switch(0x82).await;
    a.send(OfMessage::new(0, packet_in(1, frame([0xff; 6], H1))))
        .await;
    // The batch did not fit: 0x82's session is closed rather than sent a batch with a gap,
    // and the app hears it go down.
    let seen = b.until_closed().await;
    let barriers = seen
        .iter()
        .filter(|m| m.body == Message::BarrierRequest)
        .count();
    assert!(
        barriers < 2 * strowger::openflow::registry::MAILBOX_FOREIGN,
        "{barriers} barriers sent: the whole batch, though it did not fit"
    );
    assert_eq!(first.counters().resyncs, 1);
    wait_for(|| {
        ctl.events()
            .iter()
            .any(|e| matches!(e, Event::SwitchDown { dpid: 0x82 }))
            .then_some(())
    })
    .await;
    // It reconnects from scratch; its resync count survives the session it ended.
    let mut b = FakeSwitch::handshake(ctl.addr, 0x82).await;
    let second = wait_for(|| ctl.switches.get(0x82).filter(|h| h.conn() != first.conn())).await;
    assert_eq!(second.counters().resyncs, 1);
    let ups = ctl
        .events()
        .iter()
        .filter(|e| matches!(e, Event::SwitchUp { dpid: 0x82, .. }))
        .count();
    assert_eq!(ups, 2);
    still_healthy(&ctl, &mut b, 0x82).await;
    still_healthy(&ctl, &mut a, 0x81).await;
    ctl.stop().await;
    let logs =
        String::from_utf8_lossy(&logs.lock().map(|l| l.clone()).unwrap_or_default()).into_owned();
    for expected in [
        "switch mailbox full: closing the session to resync it",
        "closing switch connection: resync: app output did not fit the switch's queue",
    ] {
        assert!(
            logs.contains(expected),
            "no log line {expected:?} in:\n{logs}"
        );
    }
}

/// A small deterministic PRNG (xorshift64*), so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_input_on_many_connections_never_disturbs_a_healthy_switch() {
    let config = Config {
        handshake_timeout: std::time::Duration::from_secs(1),
        ..Config::default()
    };
    // Any panic in this process (a connection task included) fails the test.
    static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, std::sync::atomic::Ordering::SeqCst);
        default_hook(info);
    }));
    let ctl = Controller::start(config).await;
    let mut good = FakeSwitch::handshake(ctl.addr, 0x88).await;
    ctl.wait_switch(0x88).await;
    let mut rng = Rng(0x5eed_0f0f);
    let mut tasks = Vec::new();
    for i in 0..120u32 {
        // Thirds: pure noise; an OpenFlow 1.3 header of random type and length with a random
        // body; a valid HELLO followed by such a message.
        let mut input = Vec::new();
        if i % 3 == 2 {
            input.extend_from_slice(&OfMessage::new(1, Message::Hello(Hello::of13())).to_bytes());
        }
        if i % 3 == 0 {
            let n = 1 + (rng.next() % 300) as usize;
            input.extend(rng.bytes(n));
        } else {
            let typ = (rng.next() % 40) as u8;
            let len = 8 + (rng.next() % 200) as u16;
            input.extend_from_slice(&[0x04, typ]);
            input.extend_from_slice(&len.to_be_bytes());
            input.extend_from_slice(&i.to_be_bytes());
            input.extend(rng.bytes(usize::from(len) - 8));
        }
        let addr = ctl.addr;
        tasks.push(tokio::spawn(async move {
            let mut sw = FakeSwitch::connect(addr).await;
            sw.send_raw(&input).await;
            // Whatever the bytes meant, the controller ends the connection: at once for
            // malformed input, at the handshake deadline for input that merely stalls.
            sw.until_closed_lenient().await;
        }));
    }
    for t in tasks {
        t.await.expect("garbage connection task");
    }
    still_healthy(&ctl, &mut good, 0x88).await;
    assert_eq!(ctl.switches.len(), 1);
    ctl.stop().await;
    assert!(
        !PANICKED.load(std::sync::atomic::Ordering::SeqCst),
        "something panicked on random input"
    );
}

#[tokio::test]
async fn an_undecodable_message_fails_one_request_not_the_session() {
    let ctl = Controller::start(Config::default()).await;
    let mut sw = FakeSwitch::handshake(ctl.addr, 0x66).await;
    let handle = ctl.wait_switch(0x66).await;

    // A multipart reply with non-zero padding in its header: that request fails, typed.
    let request = {
        let handle = handle.clone();
        tokio::spawn(async move {
            handle
                .request(Message::MultipartRequest(ofproto::MultipartRequest {
                    flags: 0,
                    body: ofproto::MultipartRequestBody::Desc,
                }))
                .await
        })
    };
    let req = sw
        .recv_until(|m| matches!(m.body, Message::MultipartRequest(_)))
        .await;
    let mut reply = OfMessage::new(
        req.xid,
        Message::MultipartReply(ofproto::MultipartReply {
            flags: 0,
            body: ofproto::MultipartReplyBody::Flow(vec![]),
        }),
    )
    .to_bytes()
    .to_vec();
    reply[12] = 1;
    sw.send_raw(&reply).await;
    let result = request.await.expect("join");
    assert!(
        matches!(result, Err(strowger::openflow::RequestError::BadReply(_))),
        "{result:?}"
    );

    // An unasked PACKET_IN whose match is not OXM: an ERROR back, the session goes on.
    let mut bad = OfMessage::new(42, packet_in(1, frame(H2, H1)))
        .to_bytes()
        .to_vec();
    bad[25] = 0;
    sw.send_raw(&bad).await;
    let error = sw.recv_until(|m| matches!(m.body, Message::Error(_))).await;
    assert_eq!(error.xid, 42);
    still_healthy(&ctl, &mut sw, 0x66).await;
    assert!(ctl.switches.get(0x66).is_some());
    ctl.stop().await;
}

/// Logs a WARN for every ERROR the switch sends, as the engine does.
struct Complainer;

impl apps::App for Complainer {
    fn name(&self) -> &'static str {
        "complainer"
    }
    fn handle(&mut self, _now: std::time::Instant, event: &Event, _out: &mut Vec<apps::Output>) {
        if let Event::SwitchError { xid, .. } = event {
            tracing::warn!(xid, "complainer: switch refused a message");
        }
    }
}

#[tokio::test]
async fn repetitive_switch_errors_are_logged_in_full_a_few_times_then_counted() {
    let (logs, _guard) = capture_logs();
    let config = Config {
        max_msgs_per_sec: 0,
        ..Config::default()
    };
    let ctl = Controller::start_with(Box::new(Complainer), config).await;
    let mut sw = FakeSwitch::handshake(ctl.addr, 0x91).await;
    ctl.wait_switch(0x91).await;
    let mut burst = bytes::BytesMut::new();
    // xids far above any the controller has used, so none answers its barrier below.
    for xid in 100_001..=101_000 {
        OfMessage::new(
            xid,
            Message::Error(ErrorMsg {
                kind: ErrorType::FlowModFailed(FlowModFailedCode::TableFull),
                data: Bytes::new(),
            }),
        )
        .emit(&mut burst);
    }
    sw.send_raw(&burst).await;
    still_healthy(&ctl, &mut sw, 0x91).await;
    ctl.stop().await;
    let logs =
        String::from_utf8_lossy(&logs.lock().map(|l| l.clone()).unwrap_or_default()).into_owned();
    let full = logs.matches("complainer: switch refused a message").count();
    assert_eq!(full, strowger::openflow::conn::LOG_BURST as usize, "{logs}");
    // The rest are counted in one summary (at the latest when the connection ends).
    let left_out = 1000 - full;
    assert!(
        logs.contains(&format!("suppressed={left_out}")),
        "no summary of {left_out} in:\n{logs}"
    );
}

/// Marks taken off the queue together cost one barrier; marks that arrive while it is out wait
/// for its reply and go out as one more; the replies, matched by xid, make the switch's applied
/// mark the last one and wake the waiters (`Switches::progress`).
#[tokio::test]
async fn marks_are_confirmed_by_coalesced_barriers() {
    use strowger::applied::Mark;
    let c = Controller::start(Config::default()).await;
    let mut sw = FakeSwitch::handshake(c.addr, 7).await;
    let h = c.wait_switch(7).await;
    let mut progress = c.switches.progress();
    progress.mark_unchanged();
    let m = |revision| Mark {
        revision,
        bindings: 0,
    };
    for r in 1..=3 {
        c.app.mark(m(r));
    }
    let is_barrier = |msg: &OfMessage| msg.body == Message::BarrierRequest;
    let first = sw.recv_until(is_barrier).await;
    // More marks while the first barrier is out: nothing is sent for them yet.
    for r in 4..=6 {
        c.app.mark(m(r));
    }
    sw.send(OfMessage::new(first.xid, Message::BarrierReply))
        .await;
    let mut barriers = 1;
    let mut last = first;
    // Each reply either confirms the last mark or lets one more barrier out (the first may
    // have left before marks 2 and 3 were taken: at most three in all, never one per mark).
    loop {
        let done = tokio::time::timeout(std::time::Duration::from_millis(500), async {
            while h.applied() != Some(m(6)) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
        if done.is_ok() {
            break;
        }
        let next = sw.recv_until(is_barrier).await;
        assert_ne!(next.xid, last.xid);
        barriers += 1;
        assert!(barriers <= 3, "{barriers} barriers for six marks");
        sw.send(OfMessage::new(next.xid, Message::BarrierReply))
            .await;
        last = next;
    }
    assert!(barriers <= 3, "{barriers} barriers for six marks");
    assert!(progress.has_changed().unwrap());
    drop(sw);
    wait_for(|| c.switches.get(7).is_none().then_some(())).await;
    c.stop().await;
}

/// Answers a packet-in from datapath 0x81 with a message and a barrier for datapath 0x82, and
/// holds a third (GET_CONFIG_REQUEST, standing for a held packet-out) until it hears
/// `Event::Barrier` for 0x82.
struct HoldForBarrier;

impl apps::App for HoldForBarrier {
    fn name(&self) -> &'static str {
        "hold-for-barrier"
    }
    fn handle(&mut self, _now: std::time::Instant, event: &Event, out: &mut Vec<apps::Output>) {
        let to = |message| apps::Output {
            dpid: 0x82,
            message,
        };
        match event {
            Event::PacketIn { dpid: 0x81, .. } => {
                out.push(to(Message::GetAsyncRequest));
                out.push(to(Message::BarrierRequest));
            }
            Event::Barrier { dpid: 0x82 } => out.push(to(Message::GetConfigRequest)),
            _ => {}
        }
    }
}

/// The app's barrier goes out behind what it sent before, and its answer (a reply or an
/// ERROR alike) comes back to the app as `Event::Barrier`; what the app sends in return is on
/// the wire only after the switch answered, and is sent by the task that read the answer.
#[tokio::test]
async fn an_apps_barrier_answer_comes_back_as_an_event_and_releases_what_it_held() {
    let ctl = Controller::start_with(Box::new(HoldForBarrier), Config::default()).await;
    let mut a = FakeSwitch::handshake(ctl.addr, 0x81).await;
    let mut b = FakeSwitch::handshake(ctl.addr, 0x82).await;
    ctl.wait_switch(0x81).await;
    ctl.wait_switch(0x82).await;
    let barriers = || {
        ctl.events()
            .iter()
            .filter(|e| matches!(e, Event::Barrier { dpid: 0x82 }))
            .count()
    };
    for (round, answer_with_error) in [(1, false), (2, true)] {
        a.send(OfMessage::new(0, packet_in(1, frame([0xff; 6], H1))))
            .await;
        let first = b.recv().await.expect("connection open");
        assert_eq!(first.body, Message::GetAsyncRequest);
        let barrier = b.recv().await.expect("connection open");
        assert_eq!(barrier.body, Message::BarrierRequest);
        // Nothing held goes out before the answer: an echo round trip behind the barrier
        // request (the controller reads in order) comes back with nothing else before it.
        b.send(OfMessage::new(0x5eed, Message::EchoRequest(Bytes::new())))
            .await;
        let echo = b.recv().await.expect("connection open");
        assert_eq!(echo.body, Message::EchoReply(Bytes::new()), "round {round}");
        assert_eq!(barriers(), round - 1);
        let answer = if answer_with_error {
            Message::Error(ErrorMsg {
                kind: ErrorType::BadRequest(ofproto::error::BadRequestCode::BadType),
                data: Bytes::new(),
            })
        } else {
            Message::BarrierReply
        };
        b.send(OfMessage::new(barrier.xid, answer)).await;
        let released = b.recv().await.expect("connection open");
        assert_eq!(released.body, Message::GetConfigRequest, "round {round}");
        assert_eq!(barriers(), round);
    }
    still_healthy(&ctl, &mut a, 0x81).await;
    ctl.stop().await;
}
