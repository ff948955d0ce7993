//! The engine end to end on real OVS: sandbox hypervisors (dummy datapath, real VXLAN or GRE
//! encapsulation over an emulated underlay) provisioned by the `strowger serve` binary over
//! OVSDB, driven over REST; VIFs plugged with `external_ids:iface-id` and read back from their
//! `tx_pcap`. Shared by the engine's sandbox tests.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testbed::{Sandbox, Underlay};

/// How long any one wait of a sandbox test may take before it is a failure.
pub const LAB_WAIT: Duration = Duration::from_secs(30);

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A child process killed (by its PID) and reaped on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The REST API of the controller under test.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// `POST path body`; fails the test unless the answer is a 2xx with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.ok(reqwest::Method::POST, path, body).await
    }

    /// `PUT path body`; fails the test unless the answer is a 2xx with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Value {
        self.ok(reqwest::Method::PUT, path, body).await
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (status, _, v) = self.request(method.clone(), path, Some(body.clone())).await;
        assert!(status.is_success(), "{method} {path} {body}: {status} {v}");
        assert!(
            !v.is_null(),
            "{method} {path} {body}: {status} without a JSON body"
        );
        v
    }

    /// `method path [body]`: the status and the JSON body (`Null` when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let (status, _, v) = self.request(method, path, body).await;
        (status, v)
    }

    /// The controller's API address, as the CLI's `--api` takes it.
    pub fn cli_base(&self) -> &str {
        self.base.trim_end_matches("/api/v1")
    }

    /// `GET /metrics` (at the root, beside `/api/v1`): fails the test unless it is a 200 in
    /// the OpenMetrics text format.
    pub async fn metrics(&self) -> super::exposition::Samples {
        let root = self.base.trim_end_matches("/api/v1");
        let r = self
            .http
            .get(format!("{root}/metrics"))
            .send()
            .await
            .expect("REST reachable");
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        super::exposition::Samples::parse(&r.text().await.expect("a text body"))
    }

    /// `GET path`: the status alone (the body may be an error).
    pub async fn status(&self, path: &str) -> reqwest::StatusCode {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("REST reachable")
            .status()
    }

    /// The API's base URL (`http://ADDR/api/v1`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Any call: status, headers and body (JSON, or null when empty or not JSON).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("REST reachable");
        let (status, headers) = (r.status(), r.headers().clone());
        let text = r.text().await.unwrap_or_default();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// `GET path`: the JSON body, `None` when unreachable or not JSON.
    pub async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }
}

/// Polls `f` every 50 ms until it returns `Some`, failing the test after [`LAB_WAIT`].
pub async fn poll<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    match poll_within(LAB_WAIT, f).await {
        Some(v) => v,
        None => panic!("timed out waiting for {what}"),
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or `None` once `timeout` has passed.
pub async fn poll_within<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lower-case hex, as `ovs-pcap` prints frames.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes back from lower-case hex (a line of `ovs-pcap`).
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// `02:00:…`, as OVS prints MACs.
pub fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An Ethernet/IPv4 ARP frame `op` from `(sha, spa)` about `(tha, tpa)`, to Ethernet `dst`.
pub fn arp_frame(
    op: u16,
    (sha, spa): ([u8; 6], Ipv4Addr),
    (tha, tpa): ([u8; 6], Ipv4Addr),
    dst: [u8; 6],
) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f
}

/// An ARP request (broadcast) from `src`.
pub fn arp_request(src: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    arp_frame(1, (src, spa.into()), ([0; 6], tpa.into()), [0xff; 6])
}

/// A VM: a logical port plugged as a VIF on one sandbox host.
#[derive(Debug, Clone)]
pub struct Vm {
    /// Index of its host in [`Lab::hvs`].
    pub hv: usize,
    /// The VIF's interface name (and its pcap's name).
    pub vif: String,
    /// The logical port id.
    pub port: String,
    /// The logical port's tunnel key.
    pub key: u64,
}

/// Sandbox hosts in one tunnel zone, and the controller provisioning them.
pub struct Lab {
    /// The controller's REST API.
    pub api: Api,
    log: std::path::PathBuf,
    controller: Running,
    /// How the controller was started (to start it again the same way).
    args: Vec<String>,
    /// The hypervisors, `hv1` first.
    pub hvs: Vec<Sandbox>,
    /// Where the controller listens for switches.
    pub openflow: SocketAddr,
    underlay: Underlay,
    /// The tunnel zone every host joins.
    zone: String,
}

impl Lab {
    /// `n` hosts over `tunnel` (`vxlan`/`gre`), each with br-int, its tunnels and the engine's
    /// pipeline in place when this returns.
    pub async fn start(tunnel: &str, n: usize) -> Lab {
        Lab::start_with(tunnel, n, None).await
    }

