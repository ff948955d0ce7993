//! Emulated hosts for the virtual-topology benchmark: per host a real `ovsdb-server` (the
//! sandbox technique of the lab recipes, no root, no `ovs-vswitchd`), which the controller
//! provisions exactly as it provisions a real hypervisor (`POST /hosts` with
//! `ovsdb=unix:…/db.sock`), and a task playing ovs-vswitchd's part for that database: it gives
//! every interface on a bridge an `ofport` (the LOCAL port 65534 for the bridge's own
//! interface, else the lowest free number, as ovs-vswitchd does without `ofport_request`), sets
//! `link_state` up, and copies `other_config:datapath-id` into `Bridge.datapath_id`. The load
//! generator then connects an emulated switch with that datapath id and those port numbers.
//!
//! So the controller binds ports through the very code paths it uses for real hosts: its OVSDB
//! session, the provisioner's host view, `external_ids:iface-id`. Nothing about binding is
//! changed or bypassed for the benchmark; what is emulated is only what ovs-vswitchd writes
//! into its database and what the switch says over OpenFlow.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use ovsdb::client::{Connection, Monitored, Target};
use ovsdb::idl::uuid_set;
use ovsdb::rpc::MonitorRequests;
use ovsdb::{Condition, Mutation, Mutator, Operation, Replica, Row, Value};
use tokio::sync::watch;
use uuid::Uuid;

/// The OVS schema `ovsdb-tool create` starts each database from (`OVS_SCHEMA` overrides).
const DEFAULT_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// The bridge the controller provisions.
const BRIDGE: &str = "br-int";
/// OFPP_LOCAL: the bridge's own interface.
const OFPP_LOCAL: i64 = 0xfffe;

/// What the emulated vswitchd sees on its `br-int`, published after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostOvs {
    /// `Bridge.datapath_id` as it set it (from `other_config:datapath-id`).
    pub datapath_id: Option<u64>,
    /// Tunnel ports with an ofport, by peer host (`external_ids:strowger-peer`).
    pub tunnels: HashMap<Uuid, u32>,
    /// Interfaces carrying `external_ids:iface-id`, with an ofport, by iface-id.
    pub vifs: HashMap<String, u32>,
    /// Interfaces on br-int in all, numbered or not, and those of them still without an
    /// ofport: when provisioning does not finish, whether the controller wrote nothing or
    /// the emulated vswitchd did not number it.
    pub interfaces: usize,
    pub unnumbered: usize,
    /// Why the emulated vswitchd stopped, if it did (it numbers nothing more after that).
    pub ended: Option<String>,
}

