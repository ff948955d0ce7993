//! Host provisioning against real OVS sandboxes (ovsdb-server + ovs-vswitchd with the dummy
//! datapath, joined by an underlay): br-int and its controller, a VXLAN and a GRE mesh,
//! encapsulation on the wire, membership changes, idempotence, reconnects, passive hosts.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use strowger::provision::{
    datapath_id, host_by_datapath, DatapathType, DesiredHost, DesiredState, DesiredZone, HostViews,
    ProvisionConfig, Provisioner, TunnelType,
};
use testbed::{Sandbox, Underlay};
use tokio::sync::watch;
use uuid::Uuid;

const CTL: &str = "tcp:127.0.0.1:16999";

fn cfg() -> ProvisionConfig {
    let mut c = ProvisionConfig::new(CTL);
    // Dummy sandboxes: local_ip breaks native tunnel routing (lab README).
    c.set_local_ip = false;
    c
}

struct Lab {
    _net: Underlay,
    hvs: Vec<Sandbox>,
    hosts: Vec<DesiredHost>,
}

fn ip(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 168, 0, n as u8))
}

fn lab(n: usize) -> Lab {
    let net = Underlay::new("n1").expect("underlay (install openvswitch-switch)");
    let hvs: Vec<Sandbox> = (1..=n)
        .map(|i| Sandbox::start(&format!("hv{i}")).expect("sandbox"))
        .collect();
    for (i, hv) in hvs.iter().enumerate() {
        let IpAddr::V4(a) = ip(i + 1) else {
            unreachable!()
        };
        net.attach(hv, a).expect("attach");
    }
    Underlay::neigh_fill(&hvs.iter().collect::<Vec<_>>()).expect("neigh");
    let hosts = hvs
        .iter()
        .enumerate()
        .map(|(i, hv)| DesiredHost {
            id: Uuid::new_v4(),
            name: format!("hv{}", i + 1),
            ovsdb: Some(hv.db_target().parse().unwrap()),
            datapath_type: DatapathType::System,
            cert_cn: None,
        })
        .collect();
    Lab {
        _net: net,
        hvs,
        hosts,
    }
}

fn zone(kind: TunnelType, hosts: &[&DesiredHost], all: &[DesiredHost]) -> DesiredZone {
    DesiredZone {
        id: Uuid::new_v4(),
        name: format!("{kind:?}"),
        kind,
        members: hosts
            .iter()
            .map(|h| (h.id, ip(all.iter().position(|a| a.id == h.id).unwrap() + 1)))
            .collect(),
    }
}

fn start(p: &Provisioner) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stop_rx) = watch::channel(false);
    let p = p.clone();
    (
        stop,
        tokio::spawn(async move { p.run(None, stop_rx).await }),
    )
}

/// Waits until every host's view has `tunnels` tunnel ports, all with ofports.
async fn converged(
    views: &mut watch::Receiver<HostViews>,
    hosts: &[DesiredHost],
    tunnels: usize,
) -> HostViews {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        {
            let v = views.borrow_and_update();
            let ok = hosts.iter().all(|h| {
                v.get(&h.id).is_some_and(|view| {
                    view.connected
                        && view.tunnels.len() == tunnels
                        && view.tunnels.values().all(|t| t.ofport.is_some())
                        && view.datapath_id == Some(datapath_id(h.id))
                })
            });
            if ok {
                return v.clone();
            }
        }
        if tokio::time::timeout_at(deadline, views.changed())
            .await
            .is_err()
        {
            panic!("not converged to {tunnels} tunnels: {:#?}", views.borrow());
        }
    }
}

