//! The scale run shared by the scale benchmark (`examples/scale.rs`) and its CI-sized test
//! (`tests/scale_sandboxes.rs`): N sandbox hypervisors (ovsdb-server + `ovs-vswitchd
//! --enable-dummy=system` each, one underlay so tunnels really encapsulate), a fresh
//! `strowger serve --in-memory`, every host registered over REST in one tunnel zone, a logical
//! topology of B bridges × P ports spread round robin over the hosts, and one VIF per port
//! plugged by `external_ids:iface-id`. Convergence is checked from outside only: each host's
//! OVSDB (br-int with our controller, N−1 tunnel ports with the right remote IPs and
//! `key=flow`, every VIF with an ofport) and its OpenFlow table (`dump-flows`: the classifier
//! of every VIF and every tunnel, the demux of every local key). Then a first packet across a
//! pair of VIFs on two hosts: a broadcast from one reaches the other, whose unicast answer
//! comes back.
//!
//! VIFs are plugged on a host as soon as the controller has created its br-int (one `ovs-vsctl`
//! transaction per host for all its VIFs): `add-port` needs the bridge, and pre-creating br-int
//! ourselves would measure the adoption of a bridge, not the provisioning of a host.
//!
//! Every wait is a poll with a deadline; nothing here asserts a duration.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testbed::{Sandbox, Underlay};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sandbox hypervisors.
    pub hosts: usize,
    /// Logical bridges.
    pub bridges: usize,
    /// Ports per bridge (bridges × ports VIFs in all).
    pub ports_per_bridge: usize,
    /// The `strowger` binary.
    pub strowger: PathBuf,
    /// Threads driving the sandboxes' tools.
    pub workers: usize,
    /// How long convergence may take before the run fails.
    pub deadline: Duration,
    /// `RUST_LOG` of the controller.
    pub log: String,
}

/// What a run measured (seconds unless named otherwise).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub hosts: usize,
    pub ports: usize,
    /// Starting the sandboxes and their underlay.
    pub sandboxes_s: f64,
    /// Creating the logical topology over REST (before any host).
    pub topology_s: f64,
    /// Registering every host and its zone membership over REST.
    pub register_s: f64,
    /// From the first registration until every host has br-int (seen from OVSDB).
    pub br_int_s: f64,
    /// … until every host has its full tunnel mesh with ofports.
    pub mesh_s: f64,
    /// … until everything (mesh, VIFs, controller, classifier and demux flows) is in place.
    pub converged_s: f64,
    /// … until every `Controller.is_connected` is true (vswitchd updates it lazily).
    pub connected_s: f64,
    /// Broadcast from a VIF until it leaves the VIF of the other host.
    pub first_packet_s: f64,
    /// The unicast answer until it leaves the first VIF.
    pub answer_s: f64,
    /// Controller peak RSS (VmHWM), MiB.
    pub controller_peak_mib: f64,
    /// Controller CPU (user + system) by convergence.
    pub controller_cpu_s: f64,
    /// All ovsdb-servers and vswitchds: RSS sum, MiB, and CPU by convergence.
    pub ovs_rss_mib: f64,
    pub ovs_cpu_s: f64,
    /// Controller CPU spent creating the topology (before any host).
    pub controller_cpu_topology_s: f64,
    /// Tunnel ports in the mesh, N(N−1).
    pub tunnel_ports: usize,
}

/// A child process killed by its PID and reaped on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `f` over `items` on `workers` threads; results in item order.
fn par_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(i, &items[i]);
                out.lock().unwrap()[i] = Some(r);
            });
        }
    });
    out.into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item mapped"))
        .collect()
}

/// The underlay address of host `i` (a /16, so 500 hosts fit).
pub fn underlay_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, (i / 250) as u8, (i % 250) as u8 + 1)
}

