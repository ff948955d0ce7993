//! `GET /metrics` end to end: the `strowger serve` binary provisioning two sandbox hypervisors
//! over OVSDB, frames injected into their VIFs so the engine sees packet-ins and installs flows,
//! and the exposition scraped before and after. What it shows is checked against what OVS shows
//! (switches connected, reactive flows in `dump-flows`) and against what the test did (a REST
//! request that must be a 404), never against fixed totals.

mod common;

use common::exposition::Samples;
use common::lab::{hex, poll, Lab};
use serde_json::json;

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

/// A broadcast (or unicast when `dst` says so) of a local-experimental EtherType.
fn frame(src: [u8; 6], dst: [u8; 6], tag: &str) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(tag.as_bytes());
    f.resize(60, 0);
    f
}

/// The reactive flows (flow-cache entries the engine installed) on host `hv`, per OVS.
fn reactive_flows(lab: &Lab, hv: usize) -> usize {
    lab.flows(hv, &["table=20"])
        .lines()
        .filter(|l| l.contains("cookie=0x53548"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_real_traffic() {
    let lab = Lab::start("vxlan", 2).await;
    let br = lab.api.post("/bridges", json!({"name": "net"})).await;
    let br = br["id"].as_str().unwrap().to_string();
    let a = lab.port(&br, 0, "a").await;
    let b = lab.port(&br, 1, "b").await;
    lab.plug(&[&a, &b]).await;

    // The state around the app: both br-ints are connected switches, both hosts' OVSDB
    // sessions are up.
    let n = lab.hvs.len() as f64;
    let before = lab.api.metrics().await;
    assert_eq!(before.get("strowger_switches_connected", &[]), Some(n));
    assert_eq!(before.get("strowger_ovsdb_hosts_connected", &[]), Some(n));
    assert_eq!(before.get("strowger_flows", &[]), Some(0.0));

    // A REST request whose answer must be a 404, counted under its route template.
    let missing = "/ports/00000000-0000-4000-8000-000000000001";
    assert_eq!(
        lab.api.status(missing).await,
        reqwest::StatusCode::NOT_FOUND
    );

    // b speaks (a broadcast: hv2's flow cache misses), then a answers b by unicast (hv1's
    // misses): each is a packet-in, a simulation and a flow installed.
    let hello = frame(mac(2), [0xff; 6], "hello");
    lab.send(&b, &hello);
    poll("b's broadcast at a", || {
        lab.sent(&a).contains(&hex(&hello)).then_some(())
    })
    .await;
    let reply = frame(mac(1), mac(2), "reply");
    lab.send(&a, &reply);
    poll("a's reply at b", || {
        lab.sent(&b).contains(&hex(&reply)).then_some(())
    })
    .await;
    let in_ovs = poll("a reactive flow on each host", || {
        let flows = (reactive_flows(&lab, 0), reactive_flows(&lab, 1));
        (flows.0 >= 1 && flows.1 >= 1).then_some(flows.0 + flows.1)
    })
    .await;

    let after = lab.api.metrics().await;
    let delta = |name: &str| after.count(name, &[]) - before.count(name, &[]);
    let packet_ins = delta("strowger_packet_ins_total");
    assert!(packet_ins >= 2.0, "packet-ins moved by {packet_ins}");
    assert!(delta("strowger_simulations_total") >= 2.0);
    // Every packet-in the app handled was timed, once.
    assert_eq!(delta("strowger_packet_in_seconds_count"), packet_ins);
    assert_eq!(
        after.get("strowger_packet_in_seconds_bucket", &[("le", "+Inf")]),
        after.get("strowger_packet_in_seconds_count", &[])
    );
    assert!(after.count("strowger_packet_in_seconds_sum", &[]) > 0.0);
    // Flows: as many installed as OVS shows at least, and the engine's level is OVS's count.
    assert!(
        delta("strowger_flows_installed_total") >= in_ovs as f64,
        "{} installed, {in_ovs} in OVS",
        delta("strowger_flows_installed_total")
    );
    assert_eq!(after.get("strowger_flows", &[]), Some(in_ovs as f64));
    assert_eq!(delta("strowger_flows_invalidated_total"), 0.0);
    assert_eq!(delta("strowger_packet_in_budget_hits_total"), 0.0);
    assert_eq!(delta("strowger_resyncs_total"), 0.0);
    // The switches are still there.
    assert_eq!(after.get("strowger_switches_connected", &[]), Some(n));

    // The 404, once, by route template (never the raw path).
    let requests = |s: &Samples, status: &str| {
        s.count(
            "strowger_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/api/v1/ports/{id}"),
                ("status", status),
            ],
        )
    };
    assert_eq!(requests(&after, "404") - requests(&before, "404"), 1.0);
    assert!(after
        .0
        .iter()
        .all(|s| !s.labels.values().any(|v| v.contains("00000000-0000"))));
    // The first scrape was answered, so this one counts it.
    assert!(
        after.count(
            "strowger_http_requests_total",
            &[("method", "GET"), ("route", "/metrics"), ("status", "200")],
        ) >= 1.0
    );

    // A topology change invalidates: b's port goes admin-down, the flows through it go, and
    // the counters and the level follow OVS.
    let mut port = lab.api.get(&format!("/ports/{}", b.port)).await.unwrap();
    port["admin_state_up"] = json!(false);
    lab.api.put(&format!("/ports/{}", b.port), port).await;
    // The engine deletes them at once; OVS applies the deletes soon after.
    let deadline = tokio::time::Instant::now() + common::lab::LAB_WAIT;
    let (last, left) = loop {
        let last = lab.api.metrics().await;
        let left = reactive_flows(&lab, 0) + reactive_flows(&lab, 1);
        let level = last.get("strowger_flows", &[]);
        if left < in_ovs && level == Some(left as f64) {
            break (last, left);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "flows never settled: {left} in OVS, the engine says {level:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let invalidated = last.count("strowger_flows_invalidated_total", &[])
        - after.count("strowger_flows_invalidated_total", &[]);
    assert_eq!(invalidated, (in_ovs - left) as f64);
}
