//! The topology API through `Router::oneshot` (no socket): CRUD per resource, references, every
//! error class, the OpenAPI table against the router, and random call sequences that must never
//! break the model's invariants.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use topology::{MemStore, Network};

fn app() -> axum::Router {
    let net = Network::open(Arc::new(MemStore::new())).unwrap();
    crate::api::app(vec![
        super::routes(net.clone()),
        crate::api::trace::routes(
            net,
            super::Runtime::default(),
            crate::openflow::Switches::new(),
        ),
    ])
}

struct Resp {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

async fn call_raw(
    app: &axum::Router,
    method: Method,
    uri: &str,
    body: Option<&str>,
    if_match: Option<&str>,
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/api/v1{uri}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(m) = if_match {
        req = req.header(header::IF_MATCH, m);
    }
    let req = req
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let etag = resp
        .headers()
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!("{uri}: non-JSON body {:?}", String::from_utf8_lossy(&bytes))
        })
    };
    if !status.is_success() {
        // Every error has the DESIGN §3 shape.
        assert!(body["error"]["code"].is_string(), "{uri}: {body}");
        assert!(body["error"]["message"].is_string(), "{uri}: {body}");
    }
    Resp { status, etag, body }
}

async fn call(app: &axum::Router, method: Method, uri: &str, body: Option<Value>) -> Resp {
    let s = body.map(|b| b.to_string());
    call_raw(app, method, uri, s.as_deref(), None).await
}

async fn ok(app: &axum::Router, method: Method, uri: &str, body: Option<Value>) -> Value {
    let r = call(app, method.clone(), uri, body).await;
    assert!(
        r.status.is_success(),
        "{method} {uri}: {} {}",
        r.status,
        r.body
    );
    r.body
}

fn err(r: &Resp) -> (u16, &str, Option<&str>) {
    (
        r.status.as_u16(),
        r.body["error"]["code"].as_str().unwrap_or_default(),
        r.body["error"]["field"].as_str(),
    )
}

/// Asserts that a call fails with (status, code, field).
async fn expect(
    app: &axum::Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
    want: (u16, &str, Option<&str>),
) {
    let r = call(app, method.clone(), uri, body).await;
    assert_eq!(err(&r), want, "{method} {uri}: {}", r.body);
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn ports_show_their_live_binding_and_unbound_interfaces_are_listed() {
    use apps::bindings::{HostPorts, Interface};
    let net = Network::open(Arc::new(MemStore::new())).unwrap();
    let (_views, hosts_rx) = tokio::sync::watch::channel(crate::provision::HostViews::new());
    let (bindings, rx) = tokio::sync::watch::channel(Arc::new(apps::Bindings::default()));
    let app = crate::api::app(vec![super::routes_with(
        net.clone(),
        super::Runtime::new(hosts_rx).with_bindings(rx),
    )]);
    let h = id(&ok(&app, Method::POST, "/hosts", Some(json!({"name": "hv1"}))).await);
    let b = id(&ok(&app, Method::POST, "/bridges", Some(json!({"name": "net"}))).await);
    let p1 = id(&ok(
        &app,
        Method::POST,
        &format!("/bridges/{b}/ports"),
        Some(json!({})),
    )
    .await);
    let p2 = id(&ok(
        &app,
        Method::POST,
        &format!("/bridges/{b}/ports"),
        Some(json!({})),
    )
    .await);
    let created = ok(&app, Method::GET, &format!("/ports/{p1}"), None).await;
    assert_eq!(
        (created["up"].clone(), created["ofport"].clone()),
        (json!(false), Value::Null)
    );
    // hv1's br-int has p1's VIF (by iface-id) and an interface naming no port.
    let iface = |name: &str, ofport, iface_id: &str| Interface {
        name: name.into(),
        ofport: Some(ofport),
        iface_id: Some(iface_id.into()),
        seen: 1,
    };
    let host: uuid::Uuid = h.parse().unwrap();
    bindings.send_replace(Arc::new(apps::Bindings::build(
        &net.snapshot(),
        &[HostPorts {
            host,
            interfaces: vec![iface("tap1", 5, &p1), iface("junk", 6, "nope")],
            tunnels: vec![],
        }],
    )));
    let one = ok(&app, Method::GET, &format!("/ports/{p1}"), None).await;
    assert_eq!(one["host_id"], h.as_str());
    assert_eq!(one["interface_name"], "tap1");
    assert_eq!(
        (one["ofport"].clone(), one["up"].clone()),
        (json!(5), json!(true))
    );
    let other = ok(&app, Method::GET, &format!("/ports/{p2}"), None).await;
    assert_eq!(
        (other["up"].clone(), other["host_id"].clone()),
        (json!(false), Value::Null)
    );
    let listed = ok(&app, Method::GET, &format!("/bridges/{b}/ports"), None).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == p1.as_str() && p["up"] == true),
        "{listed}"
    );
    let unbound = ok(&app, Method::GET, "/unbound_interfaces", None).await;
    assert_eq!(
        unbound,
        json!([{"host_id": h, "interface_name": "junk", "ofport": 6, "iface_id": "nope", "reason": "unknown_port"}])
    );
    // Runtime state, never stored: the record has no binding, and a PUT cannot write one.
    let stored = net.snapshot();
    let rec = stored
        .get::<topology::model::Port>(p1.parse().unwrap())
        .unwrap();
    assert_eq!((rec.host_id, rec.ofport, rec.up), (None, None, false));
    ok(
        &app,
        Method::PUT,
        &format!("/ports/{p2}"),
        Some(json!({"ofport": 9, "up": true})),
    )
    .await;
    let rec = net.snapshot();
    let rec = rec
        .get::<topology::model::Port>(p2.parse().unwrap())
        .unwrap();
    assert_eq!((rec.ofport, rec.up), (None, false));
}

