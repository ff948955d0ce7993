//! Benchmark: provisioning a full tunnel mesh of N simulated hosts end to end, each host a
//! private ovsdb-server (no vswitchd), through the real provisioner. Reports the time from
//! `set_desired` until every host's replica shows its N-1 tunnel ports, and the rate of
//! OVSDB transactions; then a membership change (one host leaves) and its reconcile time.
//!
//! With `--vswitchd`, each host is a full sandbox (ovsdb-server + `ovs-vswitchd
//! --enable-dummy=system`) and the mesh counts as done only once vswitchd has given every
//! tunnel port an ofport.
//!
//! `cargo run --release -p strowger --example provision_bench -- [HOSTS] [--vswitchd]`
//! (default 50 hosts, databases only).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use strowger::provision::{
    DatapathType, DesiredHost, DesiredState, DesiredZone, HostViews, ProvisionConfig, Provisioner,
    TunnelType,
};
use testbed::Sandbox;
use tokio::sync::watch;
use uuid::Uuid;

async fn wait_for(
    views: &mut watch::Receiver<HostViews>,
    what: &str,
    f: impl Fn(&HostViews) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !f(&views.borrow_and_update()) {
        if tokio::time::timeout_at(deadline, views.changed())
            .await
            .is_err()
        {
            panic!("timed out waiting for {what}");
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(50);
    let vswitchd = args.iter().any(|a| a == "--vswitchd");
    let t = Instant::now();
    let sbs: Vec<Sandbox> = (0..n)
        .map(|i| {
            let name = format!("b{i}");
            let sb = if vswitchd {
                Sandbox::start(&name)
            } else {
                Sandbox::start_db_only(&name)
            }
            .expect("sandbox (install openvswitch-switch)");
            if !vswitchd {
                sb.vsctl(&["--no-wait", "init"]).expect("init");
            }
            sb
        })
        .collect();
    let what = if vswitchd {
        "sandboxes (with vswitchd)"
    } else {
        "ovsdb-servers"
    };
    println!("{n} {what} started in {:?}", t.elapsed());
    let hosts: Vec<DesiredHost> = sbs
        .iter()
        .enumerate()
        .map(|(i, sb)| DesiredHost {
            id: Uuid::new_v4(),
            name: format!("h{i}"),
            ovsdb: Some(sb.db_target().parse().unwrap()),
            datapath_type: DatapathType::System,
            cert_cn: None,
        })
        .collect();
    let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 1) as u8));
    let zone = |members: &[DesiredHost]| DesiredZone {
        id: Uuid::nil(),
        name: "mesh".into(),
        kind: TunnelType::Vxlan,
        members: members
            .iter()
            .enumerate()
            .map(|(i, h)| (h.id, ip(i)))
            .collect(),
    };
    let mut cfg = ProvisionConfig::new("tcp:127.0.0.1:6653");
    cfg.set_local_ip = false;
    let p = Provisioner::new(cfg);
    let mut views = p.views();
    let (stop, stop_rx) = watch::channel(false);
    let task = {
        let p = p.clone();
        tokio::spawn(async move { p.run(None, stop_rx).await })
    };

    let t = Instant::now();
    p.set_desired(DesiredState {
        hosts: hosts.clone(),
        zones: vec![zone(&hosts)],
    });
    wait_for(&mut views, "full mesh", |v| {
        hosts.iter().all(|h| {
            v.get(&h.id).is_some_and(|v| {
                v.tunnels.len() == n - 1
                    && (!vswitchd || v.tunnels.values().all(|t| t.ofport.is_some()))
            })
        })
    })
    .await;
    let mesh = t.elapsed();
    println!(
        "full mesh: {n} hosts × {} tunnels ({} ports) in {mesh:?}: {:.0} host transactions/s, {:.0} ports/s",
        n - 1,
        n * (n - 1),
        n as f64 / mesh.as_secs_f64(),
        (n * (n - 1)) as f64 / mesh.as_secs_f64()
    );

    // One host leaves the zone: every other host drops one port, in one transaction each.
    let t = Instant::now();
    p.set_desired(DesiredState {
        hosts: hosts.clone(),
        zones: vec![zone(&hosts[1..])],
    });
    wait_for(&mut views, "member removed", |v| {
        v.get(&hosts[0].id).is_some_and(|v| v.tunnels.is_empty())
            && hosts[1..]
                .iter()
                .all(|h| v.get(&h.id).is_some_and(|v| v.tunnels.len() == n - 2))
    })
    .await;
    let leave = t.elapsed();
    println!(
        "member removal: {} hosts reconciled in {leave:?}: {:.0} host transactions/s",
        n,
        n as f64 / leave.as_secs_f64()
    );
    let ports: usize = sbs[1]
        .vsctl(&["--no-wait", "list-ports", "br-int"])
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("vx-"))
        .count();
    assert_eq!(ports, n - 2, "ports on a host after the change");
    let _ = stop.send(true);
    let _ = task.await;
}
