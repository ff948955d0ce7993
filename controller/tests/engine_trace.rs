//! Traces, flow provenance and the oracle on real OVS: three sandbox hypervisors, the
//! `strowger serve` binary, a router between two bridges.
//!
//! ```text
//!   a 10.0.1.10 (hv1) ─┐                          ┌─ b 10.0.2.20 (hv2)
//!   d 10.0.1.30 (hv3) ─┴─ net1 ── r [router] ── net2
//!                          10.0.1.1/24   10.0.2.1/24
//! ```
//!
//! What a trace says is checked against what OVS then really does: the trace's flow against the
//! `dump-flows` line the same packet installs, its output against the tunnel port OVS numbered.
//! Every installed engine flow is explained and must still be what the engine would install
//! (the acceptance oracle), and its provenance must name objects that exist.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::lab::{arp_frame, flow_field, mac_str, poll, Lab, Vm};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const R1_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 1, 1];
const R2_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 2, 1];
const R2_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const A: ([u8; 6], Ipv4Addr) = ([2, 0, 0, 0, 1, 0x0a], Ipv4Addr::new(10, 0, 1, 10));
const B: ([u8; 6], Ipv4Addr) = ([2, 0, 0, 0, 2, 0x14], Ipv4Addr::new(10, 0, 2, 20));
const D: ([u8; 6], Ipv4Addr) = ([2, 0, 0, 0, 1, 0x1e], Ipv4Addr::new(10, 0, 1, 30));

struct Net {
    lab: Lab,
    router: String,
    a: Vm,
    b: Vm,
    d: Vm,
}

async fn start() -> Net {
    let lab = Lab::start("vxlan", 3).await;
    let (router, nets) = lab
        .routed(
            "r",
            "acme",
            &[
                ("net1", R1_MAC, "10.0.1.1/24"),
                ("net2", R2_MAC, "10.0.2.1/24"),
            ],
        )
        .await;
    let a = lab.port(&nets[0], 0, "a").await;
    let b = lab.port(&nets[1], 1, "b").await;
    let d = lab.port(&nets[0], 2, "d").await;
    lab.plug(&[&a, &b, &d]).await;
    Net {
        lab,
        router,
        a,
        b,
        d,
    }
}

