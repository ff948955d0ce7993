//! The control plane's security against real OVS sandboxes and the `strowger serve` binary,
//! with certificates made by `ovs-pki` in the test: switches connect over `ssl:` with mutual
//! authentication; a certificate from another CA and plain TCP are refused (and logged); a
//! host's br-int datapath id belongs to the holder of the host's certificate, so another
//! certificate from the same CA cannot take it over.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use testbed::{KeyPair, Pki, Sandbox};

const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// The controller binary, killed by PID on drop.
struct Controller {
    child: Child,
    log: PathBuf,
    api: String,
    of: SocketAddr,
    http: reqwest::Client,
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Controller {
    async fn start(dir: &Path, extra: &[String]) -> Controller {
        let (of, api) = (free_port(), free_port());
        let log = dir.join("strowger.log");
        let mut args: Vec<String> = [
            "serve",
            "--in-memory",
            "--no-tunnel-local-ip",
            "--ovsdb-listen",
            "127.0.0.1:0",
        ]
        .map(String::from)
        .to_vec();
        args.extend(["--openflow-listen".into(), of.to_string()]);
        args.extend(["--api-listen".into(), api.to_string()]);
        args.extend(extra.iter().cloned());
        let child = Command::new(env!("CARGO_BIN_EXE_strowger"))
            .args(&args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("strowger runs");
        let c = Controller {
            child,
            log,
            api: format!("http://{api}/api/v1"),
            of,
            http: reqwest::Client::new(),
        };
        poll("REST up", || async { c.get("/health").await }).await;
        c
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())?;
        r.json().await.ok()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.api))
            .json(&body)
            .send()
            .await
            .expect("REST reachable");
        let status = r.status();
        let v: Value = r.json().await.expect("JSON");
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line containing every one of `words`.
    async fn log_line(&self, words: &[&str]) -> String {
        poll(&format!("a log line with {words:?}"), || async {
            self.log()
                .lines()
                .find(|l| words.iter().all(|w| l.contains(w)))
                .map(String::from)
        })
        .await
    }

    /// The connected switches' datapath ids.
    async fn switches(&self) -> Vec<u64> {
        let Some(v) = self.get("/switches").await else {
            return vec![];
        };
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["dpid"].as_u64())
            .collect()
    }
}

async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A sandbox whose switch speaks TLS with `pair`, trusting `ca`.
fn tls_sandbox(name: &str, pair: &KeyPair, ca: &Path) -> Sandbox {
    let hv = Sandbox::start(name).expect("sandbox (install openvswitch-switch)");
    hv.vsctl(&[
        "set-ssl",
        &pair.key.to_string_lossy(),
        &pair.cert.to_string_lossy(),
        &ca.to_string_lossy(),
    ])
    .expect("set-ssl");
    hv
}

/// A bridge with datapath id `dpid` (16 hex digits) whose controller is `target`.
fn bridge(hv: &Sandbox, name: &str, dpid: &str, target: &str) {
    hv.vsctl(&[
        "add-br",
        name,
        "--",
        "set",
        "Bridge",
        name,
        "fail_mode=secure",
        "protocols=OpenFlow13",
        &format!("other_config:datapath-id={dpid}"),
    ])
    .expect("add-br");
    hv.vsctl(&["set-controller", name, target])
        .expect("set-controller");
}

struct Pkis {
    dir: tempfile::TempDir,
    ours: Pki,
    ctl: KeyPair,
}

fn pkis() -> Pkis {
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = Pki::init(&dir.path().join("ours")).expect("ovs-pki init");
    let ctl = ours.req_sign("ctl", "controller").expect("controller cert");
    Pkis { dir, ours, ctl }
}

fn tls_flags(p: &Pkis) -> Vec<String> {
    vec![
        "--tls-key".into(),
        p.ctl.key.display().to_string(),
        "--tls-cert".into(),
        p.ctl.cert.display().to_string(),
        "--tls-ca".into(),
        p.ours.switch_ca().display().to_string(),
    ]
}

