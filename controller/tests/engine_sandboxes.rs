//! The engine end to end on real OVS: three sandbox hypervisors (dummy datapath, real VXLAN or
//! GRE encapsulation over an emulated underlay), the `strowger serve` binary provisioning them
//! over OVSDB and answering their packet-ins. VIFs plugged with `external_ids:iface-id` bind
//! themselves; frames injected with `netdev-dummy/receive` are checked byte for byte in the
//! receiving VIFs' `tx_pcap`; what OVS shows (`dump-flows`, `ofproto/trace`) must agree.

mod common;

use common::lab::{
    arp_request, assert_tunnels_to, flow_field, hex, mac_str, poll, poll_within, Lab, Vm, LAB_WAIT,
};
use serde_json::json;

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

async fn three_hosts_one_bridge(tunnel: &str) {
    let lab = Lab::start(tunnel, 3).await;
    let br = lab
        .api
        .post(
            "/bridges",
            serde_json::json!({"name": "net", "tenant_id": "acme"}),
        )
        .await;
    let br_id = br["id"].as_str().unwrap();
    // a on hv1, b and c on hv2, d on hv3.
    let mut vms: Vec<Vm> = vec![];
    for (n, hv) in [0, 1, 1, 2].into_iter().enumerate() {
        vms.push(lab.port(br_id, hv, &format!("vm{n}")).await);
    }
    lab.plug(&vms.iter().collect::<Vec<_>>()).await;
    for vm in &vms {
        // REST shows where the port is.
        let shown = lab.api.get(&format!("/ports/{}", vm.port)).await.unwrap();
        assert_eq!(shown["tunnel_key"].as_u64(), Some(vm.key));
    }
    let sent = |i: usize| lab.sent(&vms[i]);

    // 1. A broadcast from a reaches b, c (both on hv2: one tunnel copy each) and d, not a.
    let arp = arp_request(mac(1), [10, 0, 0, 1], [10, 0, 0, 4]);
    lab.send(&vms[0], &arp);
    for vm in &vms[1..] {
        poll("the broadcast on every other VIF", || {
            lab.sent(vm).contains(&hex(&arp)).then_some(())
        })
        .await;
    }
    // 2. d answers a by unicast: only a gets it (a's MAC was learned from the broadcast).
    let reply = unicast(mac(4), mac(1), "reply");
    lab.send(&vms[3], &reply);
    poll("the reply at a", || {
        sent(0).contains(&hex(&reply)).then_some(())
    })
    .await;
    // 3. a to d, now both known: only d gets it, and a second frame goes by the installed flow.
    let to_d = unicast(mac(1), mac(4), "to-d");
    lab.send(&vms[0], &to_d);
    poll("a's frame at d", || {
        sent(3).contains(&hex(&to_d)).then_some(())
    })
    .await;
    let to_d2 = unicast(mac(1), mac(4), "to-d-again");
    lab.send(&vms[0], &to_d2);
    poll("the second frame at d", || {
        sent(3).contains(&hex(&to_d2)).then_some(())
    })
    .await;
    // Every frame arrived once, and the unicasts nowhere else.
    for (i, vm) in vms.iter().enumerate() {
        let got = lab.sent(vm);
        let want: Vec<String> = match i {
            0 => vec![hex(&reply)],
            1 | 2 => vec![hex(&arp)],
            _ => vec![hex(&arp), hex(&to_d), hex(&to_d2)],
        };
        assert_eq!(got, want, "frames out of {}", vm.vif);
    }

    // What OVS shows agrees: hv1 has a flow-cache entry a→d that tunnels with d's key, and
    // ofproto/trace of that packet takes that flow and pushes a tunnel header with that key.
    let a_port = lab.ofport(&vms[0]).unwrap();
    let flows = lab.flows(0, &["table=20"]);
    let cache: Vec<&str> = flows
        .lines()
        .filter(|l| l.contains("cookie=0x53548"))
        .collect();
    assert!(!cache.is_empty(), "{flows}");
    let a_to_d = cache
        .iter()
        .find(|l| l.contains(&format!("dl_dst={}", mac_str(mac(4)))))
        .unwrap_or_else(|| panic!("no a→d flow in {flows}"));
    assert!(
        a_to_d.contains(&format!("metadata={:#x}", vms[0].key))
            && a_to_d.contains(&format!("set_field:{:#x}->tun_id", vms[3].key))
            && !a_to_d.contains("dl_type")
            && a_to_d.contains("send_flow_rem"),
        "{a_to_d}"
    );
    let trace = lab.trace(
        0,
        &format!(
            "in_port={a_port},dl_src={},dl_dst={},dl_type=0x88b5",
            mac_str(mac(1)),
            mac_str(mac(4))
        ),
    );
    let cookie = flow_field(a_to_d, "cookie=").unwrap();
    assert!(trace.contains(&format!("cookie {cookie}")), "{trace}");
    assert_tunnels_to(&trace, tunnel, vms[3].key);
    // Every flow-cache entry on every host is reachable by the packet it names: a trace of its
    // own match (through the classifier) ends in that very flow.
    for h in 0..lab.hvs.len() {
        let flows = lab.flows(h, &["table=20"]);
        for l in flows.lines().filter(|l| l.contains("cookie=0x53548")) {
            let field = |k: &str| flow_field(l, k);
            let md = field("metadata=").unwrap();
            let vm = vms
                .iter()
                .find(|v| v.hv == h && format!("{:#x}", v.key) == md)
                .expect("cache flows name a local port's key");
            let mut pkt = format!("in_port={}", lab.ofport(vm).unwrap());
            for k in ["dl_src=", "dl_dst="] {
                if let Some(v) = field(k) {
                    pkt.push_str(&format!(",{k}{v}"));
                }
            }
            let trace = lab.trace(h, &pkt);
            let cookie = field("cookie=").unwrap();
            assert!(trace.contains(&format!("cookie {cookie}")), "{l}\n{trace}");
        }
    }
    assert!(lab.oracle().await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_across_three_hosts_over_vxlan() {
    three_hosts_one_bridge("vxlan").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_across_three_hosts_over_gre() {
    three_hosts_one_bridge("gre").await;
}

/// `kill -9` of the controller and a restart on the same store: the engine reconciles every
/// br-int — the pipeline entry of a VIF unplugged while it was down goes, the old session's
/// reactive flows go, and traffic flows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_controller_restarts_and_leaves_nothing_stale() {
    let dir = std::env::temp_dir().join(format!("strowger-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("data dir");
    let mut lab = Lab::start_with("vxlan", 2, Some(&dir)).await;
    let br = lab.api.post("/bridges", json!({"name": "net"})).await;
    let br = br["id"].as_str().unwrap().to_string();
    let a = lab.port(&br, 0, "a").await;
    let b = lab.port(&br, 1, "b").await;
    let c = lab.port(&br, 0, "c").await;
    lab.plug(&[&a, &b, &c]).await;
    // b speaks, then a reaches b through a reactive flow on hv1.
    lab.send(&b, &unicast(mac(2), mac(9), "b"));
    lab.send(&a, &unicast(mac(1), mac(2), "a to b"));
    lab.arrives(&b, "a's frame at b", |f| {
        (f == unicast(mac(1), mac(2), "a to b")).then_some(())
    })
    .await;
    // c reaches b too: a second reactive flow on hv1, still right after the restart.
    lab.send(&c, &unicast(mac(3), mac(2), "c to b"));
    lab.arrives(&b, "c's frame at b", |f| {
        (f == unicast(mac(3), mac(2), "c to b")).then_some(())
    })
    .await;
    let a_port = lab.ofport(&a).expect("a's ofport");
    let flow_of = |lab: &Lab, vm: &Vm| {
        let key = format!("metadata={:#x},", vm.key);
        let flows = lab.flows(0, &["table=20"]);
        flows
            .lines()
            .find(|l| l.contains("cookie=0x53548") && l.contains(&key))
            .and_then(|l| flow_field(l, "cookie="))
            .map(str::to_owned)
    };
    poll("a's and c's reactive flows on hv1", || {
        Some((flow_of(&lab, &a)?, flow_of(&lab, &c)?))
    })
    .await;
    let c_cookie = flow_of(&lab, &c).unwrap();

    lab.kill();
    // While it is down, a's VIF leaves hv1: its classifier entry stays behind in OVS.
    lab.hvs[0]
        .vsctl(&["del-port", "br-int", "a"])
        .expect("del-port");
    assert!(lab.flows(0, &[]).contains(&format!("in_port={a_port} ")));
    lab.restart().await;

    // Read back and checked: a's flow is stale (its port is gone) and goes; c's flow is what
    // the restarted engine would install and stays, the same flow with the same cookie.
    poll(
        "hv1 reconciled: a's entry and a's old reactive flow gone",
        || {
            let flows = lab.flows(0, &[]);
            let stale = flows.contains(&format!("in_port={a_port} "));
            let pipeline = flows.contains("actions=CONTROLLER");
            (!stale && flow_of(&lab, &a).is_none() && pipeline).then_some(())
        },
    )
    .await;
    assert_eq!(
        flow_of(&lab, &c).as_deref(),
        Some(c_cookie.as_str()),
        "c's flow was not kept"
    );
    let packets = |lab: &Lab| {
        let flows = lab.flows(0, &["table=20"]);
        flows
            .lines()
            .find(|l| l.contains(&format!("cookie={c_cookie},")))
            .and_then(|l| flow_field(l, "n_packets="))
            .and_then(|n| n.parse::<u64>().ok())
    };
    let before = packets(&lab).expect("c's flow");
    // No entry of the pipeline is left from the old session's phase either.
    for hv in 0..2 {
        let flows = lab.flows(hv, &[]);
        for l in flows.lines().filter(|l| l.contains("cookie=")) {
            assert!(l.contains("cookie=0x5354"), "a foreign flow: {l}");
        }
    }
    // Traffic goes on through the kept flow: c reaches b, and the flow counts it.
    lab.send(&c, &unicast(mac(3), mac(2), "c to b again"));
    lab.arrives(&b, "c's frame at b", |f| {
        (f == unicast(mac(3), mac(2), "c to b again")).then_some(())
    })
    .await;
    if poll_within(LAB_WAIT, || (packets(&lab)? > before).then_some(()))
        .await
        .is_none()
    {
        panic!(
            "c's kept flow {c_cookie} did not carry it (had {before}):\n{}",
            lab.flows(0, &["table=20"])
        );
    }
    assert!(lab.oracle().await >= 1);
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A host joining the zone takes no flow that does not cross to it. hv1's flow a→b keeps its
/// cookie once hv1 has its tunnel to the new host and that tunnel's classifier entry (the
/// engine sends the deletes of a bindings change before that entry, on the same connection),
/// and every flow still re-simulates to what it does. Every flow of every host was deleted
/// before: each hypervisor added to a running cloud cost a packet-in per active flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_joining_the_zone_keeps_the_flows_that_do_not_cross_to_it() {
    let mut lab = Lab::start("vxlan", 2).await;
    let br = lab
        .api
        .post("/bridges", json!({"name": "net", "tenant_id": "acme"}))
        .await;
    let br_id = br["id"].as_str().unwrap();
    let a = lab.port(br_id, 0, "vm0").await;
    let b = lab.port(br_id, 1, "vm1").await;
    lab.plug(&[&a, &b]).await;
    // b speaks, so a→b is a unicast flow on hv1.
    let arp = arp_request(mac(2), [10, 0, 0, 2], [10, 0, 0, 1]);
    lab.send(&b, &arp);
    poll("b's broadcast at a", || {
        lab.sent(&a).contains(&hex(&arp)).then_some(())
    })
    .await;
    let to_b = unicast(mac(1), mac(2), "to-b");
    lab.send(&a, &to_b);
    poll("a's frame at b", || {
        lab.sent(&b).contains(&hex(&to_b)).then_some(())
    })
    .await;
    let a_to_b = |lab: &Lab| -> Option<String> {
        let flows = lab.flows(0, &["table=20"]);
        let line = flows.lines().find(|l| {
            l.contains("cookie=0x53548") && l.contains(&format!("dl_dst={}", mac_str(mac(2))))
        })?;
        flow_field(line, "cookie=").map(str::to_string)
    };
    let cookie = a_to_b(&lab).expect("a→b flow on hv1");

    lab.add_host().await;
    poll("hv1's classifier entries for both its tunnels", || {
        let flows = lab.flows(0, &["table=0"]);
        (flows.matches("goto_table:10").count() == 2).then_some(())
    })
    .await;
    assert_eq!(
        a_to_b(&lab),
        Some(cookie),
        "{}",
        lab.flows(0, &["table=20"])
    );
    assert!(lab.oracle().await >= 1);
    // And it still carries a's frames.
    let again = unicast(mac(1), mac(2), "to-b-again");
    lab.send(&a, &again);
    poll("a's second frame at b", || {
        lab.sent(&b).contains(&hex(&again)).then_some(())
    })
    .await;
}
