//! The engine end to end on real OVS: three sandbox hypervisors (dummy datapath, real VXLAN or
//! GRE encapsulation over an emulated underlay), the `strowger serve` binary provisioning them
//! over OVSDB and answering their packet-ins. VIFs plugged with `external_ids:iface-id` bind
//! themselves; frames injected with `netdev-dummy/receive` are checked byte for byte in the
//! receiving VIFs' `tx_pcap`; what OVS shows (`dump-flows`, `ofproto/trace`) must agree.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use testbed::{Sandbox, Underlay};

const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("REST reachable");
        let status = r.status();
        let v: Value = r.json().await.expect("JSON body");
        assert!(status.is_success(), "POST {path} {body}: {status} {v}");
        v
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }
}

async fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An ARP request (broadcast) from `src`.
fn arp_request(src: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa);
    f
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

/// The frames an interface sent, from its `tx_pcap`.
fn sent(hv: &Sandbox, vif: &str) -> Vec<String> {
    let pcap = hv.dir().join(format!("{vif}.pcap"));
    hv.tool("ovs-pcap", &[&pcap.to_string_lossy()])
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

fn ofport(hv: &Sandbox, iface: &str) -> Option<u32> {
    hv.vsctl(&["get", "Interface", iface, "ofport"])
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p: &u32| *p > 0 && *p < 0xffff)
}

struct Vm {
    hv: usize,
    vif: String,
    port: String,
    key: u64,
}

