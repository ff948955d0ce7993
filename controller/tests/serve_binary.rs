//! The `strowger serve` binary: OpenFlow and REST come up on the given addresses, a switch
//! handshakes, the REST API lists it, SIGTERM ends the process cleanly; an unknown `--app` is
//! refused at start-up; the CLI's runtime views reach the served API.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::FakeSwitch;

/// A loopback port free right now (the binary binds it a moment later).
fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A child process killed (and reaped) when the test ends, whatever happened.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("strowger did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_switches_and_rest_then_stops_on_sigterm() {
    let (of, api) = (free_port(), free_port());
    let data = std::env::temp_dir().join(format!("strowger-serve-test-{}", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["serve", "--in-memory", "--openflow-listen", &of.to_string()])
        .args([
            "--api-listen",
            &api.to_string(),
            "--ovsdb-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strowger");
    let mut child = Running(child);
    let health = common::wait_for(|| http_get(api, "/api/v1/health")).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let _sw = FakeSwitch::handshake(of, 0x99).await;
    let listed = common::wait_for(|| {
        http_get(api, "/api/v1/switches").filter(|r| r.contains("\"dpid\":153"))
    })
    .await;
    assert!(listed.contains("0000000000000099"), "{listed}");

    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = wait_exit(&mut child.0, Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn unknown_app_is_refused() {
    let child = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["serve", "--in-memory", "--app", "nope"])
        .args(["--openflow-listen", &free_port().to_string()])
        .args([
            "--api-listen",
            &free_port().to_string(),
            "--ovsdb-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strowger");
    let mut child = Running(child);
    let status = wait_exit(&mut child.0, Duration::from_secs(10));
    assert!(!status.success());
    let mut err = String::new();
    if let Some(mut stderr) = child.0.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    assert!(
        err.contains("unknown app \"nope\" (known: engine, l2switch)"),
        "{err}"
    );
}

/// Runs the CLI against `api`; its stdout, or the failure with stderr.
fn cli(api: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(args)
        .args(["--api", &format!("http://{api}")])
        .output()
        .expect("run the CLI");
    assert!(
        out.status.success(),
        "strowger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the CLI against `api`, expecting it to fail; its stderr.
fn cli_fails(api: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(args)
        .args(["--api", &format!("http://{api}")])
        .output()
        .expect("run the CLI");
    assert!(
        !out.status.success(),
        "strowger {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `bridge mac-table` and `router arp-table` resolve names and prefixes, reach the served
/// views (empty: nothing has been learned without switches), and print a table or `--json`;
/// an unknown device is the API's 404.
#[test]
fn mac_and_arp_tables_through_the_cli() {
    let api = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["serve", "--in-memory"])
        .args(["--openflow-listen", &free_port().to_string()])
        .args(["--api-listen", &api.to_string()])
        .args(["--ovsdb-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strowger");
    let _child = Running(child);
    testbed::Sandbox::wait_until(Duration::from_secs(10), || http_get(api, "/api/v1/health"))
        .expect("REST up");
    cli(api, &["bridge", "create", "net1"]);
    let router: serde_json::Value =
        serde_json::from_str(&cli(api, &["router", "create", "r1", "--json"])).expect("JSON");
    let router_id = router["id"].as_str().expect("an id").to_owned();

    let table = cli(api, &["bridge", "mac-table", "net1"]);
    assert_eq!(table, "MAC  PORT_ID  FLOWS\n");
    let json = cli(api, &["bridge", "mac-table", "net1", "--json"]);
    assert_eq!(json.trim(), "[]");
    let table = cli(api, &["router", "arp-table", &router_id[..8]]);
    assert_eq!(table, "IP  MAC  STATE  EXPIRES_IN_SECS  PARKED  PORT_ID\n");
    let json = cli(api, &["router", "arp-table", "r1", "--json"]);
    assert_eq!(json.trim(), "[]");

    // A bridge's name is no router's, and an unknown id is the API's own 404.
    let err = cli_fails(api, &["router", "arp-table", "net1"]);
    assert!(
        err.contains("no /routers item named or prefixed \"net1\""),
        "{err}"
    );
    let unknown = "00000000-0000-4000-8000-000000000001";
    let err = cli_fails(api, &["bridge", "mac-table", unknown]);
    assert!(err.starts_with("HTTP 404: "), "{err}");
    assert!(err.contains("\"not_found\""), "{err}");
}

/// A host created through the CLI with a real OVS's OVSDB socket: the controller provisions its
/// br-int, and `GET /hosts` shows it connected with the datapath id br-int really has.
#[test]
fn a_provisioned_host_shows_connected_with_its_datapath_id() {
    let hv = testbed::Sandbox::start("serve-host").expect("OVS sandbox");
    let api = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["serve", "--in-memory"])
        .args(["--openflow-listen", &free_port().to_string()])
        .args(["--api-listen", &api.to_string()])
        .args(["--ovsdb-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strowger");
    let _child = Running(child);
    testbed::Sandbox::wait_until(Duration::from_secs(10), || http_get(api, "/api/v1/health"))
        .expect("REST up");
    let ovsdb = format!("ovsdb=unix:{}", hv.db_sock().display());
    cli(
        api,
        &["host", "create", "hv1", "tunnel_ip=192.0.2.1", &ovsdb],
    );
    let shown = testbed::Sandbox::wait_until(Duration::from_secs(20), || {
        let v: serde_json::Value =
            serde_json::from_str(&cli(api, &["host", "show", "hv1", "--json"])).ok()?;
        (v["connected"] == true && v["datapath_id"].is_string()).then_some(v)
    })
    .expect("host connected within 20 s");
    // What OVS itself says br-int's datapath id is.
    let dpid = hv
        .vsctl(&["get", "Bridge", "br-int", "datapath_id"])
        .expect("br-int exists");
    assert_eq!(
        shown["datapath_id"].as_str(),
        Some(dpid.trim().trim_matches('"')),
        "{shown}"
    );
    let table = cli(api, &["host", "list"]);
    assert!(table.contains("hv1") && table.contains("true"), "{table}");
}
