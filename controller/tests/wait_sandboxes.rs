//! `--wait` / `?wait=true` end to end on real OVS: a change answered with `wait` has already
//! left every host's flow table when the answer arrives (checked with `dump-flows` right after
//! it, with no sleep or poll in between); a switch that never answers barriers makes the wait
//! time out with 504 naming it, and leaving mid-wait drops it from the set waited for.

mod common;

use std::time::{Duration, Instant};

use common::lab::{poll, Lab, Vm};
use common::FakeSwitch;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

/// A unicast frame of a local-experimental EtherType carrying `tag`.
fn unicast(src: [u8; 6], dst: [u8; 6], tag: &str) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(tag.as_bytes());
    f.resize(60, 0);
    f
}

/// The flow-cache entries of host `hv` that deliver to, or come from, the port with `key`.
fn reactive_for(lab: &Lab, hv: usize, key: u64) -> Vec<String> {
    lab.flows(hv, &["table=20"])
        .lines()
        .filter(|l| l.contains("cookie=0x53548"))
        .filter(|l| {
            l.contains(&format!("set_field:{key:#x}->tun_id"))
                || l.contains(&format!("metadata={key:#x}"))
        })
        .map(str::to_string)
        .collect()
}

/// a (hv1) and c (hv3) send to b (hv2), b answers a: every host gets flow-cache entries for b.
async fn traffic_through_b(lab: &Lab, a: &Vm, b: &Vm, c: &Vm, round: &str) {
    lab.send(b, &unicast(mac(2), mac(9), &format!("{round} b speaks")));
    lab.send(a, &unicast(mac(1), mac(2), &format!("{round} a to b")));
    lab.send(c, &unicast(mac(3), mac(2), &format!("{round} c to b")));
    lab.send(b, &unicast(mac(2), mac(1), &format!("{round} b to a")));
    for hv in 0..3 {
        poll("flow-cache entries for b on every host", || {
            (!reactive_for(lab, hv, b.key).is_empty()).then_some(())
        })
        .await;
    }
}

/// Every host's table shows no flow for b: asserted right after the answer, no waiting.
fn assert_no_flows_for(lab: &Lab, b: &Vm, after: &str) {
    for hv in 0..3 {
        let left = reactive_for(lab, hv, b.key);
        assert!(
            left.is_empty(),
            "after {after}, hv{} still has {left:#?}",
            hv + 1
        );
    }
}