/// One emulated host: its `ovsdb-server` (killed by PID on drop) and its emulated vswitchd.
pub struct HostDb {
    server: Child,
    dir: PathBuf,
    view: watch::Receiver<HostOvs>,
    plug: tokio::sync::mpsc::Sender<Vec<(String, String)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostDb {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl HostDb {
    /// Starts `ovsdb-server` in `dir` (created) and the emulated vswitchd over it.
    pub async fn start(dir: &Path) -> anyhow::Result<HostDb> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let db = dir.join("conf.db");
        let sock = dir.join("db.sock");
        let _ = std::fs::remove_file(&db);
        let _ = std::fs::remove_file(&sock);
        let schema = std::env::var("OVS_SCHEMA").unwrap_or_else(|_| DEFAULT_SCHEMA.to_string());
        let st = Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg(&schema)
            .status()
            .context("running ovsdb-tool (install openvswitch-switch)")?;
        if !st.success() {
            bail!("ovsdb-tool create {} {schema} failed", db.display());
        }
        let server = Command::new("ovsdb-server")
            .arg(format!("--remote=punix:{}", sock.display()))
            .arg(format!(
                "--unixctl={}",
                dir.join("ovsdb-server.ctl").display()
            ))
            .arg("--no-chdir")
            .arg("-vconsole:off")
            .arg(format!(
                "--log-file={}",
                dir.join("ovsdb-server.log").display()
            ))
            .arg(format!(
                "--pidfile={}",
                dir.join("ovsdb-server.pid").display()
            ))
            .arg(&db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ovsdb-server (install openvswitch-switch)")?;
        let mut server = server;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let conn = loop {
            match Connection::connect(&Target::Unix(sock.clone()), Default::default()).await {
                Ok(c) => break c,
                Err(e) => {
                    if tokio::time::Instant::now() >= deadline {
                        let _ = server.kill();
                        let _ = server.wait();
                        bail!("ovsdb-server at {} never answered: {e}", sock.display());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let requests = MonitorRequests::default()
            .table("Open_vSwitch", &["bridges"])
            .table("Bridge", &["name", "ports", "other_config", "datapath_id"])
            .table("Port", &["name", "interfaces", "external_ids"])
            .table(
                "Interface",
                &["name", "type", "ofport", "external_ids", "link_state"],
            );
        let monitored = Monitored::start(conn.0, conn.1, "Open_vSwitch", &requests, None)
            .await
            .context("monitoring the emulated host's database")?;
        let (view_tx, view) = watch::channel(HostOvs::default());
        let (plug, plug_rx) = tokio::sync::mpsc::channel(16);
        let task = tokio::spawn(async move {
            let why = match vswitchd(monitored, &view_tx, plug_rx).await {
                Ok(()) => "its plug channel closed".to_string(),
                Err(e) => format!("{e:#}"),
            };
            tracing::warn!(error = %why, "emulated vswitchd ended");
            view_tx.send_modify(|v| v.ended = Some(why));
        });
        Ok(HostDb {
            server,
            dir: dir.to_path_buf(),
            view,
            plug,
            task,
        })
    }

    /// The OVSDB target to give the controller: `unix:<dir>/db.sock`.
    pub fn target(&self) -> String {
        format!("unix:{}", self.dir.join("db.sock").display())
    }

    /// What the emulated vswitchd sees now, and its changes.
    pub fn view(&self) -> watch::Receiver<HostOvs> {
        self.view.clone()
    }

    /// Plugs VIFs `(interface name, iface-id)` into br-int once it exists, like
    /// `ovs-vsctl add-port br-int NAME -- set Interface NAME external_ids:iface-id=ID`.
    pub async fn plug(&self, vifs: Vec<(String, String)>) -> anyhow::Result<()> {
        self.plug
            .send(vifs)
            .await
            .map_err(|_| anyhow::anyhow!("the emulated vswitchd has ended"))
    }
}

/// The emulated vswitchd's loop: after every change, fill in what ovs-vswitchd would.
async fn vswitchd(
    mut m: Monitored,
    view: &watch::Sender<HostOvs>,
    mut plug_rx: tokio::sync::mpsc::Receiver<Vec<(String, String)>>,
) -> anyhow::Result<()> {
    let mut to_plug: Vec<(String, String)> = Vec::new();
    loop {
        let mut retry = false;
        if !to_plug.is_empty() && bridge(m.replica()).is_some() {
            let vifs = to_plug.clone();
            match m.transact(|r| Ok(plug_ops(r, &vifs))).await {
                Ok(_) => to_plug.clear(),
                Err(e) => retry = transient(e)?,
            }
        }
        if let Err(e) = m.transact(|r| Ok(fill_ops(r))).await {
            retry = transient(e)?;
        }
        view.send_if_modified(|v| {
            // (`ended` is set only once this loop is over.)
            let new = host_view(m.replica());
            let changed = *v != new;
            *v = new;
            changed
        });
        tokio::select! {
            c = m.changes() => { c?; }
            p = plug_rx.recv() => match p {
                Some(v) => to_plug.extend(v),
                None => return Ok(()),
            },
            // A transaction that failed is tried again (what it would have done is still
            // missing from the replica, so the next round plans it again).
            _ = tokio::time::sleep(RETRY), if retry => {}
        }
    }
}

/// How soon a transaction the server refused or did not answer in time is tried again.
const RETRY: Duration = Duration::from_millis(100);

/// `Ok(true)` for an error ovs-vswitchd would live through (the transaction is tried again),
/// the error itself when the database connection is gone.
fn transient(e: ovsdb::Error) -> anyhow::Result<bool> {
    match e {
        ovsdb::Error::Disconnected | ovsdb::Error::PeerDead | ovsdb::Error::Io(_) => Err(e.into()),
        e => {
            tracing::warn!(error = %e, "emulated vswitchd: transaction failed, trying again");
            Ok(true)
        }
    }
}

fn bridge(r: &Replica) -> Option<(Uuid, &Row)> {
    r.find("Bridge", "name", BRIDGE)
}

/// Interface rows on `bridge`'s ports.
fn interfaces<'r>(r: &'r Replica, b: &Row) -> Vec<(Uuid, &'r Row, Option<&'r Row>)> {
    let mut v = Vec::new();
    for p in uuid_set(b.get("ports")) {
        let Some(prow) = r.get("Port", &p) else {
            continue;
        };
        for i in uuid_set(prow.get("interfaces")) {
            if let Some(irow) = r.get("Interface", &i) {
                v.push((i, irow, Some(prow)));
            }
        }
    }
    v
}

fn ofport_of(row: &Row) -> Option<i64> {
    row.get("ofport").and_then(Value::as_i64).filter(|p| *p > 0)
}

/// The transaction ovs-vswitchd would make: ofports for new interfaces, link up, datapath id.
fn fill_ops(r: &Replica) -> Option<Vec<Operation>> {
    let (bu, b) = bridge(r)?;
    let mut ops = Vec::new();
    if let Some(dpid) = b
        .get("other_config")
        .and_then(|v| v.map_get("datapath-id"))
        .and_then(|a| a.as_str())
    {
        if b.get("datapath_id").and_then(Value::as_str) != Some(dpid) {
            let mut row = Row::new();
            row.insert("datapath_id".into(), Value::from(dpid));
            ops.push(Operation::update("Bridge", vec![Condition::uuid(bu)], row));
        }
    }
    let ifaces = interfaces(r, b);
    let mut used: BTreeSet<i64> = ifaces.iter().filter_map(|(_, i, _)| ofport_of(i)).collect();
    let mut next = 1;
    for (iu, irow, _) in &ifaces {
        if ofport_of(irow).is_some() {
            continue;
        }
        let port = if irow.get("name").and_then(Value::as_str) == Some(BRIDGE) {
            OFPP_LOCAL
        } else {
            while used.contains(&next) {
                next += 1;
            }
            next
        };
        used.insert(port);
        let mut row = Row::new();
        row.insert("ofport".into(), Value::from(port));
        row.insert("link_state".into(), Value::from("up"));
        ops.push(Operation::update(
            "Interface",
            vec![Condition::uuid(*iu)],
            row,
        ));
    }
    (!ops.is_empty()).then_some(ops)
}

/// `add-port br-int NAME -- set Interface NAME external_ids:iface-id=ID` for each VIF not there.
fn plug_ops(r: &Replica, vifs: &[(String, String)]) -> Option<Vec<Operation>> {
    let (bu, _) = bridge(r)?;
    let mut ops = Vec::new();
    let mut names = Vec::new();
    for (n, (name, id)) in vifs.iter().enumerate() {
        if r.find("Interface", "name", name).is_some() {
            continue;
        }
        let (iname, pname) = (format!("i{n}"), format!("p{n}"));
        let mut irow = Row::new();
        irow.insert("name".into(), Value::from(name.as_str()));
        irow.insert(
            "external_ids".into(),
            Value::map([("iface-id", id.as_str())]),
        );
        ops.push(Operation::insert_named("Interface", irow, &iname));
        let mut prow = Row::new();
        prow.insert("name".into(), Value::from(name.as_str()));
        prow.insert("interfaces".into(), Value::named(&iname));
        ops.push(Operation::insert_named("Port", prow, &pname));
        names.push(pname);
    }
    if names.is_empty() {
        return None;
    }
    ops.push(Operation::mutate(
        "Bridge",
        vec![Condition::uuid(bu)],
        vec![Mutation::new(
            "ports",
            Mutator::Insert,
            Value::Set(
                names
                    .iter()
                    .map(|n| ovsdb::Atom::NamedUuid(n.clone()))
                    .collect(),
            ),
        )],
    ));
    Some(ops)
}

fn host_view(r: &Replica) -> HostOvs {
    let mut v = HostOvs::default();
    let Some((_, b)) = bridge(r) else {
        return v;
    };
    v.datapath_id = b
        .get("datapath_id")
        .and_then(Value::as_str)
        .and_then(|d| u64::from_str_radix(d, 16).ok());
    for (_, irow, prow) in interfaces(r, b) {
        v.interfaces += 1;
        let Some(ofport) = ofport_of(irow).and_then(|p| u32::try_from(p).ok()) else {
            v.unnumbered += 1;
            continue;
        };
        let peer = prow
            .and_then(|p| p.get("external_ids"))
            .and_then(|e| e.map_get("strowger-peer"))
            .and_then(|a| a.as_str())
            .and_then(|s| s.parse::<Uuid>().ok());
        if let Some(peer) = peer {
            v.tunnels.insert(peer, ofport);
            continue;
        }
        if let Some(id) = irow
            .get("external_ids")
            .and_then(|e| e.map_get("iface-id"))
            .and_then(|a| a.as_str())
        {
            v.vifs.insert(id.to_string(), ofport);
        }
    }
    v
}