    /// [`Lab::start`], with the controller's store in `data_dir` (`None`: in memory).
    pub async fn start_with(tunnel: &str, n: usize, data_dir: Option<&std::path::Path>) -> Lab {
        Lab::start_args(tunnel, n, data_dir, &[]).await
    }

    /// [`Lab::start_with`], with more arguments for `strowger serve`.
    pub async fn start_args(
        tunnel: &str,
        n: usize,
        data_dir: Option<&std::path::Path>,
        extra: &[&str],
    ) -> Lab {
        let net = Underlay::new("ul").expect("underlay (install openvswitch-switch)");
        let hvs: Vec<Sandbox> = (1..=n)
            .map(|i| Sandbox::start(&format!("e{i}")).expect("sandbox"))
            .collect();
        for (i, hv) in hvs.iter().enumerate() {
            net.attach(hv, Ipv4Addr::new(192, 168, 0, i as u8 + 1))
                .expect("attach");
        }
        Underlay::neigh_fill(&hvs.iter().collect::<Vec<_>>()).expect("neighbours");

        let (of, api_addr) = (free_port(), free_port());
        let log = hvs[0].dir().join("strowger.log");
        let mut args: Vec<String> = [
            "serve",
            "--no-tunnel-local-ip",
            "--ovsdb-listen",
            "127.0.0.1:0",
        ]
        .map(String::from)
        .to_vec();
        match data_dir {
            Some(d) => args.extend(["--data-dir".to_string(), d.display().to_string()]),
            None => args.push("--in-memory".into()),
        }
        args.extend(["--openflow-listen".to_string(), of.to_string()]);
        args.extend(["--api-listen".to_string(), api_addr.to_string()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let child = spawn_controller(&args, &log);
        let mut lab = Lab {
            api: Api {
                base: format!("http://{api_addr}/api/v1"),
                http: reqwest::Client::new(),
            },
            log,
            controller: Running(child),
            args,
            hvs,
            openflow: of,
            underlay: net,
            zone: String::new(),
        };
        lab.wait_for_api().await;

        let zone = lab
            .api
            .post("/tunnel_zones", json!({"name": "tz", "type": tunnel}))
            .await;
        lab.zone = zone["id"].as_str().unwrap().to_string();
        for (i, hv) in lab.hvs.iter().enumerate() {
            let h = lab
                .api
                .post(
                    "/hosts",
                    json!({"name": format!("hv{}", i + 1), "ovsdb": hv.db_target(), "datapath_type": "system"}),
                )
                .await;
            lab.api
                .post(
                    &format!("/tunnel_zones/{}/members", zone["id"].as_str().unwrap()),
                    json!({"host_id": h["id"], "ip": format!("192.168.0.{}", i + 1)}),
                )
                .await;
        }
        for hv in &lab.hvs {
            poll("br-int with its pipeline and its tunnel ports", || {
                let flows = hv.ofctl(&["dump-flows", "br-int"]).ok()?;
                let ports = hv.vsctl(&["list-ports", "br-int"]).ok()?;
                (ports.lines().count() == n - 1
                    && flows.contains("table=20")
                    && flows.contains("actions=CONTROLLER"))
                .then_some(())
            })
            .await;
        }
        lab
    }

    /// One more sandbox host, registered and in the zone; returns when every host has its
    /// tunnel ports to every other.
    pub async fn add_host(&mut self) {
        let i = self.hvs.len();
        let hv = Sandbox::start(&format!("e{}", i + 1)).expect("sandbox");
        let ip = Ipv4Addr::new(192, 168, 0, i as u8 + 1);
        self.underlay.attach(&hv, ip).expect("attach");
        self.hvs.push(hv);
        Underlay::neigh_fill(&self.hvs.iter().collect::<Vec<_>>()).expect("neighbours");
        let h = self
            .api
            .post(
                "/hosts",
                json!({"name": format!("hv{}", i + 1), "ovsdb": self.hvs[i].db_target(), "datapath_type": "system"}),
            )
            .await;
        self.api
            .post(
                &format!("/tunnel_zones/{}/members", self.zone),
                json!({"host_id": h["id"], "ip": ip.to_string()}),
            )
            .await;
        let n = self.hvs.len();
        for hv in &self.hvs {
            poll("every host's tunnel ports, the new host's too", || {
                let types = hv
                    .vsctl(&["--bare", "--columns=type", "list", "Interface"])
                    .ok()?;
                let tunnels = types
                    .lines()
                    .filter(|t| matches!(t.trim(), "vxlan" | "gre" | "geneve"))
                    .count();
                (tunnels == n - 1).then_some(())
            })
            .await;
        }
    }

    async fn wait_for_api(&self) {
        let deadline = tokio::time::Instant::now() + LAB_WAIT;
        while self.api.get("/health").await.is_none() {
            assert!(tokio::time::Instant::now() < deadline, "REST never came up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the controller with SIGKILL (no goodbye to anyone) and leaves it down.
    pub fn kill(&mut self) {
        let _ = self.controller.0.kill();
        let _ = self.controller.0.wait();
    }

    /// Starts the controller again as it was started (same store, same ports).
    pub async fn restart(&mut self) {
        self.controller = Running(spawn_controller(&self.args, &self.log));
        self.wait_for_api().await;
    }

    /// A router `name` linked to one new bridge per `(bridge name, router port MAC, router port
    /// address)`, all of `tenant`; returns the router's id and the bridges' ids.
    pub async fn routed(
        &self,
        name: &str,
        tenant: &str,
        nets: &[(&str, [u8; 6], &str)],
    ) -> (String, Vec<String>) {
        let api = &self.api;
        let id = |v: Value| v["id"].as_str().unwrap().to_string();
        let router = id(api
            .post("/routers", json!({"name": name, "tenant_id": tenant}))
            .await);
        let mut bridges = vec![];
        for (bridge, mac, address) in nets {
            let net = id(api
                .post("/bridges", json!({"name": bridge, "tenant_id": tenant}))
                .await);
            let rp = id(api
                .post(
                    &format!("/routers/{router}/ports"),
                    json!({"mac": mac_str(*mac), "address": address}),
                )
                .await);
            let bp = id(api.post(&format!("/bridges/{net}/ports"), json!({})).await);
            api.post(&format!("/ports/{rp}/link"), json!({"peer_id": bp}))
                .await;
            bridges.push(net);
        }
        (router, bridges)
    }

    /// Creates a port on bridge `bridge` (its id) and returns it as a VM on host `hv` named
    /// `vif`, not yet plugged.
    pub async fn port(&self, bridge: &str, hv: usize, vif: &str) -> Vm {
        let p = self
            .api
            .post(&format!("/bridges/{bridge}/ports"), json!({}))
            .await;
        Vm {
            hv,
            vif: vif.to_string(),
            port: p["id"].as_str().unwrap().to_string(),
            key: p["tunnel_key"].as_u64().unwrap(),
        }
    }

    /// Plugs every VM's VIF with its logical port as iface-id (each binds itself) and waits
    /// until its classifier and tunnel demux flows are in.
    pub async fn plug(&self, vms: &[&Vm]) {
        self.plug_only(vms);
        for vm in vms {
            let hv = &self.hvs[vm.hv];
            let p = poll("an ofport", || self.ofport(vm)).await;
            poll("the VIF's classifier and demux flows", || {
                self.bound(hv, vm, p).then_some(())
            })
            .await;
        }
    }

    /// Whether `hv`'s br-int classifies the VM's VIF (`ofport`) and demultiplexes its key.
    pub fn bound(&self, hv: &Sandbox, vm: &Vm, ofport: u32) -> bool {
        let Ok(flows) = hv.ofctl(&["dump-flows", "br-int"]) else {
            return false;
        };
        let classify = flows.lines().any(|l| {
            l.contains(&format!("in_port={ofport} "))
                && l.contains(&format!("write_metadata:{:#x}", vm.key))
        });
        let demux = flows.lines().any(|l| {
            l.contains(&format!("tun_id={:#x} ", vm.key)) && l.contains(&format!("output:{ofport}"))
        });
        classify && demux
    }

    /// Plugs every VM's VIF with its logical port as iface-id (`ovs-vsctl add-port`), and
    /// returns at once.
    pub fn plug_only(&self, vms: &[&Vm]) {
        for vm in vms {
            let hv = &self.hvs[vm.hv];
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
    }

    /// The VIF's OpenFlow port number, once OVS has given it one.
    pub fn ofport(&self, vm: &Vm) -> Option<u32> {
        self.hvs[vm.hv]
            .vsctl(&["get", "Interface", &vm.vif, "ofport"])
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|p: &u32| *p > 0 && *p < 0xffff)
    }

    /// Injects `frame` as received from the VM's VIF.
    pub fn send(&self, vm: &Vm, frame: &[u8]) {
        self.hvs[vm.hv]
            .appctl(&["netdev-dummy/receive", &vm.vif, &hex(frame)])
            .expect("inject");
    }

    /// The frames the VM's VIF sent (to the VM), in hex, from its `tx_pcap`.
    pub fn sent(&self, vm: &Vm) -> Vec<String> {
        let hv = &self.hvs[vm.hv];
        let pcap = hv.dir().join(format!("{}.pcap", vm.vif));
        hv.tool("ovs-pcap", &[&pcap.to_string_lossy()])
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Polls until a frame sent to the VM satisfies `f`; returns what `f` made of it.
    pub async fn arrives<T>(
        &self,
        vm: &Vm,
        what: &str,
        mut f: impl FnMut(&[u8]) -> Option<T>,
    ) -> T {
        poll(what, || self.sent(vm).iter().find_map(|h| f(&unhex(h)))).await
    }

    /// `ovs-ofctl dump-flows br-int ARGS` on host `hv`.
    pub fn flows(&self, hv: usize, args: &[&str]) -> String {
        let mut all = vec!["dump-flows", "br-int"];
        all.extend_from_slice(args);
        self.hvs[hv].ofctl(&all).expect("dump-flows")
    }

    /// Explains every engine flow-cache entry `dump-flows` shows on every host: each must be what
    /// the engine would install now (the oracle), at most one flow per (priority, match), and its
    /// provenance must name objects the API has. Returns how many were checked.
    pub async fn oracle(&self) -> usize {
        let mut checked = 0;
        for hv in 0..self.hvs.len() {
            let dump = self.flows(hv, &["table=20"]);
            let mut seen = HashSet::new();
            for line in dump.lines().filter(|l| l.contains("cookie=0x53548")) {
                let cookie = flow_field(line, "cookie=").unwrap();
                let priority = flow_field(line, "priority=").unwrap();
                let m = line.split(" actions=").next().unwrap();
                let m = &m[m.find("priority=").unwrap()..];
                assert!(seen.insert(m.to_owned()), "two flows at {priority}: {m}");
                let (status, e) = self
                    .api
                    .call(Method::GET, &format!("/flows/{cookie}"), None)
                    .await;
                assert_eq!(status, StatusCode::OK, "{cookie}: {e}");
                assert_eq!(
                    e["consistent"],
                    json!(true),
                    "stale flow on hv{}: {line}\n{e:#}",
                    hv + 1
                );
                for dep in e["provenance"]["depends_on"].as_array().unwrap() {
                    let id = dep["id"].as_str().unwrap();
                    let path = match dep["kind"].as_str().unwrap() {
                        "port" => format!("/ports/{id}"),
                        "route" => format!("/routes/{id}"),
                        "chain" => format!("/chains/{id}"),
                        "port_group" => format!("/port_groups/{id}"),
                        "ip_addr_group" => format!("/ip_addr_groups/{id}"),
                        // The tunnel to a host names that host.
                        "tunnel" => format!("/hosts/{id}"),
                        // Devices, MAC and ARP entries, floods and destinations name a device.
                        _ => format!("/bridges/{id}"),
                    };
                    let mut found = self.api.get(&path).await.filter(|v| v["id"] == id);
                    if found.is_none() && path.starts_with("/bridges") {
                        found = self
                            .api
                            .get(&format!("/routers/{id}"))
                            .await
                            .filter(|v| v["id"] == id);
                    }
                    assert!(
                        found.is_some(),
                        "provenance of {cookie} names {dep}: not found"
                    );
                }
                checked += 1;
            }
        }
        checked
    }

    /// `ovs-appctl ofproto/trace br-int FLOW` on host `hv`.
    pub fn trace(&self, hv: usize, flow: &str) -> String {
        self.hvs[hv]
            .appctl(&["ofproto/trace", "br-int", flow])
            .expect("ofproto/trace")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A failing test shows what the controller said (the log goes with the sandbox).
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- controller log, last 60 lines:");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

fn spawn_controller(args: &[String], log: &std::path::Path) -> Child {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(args)
        .env("RUST_LOG", "info,apps=debug")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("spawn strowger")
}

/// The value of `key` (`cookie=`, `metadata=`, …) in a `dump-flows` line.
pub fn flow_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split([',', ' ']).find_map(|w| w.strip_prefix(key))
}

/// Fails unless an `ofproto/trace` ends by pushing a `tunnel` header with key `key`.
pub fn assert_tunnels_to(trace: &str, tunnel: &str, key: u64) {
    let datapath = trace
        .lines()
        .find(|l| l.starts_with("Datapath actions:"))
        .unwrap_or_default();
    let vni = match tunnel {
        "vxlan" => format!("vni={key:#x}"),
        _ => format!("key={key:#x}"),
    };
    assert!(
        datapath.contains("tnl_push") && datapath.contains(&vni),
        "{datapath}\n{trace}"
    );
}
