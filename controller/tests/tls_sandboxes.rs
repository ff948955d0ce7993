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
    ovsdb: SocketAddr,
    http: reqwest::Client,
}

impl Drop for Controller {
    fn drop(&mut self) {
        // `STROWGER_SHOW_LOG=1 cargo test … -- --nocapture` shows what the controller logged.
        if std::env::var_os("STROWGER_SHOW_LOG").is_some() {
            eprintln!("{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Controller {
    async fn start(dir: &Path, extra: &[String]) -> Controller {
        Controller::start_with(dir, extra, "http", reqwest::Client::new()).await
    }

    /// [`Controller::start`] with the API reached as `scheme://` through `http`.
    async fn start_with(
        dir: &Path,
        extra: &[String],
        scheme: &str,
        http: reqwest::Client,
    ) -> Controller {
        let (of, api, ovsdb) = (free_port(), free_port(), free_port());
        let log = dir.join("strowger.log");
        let mut args: Vec<String> = ["serve", "--in-memory", "--no-tunnel-local-ip"]
            .map(String::from)
            .to_vec();
        args.extend(["--ovsdb-listen".into(), ovsdb.to_string()]);
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
            api: format!("{scheme}://{api}/api/v1"),
            of,
            ovsdb,
            http,
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

    // A second switch of our CA claiming the connected datapath id (of no host): refused, the
    // first one stays.
    let sw2 = p.ours.req_sign("sw2", "switch").unwrap();
    let hv4 = tls_sandbox("t4", &sw2, &p.ours.controller_ca());
    bridge(&hv4, "br0", "00000000000000a1", &ssl);
    let line = ctl
        .log_line(&["refused a switch", "connected under another certificate"])
        .await;
    assert!(line.contains("sw2 id:"), "{line}");
    assert!(!ctl.log().contains("replacing its old session"));
    drop(hv4);

    // Another CA: the switch trusts our controller CA, but its own certificate is not ours.
    let theirs = Pki::init(&p.dir.path().join("theirs")).unwrap();
    let rogue = theirs.req_sign("rogue", "switch").unwrap();
    let hv2 = tls_sandbox("t2", &rogue, &p.ours.controller_ca());
    bridge(&hv2, "br0", "00000000000000b2", &ssl);
    ctl.log_line(&["refused a switch: TLS handshake failed", "certificate"])
        .await;

    // Plain TCP to the TLS port.
    let hv3 = Sandbox::start("t3").unwrap();
    bridge(&hv3, "br0", "00000000000000c3", &format!("tcp:{}", ctl.of));
    poll("the plain TCP switch refused", || async {
        ctl.log()
            .lines()
            .filter(|l| l.contains("refused a switch: TLS handshake failed"))
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
    // Each refusal is counted too.
    let root = ctl.api.trim_end_matches("/api/v1");
    let text = ctl
        .http
        .get(format!("{root}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused = |reason: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("strowger_peers_refused_total{")
                    && l.contains("channel=\"openflow\"")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    assert!(refused("handshake") >= Some(2), "{text}");
    assert!(refused("identity") >= Some(1), "{text}");
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
    let line = ctl.log_line(&["refused a switch", "hv1"]).await;
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
    ctl.log_line(&["refused a switch", "someone-else"]).await;
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

/// Whether host `id` is connected over OVSDB, per REST.
async fn connected(ctl: &Controller, id: &str) -> bool {
    ctl.get(&format!("/hosts/{id}"))
        .await
        .is_some_and(|h| h["connected"] == json!(true))
}

/// OVSDB over TLS both ways. Dialing `ssl:IP:PORT`: a host whose certificate is its own is
/// provisioned (br-int with an `ssl:` controller); a host whose server presents another
/// host's certificate is refused. Dial-in (`set-manager ssl:`): a host is accepted by its
/// certificate; a peer with a good certificate claiming another host's system-id, and a
/// plain TCP manager, are refused and logged; none of them is marked connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovsdb_over_tls_both_ways() {
    let p = pkis();
    let ctl = Controller::start(p.dir.path(), &tls_flags(&p)).await;
    let ca = p.ours.controller_ca();

    // Active: the controller dials the host's ssl: target.
    let hv1 = tls_sandbox("o1", &p.ours.req_sign("hv1", "switch").unwrap(), &ca);
    let port1 = free_port();
    hv1.vsctl(&["set-manager", &format!("pssl:{}:127.0.0.1", port1.port())])
        .unwrap();
    let h1 = ctl
        .post(
            "/hosts",
            json!({"name": "hv1", "ovsdb": format!("ssl:{port1}"), "datapath_type": "system"}),
        )
        .await;
    let h1 = h1["id"].as_str().unwrap().to_string();
    poll("hv1 provisioned over ssl:", || async {
        let c = hv1.vsctl(&["get-controller", "br-int"]).ok()?;
        (c.trim() == format!("ssl:{}", ctl.of) && connected(&ctl, &h1).await).then_some(())
    })
    .await;
    ctl.log_line(&["host authenticated by TLS", "hv1 id:"])
        .await;

    // A host record whose server holds another (valid) certificate.
    let hv2 = tls_sandbox("o2", &p.ours.req_sign("impostor", "switch").unwrap(), &ca);
    let port2 = free_port();
    hv2.vsctl(&["set-manager", &format!("pssl:{}:127.0.0.1", port2.port())])
        .unwrap();
    let h2 = ctl
        .post(
            "/hosts",
            json!({"name": "hv2", "ovsdb": format!("ssl:{port2}"), "datapath_type": "system"}),
        )
        .await;
    ctl.log_line(&["refused or could not reach a host", "impostor", "\"hv2\""])
        .await;
    assert!(!connected(&ctl, h2["id"].as_str().unwrap()).await);
    assert!(hv2.vsctl(&["list-br"]).unwrap().trim().is_empty());

    // Passive: hosts dial in with set-manager ssl:.
    let h3 = ctl
        .post("/hosts", json!({"name": "hv3", "datapath_type": "system"}))
        .await;
    let h3 = h3["id"].as_str().unwrap().to_string();
    let h4 = ctl
        .post("/hosts", json!({"name": "hv4", "datapath_type": "system"}))
        .await;
    let hv3 = tls_sandbox("o3", &p.ours.req_sign("hv3", "switch").unwrap(), &ca);
    hv3.vsctl(&["set", "Open_vSwitch", ".", "external_ids:system-id=hv3"])
        .unwrap();
    hv3.vsctl(&["set-manager", &format!("ssl:{}", ctl.ovsdb)])
        .unwrap();
    poll("hv3 dialed in and provisioned", || async {
        let c = hv3.vsctl(&["get-controller", "br-int"]).ok()?;
        (c.trim() == format!("ssl:{}", ctl.of) && connected(&ctl, &h3).await).then_some(())
    })
    .await;

    // hv3's certificate claiming hv4's system-id.
    let hv4 = tls_sandbox("o4", &p.ours.req_sign("mallory", "switch").unwrap(), &ca);
    hv4.vsctl(&["set", "Open_vSwitch", ".", "external_ids:system-id=hv4"])
        .unwrap();
    hv4.vsctl(&["set-manager", &format!("ssl:{}", ctl.ovsdb)])
        .unwrap();
    ctl.log_line(&["refused a passive host", "mallory"]).await;

    // Plain TCP to the TLS listener.
    let hv5 = Sandbox::start("o5").unwrap();
    hv5.vsctl(&["set", "Open_vSwitch", ".", "external_ids:system-id=hv4"])
        .unwrap();
    hv5.vsctl(&["set-manager", &format!("tcp:{}", ctl.ovsdb)])
        .unwrap();
    ctl.log_line(&["refused a host: TLS handshake failed"])
        .await;
    assert!(!connected(&ctl, h4["id"].as_str().unwrap()).await);
    assert!(hv4.vsctl(&["list-br"]).unwrap().trim().is_empty());
    assert!(hv5.vsctl(&["list-br"]).unwrap().trim().is_empty());
}

/// The REST API over HTTPS (`--api-tls-key/--api-tls-cert`, a certificate naming
/// 127.0.0.1): a client trusting its CA gets answers; plain HTTP to it gets none; the CLI
/// reaches it with `--api-ca` and a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_over_https_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    // A CA, and the API's certificate signed by it for 127.0.0.1.
    let d = dir.path();
    let (key, cert, ca) = (
        d.join("api-key.pem"),
        d.join("api-cert.pem"),
        d.join("ca.pem"),
    );
    std::fs::write(
        d.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("openssl (apt-get install openssl)");
        assert!(out.status.success(), "{out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=strowger-api",
        "-keyout",
        "api-key.pem",
        "-out",
        "api.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "api.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "api-cert.pem",
    ]);
    let token = "adm-5a1f0c3e8d7b6a4f2e9c";
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("admin:{token}\n")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let ctl = Controller::start_with(
        dir.path(),
        &[
            "--api-tls-key".into(),
            key.display().to_string(),
            "--api-tls-cert".into(),
            cert.display().to_string(),
            "--api-token-file".into(),
            tokens.display().to_string(),
        ],
        "https",
        http,
    )
    .await;
    let r = ctl
        .http
        .get(format!("{}/hosts", ctl.api))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Plain HTTP to the HTTPS port: no HTTP answer.
    let plain = ctl.api.replace("https://", "http://");
    let r = reqwest::Client::new()
        .get(format!("{plain}/health"))
        .send()
        .await;
    assert!(r.is_err() || !r.unwrap().status().is_success());
    // The CLI, trusting the API's certificate.
    let out = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .env_remove("STROWGER_TOKEN_FILE")
        .env("STROWGER_API", ctl.api.trim_end_matches("/api/v1"))
        .env("STROWGER_TOKEN", token)
        .args(["host", "list", "--api-ca", &ca.to_string_lossy()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("NAME"),
        "{out:?}"
    );
}