/// Gives `hv` a `br-phys` on `net` carrying `ip/16` (as `Underlay::attach`, for more than 254
/// hosts).
fn attach(net: &Underlay, hv: &Sandbox, ip: Ipv4Addr) -> testbed::Result<()> {
    let port = format!("{}_br-phys", hv.name());
    let sock = net.main().dir().join(format!("{port}.sock"));
    net.main().vsctl(&[
        "--no-wait",
        "add-port",
        "ul",
        &port,
        "--",
        "set",
        "Interface",
        &port,
        &format!("options:pstream=punix:{}", sock.display()),
    ])?;
    hv.vsctl(&[
        "add-br",
        "br-phys",
        "--",
        "add-port",
        "br-phys",
        "br-phys_ul",
        "--",
        "set",
        "Interface",
        "br-phys_ul",
        &format!("options:stream=unix:{}", sock.display()),
    ])?;
    hv.appctl(&["netdev-dummy/ip4addr", "br-phys", &format!("{ip}/16")])?;
    hv.appctl(&["ovs/route/add", &format!("{ip}/16"), "br-phys"])?;
    Ok(())
}

/// One logical port and where its VIF goes.
#[derive(Debug, Clone)]
struct Vif {
    host: usize,
    name: String,
    port: String,
    key: u64,
    pcap: bool,
}

/// What a host must show once converged.
struct Expect {
    target: String,
    /// Peer underlay IPs.
    peers: HashSet<String>,
    /// VIF name → (iface-id, tunnel key).
    vifs: HashMap<String, (String, u64)>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    #[default]
    Nothing,
    BrInt,
    Mesh,
    Done,
}

