//! `/switches` through `Router::oneshot`, against a scripted switch behind a real handle.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ofproto::error::FlowModFailedCode;
use ofproto::{ErrorMsg, ErrorType, MultipartReply, MultipartReplyBody};
use tokio::sync::{mpsc, Mutex};
use tower::ServiceExt;

use super::*;
use crate::openflow::registry::Command;
use crate::openflow::test_util::{features, port};

const DPID: u64 = 0x0000_0000_0000_0abc;

fn stats(priority: u16) -> FlowStats {
    FlowStats {
        table_id: 0,
        duration_sec: 5,
        duration_nsec: 6,
        priority,
        idle_timeout: 60,
        hard_timeout: 0,
        flags: 0,
        cookie: 0x6c32,
        packet_count: 7,
        byte_count: 8,
        match_: Match::new()
            .with(OxmField::InPort(1))
            .with(OxmField::EthDst {
                value: [0, 0, 0, 0, 0, 2],
                mask: None,
            }),
        instructions: vec![Instruction::ApplyActions(vec![Action::Output {
            port: 2,
            max_len: 0,
        }])],
    }
}

/// A switch that answers like OVS: flow stats in two parts, table 200 refused, the rest applied.
/// Returns the registry and the FLOW_MODs the switch received.
fn fake_switch() -> (Switches, Arc<Mutex<Vec<FlowMod>>>) {
    let switches = Switches::new();
    let (tx, mut rx) = mpsc::channel(16);
    let features = features(DPID);
    let handle = SwitchHandle::new(
        1,
        "127.0.0.1:40000".parse().expect("literal address"),
        features,
        tx,
        Arc::default(),
    );
    assert!(switches.register(handle).is_none());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Command::Ports(tx) => {
                    let _ = tx.send(vec![port(1), port(2), port(port_no::LOCAL)]);
                }
                Command::Request(Message::MultipartRequest(req), tx) => {
                    if let MultipartRequestBody::Flow(filter) = &req.body {
                        log.lock().await.push(FlowMod {
                            cookie: filter.cookie,
                            cookie_mask: filter.cookie_mask,
                            table_id: filter.table_id,
                            out_port: filter.out_port,
                            ..FlowMod::default()
                        });
                    }
                    let part = |p, more| MultipartReply {
                        flags: more,
                        body: MultipartReplyBody::Flow(vec![stats(p)]),
                    };
                    let _ = tx.send(Ok(Reply::Multipart(vec![part(10, 1), part(0, 0)])));
                }
                Command::Request(Message::FlowMod(fm), tx) => {
                    let refused = fm.table_id == 200;
                    log.lock().await.push(fm);
                    let _ = tx.send(if refused {
                        Err(RequestError::Switch(ErrorMsg {
                            kind: ErrorType::FlowModFailed(FlowModFailedCode::BadTableId),
                            data: Bytes::new(),
                        }))
                    } else {
                        Ok(Reply::Done)
                    });
                }
                Command::Request(_, tx) => {
                    let _ = tx.send(Err(RequestError::Timeout));
                }
                Command::Send(_) | Command::Mark(_) | Command::AppBarrier => {}
            }
        }
    });
    (switches, seen)
}

async fn call(switches: &Switches, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, value) = call_with_headers(switches, method, uri, body).await;
    (status, value)
}

async fn call_with_headers(
    switches: &Switches,
    method: &str,
    uri: &str,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let app = crate::api::app(vec![routes(switches.clone())]);
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid request");
    let resp = app.oneshot(req).await.expect("infallible router");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("every answer is JSON")
    };
    (status, headers, value)
}

#[tokio::test]
async fn health_and_switch_list() {
    let (switches, _) = fake_switch();
    let (s, v) = call(&switches, "GET", "/api/v1/health", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"status": "ok", "switches": 1}));
    let (s, v) = call(&switches, "GET", "/api/v1/switches", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["dpid"], json!(DPID));
    assert_eq!(v[0]["dpid_hex"], json!("0000000000000abc"));
    assert_eq!(v[0]["address"], json!("127.0.0.1:40000"));
    assert_eq!(v[0]["n_tables"], json!(254));
    assert_eq!(
        v[0]["counters"],
        json!({"msgs_in": 0, "msgs_out": 0, "packet_ins": 0, "switch_errors": 0, "ports_refused": 0, "resyncs": 0})
    );
}

