//! The controller against a real Open vSwitch (a private dummy-datapath sandbox): handshake and
//! PORT_DESC, a flow installed through the REST API seen by `ovs-ofctl dump-flows`, packets
//! injected with `netdev-dummy/receive` arriving as packet-ins, and `l2switch` installing the
//! right flows and delivering frames out the right ports (read back from `tx_pcap`).
//!
//! Needs the OVS programs (`openvswitch-switch`); fails with that message when they are absent.

mod common;

use std::path::Path;
use std::time::Duration;

use apps::Event;
use axum::http::StatusCode;
use common::{wait_for, Controller, WAIT};
use strowger::openflow::{Config, Reply};
use testbed::Sandbox;

const DPID: u64 = 0xa1;
const H1: &str = "00:00:00:00:00:01";
const H2: &str = "00:00:00:00:00:02";

/// Frames recorded in a pcap file written by OVS (`options:tx_pcap`); empty if none yet.
fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    if bytes.len() < 24 {
        return frames;
    }
    let le = bytes[0..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32_at(&bytes[at + 8..at + 12]) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + len) else {
            break;
        };
        frames.push(frame.to_vec());
        at += 16 + len;
    }
    frames
}

fn mac(s: &str) -> Vec<u8> {
    s.split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("test MAC"))
        .collect()
}

/// Whether `pcap` holds a frame `src → dst`.
fn has_frame(pcap: &Path, src: &str, dst: &str) -> bool {
    pcap_frames(pcap)
        .iter()
        .any(|f| f.len() >= 12 && f[0..6] == mac(dst)[..] && f[6..12] == mac(src)[..])
}

fn udp_flow(in_port: u32, src: &str, dst: &str) -> String {
    format!(
        "in_port({in_port}),eth(src={src},dst={dst}),eth_type(0x0800),\
         ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1000,dst=2000)"
    )
}

/// Polls `dump-flows br0` until a line contains every one of `parts`.
async fn wait_flow(sb: &Sandbox, parts: &[&str]) -> String {
    wait_for(|| {
        let flows = sb.ofctl(&["dump-flows", "br0"]).ok()?;
        flows
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_string)
    })
    .await
}