/// How far `hv` is, read from its OVSDB and its OpenFlow table; and whether its
/// `Controller.is_connected` is true.
fn check(hv: &Sandbox, want: &Expect) -> (Stage, bool) {
    let q = json!(["Open_vSwitch",
        {"op": "select", "table": "Bridge", "where": [["name", "==", "br-int"]],
         "columns": ["controller", "fail_mode", "protocols"]},
        {"op": "select", "table": "Controller", "where": [],
         "columns": ["_uuid", "target", "is_connected"]},
        {"op": "select", "table": "Interface", "where": [],
         "columns": ["name", "type", "options", "ofport", "external_ids"]}]);
    let sock = format!("unix:{}", hv.db_sock().display());
    let Ok(out) = hv.tool("ovsdb-client", &["transact", &sock, &q.to_string()]) else {
        return (Stage::Nothing, false);
    };
    let Ok(r) = serde_json::from_str::<Value>(&out) else {
        return (Stage::Nothing, false);
    };
    let rows = |i: usize| r[i]["rows"].as_array().cloned().unwrap_or_default();
    let bridges = rows(0);
    let Some(br) = bridges.first() else {
        return (Stage::Nothing, false);
    };
    let ctl_uuid = br["controller"][1].as_str().unwrap_or_default().to_string();
    let ctl = rows(1)
        .into_iter()
        .find(|c| c["_uuid"][1].as_str() == Some(ctl_uuid.as_str()));
    let connected = ctl
        .as_ref()
        .is_some_and(|c| c["is_connected"] == json!(true));
    let ctl_ok = ctl.is_some_and(|c| c["target"].as_str() == Some(want.target.as_str()));
    if !ctl_ok || br["fail_mode"] != json!("secure") {
        return (Stage::Nothing, connected);
    }
    let map = |v: &Value| -> HashMap<String, String> {
        v[1].as_array()
            .map(|pairs| {
                pairs
                    .iter()
                    .map(|p| {
                        (
                            p[0].as_str().unwrap_or_default().to_string(),
                            p[1].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut tunnels: HashMap<String, i64> = HashMap::new();
    let mut vifs: HashMap<String, i64> = HashMap::new();
    for i in rows(2) {
        let ofport = i["ofport"].as_i64().unwrap_or(-1);
        let name = i["name"].as_str().unwrap_or_default().to_string();
        if i["type"] == json!("vxlan") {
            let opts = map(&i["options"]);
            if opts.get("key").map(String::as_str) != Some("flow") {
                continue;
            }
            if let Some(ip) = opts.get("remote_ip") {
                tunnels.insert(ip.clone(), ofport);
            }
        } else if let Some((id, _)) = want.vifs.get(&name) {
            if map(&i["external_ids"]).get("iface-id") == Some(id) {
                vifs.insert(name, ofport);
            }
        }
    }
    let mesh = tunnels.len() == want.peers.len()
        && want
            .peers
            .iter()
            .all(|p| tunnels.get(p).is_some_and(|o| *o > 0));
    if !mesh {
        return (Stage::BrInt, connected);
    }
    if vifs.len() != want.vifs.len() || vifs.values().any(|o| *o <= 0) {
        return (Stage::Mesh, connected);
    }
    // The classifier (table 0) must know every VIF, with its key, and every tunnel; table 10
    // must demultiplex every local key to its VIF.
    let Ok(flows) = hv.ofctl(&["--no-names", "dump-flows", "br-int"]) else {
        return (Stage::Mesh, connected);
    };
    let mut classify: HashMap<i64, String> = HashMap::new();
    let mut demux: HashMap<u64, String> = HashMap::new();
    for l in flows.lines() {
        let field = |key: &str| l.split([',', ' ']).find_map(|w| w.strip_prefix(key));
        let actions = l.split(" actions=").nth(1).unwrap_or_default().to_string();
        if field("table=") == Some("0") {
            if let Some(p) = field("in_port=").and_then(|p| p.parse().ok()) {
                classify.insert(p, actions);
            }
        } else if field("table=") == Some("10") {
            if let Some(k) = field("tun_id=")
                .and_then(|k| u64::from_str_radix(k.trim_start_matches("0x"), 16).ok())
            {
                demux.insert(k, actions);
            }
        }
    }
    let vifs_ok = want.vifs.iter().all(|(name, (_, key))| {
        let ofport = vifs[name];
        classify
            .get(&ofport)
            .is_some_and(|a| a.contains(&format!("write_metadata:{key:#x}")))
            && demux
                .get(key)
                .is_some_and(|a| a.contains(&format!("output:{ofport}")))
    });
    let tunnels_ok = tunnels.values().all(|o| classify.contains_key(o));
    if vifs_ok && tunnels_ok {
        (Stage::Done, connected)
    } else {
        (Stage::Mesh, connected)
    }
}

/// When a host was first seen with br-int, its mesh, everything, and `is_connected` (seconds
/// from the first registration).
type Times = (Option<f64>, Option<f64>, Option<f64>, Option<f64>);

/// Plugs `vifs` into `hv`'s br-int, all in one `ovs-vsctl` transaction.
fn plug<'a>(hv: &Sandbox, vifs: impl Iterator<Item = &'a Vif>) {
    let mut args: Vec<String> = vec!["--no-wait".into()];
    for v in vifs {
        args.extend(
            [
                "--",
                "add-port",
                "br-int",
                &v.name,
                "--",
                "set",
                "Interface",
                &v.name,
            ]
            .map(String::from),
        );
        args.push("type=dummy".into());
        args.push(format!("external_ids:iface-id={}", v.port));
        if v.pcap {
            args.push(format!(
                "options:tx_pcap={}",
                hv.dir().join(format!("{}.pcap", v.name)).display()
            ));
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    hv.vsctl(&args).expect("plug VIFs");
}

/// Peak RSS (VmHWM) and current RSS of `pid`, in KiB, and its CPU seconds (user + system).
pub fn proc_usage(pid: u32) -> (u64, u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 (1-based), so 11 and 12 after the command.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // The clock tick (sysconf(_SC_CLK_TCK)) is 100 on every Linux this runs on.
    (kib("VmHWM:"), kib("VmRSS:"), ticks as f64 / 100.0)
}

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0x5c, 0, 0, 0, n]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn arp_request(src: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa);
    f.resize(60, 0);
    f
}

fn unicast(src: [u8; 6], dst: [u8; 6], tag: &str) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(tag.as_bytes());
    f.resize(60, 0);
    f
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> Value {
        for attempt in 0.. {
            match self
                .http
                .post(format!("{}{path}", self.base))
                .json(&body)
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status();
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    assert!(status.is_success(), "POST {path} {body}: {status} {v}");
                    return v;
                }
                Err(e) if attempt < 5 => {
                    eprintln!("POST {path}: {e}; again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("POST {path}: {e}"),
            }
        }
        unreachable!()
    }
}

fn log(t0: Instant, msg: &str) {
    eprintln!("[{:7.2}s] {msg}", t0.elapsed().as_secs_f64());
}

/// Polls `f` every `every` until it is `Some` or `deadline` passes.
fn poll<T>(deadline: Instant, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Runs the whole scale scenario; panics, naming what did not happen, if any wait runs out.
pub fn run(cfg: &Config) -> Report {
    let t0 = Instant::now();
    let n = cfg.hosts;
    assert!(n >= 2, "a mesh needs two hosts");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut report = Report {
        hosts: n,
        ports: cfg.bridges * cfg.ports_per_bridge,
        ..Report::default()
    };

    // 1. Sandboxes and their underlay.
    let net = Underlay::new("ul").expect("underlay (install openvswitch-switch)");
    let idx: Vec<usize> = (0..n).collect();
    let hvs: Vec<Sandbox> = par_map(&idx, cfg.workers, |_, i| {
        let hv = Sandbox::start(&format!("h{i}")).expect("sandbox");
        attach(&net, &hv, underlay_ip(*i)).expect("attach to the underlay");
        hv
    });
    report.sandboxes_s = t0.elapsed().as_secs_f64();
    log(t0, &format!("{n} sandboxes up"));

    // 2. The controller.
    let (of, api_addr) = (free_port(), free_port());
    // The controller's log goes with the underlay's sandbox unless asked for elsewhere.
    let ctl_log = std::env::var_os("SCALE_CONTROLLER_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| net.main().dir().join("strowger.log"));
    let log_file = std::fs::File::create(&ctl_log).expect("controller log");
    let controller = Running(
        Command::new(&cfg.strowger)
            .args(["serve", "--in-memory", "--no-tunnel-local-ip"])
            .args(["--ovsdb-listen", "127.0.0.1:0"])
            .args(["--openflow-listen", &of.to_string()])
            .args(["--api-listen", &api_addr.to_string()])
            .env("RUST_LOG", &cfg.log)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn strowger"),
    );
    let pid = controller.0.id();
    let api = Api {
        base: format!("http://{api_addr}/api/v1"),
        http: reqwest::Client::new(),
    };
    poll(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(50),
        || std::net::TcpStream::connect(api_addr).ok(),
    )
    .expect("the REST API never came up");

    // 3. The logical topology, before any host: B bridges × P ports, port k on host k mod N.
    let t_topo = Instant::now();
    let mut vifs: Vec<Vif> = rt.block_on(async {
        let mut vifs = vec![];
        for b in 0..cfg.bridges {
            let br = api
                .post(
                    "/bridges",
                    json!({"name": format!("net{b}"), "tenant_id": "scale"}),
                )
                .await;
            let br = br["id"].as_str().unwrap().to_string();
            let mut set = tokio::task::JoinSet::new();
            for p in 0..cfg.ports_per_bridge {
                let (http, url) = (api.http.clone(), format!("{}/bridges/{br}/ports", api.base));
                set.spawn(async move {
                    let v: Value = http
                        .post(url)
                        .json(&json!({}))
                        .send()
                        .await
                        .expect("POST port")
                        .json()
                        .await
                        .expect("a port");
                    (p, v)
                });
                // A few in flight: the store serialises writes anyway.
                if set.len() >= 8 {
                    let (p, v) = set.join_next().await.unwrap().unwrap();
                    vifs.push((b, p, v));
                }
            }
            while let Some(r) = set.join_next().await {
                let (p, v) = r.unwrap();
                vifs.push((b, p, v));
            }
        }
        vifs.into_iter()
            .map(|(b, p, v)| {
                let k = b * cfg.ports_per_bridge + p;
                Vif {
                    host: k % n,
                    name: format!("vm{k}"),
                    port: v["id"].as_str().expect("port id").to_string(),
                    key: v["tunnel_key"].as_u64().expect("tunnel key"),
                    pcap: false,
                }
            })
            .collect()
    });
    vifs.sort_by_key(|v| v.name[2..].parse::<usize>().unwrap_or(0));
    report.topology_s = t_topo.elapsed().as_secs_f64();
    log(t0, &format!("{} ports created", vifs.len()));

    // The pair for the first packet: two ports of the middle bridge on different hosts.
    let b = cfg.bridges / 2;
    let (ia, ib) = (
        b * cfg.ports_per_bridge,
        b * cfg.ports_per_bridge + cfg.ports_per_bridge / 2,
    );
    let (ia, ib) = if vifs[ia].host == vifs[ib].host {
        (ia, ia + 1)
    } else {
        (ia, ib)
    };
    assert_ne!(vifs[ia].host, vifs[ib].host, "the pair spans two hosts");
    vifs[ia].pcap = true;
    vifs[ib].pcap = true;

    let target = format!("tcp:{of}");
    let expects: Vec<Expect> = (0..n)
        .map(|h| Expect {
            target: target.clone(),
            peers: (0..n)
                .filter(|p| *p != h)
                .map(|p| underlay_ip(p).to_string())
                .collect(),
            vifs: vifs
                .iter()
                .filter(|v| v.host == h)
                .map(|v| (v.name.clone(), (v.port.clone(), v.key)))
                .collect(),
        })
        .collect();

    // 4. Hosts, one by one as an operator would, while workers plug each host's VIFs as soon
    // as its br-int exists and watch every host converge.
    let deadline = Instant::now() + cfg.deadline;
    let t_reg = Instant::now();
    let stages: Vec<Mutex<Times>> = (0..n).map(|_| Mutex::new(Default::default())).collect();
    let registered = AtomicUsize::new(0);
    // A profile of the controller from the first registration to convergence, when asked.
    let perf = std::env::var("SCALE_PERF").ok().map(|out| {
        Running(
            Command::new("perf")
                .args([
                    "record",
                    "-F",
                    "299",
                    "-g",
                    "-o",
                    &out,
                    "-p",
                    &pid.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("perf"),
        )
    });
    let register_s = Mutex::new(f64::NAN);
    report.controller_cpu_topology_s = proc_usage(pid).2;
    std::thread::scope(|s| {
        s.spawn(|| {
            rt.block_on(async {
                let zone = api
                    .post("/tunnel_zones", json!({"name": "tz", "type": "vxlan"}))
                    .await;
                let zone = zone["id"].as_str().unwrap().to_string();
                let mut slow: Vec<(f64, usize)> = vec![];
                for (i, hv) in hvs.iter().enumerate() {
                    let t = Instant::now();
                    let h = api
                        .post(
                            "/hosts",
                            json!({"name": format!("h{i}"), "ovsdb": hv.db_target(),
                                   "datapath_type": "system"}),
                        )
                        .await;
                    api.post(
                        &format!("/tunnel_zones/{zone}/members"),
                        json!({"host_id": h["id"], "ip": underlay_ip(i).to_string()}),
                    )
                    .await;
                    registered.store(i + 1, Ordering::Release);
                    slow.push((t.elapsed().as_secs_f64(), i));
                }
                slow.sort_by(|a, b| b.0.total_cmp(&a.0));
                let mean = slow.iter().map(|s| s.0).sum::<f64>() / slow.len() as f64;
                log(
                    t0,
                    &format!(
                        "registration: mean {:.0} ms per host, slowest {:?}",
                        mean * 1e3,
                        &slow[..slow.len().min(3)]
                    ),
                );
                *register_s.lock().unwrap() = t_reg.elapsed().as_secs_f64();
            });
        });
        // Every worker goes round the registered hosts that have not converged, each host
        // read at most every 200 ms (and by one worker at a time): a host's br-int gets its
        // VIFs as soon as it exists, and each stage is timed when first seen. Round robin, so
        // a slow host does not hide when the others got there.
        let next = AtomicUsize::new(0);
        let last_read: Vec<Mutex<Option<Instant>>> = (0..n).map(|_| Mutex::new(None)).collect();
        let plugged: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        let done = AtomicUsize::new(0);
        std::thread::scope(|w| {
            for _ in 0..cfg.workers.max(1) {
                w.spawn(|| loop {
                    if done.load(Ordering::Acquire) == n {
                        return;
                    }
                    if Instant::now() >= deadline {
                        let late: Vec<String> = (0..n)
                            .filter(|h| stages[*h].lock().unwrap().2.is_none())
                            .take(5)
                            .map(|h| format!("h{h}: {:?}", check(&hvs[h], &expects[h])))
                            .collect();
                        panic!("not converged in {:?}: {late:?}", cfg.deadline);
                    }
                    let h = next.fetch_add(1, Ordering::Relaxed) % n;
                    if h >= registered.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    // One worker per host, and not again within 200 ms.
                    let Ok(mut last) = last_read[h].try_lock() else {
                        continue;
                    };
                    {
                        let st = stages[h].lock().unwrap();
                        if st.2.is_some() && st.3.is_some() {
                            continue;
                        }
                    }
                    if last.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) {
                        drop(last);
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    *last = Some(Instant::now());
                    let hv = &hvs[h];
                    let (stage, connected) = check(hv, &expects[h]);
                    let now = t_reg.elapsed().as_secs_f64();
                    {
                        let mut st = stages[h].lock().unwrap();
                        if stage >= Stage::BrInt && st.0.is_none() {
                            st.0 = Some(now);
                        }
                        if stage >= Stage::Mesh && st.1.is_none() {
                            st.1 = Some(now);
                        }
                        if stage == Stage::Done && st.2.is_none() {
                            st.2 = Some(now);
                        }
                        if connected && st.3.is_none() {
                            st.3 = Some(now);
                        }
                        if st.2.is_some() && st.3.is_some() {
                            done.fetch_add(1, Ordering::AcqRel);
                        }
                    }
                    if stage >= Stage::BrInt && plugged[h].swap(1, Ordering::AcqRel) == 0 {
                        plug(hv, vifs.iter().filter(|v| v.host == h));
                    }
                });
            }
        });
    });
    if let Some(p) = perf {
        // SIGINT lets perf write its file.
        let _ = Command::new("kill")
            .args(["-INT", &p.0.id().to_string()])
            .status();
        std::thread::sleep(Duration::from_secs(2));
        drop(p);
    }
    let max = |f: fn(&Times) -> Option<f64>| {
        stages
            .iter()
            .map(|s| f(&s.lock().unwrap()).unwrap_or(f64::NAN))
            .fold(0.0, f64::max)
    };
    report.register_s = *register_s.lock().unwrap();
    report.br_int_s = max(|s| s.0);
    report.mesh_s = max(|s| s.1);
    report.converged_s = max(|s| s.2);
    report.connected_s = max(|s| s.3);
    let (peak, _, cpu) = proc_usage(pid);
    report.controller_peak_mib = peak as f64 / 1024.0;
    report.controller_cpu_s = cpu;
    let mut ovs_rss = 0;
    let mut ovs_cpu = 0.0;
    for hv in &hvs {
        for d in ["ovsdb-server", "ovs-vswitchd"] {
            if let Some(p) = hv.pid(d) {
                let (_, rss, c) = proc_usage(p);
                ovs_rss += rss;
                ovs_cpu += c;
            }
        }
    }
    report.ovs_rss_mib = ovs_rss as f64 / 1024.0;
    report.ovs_cpu_s = ovs_cpu;
    report.tunnel_ports = n * (n - 1);
    log(t0, &format!("converged in {:.2}s", report.converged_s));

    // Everything checked again, all at once, now that it converged.
    let again = par_map(&idx, cfg.workers, |_, &h| check(&hvs[h], &expects[h]).0);
    assert!(
        again.iter().all(|s| *s == Stage::Done),
        "a host went back: {again:?}"
    );

    // 5. A first packet across the pair: a's broadcast reaches b; b's unicast answer reaches a.
    let (va, vb) = (&vifs[ia], &vifs[ib]);
    let (ha, hb) = (&hvs[va.host], &hvs[vb.host]);
    let neighbour = |x: &Sandbox, y_index: usize| {
        let mac = hvs[y_index]
            .vsctl(&["get", "Interface", "br-phys", "mac_in_use"])
            .expect("br-phys MAC");
        let ip = underlay_ip(y_index);
        x.appctl(&[
            "tnl/neigh/set",
            "br-phys",
            &ip.to_string(),
            mac.trim().trim_matches('"'),
        ])
        .expect("neighbour");
    };
    if std::env::var_os("STROWGER_SCALE_NEIGH_ALL").is_some() {
        let others: Vec<usize> = (0..hvs.len()).filter(|&i| i != va.host).collect();
        par_map(&others, cfg.workers, |_, &i| neighbour(ha, i));
    }
    if std::env::var_os("STROWGER_SCALE_UL_LEARN").is_some() {
        // The underlay switch learns every host's MAC (a frame to itself on its own port: learnt,
        // not forwarded), as a physical underlay that has carried any traffic has.
        let all: Vec<usize> = (0..hvs.len()).collect();
        par_map(&all, cfg.workers, |_, &i| {
            let m = hvs[i]
                .vsctl(&["get", "Interface", "br-phys", "mac_in_use"])
                .expect("br-phys MAC");
            let m: Vec<u8> = m
                .trim()
                .trim_matches('"')
                .split(':')
                .map(|x| u8::from_str_radix(x, 16).expect("MAC"))
                .collect();
            let mut f = [&m[..], &m[..], &[0x88, 0xb5]].concat();
            f.resize(60, 0);
            net.main()
                .appctl(&[
                    "netdev-dummy/receive",
                    &format!("{}_br-phys", hvs[i].name()),
                    &hex(&f),
                ])
                .expect("underlay learns");
        });
    }
    {
        neighbour(ha, vb.host);
    }
    neighbour(hb, va.host);
    let sent = |hv: &Sandbox, v: &Vif| -> Vec<String> {
        let pcap = hv.dir().join(format!("{}.pcap", v.name));
        hv.tool("ovs-pcap", &[&pcap.to_string_lossy()])
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let arp = arp_request(mac(1), [10, 0, 0, 1], [10, 0, 0, 2]);
    let t = Instant::now();
    let packet_ins = || -> Option<f64> {
        let root = api.base.trim_end_matches("/api/v1");
        let text = rt.block_on(async {
            api.http
                .get(format!("{root}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()
        })?;
        text.lines()
            .find(|l| l.starts_with("strowger_packet_ins_total "))?
            .split(' ')
            .nth(1)?
            .parse()
            .ok()
    };
    let before = packet_ins();
    ha.appctl(&["netdev-dummy/receive", &va.name, &hex(&arp)])
        .expect("inject");
    if std::env::var_os("STROWGER_SCALE_BREAKDOWN").is_some() {
        poll(
            Instant::now() + Duration::from_secs(30),
            Duration::from_millis(1),
            || (packet_ins() != before).then_some(()),
        )
        .expect("no packet-in");
        log(t0, &format!("packet-in counted after {:?}", t.elapsed()));
        poll(
            Instant::now() + Duration::from_secs(30),
            Duration::from_millis(1),
            || {
                ha.tool(
                    "ovs-ofctl",
                    &["-O", "OpenFlow13", "dump-flows", "br-int", "table=20"],
                )
                .ok()?
                .contains("cookie=0x5354")
                .then_some(())
            },
        )
        .expect("no flow");
        log(
            t0,
            &format!("flood flow on a's host after {:?}", t.elapsed()),
        );
    }
    poll(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(5),
        || sent(hb, vb).contains(&hex(&arp)).then_some(()),
    )
    .expect("the broadcast never reached the other host's VIF");
    report.first_packet_s = t.elapsed().as_secs_f64();
    let reply = unicast(mac(2), mac(1), "answer");
    let t = Instant::now();
    hb.appctl(&["netdev-dummy/receive", &vb.name, &hex(&reply)])
        .expect("inject");
    poll(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(5),
        || sent(ha, va).contains(&hex(&reply)).then_some(()),
    )
    .expect("the answer never came back");
    report.answer_s = t.elapsed().as_secs_f64();
    log(t0, "first packet answered");
    drop(controller);
    // Sandboxes stop in parallel (each waits for its daemons to go).
    let hvs: Vec<Mutex<Option<Sandbox>>> = hvs.into_iter().map(|h| Mutex::new(Some(h))).collect();
    par_map(&hvs, cfg.workers, |_, hv| drop(hv.lock().unwrap().take()));
    report
}