/// A switch with a certificate from our CA connects over `ssl:`; one whose certificate comes
/// from another CA, and one speaking plain TCP to the TLS port, are refused and logged, and
/// never appear as switches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openflow_over_tls_with_mutual_authentication() {
    let p = pkis();
    let ctl = Controller::start(p.dir.path(), &tls_flags(&p)).await;
    let ssl = format!("ssl:{}", ctl.of);

    let good = p.ours.req_sign("sw1", "switch").unwrap();
    let hv1 = tls_sandbox("t1", &good, &p.ours.controller_ca());
    bridge(&hv1, "br0", "00000000000000a1", &ssl);
    poll("the TLS switch connected", || async {
        ctl.switches().await.contains(&0xa1).then_some(())
    })
    .await;
    ctl.log_line(&["switch authenticated by TLS", "sw1 id:"])
        .await;
    // It is a working session: a flow goes in over it.
    let r = ctl
        .http
        .post(format!("{}/switches/0xa1/flows", ctl.api))
        .json(&json!({"priority": 7, "match": {"in_port": 1}, "actions": []}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    poll("the flow on the switch", || async {
        hv1.ofctl(&["dump-flows", "br0"])
            .ok()?
            .contains("priority=7")
            .then_some(())
    })
    .await;

    // Another CA: the switch trusts our controller CA, but its own certificate is not ours.
    let theirs = Pki::init(&p.dir.path().join("theirs")).unwrap();
    let rogue = theirs.req_sign("rogue", "switch").unwrap();
    let hv2 = tls_sandbox("t2", &rogue, &p.ours.controller_ca());
    bridge(&hv2, "br0", "00000000000000b2", &ssl);
    ctl.log_line(&["switch refused: TLS handshake failed", "certificate"])
        .await;

    // Plain TCP to the TLS port.
    let hv3 = Sandbox::start("t3").unwrap();
    bridge(&hv3, "br0", "00000000000000c3", &format!("tcp:{}", ctl.of));
    poll("the plain TCP switch refused", || async {
        ctl.log()
            .lines()
            .filter(|l| l.contains("switch refused: TLS handshake failed"))
            .nth(1)
            .map(|_| ())
    })
    .await;
    // The plain switch sees a closed connection, not a controller.
    poll("hv3's controller not connected", || async {
        let v = hv3
            .vsctl(&["--columns=status", "list", "Controller"])
            .ok()?;
        (!v.contains("state=ACTIVE")).then_some(())
    })
    .await;
    let switches = ctl.switches().await;
    assert_eq!(switches, vec![0xa1], "{}", ctl.log());
}

/// A host's br-int belongs to the holder of the host's certificate: the provisioner writes an
/// `ssl:` controller target, the host's switch connects with its own certificate, and another
/// switch with a valid certificate of the same CA claiming that datapath id is refused while
/// the real one stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_datapath_id_belongs_to_its_certificate() {
    let p = pkis();
    let ctl = Controller::start(p.dir.path(), &tls_flags(&p)).await;
    let hv1_pair = p.ours.req_sign("hv1", "switch").unwrap();
    let hv1 = tls_sandbox("i1", &hv1_pair, &p.ours.controller_ca());
    let host = ctl
        .post(
            "/hosts",
            json!({"name": "hv1", "ovsdb": hv1.db_target(), "datapath_type": "system"}),
        )
        .await;
    let dpid = poll("hv1's datapath id", || async {
        let h = ctl.get(&format!("/hosts/{}", host["id"].as_str()?)).await?;
        h["datapath_id"].as_str().map(String::from)
    })
    .await;
    let target = hv1
        .vsctl(&["get-controller", "br-int"])
        .expect("get-controller");
    assert_eq!(target.trim(), format!("ssl:{}", ctl.of));
    poll("hv1's br-int connected over TLS", || async {
        let n = u64::from_str_radix(&dpid, 16).ok()?;
        ctl.switches().await.contains(&n).then_some(())
    })
    .await;

    // A second switch with a good certificate of the same CA claims hv1's datapath id.
    let other = p.ours.req_sign("mallory", "switch").unwrap();
    let hv2 = tls_sandbox("i2", &other, &p.ours.controller_ca());
    bridge(&hv2, "br0", &dpid, &format!("ssl:{}", ctl.of));
    let line = ctl.log_line(&["switch refused", "hv1"]).await;
    assert!(line.contains("mallory"), "{line}");
    // The real switch was not evicted.
    let sw = ctl
        .get(&format!("/switches/{dpid}"))
        .await
        .expect("hv1 still connected");
    assert!(
        !ctl.log().contains("replacing its old session"),
        "{}",
        ctl.log()
    );
    drop(sw);

    // hv1 named by a cert_cn that is not its certificate's: its own br-int is refused on the
    // next connect.
    let mut h = ctl
        .get(&format!("/hosts/{}", host["id"].as_str().unwrap()))
        .await
        .unwrap();
    h["cert_cn"] = json!("someone-else");
    let r = ctl
        .http
        .put(format!(
            "{}/hosts/{}",
            ctl.api,
            host["id"].as_str().unwrap()
        ))
        .json(&h)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    hv1.vsctl(&["del-controller", "br-int"]).unwrap();
    hv1.vsctl(&["set-controller", "br-int", &format!("ssl:{}", ctl.of)])
        .unwrap();
    ctl.log_line(&["switch refused", "someone-else"]).await;
}