/// Explicit bindings keep the stored host and interface and are `up` only while that interface
/// is on br-int with an ofport; a host's unbound interfaces are listed per host, 404 for an
/// unknown host.
#[tokio::test]
async fn explicit_bindings_show_up_only_when_their_interface_is_there() {
    use apps::bindings::{HostPorts, Interface};
    let net = Network::open(Arc::new(MemStore::new())).unwrap();
    let (_views, hosts_rx) = tokio::sync::watch::channel(crate::provision::HostViews::new());
    let (bindings, rx) = tokio::sync::watch::channel(Arc::new(apps::Bindings::default()));
    let app = crate::api::app(vec![super::routes_with(
        net.clone(),
        super::Runtime::new(hosts_rx).with_bindings(rx),
    )]);
    let h1 = id(&ok(&app, Method::POST, "/hosts", Some(json!({"name": "hv1"}))).await);
    let h2 = id(&ok(&app, Method::POST, "/hosts", Some(json!({"name": "hv2"}))).await);
    let b = id(&ok(&app, Method::POST, "/bridges", Some(json!({"name": "net"}))).await);
    let ports = format!("/bridges/{b}/ports");
    let p1 = id(&ok(&app, Method::POST, &ports, Some(json!({}))).await);
    let p2 = id(&ok(&app, Method::POST, &ports, Some(json!({}))).await);
    let iface = |name: &str, ofport: Option<u32>, iface_id: Option<&str>| Interface {
        name: name.into(),
        ofport,
        iface_id: iface_id.map(str::to_owned),
        seen: 1,
    };
    let publish = |hosts: Vec<HostPorts>| {
        bindings.send_replace(Arc::new(apps::Bindings::build(&net.snapshot(), &hosts)));
    };
    let (host1, host2): (uuid::Uuid, uuid::Uuid) = (h1.parse().unwrap(), h2.parse().unwrap());
    // p1 plugs itself on hv1 by iface-id.
    publish(vec![HostPorts {
        host: host1,
        interfaces: vec![iface("tap1", Some(3), Some(&p1))],
        tunnels: vec![],
    }]);
    let shown = ok(&app, Method::GET, &format!("/ports/{p1}"), None).await;
    assert_eq!(
        (shown["host_id"].as_str(), shown["up"].clone()),
        (Some(h1.as_str()), json!(true))
    );

    // Bound explicitly to hv2's tap-x, which hv2 does not have yet: the answer keeps the stored
    // binding even though the bindings still place p1 on hv1, and the port is down.
    let bound = ok(
        &app,
        Method::PUT,
        &format!("/ports/{p1}/binding"),
        Some(json!({"host_id": h2, "interface_name": "tap-x"})),
    )
    .await;
    let want_down = json!([h2, "tap-x", null, false]);
    let state = |p: &Value| json!([p["host_id"], p["interface_name"], p["ofport"], p["up"]]);
    assert_eq!(state(&bound), want_down, "{bound}");
    publish(vec![HostPorts {
        host: host1,
        interfaces: vec![iface("tap1", Some(3), Some(&p1))],
        tunnels: vec![],
    }]);
    let shown = ok(&app, Method::GET, &format!("/ports/{p1}"), None).await;
    assert_eq!(state(&shown), want_down, "{shown}");
    // hv1's tap1 still claims p1, which is bound elsewhere now.
    let on_h1 = ok(
        &app,
        Method::GET,
        &format!("/hosts/{h1}/unbound_interfaces"),
        None,
    )
    .await;
    assert_eq!(
        on_h1,
        json!([{"host_id": h1, "interface_name": "tap1", "ofport": 3, "iface_id": p1,
            "reason": "bound_elsewhere"}])
    );

    // tap-x appears without an ofport: still down. Then with one: up, with its ofport.
    let h2_ifaces = |ofport| HostPorts {
        host: host2,
        interfaces: vec![iface("tap-x", ofport, None), iface("eth9", Some(8), None)],
        tunnels: vec![],
    };
    publish(vec![h2_ifaces(None)]);
    let shown = ok(&app, Method::GET, &format!("/ports/{p1}"), None).await;
    assert_eq!(state(&shown), want_down, "{shown}");
    publish(vec![h2_ifaces(Some(7))]);
    let shown = ok(&app, Method::GET, &format!("/ports/{p1}"), None).await;
    assert_eq!(state(&shown), json!([h2, "tap-x", 7, true]), "{shown}");
    let all = ok(&app, Method::GET, "/ports", None).await;
    let listed: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].clone(), state(p)))
        .collect();
    assert!(
        listed.contains(&(json!(p1), json!([h2, "tap-x", 7, true]))),
        "{all}"
    );
    assert!(
        listed.contains(&(json!(p2), json!([null, null, null, false]))),
        "{all}"
    );
    let on_h2 = ok(
        &app,
        Method::GET,
        &format!("/hosts/{h2}/unbound_interfaces"),
        None,
    )
    .await;
    assert_eq!(
        on_h2,
        json!([{"host_id": h2, "interface_name": "eth9", "ofport": 8, "iface_id": null,
            "reason": "no_iface_id"}])
    );
    let everywhere = ok(&app, Method::GET, "/unbound_interfaces", None).await;
    assert_eq!(everywhere, on_h2);
    ok(
        &app,
        Method::GET,
        &format!("/hosts/{h1}/unbound_interfaces"),
        None,
    )
    .await;
    let unknown = uuid::Uuid::new_v4();
    expect(
        &app,
        Method::GET,
        &format!("/hosts/{unknown}/unbound_interfaces"),
        None,
        (404, "not_found", None),
    )
    .await;

    // A PUT claiming other runtime state is accepted, stores none of it, and shows the live
    // state; the record's revision does not move when only the bindings change.
    let before = call(&app, Method::GET, &format!("/ports/{p1}"), None)
        .await
        .etag;
    let put = ok(
        &app,
        Method::PUT,
        &format!("/ports/{p1}"),
        Some(json!({"ofport": 99, "up": false})),
    )
    .await;
    assert_eq!(state(&put), json!([h2, "tap-x", 7, true]), "{put}");
    let rec = net.snapshot();
    let rec = rec
        .get::<topology::model::Port>(p1.parse().unwrap())
        .unwrap();
    assert_eq!((rec.ofport, rec.up), (None, false));
    let after_put = call(&app, Method::GET, &format!("/ports/{p1}"), None)
        .await
        .etag;
    assert_ne!(before, after_put);
    publish(vec![]);
    let r = call(&app, Method::GET, &format!("/ports/{p1}"), None).await;
    assert_eq!(r.etag, after_put);
    assert_eq!(state(&r.body), want_down, "{}", r.body);
}

#[tokio::test]
async fn hosts_show_the_provisioners_runtime_state_read_only() {
    use crate::provision::{HostView, HostViews};
    let (views, rx) = tokio::sync::watch::channel(HostViews::new());
    let app = crate::api::app(vec![super::routes_with(
        Network::open(Arc::new(MemStore::new())).unwrap(),
        super::Runtime::new(rx),
    )]);
    let created = ok(
        &app,
        Method::POST,
        "/hosts",
        Some(json!({"name": "h1", "tunnel_ip": "192.0.2.1"})),
    )
    .await;
    assert_eq!(created["connected"], false);
    assert_eq!(created["datapath_id"], Value::Null);
    let h = id(&created);
    let host: uuid::Uuid = h.parse().unwrap();
    // The provisioner's OVSDB session comes up and br-int reports its datapath id.
    views.send_modify(|v| {
        v.insert(
            host,
            HostView {
                connected: true,
                datapath_id: Some(0xa1),
                ..HostView::default()
            },
        );
    });
    let one = ok(&app, Method::GET, &format!("/hosts/{h}"), None).await;
    assert_eq!(one["connected"], true);
    assert_eq!(one["datapath_id"], "00000000000000a1");
    let all = ok(&app, Method::GET, "/hosts", None).await;
    assert_eq!(all[0]["connected"], true, "{all}");
    // Clients cannot write them: a PUT claiming otherwise shows the runtime state.
    let put = ok(
        &app,
        Method::PUT,
        &format!("/hosts/{h}"),
        Some(json!({"name": "h1", "tunnel_ip": "192.0.2.1", "connected": false, "datapath_id": "ff"})),
    )
    .await;
    assert_eq!(put["connected"], true);
    assert_eq!(put["datapath_id"], "00000000000000a1");
    // The session drops: shown at once, and the stored record never held any of it.
    views.send_modify(|v| {
        if let Some(view) = v.get_mut(&host) {
            view.connected = false;
        }
    });
    let one = ok(&app, Method::GET, &format!("/hosts/{h}"), None).await;
    assert_eq!(one["connected"], false);
    views.send_modify(HostViews::clear);
    let one = ok(&app, Method::GET, &format!("/hosts/{h}"), None).await;
    assert_eq!(
        (one["connected"].clone(), one["datapath_id"].clone()),
        (json!(false), Value::Null)
    );
}

/// A host's `tunnel_ip` and its memberships' `ip` state one fact: while the host has a
/// `tunnel_ip`, a membership with another address is refused, and so is a `tunnel_ip` its
/// memberships contradict (the two used to disagree silently, and provisioning used the
/// member's).
#[tokio::test]
async fn a_members_ip_agrees_with_its_hosts_tunnel_ip() {
    let app = app();
    let h = id(&ok(
        &app,
        Method::POST,
        "/hosts",
        Some(json!({"name": "h", "tunnel_ip": "192.0.2.1"})),
    )
    .await);
    let free = id(&ok(&app, Method::POST, "/hosts", Some(json!({"name": "f"}))).await);
    let z = id(&ok(
        &app,
        Method::POST,
        "/tunnel_zones",
        Some(json!({"name": "z"})),
    )
    .await);
    let members = format!("/tunnel_zones/{z}/members");
    expect(
        &app,
        Method::POST,
        &members,
        Some(json!({"host_id": h, "ip": "192.0.2.9"})),
        (422, "invalid", Some("ip")),
    )
    .await;
    ok(
        &app,
        Method::POST,
        &members,
        Some(json!({"host_id": h, "ip": "192.0.2.1"})),
    )
    .await;
    // Without a tunnel_ip the member's ip is the fact.
    ok(
        &app,
        Method::POST,
        &members,
        Some(json!({"host_id": free, "ip": "192.0.2.7"})),
    )
    .await;
    expect(
        &app,
        Method::PUT,
        &format!("/hosts/{h}"),
        Some(json!({"name": "h", "tunnel_ip": "192.0.2.2"})),
        (422, "invalid", Some("tunnel_ip")),
    )
    .await;
    ok(
        &app,
        Method::PUT,
        &format!("/hosts/{free}"),
        Some(json!({"name": "f", "tunnel_ip": "192.0.2.7"})),
    )
    .await;
}