fn packet_ins(ctl: &Controller) -> usize {
    ctl.events()
        .iter()
        .filter(|e| matches!(e, Event::PacketIn { dpid: DPID, .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovs_handshake_rest_flows_and_learning() {
    let ctl = Controller::start(Config::default()).await;
    let sb = Sandbox::start("ctl").expect("an OVS sandbox (install openvswitch-switch)");
    let pcap = |p: &str| sb.dir().join(format!("{p}.pcap"));
    bridge(&sb, &ctl, DPID);
    for p in 1..=3 {
        let name = format!("p{p}");
        let tx_pcap = format!("options:tx_pcap={}", pcap(&name).display());
        let ofport = format!("ofport_request={p}");
        sb.vsctl(&[
            "add-port",
            "br0",
            &name,
            "--",
            "set",
            "interface",
            &name,
            &ofport,
            &tx_pcap,
        ])
        .expect("add-port");
    }

    // Handshake: identified by the datapath id we configured, ports from PORT_DESC.
    // The ports may be added after the handshake: the table then grows by PORT_STATUS.
    let sw = ctl.wait_switch(DPID).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut names: Vec<String> = sw
            .ports()
            .await
            .expect("ports")
            .into_iter()
            .map(|p| p.name)
            .collect();
        names.sort();
        if names == ["br0", "p1", "p2", "p3"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "ports: {names:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, body) = ctl
        .call("GET", "/api/v1/switches/00000000000000a1/ports", "")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"LOCAL\""), "{body}");

    // l2switch installed its table-miss flow.
    wait_flow(&sb, &["priority=0", "actions=CONTROLLER:65535"]).await;

    // A flow through the REST API appears in dump-flows, and in GET /flows.
    let (status, body) = ctl.call("POST",
        "/api/v1/switches/0xa1/flows",
        r#"{"priority": 100, "cookie": 7, "match": {"in_port": 3, "eth_dst": "00:00:00:00:00:99"},
            "actions": [{"type": "OUTPUT", "port": 2}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_flow(
        &sb,
        &[
            "cookie=0x7",
            "priority=100,in_port=3,dl_dst=00:00:00:00:00:99",
            "actions=output:2",
        ],
    )
    .await;
    let (status, body) = ctl.call("GET", "/api/v1/switches/0xa1/flows", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let flows: serde_json::Value = serde_json::from_str(&body).expect("json");
    let ours = flows
        .as_array()
        .and_then(|a| a.iter().find(|f| f["priority"] == 100))
        .unwrap_or_else(|| panic!("flow missing from {body}"));
    assert_eq!(ours["match"]["eth_dst"], "00:00:00:00:00:99");
    assert_eq!(ours["actions"], serde_json::json!(["OUTPUT:2"]));
    // Filtered by cookie: only that flow (the table-miss flow has l2switch's cookie).
    let (status, body) = ctl
        .call(
            "GET",
            "/api/v1/switches/0xa1/flows?cookie=7&cookie_mask=0xffffffffffffffff",
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let flows: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(flows.as_array().map(Vec::len), Some(1), "{body}");

    // The switch's own ERROR reaches the REST caller: OVS refuses an action to a missing group.
    let (status, body) = ctl
        .call(
            "POST",
            "/api/v1/switches/0xa1/flows",
            r#"{"priority": 5, "actions": [{"type": "GROUP", "group_id": 77}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("switch_error"), "{body}");

    // A flow too long for one OpenFlow message (5 000 outputs, 80 kB) is refused before it
    // reaches the wire; the connection survives and keeps serving requests.
    let actions: Vec<String> = (1..=5000)
        .map(|p| format!(r#"{{"type": "OUTPUT", "port": {p}}}"#))
        .collect();
    let huge = format!(r#"{{"priority": 6, "actions": [{}]}}"#, actions.join(","));
    let (status, body) = ctl.call("POST", "/api/v1/switches/0xa1/flows", &huge).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("65535"), "{body}");
    let (status, body) = ctl
        .call(
            "POST",
            "/api/v1/switches/0xa1/flows",
            r#"{"priority": 7, "cookie": 8, "match": {"eth_dst": "00:00:00:00:00:98"},
                "actions": [{"type": "OUTPUT", "port": 2}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_flow(
        &sb,
        &[
            "cookie=0x8",
            "priority=7,dl_dst=00:00:00:00:00:98",
            "actions=output:2",
        ],
    )
    .await;
    let flows = sb.ofctl(&["dump-flows", "br0"]).expect("dump-flows");
    let priority_6 = flows.lines().any(|l| {
        l.split("priority=")
            .nth(1)
            .is_some_and(|r| r.starts_with("6 ") || r.starts_with("6,"))
    });
    assert!(
        !priority_6,
        "the refused flow must not be installed: {flows}"
    );

    // Broadcast from H1 on p1: a packet-in, flooded to p2 and p3, not back to p1.
    let before = packet_ins(&ctl);
    sb.appctl(&[
        "netdev-dummy/receive",
        "p1",
        &udp_flow(1, H1, "ff:ff:ff:ff:ff:ff"),
    ])
    .expect("inject");
    wait_for(|| (packet_ins(&ctl) > before).then_some(())).await;
    wait_for(|| {
        (has_frame(&pcap("p2"), H1, "ff:ff:ff:ff:ff:ff")
            && has_frame(&pcap("p3"), H1, "ff:ff:ff:ff:ff:ff"))
        .then_some(())
    })
    .await;
    assert!(
        !has_frame(&pcap("p1"), H1, "ff:ff:ff:ff:ff:ff"),
        "flooded back to its ingress port"
    );

    // H2 → H1 from p2: learnt destination, so a flow to p1 and the frame out p1 only.
    sb.appctl(&["netdev-dummy/receive", "p2", &udp_flow(2, H2, H1)])
        .expect("inject");
    let flow = wait_flow(
        &sb,
        &[
            &format!("in_port=2,dl_src={H2},dl_dst={H1}"),
            "actions=output:1",
        ],
    )
    .await;
    assert!(flow.contains("idle_timeout=60"), "{flow}");
    wait_for(|| has_frame(&pcap("p1"), H2, H1).then_some(())).await;
    assert!(
        !has_frame(&pcap("p3"), H2, H1),
        "a known destination is not flooded"
    );

    // The next such frame is forwarded by the datapath without a packet-in.
    let before = packet_ins(&ctl);
    sb.appctl(&["netdev-dummy/receive", "p2", &udp_flow(2, H2, H1)])
        .expect("inject");
    wait_flow(
        &sb,
        &[
            &format!("in_port=2,dl_src={H2},dl_dst={H1}"),
            "n_packets=1,",
        ],
    )
    .await;
    assert_eq!(packet_ins(&ctl), before);

    // H1 moves to p3: the flow towards its old port is deleted (by its cookie).
    sb.appctl(&[
        "netdev-dummy/receive",
        "p3",
        &udp_flow(3, H1, "ff:ff:ff:ff:ff:ff"),
    ])
    .expect("inject");
    wait_for(|| {
        let flows = sb.ofctl(&["dump-flows", "br0"]).ok()?;
        (!flows.contains(&format!("dl_dst={H1}"))).then_some(())
    })
    .await;

    // A learnt flow (H1, now on p3, to H2 on p2), then the switch moves to a fresh controller:
    // the new l2switch removes the flows of the old one (its cookie tag) and keeps others'.
    sb.appctl(&["netdev-dummy/receive", "p3", &udp_flow(3, H1, H2)])
        .expect("inject");
    wait_flow(
        &sb,
        &[
            &format!("in_port=3,dl_src={H1},dl_dst={H2}"),
            "actions=output:2",
        ],
    )
    .await;
    let ctl2 = Controller::start(Config::default()).await;
    sb.vsctl(&["set-controller", "br0", &format!("tcp:{}", ctl2.addr)])
        .expect("set-controller");
    ctl2.wait_switch(DPID).await;
    wait_for(|| {
        let flows = sb.ofctl(&["dump-flows", "br0"]).ok()?;
        (!flows.contains("dl_src=")).then_some(())
    })
    .await;
    wait_flow(&sb, &["cookie=0x7", "priority=100"]).await;
    wait_flow(&sb, &["priority=0", "actions=CONTROLLER:65535"]).await;
    wait_for(|| ctl.switches.get(DPID).is_none().then_some(())).await;
    ctl.stop().await;
    let ctl = ctl2;

    // DELETE /flows empties the table.
    let (status, body) = ctl.call("DELETE", "/api/v1/switches/0xa1/flows", "").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let flows = sb.ofctl(&["dump-flows", "br0"]).expect("dump-flows");
    assert!(
        !flows.contains("priority"),
        "flows left after DELETE:\n{flows}"
    );

    // The switch leaves: unregistered, SwitchDown delivered.
    sb.vsctl(&["del-controller", "br0"])
        .expect("del-controller");
    wait_for(|| ctl.switches.get(DPID).is_none().then_some(())).await;
    wait_for(|| {
        ctl.events()
            .iter()
            .any(|e| matches!(e, Event::SwitchDown { dpid: DPID }))
            .then_some(())
    })
    .await;
    ctl.stop().await;
}

/// A bridge `br0` on `sb` with datapath id `dpid`, no ports, pointed at `ctl`.
fn bridge(sb: &Sandbox, ctl: &Controller, dpid: u64) {
    sb.vsctl(&[
        "add-br",
        "br0",
        "--",
        "set",
        "bridge",
        "br0",
        "fail-mode=secure",
        "protocols=OpenFlow13",
        &format!("other-config:datapath-id={dpid:016x}"),
        "other-config:disable-in-band=true",
    ])
    .expect("bridge");
    sb.vsctl(&["set-controller", "br0", &format!("tcp:{}", ctl.addr)])
        .expect("set-controller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovs_multipart_port_status_and_flow_removed() {
    const DP: u64 = 0xb2;
    let ctl = Controller::start(Config::default()).await;
    let sb = Sandbox::start("ctl2").expect("an OVS sandbox (install openvswitch-switch)");
    bridge(&sb, &ctl, DP);
    ctl.wait_switch(DP).await;
    wait_flow(&sb, &["priority=0", "actions=CONTROLLER:65535"]).await;

    // 3000 flows: OVS splits the FLOW_STATS reply into several parts (64 KiB each at most).
    let n = 3000;
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "priority=10,dl_src=02:00:00:00:{:02x}:{:02x},actions=drop\n",
                i / 256,
                i % 256
            )
        })
        .collect();
    let file = sb.dir().join("flows.txt");
    std::fs::write(&file, lines).expect("flows file");
    sb.ofctl(&["add-flows", "br0", &file.to_string_lossy()])
        .expect("add-flows");
    // The default page holds the first 1000; a larger page holds them all.
    let (status, body) = ctl.call("GET", "/api/v1/switches/0xb2/flows", "").await;
    assert_eq!(status, StatusCode::OK);
    let flows: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(flows.as_array().map_or(0, Vec::len), 1000);
    let (status, body) = ctl
        .call("GET", "/api/v1/switches/0xb2/flows?limit=10000", "")
        .await;
    assert_eq!(status, StatusCode::OK);
    let flows: serde_json::Value = serde_json::from_str(&body).expect("json");
    let count = flows.as_array().map_or(0, Vec::len);
    assert_eq!(
        count,
        n + 1,
        "every flow of every multipart part (plus table-miss)"
    );
    // And it really was several parts, reassembled by the session.
    let request = ofproto::Message::MultipartRequest(ofproto::MultipartRequest {
        flags: 0,
        body: ofproto::MultipartRequestBody::Flow(ofproto::FlowStatsRequest {
            table_id: ofproto::consts::OFPTT_ALL,
            out_port: ofproto::port_no::ANY,
            out_group: ofproto::consts::OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            match_: ofproto::Match::new(),
        }),
    });
    let sw = ctl.switches.get(DP).expect("still connected");
    let Ok(Reply::Multipart(parts)) = sw.request(request).await else {
        panic!("flow stats failed")
    };
    assert!(parts.len() > 1, "one part only");
    assert!(parts[..parts.len() - 1].iter().all(|p| p.flags & 1 == 1));
    assert_eq!(parts[parts.len() - 1].flags & 1, 0);

    // PORT_STATUS: a port added after the handshake reaches the app and the port table.
    sb.vsctl(&[
        "add-port",
        "br0",
        "late",
        "--",
        "set",
        "interface",
        "late",
        "ofport_request=9",
    ])
    .expect("add-port");
    wait_for(|| {
        ctl.events()
            .iter()
            .any(|e| matches!(e, Event::PortStatus { dpid: DP, status } if status.desc.name == "late"))
            .then_some(())
    })
    .await;
    assert!(sw
        .ports()
        .await
        .expect("ports")
        .iter()
        .any(|p| p.port_no == 9));

    // FLOW_REMOVED: a flow with send_flow_rem and a 1 s hard timeout expires.
    let (status, body) = ctl.call("POST",
        "/api/v1/switches/0xb2/flows",
        r#"{"priority": 50, "cookie": 4242, "hard_timeout": 1, "flags": 1, "match": {"in_port": 9}, "actions": []}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_for(|| {
        ctl.events()
            .iter()
            .any(
                |e| matches!(e, Event::FlowRemoved { dpid: DP, removed } if removed.cookie == 4242),
            )
            .then_some(())
    })
    .await;
    ctl.stop().await;
}