fn tunnel_ports(hv: &Sandbox) -> Vec<String> {
    let mut v: Vec<String> = hv
        .vsctl(&["list-ports", "br-int"])
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("vx-") || l.starts_with("gr-"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn port_uuids(hv: &Sandbox) -> String {
    let mut v: Vec<String> = hv
        .vsctl(&["--bare", "--columns=_uuid,name", "list", "Interface"])
        .unwrap()
        .split("\n\n")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v.join("\n")
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    Sandbox::wait_until(Duration::from_secs(20), &mut f)
        .unwrap_or_else(|| panic!("timed out: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_vxlan_and_gre_mesh() {
    // RUST_LOG=strowger=debug,ovsdb=debug shows the sessions.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let Lab { _net, hvs, hosts } = lab(3);
    let all: Vec<&DesiredHost> = hosts.iter().collect();
    let state = DesiredState {
        hosts: hosts.clone(),
        zones: vec![
            zone(TunnelType::Vxlan, &all, &hosts),
            zone(TunnelType::Gre, &all, &hosts),
        ],
    };
    let p = Provisioner::new(cfg());
    let mut views = p.views();
    p.set_desired(state.clone());
    let (stop, task) = start(&p);
    let t0 = Instant::now();
    let v = converged(&mut views, &hosts, 4).await;
    eprintln!("3 hosts × 4 tunnels converged in {:?}", t0.elapsed());
    for h in &hosts {
        assert_eq!(host_by_datapath(&v, datapath_id(h.id)), Some(h.id));
    }

    for (i, hv) in hvs.iter().enumerate() {
        let show = hv.vsctl(&["show"]).unwrap();
        assert!(show.contains("Bridge br-int"), "{show}");
        assert!(show.contains(&format!("Controller \"{CTL}\"")), "{show}");
        assert!(show.contains("fail_mode: secure"), "{show}");
        assert_eq!(show.matches("type: vxlan").count(), 2, "{show}");
        assert_eq!(show.matches("type: gre").count(), 2, "{show}");
        assert!(!show.contains("local_ip"), "{show}");
        let get = |col: &str| {
            let v = hv.vsctl(&["get", "Bridge", "br-int", col]).unwrap();
            v.trim().trim_matches('"').to_string()
        };
        assert_eq!(get("protocols"), "[OpenFlow13]");
        assert_eq!(
            get("other_config:datapath-id"),
            format!("{:016x}", datapath_id(hosts[i].id))
        );
        assert_eq!(get("other_config:disable-in-band"), "true");
        assert_eq!(
            hv.vsctl(&["get", "Controller", "br-int", "connection_mode"])
                .unwrap()
                .trim(),
            "out-of-band"
        );
        // Each tunnel points at the right peer.
        for (j, peer) in hosts.iter().enumerate() {
            if i == j {
                continue;
            }
            let t = &v[&hosts[i].id].tunnels[&(peer.id, TunnelType::Vxlan)];
            let remote = hv
                .vsctl(&["get", "Interface", &t.name, "options:remote_ip"])
                .unwrap();
            assert_eq!(remote.trim(), format!("\"{}\"", ip(j + 1)));
        }
    }

    // VIFs are reported with their ofports.
    for (i, hv) in hvs.iter().take(2).enumerate() {
        let n = i + 1;
        hv.vsctl(&[
            "add-port",
            "br-int",
            &format!("vif{n}"),
            "--",
            "set",
            "Interface",
            &format!("vif{n}"),
            &format!("external_ids:iface-id=lp{n}"),
            &format!("options:tx_pcap={}/vif{n}-tx.pcap", hv.dir().display()),
        ])
        .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let vif = |views: &watch::Receiver<HostViews>, h: usize, lp: &str| {
        views
            .borrow()
            .get(&hosts[h].id)
            .and_then(|v| v.vifs.get(lp))
            .and_then(|v| v.ofport)
    };
    while vif(&views, 0, "lp1").is_none() || vif(&views, 1, "lp2").is_none() {
        tokio::time::timeout_at(deadline, views.changed())
            .await
            .expect("vif lp2 reported")
            .unwrap();
    }

    // A packet with a hand-set flow leaves hv1 encapsulated towards hv2 and reaches vif2.
    let (vif1, vif2) = (
        vif(&views, 0, "lp1").unwrap(),
        vif(&views, 1, "lp2").unwrap(),
    );
    let v = views.borrow().clone();
    let to_hv2 = v[&hosts[0].id].tunnel_ofport(hosts[1].id).unwrap();
    let from_hv1 = v[&hosts[1].id].tunnel_ofport(hosts[0].id).unwrap();
    hvs[0]
        .ofctl(&[
            "add-flow",
            "br-int",
            &format!("priority=1000,in_port={vif1},actions=set_field:0x64->tun_id,output:{to_hv2}"),
        ])
        .unwrap();
    hvs[1]
        .ofctl(&[
            "add-flow",
            "br-int",
            &format!("priority=1000,in_port={from_hv1},tun_id=0x64,actions=output:{vif2}"),
        ])
        .unwrap();
    let frame = "f00000000022f00000000001123400000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
    let pcap = hvs[1].dir().join("vif2-tx.pcap");
    poll("frame crosses hv1 -> hv2", || {
        hvs[0]
            .appctl(&["netdev-dummy/receive", "vif1", frame])
            .unwrap();
        let out = hvs[1]
            .tool("ovs-pcap", &[&pcap.to_string_lossy()])
            .unwrap_or_default();
        out.contains("f00000000022f00000000001").then_some(())
    });
    let dp = hvs[0].appctl(&["dpctl/dump-flows"]).unwrap();
    assert!(dp.contains("tnl_push"), "{dp}");
    assert!(dp.contains(&format!("dst={}", ip(2))), "{dp}");

    // Idempotent: the same state again, then a fresh provisioner (a reconnect), change nothing.
    hvs[0].vsctl(&["add-port", "br-int", "foreign"]).unwrap();
    let before: Vec<String> = hvs.iter().map(port_uuids).collect();
    p.set_desired(state.clone());
    stop.send(true).unwrap();
    task.await.unwrap();
    let p = Provisioner::new(cfg());
    let mut views = p.views();
    p.set_desired(state.clone());
    let (stop, task) = start(&p);
    converged(&mut views, &hosts, 4).await;
    let after: Vec<String> = hvs.iter().map(port_uuids).collect();
    assert_eq!(before, after, "a second provisioning changed rows");

    // Drift while no controller is connected: one of our tunnels deleted, one changed, a stale
    // one of ours added. The next session mends exactly that.
    stop.send(true).unwrap();
    task.await.unwrap();
    let ports = tunnel_ports(&hvs[2]);
    hvs[2].vsctl(&["del-port", &ports[0]]).unwrap();
    hvs[2]
        .vsctl(&[
            "set",
            "Interface",
            &ports[1],
            "options:remote_ip=192.168.0.77",
        ])
        .unwrap();
    hvs[2]
        .vsctl(&[
            "add-port",
            "br-int",
            "gr-stale",
            "--",
            "set",
            "Interface",
            "gr-stale",
            "type=gre",
            "options:remote_ip=192.168.0.97",
            "options:key=flow",
            "--",
            "set",
            "Port",
            "gr-stale",
            "external_ids:strowger-owner=strowger",
            &format!("external_ids:strowger-peer={}", Uuid::new_v4()),
        ])
        .unwrap();
    let p = Provisioner::new(cfg());
    let mut views = p.views();
    p.set_desired(state.clone());
    let (stop, task) = start(&p);
    converged(&mut views, &hosts, 4).await;
    poll("drift mended", || {
        (tunnel_ports(&hvs[2]) == ports).then_some(())
    });
    let remote = hvs[2]
        .vsctl(&["get", "Interface", &ports[1], "options:remote_ip"])
        .unwrap();
    assert_ne!(remote.trim(), "\"192.168.0.77\"");

    // Reconnect after the host's database restarts; drift made meanwhile is repaired.
    hvs[1].kill_db().unwrap();
    hvs[1].restart_db().unwrap();
    let victim = tunnel_ports(&hvs[1])[0].clone();
    hvs[1].vsctl(&["del-port", &victim]).unwrap();
    poll("deleted tunnel restored", || {
        tunnel_ports(&hvs[1]).contains(&victim).then_some(())
    });
    assert_eq!(tunnel_ports(&hvs[1]).len(), 4);

    // A stale tunnel port of ours (its peer is gone) is removed; a foreign one is not.
    let ghost = Uuid::new_v4();
    hvs[0]
        .vsctl(&[
            "add-port",
            "br-int",
            "vx-ghost",
            "--",
            "set",
            "Interface",
            "vx-ghost",
            "type=vxlan",
            "options:remote_ip=192.168.0.99",
            "options:key=flow",
            "--",
            "set",
            "Port",
            "vx-ghost",
            "external_ids:strowger-owner=strowger",
            &format!("external_ids:strowger-peer={ghost}"),
        ])
        .unwrap();
    hvs[0]
        .vsctl(&[
            "add-port",
            "br-int",
            "vx-theirs",
            "--",
            "set",
            "Interface",
            "vx-theirs",
            "type=vxlan",
            "options:remote_ip=192.168.0.98",
            "options:key=flow",
        ])
        .unwrap();
    poll("stale owned port removed", || {
        let ports = hvs[0].vsctl(&["list-ports", "br-int"]).unwrap();
        (!ports.contains("vx-ghost") && ports.contains("vx-theirs")).then_some(())
    });

    // Removing hv3 from both zones removes its ports everywhere; foreign ports stay.
    let two: Vec<&DesiredHost> = hosts.iter().take(2).collect();
    p.set_desired(DesiredState {
        hosts: hosts.clone(),
        zones: vec![
            zone(TunnelType::Vxlan, &two, &hosts),
            zone(TunnelType::Gre, &two, &hosts),
        ],
    });
    poll("hv3's tunnels removed", || {
        (tunnel_ports(&hvs[0]).len() == 3
            && tunnel_ports(&hvs[1]).len() == 2
            && tunnel_ports(&hvs[2]).is_empty())
        .then_some(())
    });
    assert!(tunnel_ports(&hvs[0]).contains(&"vx-theirs".to_string()));
    assert!(hvs[0]
        .vsctl(&["list-ports", "br-int"])
        .unwrap()
        .contains("foreign"));
    assert!(hvs[0]
        .vsctl(&["list-ports", "br-int"])
        .unwrap()
        .contains("vif1"));
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn passive_host_dials_in() {
    let hv = Sandbox::start("passive").expect("sandbox (install openvswitch-switch)");
    let host = DesiredHost {
        id: Uuid::new_v4(),
        name: "passive-hv".into(),
        ovsdb: None,
        datapath_type: DatapathType::System,
        cert_cn: None,
    };
    let p = Provisioner::new(cfg());
    let mut views = p.views();
    p.set_desired(DesiredState {
        hosts: vec![host.clone()],
        zones: vec![],
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stop_rx) = watch::channel(false);
    let task = {
        let p = p.clone();
        tokio::spawn(async move { p.run(Some(listener), stop_rx).await })
    };
    hv.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:system-id=passive-hv",
    ])
    .unwrap();
    hv.vsctl(&["set-manager", &format!("tcp:127.0.0.1:{port}")])
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while views.borrow().get(&host.id).and_then(|v| v.datapath_id) != Some(datapath_id(host.id)) {
        tokio::time::timeout_at(deadline, views.changed())
            .await
            .expect("passive host provisioned")
            .unwrap();
    }
    let show = hv.vsctl(&["show"]).unwrap();
    assert!(
        show.contains("Bridge br-int") && show.contains(CTL),
        "{show}"
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// A host whose database stops answering mid-reconcile (SIGSTOP): the session times out and
/// redials; once the database answers again the host converges, with no duplicate ports
/// whether or not the interrupted transaction was applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_host_database_recovers_without_duplicates() {
    let Lab { _net, hvs, hosts } = lab(2);
    let mut c = cfg();
    c.ovsdb.echo_interval = Some(Duration::from_millis(300));
    c.ovsdb.request_timeout = Duration::from_millis(500);
    let p = Provisioner::new(c);
    let mut views = p.views();
    p.set_desired(DesiredState {
        hosts: hosts.clone(),
        zones: vec![],
    });
    let (stop, task) = start(&p);
    converged(&mut views, &hosts, 0).await;

    hvs[0].freeze_db().unwrap();
    let all: Vec<&DesiredHost> = hosts.iter().collect();
    p.set_desired(DesiredState {
        hosts: hosts.clone(),
        zones: vec![zone(TunnelType::Vxlan, &all, &hosts)],
    });
    // hv1's session notices and says so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while views
        .borrow()
        .get(&hosts[0].id)
        .is_some_and(|v| v.connected)
    {
        tokio::time::timeout_at(deadline, views.changed())
            .await
            .expect("frozen host seen as disconnected")
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    hvs[0].thaw_db().unwrap();
    converged(&mut views, &hosts, 1).await;
    for hv in &hvs {
        assert_eq!(
            tunnel_ports(hv).len(),
            1,
            "{}",
            hv.vsctl(&["show"]).unwrap()
        );
    }
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Two hosts dialing in with one system-id: only one session speaks for the host (the older:
/// see `provision::host`), so when it leaves, the other one's session takes over and the
/// host's view says connected again, instead of `connected: false` beside a live session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_passive_session_per_system_id() {
    let a = Sandbox::start("dup-a").expect("sandbox (install openvswitch-switch)");
    let b = Sandbox::start("dup-b").expect("sandbox");
    let host = DesiredHost {
        id: Uuid::new_v4(),
        name: "dup-hv".into(),
        ovsdb: None,
        datapath_type: DatapathType::System,
        cert_cn: None,
    };
    let p = Provisioner::new(cfg());
    let mut views = p.views();
    p.set_desired(DesiredState {
        hosts: vec![host.clone()],
        zones: vec![],
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let manager = format!("tcp:127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (stop, stop_rx) = watch::channel(false);
    let task = {
        let p = p.clone();
        tokio::spawn(async move { p.run(Some(listener), stop_rx).await })
    };
    for hv in [&a, &b] {
        hv.vsctl(&["set", "Open_vSwitch", ".", "external_ids:system-id=dup-hv"])
            .unwrap();
    }
    a.vsctl(&["set-manager", &manager]).unwrap();
    let provisioned = |v: &HostViews| {
        v.get(&host.id)
            .is_some_and(|v| v.connected && v.datapath_id == Some(datapath_id(host.id)))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !provisioned(&views.borrow()) {
        tokio::time::timeout_at(deadline, views.changed())
            .await
            .expect("the first host provisioned")
            .unwrap();
    }
    b.vsctl(&["set-manager", &manager]).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        b.vsctl(&["br-exists", "br-int"]).is_err(),
        "the second session was refused"
    );
    a.vsctl(&["del-manager"]).unwrap();
    // `b` redials (OVS backs off up to 8 s) and takes over.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if provisioned(&views.borrow()) && b.vsctl(&["br-exists", "br-int"]).is_ok() {
            break;
        }
        tokio::time::timeout_at(deadline, views.changed())
            .await
            .expect("the second host takes over, shown connected")
            .unwrap();
    }
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Hosts joining one by one in a burst (as a script registering hundreds of them does): each
/// host session commits at most every 200 ms, so the burst's intermediate meshes are skipped,
/// and the last desired state is still committed in full once the spacing is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_joins_ends_in_the_full_mesh() {
    let lab = lab(5);
    let p = Provisioner::new(cfg());
    let (stop, task) = start(&p);
    let mut views = p.views();
    // The first host alone (its br-int committed, so the spacing is running), then the others
    // one by one, 20 ms apart: well within one spacing.
    let state = |n: usize| DesiredState {
        hosts: lab.hosts[..n].to_vec(),
        zones: vec![zone(
            TunnelType::Vxlan,
            &lab.hosts[..n].iter().collect::<Vec<_>>(),
            &lab.hosts,
        )],
    };
    p.set_desired_at(state(1), 1);
    converged(&mut views, &lab.hosts[..1], 0).await;
    for n in 2..=5 {
        p.set_desired_at(state(n), n as u64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = converged(&mut views, &lab.hosts, 4).await;
    for (h, hv) in lab.hosts.iter().zip(&lab.hvs) {
        assert_eq!(tunnel_ports(hv).len(), 4, "{}", hv.name());
        // Every host ends having applied the last revision.
        let view = v.get(&h.id).unwrap();
        poll("the last revision applied", || {
            let views = p.views();
            let r = views.borrow().get(&h.id).and_then(|v| v.reconciled);
            (r == Some(5)).then_some(())
        });
        assert!(view.connected);
    }
    let _ = stop.send(true);
    task.await.unwrap();
}