#[tokio::test]
async fn dpid_spellings_and_errors() {
    let (switches, _) = fake_switch();
    for spelling in ["2748", "0xabc", "0000000000000abc"] {
        let (s, v) = call(
            &switches,
            "GET",
            &format!("/api/v1/switches/{spelling}"),
            "",
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{spelling}");
        assert_eq!(v["dpid"], json!(DPID));
    }
    let (s, v) = call(&switches, "GET", "/api/v1/switches/7", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], json!("not_found"));
    let (s, v) = call(&switches, "GET", "/api/v1/switches/zz/flows", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["field"], json!("dpid"));
}

#[tokio::test]
async fn ports_are_listed_with_reserved_names() {
    let (switches, _) = fake_switch();
    let (s, v) = call(&switches, "GET", "/api/v1/switches/0xabc/ports", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().map(Vec::len), Some(3));
    assert_eq!(v[0]["port_no"], json!(1));
    assert_eq!(v[0]["hw_addr"], json!("02:00:00:00:00:01"));
    assert_eq!(v[2]["port_no"], json!("LOCAL"));
}

#[tokio::test]
async fn flows_come_from_every_multipart_part() {
    let (switches, _) = fake_switch();
    let (s, v) = call(&switches, "GET", "/api/v1/switches/0xabc/flows", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!([
            {"priority": 10, "cookie": 0x6c32, "table_id": 0, "duration_sec": 5, "duration_nsec": 6,
             "idle_timeout": 60, "hard_timeout": 0, "flags": 0, "packet_count": 7, "byte_count": 8,
             "match": {"in_port": 1, "eth_dst": "00:00:00:00:00:02"}, "actions": ["OUTPUT:2"],
             "ofctl": "cookie=0x6c32, duration=5.000s, table=0, n_packets=7, n_bytes=8, idle_timeout=60, priority=10,in_port=1,dl_dst=00:00:00:00:00:02 actions=output:2"},
            {"priority": 0, "cookie": 0x6c32, "table_id": 0, "duration_sec": 5, "duration_nsec": 6,
             "idle_timeout": 60, "hard_timeout": 0, "flags": 0, "packet_count": 7, "byte_count": 8,
             "match": {"in_port": 1, "eth_dst": "00:00:00:00:00:02"}, "actions": ["OUTPUT:2"],
             "ofctl": "cookie=0x6c32, duration=5.000s, table=0, n_packets=7, n_bytes=8, idle_timeout=60, priority=0,in_port=1,dl_dst=00:00:00:00:00:02 actions=output:2"}
        ])
    );
}