/// REST bearer tokens against the binary: `/health` is open; everything else is 401 without a
/// token or with an unknown one; a reader reads (`/metrics` too) and gets 403 for a write; an
/// admin writes; the CLI sends the token from `STROWGER_TOKEN` or `--token-file`. The file
/// holds the reader's token only as its SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_tokens_by_role_and_the_cli() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let admin = "adm-7f3c1e9a4b2d8c6e0f5a";
    let reader = "rdr-2b8d4f6a1c3e5a7b9d0f";
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        format!(
            "# strowger tokens\nadmin:{admin}\nreader:sha256:{}\n",
            hex::encode(sha2::Sha256::digest(reader.as_bytes()))
        ),
    )
    .unwrap();
    let ctl = Controller::start(
        dir.path(),
        &["--api-token-file".into(), file.display().to_string()],
    )
    .await;
    let call = |method: reqwest::Method, path: &str, token: Option<&str>| {
        let root = ctl.api.trim_end_matches("/api/v1").to_string();
        let mut req = ctl.http.request(method, format!("{root}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let r = req
                .header("content-type", "application/json")
                .body("{\"name\": \"b1\"}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let auth = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string());
            (status, auth, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method as M;
    assert_eq!(call(M::GET, "/api/v1/health", None).await.0, 200);
    let (status, auth, body) = call(M::GET, "/api/v1/bridges", None).await;
    assert_eq!((status, auth.as_deref()), (401, Some("Bearer")));
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    assert_eq!(
        call(M::GET, "/api/v1/bridges", Some("adm-wrong")).await.0,
        401
    );
    assert_eq!(call(M::GET, "/metrics", None).await.0, 401);
    assert_eq!(call(M::GET, "/metrics", Some(reader)).await.0, 200);
    assert_eq!(call(M::GET, "/api/v1/bridges", Some(reader)).await.0, 200);
    let (status, _, body) = call(M::POST, "/api/v1/bridges", Some(reader)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    assert_eq!(call(M::POST, "/api/v1/bridges", Some(admin)).await.0, 201);

    // The CLI.
    let cli = |envs: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_strowger"));
        c.env_remove("STROWGER_TOKEN")
            .env_remove("STROWGER_TOKEN_FILE")
            .env("STROWGER_API", ctl.api.trim_end_matches("/api/v1"));
        for (k, v) in envs {
            c.env(k, v);
        }
        c.args(args).output().unwrap()
    };
    let out = cli(&[], &["bridge", "list"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HTTP 401"),
        "{out:?}"
    );
    let out = cli(&[("STROWGER_TOKEN", reader)], &["bridge", "list"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("b1"),
        "{out:?}"
    );
    let out = cli(&[("STROWGER_TOKEN", reader)], &["bridge", "create", "b2"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HTTP 403"),
        "{out:?}"
    );
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, format!("{admin}\n")).unwrap();
    let out = cli(
        &[],
        &[
            "bridge",
            "create",
            "b2",
            "--token-file",
            &token_file.to_string_lossy(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
}