async fn three_hosts_one_bridge(tunnel: &str) {
    let net = Underlay::new("ul").expect("underlay (install openvswitch-switch)");
    let hvs: Vec<Sandbox> = (1..=3)
        .map(|i| Sandbox::start(&format!("e{i}")).expect("sandbox"))
        .collect();
    for (i, hv) in hvs.iter().enumerate() {
        net.attach(hv, Ipv4Addr::new(192, 168, 0, i as u8 + 1))
            .expect("attach");
    }
    Underlay::neigh_fill(&hvs.iter().collect::<Vec<_>>()).expect("neighbours");

    let (of, api_addr) = (free_port(), free_port());
    let log = std::fs::File::create(hvs[0].dir().join("strowger.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["serve", "--in-memory", "--no-tunnel-local-ip"])
        .args(["--openflow-listen", &of.to_string()])
        .args(["--api-listen", &api_addr.to_string()])
        .args(["--ovsdb-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info,apps=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn strowger");
    let _child = Running(child);
    let api = Api {
        base: format!("http://{api_addr}/api/v1"),
        http: reqwest::Client::new(),
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.get("/health").await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "REST never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let zone = api
        .post("/tunnel_zones", json!({"name": "tz", "type": tunnel}))
        .await;
    let mut hosts = vec![];
    for (i, hv) in hvs.iter().enumerate() {
        let h = api
            .post(
                "/hosts",
                json!({"name": format!("hv{}", i + 1), "ovsdb": hv.db_target(), "datapath_type": "system"}),
            )
            .await;
        api.post(
            &format!("/tunnel_zones/{}/members", zone["id"].as_str().unwrap()),
            json!({"host_id": h["id"], "ip": format!("192.168.0.{}", i + 1)}),
        )
        .await;
        hosts.push(h);
    }
    let br = api
        .post("/bridges", json!({"name": "net", "tenant_id": "acme"}))
        .await;
    let br_id = br["id"].as_str().unwrap().to_string();
    // a on hv1, b and c on hv2, d on hv3.
    let placement = [0, 1, 1, 2];
    let mut vms = vec![];
    for (n, hv) in placement.iter().enumerate() {
        let p = api
            .post(&format!("/bridges/{br_id}/ports"), json!({}))
            .await;
        vms.push(Vm {
            hv: *hv,
            vif: format!("vm{n}"),
            port: p["id"].as_str().unwrap().to_string(),
            key: p["tunnel_key"].as_u64().unwrap(),
        });
    }

    // Every br-int exists, has its tunnels, and the engine's pipeline is in.
    for hv in &hvs {
        poll("br-int with its pipeline and 2 tunnel ports", || {
            let flows = hv.ofctl(&["dump-flows", "br-int"]).ok()?;
            let ports = hv.vsctl(&["list-ports", "br-int"]).ok()?;
            let tunnels = ports.lines().filter(|l| !l.starts_with("vm")).count();
            (tunnels == 2 && flows.contains("table=20") && flows.contains("actions=CONTROLLER"))
                .then_some(())
        })
        .await;
    }
    // Plug every VM's VIF with its logical port as iface-id; each binds itself.
    for vm in &vms {
        let hv = &hvs[vm.hv];
        let pcap = hv.dir().join(format!("{}.pcap", vm.vif));
        hv.vsctl(&[
            "add-port",
            "br-int",
            &vm.vif,
            "--",
            "set",
            "Interface",
            &vm.vif,
            "type=dummy",
            &format!("options:tx_pcap={}", pcap.display()),
            &format!("external_ids:iface-id={}", vm.port),
        ])
        .expect("add VIF");
    }
    for vm in &vms {
        let hv = &hvs[vm.hv];
        let p = poll("an ofport", || ofport(hv, &vm.vif)).await;
        poll("the VIF's classifier and demux flows", || {
            let flows = hv.ofctl(&["dump-flows", "br-int"]).ok()?;
            let classify = flows.lines().any(|l| {
                l.contains(&format!("in_port={p} "))
                    && l.contains(&format!("write_metadata:{:#x}", vm.key))
            });
            let demux = flows.lines().any(|l| {
                l.contains(&format!("tun_id={:#x} ", vm.key)) && l.contains(&format!("output:{p}"))
            });
            (classify && demux).then_some(())
        })
        .await;
        // REST shows where the port is.
        let shown = api.get(&format!("/ports/{}", vm.port)).await.unwrap();
        assert_eq!(shown["tunnel_key"].as_u64(), Some(vm.key));
    }
    let send = |vm: &Vm, frame: &[u8]| {
        hvs[vm.hv]
            .appctl(&["netdev-dummy/receive", &vm.vif, &hex(frame)])
            .expect("inject");
    };

    // 1. A broadcast from a reaches b, c (both on hv2: one tunnel copy each) and d, not a.
    let arp = arp_request(mac(1), [10, 0, 0, 1], [10, 0, 0, 4]);
    send(&vms[0], &arp);
    for vm in &vms[1..] {
        poll("the broadcast on every other VIF", || {
            sent(&hvs[vm.hv], &vm.vif)
                .contains(&hex(&arp))
                .then_some(())
        })
        .await;
    }
    // 2. d answers a by unicast: only a gets it (a's MAC was learned from the broadcast).
    let reply = unicast(mac(4), mac(1), "reply");
    send(&vms[3], &reply);
    poll("the reply at a", || {
        sent(&hvs[0], "vm0").contains(&hex(&reply)).then_some(())
    })
    .await;
    // 3. a to d, now both known: only d gets it, and a second frame goes by the installed flow.
    let to_d = unicast(mac(1), mac(4), "to-d");
    send(&vms[0], &to_d);
    poll("a's frame at d", || {
        sent(&hvs[2], "vm3").contains(&hex(&to_d)).then_some(())
    })
    .await;
    let to_d2 = unicast(mac(1), mac(4), "to-d-again");
    send(&vms[0], &to_d2);
    poll("the second frame at d", || {
        sent(&hvs[2], "vm3").contains(&hex(&to_d2)).then_some(())
    })
    .await;
    // Every frame arrived once, and the unicasts nowhere else.
    for (i, vm) in vms.iter().enumerate() {
        let got = sent(&hvs[vm.hv], &vm.vif);
        let want: Vec<String> = match i {
            0 => vec![hex(&reply)],
            1 | 2 => vec![hex(&arp)],
            _ => vec![hex(&arp), hex(&to_d), hex(&to_d2)],
        };
        assert_eq!(got, want, "frames out of {}", vm.vif);
    }

    // What OVS shows agrees: hv1 has a flow-cache entry a→d that tunnels with d's key, and
    // ofproto/trace of that packet takes that flow and pushes a tunnel header with that key.
    let a_port = ofport(&hvs[0], "vm0").unwrap();
    let flows = hvs[0]
        .ofctl(&["dump-flows", "br-int", "table=20"])
        .expect("dump-flows");
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
    let trace = hvs[0]
        .appctl(&[
            "ofproto/trace",
            "br-int",
            &format!(
                "in_port={a_port},dl_src={},dl_dst={},dl_type=0x88b5",
                mac_str(mac(1)),
                mac_str(mac(4))
            ),
        ])
        .expect("trace");
    let cookie = a_to_d
        .split([',', ' '])
        .find_map(|w| w.strip_prefix("cookie="))
        .unwrap();
    assert!(trace.contains(&format!("cookie {cookie}")), "{trace}");
    let datapath = trace
        .lines()
        .find(|l| l.starts_with("Datapath actions:"))
        .unwrap_or_default();
    let vni = match tunnel {
        "vxlan" => format!("vni={:#x}", vms[3].key),
        _ => format!("key={:#x}", vms[3].key),
    };
    assert!(
        datapath.contains("tnl_push") && datapath.contains(&vni),
        "{datapath}\n{trace}"
    );
    // Every flow-cache entry on every host is reachable by the packet it names: a trace of its
    // own match (through the classifier) ends in that very flow.
    for (h, hv) in hvs.iter().enumerate() {
        let flows = hv.ofctl(&["dump-flows", "br-int", "table=20"]).unwrap();
        for l in flows.lines().filter(|l| l.contains("cookie=0x53548")) {
            let field = |k: &str| {
                l.split([',', ' '])
                    .find_map(|w| w.strip_prefix(k))
                    .map(str::to_string)
            };
            let md = field("metadata=").unwrap();
            let vm = vms
                .iter()
                .find(|v| v.hv == h && format!("{:#x}", v.key) == md)
                .expect("cache flows name a local port's key");
            let mut pkt = format!("in_port={}", ofport(hv, &vm.vif).unwrap());
            for k in ["dl_src=", "dl_dst="] {
                if let Some(v) = field(k) {
                    pkt.push_str(&format!(",{k}{v}"));
                }
            }
            let trace = hv.appctl(&["ofproto/trace", "br-int", &pkt]).unwrap();
            let cookie = field("cookie=").unwrap();
            assert!(trace.contains(&format!("cookie {cookie}")), "{l}\n{trace}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_across_three_hosts_over_vxlan() {
    three_hosts_one_bridge("vxlan").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_across_three_hosts_over_gre() {
    three_hosts_one_bridge("gre").await;
}
