//! The `strowger serve` binary: OpenFlow and REST come up on the given addresses, a switch
//! handshakes, the REST API lists it, SIGTERM ends the process cleanly; an unknown `--app` is
//! refused at start-up.

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
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_strowger"))
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
    let health = common::wait_for(|| http_get(api, "/api/v1/health")).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let _sw = FakeSwitch::handshake(of, 0x99).await;
    let listed = common::wait_for(|| {
        http_get(api, "/api/v1/switches").filter(|r| r.contains("\"dpid\":153"))
    })
    .await;
    assert!(listed.contains("0000000000000099"), "{listed}");

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn unknown_app_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["serve", "--in-memory", "--app", "nope"])
        .args(["--openflow-listen", &free_port().to_string()])
        .args([
            "--api-listen",
            &free_port().to_string(),
            "--ovsdb-listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run strowger");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown app \"nope\" (known: l2switch)"),
        "{err}"
    );
}