/// A UDP datagram `src` → `dst` (Ethernet `eth`), ports 40000 → `dport`.
fn udp(eth: ([u8; 6], [u8; 6]), src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(eth.0, eth.1)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(40000, dport);
    let payload = b"strowger trace test";
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

/// `strowger ARGS --api …`: exit success and stdout.
fn cli(lab: &Lab, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(args)
        .args(["--api", lab.api.cli_base()])
        .output()
        .expect("run the CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The tunnel port on host `from` towards the host with underlay address `to`.
fn tunnel_ofport(lab: &Lab, from: usize, to: Ipv4Addr) -> u32 {
    let out = lab.hvs[from]
        .vsctl(&[
            "--bare",
            "--columns=ofport",
            "find",
            "Interface",
            &format!("options:remote_ip={to}"),
        ])
        .expect("find the tunnel");
    out.trim().parse().expect("one tunnel port")
}

/// Everything a trace must not change: MAC tables, the ARP cache, and the flows (without
/// their counters) on every host.
async fn state(n: &Net, bridges: &[&str]) -> Vec<String> {
    let mut v = vec![];
    for b in bridges {
        v.push(
            n.lab
                .api
                .get(&format!("/bridges/{b}/mac_table"))
                .await
                .unwrap()
                .to_string(),
        );
    }
    let arp = n
        .lab
        .api
        .get(&format!("/routers/{}/arp_table", n.router))
        .await
        .unwrap();
    // Seconds to the next change tick on their own.
    let arp: Vec<Value> = arp
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!([e["ip"], e["mac"], e["state"], e["parked"]]))
        .collect();
    v.push(json!(arp).to_string());
    for hv in 0..3 {
        let mut flows: Vec<String> = n
            .lab
            .flows(hv, &["--no-stats"])
            .lines()
            .map(str::to_owned)
            .collect();
        flows.sort();
        v.push(flows.join("\n"));
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_say_what_ovs_then_does_and_change_nothing() {
    let n = start().await;
    let (lab, a, b) = (&n.lab, &n.a, &n.b);
    let nets: Vec<String> = {
        let v = lab.api.get("/bridges").await.unwrap();
        ["net1", "net2"]
            .iter()
            .map(|name| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["name"] == *name)
                    .unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    // d's packet to b makes the router resolve b (b answers its ARP request): hv1 has no flow.
    lab.send(&n.d, &udp((D.0, R1_MAC), D.1, B.1, 5002));
    poll("the router's ARP request for b", || {
        lab.sent(b)
            .iter()
            .any(|f| f.starts_with("ffffffffffff") && f[24..28] == *"0806")
            .then_some(())
    })
    .await;
    lab.send(b, &arp_frame(2, (B.0, B.1), (R2_MAC, R2_IP), R2_MAC));
    poll("the router's ARP entry for b", || {
        block_on(lab.api.get(&format!("/routers/{}/arp_table", n.router)))
            .filter(|t| t.to_string().contains(&mac_str(B.0)))
    })
    .await;
    poll("the flow d → b on hv3", || {
        lab.flows(2, &["table=20"])
            .contains(&format!("nw_dst={}", B.1))
            .then_some(())
    })
    .await;

    let bridges = [nets[0].as_str(), nets[1].as_str()];
    let before = state(&n, &bridges).await;
    let flow = format!(
        "udp,dl_src={},nw_src={},nw_dst={},tp_dst=5001",
        mac_str(A.0),
        A.1,
        B.1
    );
    let (ok, minimal) = cli(lab, &["trace", "hv1:a", &flow, "--minimal"]);
    assert!(ok, "{minimal}");
    // The golden answer, with the facts it depends on read from outside: b's tunnel key from
    // the API, hv1's tunnel port to hv2 from OVSDB.
    let tunnel = tunnel_ofport(lab, 0, Ipv4Addr::new(192, 168, 0, 2));
    let golden = format!(
        "eth_src={},eth_dst={},ttl=63\n\
         output net2:b@hv2: tunnel to hv2: tun_id={:#x}, output:{tunnel}\n",
        mac_str(R2_MAC),
        mac_str(B.0),
        b.key
    );
    assert_eq!(minimal, golden);

    // The full trace: every device in order, the route, the next hop and the flow.
    let (ok, full) = cli(lab, &["trace", &a.port, &flow]);
    assert!(ok, "{full}");
    let order = [
        "bridge net1: in by net1:a@hv1",
        "destination 02:aa:00:00:01:01 is router port r:10.0.1.1/24",
        "out by net1:to-r",
        "router r: in by r:10.0.1.1/24",
        "lookup 10.0.2.20: connected, out r:10.0.2.1/24",
        "next hop 10.0.2.20 is 02:00:00:00:02:14 (ARP cache)",
        "bridge net2: in by net2:to-r",
        "output to net2:b@hv2",
        "result: forwarded",
        "flow on hv1 (cache):",
    ];
    let mut at = 0;
    for want in order {
        let found = full[at..]
            .find(want)
            .unwrap_or_else(|| panic!("{want:?} after {at} in\n{full}"));
        at += found + want.len();
    }
    assert!(full.contains("assumed: tp_src=40000"), "{full}");

    // JSON: the flow it would install, in ovs-ofctl syntax.
    let (status, t) = lab
        .api
        .call(
            Method::POST,
            "/trace",
            Some(json!({"ingress_port_id": a.port, "flow": flow})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let predicted = t["flow"]["ofctl"].as_str().unwrap().to_owned();
    assert!(predicted.starts_with("table=20, priority="), "{predicted}");

    // Nothing changed: MAC tables, ARP, every flow on every host.
    assert_eq!(state(&n, &bridges).await, before, "a trace changed state");

    // The same packet for real: the flow OVS shows is the one the trace predicted.
    lab.send(a, &udp((A.0, R1_MAC), A.1, B.1, 5001));
    let installed = poll("the flow a → b", || {
        lab.flows(0, &["table=20", "--no-stats"])
            .lines()
            .find(|l| l.contains("cookie=0x53548") && l.contains(&format!("nw_dst={}", B.1)))
            .map(str::to_owned)
    })
    .await;
    let installed_tail = &installed[installed.find("priority=").unwrap()..];
    let predicted_tail = &predicted[predicted.find("priority=").unwrap()..];
    assert_eq!(installed_tail, predicted_tail);
    // Its counters per ingress port: the next packet hits the flow (not the controller).
    lab.send(a, &udp((A.0, R1_MAC), A.1, B.1, 5001));
    poll("a's port counters", || {
        let st = block_on(lab.api.get(&format!("/ports/{}/stats", a.port)))?;
        (st["rx_packets"] == json!(1) && st["flows"] == json!(1)).then_some(())
    })
    .await;
    // A trace now (a's MAC learned) predicts the same flow again.
    let (_, again) = lab
        .api
        .call(
            Method::POST,
            "/trace",
            Some(json!({"host_id": "hv1", "interface_name": "a", "flow": flow})),
        )
        .await;
    assert_eq!(again["flow"]["ofctl"], json!(predicted));

    // Annotated dump-flows and explain, from the CLI.
    let (ok, flows) = cli(lab, &["flows", "hv1", "--table", "20"]);
    assert!(ok, "{flows}");
    assert!(
        flows.contains("# from net1:a@hv1: net1 -> r -> net2"),
        "{flows}"
    );
    let cookie = flow_field(&installed, "cookie=").unwrap();
    let (ok, explained) = cli(lab, &["explain", cookie]);
    assert!(ok, "{explained}");
    assert!(
        explained.contains("consistent: the switch's flow"),
        "{explained}"
    );
    assert!(
        explained.contains("router r: in by r:10.0.1.1/24"),
        "{explained}"
    );

    // The oracle over every flow of every host (a's on hv1, d's on hv3).
    assert!(lab.oracle().await >= 2);

    // The oracle can fail: a flow changed behind the engine's back is reported.
    lab.hvs[0]
        .ofctl(&[
            "mod-flows",
            "br-int",
            &format!("table=20,cookie={cookie}/-1,actions=drop"),
        ])
        .expect("mod-flows");
    let (_, e) = lab
        .api
        .call(Method::GET, &format!("/flows/{cookie}"), None)
        .await;
    assert_eq!(e["consistent"], json!(false), "{e:#}");
    assert!(
        e["differences"].to_string().contains("actions: installed"),
        "{e:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_shows_the_rule_that_drops_and_bad_requests_get_clear_errors() {
    let n = start().await;
    let (lab, a) = (&n.lab, &n.a);
    let chain = lab.api.post("/chains", json!({"name": "fw"})).await;
    let chain_id = chain["id"].as_str().unwrap();
    lab.api
        .post(
            &format!("/chains/{chain_id}/rules"),
            json!({"action": "drop", "nw_proto": 17, "tp_dst": {"start": 5201, "end": 5201}}),
        )
        .await;
    let (status, r) = lab
        .api
        .call(Method::GET, &format!("/routers/{}", n.router), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut r = r;
    r["inbound_filter_id"] = json!(chain_id);
    let (status, body) = lab
        .api
        .call(Method::PUT, &format!("/routers/{}", n.router), Some(r))
        .await;
    assert!(status.is_success(), "{body}");

    let dropped = format!("udp,nw_src={},nw_dst={},tp_dst=5201", A.1, B.1);
    let (ok, full) = cli(lab, &["trace", "hv1:a", &dropped]);
    assert!(ok, "{full}");
    assert!(full.contains("rule fw#1 matches: drop"), "{full}");
    assert!(full.contains("inbound filter fw: DROP"), "{full}");
    assert!(full.contains("result: dropped (filtered)"), "{full}");
    let (_, minimal) = cli(lab, &["trace", "hv1:a", &dropped, "--minimal"]);
    assert_eq!(minimal, "drop: filtered\ndropped\n");
    // The real packets: the first makes a drop flow, the next is counted by it as a drop of
    // a's port.
    let blocked = udp(([2, 0, 0, 0, 1, 0x0a], R1_MAC), A.1, B.1, 5201);
    lab.send(a, &blocked);
    poll("the drop flow", || {
        lab.flows(0, &["table=20"])
            .lines()
            .any(|l| l.contains("tp_dst=5201") && l.contains("actions=drop"))
            .then_some(())
    })
    .await;
    lab.send(a, &blocked);
    poll("a's drop counter", || {
        let st = block_on(lab.api.get(&format!("/ports/{}/stats", a.port)))?;
        (st["drops"]["filtered"]["packets"].as_u64()? >= 1).then_some(())
    })
    .await;
    let (ok, stats) = cli(lab, &["port", "stats", &a.port]);
    assert!(ok && stats.contains("filtered"), "{stats}");
    // A reject rule answers, and the trace says with what and from where.
    lab.api
        .post(
            &format!("/chains/{chain_id}/rules"),
            json!({"action": "reject", "nw_proto": 17, "tp_dst": {"start": 5301, "end": 5301}}),
        )
        .await;
    let (_, rejected) = cli(lab, &["trace", "hv1:a", &dropped.replace("5201", "5301")]);
    assert!(rejected.contains("rule fw#2 matches: reject"), "{rejected}");
    assert!(
        rejected
            .contains("answer ICMP administratively prohibited from 10.0.1.1 out of r:10.0.1.1/24"),
        "{rejected}"
    );
    // Another port passes the filter (and parks: b's MAC is not known yet).
    let (_, other) = cli(lab, &["trace", "hv1:a", &dropped.replace("5201", "5202")]);
    assert!(
        other.contains("inbound filter fw: no rule decided"),
        "{other}"
    );
    assert!(other.contains("the packet would wait for ARP"), "{other}");
    assert!(other.contains("result: parked"), "{other}");

    // Bad requests: each a clear error naming the field, nothing traced.
    for (body, code, field) in [
        (
            json!({"ingress_port_id": a.port, "packet": {"nw_src": "1.2.3.4"}}),
            422,
            "packet.nw_src",
        ),
        (
            json!({"ingress_port_id": a.port, "packet": {"ip_src": "300.1.1.1"}}),
            422,
            "packet.ip_src",
        ),
        (
            json!({"ingress_port_id": a.port, "packet": {"ttl": 256}}),
            422,
            "packet.ttl",
        ),
        (
            json!({"ingress_port_id": a.port, "flow": "udp,bogus=1"}),
            422,
            "flow",
        ),
        (
            json!({"ingress_port_id": "00000000-0000-0000-0000-000000000000"}),
            404,
            "ingress_port_id",
        ),
        (
            json!({"host_id": "hv1", "interface_name": "nope"}),
            404,
            "interface_name",
        ),
        (json!({"packet": {}}), 422, "ingress_port_id"),
        (json!({"ingress_port_id": a.port, "extra": 1}), 422, "extra"),
    ] {
        let (status, e) = lab
            .api
            .call(Method::POST, "/trace", Some(body.clone()))
            .await;
        assert_eq!(status.as_u16(), code, "{body}: {e}");
        assert_eq!(e["error"]["field"], json!(field), "{body}: {e}");
    }
    let (status, _) = lab.api.call(Method::GET, "/flows/0x1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = lab.api.call(Method::GET, "/flows/zzz", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Blocks on a future from inside a poll closure (the poll runs on a multi-thread runtime).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
