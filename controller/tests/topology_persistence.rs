//! End to end: the real `strowger serve --data-dir D`, a topology built with the real CLI,
//! `kill -9`, a restart on the same directory, and everything is back with the same ids and
//! tunnel keys. Only the REST API and the CLI are looked at.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_strowger");

struct Server {
    child: Child,
    api: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path) -> Server {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--api-listen", &format!("127.0.0.1:{port}")])
        .args([
            "--openflow-listen",
            "127.0.0.1:0",
            "--ovsdb-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting strowger serve");
    let mut server = Server {
        child,
        api: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && cli(&server, &["host", "list"]).is_ok()
        {
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("strowger serve exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "strowger serve did not answer on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the CLI against the server; Ok(stdout) or Err(stderr).
fn cli(s: &Server, args: &[&str]) -> Result<String, String> {
    let out = Command::new(BIN)
        .args(args)
        .args(["--api", &s.api])
        .output()
        .expect("running the CLI");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn json(s: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = cli(s, &a).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn everything(s: &Server) -> Vec<Value> {
    let mut all = vec![
        json(s, &["host", "list"]),
        json(s, &["tunnel-zone", "list"]),
        json(s, &["bridge", "list"]),
        json(s, &["router", "list"]),
        json(s, &["port", "list"]),
        json(s, &["chain", "list"]),
        json(s, &["port-group", "list"]),
        json(s, &["ip-addr-group", "list"]),
        json(s, &["route", "list", "r1"]),
        json(s, &["rule", "list", "fw"]),
        json(s, &["dhcp", "list", "net1"]),
    ];
    all.retain(|v| v.as_array().is_some_and(|a| !a.is_empty()));
    all
}

#[test]
fn topology_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let s = start(dir.path());
        let id = |v: Value| v["id"].as_str().unwrap().to_owned();
        id(json(&s, &["host", "create", "hv1", "tunnel_ip=192.0.2.11"]));
        id(json(&s, &["tunnel-zone", "create", "tz", "type=vxlan"]));
        json(&s, &["member", "add", "tz", "hv1", "192.0.2.11"]);
        json(&s, &["bridge", "create", "net1", "tenant_id=acme"]);
        json(&s, &["router", "create", "r1"]);
        let bp = id(json(&s, &["port", "create", "net1"]));
        let vm = id(json(&s, &["port", "create", "net1"]));
        let rp = id(json(&s, &["port", "create", "r1", "address=10.0.0.1/24"]));
        json(&s, &["port", "link", &rp, &bp]);
        json(&s, &["port", "bind", &vm, "hv1", "tap-vm1"]);
        json(
            &s,
            &[
                "route",
                "add",
                "r1",
                "dst=0.0.0.0/0",
                &format!("next_hop_port={rp}"),
                "next_hop_gateway=10.0.0.254",
            ],
        );
        json(&s, &["chain", "create", "fw"]);
        json(
            &s,
            &[
                "rule",
                "add",
                "fw",
                "action=accept",
                "nw_proto=6",
                "tp_dst=22",
            ],
        );
        let first = json(
            &s,
            &[
                "rule",
                "add",
                "fw",
                "--position",
                "1",
                "action=drop",
                "nw_src=192.168.0.0/16",
            ],
        );
        assert_eq!(first["position"], 1);
        json(&s, &["bridge", "update", "net1", "inbound_filter_id=fw"]);
        json(
            &s,
            &["port-group", "create", "web", &format!("port_ids={vm}")],
        );
        json(
            &s,
            &[
                "ip-addr-group",
                "create",
                "admins",
                "addresses=10.0.0.5,10.0.0.6",
            ],
        );
        let subnet = id(json(
            &s,
            &[
                "dhcp",
                "create",
                "net1",
                "subnet=10.0.0.0/24",
                "gateway=10.0.0.1",
            ],
        ));
        // A unique id prefix is as good as the id.
        json(
            &s,
            &[
                "dhcp-host",
                "add",
                "net1",
                &subnet[..8],
                "02:00:00:00:00:10",
                "10.0.0.10",
                "vm1",
            ],
        );
        let leases = cli(&s, &["dhcp-host", "list", "net1", &subnet]).unwrap();
        assert!(
            leases.contains("02:00:00:00:00:10  10.0.0.10  vm1"),
            "{leases}"
        );
        let rules = cli(&s, &["rule", "list", "fw"]).unwrap();
        assert!(rules.contains("nw_proto=6 tp_dst=22-22"), "{rules}");
        // Table output and errors as the API gave them.
        let table = cli(&s, &["port", "list", "net1"]).unwrap();
        assert!(table.starts_with("ID"), "{table}");
        assert_eq!(table.lines().count(), 3, "{table}");
        let err = cli(&s, &["bridge", "delete", "net1"]).unwrap_err();
        assert!(
            err.contains("HTTP 409") && err.contains("\"code\":\"conflict\""),
            "{err}"
        );
        let err = cli(&s, &["port", "create", "r1", "address=10.0.0.9/16"]).unwrap_err();
        assert!(err.contains("\"field\":\"address\""), "{err}");
        let all = everything(&s);
        assert_eq!(all.len(), 11, "{all:#?}");
        all
        // `s` dropped here: kill -9 (SIGKILL), no graceful shutdown.
    };
    let s = start(dir.path());
    let after = everything(&s);
    assert_eq!(
        before, after,
        "the topology changed across kill -9 and restart"
    );
    // Keys keep being unique after the restart.
    let p = json(&s, &["port", "create", "net1"]);
    let k = p["tunnel_key"].as_u64().unwrap();
    let keys: Vec<u64> = before[4]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tunnel_key"].as_u64().unwrap())
        .collect();
    assert!(!keys.contains(&k), "tunnel key {k} reused after restart");
}