fn revision_of(headers: &reqwest::header::HeaderMap) -> u64 {
    headers
        .get("x-strowger-revision")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no X-Strowger-Revision in {headers:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_with_wait_has_left_every_flow_table_when_it_returns() {
    let lab = Lab::start("vxlan", 3).await;
    let fw = lab.api.post("/chains", json!({"name": "fw"})).await;
    let fw = fw["id"].as_str().unwrap().to_string();
    let br = lab
        .api
        .post("/bridges", json!({"name": "net", "inbound_filter_id": fw}))
        .await;
    let br = br["id"].as_str().unwrap().to_string();
    let a = lab.port(&br, 0, "a").await;
    let b = lab.port(&br, 1, "b").await;
    let c = lab.port(&br, 2, "c").await;
    lab.plug(&[&a, &b]).await;
    // c is plugged on hv3 with ovs-vsctl alone while hv1's vswitchd is frozen, then
    // `strowger wait`: c's binding is a new bindings generation for every switch, so it does
    // not return while hv1 cannot confirm it; once thawed it does, and hv3's br-int already
    // classifies c's VIF and demultiplexes its key.
    let cli_api = lab.api.base().trim_end_matches("/api/v1").to_string();
    let bindings0 = revision_status(&lab).await["bindings"].as_u64().unwrap();
    lab.hvs[0].freeze_switch().expect("freeze hv1");
    lab.plug_only(&[&c]);
    let c_port = lab.ofport(&c).expect("ovs-vsctl gave c an ofport");
    let mut wait = std::process::Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["wait", "--timeout", "20000", "--api", &cli_api])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run the CLI");
    poll_api("c's binding handed to the app", || async {
        let b = revision_status(&lab).await["bindings"].as_u64()?;
        (b > bindings0).then_some(())
    })
    .await;
    // Time enough for a CLI that does not wait to have returned (a negative check: the
    // assertions after the answer below have no sleep before them).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        wait.try_wait().expect("CLI status").is_none(),
        "`strowger wait` returned while hv1 was frozen"
    );
    lab.hvs[0].thaw_switch().expect("thaw hv1");
    let done = tokio::task::spawn_blocking(move || wait.wait())
        .await
        .expect("task")
        .expect("CLI exit");
    assert!(done.success(), "{done:?}");
    assert!(
        lab.bound(&lab.hvs[2], &c, c_port),
        "`strowger wait` returned before c's VIF was bound:\n{}",
        lab.flows(2, &[])
    );
    traffic_through_b(&lab, &a, &b, &c, "1").await;

    // 1. The CLI: b set admin-down with --wait, while hv2's vswitchd is frozen. The CLI does
    // not return while hv2 cannot answer; once thawed it does, and then no host has a flow
    // for b.
    let rev0 = revision_status(&lab).await["revision"].as_u64().unwrap();
    lab.hvs[1].freeze_switch().expect("freeze hv2");
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["port", "update", &b.port, "admin_state_up=false", "--wait"])
        .args(["--api", &cli_api])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run the CLI");
    let rev1 = applied_except(&lab, rev0, 1).await;
    assert!(
        cli.try_wait().expect("CLI status").is_none(),
        "`--wait` returned while hv2 had not applied revision {rev1}"
    );
    lab.hvs[1].thaw_switch().expect("thaw hv2");
    let done = tokio::task::spawn_blocking(move || cli.wait())
        .await
        .expect("task")
        .expect("CLI exit");
    assert!(done.success(), "{done:?}");
    assert_no_flows_for(&lab, &b, "`port update --wait` (admin down)");

    // 2. REST: b up again (PUT ?wait=true), flows again, then a drop rule on the bridge's
    // filter (POST ?wait=true) while hv3 is frozen: it answers only once hv3 is thawed, and
    // then every flow through the filter is gone.
    let (_, _, mut port) = lab
        .api
        .request(Method::GET, &format!("/ports/{}", b.port), None)
        .await;
    port["admin_state_up"] = Value::Bool(true);
    let (status, _, v) = lab
        .api
        .request(
            Method::PUT,
            &format!("/ports/{}?wait=true", b.port),
            Some(port),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    traffic_through_b(&lab, &a, &b, &c, "2").await;
    let rev2 = revision_status(&lab).await["revision"].as_u64().unwrap();
    lab.hvs[2].freeze_switch().expect("freeze hv3");
    let url = format!(
        "{}/chains/{fw}/rules?wait=true&timeout=20000",
        lab.api.base()
    );
    let write = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(url)
            .json(&json!({"action": "drop", "dl_type": 0x88b5}))
            .send()
            .await
            .expect("REST reachable");
        (r.status(), r.headers().clone())
    });
    applied_except(&lab, rev2, 2).await;
    assert!(!write.is_finished(), "answered while hv3 lagged");
    lab.hvs[2].thaw_switch().expect("thaw hv3");
    let (status, headers) = write.await.expect("the write answered");
    assert_eq!(status, StatusCode::CREATED);
    assert_no_flows_for(&lab, &b, "a drop rule POSTed with ?wait=true");

    // Where everyone stands: every host and switch at or past the write's revision.
    let rev = revision_of(&headers);
    let (_, _, status) = lab.api.request(Method::GET, "/revision", None).await;
    assert!(status["revision"].as_u64().unwrap() >= rev, "{status}");
    let hosts = status["hosts"].as_array().unwrap();
    let switches = status["switches"].as_array().unwrap();
    assert_eq!((hosts.len(), switches.len()), (3, 3), "{status}");
    for h in hosts {
        assert_eq!(h["connected"], true, "{status}");
        assert!(h["applied_revision"].as_u64().unwrap() >= rev, "{status}");
    }
    for s in switches {
        assert!(s["applied_revision"].as_u64().unwrap() >= rev, "{status}");
    }
    // `strowger wait` returns at once when all is applied.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["wait", "--timeout", "5000", "--api", &cli_api])
        .output()
        .expect("run the CLI");
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_that_does_not_answer_barriers_times_out_and_leaving_releases_the_wait() {
    let lab = Lab::start("vxlan", 1).await;
    // A switch that completes the handshake and then reads nothing: no barrier is answered.
    let dpid = 0xfa4e;
    let mut mute = FakeSwitch::handshake(lab.openflow, dpid).await;
    poll_api("the mute switch registered", || async {
        let v = revision_status(&lab).await;
        let want = format!("{dpid:016x}");
        v["switches"]
            .as_array()?
            .iter()
            .any(|s| s["dpid"] == want.as_str())
            .then_some(())
    })
    .await;

    // 1. A tiny timeout: 504 naming the switch (not the host, which applied it); the write is
    // committed and its revision is in the answer.
    let (status, headers, v) = lab
        .api
        .request(
            Method::POST,
            "/bridges?wait=true&timeout=300",
            Some(json!({"name": "late"})),
        )
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{v}");
    assert_eq!(v["error"]["code"], "timeout", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("switch 000000000000fa4e"), "{message}");
    assert!(!message.contains("host hv1"), "{message}");
    let rev = revision_of(&headers);
    let (_, _, bridges) = lab.api.request(Method::GET, "/bridges", None).await;
    assert_eq!(bridges[0]["name"], "late", "{bridges}");
    assert!(rev > 0);

    // 2. A long wait, and the mute switch leaves in the middle of it: the write returns (2xx),
    // long before its timeout, once only the real host is left to wait for.
    let api = lab.api.base().to_string();
    let started = Instant::now();
    let write = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{api}/bridges?wait=true&timeout=60000"))
            .json(&json!({"name": "released"}))
            .send()
            .await
            .map(|r| r.status())
    });
    // The write is committed (past the first one's revision) and waits for the mute switch.
    let base_rev = rev;
    poll_api("the second write committed", || async {
        let v = revision_status(&lab).await;
        (v["revision"].as_u64()? > base_rev).then_some(())
    })
    .await;
    assert!(!write.is_finished(), "returned while the mute switch lags");
    mute.stream.shutdown().await.expect("close the mute switch");
    drop(mute);
    let status = tokio::time::timeout(Duration::from_secs(20), write)
        .await
        .expect("the write returned after the switch left")
        .expect("task")
        .expect("HTTP");
    assert_eq!(status, StatusCode::CREATED);
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Polls the async `f` every 50 ms until it returns `Some`, failing after `LAB_WAIT`.
async fn poll_api<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + common::lab::LAB_WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a write after `after` is committed and every switch but host `frozen`'s has
/// applied it (so the write is now waiting for that one alone); returns its revision.
async fn applied_except(lab: &Lab, after: u64, frozen: usize) -> u64 {
    let frozen_dpid = lab.hvs[frozen]
        .vsctl(&["get", "Bridge", "br-int", "datapath_id"])
        .expect("datapath id")
        .trim()
        .trim_matches('"')
        .to_string();
    poll_api(
        "the write applied by every switch but the frozen one",
        || async {
            let v = revision_status(lab).await;
            let rev = v["revision"].as_u64()?;
            let others_done = v["switches"].as_array()?.iter().all(|s| {
                s["dpid"] == frozen_dpid.as_str()
                    || s["applied_revision"].as_u64().is_some_and(|r| r >= rev)
            });
            (rev > after && others_done).then_some(rev)
        },
    )
    .await
}

/// `GET /revision`.
async fn revision_status(lab: &Lab) -> Value {
    lab.api.request(Method::GET, "/revision", None).await.2
}