/// The REST API accepts exactly the OVSDB targets the provisioner can dial (`ssl:` once used
/// to be accepted (201) and then never provisioned; now the provisioner dials it over TLS).
#[tokio::test]
async fn ovsdb_targets_follow_the_provisioners_grammar() {
    let net = Network::open(Arc::new(MemStore::new())).unwrap();
    let app = crate::api::app(vec![super::routes(net.clone())]);
    for (i, good) in [
        "tcp:192.0.2.1:6640",
        "tcp:[2001:db8::1]:6641",
        "unix:/run/db.sock",
        "ssl:192.0.2.1:6640",
    ]
    .into_iter()
    .enumerate()
    {
        let r = call(
            &app,
            Method::POST,
            "/hosts",
            Some(json!({"name": format!("ok{i}"), "ovsdb": good})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{good}: {}", r.body);
        let desired = crate::provision::from_topology::desired_state(&net.snapshot());
        assert!(
            desired.hosts.iter().any(|h| h.name == format!("ok{i}")),
            "{good}"
        );
    }
    for bad in [
        "ssl:192.0.2.1",
        "tcp:192.0.2.1",
        "tcp:host.example:6640",
        "tcp:192.0.2.1:0",
        "unix:",
        "ptcp:6640",
    ] {
        let r = call(
            &app,
            Method::POST,
            "/hosts",
            Some(json!({"name": "x", "ovsdb": bad})),
        )
        .await;
        assert_eq!(err(&r), (422, "invalid", Some("ovsdb")), "{bad}");
    }
}

#[tokio::test]
async fn hosts_crud_and_error_classes() {
    let app = app();
    let r = call(
        &app,
        Method::POST,
        "/hosts",
        Some(json!({"name": "h1", "tunnel_ip": "192.0.2.1", "ovsdb": "tcp:192.0.2.1:6640"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["datapath_type"], "system");
    assert_eq!(r.body["connected"], false);
    let h = id(&r.body);
    let etag = r.etag.unwrap();
    assert_eq!(
        ok(&app, Method::GET, "/hosts", None)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let got = call(&app, Method::GET, &format!("/hosts/{h}"), None).await;
    assert_eq!(got.body["name"], "h1");
    assert_eq!(got.etag.as_deref(), Some(etag.as_str()));
    // 400: malformed JSON, and a path segment that is not an id.
    let r = call_raw(&app, Method::POST, "/hosts", Some("{\"name\": "), None).await;
    assert_eq!(err(&r), (400, "bad_request", None));
    let r = call_raw(
        &app,
        Method::POST,
        "/hosts",
        Some(r#"{"name": "x"} trailing"#),
        None,
    )
    .await;
    assert_eq!(err(&r).0, 400);
    let r = call(&app, Method::GET, "/hosts/not-a-uuid", None).await;
    assert_eq!(err(&r).0, 400);
    // 422: wrong type, unparsable value, invalid value — each naming the field.
    let r = call(&app, Method::POST, "/hosts", Some(json!({"name": 5}))).await;
    assert_eq!(err(&r), (422, "invalid", Some("name")));
    let r = call(
        &app,
        Method::POST,
        "/hosts",
        Some(json!({"name": "x", "tunnel_ip": "300.1.1.1"})),
    )
    .await;
    assert_eq!(err(&r), (422, "invalid", Some("tunnel_ip")));
    let r = call(
        &app,
        Method::POST,
        "/hosts",
        Some(json!({"name": "x", "ovsdb": "http://x"})),
    )
    .await;
    assert_eq!(err(&r), (422, "invalid", Some("ovsdb")));
    let r = call(
        &app,
        Method::POST,
        "/hosts",
        Some(json!({"name": "x", "datapath_type": "dpdk"})),
    )
    .await;
    assert_eq!(err(&r), (422, "invalid", Some("datapath_type")));
    // 404.
    let unknown = uuid::Uuid::new_v4();
    let r = call(&app, Method::GET, &format!("/hosts/{unknown}"), None).await;
    assert_eq!(err(&r), (404, "not_found", None));
    let r = call(
        &app,
        Method::PUT,
        &format!("/hosts/{unknown}"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(err(&r).0, 404);
    // 409: duplicate id.
    let r = call(
        &app,
        Method::POST,
        "/hosts",
        Some(json!({"id": h, "name": "again"})),
    )
    .await;
    assert_eq!(err(&r), (409, "conflict", Some("id")));
    // PUT with If-Match: the right ETag works, a stale one is 412, junk is 400.
    let r = call_raw(
        &app,
        Method::PUT,
        &format!("/hosts/{h}"),
        Some(r#"{"name": "h1b"}"#),
        Some(&etag),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "h1b");
    let r = call_raw(
        &app,
        Method::PUT,
        &format!("/hosts/{h}"),
        Some(r#"{"name": "h1c"}"#),
        Some(&etag),
    )
    .await;
    assert_eq!(err(&r), (412, "precondition_failed", None));
    let r = call_raw(
        &app,
        Method::DELETE,
        &format!("/hosts/{h}"),
        None,
        Some("bogus"),
    )
    .await;
    assert_eq!(err(&r).0, 400);
    // An id in the body must match the path.
    let r = call(
        &app,
        Method::PUT,
        &format!("/hosts/{h}"),
        Some(json!({"id": unknown, "name": "x"})),
    )
    .await;
    assert_eq!(err(&r), (422, "invalid", Some("id")));
    assert_eq!(
        call(&app, Method::DELETE, &format!("/hosts/{h}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        err(&call(&app, Method::DELETE, &format!("/hosts/{h}"), None).await).0,
        404
    );
}

#[tokio::test]
async fn bridges_routers_ports_links_bindings() {
    let app = app();
    let b = id(&ok(&app, Method::POST, "/bridges", Some(json!({"name": "b"}))).await);
    let r = id(&ok(
        &app,
        Method::POST,
        "/routers",
        Some(json!({"name": "r", "tenant_id": "t"})),
    )
    .await);
    assert_eq!(
        ok(&app, Method::GET, &format!("/routers/{r}"), None).await["admin_state_up"],
        true
    );
    let bp = ok(
        &app,
        Method::POST,
        &format!("/bridges/{b}/ports"),
        Some(json!({})),
    )
    .await;
    assert_eq!(bp["device_id"], b.as_str());
    assert!(bp["tunnel_key"].as_u64().unwrap() > 0);
    let bp = id(&bp);
    let rp = ok(
        &app,
        Method::POST,
        &format!("/routers/{r}/ports"),
        Some(json!({"address": "10.0.0.1/24"})),
    )
    .await;
    assert!(rp["mac"].as_str().unwrap().starts_with("02:"));
    let rp = id(&rp);
    // Ports are listed per device and globally; a bridge id is not a router.
    assert_eq!(
        ok(&app, Method::GET, &format!("/bridges/{b}/ports"), None)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ok(&app, Method::GET, "/ports", None)
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        err(&call(&app, Method::GET, &format!("/routers/{b}/ports"), None).await).0,
        404
    );
    assert_eq!(
        err(&call(
            &app,
            Method::POST,
            &format!("/routers/{b}/ports"),
            Some(json!({"address": "10.1.0.1/24"}))
        )
        .await)
        .0,
        404
    );
    // 422 on values, 409 on overlaps.
    expect(
        &app,
        Method::POST,
        &format!("/routers/{r}/ports"),
        Some(json!({"address": "10.0.0.9/99"})),
        (422, "invalid", Some("address")),
    )
    .await;
    expect(
        &app,
        Method::POST,
        &format!("/routers/{r}/ports"),
        Some(json!({"address": "10.0.0.9/16"})),
        (409, "conflict", Some("address")),
    )
    .await;
    expect(
        &app,
        Method::POST,
        &format!("/routers/{r}/ports"),
        Some(json!({"address": "10.2.0.1/24", "mac": "zz"})),
        (422, "invalid", Some("mac")),
    )
    .await;
    // Link, and the link shows on both ends.
    let l = ok(
        &app,
        Method::POST,
        &format!("/ports/{rp}/link"),
        Some(json!({"peer_id": bp})),
    )
    .await;
    assert_eq!(l["peer_id"], bp.as_str());
    assert_eq!(
        ok(&app, Method::GET, &format!("/ports/{bp}"), None).await["peer_id"],
        rp.as_str()
    );
    expect(
        &app,
        Method::POST,
        &format!("/ports/{rp}/link"),
        Some(json!({"peer_id": uuid::Uuid::new_v4()})),
        (422, "invalid", Some("peer_id")),
    )
    .await;
    expect(
        &app,
        Method::POST,
        &format!("/ports/{rp}/link"),
        Some(json!({})),
        (422, "invalid", None),
    )
    .await;
    // Deleting referenced things: 409 naming the referrer.
    let e = call(&app, Method::DELETE, &format!("/ports/{bp}"), None).await;
    assert_eq!(err(&e).0, 409);
    assert!(e.body["error"]["message"].as_str().unwrap().contains(&rp));
    let e = call(&app, Method::DELETE, &format!("/bridges/{b}"), None).await;
    assert_eq!(err(&e).0, 409);
    assert!(e.body["error"]["message"].as_str().unwrap().contains(&bp));
    // Binding: linked ports cannot be bound.
    let h = id(&ok(&app, Method::POST, "/hosts", Some(json!({"name": "h"}))).await);
    let e = call(
        &app,
        Method::PUT,
        &format!("/ports/{bp}/binding"),
        Some(json!({"host_id": h, "interface_name": "tap0"})),
    )
    .await;
    assert_eq!(err(&e).0, 409);
    assert_eq!(
        call(&app, Method::DELETE, &format!("/ports/{bp}/link"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let p = ok(
        &app,
        Method::PUT,
        &format!("/ports/{bp}/binding"),
        Some(json!({"host_id": h, "interface_name": "tap0"})),
    )
    .await;
    assert_eq!(p["interface_name"], "tap0");
    assert_eq!(
        ok(&app, Method::GET, &format!("/ports/{bp}/binding"), None).await["host_id"],
        h.as_str()
    );
    let e = call(&app, Method::DELETE, &format!("/hosts/{h}"), None).await;
    assert_eq!(err(&e).0, 409);
    // A PUT of the port keeps device, key and binding.
    let before = ok(&app, Method::GET, &format!("/ports/{bp}"), None).await;
    let after = ok(
        &app,
        Method::PUT,
        &format!("/ports/{bp}"),
        Some(json!({"admin_state_up": false})),
    )
    .await;
    assert_eq!(after["tunnel_key"], before["tunnel_key"]);
    assert_eq!(after["host_id"], before["host_id"]);
    assert_eq!(after["admin_state_up"], false);
    assert_eq!(
        call(&app, Method::DELETE, &format!("/ports/{bp}/binding"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        err(&call(&app, Method::GET, &format!("/ports/{bp}/binding"), None).await).0,
        404
    );
    for p in [&bp, &rp] {
        assert_eq!(
            call(&app, Method::DELETE, &format!("/ports/{p}"), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        call(&app, Method::DELETE, &format!("/bridges/{b}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, Method::DELETE, &format!("/routers/{r}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn routes_crud_and_checks() {
    let app = app();
    let r = id(&ok(&app, Method::POST, "/routers", Some(json!({"name": "r"}))).await);
    let rp = id(&ok(
        &app,
        Method::POST,
        &format!("/routers/{r}/ports"),
        Some(json!({"address": "10.0.0.1/24"})),
    )
    .await);
    let route = ok(
        &app,
        Method::POST,
        &format!("/routers/{r}/routes"),
        Some(json!({"dst": "0.0.0.0/0", "next_hop_port": rp, "next_hop_gateway": "10.0.0.254"})),
    )
    .await;
    assert_eq!(route["src"], "0.0.0.0/0");
    assert_eq!(route["type"], "normal");
    assert_eq!(route["weight"], 100);
    let rt = id(&route);
    assert_eq!(
        ok(&app, Method::GET, &format!("/routers/{r}/routes"), None)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    expect(
        &app,
        Method::POST,
        &format!("/routers/{r}/routes"),
        Some(json!({"dst": "10.9.0.0/16"})),
        (422, "invalid", Some("next_hop_port")),
    )
    .await;
    expect(
        &app,
        Method::POST,
        &format!("/routers/{r}/routes"),
        Some(json!({"dst": "10.9.0.0/16", "type": "teleport"})),
        (422, "invalid", Some("type")),
    )
    .await;
    let up = ok(
        &app,
        Method::PUT,
        &format!("/routes/{rt}"),
        Some(json!({"dst": "10.8.0.0/16", "type": "blackhole"})),
    )
    .await;
    assert_eq!(up["router_id"], r.as_str());
    assert_eq!(
        call(&app, Method::DELETE, &format!("/routes/{rt}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        err(&call(&app, Method::GET, &format!("/routes/{rt}"), None).await).0,
        404
    );
}

#[tokio::test]
async fn chains_rules_positions_and_references() {
    let app = app();
    let a = id(&ok(&app, Method::POST, "/chains", Some(json!({"name": "a"}))).await);
    let b = id(&ok(&app, Method::POST, "/chains", Some(json!({"name": "b"}))).await);
    let r1 = id(&ok(
        &app,
        Method::POST,
        &format!("/chains/{a}/rules"),
        Some(json!({"action": "accept", "nw_proto": 6, "tp_dst": {"start": 22, "end": 22}})),
    )
    .await);
    let r0 = ok(
        &app,
        Method::POST,
        &format!("/chains/{a}/rules"),
        Some(json!({"action": "jump", "jump_chain_id": b, "position": 1})),
    )
    .await;
    assert_eq!(r0["position"], 1);
    let rules = ok(&app, Method::GET, &format!("/chains/{a}/rules"), None).await;
    assert_eq!(rules[1]["id"], r1.as_str());
    assert_eq!(rules[1]["position"], 2);
    assert_eq!(
        ok(&app, Method::GET, &format!("/rules/{r1}"), None).await["position"],
        2
    );
    assert_eq!(
        ok(&app, Method::GET, &format!("/chains/{a}"), None).await["rule_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    expect(
        &app,
        Method::POST,
        &format!("/chains/{b}/rules"),
        Some(json!({"action": "jump", "jump_chain_id": a})),
        (422, "invalid", Some("jump_chain_id")),
    )
    .await;
    expect(&app, Method::POST, &format!("/chains/{b}/rules"), Some(json!({"action": "dnat", "nat_targets": [{"address_from": "10.0.0.2", "address_to": "10.0.0.1"}]})), (422, "invalid", Some("nat_targets[0].address_to"))).await;
    expect(
        &app,
        Method::POST,
        &format!("/chains/{b}/rules"),
        Some(json!({"action": "drop", "tp_src": {"start": 90, "end": 80}})),
        (422, "invalid", Some("tp_src.end")),
    )
    .await;
    // Out of range for u16: still a 422 (serde's flatten hides the path, so no field).
    let e = call(
        &app,
        Method::POST,
        &format!("/chains/{b}/rules"),
        Some(json!({"action": "drop", "tp_src": {"start": 9, "end": 70000}})),
    )
    .await;
    assert_eq!(err(&e).0, 422);
    let e = call(&app, Method::DELETE, &format!("/chains/{b}"), None).await;
    assert_eq!(err(&e).0, 409);
    // Filters point at chains.
    let br = id(&ok(
        &app,
        Method::POST,
        "/bridges",
        Some(json!({"name": "br", "inbound_filter_id": b})),
    )
    .await);
    expect(
        &app,
        Method::POST,
        "/bridges",
        Some(json!({"name": "x", "outbound_filter_id": uuid::Uuid::new_v4()})),
        (422, "invalid", Some("outbound_filter_id")),
    )
    .await;
    // Move r1 to the top with PUT.
    let moved = ok(
        &app,
        Method::PUT,
        &format!("/rules/{r1}"),
        Some(json!({"action": "drop", "position": 1})),
    )
    .await;
    assert_eq!(moved["position"], 1);
    assert_eq!(moved["action"], "drop");
    assert_eq!(
        call(&app, Method::DELETE, &format!("/chains/{a}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        err(&call(&app, Method::GET, &format!("/rules/{r1}"), None).await).0,
        404
    );
    let e = call(&app, Method::DELETE, &format!("/chains/{b}"), None).await;
    assert!(e.body["error"]["message"].as_str().unwrap().contains(&br));
}

#[tokio::test]
async fn groups_dhcp_and_tunnel_zones() {
    let app = app();
    let b = id(&ok(&app, Method::POST, "/bridges", Some(json!({"name": "b"}))).await);
    let p = id(&ok(
        &app,
        Method::POST,
        &format!("/bridges/{b}/ports"),
        Some(json!({})),
    )
    .await);
    let pg = ok(
        &app,
        Method::POST,
        "/port_groups",
        Some(json!({"name": "web", "stateful": true, "port_ids": [p]})),
    )
    .await;
    let pg = id(&pg);
    expect(
        &app,
        Method::POST,
        "/port_groups",
        Some(json!({"name": "x", "port_ids": [uuid::Uuid::new_v4()]})),
        (422, "invalid", Some("port_ids[0]")),
    )
    .await;
    assert_eq!(
        err(&call(&app, Method::DELETE, &format!("/ports/{p}"), None).await).0,
        409
    );
    let ag = id(&ok(
        &app,
        Method::POST,
        "/ip_addr_groups",
        Some(json!({"name": "g", "addresses": ["10.0.0.1", "fd00::1"]})),
    )
    .await);
    expect(
        &app,
        Method::PUT,
        &format!("/ip_addr_groups/{ag}"),
        Some(json!({"addresses": ["10.0.0.1", "10.0.0.1"]})),
        (422, "invalid", Some("addresses[1]")),
    )
    .await;
    let c = id(&ok(&app, Method::POST, "/chains", Some(json!({"name": "c"}))).await);
    ok(&app, Method::POST, &format!("/chains/{c}/rules"), Some(json!({"action": "accept", "port_group_id": pg, "ip_addr_group_dst": ag, "inv_ip_addr_group_dst": true}))).await;
    assert_eq!(
        err(&call(&app, Method::DELETE, &format!("/ip_addr_groups/{ag}"), None).await).0,
        409
    );
    assert_eq!(
        err(&call(&app, Method::DELETE, &format!("/port_groups/{pg}"), None).await).0,
        409
    );

    // DHCP subnets and hosts.
    let d = ok(&app, Method::POST, &format!("/bridges/{b}/dhcp"), Some(json!({"subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "dns_servers": ["8.8.8.8"], "opt121_routes": [{"dest": "169.254.169.254/32", "gateway": "10.0.0.1"}]}))).await;
    assert_eq!(d["enabled"], true);
    let d = id(&d);
    let base = format!("/bridges/{b}/dhcp/{d}");
    assert_eq!(
        ok(&app, Method::GET, &base, None).await["subnet"],
        "10.0.0.0/24"
    );
    expect(
        &app,
        Method::POST,
        &format!("/bridges/{b}/dhcp"),
        Some(json!({"subnet": "10.0.0.0/25"})),
        (409, "conflict", Some("subnet")),
    )
    .await;
    expect(
        &app,
        Method::PUT,
        &base,
        Some(json!({"subnet": "10.0.0.0/24", "gateway": "10.1.0.1"})),
        (422, "invalid", Some("gateway")),
    )
    .await;
    let h = ok(
        &app,
        Method::POST,
        &format!("{base}/hosts"),
        Some(json!({"mac": "02:00:00:00:00:0A", "ip": "10.0.0.10", "name": "vm1"})),
    )
    .await;
    assert_eq!(h["mac"], "02:00:00:00:00:0a");
    expect(
        &app,
        Method::POST,
        &format!("{base}/hosts"),
        Some(json!({"mac": "02:00:00:00:00:0a", "ip": "10.0.0.11"})),
        (409, "conflict", Some("mac")),
    )
    .await;
    let hp = format!("{base}/hosts/02:00:00:00:00:0a");
    assert_eq!(
        ok(
            &app,
            Method::PUT,
            &hp,
            Some(json!({"mac": "02:00:00:00:00:0a", "ip": "10.0.0.12"}))
        )
        .await["ip"],
        "10.0.0.12"
    );
    assert_eq!(ok(&app, Method::GET, &hp, None).await["ip"], "10.0.0.12");
    assert_eq!(
        err(&call(&app, Method::GET, &format!("{base}/hosts/zz"), None).await).0,
        400
    );
    assert_eq!(
        call(&app, Method::DELETE, &hp, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(err(&call(&app, Method::GET, &hp, None).await).0, 404);
    // The subnet is only reachable under its own bridge.
    let other = id(&ok(&app, Method::POST, "/bridges", Some(json!({"name": "o"}))).await);
    assert_eq!(
        err(&call(
            &app,
            Method::GET,
            &format!("/bridges/{other}/dhcp/{d}"),
            None
        )
        .await)
        .0,
        404
    );
    assert_eq!(
        call(&app, Method::DELETE, &base, None).await.status,
        StatusCode::NO_CONTENT
    );

    // Tunnel zones and members.
    let host = id(&ok(&app, Method::POST, "/hosts", Some(json!({"name": "h"}))).await);
    let z = ok(
        &app,
        Method::POST,
        "/tunnel_zones",
        Some(json!({"name": "z", "type": "gre"})),
    )
    .await;
    assert_eq!(z["type"], "gre");
    let z = id(&z);
    let m = call(
        &app,
        Method::POST,
        &format!("/tunnel_zones/{z}/members"),
        Some(json!({"host_id": host, "ip": "192.0.2.1"})),
    )
    .await;
    assert_eq!(m.status, StatusCode::CREATED);
    expect(
        &app,
        Method::POST,
        &format!("/tunnel_zones/{z}/members"),
        Some(json!({"host_id": host, "ip": "192.0.2.2"})),
        (409, "conflict", Some("host_id")),
    )
    .await;
    let mp = format!("/tunnel_zones/{z}/members/{host}");
    assert_eq!(
        ok(
            &app,
            Method::PUT,
            &mp,
            Some(json!({"host_id": host, "ip": "192.0.2.3"}))
        )
        .await["ip"],
        "192.0.2.3"
    );
    assert_eq!(
        ok(&app, Method::GET, &format!("/tunnel_zones/{z}"), None).await["members"][0]["ip"],
        "192.0.2.3"
    );
    // PUT on the zone keeps members.
    ok(
        &app,
        Method::PUT,
        &format!("/tunnel_zones/{z}"),
        Some(json!({"name": "z2", "type": "vxlan"})),
    )
    .await;
    assert_eq!(
        ok(
            &app,
            Method::GET,
            &format!("/tunnel_zones/{z}/members"),
            None
        )
        .await
        .as_array()
        .unwrap()
        .len(),
        1
    );
    assert_eq!(
        err(&call(&app, Method::DELETE, &format!("/hosts/{host}"), None).await).0,
        409
    );
    assert_eq!(
        call(&app, Method::DELETE, &mp, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, Method::DELETE, &format!("/hosts/{host}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

/// The app's answers a fake query function gives, keyed by the exact question.
type Answers = Arc<std::sync::Mutex<Vec<(apps::Query, apps::Answer)>>>;

/// The topology routes whose runtime asks `answers` for the app's tables.
fn app_answering(net: Network, answers: &Answers) -> axum::Router {
    let answers = answers.clone();
    let query: super::AppQuery = Arc::new(move |q: &apps::Query| {
        let answers = answers.lock().unwrap();
        answers.iter().find(|(k, _)| k == q).map(|(_, a)| a.clone())
    });
    crate::api::app(vec![super::routes_with(
        net,
        super::Runtime::default().with_app(query),
    )])
}

/// An entry's keys are exactly the properties of its OpenAPI schema, all of them required.
fn matches_schema(doc: &Value, schema: &str, entry: &Value) {
    let s = &doc["components"]["schemas"][schema];
    let props: BTreeSet<&str> = s["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {schema} has no properties: {s}"))
        .keys()
        .map(String::as_str)
        .collect();
    let keys: BTreeSet<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, props, "{schema}: {entry}");
    let required: BTreeSet<&str> = s["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, props, "{schema}: every field is always present");
}

#[tokio::test]
async fn mac_and_arp_tables_show_what_the_app_answers() {
    use apps::{Answer, ArpEntry, ArpState, MacEntry, Query};
    let answers = Answers::default();
    let app = app_answering(Network::open(Arc::new(MemStore::new())).unwrap(), &answers);
    let b = id(&ok(&app, Method::POST, "/bridges", Some(json!({"name": "net"}))).await);
    let quiet = id(&ok(
        &app,
        Method::POST,
        "/bridges",
        Some(json!({"name": "quiet"})),
    )
    .await);
    let r = id(&ok(&app, Method::POST, "/routers", Some(json!({"name": "r1"}))).await);
    let bp = id(&ok(
        &app,
        Method::POST,
        &format!("/bridges/{b}/ports"),
        Some(json!({})),
    )
    .await);
    let rp = id(&ok(
        &app,
        Method::POST,
        &format!("/routers/{r}/ports"),
        Some(json!({"address": "10.0.0.1/24"})),
    )
    .await);
    let uuid = |s: &str| s.parse::<uuid::Uuid>().unwrap();
    answers.lock().unwrap().extend([
        (
            Query::MacTable { bridge: uuid(&b) },
            Answer::MacTable(vec![
                MacEntry {
                    mac: [0x02, 0, 0, 0, 0, 0x0a],
                    port_id: uuid(&bp),
                    flows: 3,
                },
                MacEntry {
                    mac: [0xfa, 0x16, 0x3e, 0xab, 0xcd, 0xef],
                    port_id: uuid(&bp),
                    flows: 0,
                },
            ]),
        ),
        (
            Query::ArpTable { router: uuid(&r) },
            Answer::ArpTable(vec![
                ArpEntry {
                    ip: "10.0.0.5".parse().unwrap(),
                    mac: Some([0x02, 0, 0, 0, 0, 0x05]),
                    port_id: uuid(&rp),
                    state: ArpState::Reachable,
                    expires_in_secs: 25,
                    parked: 0,
                },
                ArpEntry {
                    ip: "10.0.0.9".parse().unwrap(),
                    mac: None,
                    port_id: uuid(&rp),
                    state: ArpState::Resolving,
                    expires_in_secs: 1,
                    parked: 2,
                },
                ArpEntry {
                    ip: "10.0.0.10".parse().unwrap(),
                    mac: None,
                    port_id: uuid(&rp),
                    state: ArpState::Failed,
                    expires_in_secs: 7,
                    parked: 0,
                },
            ]),
        ),
    ]);
    let macs = ok(&app, Method::GET, &format!("/bridges/{b}/mac_table"), None).await;
    assert_eq!(
        macs,
        json!([
            {"mac": "02:00:00:00:00:0a", "port_id": bp, "flows": 3},
            {"mac": "fa:16:3e:ab:cd:ef", "port_id": bp, "flows": 0},
        ])
    );
    let arps = ok(&app, Method::GET, &format!("/routers/{r}/arp_table"), None).await;
    assert_eq!(
        arps,
        json!([
            {"ip": "10.0.0.5", "mac": "02:00:00:00:00:05", "port_id": rp, "state": "reachable",
                "expires_in_secs": 25, "parked": 0},
            {"ip": "10.0.0.9", "mac": null, "port_id": rp, "state": "resolving",
                "expires_in_secs": 1, "parked": 2},
            {"ip": "10.0.0.10", "mac": null, "port_id": rp, "state": "failed",
                "expires_in_secs": 7, "parked": 0},
        ])
    );
    // What is shown is what the OpenAPI document promises.
    let doc = ok(&app, Method::GET, "/openapi.json", None).await;
    for e in macs.as_array().unwrap() {
        matches_schema(&doc, "MacTableEntry", e);
    }
    for e in arps.as_array().unwrap() {
        matches_schema(&doc, "ArpTableEntry", e);
        let states = &doc["components"]["schemas"]["ArpTableEntry"]["properties"]["state"]["enum"];
        assert!(states.as_array().unwrap().contains(&e["state"]), "{states}");
    }
    // The app has nothing for this bridge: an empty table.
    let none = ok(
        &app,
        Method::GET,
        &format!("/bridges/{quiet}/mac_table"),
        None,
    )
    .await;
    assert_eq!(none, json!([]));
    // Unknown devices, and a device of the other kind, are 404 whatever the app would say.
    answers.lock().unwrap().push((
        Query::MacTable { bridge: uuid(&r) },
        Answer::MacTable(vec![]),
    ));
    let unknown = uuid::Uuid::new_v4();
    for uri in [
        format!("/bridges/{unknown}/mac_table"),
        format!("/routers/{unknown}/arp_table"),
        format!("/bridges/{r}/mac_table"),
        format!("/routers/{b}/arp_table"),
    ] {
        expect(&app, Method::GET, &uri, None, (404, "not_found", None)).await;
    }
    expect(
        &app,
        Method::GET,
        "/routers/not-a-uuid/arp_table",
        None,
        (400, "bad_request", None),
    )
    .await;
    // An answer of the wrong kind is the app's bug: a 500 naming it, not an empty table.
    let r2 = id(&ok(&app, Method::POST, "/routers", Some(json!({"name": "r2"}))).await);
    answers.lock().unwrap().push((
        Query::ArpTable { router: uuid(&r2) },
        Answer::MacTable(vec![]),
    ));
    expect(
        &app,
        Method::GET,
        &format!("/routers/{r2}/arp_table"),
        None,
        (500, "internal", None),
    )
    .await;
}

#[tokio::test]
async fn mac_and_arp_tables_are_empty_without_an_app_answer() {
    let app = app();
    let b = id(&ok(&app, Method::POST, "/bridges", Some(json!({"name": "net"}))).await);
    let r = id(&ok(&app, Method::POST, "/routers", Some(json!({"name": "r1"}))).await);
    let macs = ok(&app, Method::GET, &format!("/bridges/{b}/mac_table"), None).await;
    assert_eq!(macs, json!([]));
    let arps = ok(&app, Method::GET, &format!("/routers/{r}/arp_table"), None).await;
    assert_eq!(arps, json!([]));
}

#[tokio::test]
async fn openapi_lists_every_routed_operation() {
    let app = app();
    let doc = ok(&app, Method::GET, "/openapi.json", None).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for name in [
        "Host",
        "Port",
        "Rule",
        "Condition",
        "NatTarget",
        "DhcpSubnet",
        "ErrorBody",
        "MacAddr",
        "MacTableEntry",
        "ArpTableEntry",
    ] {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "schema {name} missing"
        );
    }
    let zero = uuid::Uuid::nil().to_string();
    for (method, path, _, _) in super::openapi::operations() {
        let uri = path
            .replace("{mac}", "02:00:00:00:00:01")
            .replace("{id}", &zero)
            .replace("{subnet_id}", &zero)
            .replace("{host_id}", &zero);
        let m = match method {
            utoipa::openapi::HttpMethod::Get => Method::GET,
            utoipa::openapi::HttpMethod::Post => Method::POST,
            utoipa::openapi::HttpMethod::Put => Method::PUT,
            _ => Method::DELETE,
        };
        let body = (m == Method::POST || m == Method::PUT).then(|| json!({}));
        // call() asserts every error has our JSON body, which axum's fallback 404/405 lacks.
        let r = call(&app, m.clone(), &uri, body).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
        assert!(!r.status.is_server_error(), "{m} {uri}");
        let documented = doc["paths"][format!("/api/v1{path}")][m.as_str().to_lowercase()]
            ["responses"][r.status.as_str()]
        .is_object();
        assert!(documented, "{m} {uri} answered undocumented {}", r.status);
    }
}

// ---- random call sequences never break the invariants ----

use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Call {
    Bridge,
    Router,
    BridgePort(usize),
    RouterPort(usize, u8, u8),
    Link(usize, usize),
    Unlink(usize),
    Host,
    Bind(usize, usize, u8),
    Unbind(usize),
    Route(usize, usize, u8),
    Chain,
    Rule(usize, Option<usize>, usize, u8),
    PortGroup(Vec<usize>),
    Filter(usize, usize),
    Delete(u8, usize),
}

fn calls() -> impl Strategy<Value = Call> {
    let i = || 0usize..6;
    // Weighted so that sequences build devices and ports early and then link, bind and route
    // them often enough to reach the interesting conflicts.
    prop_oneof![
        2 => Just(Call::Bridge),
        2 => Just(Call::Router),
        4 => i().prop_map(Call::BridgePort),
        4 => (i(), 0u8..4, prop_oneof![Just(24u8), Just(16u8), Just(8u8)])
            .prop_map(|(r, n, l)| Call::RouterPort(r, n, l)),
        5 => (i(), i()).prop_map(|(a, b)| Call::Link(a, b)),
        1 => i().prop_map(Call::Unlink),
        1 => Just(Call::Host),
        3 => (i(), i(), 0u8..3).prop_map(|(p, h, n)| Call::Bind(p, h, n)),
        1 => i().prop_map(Call::Unbind),
        2 => (i(), i(), 0u8..3).prop_map(|(r, p, t)| Call::Route(r, p, t)),
        1 => Just(Call::Chain),
        3 => (i(), proptest::option::of(i()), i(), 0u8..4)
            .prop_map(|(c, j, p, pos)| Call::Rule(c, j, p, pos)),
        1 => proptest::collection::vec(i(), 0..3).prop_map(Call::PortGroup),
        1 => (i(), i()).prop_map(|(d, c)| Call::Filter(d, c)),
        2 => (0u8..9, i()).prop_map(|(k, n)| Call::Delete(k, n)),
    ]
}

const ROUTE_TYPES: [&str; 3] = ["normal", "blackhole", "reject"];

fn pick(v: &[String], i: usize) -> String {
    if v.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        v[i % v.len()].clone()
    }
}

async fn list(app: &axum::Router, path: &str) -> Vec<Value> {
    ok(app, Method::GET, path, None)
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn ids(app: &axum::Router, path: &str) -> Vec<String> {
    list(app, path).await.iter().map(id).collect()
}

async fn run(app: &axum::Router, c: Call) {
    let bridges = ids(app, "/bridges").await;
    let routers = ids(app, "/routers").await;
    let ports = ids(app, "/ports").await;
    let hosts = ids(app, "/hosts").await;
    let chains = ids(app, "/chains").await;
    let (m, uri, body) = match c {
        Call::Bridge => (
            Method::POST,
            "/bridges".to_owned(),
            Some(json!({"name": "b"})),
        ),
        Call::Router => (
            Method::POST,
            "/routers".to_owned(),
            Some(json!({"name": "r"})),
        ),
        Call::BridgePort(b) => (
            Method::POST,
            format!("/bridges/{}/ports", pick(&bridges, b)),
            Some(json!({})),
        ),
        Call::RouterPort(r, n, l) => (
            Method::POST,
            format!("/routers/{}/ports", pick(&routers, r)),
            Some(json!({"address": format!("10.{n}.0.1/{l}")})),
        ),
        Call::Link(a, b) => (
            Method::POST,
            format!("/ports/{}/link", pick(&ports, a)),
            Some(json!({"peer_id": pick(&ports, b)})),
        ),
        Call::Unlink(a) => (
            Method::DELETE,
            format!("/ports/{}/link", pick(&ports, a)),
            None,
        ),
        Call::Host => (
            Method::POST,
            "/hosts".to_owned(),
            Some(json!({"name": "h"})),
        ),
        Call::Bind(p, h, n) => (
            Method::PUT,
            format!("/ports/{}/binding", pick(&ports, p)),
            Some(json!({"host_id": pick(&hosts, h), "interface_name": format!("tap{n}")})),
        ),
        Call::Unbind(p) => (
            Method::DELETE,
            format!("/ports/{}/binding", pick(&ports, p)),
            None,
        ),
        Call::Route(r, p, t) => (
            Method::POST,
            format!("/routers/{}/routes", pick(&routers, r)),
            Some(
                json!({"dst": "192.168.0.0/16", "next_hop_port": pick(&ports, p), "type": ROUTE_TYPES[t as usize]}),
            ),
        ),
        Call::Chain => (
            Method::POST,
            "/chains".to_owned(),
            Some(json!({"name": "c"})),
        ),
        Call::Rule(c, j, p, pos) => {
            let mut body =
                json!({"action": "accept", "position": pos, "in_ports": [pick(&ports, p)]});
            if let Some(j) = j {
                body =
                    json!({"action": "jump", "jump_chain_id": pick(&chains, j), "position": pos});
            }
            (
                Method::POST,
                format!("/chains/{}/rules", pick(&chains, c)),
                Some(body),
            )
        }
        Call::PortGroup(ps) => (
            Method::POST,
            "/port_groups".to_owned(),
            Some(
                json!({"name": "g", "port_ids": ps.iter().map(|i| pick(&ports, *i)).collect::<Vec<_>>()}),
            ),
        ),
        Call::Filter(d, c) => (
            Method::PUT,
            format!("/bridges/{}", pick(&bridges, d)),
            Some(json!({"name": "b", "inbound_filter_id": pick(&chains, c)})),
        ),
        Call::Delete(k, n) => {
            let (coll, v) = match k {
                0 => ("bridges", bridges),
                1 => ("routers", routers),
                2 | 3 => ("ports", ports),
                4 => ("hosts", hosts),
                5 => ("chains", chains),
                6 => ("port_groups", ids(app, "/port_groups").await),
                _ => {
                    let mut rules = Vec::new();
                    for c in &chains {
                        rules.extend(ids(app, &format!("/chains/{c}/rules")).await);
                    }
                    ("rules", rules)
                }
            };
            (Method::DELETE, format!("/{coll}/{}", pick(&v, n)), None)
        }
    };
    let r = call(app, m.clone(), &uri, body).await;
    assert!(!r.status.is_server_error(), "{m} {uri}: {}", r.body);
}

async fn check_invariants(app: &axum::Router) {
    let ports: BTreeMap<String, Value> = list(app, "/ports")
        .await
        .into_iter()
        .map(|p| (id(&p), p))
        .collect();
    let bridges: BTreeSet<String> = ids(app, "/bridges").await.into_iter().collect();
    let routers: BTreeSet<String> = ids(app, "/routers").await.into_iter().collect();
    let hosts: BTreeSet<String> = ids(app, "/hosts").await.into_iter().collect();
    let chains = list(app, "/chains").await;
    let chain_ids: BTreeSet<String> = chains.iter().map(id).collect();
    let mut keys = HashSet::new();
    for (pid, p) in &ports {
        let dev = p["device_id"].as_str().unwrap();
        assert!(
            bridges.contains(dev) || routers.contains(dev),
            "port {pid} on missing device"
        );
        let k = p["tunnel_key"].as_u64().unwrap();
        assert!((1..1 << 24).contains(&k));
        assert!(keys.insert(k), "tunnel key {k} reused");
        if let Some(peer) = p["peer_id"].as_str() {
            assert_eq!(
                ports[peer]["peer_id"].as_str(),
                Some(pid.as_str()),
                "asymmetric link"
            );
            assert!(p["host_id"].is_null(), "port {pid} linked and bound");
            let pdev = ports[peer]["device_id"].as_str().unwrap();
            assert!(
                routers.contains(dev) || routers.contains(pdev),
                "bridge-bridge link"
            );
        }
        if let Some(h) = p["host_id"].as_str() {
            assert!(hosts.contains(h));
        }
        for f in ["inbound_filter_id", "outbound_filter_id"] {
            if let Some(c) = p[f].as_str() {
                assert!(chain_ids.contains(c));
            }
        }
    }
    for r in &routers {
        let rps: Vec<ipnet::IpNet> = list(app, &format!("/routers/{r}/ports"))
            .await
            .iter()
            .map(|p| {
                p["address"]
                    .as_str()
                    .unwrap()
                    .parse::<ipnet::IpNet>()
                    .unwrap()
                    .trunc()
            })
            .collect();
        for (i, a) in rps.iter().enumerate() {
            for b in &rps[i + 1..] {
                assert!(
                    !a.contains(&b.network()) && !b.contains(&a.network()),
                    "{a} overlaps {b}"
                );
            }
        }
        for route in list(app, &format!("/routers/{r}/routes")).await {
            if let Some(p) = route["next_hop_port"].as_str() {
                assert_eq!(ports[p]["device_id"].as_str(), Some(r.as_str()));
            }
        }
    }
    for b in &bridges {
        if let Some(c) =
            ok(app, Method::GET, &format!("/bridges/{b}"), None).await["inbound_filter_id"].as_str()
        {
            assert!(chain_ids.contains(c));
        }
    }
    // Jumps exist and form no cycle; rule ports exist.
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &chain_ids {
        for rule in list(app, &format!("/chains/{c}/rules")).await {
            if let Some(t) = rule["jump_chain_id"].as_str() {
                assert!(chain_ids.contains(t));
                edges.entry(c.clone()).or_default().push(t.to_owned());
            }
            for p in rule["in_ports"].as_array().unwrap() {
                assert!(ports.contains_key(p.as_str().unwrap()));
            }
        }
    }
    fn cyclic(n: &str, edges: &BTreeMap<String, Vec<String>>, path: &mut Vec<String>) -> bool {
        if path.iter().any(|p| p == n) {
            return true;
        }
        path.push(n.to_owned());
        let c = edges
            .get(n)
            .into_iter()
            .flatten()
            .any(|m| cyclic(m, edges, path));
        path.pop();
        c
    }
    for c in &chain_ids {
        assert!(
            !cyclic(c, &edges, &mut Vec::new()),
            "jump cycle through {c}"
        );
    }
    for g in list(app, "/port_groups").await {
        for p in g["port_ids"].as_array().unwrap() {
            assert!(ports.contains_key(p.as_str().unwrap()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_api_calls_keep_invariants(seq in proptest::collection::vec(calls(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let app = app();
            for c in seq {
                run(&app, c).await;
                check_invariants(&app).await;
            }
        });
    }
}

/// The same life cycle for every top-level collection: create, read, list, update, delete,
/// then 404; a duplicate id is 409, broken JSON 400, a bad value 422 naming its field.
#[tokio::test]
async fn every_top_level_resource_has_the_full_life_cycle() {
    let app = app();
    let cases = [
        (
            "hosts",
            json!({"name": "h"}),
            json!({"name": "h2", "datapath_type": "netdev"}),
            json!({"name": "h", "tunnel_ip": "x"}),
            "tunnel_ip",
        ),
        (
            "tunnel_zones",
            json!({"name": "z"}),
            json!({"name": "z2", "type": "gre"}),
            json!({"name": "z", "type": "ipip"}),
            "type",
        ),
        (
            "bridges",
            json!({"name": "b"}),
            json!({"name": "b2", "admin_state_up": false}),
            json!({"name": "b", "admin_state_up": "yes"}),
            "admin_state_up",
        ),
        (
            "routers",
            json!({"name": "r"}),
            json!({"name": "r2", "tenant_id": "t"}),
            json!({"name": "r", "inbound_filter_id": "nope"}),
            "inbound_filter_id",
        ),
        (
            "chains",
            json!({"name": "c"}),
            json!({"name": "c2"}),
            json!({"name": "bad\u{7}name"}),
            "name",
        ),
        (
            "port_groups",
            json!({"name": "g"}),
            json!({"name": "g2", "stateful": true}),
            json!({"name": "g", "port_ids": ["x"]}),
            "port_ids[0]",
        ),
        (
            "ip_addr_groups",
            json!({"name": "a"}),
            json!({"name": "a2", "addresses": ["fd00::1"]}),
            json!({"name": "a", "addresses": ["10.0.0.256"]}),
            "addresses[0]",
        ),
    ];
    for (coll, create, update, bad, field) in cases {
        let base = format!("/{coll}");
        let r = call(&app, Method::POST, &base, Some(create.clone())).await;
        assert_eq!(r.status, StatusCode::CREATED, "{coll}: {}", r.body);
        let id = id(&r.body);
        let item = format!("{base}/{id}");
        assert_eq!(
            ok(&app, Method::GET, &item, None).await["id"],
            id.as_str(),
            "{coll}"
        );
        assert!(
            list(&app, &base)
                .await
                .iter()
                .any(|v| v["id"] == id.as_str()),
            "{coll}: not listed"
        );
        let put = ok(&app, Method::PUT, &item, Some(update.clone())).await;
        for (k, v) in update.as_object().unwrap() {
            assert_eq!(&put[k], v, "{coll}.{k} after PUT");
            assert_eq!(
                &ok(&app, Method::GET, &item, None).await[k],
                v,
                "{coll}.{k} read back"
            );
        }
        let mut dup = create.clone();
        dup["id"] = json!(id);
        expect(
            &app,
            Method::POST,
            &base,
            Some(dup),
            (409, "conflict", Some("id")),
        )
        .await;
        let r = call_raw(&app, Method::POST, &base, Some("[1,"), None).await;
        assert_eq!(err(&r), (400, "bad_request", None), "{coll}");
        expect(
            &app,
            Method::POST,
            &base,
            Some(bad),
            (422, "invalid", Some(field)),
        )
        .await;
        assert_eq!(
            call(&app, Method::DELETE, &item, None).await.status,
            StatusCode::NO_CONTENT
        );
        expect(&app, Method::GET, &item, None, (404, "not_found", None)).await;
        expect(&app, Method::DELETE, &item, None, (404, "not_found", None)).await;
    }
}
