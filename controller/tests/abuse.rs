//! The abuse battery: the real `strowger serve` against misbehaving clients, bounded in count
//! and time, on loopback only. Each test names the finding it guards against.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::FakeSwitch;

const BIN: &str = env!("CARGO_BIN_EXE_strowger");

/// A loopback port free right now (the binary binds it a moment later).
fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A child process killed (and reaped) when the test ends, whatever happened.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `strowger serve` in memory on fresh loopback ports, started through `sh` so that `ulimit`
/// (e.g. `-n 1024`, `-Sn 1024`) sets its open-file limit first.
fn serve(ulimit: &str, extra: &[&str]) -> (Running, SocketAddr, SocketAddr) {
    let (of, api) = (free_port(), free_port());
    let child = Command::new("sh")
        .args(["-c", &format!("ulimit {ulimit} && exec \"$0\" \"$@\"")])
        .arg(BIN)
        .args(["serve", "--in-memory"])
        .args(["--openflow-listen", &of.to_string()])
        .args(["--api-listen", &api.to_string()])
        .args(["--ovsdb-listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strowger");
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !http(api, "GET", "/api/v1/health", &[], "").is_some_and(|r| r.contains(" 200 ")) {
        assert!(Instant::now() < deadline, "REST did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    (running, of, api)
}

/// One HTTP/1.1 request on a fresh connection with `Host: <addr>` and the given extra
/// headers; the whole response, or `None` if none came within 5 s.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

/// Finding (issue 14): ~1100 idle connections to the REST port exhausted the default 1024
/// descriptors, after which no switch could connect and REST was dead for good. Now REST
/// serves a bounded number of connections, refuses the rest at once with a 503 in the API's
/// error shape, closes connections that send no request within the header timeout, and a
/// switch's handshake still succeeds: here even with a hard limit of 1024.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_rest_connections_starve_neither_switches_nor_rest() {
    const IDLE: usize = 1100;
    // This process holds the idle sockets too.
    let _ = rlimit::increase_nofile_limit(4096);
    let (_child, of, api) = serve("-n 1024", &["--api-header-read-timeout", "2"]);
    let mut idle = Vec::with_capacity(IDLE);
    let started = Instant::now();
    while idle.len() < IDLE && started.elapsed() < Duration::from_secs(20) {
        // A SYN dropped while the accept queue is full is retried by the kernel after 1 s.
        if let Ok(s) = TcpStream::connect_timeout(&api, Duration::from_secs(3)) {
            idle.push(s);
        }
    }
    let opened = Instant::now();
    assert_eq!(idle.len(), IDLE, "connections opened within 20 s");

    // A switch still gets in.
    let sw = tokio::time::timeout(Duration::from_secs(5), FakeSwitch::handshake(of, 0x42)).await;
    assert!(
        sw.is_ok(),
        "no OpenFlow handshake with {IDLE} idle REST connections"
    );

    // A fresh REST client is served, or told clearly why not, while the idle connections are
    // still open. (Right after the burst it may also be reset: refusals that wait for a
    // client's request to drain are bounded too, so it tries again.)
    let fresh = loop {
        if let Some(r) = http(api, "GET", "/api/v1/health", &[], "") {
            break r;
        }
        assert!(
            opened.elapsed() < Duration::from_secs(3),
            "no REST answer, only hangs or resets"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        fresh.starts_with("HTTP/1.1 200")
            || (fresh.starts_with("HTTP/1.1 503") && fresh.contains("\"unavailable\"")),
        "{fresh}"
    );

    // Every idle connection is closed by the server within the header timeout (plus slack).
    let deadline = opened + Duration::from_secs(2 + 5);
    let mut still_open = 0;
    for s in &mut idle {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        let mut sink = Vec::new();
        if let Err(e) = s.read_to_end(&mut sink) {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                still_open += 1;
            }
        }
    }
    assert_eq!(still_open, 0, "idle connections left open by the server");
    drop(idle);
    let after = http(api, "GET", "/api/v1/health", &[], "").expect("REST answers");
    assert!(after.starts_with("HTTP/1.1 200"), "{after}");
}

/// `serve` raises its soft open-file limit to the hard one at start-up.
#[cfg(target_os = "linux")]
#[test]
fn serve_raises_its_open_file_limit() {
    let (child, _, _) = serve("-Sn 1024", &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.0.id())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files <soft> <hard> files"
    assert_eq!(fields[3], fields[4], "{line}");
}

/// The status code of an HTTP response.
fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {resp:?}"))
}

/// Finding (issue 14): any web page the operator opened could write to the API: a
/// cross-origin `text/plain` POST needs no preflight (CSRF), and a rebound DNS name reached it
/// same-origin (no `Host` check). Now writes with a body must be JSON (415), a write with a
/// foreign `Origin` is refused (403), and a `Host` that is not an IP literal, `localhost` or a
/// name given with `--api-host` is refused (421); all in the API's JSON error shape.
#[test]
fn browser_borne_writes_are_refused() {
    let (_child, _, api) = serve("-Sn 1024", &["--api-host", "ctl.example"]);
    let bridge = r#"{"name":"csrf"}"#;
    let post = |headers: &[(&str, &str)]| {
        http(api, "POST", "/api/v1/bridges", headers, bridge).expect("an answer")
    };
    let json = ("Content-Type", "application/json");

    // The simple request a form or fetch() sends without a preflight: its origin is foreign,
    // and its type is not JSON either.
    let r = post(&[
        ("Content-Type", "text/plain;charset=UTF-8"),
        ("Origin", "http://evil.example"),
    ]);
    assert_eq!(status(&r), 403, "{r}");
    let r = post(&[("Content-Type", "text/plain")]);
    assert_eq!(status(&r), 415, "{r}");
    assert!(r.contains(r#""code":"unsupported_media_type""#), "{r}");
    let r = post(&[]);
    assert_eq!(status(&r), 415, "{r}");
    // JSON from a foreign page (possible with a preflight the API never grants, or by a
    // browser that skips it) and from a sandboxed frame.
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let r = post(&[json, ("Origin", origin)]);
        assert_eq!(status(&r), 403, "{origin}: {r}");
        assert!(r.contains(r#""code":"forbidden""#), "{r}");
    }
    // DNS rebinding: the page's own name, pointed at 127.0.0.1.
    for host in ["evil.example", "evil.example:8080"] {
        let r = post(&[json, ("Host", host)]);
        assert_eq!(status(&r), 421, "{host}: {r}");
        let r = http(api, "GET", "/api/v1/bridges", &[("Host", host)], "").expect("answer");
        assert_eq!(status(&r), 421, "{host}: {r}");
        assert!(r.contains(r#""code":"misdirected""#), "{r}");
    }
    let r = http(api, "GET", "/api/v1/bridges", &[], "").expect("answer");
    assert!(r.ends_with("[]"), "a refused write created something: {r}");

    // What the CLI and scripts send still works, as does the API's own origin and a name
    // configured with --api-host.
    let own = format!("http://{api}");
    assert_eq!(status(&post(&[json])), 201);
    assert_eq!(status(&post(&[json, ("Origin", &own)])), 201);
    let r = post(&[
        ("Content-Type", "application/json; charset=utf-8"),
        ("Host", "localhost"),
    ]);
    assert_eq!(status(&r), 201, "{r}");
    let r = post(&[
        json,
        ("Host", "CTL.example:8080"),
        ("Origin", "http://ctl.example:8080"),
    ]);
    assert_eq!(status(&r), 201, "{r}");
    let r = http(
        api,
        "DELETE",
        "/api/v1/bridges/00000000-0000-4000-8000-000000000001",
        &[],
        "",
    );
    assert_eq!(status(&r.expect("answer")), 404);
}

/// Finding (issue 14): a truncated store file made `serve` panic inside redb (exit 101). Now it
/// is an error naming the file, and a plain non-zero exit.
#[test]
fn a_truncated_store_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |dir: &std::path::Path| {
        let api = free_port();
        let child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(dir)
            .args(["--api-listen", &api.to_string()])
            .args([
                "--openflow-listen",
                "127.0.0.1:0",
                "--ovsdb-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn strowger");
        (Running(child), api)
    };
    // A real store with something in it.
    let (mut first, api) = run(dir.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    let json = ("Content-Type", "application/json");
    while !http(api, "POST", "/api/v1/bridges", &[json], r#"{"name":"b1"}"#)
        .is_some_and(|r| r.starts_with("HTTP/1.1 201"))
    {
        assert!(Instant::now() < deadline, "REST did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = first.0.kill();
    let _ = first.0.wait();

    let file = dir.path().join("topology.redb");
    let len = std::fs::metadata(&file).expect("the store file").len();
    for keep in [4096, len / 2] {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .expect("open");
        f.set_len(keep).expect("truncate");
        drop(f);
        let (mut again, _) = run(dir.path());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = again.0.try_wait().expect("try_wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "serve ran on a truncated store ({keep} bytes)"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = again.0.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(!status.success(), "{keep} bytes: {status}");
        assert_ne!(
            status.code(),
            Some(101),
            "{keep} bytes: a panic's exit code\n{err}"
        );
        assert!(!err.contains("panicked"), "{keep} bytes:\n{err}");
        assert!(
            err.contains(&file.display().to_string()),
            "{keep} bytes: file not named\n{err}"
        );
        assert!(err.contains("damaged"), "{keep} bytes:\n{err}");
    }
}

/// `body` sent with `method` to `path` as JSON: the status and the body of the answer.
fn send_json(api: SocketAddr, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let r = http(
        api,
        method,
        path,
        &[("Content-Type", "application/json")],
        body,
    )
    .expect("an answer");
    let text = r.split("\r\n\r\n").nth(1).unwrap_or("");
    (status(&r), serde_json::from_str(text).unwrap_or_default())
}

/// Finding (issue 14): `tenant_id` had no length limit, and names and `tenant_id` took bidi
/// and zero-width characters; a `[]` body created a resource; unknown fields were silently
/// ignored. Now each is a 422 naming the field, while the read-only runtime fields a `GET`
/// shows (and `strowger … update` sends back) are still accepted on `PUT`.
#[test]
fn bodies_are_objects_of_known_fields_with_sane_strings() {
    let (_child, _, api) = serve("-Sn 1024", &[]);
    let refused = |path: &str, body: &str, field: Option<&str>| {
        let (code, v) = send_json(api, "POST", path, body);
        assert_eq!(code, 422, "{body}: {v}");
        assert_eq!(v["error"]["code"], "invalid", "{body}: {v}");
        if let Some(f) = field {
            assert_eq!(v["error"]["field"], f, "{body}: {v}");
        }
    };
    for body in ["[]", "[\"b\", null]", "\"b\"", "1", "null"] {
        refused("/api/v1/bridges", body, None);
    }
    let long = "x".repeat(256);
    refused(
        "/api/v1/bridges",
        &format!(r#"{{"name":"{long}"}}"#),
        Some("name"),
    );
    refused(
        "/api/v1/bridges",
        &format!(r#"{{"tenant_id":"{long}"}}"#),
        Some("tenant_id"),
    );
    for c in [
        "\\u0007",
        "\\u001b[31m",
        "\\u007f",
        "\\u202e",
        "\\u2066",
        "\\u200b",
        "\\ufeff",
    ] {
        refused(
            "/api/v1/routers",
            &format!(r#"{{"name":"a{c}b"}}"#),
            Some("name"),
        );
        refused(
            "/api/v1/routers",
            &format!(r#"{{"tenant_id":"a{c}b"}}"#),
            Some("tenant_id"),
        );
    }
    refused(
        "/api/v1/bridges",
        r#"{"name":"b","colour":"red"}"#,
        Some("colour"),
    );
    let (code, chain) = send_json(api, "POST", "/api/v1/chains", r#"{"name":"c"}"#);
    assert_eq!(code, 201, "{chain}");
    let rules = format!("/api/v1/chains/{}/rules", chain["id"].as_str().expect("id"));
    refused(
        &rules,
        r#"{"action":"accept","nw_porto":6}"#,
        Some("nw_porto"),
    );
    let (_, v) = send_json(api, "GET", "/api/v1/bridges", "");
    assert_eq!(v, serde_json::json!([]), "a refused body created something");

    // At the limit, and non-ASCII names, are fine.
    let name = "x".repeat(255);
    let (code, v) = send_json(
        api,
        "POST",
        "/api/v1/bridges",
        &format!(r#"{{"name":"{name}"}}"#),
    );
    assert_eq!(code, 201, "{v}");
    let name = format!("x{}", "é".repeat(127));
    let (code, v) = send_json(
        api,
        "POST",
        "/api/v1/bridges",
        &format!(r#"{{"name":"{name}"}}"#),
    );
    assert_eq!(code, 201, "{v}");
    let (code, v) = send_json(api, "POST", &rules, r#"{"action":"accept","nw_proto":6}"#);
    assert_eq!(code, 201, "{v}");

    // What a GET shows, runtime fields included, goes back with PUT.
    let (_, bridge) = send_json(api, "POST", "/api/v1/bridges", r#"{"name":"net1"}"#);
    let bridge_id = bridge["id"].as_str().expect("id").to_owned();
    let (code, port) = send_json(
        api,
        "POST",
        &format!("/api/v1/bridges/{bridge_id}/ports"),
        "{}",
    );
    assert_eq!(code, 201, "{port}");
    let (code, host) = send_json(
        api,
        "POST",
        "/api/v1/hosts",
        r#"{"name":"hv1","tunnel_ip":"192.0.2.1"}"#,
    );
    assert_eq!(code, 201, "{host}");
    for item in [
        format!("/api/v1/bridges/{bridge_id}"),
        format!("/api/v1/ports/{}", port["id"].as_str().expect("id")),
        format!("/api/v1/hosts/{}", host["id"].as_str().expect("id")),
    ] {
        let (code, shown) = send_json(api, "GET", &item, "");
        assert_eq!(code, 200, "{shown}");
        let (code, v) = send_json(api, "PUT", &item, &shown.to_string());
        assert_eq!(code, 200, "PUT {item} {shown}: {v}");
    }
}