#[tokio::test]
async fn flow_filters_reach_the_request() {
    let (switches, seen) = fake_switch();
    let uri = "/api/v1/switches/0xabc/flows?table_id=3&cookie=0x6c32&cookie_mask=0xffff&out_port=CONTROLLER";
    let (s, _) = call(&switches, "GET", uri, "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&switches, "GET", "/api/v1/switches/0xabc/flows", "").await;
    assert_eq!(s, StatusCode::OK);
    let seen = seen.lock().await;
    let f = &seen[0];
    assert_eq!(
        (f.table_id, f.cookie, f.cookie_mask, f.out_port),
        (3, 0x6c32, 0xffff, port_no::CONTROLLER)
    );
    let f = &seen[1];
    assert_eq!(
        (f.table_id, f.cookie, f.cookie_mask, f.out_port),
        (OFPTT_ALL, 0, 0, port_no::ANY)
    );
    drop(seen);
    for (q, field) in [
        ("table_id=300", "table_id"),
        ("colour=red", "colour"),
        ("out_port=x", "out_port"),
    ] {
        let (s, v) = call(
            &switches,
            "GET",
            &format!("/api/v1/switches/0xabc/flows?{q}"),
            "",
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert_eq!(v["error"]["field"], json!(field));
    }
}

#[tokio::test]
async fn post_flow_builds_the_flow_mod() {
    let (switches, seen) = fake_switch();
    let body = r#"{"priority": 100, "cookie": "0x10", "idle_timeout": 30,
        "match": {"in_port": 1, "dl_type": "0x0800", "nw_proto": 17, "tp_dst": 53,
                  "ipv4_dst": "10.0.0.0/24", "eth_src": "00:00:00:00:00:01"},
        "actions": [{"type": "SET_FIELD", "field": "eth_dst", "value": "00:00:00:00:00:02"},
                    {"type": "OUTPUT", "port": 2}, {"type": "GOTO_TABLE", "table_id": 1}]}"#;
    let (s, v) = call(&switches, "POST", "/api/v1/switches/0xabc/flows", body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let seen = seen.lock().await;
    let fm = &seen[0];
    assert_eq!(fm.command, FlowModCommand::Add);
    assert_eq!((fm.priority, fm.cookie, fm.idle_timeout), (100, 0x10, 30));
    assert_eq!(fm.table_id, 0);
    assert!(fm.match_.fields.contains(&OxmField::UdpDst(53)));
    assert!(fm.match_.fields.contains(&OxmField::Ipv4Dst {
        value: Ipv4Addr::new(10, 0, 0, 0),
        mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
    }));
    assert_eq!(
        fm.instructions,
        vec![
            Instruction::ApplyActions(vec![
                Action::SetField(OxmField::EthDst {
                    value: [0, 0, 0, 0, 0, 2],
                    mask: None
                }),
                Action::Output {
                    port: 2,
                    max_len: ofproto::consts::OFPCML_NO_BUFFER
                },
            ]),
            Instruction::GotoTable(1),
        ]
    );
}

#[tokio::test]
async fn delete_commands_default_to_every_table() {
    let (switches, seen) = fake_switch();
    let (s, _) = call(
        &switches,
        "POST",
        "/api/v1/switches/0xabc/flows",
        r#"{"command": "delete", "cookie": 1, "cookie_mask": 1}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(&switches, "DELETE", "/api/v1/switches/0xabc/flows", "").await;
    assert_eq!((s, v), (StatusCode::NO_CONTENT, Value::Null));
    let seen = seen.lock().await;
    assert_eq!(seen.len(), 2);
    for fm in seen.iter() {
        assert_eq!(
            (fm.command, fm.table_id),
            (FlowModCommand::Delete, OFPTT_ALL)
        );
    }
    assert_eq!((seen[0].cookie, seen[0].cookie_mask), (1, 1));
}

#[tokio::test]
async fn switch_errors_reach_the_client() {
    let (switches, _) = fake_switch();
    let (s, v) = call(
        &switches,
        "POST",
        "/api/v1/switches/0xabc/flows",
        r#"{"table_id": 200, "actions": []}"#,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], json!("switch_error"));
}

#[tokio::test]
async fn bad_bodies_get_4xx_naming_the_field() {
    let (switches, seen) = fake_switch();
    let cases: &[(&str, StatusCode, Option<&str>)] = &[
        ("{not json", StatusCode::BAD_REQUEST, None),
        ("[1,2]", StatusCode::BAD_REQUEST, None),
        (
            r#"{"command": "explode"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("command"),
        ),
        (
            r#"{"priority": 70000}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("priority"),
        ),
        (
            r#"{"priority": -1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("priority"),
        ),
        (
            r#"{"bogus": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("bogus"),
        ),
        (
            r#"{"table_id": 255}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("table_id"),
        ),
        (
            r#"{"match": []}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("match"),
        ),
        (
            r#"{"match": {"warp": 9}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("match.warp"),
        ),
        (
            r#"{"match": {"eth_dst": "00:11"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("match.eth_dst"),
        ),
        (
            r#"{"match": {"ipv4_src": "10.0.0.1/33"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("match.ipv4_src"),
        ),
        (
            r#"{"match": {"tp_dst": 80}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("match.tp_dst"),
        ),
        (
            r#"{"match": {"in_port": 4294967041}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("match.in_port"),
        ),
        (
            r#"{"actions": {}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("actions"),
        ),
        (
            r#"{"actions": [1]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("actions[0]"),
        ),
        (
            r#"{"actions": [{"type": "TELEPORT"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("actions[0].type"),
        ),
        (
            r#"{"actions": [{"type": "OUTPUT"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("actions[0].port"),
        ),
        (
            r#"{"actions": [{"type": "SET_FIELD", "field": "eth_dst", "value": 3}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("actions[0].value"),
        ),
    ];
    for (body, status, field) in cases {
        let (s, v) = call(&switches, "POST", "/api/v1/switches/0xabc/flows", body).await;
        assert_eq!(s, *status, "{body}: {v}");
        assert_eq!(v["error"]["field"].as_str(), *field, "{body}: {v}");
    }
    assert!(
        seen.lock().await.is_empty(),
        "nothing invalid reached the switch"
    );
}

#[tokio::test]
async fn a_disconnected_switch_is_unavailable() {
    let switches = Switches::new();
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let features = features(9);
    let peer = "127.0.0.1:1".parse().expect("literal address");
    switches.register(SwitchHandle::new(1, peer, features, tx, Arc::default()));
    let (s, v) = call(&switches, "GET", "/api/v1/switches/9/flows", "").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"]["code"], json!("unavailable"));
}

#[tokio::test]
async fn ports_and_flows_are_paginated() {
    let (switches, _) = fake_switch();
    let header = |h: &axum::http::HeaderMap, name: &str| {
        h.get(name).map(|v| v.to_str().expect("ASCII").to_string())
    };
    let uri = "/api/v1/switches/0xabc/ports?limit=2";
    let (s, h, v) = call_with_headers(&switches, "GET", uri, "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(header(&h, "x-total-count").as_deref(), Some("3"));
    assert_eq!(
        header(&h, "link").as_deref(),
        Some("</api/v1/switches/0xabc/ports?offset=2&limit=2>; rel=\"next\"")
    );
    let uri = "/api/v1/switches/0xabc/ports?offset=2&limit=2";
    let (s, h, v) = call_with_headers(&switches, "GET", uri, "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!([v[0].clone()]));
    assert_eq!(v[0]["port_no"], json!("LOCAL"));
    assert_eq!(header(&h, "link"), None);
    // The default page holds everything here.
    let (_, h, v) = call_with_headers(&switches, "GET", "/api/v1/switches/0xabc/ports", "").await;
    assert_eq!(v.as_array().map(Vec::len), Some(3));
    assert_eq!(header(&h, "x-total-count").as_deref(), Some("3"));

    // Flows: the filters are kept in the next link.
    let uri = "/api/v1/switches/0xabc/flows?table_id=0&limit=1";
    let (s, h, v) = call_with_headers(&switches, "GET", uri, "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["priority"], json!(10));
    assert_eq!(header(&h, "x-total-count").as_deref(), Some("2"));
    assert_eq!(
        header(&h, "link").as_deref(),
        Some("</api/v1/switches/0xabc/flows?table_id=0&offset=1&limit=1>; rel=\"next\"")
    );
    let uri = "/api/v1/switches/0xabc/flows?table_id=0&offset=1&limit=1";
    let (_, _, v) = call_with_headers(&switches, "GET", uri, "").await;
    assert_eq!(v[0]["priority"], json!(0));
    let (s, _, v) = call_with_headers(
        &switches,
        "GET",
        "/api/v1/switches/0xabc/flows?offset=9",
        "",
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));

    // Bad pages name the field.
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=100001", "limit"),
        ("limit=x", "limit"),
        ("offset=-1", "offset"),
    ] {
        for what in ["ports", "flows"] {
            let uri = format!("/api/v1/switches/0xabc/{what}?{q}");
            let (s, v) = call(&switches, "GET", &uri, "").await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
            assert_eq!(v["error"]["field"], json!(field), "{uri}");
        }
    }
}

#[test]
fn every_match_field_as_get_shows_it_can_be_posted_back() {
    let examples = OxmField::examples();
    // Every typed field of the codec's table, exact and (where maskable) masked.
    assert!(examples.len() > 50, "{}", examples.len());
    for f in examples {
        let (key, value) = oxm_to_json(&f);
        assert_eq!(key, f.name(), "{f:?}");
        assert!(
            !value.as_str().is_some_and(|s| s.contains('=')),
            "{key}: {value} is ovs-ofctl text, not a value"
        );
        assert_eq!(
            oxm_from_json(&key, &value, None),
            Ok(Some(f.clone())),
            "{key}: {value}"
        );
    }
}

#[tokio::test]
async fn an_ipv6_flow_reads_back_as_it_was_written() {
    let (switches, seen) = fake_switch();
    let body = r#"{"match": {"eth_type": 34525, "ipv6_src": "fe80::1", "ipv6_dst": "2001:db8::/32"}, "actions": []}"#;
    let (s, v) = call(&switches, "POST", "/api/v1/switches/0xabc/flows", body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fm = seen.lock().await.pop().expect("a FLOW_MOD");
    let json = match_to_json(&fm.match_);
    assert_eq!(
        Value::Object(json),
        json!({"eth_type": 34525, "ipv6_src": "fe80::1", "ipv6_dst": "2001:db8::/ffff:ffff::"})
    );
}
